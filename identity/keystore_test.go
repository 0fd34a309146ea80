package identity

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testClock returns testTime, then one second later at every call.
type testClock struct {
	mu sync.Mutex // guards the field below
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = testTime
	}
	t := c.t
	c.t = c.t.Add(time.Second)
	return t
}

// openTestKeystore opens a keystore in home with cheap scrypt parameters.
func openTestKeystore(t testing.TB, home string) *Keystore {
	t.Helper()
	ks, err := OpenKeystore(home)
	if err != nil {
		t.Fatal(err)
	}
	ks.scrypt = testScrypt
	ks.now = new(testClock).now
	return ks
}

func mustAdd(t testing.TB, ks *Keystore, k *Key, name, pass string) Entry {
	t.Helper()
	e, err := ks.Add(k, name, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestKeystoreRoundTrip(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	for i, pass := range []string{"correct horse battery staple", ""} {
		k := testKey(t, byte(i+1))
		name := fmt.Sprintf("key%d", i)
		e, err := ks.Add(k, name, []byte(pass))
		if err != nil {
			t.Fatalf("Add(%v, %q, %q) error: %v", k, name, pass, err)
		}
		want := Entry{ID: k.ID(), Name: name, PublicKey: k.Public(), Created: e.Created}
		if diff := cmp.Diff(want, e); diff != "" {
			t.Errorf("Add entry mismatch (-want +got):\n%s", diff)
		}
		got, err := ks.Get(k.ID())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("Get(%v) mismatch (-want +got):\n%s", k.ID(), diff)
		}
		loaded, err := ks.Load(k.ID(), []byte(pass))
		if err != nil {
			t.Fatalf("Load(%v, %q) error: %v", k.ID(), pass, err)
		}
		if !bytes.Equal(loaded.Seed(), k.Seed()) || loaded.ID() != k.ID() {
			t.Errorf("Load(%v) = %v, want %v", k.ID(), loaded, k)
		}
	}

	// A reopened keystore sees the same identities.
	again, err := OpenKeystore(filepath.Dir(ks.dir))
	if err != nil {
		t.Fatal(err)
	}
	l1, err := ks.List()
	if err != nil {
		t.Fatal(err)
	}
	l2, err := again.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(l1) != 2 {
		t.Errorf("List() returned %d entries, want 2", len(l1))
	}
	if diff := cmp.Diff(l1, l2); diff != "" {
		t.Errorf("List() after reopening mismatch (-want +got):\n%s", diff)
	}
}

func TestKeystoreDefaultParams(t *testing.T) {
	ks, err := OpenKeystore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ks.scrypt != defaultScrypt {
		t.Fatalf("OpenKeystore scrypt = %+v, want %+v", ks.scrypt, defaultScrypt)
	}
	if testing.Short() {
		t.Skip("scrypt with default parameters is slow")
	}
	k := testKey(t, 1)
	mustAdd(t, ks, k, "", "pw")
	data, err := ks.Export(k.ID())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"n": 32768`)) {
		t.Errorf("key file does not use N=32768:\n%s", data)
	}
	if _, err := ks.Load(k.ID(), []byte("pw")); err != nil {
		t.Errorf("Load with default parameters: %v", err)
	}
}

func TestKeystoreWrongPassphrase(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	k := testKey(t, 1)
	mustAdd(t, ks, k, "alice", "secret")
	// (Not "secret\x00": scrypt's HMAC pads the passphrase with zeros, so
	// trailing zero bytes make no difference.)
	for _, pass := range []string{"", "Secret", "secret ", "secre", "\x00secret"} {
		got, err := ks.Load(k.ID(), []byte(pass))
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("Load(%v, %q) = %v, %v; want error %v", k.ID(), pass, got, err, ErrWrongPassphrase)
		}
	}

	// An empty passphrase is a passphrase like any other.
	k2 := testKey(t, 2)
	mustAdd(t, ks, k2, "", "")
	if _, err := ks.Load(k2.ID(), []byte("x")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Load(%v, %q) error = %v, want %v", k2.ID(), "x", err, ErrWrongPassphrase)
	}
	if _, err := ks.Load(k2.ID(), nil); err != nil {
		t.Errorf("Load(%v, nil) error: %v", k2.ID(), err)
	}
}

func TestKeystoreAddErrors(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	k1, k2, k3 := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	mustAdd(t, ks, k1, "alice", "pw")
	mustAdd(t, ks, k2, "", "pw")
	mustAdd(t, ks, k3, "", "pw") // several identities may have no name

	tests := []struct {
		name    string
		k       *Key
		kname   string
		wantErr error // nil means any error
		substr  string
	}{
		{"same key", k1, "other", ErrExists, k1.ID().String()},
		{"same key no name", k2, "", ErrExists, ""},
		{"same name", testKey(t, 4), "alice", ErrExists, `name "alice" is used by ` + k1.ID().String()},
		{"nil key", nil, "x", nil, "nil key"},
		{"long name", testKey(t, 4), strings.Repeat("x", 65), nil, "65 bytes"},
		{"control in name", testKey(t, 4), "a\tb", nil, "control"},
		{"invalid utf-8 name", testKey(t, 4), "a\xffb", nil, "invalid utf-8"},
		{"name is an id", testKey(t, 4), k2.ID().String(), nil, "must not be an id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ks.Add(tt.k, tt.kname, []byte("pw"))
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.substr) {
				t.Fatalf("Add(%v, %q) error = %v, want %v containing %q", tt.k, tt.kname, err, tt.wantErr, tt.substr)
			}
			if !strings.HasPrefix(err.Error(), "identity: add") {
				t.Errorf("error %q lacks the prefix %q", err, "identity: add")
			}
		})
	}
	if l, _ := ks.List(); len(l) != 3 {
		t.Errorf("after failed adds List() has %d entries, want 3", len(l))
	}
}

func TestKeystoreNotFound(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	if l, err := ks.List(); err != nil || len(l) != 0 {
		t.Errorf("List() of a new keystore = %v, %v; want empty, nil", l, err)
	}
	if _, err := ks.Default(); !errors.Is(err, ErrNotFound) {
		t.Errorf("Default() of a new keystore error = %v, want %v", err, ErrNotFound)
	}
	if _, err := ks.Resolve(""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(\"\") of a new keystore error = %v, want %v", err, ErrNotFound)
	}
	id := testKey(t, 1).ID()
	if _, err := ks.Get(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(%v) error = %v, want %v", id, err, ErrNotFound)
	}
	if _, err := ks.Load(id, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(%v) error = %v, want %v", id, err, ErrNotFound)
	}
	if _, err := ks.Export(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Export(%v) error = %v, want %v", id, err, ErrNotFound)
	}
	if err := ks.SetDefault(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetDefault(%v) error = %v, want %v", id, err, ErrNotFound)
	}
	if _, err := OpenKeystore(""); err == nil {
		t.Errorf("OpenKeystore(\"\") error = nil, want error")
	}
}

func TestKeystoreListOrder(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	var clock time.Time
	ks.now = func() time.Time { return clock }
	keys := []*Key{testKey(t, 1), testKey(t, 2), testKey(t, 3), testKey(t, 4)}
	created := []time.Time{testTime.Add(time.Hour), testTime, testTime.Add(time.Hour), testTime.Add(-time.Hour)}
	for i, k := range keys {
		clock = created[i]
		mustAdd(t, ks, k, "", "")
	}
	byID := func(a, b *Key) (*Key, *Key) {
		if a.ID().String() < b.ID().String() {
			return a, b
		}
		return b, a
	}
	first, second := byID(keys[0], keys[2])
	want := []ID{keys[3].ID(), keys[1].ID(), first.ID(), second.ID()}
	l, err := ks.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []ID
	for _, e := range l {
		got = append(got, e.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List() order mismatch (-want +got):\n%s", diff)
	}
}

func TestKeystoreDefault(t *testing.T) {
	home := t.TempDir()
	ks := openTestKeystore(t, home)
	k1, k2 := testKey(t, 1), testKey(t, 2)
	mustAdd(t, ks, k1, "first", "pw")
	mustAdd(t, ks, k2, "second", "pw")
	if e, err := ks.Default(); err != nil || e.ID != k1.ID() {
		t.Fatalf("Default() = %v, %v; want the first identity %v", e.ID, err, k1.ID())
	}
	if err := ks.SetDefault(k2.ID()); err != nil {
		t.Fatal(err)
	}
	if e, err := openTestKeystore(t, home).Default(); err != nil || e.ID != k2.ID() {
		t.Fatalf("Default() after SetDefault and reopening = %v, %v; want %v", e.ID, err, k2.ID())
	}
	if e, err := ks.Resolve(""); err != nil || e.ID != k2.ID() {
		t.Fatalf("Resolve(\"\") = %v, %v; want %v", e.ID, err, k2.ID())
	}

	// A default naming a removed identity is reported as such.
	if err := os.Remove(ks.path(k2.ID())); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Default(); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), k2.ID().String()) {
		t.Errorf("Default() naming a removed identity error = %v, want %v naming %v", err, ErrNotFound, k2.ID())
	}
	// A garbled default file is an error, not a panic.
	if err := os.WriteFile(filepath.Join(ks.dir, defaultFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Default(); err == nil || !strings.Contains(err.Error(), "parse id") {
		t.Errorf("Default() with a garbled default file error = %v, want a parse error", err)
	}
}

// keysWithCommonPrefix returns two deterministic keys whose IDs share
// their first four hex characters.
func keysWithCommonPrefix(t testing.TB) (*Key, *Key) {
	t.Helper()
	seen := make(map[string]*Key)
	seed := make([]byte, SeedSize)
	for i := 0; i < 1<<20; i++ {
		seed[0], seed[1], seed[2] = byte(i), byte(i>>8), byte(i>>16)
		k, err := NewKeyFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		p := k.ID().String()[:4]
		if o, ok := seen[p]; ok {
			return o, k
		}
		seen[p] = k
	}
	t.Fatal("no common prefix found")
	return nil, nil
}

func TestKeystoreResolve(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	a, b := keysWithCommonPrefix(t) // share 4 hex characters
	c := testKey(t, 1)
	d := testKey(t, 2)
	mustAdd(t, ks, c, "carol", "")
	mustAdd(t, ks, a, "alice", "")
	mustAdd(t, ks, b, "bob", "")
	// dave's name is a prefix of carol's ID.
	mustAdd(t, ks, d, c.ID().String()[:6], "")

	aHex, bHex, cHex := a.ID().String(), b.ID().String(), c.ID().String()
	common := 4
	for aHex[common] == bHex[common] {
		common++
	}
	missing := testKey(t, 3).ID().String()

	tests := []struct {
		in      string
		want    ID     // if no error
		wantErr error  // ErrNotFound, ErrAmbiguous or nil
		listed  []ID   // candidates that the error must name
		substr  string // in the error
	}{
		{in: "", want: c.ID()},
		{in: aHex, want: a.ID()},
		{in: strings.ToUpper(bHex), want: b.ID()},
		{in: "alice", want: a.ID()},
		{in: "bob", want: b.ID()},
		{in: aHex[:common+1], want: a.ID()},
		{in: strings.ToUpper(bHex[:common+1]), want: b.ID()},
		{in: aHex[:4], wantErr: ErrAmbiguous, listed: []ID{a.ID(), b.ID()}, substr: `"alice"`},
		{in: cHex[:6], wantErr: ErrAmbiguous, listed: []ID{c.ID(), d.ID()}, substr: "matches 2 identities"},
		{in: cHex[:7], want: c.ID()},
		{in: "Alice", wantErr: ErrNotFound},
		{in: "nobody", wantErr: ErrNotFound},
		{in: missing, wantErr: ErrNotFound},
		{in: missing[:12], wantErr: ErrNotFound},
		{in: cHex[:3], wantErr: ErrNotFound, substr: "at least 4 hex characters"},
		{in: cHex + "0", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ks.Resolve(tt.in)
			if tt.wantErr == nil {
				if err != nil || e.ID != tt.want {
					t.Fatalf("Resolve(%q) = %v, %v; want %v", tt.in, e.ID, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Resolve(%q) = %v, %v; want error %v", tt.in, e.ID, err, tt.wantErr)
			}
			for _, id := range tt.listed {
				if !strings.Contains(err.Error(), id.String()) {
					t.Errorf("Resolve(%q) error %q does not list candidate %v", tt.in, err, id)
				}
			}
			if !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("Resolve(%q) error %q does not contain %q", tt.in, err, tt.substr)
			}
		})
	}
}

func TestKeystoreExportImport(t *testing.T) {
	src := openTestKeystore(t, t.TempDir())
	dst := openTestKeystore(t, t.TempDir())
	k1, k2 := testKey(t, 1), testKey(t, 2)
	e1 := mustAdd(t, src, k1, "alice", "pw1")
	mustAdd(t, src, k2, "bob", "pw2")
	mustAdd(t, dst, testKey(t, 3), "alice", "pw3") // same name, other identity

	data, err := src.Export(k1.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(data, []byte("pw2")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Import with the wrong passphrase error = %v, want %v", err, ErrWrongPassphrase)
	}
	if _, err := dst.Get(k1.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a failed Import, Get error = %v, want %v", err, ErrNotFound)
	}
	got, err := dst.Import(data, []byte("pw1"))
	if err != nil {
		t.Fatalf("Import error: %v", err)
	}
	if diff := cmp.Diff(e1, got); diff != "" {
		t.Errorf("Import entry mismatch (-want +got):\n%s", diff)
	}
	k, err := dst.Load(k1.ID(), []byte("pw1"))
	if err != nil || !bytes.Equal(k.Seed(), k1.Seed()) {
		t.Fatalf("Load of the imported key = %v, %v; want %v", k, err, k1)
	}
	if _, err := dst.Import(data, []byte("pw1")); !errors.Is(err, ErrExists) {
		t.Errorf("second Import error = %v, want %v", err, ErrExists)
	}
	again, err := dst.Export(k1.ID())
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("Export after Import = %s, %v; want the exported bytes", again, err)
	}
	// Both "alice"s are now in dst, and Resolve says so.
	if _, err := dst.Resolve("alice"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Resolve(%q) with two imports named alice error = %v, want %v", "alice", err, ErrAmbiguous)
	}

	// The first import into an empty keystore becomes its default.
	empty := openTestKeystore(t, t.TempDir())
	if _, err := empty.Import(data, []byte("pw1")); err != nil {
		t.Fatal(err)
	}
	if e, err := empty.Default(); err != nil || e.ID != k1.ID() {
		t.Errorf("Default() after the first Import = %v, %v; want %v", e.ID, err, k1.ID())
	}

	for _, bad := range [][]byte{nil, []byte("{}"), data[:len(data)/2], bytes.Repeat([]byte(" "), maxKeyFileSize+1)} {
		if _, err := dst.Import(bad, []byte("pw1")); err == nil || !strings.HasPrefix(err.Error(), "identity: import: decode key file: ") {
			t.Errorf("Import(%.40q) error = %v, want a decoding error", bad, err)
		}
	}
}

func TestKeystorePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	home := filepath.Join(t.TempDir(), "a", "home")
	ks := openTestKeystore(t, home)
	k := testKey(t, 1)
	mustAdd(t, ks, k, "alice", "pw")
	if err := ks.SetDefault(k.ID()); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, ks, testKey(t, 2), "", "pw")
	if _, err := openTestKeystore(t, t.TempDir()).Import(mustExport(t, ks, k.ID()), []byte("pw")); err != nil {
		t.Fatal(err)
	}

	wantMode := map[string]os.FileMode{
		home:                                   0o700,
		ks.dir:                                 0o700,
		ks.path(k.ID()):                        0o600,
		ks.path(testKey(t, 2).ID()):            0o600,
		filepath.Join(ks.dir, defaultFileName): 0o600,
	}
	for path, want := range wantMode {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", path, got, want)
		}
	}
	des, err := os.ReadDir(ks.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 3 {
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		t.Errorf("keys directory holds %v, want two key files and the default (no temporary files)", names)
	}

	// A keys directory open to others is closed on opening.
	if err := os.Chmod(ks.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openTestKeystore(t, home)
	if fi, err := os.Stat(ks.dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("OpenKeystore left keys directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func mustExport(t testing.TB, ks *Keystore, id ID) []byte {
	t.Helper()
	data, err := ks.Export(id)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestKeystoreTamperedFile alters key files on disk.
func TestKeystoreTamperedFile(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	k1, k2 := testKey(t, 1), testKey(t, 2)
	mustAdd(t, ks, k1, "alice", "pw")
	mustAdd(t, ks, k2, "bob", "pw")
	orig := mustExport(t, ks, k1.ID())
	other := mustExport(t, ks, k2.ID())

	t.Run("renamed", func(t *testing.T) {
		m := jsonMap(t, orig)
		m["name"] = "mallory"
		writeRaw(t, ks.path(k1.ID()), mustMarshal(t, m))
		t.Cleanup(func() { writeRaw(t, ks.path(k1.ID()), orig) })
		// Listing trusts the clear text, but the key does not open.
		if e, err := ks.Get(k1.ID()); err != nil || e.Name != "mallory" {
			t.Errorf("Get = %+v, %v", e, err)
		}
		if _, err := ks.Load(k1.ID(), []byte("pw")); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("Load of a renamed file error = %v, want %v", err, ErrWrongPassphrase)
		}
	})
	t.Run("swapped", func(t *testing.T) {
		// bob's file stored under alice's ID.
		writeRaw(t, ks.path(k1.ID()), other)
		t.Cleanup(func() { writeRaw(t, ks.path(k1.ID()), orig) })
		for name, err := range map[string]error{
			"Get":    second(ks.Get(k1.ID())),
			"Load":   second(ks.Load(k1.ID(), []byte("pw"))),
			"Export": second(ks.Export(k1.ID())),
			"List":   second(ks.List()),
		} {
			if err == nil || !strings.Contains(err.Error(), "holds identity "+k2.ID().String()) {
				t.Errorf("%s of a swapped file error = %v, want it to name the file's identity", name, err)
			}
		}
	})
	t.Run("garbage", func(t *testing.T) {
		writeRaw(t, ks.path(k1.ID()), []byte("garbage"))
		t.Cleanup(func() { writeRaw(t, ks.path(k1.ID()), orig) })
		for name, err := range map[string]error{
			"Get":  second(ks.Get(k1.ID())),
			"Load": second(ks.Load(k1.ID(), []byte("pw"))),
			"List": second(ks.List()),
		} {
			if err == nil || !strings.Contains(err.Error(), ks.path(k1.ID())) || errors.Is(err, ErrNotFound) {
				t.Errorf("%s of a garbled file error = %v, want it to name the file", name, err)
			}
		}
	})
	t.Run("huge", func(t *testing.T) {
		writeRaw(t, ks.path(k1.ID()), bytes.Repeat([]byte(" "), maxKeyFileSize+1))
		t.Cleanup(func() { writeRaw(t, ks.path(k1.ID()), orig) })
		if _, err := ks.Get(k1.ID()); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("Get of a huge file error = %v, want a size error", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		k3 := testKey(t, 3)
		if err := os.Mkdir(ks.path(k3.ID()), 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(ks.path(k3.ID())) })
		if _, err := ks.Get(k3.ID()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Get of a directory error = %v, want %q", err, "not a regular file")
		}
	})
	if _, err := ks.Load(k1.ID(), []byte("pw")); err != nil {
		t.Errorf("Load after restoring the file: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func writeRaw(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeystoreIgnoresOtherFiles(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	k := testKey(t, 1)
	mustAdd(t, ks, k, "alice", "pw")
	data := mustExport(t, ks, k.ID())
	for _, name := range []string{
		"README",
		"." + k.ID().String() + ".key.tmp-123", // left by a crash
		strings.ToUpper(k.ID().String()) + ".key",
		k.ID().String()[:10] + ".key",
		k.ID().String() + ".key.bak",
	} {
		writeRaw(t, filepath.Join(ks.dir, name), data)
	}
	l, err := ks.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 1 || l[0].ID != k.ID() {
		t.Errorf("List() = %v, want only %v", l, k.ID())
	}
}

func TestKeystoreConcurrentAdd(t *testing.T) {
	ks := openTestKeystore(t, t.TempDir())
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() { _, errs[i] = ks.Add(testKey(t, 1), "", nil) })            // the same key
		wg.Go(func() { _, errs[n+i] = ks.Add(testKey(t, byte(10+i)), "", nil) }) // other keys
	}
	wg.Wait()
	same := 0
	for i, err := range errs {
		switch {
		case i < n && err == nil:
			same++
		case i < n && !errors.Is(err, ErrExists):
			t.Errorf("Add of the same key error = %v, want nil or %v", err, ErrExists)
		case i >= n && err != nil:
			t.Errorf("Add of a new key error = %v", err)
		}
	}
	if same != 1 {
		t.Errorf("%d concurrent Adds of the same key succeeded, want 1", same)
	}
	l, err := ks.List()
	if err != nil || len(l) != n+1 {
		t.Errorf("List() = %d entries, %v; want %d", len(l), err, n+1)
	}
	if _, err := ks.Default(); err != nil {
		t.Errorf("Default() after concurrent adds: %v", err)
	}
}
