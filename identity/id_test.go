package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

const testIDHex = "0123456789abcdef00112233445566778899aabbccddeeff0f1e2d3c4b5a6978"

func mustParseID(t testing.TB, s string) ID {
	t.Helper()
	id, err := ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestParseID(t *testing.T) {
	want := mustParseID(t, testIDHex)
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means success
	}{
		{"lower", testIDHex, ""},
		{"upper", strings.ToUpper(testIDHex), ""},
		{"mixed", "0123456789ABCDEF00112233445566778899aabbccddeeff0f1e2d3c4b5a6978", ""},
		{"empty", "", "length 0, want 64"},
		{"short", testIDHex[:63], "length 63, want 64"},
		{"long", testIDHex + "0", "length 65, want 64"},
		{"0x prefix", "0x" + testIDHex[:62], `invalid character 'x' at offset 1`},
		{"space", " " + testIDHex[1:], `invalid character ' ' at offset 0`},
		{"trailing newline", testIDHex[:63] + "\n", `invalid character '\n' at offset 63`},
		{"non-hex letter", testIDHex[:10] + "g" + testIDHex[11:], `invalid character 'g' at offset 10`},
		{"base64", strings.Repeat("A", 43) + "=" + strings.Repeat("A", 20), `invalid character '=' at offset 43`},
		{"unicode", "é" + testIDHex[2:], "invalid character 'é' at offset 0"},
		{"invalid utf-8", "\xff" + testIDHex[1:], "invalid byte 0xff at offset 0"},
		{"very long", strings.Repeat("a", 10000), "length 10000, want 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseID(%q) error = %v, want nil", tt.in, err)
				}
				if got != want {
					t.Errorf("ParseID(%q) = %v, want %v", tt.in, got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseID(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "identity: parse id ") {
				t.Errorf("ParseID(%q) error = %q, want prefix %q", tt.in, err, "identity: parse id ")
			}
			if len(err.Error()) > 200 {
				t.Errorf("ParseID(%q) error is %d bytes long, want it shortened", tt.in, len(err.Error()))
			}
		})
	}
}

func TestIDString(t *testing.T) {
	id := mustParseID(t, strings.ToUpper(testIDHex))
	if got := id.String(); got != testIDHex {
		t.Errorf("String() = %q, want %q", got, testIDHex)
	}
	if got, want := id.Short(), testIDHex[:12]; got != want {
		t.Errorf("Short() = %q, want %q", got, want)
	}
	if id.IsZero() {
		t.Errorf("IsZero() = true for %v, want false", id)
	}
	if !(ID{}).IsZero() {
		t.Errorf("IsZero() = false for the zero ID, want true")
	}
}

func TestIDFromBytes(t *testing.T) {
	raw, _ := hex.DecodeString(testIDHex)
	id, err := IDFromBytes(raw)
	if err != nil || id.String() != testIDHex {
		t.Fatalf("IDFromBytes(%x) = %v, %v; want %s, nil", raw, id, err, testIDHex)
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := IDFromBytes(make([]byte, n)); err == nil {
			t.Errorf("IDFromBytes(%d bytes) error = nil, want error", n)
		}
	}
}

func TestIDFromPublicKey(t *testing.T) {
	pub := make([]byte, 32)
	for i := range pub {
		pub[i] = byte(i)
	}
	want := sha256.Sum256(pub)
	if got := IDFromPublicKey(pub); got != ID(want) {
		t.Errorf("IDFromPublicKey(%x) = %v, want %x", pub, got, want)
	}
}

func TestIDJSON(t *testing.T) {
	type doc struct {
		Owner ID            `json:"owner"`
		Peers map[ID]string `json:"peers"`
	}
	id := mustParseID(t, testIDHex)
	in := doc{Owner: id, Peers: map[ID]string{id: "self"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"owner":"` + testIDHex + `","peers":{"` + testIDHex + `":"self"}}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Owner != id || out.Peers[id] != "self" {
		t.Errorf("json.Unmarshal(%s) = %+v, want %+v", b, out, in)
	}
	if err := json.Unmarshal([]byte(`{"owner":"abc"}`), &out); err == nil {
		t.Errorf("json.Unmarshal of a short id: error = nil, want error")
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(testIDHex)
	f.Add(strings.ToUpper(testIDHex))
	f.Add("")
	f.Add("0x" + testIDHex[:62])
	f.Add(testIDHex[:63] + "g")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !id.IsZero() {
				t.Fatalf("ParseID(%q) = %v with error %v, want zero ID", s, id, err)
			}
			return
		}
		if got := id.String(); got != strings.ToLower(s) {
			t.Fatalf("ParseID(%q).String() = %q, want %q", s, got, strings.ToLower(s))
		}
		var again ID
		if err := again.UnmarshalText([]byte(id.String())); err != nil || again != id {
			t.Fatalf("UnmarshalText(%q) = %v, %v; want %v, nil", id.String(), again, err, id)
		}
	})
}
