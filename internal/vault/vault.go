package vault

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/iop-go/iop/internal/atomicfile"
)

// Limits of a vault, in bytes.
const (
	SecretSize  = 32       // of the secret given to Open
	MaxKeyLen   = 256      // of a bucket name or a key
	MaxValueLen = 64 << 10 // of a value
	MaxSize     = 64 << 20 // of the encoded content of the whole vault
)

// Magic starts every vault file and names its format.
const Magic = "IOPVAULT1"

// kdfInfo is the HKDF info of the vault key.
const kdfInfo = "iop/vault/1"

const (
	saltSize   = 32
	headerSize = len(Magic) + saltSize // the additional data
	overhead   = headerSize + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

// Errors of a vault, matched with errors.Is.
var (
	// ErrDecrypt means the vault file does not open with the secret given:
	// the secret is not the one the vault was made with, or the file was
	// damaged.
	ErrDecrypt = errors.New("wrong key or corrupted file")
	// ErrInUse means another Vault holds the vault's lock.
	ErrInUse = errors.New("in use by another process (the running agent?)")
	// ErrClosed means the Vault was closed.
	ErrClosed = errors.New("vault closed")
	// ErrTooLarge means a key, value or the whole vault would exceed its
	// limit.
	ErrTooLarge = errors.New("too large")
)

// Vault is an open vault file. Its methods may be called concurrently.
type Vault struct {
	path      string
	dir, name string
	aead      cipher.AEAD
	salt      []byte
	maxSize   int // MaxSize, lowered by tests

	mu      sync.Mutex // guards the fields below
	buckets map[string]map[string][]byte
	lock    *os.File // nil once closed
}

// Open opens (creating if missing) the vault file at path, encrypted with a
// key derived from secret, the identity's 32-byte private key seed, via
// HKDF-SHA256 with the info "iop/vault/1" and a random per-file salt kept in
// the file header. It locks the vault until Close: a vault that is open
// elsewhere gives an error matching ErrInUse, one that does not decrypt with
// secret an error matching ErrDecrypt, and neither changes the file.
func Open(path string, secret []byte) (*Vault, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("vault %s: secret is %d bytes, want %d (an identity key seed)", path, len(secret), SecretSize)
	}
	v := &Vault{path: path, dir: filepath.Dir(path), name: filepath.Base(path), maxSize: MaxSize}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		if errors.Is(err, ErrInUse) {
			return nil, fmt.Errorf("vault %s is %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("vault %s: lock: %w", path, err)
	}
	v.lock = lock
	if err := v.load(secret); err != nil {
		unlockFile(lock)
		return nil, err
	}
	v.removeStaleTemps()
	return v, nil
}

// load reads the vault file, or creates it when missing.
func (v *Vault) load(secret []byte) error {
	data, err := readLimited(v.path, int64(MaxSize+overhead))
	if errors.Is(err, fs.ErrNotExist) {
		v.salt = make([]byte, saltSize)
		if _, err := rand.Read(v.salt); err != nil {
			return fmt.Errorf("vault %s: salt: %w", v.path, err)
		}
		if v.aead, err = newAEAD(secret, v.salt); err != nil {
			return fmt.Errorf("vault %s: %w", v.path, err)
		}
		v.buckets = make(map[string]map[string][]byte)
		return v.writeLocked(true)
	}
	if err != nil {
		return fmt.Errorf("vault %s: %w", v.path, err)
	}
	switch {
	case len(data) < len(Magic) || string(data[:len(Magic)]) != Magic:
		return fmt.Errorf("vault %s: not a vault file (no %s header)", v.path, Magic)
	case len(data) < overhead:
		return fmt.Errorf("vault %s: truncated at %d bytes: %w", v.path, len(data), ErrDecrypt)
	}
	v.salt = bytes.Clone(data[len(Magic):headerSize])
	if v.aead, err = newAEAD(secret, v.salt); err != nil {
		return fmt.Errorf("vault %s: %w", v.path, err)
	}
	nonce := data[headerSize : headerSize+chacha20poly1305.NonceSizeX]
	plain, err := v.aead.Open(nil, nonce, data[headerSize+chacha20poly1305.NonceSizeX:], data[:headerSize])
	if err != nil {
		return fmt.Errorf("vault %s: %w", v.path, ErrDecrypt)
	}
	if v.buckets, err = decode(plain); err != nil {
		return fmt.Errorf("vault %s: corrupted content: %w", v.path, err)
	}
	return nil
}

// readLimited reads the file at path, failing if it is over limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file over %d bytes: %w", limit, ErrTooLarge)
	}
	return data, nil
}

// newAEAD derives the vault key from secret and salt.
func newAEAD(secret, salt []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, salt, kdfInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return chacha20poly1305.NewX(key)
}

// removeStaleTemps removes the temporary files of writes that a crash
// interrupted. The lock guarantees no write is under way.
func (v *Vault) removeStaleTemps() {
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		return
	}
	prefix := "." + v.name + ".tmp-"
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			os.Remove(filepath.Join(v.dir, e.Name()))
		}
	}
}

// writeLocked seals the content and replaces the file with it durably.
func (v *Vault) writeLocked(exclusive bool) error {
	plain := encode(v.buckets)
	if len(plain) > v.maxSize {
		return fmt.Errorf("vault %s: content of %d bytes over the limit of %d: %w", v.path, len(plain), v.maxSize, ErrTooLarge)
	}
	out := make([]byte, headerSize+chacha20poly1305.NonceSizeX, overhead+len(plain))
	copy(out, Magic)
	copy(out[len(Magic):], v.salt)
	nonce := out[headerSize:]
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("vault %s: nonce: %w", v.path, err)
	}
	out = v.aead.Seal(out, nonce, plain, out[:headerSize])
	if err := atomicfile.Write(v.dir, v.name, out, exclusive); err != nil {
		return fmt.Errorf("vault %s: write: %w", v.path, err)
	}
	return nil
}

// checkName checks a bucket name or key.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("vault: empty %s", what)
	case len(s) > MaxKeyLen:
		return fmt.Errorf("vault: %s of %d bytes over the limit of %d: %w", what, len(s), MaxKeyLen, ErrTooLarge)
	}
	return nil
}

// checkEntry checks a bucket name, key and value against the limits.
func checkEntry(bucket, key string, value []byte) error {
	if err := checkName("bucket name", bucket); err != nil {
		return err
	}
	if err := checkName("key", key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("vault: value of %d bytes over the limit of %d: %w", len(value), MaxValueLen, ErrTooLarge)
	}
	return nil
}

// Put sets the value of key in bucket. The change is durable when Put
// returns; on error the vault is unchanged.
func (v *Vault) Put(bucket, key string, value []byte) error {
	if err := checkEntry(bucket, key, value); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return ErrClosed
	}
	b, hadBucket := v.buckets[bucket]
	if !hadBucket {
		b = make(map[string][]byte)
		v.buckets[bucket] = b
	}
	old, hadKey := b[key]
	b[key] = bytes.Clone(value)
	if err := v.writeLocked(false); err != nil {
		switch {
		case !hadBucket:
			delete(v.buckets, bucket)
		case hadKey:
			b[key] = old
		default:
			delete(b, key)
		}
		return err
	}
	return nil
}

// Get returns a copy of the value of key in bucket and whether it exists.
func (v *Vault) Get(bucket, key string) ([]byte, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return nil, false, ErrClosed
	}
	val, ok := v.buckets[bucket][key]
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(val), true, nil
}

// Delete removes key from bucket; removing a missing key does nothing. The
// change is durable when Delete returns; on error the vault is unchanged.
func (v *Vault) Delete(bucket, key string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return ErrClosed
	}
	b := v.buckets[bucket]
	old, ok := b[key]
	if !ok {
		return nil
	}
	delete(b, key)
	if len(b) == 0 {
		delete(v.buckets, bucket)
	}
	if err := v.writeLocked(false); err != nil {
		b[key] = old
		v.buckets[bucket] = b
		return err
	}
	return nil
}

// List returns a copy of the entries of bucket; a missing bucket is empty.
func (v *Vault) List(bucket string) (map[string][]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return nil, ErrClosed
	}
	b := v.buckets[bucket]
	out := make(map[string][]byte, len(b))
	for k, val := range b {
		out[k] = bytes.Clone(val)
	}
	return out, nil
}

// Buckets returns the names of the non-empty buckets, sorted.
func (v *Vault) Buckets() ([]string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return nil, ErrClosed
	}
	return slices.Sorted(maps.Keys(v.buckets)), nil
}

// OpenWait opens the vault like Open, waiting up to wait while another
// holder has it (the lock is held for one operation at a time by agents
// and commands that share a vault).
func OpenWait(path string, secret []byte, wait time.Duration) (*Vault, error) {
	deadline := time.Now().Add(wait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		v, err := Open(path, secret)
		if !errors.Is(err, ErrInUse) || !time.Now().Before(deadline) {
			return v, err
		}
		time.Sleep(pause)
	}
}

// Close releases the vault's lock. Every change is already on disk. Later
// calls of any method but Close fail with ErrClosed.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return nil
	}
	err := unlockFile(v.lock)
	v.lock = nil
	v.buckets = nil
	if err != nil {
		return fmt.Errorf("vault %s: unlock: %w", v.path, err)
	}
	return nil
}

// encode returns the plaintext form of buckets, in name and key order.
func encode(buckets map[string]map[string][]byte) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(buckets)))
	for _, name := range slices.Sorted(maps.Keys(buckets)) {
		entries := buckets[name]
		b = appendBytes(b, []byte(name))
		b = binary.AppendUvarint(b, uint64(len(entries)))
		for _, k := range slices.Sorted(maps.Keys(entries)) {
			b = appendBytes(b, []byte(k))
			b = appendBytes(b, entries[k])
		}
	}
	return b
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decode parses the plaintext form of a vault. The input is authenticated,
// but decode checks every length and order anyway.
func decode(b []byte) (map[string]map[string][]byte, error) {
	d := decoder{b: b}
	n := d.uvarint()
	buckets := make(map[string]map[string][]byte)
	prevName := ""
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := string(d.bytes(MaxKeyLen))
		cnt := d.uvarint()
		if d.err == nil && (name == "" || (i > 0 && name <= prevName) || cnt == 0) {
			d.err = fmt.Errorf("bucket %d: empty, unnamed or out of order", i)
		}
		prevName = name
		entries := make(map[string][]byte)
		prevKey := ""
		for j := uint64(0); j < cnt && d.err == nil; j++ {
			k := string(d.bytes(MaxKeyLen))
			val := d.bytes(MaxValueLen)
			if d.err == nil && (k == "" || (j > 0 && k <= prevKey)) {
				d.err = fmt.Errorf("bucket %q: key %d empty or out of order", name, j)
			}
			prevKey = k
			entries[k] = bytes.Clone(val)
		}
		buckets[name] = entries
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the content", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return buckets, nil
}

// decoder reads varints and length-prefixed bytes, remembering the first
// error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.err = fmt.Errorf("length %d over the limit %d or the %d bytes left", n, limit, len(d.b))
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// Tx is a view of the vault's content inside Update: its changes are
// written together, once, when Update's function returns nil.
type Tx struct {
	buckets map[string]map[string][]byte
	copied  map[string]bool // buckets already copied for writing
	dirty   bool
}

// Get returns the value of key in bucket (not a copy: do not modify it).
func (tx *Tx) Get(bucket, key string) ([]byte, bool) {
	val, ok := tx.buckets[bucket][key]
	return val, ok
}

// Len is the number of entries in bucket.
func (tx *Tx) Len(bucket string) int { return len(tx.buckets[bucket]) }

// Range calls fn for every entry of bucket until it returns false; values
// are not copies.
func (tx *Tx) Range(bucket string, fn func(key string, value []byte) bool) {
	for k, val := range tx.buckets[bucket] {
		if !fn(k, val) {
			return
		}
	}
}

func (tx *Tx) writable(bucket string) map[string][]byte {
	b := tx.buckets[bucket]
	if !tx.copied[bucket] {
		nb := make(map[string][]byte, len(b)+1)
		for k, val := range b {
			nb[k] = val
		}
		tx.buckets[bucket], b = nb, nb
		tx.copied[bucket] = true
	}
	return b
}

// Put sets the value of key in bucket.
func (tx *Tx) Put(bucket, key string, value []byte) error {
	if err := checkEntry(bucket, key, value); err != nil {
		return err
	}
	tx.writable(bucket)[key] = bytes.Clone(value)
	tx.dirty = true
	return nil
}

// Delete removes key from bucket.
func (tx *Tx) Delete(bucket, key string) {
	if _, ok := tx.buckets[bucket][key]; !ok {
		return
	}
	b := tx.writable(bucket)
	delete(b, key)
	if len(b) == 0 {
		delete(tx.buckets, bucket)
		delete(tx.copied, bucket)
	}
	tx.dirty = true
}

// Update runs fn on the vault's content and, when fn returns nil and
// changed something, writes every change durably at once. When fn or the
// write fails the vault is unchanged.
func (v *Vault) Update(fn func(tx *Tx) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lock == nil {
		return ErrClosed
	}
	tx := &Tx{buckets: make(map[string]map[string][]byte, len(v.buckets)), copied: make(map[string]bool)}
	for name, b := range v.buckets {
		tx.buckets[name] = b
	}
	if err := fn(tx); err != nil {
		return err
	}
	if !tx.dirty {
		return nil
	}
	old := v.buckets
	v.buckets = tx.buckets
	if err := v.writeLocked(false); err != nil {
		v.buckets = old
		return err
	}
	return nil
}
