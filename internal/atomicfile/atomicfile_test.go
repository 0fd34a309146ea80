package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, "f", []byte("one"), false); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, "f", []byte("two"), false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "two" {
		t.Errorf("content = %q, want two", got)
	}
	if err := Write(dir, "f", []byte("three"), true); !errors.Is(err, fs.ErrExist) {
		t.Errorf("exclusive Write over an existing file = %v, want fs.ErrExist", err)
	}
	st, err := os.Stat(filepath.Join(dir, "f"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, %v; want 0600", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (no temporary files left)", len(entries))
	}
}
