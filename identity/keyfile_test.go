package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// testScrypt makes key files cheap to open in tests.
var testScrypt = scryptParams{N: 16, R: 8, P: 1}

var testTime = time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)

func sealTest(t testing.TB, k *Key, name, passphrase string) *keyFile {
	t.Helper()
	f, err := sealKeyFile(k, name, testTime, []byte(passphrase), testScrypt)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// jsonMap decodes a key file into a generic map, for tampering.
func jsonMap(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyFileRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	for _, pass := range []string{"correct horse", ""} {
		f := sealTest(t, k, "alice", pass)
		data := f.encode()
		g, err := decodeKeyFile(data)
		if err != nil {
			t.Fatalf("decodeKeyFile(%s) error: %v", data, err)
		}
		if g.id != k.ID() || g.name != "alice" || !g.created.Equal(testTime) || !bytes.Equal(g.pub, k.Public()) || g.kdf != testScrypt {
			t.Errorf("decodeKeyFile(encode(f)) = %+v, want %+v", g, f)
		}
		if again := g.encode(); !bytes.Equal(again, data) {
			t.Errorf("encode(decode(data)) = %s, want %s", again, data)
		}
		got, err := g.open([]byte(pass))
		if err != nil {
			t.Fatalf("open(%q) error: %v", pass, err)
		}
		if !bytes.Equal(got.Seed(), k.Seed()) {
			t.Errorf("open(%q) gave seed %x, want %x", pass, got.Seed(), k.Seed())
		}
		if _, err := g.open([]byte(pass + "x")); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("open(wrong passphrase) error = %v, want %v", err, ErrWrongPassphrase)
		}
	}
}

func TestKeyFileFormat(t *testing.T) {
	f := sealTest(t, testKey(t, 1), "alice", "pw")
	m := jsonMap(t, f.encode())
	if m["version"] != 1.0 || m["id"] != testKey(t, 1).ID().String() || m["created"] != "2025-03-04T05:06:07.00000089Z" {
		t.Errorf("key file header = %v", m)
	}
	kdf := m["kdf"].(map[string]any)
	if kdf["name"] != "scrypt" || kdf["n"] != 16.0 || kdf["r"] != 8.0 || kdf["p"] != 1.0 {
		t.Errorf("key file kdf = %v", kdf)
	}
	c := m["cipher"].(map[string]any)
	if c["name"] != "xchacha20poly1305" {
		t.Errorf("key file cipher = %v", c)
	}
	if g := sealTest(t, testKey(t, 1), "alice", "pw"); bytes.Equal(g.salt, f.salt) || bytes.Equal(g.nonce, f.nonce) {
		t.Errorf("two key files share a salt or nonce")
	}
}

// TestKeyFileTamper changes each field of a key file. A change the decoder
// can see is a decoding error; any other must make the file fail to open.
func TestKeyFileTamper(t *testing.T) {
	const pass = "pw"
	orig := sealTest(t, testKey(t, 1), "alice", pass).encode()
	other := jsonMap(t, sealTest(t, testKey(t, 2), "bob", pass).encode())
	otherKDF := other["kdf"].(map[string]any)
	otherCipher := other["cipher"].(map[string]any)

	tests := []struct {
		name      string
		mutate    func(m, kdf, cipher map[string]any)
		decodeErr string // substring of the decoding error; "" if the file decodes
	}{
		{"version", func(m, kdf, c map[string]any) { m["version"] = 2 }, "unsupported version 2"},
		{"version removed", func(m, kdf, c map[string]any) { delete(m, "version") }, "missing version"},
		{"id", func(m, kdf, c map[string]any) { m["id"] = other["id"] }, "public key has id"},
		{"public key", func(m, kdf, c map[string]any) { m["public_key"] = other["public_key"] }, "public key has id"},
		{"id and public key", func(m, kdf, c map[string]any) {
			m["id"], m["public_key"] = other["id"], other["public_key"]
		}, ""},
		{"name", func(m, kdf, c map[string]any) { m["name"] = "mallory" }, ""},
		{"name emptied", func(m, kdf, c map[string]any) { m["name"] = "" }, ""},
		{"created", func(m, kdf, c map[string]any) { m["created"] = "2025-03-04T05:06:08Z" }, ""},
		{"created same instant", func(m, kdf, c map[string]any) { m["created"] = "2025-03-04T05:06:07.000000890Z" }, ""},
		{"kdf name", func(m, kdf, c map[string]any) { kdf["name"] = "argon2id" }, "unsupported kdf"},
		{"kdf n", func(m, kdf, c map[string]any) { kdf["n"] = 32 }, ""},
		{"kdf n not power of two", func(m, kdf, c map[string]any) { kdf["n"] = 24 }, "not a power of two"},
		{"kdf r", func(m, kdf, c map[string]any) { kdf["r"] = 4 }, ""},
		{"kdf p", func(m, kdf, c map[string]any) { kdf["p"] = 2 }, ""},
		{"kdf salt", func(m, kdf, c map[string]any) { kdf["salt"] = otherKDF["salt"] }, ""},
		{"kdf salt truncated", func(m, kdf, c map[string]any) { kdf["salt"] = "AAAA" }, "kdf salt: 3 bytes, want 16 to 64"},
		{"cipher name", func(m, kdf, c map[string]any) { c["name"] = "aes-256-gcm" }, "unsupported cipher"},
		{"cipher nonce", func(m, kdf, c map[string]any) { c["nonce"] = otherCipher["nonce"] }, ""},
		{"cipher ciphertext", func(m, kdf, c map[string]any) { c["ciphertext"] = otherCipher["ciphertext"] }, ""},
		{"cipher from other file", func(m, kdf, c map[string]any) { m["cipher"] = otherCipher }, ""},
		{"kdf and cipher from other file", func(m, kdf, c map[string]any) {
			m["kdf"], m["cipher"] = otherKDF, otherCipher
		}, ""},
		{"everything but the name from other file", func(m, kdf, c map[string]any) {
			for k, v := range other {
				if k != "name" {
					m[k] = v
				}
			}
		}, ""},
		{"unknown field", func(m, kdf, c map[string]any) { m["comment"] = "hi" }, `unknown field "comment"`},
		{"unknown kdf field", func(m, kdf, c map[string]any) { kdf["dklen"] = 32 }, `unknown field "dklen"`},
		{"kdf removed", func(m, kdf, c map[string]any) { delete(m, "kdf") }, "missing kdf"},
		{"cipher removed", func(m, kdf, c map[string]any) { delete(m, "cipher") }, "missing cipher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := jsonMap(t, orig)
			tt.mutate(m, m["kdf"].(map[string]any), m["cipher"].(map[string]any))
			data := mustMarshal(t, m)
			f, err := decodeKeyFile(data)
			if tt.decodeErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.decodeErr) {
					t.Fatalf("decodeKeyFile(%s) error = %v, want containing %q", data, err, tt.decodeErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeKeyFile(%s) error: %v", data, err)
			}
			if k, err := f.open([]byte(pass)); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("open(%s) = %v, %v; want error %v", data, k, err, ErrWrongPassphrase)
			}
		})
	}
}

func TestDecodeKeyFileErrors(t *testing.T) {
	good := sealTest(t, testKey(t, 1), "alice", "pw").encode()
	with := func(field string, v any) []byte {
		m := jsonMap(t, good)
		m[field] = v
		return mustMarshal(t, m)
	}
	withKDF := func(field string, v any) []byte {
		m := jsonMap(t, good)
		m["kdf"].(map[string]any)[field] = v
		return mustMarshal(t, m)
	}
	withCipher := func(field string, v any) []byte {
		m := jsonMap(t, good)
		m["cipher"].(map[string]any)[field] = v
		return mustMarshal(t, m)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "invalid json"},
		{"not json", []byte("hello"), "invalid json"},
		{"array", []byte("[1]"), "invalid json"},
		{"null", []byte("null"), "missing version"},
		{"too large", append(bytes.Clone(good), bytes.Repeat([]byte(" "), maxKeyFileSize)...), "exceeds 65536 bytes"},
		{"trailing data", append(bytes.Clone(good), "{}"...), "after top-level value"},
		{"two objects", append(bytes.Clone(good), good...), "after top-level value"},
		{"version string", with("version", "1"), "invalid json"},
		{"version 0", with("version", 0), "unsupported version 0"},
		{"id short", with("id", "abcd"), "id: identity: parse id"},
		{"id missing", with("id", nil), "id: identity: parse id"},
		{"name too long", with("name", strings.Repeat("n", 65)), "65 bytes, want at most 64"},
		{"name control", with("name", "a\nb"), "control"},
		{"name is an id", with("name", testIDHex), "must not be an id"},
		{"created missing", with("created", ""), "created"},
		{"created not rfc3339", with("created", "yesterday"), "created"},
		{"public key not base64", with("public_key", "!!!!"), "public_key: illegal base64"},
		{"public key short", with("public_key", "AAAA"), "public_key: 3 bytes, want 32"},
		{"public key huge", with("public_key", strings.Repeat("A", 60000)), "want at most 44"},
		{"kdf null", with("kdf", nil), "missing kdf"},
		{"kdf not object", with("kdf", "scrypt"), "invalid json"},
		{"n zero", withKDF("n", 0), "not a power of two"},
		{"n negative", withKDF("n", -16), "not a power of two"},
		{"n float", withKDF("n", 16.5), "cannot unmarshal"},
		{"n huge", withKDF("n", 1<<21), "exceeds 1048576"},
		{"n overflow", withKDF("n", 1e30), "cannot unmarshal"},
		{"r zero", withKDF("r", 0), "must be positive"},
		{"p negative", withKDF("p", -1), "must be positive"},
		{"r huge", withKDF("r", 1<<40), "exceeds 64"},
		{"r times p", withKDF("p", 9), "exceeds 64"},
		{"memory", func() []byte {
			m := jsonMap(t, good)
			kdf := m["kdf"].(map[string]any)
			kdf["n"], kdf["r"] = 1<<20, 16
			return mustMarshal(t, m)
		}(), "memory"},
		{"work", func() []byte {
			m := jsonMap(t, good)
			kdf := m["kdf"].(map[string]any)
			kdf["n"], kdf["r"], kdf["p"] = 1<<20, 8, 8
			return mustMarshal(t, m)
		}(), "work limit"},
		{"salt long", withKDF("salt", strings.Repeat("A", 88)), "kdf salt: 66 bytes, want 16 to 64"},
		{"salt huge", withKDF("salt", strings.Repeat("A", 92)), "92 base64 characters, want at most 88"},
		{"salt not canonical", withKDF("salt", "AAAAAAAAAAAAAAAAAAAAAB=="), "illegal base64"},
		{"nonce short", withCipher("nonce", "AAAA"), "cipher nonce: 3 bytes, want 24"},
		{"ciphertext short", withCipher("ciphertext", "AAAA"), "cipher ciphertext: 3 bytes, want 48"},
		{"ciphertext missing", withCipher("ciphertext", nil), "cipher ciphertext: 0 bytes"},
		{"cipher name missing", withCipher("name", nil), "unsupported cipher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeKeyFile(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeKeyFile(%.200s) error = %v, want containing %q", tt.data, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "decode key file: ") {
				t.Errorf("error %q lacks the prefix %q", err, "decode key file: ")
			}
		})
	}
}

func TestScryptBounds(t *testing.T) {
	tests := []struct {
		p  scryptParams
		ok bool
	}{
		{defaultScrypt, true},
		{testScrypt, true},
		{scryptParams{N: 2, R: 1, P: 1}, true},
		{scryptParams{N: 1 << 20, R: 8, P: 1}, true},
		{scryptParams{N: 1 << 14, R: 8, P: 8}, true},
		{scryptParams{N: 1, R: 8, P: 1}, false},
		{scryptParams{N: 1 << 21, R: 1, P: 1}, false},
		{scryptParams{N: 1 << 20, R: 9, P: 1}, false},
		{scryptParams{N: 1 << 20, R: 8, P: 2}, true},
		{scryptParams{N: 1 << 20, R: 8, P: 3}, false},
		{scryptParams{N: 16, R: 1 << 62, P: 1 << 62}, false},
		{scryptParams{N: 16, R: 65, P: 1}, false},
	}
	for _, tt := range tests {
		if err := tt.p.check(); (err == nil) != tt.ok {
			t.Errorf("%+v.check() = %v, want ok %v", tt.p, err, tt.ok)
		}
	}
	if defaultScrypt != (scryptParams{N: 32768, R: 8, P: 1}) {
		t.Errorf("defaultScrypt = %+v, want N=32768 r=8 p=1", defaultScrypt)
	}
}

func FuzzDecodeKeyFile(f *testing.F) {
	good := sealTest(f, testKey(f, 1), "alice", "").encode()
	f.Add(good)
	f.Add(sealTest(f, testKey(f, 2), "", "pw").encode())
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"kdf":{"n":1048576,"r":64,"p":64}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := decodeKeyFile(data)
		if err != nil {
			if kf != nil {
				t.Fatalf("decodeKeyFile returned a file and error %v", err)
			}
			return
		}
		// A decoded file is fully valid: it re-encodes to a file that
		// decodes to the same fields.
		if err := kf.kdf.check(); err != nil {
			t.Fatalf("decodeKeyFile accepted kdf %+v: %v", kf.kdf, err)
		}
		again, err := decodeKeyFile(kf.encode())
		if err != nil {
			t.Fatalf("decodeKeyFile(encode(decodeKeyFile(%q))) error: %v", data, err)
		}
		if !bytes.Equal(again.additionalData(), kf.additionalData()) || !bytes.Equal(again.ciphertext, kf.ciphertext) || !bytes.Equal(again.nonce, kf.nonce) {
			t.Fatalf("re-encoding %q changed it", data)
		}
		// Opening must not panic either; it is cheap only for small
		// parameters.
		if kf.kdf.N*kf.kdf.R*kf.kdf.P <= 1<<12 {
			kf.open(nil)
		}
	})
}
