package vault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testSecret(b byte) []byte { return bytes.Repeat([]byte{b}, SecretSize) }

func openT(t *testing.T, path string, secret []byte) *Vault {
	t.Helper()
	v, err := Open(path, secret)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.vault")
	v := openT(t, path, testSecret(1))
	puts := []struct{ bucket, key, value string }{
		{"edges", "e1", "private edge one"},
		{"edges", "e2", "private edge two"},
		{"edges", "e3", ""},
		{"notes", "k\x00\xff binary key", "\x00\x01\x02"},
		{"edges", "e1", "private edge one, changed"},
		{"gone", "x", "removed below"},
	}
	for _, p := range puts {
		if err := v.Put(p.bucket, p.key, []byte(p.value)); err != nil {
			t.Fatalf("Put(%q, %q) = %v", p.bucket, p.key, err)
		}
	}
	for _, d := range [][2]string{{"edges", "e2"}, {"gone", "x"}, {"nothing", "here"}} {
		if err := v.Delete(d[0], d[1]); err != nil {
			t.Fatalf("Delete(%q, %q) = %v", d[0], d[1], err)
		}
	}
	want := map[string]map[string][]byte{
		"edges": {"e1": []byte("private edge one, changed"), "e3": {}},
		"notes": {"k\x00\xff binary key": {0, 1, 2}},
	}
	check := func(v *Vault, when string) {
		t.Helper()
		for bucket, entries := range want {
			got, err := v.List(bucket)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(entries, got); diff != "" {
				t.Errorf("%s: List(%q) (-want +got):\n%s", when, bucket, diff)
			}
			for k, val := range entries {
				got, ok, err := v.Get(bucket, k)
				if err != nil || !ok || !bytes.Equal(got, val) {
					t.Errorf("%s: Get(%q, %q) = %q, %v, %v; want %q", when, bucket, k, got, ok, err, val)
				}
			}
		}
		if got, ok, err := v.Get("edges", "e2"); ok || err != nil {
			t.Errorf("%s: Get(deleted) = %q, %v, %v; want not found", when, got, ok, err)
		}
		if got, err := v.Buckets(); err != nil || !cmp.Equal(got, []string{"edges", "notes"}) {
			t.Errorf("%s: Buckets() = %q, %v; want [edges notes]", when, got, err)
		}
	}
	check(v, "before reopening")
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, _, err := v.Get("edges", "e1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := v.Put("edges", "e9", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	check(openT(t, path, testSecret(1)), "after reopening")

	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("vault file mode = %v, %v; want 0600", st.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte(Magic)) {
		t.Errorf("vault file starts %q, want %q", data[:min(len(data), 9)], Magic)
	}
	for _, plain := range []string{"private edge", "edges", "notes", "binary key", "e1", "e3"} {
		if bytes.Contains(data, []byte(plain)) {
			t.Errorf("vault file contains the plaintext %q", plain)
		}
	}
}

func TestGetReturnsCopies(t *testing.T) {
	v := openT(t, filepath.Join(t.TempDir(), "v"), testSecret(1))
	val := []byte("abc")
	if err := v.Put("b", "k", val); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X'
	got, _, _ := v.Get("b", "k")
	got[1] = 'Y'
	list, _ := v.List("b")
	list["k"][2] = 'Z'
	if got, _, _ := v.Get("b", "k"); string(got) != "abc" {
		t.Errorf("Get after modifying returned slices = %q, want abc", got)
	}
}

func TestWrongSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	v := openT(t, path, testSecret(1))
	if err := v.Put("b", "k", []byte("secret value")); err != nil {
		t.Fatal(err)
	}
	v.Close()
	before, _ := os.ReadFile(path)
	_, err := Open(path, testSecret(2))
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Open(wrong secret) = %v, want ErrDecrypt", err)
	}
	if want := fmt.Sprintf("vault %s: wrong key or corrupted file", path); err.Error() != want {
		t.Errorf("Open(wrong secret) = %q, want %q", err, want)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("Open with the wrong secret changed the file")
	}
	// The failed Open released the lock.
	v = openT(t, path, testSecret(1))
	if got, ok, err := v.Get("b", "k"); string(got) != "secret value" || !ok || err != nil {
		t.Errorf("Get after a failed Open = %q, %v, %v", got, ok, err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "v"), make([]byte, 16)); err == nil {
		t.Error("Open(16-byte secret) = nil error")
	}
}

func TestTamperedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	v := openT(t, path, testSecret(1))
	if err := v.Put("b", "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	v.Close()
	good, _ := os.ReadFile(path)
	tests := []struct {
		name    string
		data    []byte
		wantErr error // or nil for any error
	}{
		{"magic", flip(good, 0), nil},
		{"salt", flip(good, len(Magic)), ErrDecrypt},
		{"nonce", flip(good, headerSize), ErrDecrypt},
		{"ciphertext", flip(good, overhead), ErrDecrypt},
		{"tag", flip(good, len(good)-1), ErrDecrypt},
		{"truncated", good[:len(good)-1], ErrDecrypt},
		{"header only", good[:headerSize], ErrDecrypt},
		{"extended", append(bytes.Clone(good), 0), ErrDecrypt},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			v, err := Open(path, testSecret(1))
			if err == nil {
				v.Close()
				t.Fatal("Open(tampered) = nil error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Open(tampered) = %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "vault "+path) {
				t.Errorf("Open(tampered) = %q, want it to name the vault", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tt.data) {
				t.Error("a failed Open changed the file")
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x40
	return b
}

func TestLimits(t *testing.T) {
	v := openT(t, filepath.Join(t.TempDir(), "v"), testSecret(1))
	long := strings.Repeat("k", MaxKeyLen)
	tests := []struct {
		name        string
		bucket, key string
		value       []byte
		tooLarge    bool
	}{
		{"longest key", "b", long, nil, false},
		{"longest bucket", long, "k", nil, false},
		{"largest value", "b", "big", make([]byte, MaxValueLen), false},
		{"key too long", "b", long + "k", nil, true},
		{"bucket name too long", long + "b", "k", nil, true},
		{"value too large", "b", "k", make([]byte, MaxValueLen+1), true},
		{"empty key", "b", "", nil, false},
		{"empty bucket", "", "k", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Put(tt.bucket, tt.key, tt.value)
			wantErr := tt.tooLarge || tt.key == "" || tt.bucket == ""
			if (err != nil) != wantErr || tt.tooLarge != errors.Is(err, ErrTooLarge) {
				t.Errorf("Put(%.10q, %.10q, %d bytes) = %v; want error %v, ErrTooLarge %v", tt.bucket, tt.key, len(tt.value), err, wantErr, tt.tooLarge)
			}
		})
	}
	t.Run("whole vault", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "v")
		v := openT(t, path, testSecret(1))
		v.maxSize = 3 * MaxValueLen
		val := make([]byte, MaxValueLen)
		for i := range 2 {
			if err := v.Put("b", fmt.Sprint(i), val); err != nil {
				t.Fatalf("Put %d = %v", i, err)
			}
		}
		before, _ := os.ReadFile(path)
		if err := v.Put("b", "2", val); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Put over the vault limit = %v, want ErrTooLarge", err)
		}
		if err := v.Put("c", "new bucket", val); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Put over the vault limit = %v, want ErrTooLarge", err)
		}
		if _, ok, _ := v.Get("b", "2"); ok {
			t.Error("a Put over the limit left its entry")
		}
		if got, _ := v.Buckets(); !cmp.Equal(got, []string{"b"}) {
			t.Errorf("Buckets after failed Puts = %q, want [b]", got)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Error("a Put over the limit changed the file")
		}
		if err := v.Put("b", "1", []byte("small")); err != nil {
			t.Errorf("Put replacing a value under the limit = %v", err)
		}
	})
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	v := openT(t, path, testSecret(1))
	_, err := Open(path, testSecret(1))
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	if runtime.GOOS != "windows" {
		if want := fmt.Sprintf("vault %s is in use by another process (the running agent?)", path); err.Error() != want {
			t.Errorf("second Open = %q, want %q", err, want)
		}
	}
	if _, err := Open(path, testSecret(2)); !errors.Is(err, ErrInUse) {
		t.Errorf("second Open with another secret = %v, want ErrInUse", err)
	}
	v.Close()
	openT(t, path, testSecret(1))
}

func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	v := openT(t, path, testSecret(1))
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d-%d", w, i)
				if err := v.Put("b", key, []byte(key)); err != nil {
					t.Error(err)
					return
				}
				if got, ok, err := v.Get("b", key); !ok || err != nil || string(got) != key {
					t.Errorf("Get(%q) = %q, %v, %v", key, got, ok, err)
				}
				if _, err := v.List("b"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	v.Close()
	list, err := openT(t, path, testSecret(1)).List("b")
	if err != nil || len(list) != workers*each {
		t.Errorf("List after concurrent Puts = %d entries, %v; want %d", len(list), err, workers*each)
	}
}

// crashChildEnv names the vault a child process of TestCrashSafety writes
// to until it is killed.
const crashChildEnv = "IOP_VAULT_CRASH_CHILD"

// TestCrashSafety kills a process that is writing to a vault and checks that
// every Put it saw return survived.
func TestCrashSafety(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("kills a child process with SIGKILL, which " + runtime.GOOS + " lacks: crash safety is checked on unix only")
	}
	if testing.Short() {
		t.Skip("SIGKILLs a child process three times (about 2 s, 5–15 s under -race): skipped with -short")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "v")
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked []string
		killed := false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			key, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				continue
			}
			acked = append(acked, key)
			// Kill at different points of a write: the child writes
			// without pause, so this lands at some moment of a later Put.
			if !killed && len(acked) == 40+round*37 {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("child exited (%v) after %d acknowledged Puts before it was killed", err, len(acked))
		}
		v, err := Open(path, testSecret(7))
		if err != nil {
			t.Fatalf("round %d: Open after the crash = %v", round, err)
		}
		got, err := v.List("edges")
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range acked {
			if val, ok := got[key]; !ok || !bytes.Equal(val, crashValue(key)) {
				t.Errorf("round %d: acknowledged key %s lost or wrong after the crash", round, key)
			}
		}
		v.Close()
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("round %d: temporary file %s left after reopening", round, e.Name())
			}
		}
		t.Logf("round %d: %d acknowledged Puts, %d entries after the crash", round, len(acked), len(got))
	}
}

func crashValue(key string) []byte {
	return bytes.Repeat([]byte(key), 200)
}

// crashChild opens the vault at path and Puts entries until killed, printing
// "ack KEY" after each Put returns.
func crashChild(path string) {
	v, err := Open(path, testSecret(7))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	prefix := fmt.Sprintf("p%d-", os.Getpid())
	for i := range 100000 {
		key := fmt.Sprintf("%s%06d", prefix, i)
		if err := v.Put("edges", key, crashValue(key)); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		fmt.Fprintf(w, "ack %s\n", key)
		w.Flush()
	}
	os.Exit(3)
}

func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed")
	v, err := Open(path, testSecret(1))
	if err != nil {
		f.Fatal(err)
	}
	if err := v.Put("edges", "k", []byte("value")); err != nil {
		f.Fatal(err)
	}
	v.Close()
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add(good[:overhead])
	f.Add([]byte(Magic))
	f.Add([]byte{})
	f.Add(append([]byte(Magic), make([]byte, 100)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "v")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := Open(path, testSecret(1))
		if err != nil {
			if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
				t.Error("a failed Open changed the file")
			}
			return
		}
		// Only a sealed vault opens, such as the seed (when the fuzzing
		// worker is the process that made it).
		defer v.Close()
		if _, err := v.List("edges"); err != nil {
			t.Errorf("List after a successful Open = %v", err)
		}
	})
}

// TestDecodeRejects checks the plaintext decoder on content that only a
// holder of the key could write.
func TestDecodeRejects(t *testing.T) {
	good := encode(map[string]map[string][]byte{"a": {"k": []byte("v")}, "b": {"k": nil}})
	if _, err := decode(good); err != nil {
		t.Fatalf("decode(encode(...)) = %v", err)
	}
	tests := map[string][]byte{
		"trailing byte":   append(bytes.Clone(good), 0),
		"truncated":       good[:len(good)-1],
		"empty":           nil,
		"empty bucket":    {1, 1, 'a', 0},
		"unnamed bucket":  {1, 0, 1, 1, 'k', 0},
		"buckets unorder": {2, 1, 'b', 1, 1, 'k', 0, 1, 'a', 1, 1, 'k', 0},
		"keys unorder":    {1, 1, 'a', 2, 1, 'k', 0, 1, 'j', 0},
		"duplicate key":   {1, 1, 'a', 2, 1, 'k', 0, 1, 'k', 0},
		"huge count":      {0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad varint":      {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for name, b := range tests {
		if m, err := decode(b); err == nil {
			t.Errorf("decode(%s) = %v, want an error", name, m)
		}
	}
}

// TestUpdate: the changes of one Update are written together and survive
// a reopen; an Update whose function fails, or whose content would be too
// large, changes nothing, in memory or on disk.
func TestUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	secret := bytes.Repeat([]byte{7}, SecretSize)
	v, err := Open(path, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Put("a", "keep", []byte("1")); err != nil {
		t.Fatal(err)
	}
	err = v.Update(func(tx *Tx) error {
		if err := tx.Put("a", "x", []byte("2")); err != nil {
			return err
		}
		if err := tx.Put("b", "y", []byte("3")); err != nil {
			return err
		}
		tx.Delete("a", "keep")
		if _, ok := tx.Get("a", "keep"); ok || tx.Len("a") != 1 {
			t.Errorf("inside Update: deleted key still there, or %d entries in a", tx.Len("a"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fail := errors.New("changed my mind")
	if err := v.Update(func(tx *Tx) error {
		tx.Delete("b", "y")
		tx.Put("a", "z", []byte("4"))
		return fail
	}); !errors.Is(err, fail) {
		t.Fatalf("failing Update = %v", err)
	}
	v.maxSize = 10
	if err := v.Update(func(tx *Tx) error { return tx.Put("c", "big", bytes.Repeat([]byte{1}, 100)) }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Update over the size limit = %v", err)
	}
	v.Close()
	v, err = Open(path, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, c := range []struct {
		bucket, key string
		want        bool
	}{{"a", "keep", false}, {"a", "x", true}, {"b", "y", true}, {"a", "z", false}, {"c", "big", false}} {
		if _, ok, err := v.Get(c.bucket, c.key); err != nil || ok != c.want {
			t.Errorf("after reopen %s/%s present = %v, %v; want %v", c.bucket, c.key, ok, err, c.want)
		}
	}
}

// TestOpenWait: OpenWait waits for the holder of the vault to close it,
// and gives up with ErrInUse after its wait.
func TestOpenWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	secret := bytes.Repeat([]byte{3}, SecretSize)
	held, err := Open(path, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWait(path, secret, 20*time.Millisecond); !errors.Is(err, ErrInUse) {
		t.Fatalf("OpenWait while held = %v, want ErrInUse", err)
	}
	got := make(chan error, 1)
	go func() {
		v, err := OpenWait(path, secret, time.Minute)
		if err == nil {
			v.Close()
		}
		got <- err
	}()
	held.Close()
	if err := <-got; err != nil {
		t.Fatalf("OpenWait after the holder closed = %v", err)
	}
}
