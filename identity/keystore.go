package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/iop-go/iop/internal/atomicfile"
)

var (
	// ErrNotFound means the keystore holds no such identity.
	ErrNotFound = errors.New("identity not found")
	// ErrExists means the keystore already holds the identity, or a name
	// given to Add is already used.
	ErrExists = errors.New("identity already exists")
	// ErrWrongPassphrase means a key file could not be decrypted: the
	// passphrase is wrong or the file was altered.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrAmbiguous means a name or ID prefix given to Resolve matches more
	// than one identity.
	ErrAmbiguous = errors.New("ambiguous identity")
)

const (
	keysDir         = "keys"
	keyFileExt      = ".key"
	defaultFileName = "default"
	minPrefixLen    = 4
)

// Entry is the public part of an identity in a keystore.
type Entry struct {
	ID        ID
	Name      string
	PublicKey ed25519.PublicKey
	Created   time.Time
}

// Keystore keeps encrypted identity keys in a directory; see the package
// documentation for the layout and file format. A Keystore is safe for
// concurrent use, also by several processes: every change is one atomic
// file system operation. (Only the check that names are unique can race,
// and [Keystore.Resolve] reports the resulting ambiguity.)
type Keystore struct {
	dir    string           // <home>/keys
	scrypt scryptParams     // for new key files; lowered by tests
	now    func() time.Time // creation time of new identities
}

// OpenKeystore opens the keystore in home, creating home and home/keys
// (mode 0700) as needed.
func OpenKeystore(home string) (*Keystore, error) {
	if home == "" {
		return nil, errors.New("identity: open keystore: empty home directory")
	}
	dir := filepath.Join(home, keysDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: open keystore: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("identity: open keystore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("identity: open keystore: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("identity: open keystore: %w", err)
		}
	}
	return &Keystore{dir: dir, scrypt: defaultScrypt, now: time.Now}, nil
}

// Add encrypts k under passphrase (which may be empty) and stores it with
// the given name, which may be empty, must not be used by another
// identity, and is at most 64 bytes of printable UTF-8. The first identity
// added becomes the default. The error wraps [ErrExists] if k or the name is
// already present.
func (ks *Keystore) Add(k *Key, name string, passphrase []byte) (Entry, error) {
	if k == nil {
		return Entry{}, errors.New("identity: add: nil key")
	}
	id := k.ID()
	if err := checkName(name); err != nil {
		return Entry{}, fmt.Errorf("identity: add %s: %w", id, err)
	}
	entries, err := ks.List()
	if err != nil {
		return Entry{}, fmt.Errorf("identity: add %s: %w", id, err)
	}
	for _, e := range entries {
		if e.ID == id {
			return Entry{}, fmt.Errorf("identity: add %s: %w", id, ErrExists)
		}
		if name != "" && e.Name == name {
			return Entry{}, fmt.Errorf("identity: add %s: name %q is used by %s: %w", id, name, e.ID, ErrExists)
		}
	}
	f, err := sealKeyFile(k, name, ks.now(), passphrase, ks.scrypt)
	if err != nil {
		return Entry{}, fmt.Errorf("identity: add %s: %w", id, err)
	}
	if err := ks.store(f); err != nil {
		return Entry{}, fmt.Errorf("identity: add %s: %w", id, err)
	}
	return f.entry(), nil
}

// Import stores a key file made by [Keystore.Export], after checking its
// format and that passphrase opens it. The file keeps its name even if
// another identity has the same one (the name is authenticated and cannot
// change without re-encryption). The first identity added becomes the
// default. The error wraps [ErrWrongPassphrase] if the passphrase does not
// open the file, and [ErrExists] if the identity is already present.
func (ks *Keystore) Import(data, passphrase []byte) (Entry, error) {
	f, err := decodeKeyFile(data)
	if err != nil {
		return Entry{}, fmt.Errorf("identity: import: %w", err)
	}
	if _, err := os.Lstat(ks.path(f.id)); err == nil {
		return Entry{}, fmt.Errorf("identity: import %s: %w", f.id, ErrExists)
	}
	if _, err := f.open(passphrase); err != nil {
		return Entry{}, fmt.Errorf("identity: import %s: %w", f.id, err)
	}
	if err := ks.store(f); err != nil {
		return Entry{}, fmt.Errorf("identity: import %s: %w", f.id, err)
	}
	return f.entry(), nil
}

// store writes f as a new key file and makes it the default if there is
// none.
func (ks *Keystore) store(f *keyFile) error {
	if err := atomicfile.Write(ks.dir, f.id.String()+keyFileExt, f.encode(), true); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return err
	}
	err := atomicfile.Write(ks.dir, defaultFileName, []byte(f.id.String()+"\n"), true)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("set default: %w", err)
	}
	return nil
}

// List returns every identity in the keystore, oldest first (identities
// created at the same time are ordered by ID). It needs no passphrase.
func (ks *Keystore) List() ([]Entry, error) {
	des, err := os.ReadDir(ks.dir)
	if err != nil {
		return nil, fmt.Errorf("identity: list: %w", err)
	}
	var entries []Entry
	for _, de := range des {
		id, ok := keyFileID(de.Name())
		if !ok {
			continue // temporary files, the default file, strangers
		}
		f, err := ks.read(id)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since ReadDir
			}
			return nil, fmt.Errorf("identity: list: %w", err)
		}
		entries = append(entries, f.entry())
	}
	slices.SortFunc(entries, func(a, b Entry) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return entries, nil
}

// keyFileID returns the ID that the name of a key file stands for.
func keyFileID(name string) (ID, bool) {
	stem, ok := strings.CutSuffix(name, keyFileExt)
	if !ok {
		return ID{}, false
	}
	id, err := ParseID(stem)
	if err != nil || id.String() != stem {
		return ID{}, false
	}
	return id, true
}

// Get returns the public part of identity id. The error wraps
// [ErrNotFound] if the keystore does not hold it.
func (ks *Keystore) Get(id ID) (Entry, error) {
	f, err := ks.read(id)
	if err != nil {
		return Entry{}, fmt.Errorf("identity: get %s: %w", id, notFound(err))
	}
	return f.entry(), nil
}

// Load decrypts the key of identity id with passphrase. The error wraps
// [ErrNotFound] if the keystore does not hold it, and [ErrWrongPassphrase]
// if the passphrase does not open it.
func (ks *Keystore) Load(id ID, passphrase []byte) (*Key, error) {
	f, err := ks.read(id)
	if err != nil {
		return nil, fmt.Errorf("identity: load %s: %w", id, notFound(err))
	}
	k, err := f.open(passphrase)
	if err != nil {
		return nil, fmt.Errorf("identity: load %s: %w", id, err)
	}
	return k, nil
}

// Export returns the key file of identity id: still encrypted, and
// accepted by [Keystore.Import] in any keystore with the same passphrase.
func (ks *Keystore) Export(id ID) ([]byte, error) {
	data, err := readFile(ks.path(id))
	if err == nil {
		_, err = ks.decode(id, data)
	}
	if err != nil {
		return nil, fmt.Errorf("identity: export %s: %w", id, notFound(err))
	}
	return data, nil
}

// Resolve finds an identity from what a user typed: "" for the default
// identity, a full ID, an ID prefix of at least 4 hexadecimal characters,
// or a name. The error wraps [ErrNotFound] if nothing matches, and
// [ErrAmbiguous], listing the candidates, if several identities do.
func (ks *Keystore) Resolve(s string) (Entry, error) {
	if s == "" {
		return ks.Default()
	}
	if id, err := ParseID(s); err == nil {
		f, err := ks.read(id)
		if err != nil {
			return Entry{}, fmt.Errorf("identity: resolve %s: %w", id, notFound(err))
		}
		return f.entry(), nil
	}
	entries, err := ks.List()
	if err != nil {
		return Entry{}, fmt.Errorf("identity: resolve %s: %w", quoteShort(s), err)
	}
	prefix := ""
	if len(s) >= minPrefixLen && isHex(s) {
		prefix = strings.ToLower(s)
	}
	var found []Entry
	for _, e := range entries {
		if e.Name == s || (prefix != "" && strings.HasPrefix(e.ID.String(), prefix)) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if isHex(s) && len(s) < minPrefixLen {
			return Entry{}, fmt.Errorf("identity: resolve %q: no identity has this name, and an id prefix needs at least %d hex characters: %w", s, minPrefixLen, ErrNotFound)
		}
		return Entry{}, fmt.Errorf("identity: resolve %s: %w", quoteShort(s), ErrNotFound)
	}
	var b strings.Builder
	for i, e := range found {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.ID.String())
		if e.Name != "" {
			fmt.Fprintf(&b, " (%q)", e.Name)
		}
	}
	return Entry{}, fmt.Errorf("identity: resolve %q: matches %d identities: %s: %w", s, len(found), b.String(), ErrAmbiguous)
}

// SetDefault makes identity id the default. The error wraps [ErrNotFound]
// if the keystore does not hold it.
func (ks *Keystore) SetDefault(id ID) error {
	if _, err := ks.read(id); err != nil {
		return fmt.Errorf("identity: set default %s: %w", id, notFound(err))
	}
	if err := atomicfile.Write(ks.dir, defaultFileName, []byte(id.String()+"\n"), false); err != nil {
		return fmt.Errorf("identity: set default %s: %w", id, err)
	}
	return nil
}

// Default returns the default identity. The error wraps [ErrNotFound] if
// there is none.
func (ks *Keystore) Default() (Entry, error) {
	path := filepath.Join(ks.dir, defaultFileName)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, fmt.Errorf("identity: no default identity: %w", ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("identity: default identity: %w", err)
	}
	id, err := ParseID(strings.TrimSpace(string(data)))
	if err != nil {
		return Entry{}, fmt.Errorf("identity: default identity: %s: %w", path, err)
	}
	f, err := ks.read(id)
	if err != nil {
		return Entry{}, fmt.Errorf("identity: default identity %s: %w", id, notFound(err))
	}
	return f.entry(), nil
}

// path returns the name of the key file of id.
func (ks *Keystore) path(id ID) string {
	return filepath.Join(ks.dir, id.String()+keyFileExt)
}

// read reads and decodes the key file of id.
func (ks *Keystore) read(id ID) (*keyFile, error) {
	data, err := readFile(ks.path(id))
	if err != nil {
		return nil, err
	}
	return ks.decode(id, data)
}

// decode decodes data, the content of the key file of id.
func (ks *Keystore) decode(id ID, data []byte) (*keyFile, error) {
	f, err := decodeKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ks.path(id), err)
	}
	if f.id != id {
		return nil, fmt.Errorf("%s: holds identity %s", ks.path(id), f.id)
	}
	return f, nil
}

// notFound turns a missing file into [ErrNotFound].
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// readFile reads a regular file of at most maxKeyFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKeyFileSize)
	}
	return data, nil
}

// isHex reports whether s consists of hexadecimal digits only.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if fromHexChar(s[i]) < 0 {
			return false
		}
	}
	return true
}
