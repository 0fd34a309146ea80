package identity

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// The key file format; see the package documentation.
const (
	keyFileVersion = 1
	maxKeyFileSize = 64 << 10

	kdfScrypt     = "scrypt"
	cipherXChaCha = "xchacha20poly1305"

	saltSize    = 32 // salt written in new files
	minSaltSize = 16
	maxSaltSize = 64

	// Bounds on scrypt parameters read from a file.
	maxScryptN      = 1 << 20
	maxScryptRP     = 64      // r·p
	maxScryptMemory = 1 << 30 // 128·r·N bytes
	maxScryptWork   = 1 << 24 // N·r·p

	maxNameLen = 64
)

// scryptParams are the cost parameters of scrypt.
type scryptParams struct {
	N, R, P int
}

// defaultScrypt are the parameters of new key files: 32 MiB and about
// 100 ms on a current machine.
var defaultScrypt = scryptParams{N: 1 << 15, R: 8, P: 1}

// check reports whether p is within the bounds accepted from a key file.
func (p scryptParams) check() error {
	switch {
	case p.N < 2 || p.N&(p.N-1) != 0:
		return fmt.Errorf("kdf n %d is not a power of two greater than 1", p.N)
	case p.N > maxScryptN:
		return fmt.Errorf("kdf n %d exceeds %d", p.N, maxScryptN)
	case p.R < 1 || p.P < 1:
		return fmt.Errorf("kdf r %d and p %d must be positive", p.R, p.P)
	case p.R > maxScryptRP || p.P > maxScryptRP || p.R*p.P > maxScryptRP:
		return fmt.Errorf("kdf r %d times p %d exceeds %d", p.R, p.P, maxScryptRP)
	case 128*int64(p.R)*int64(p.N) > maxScryptMemory:
		return fmt.Errorf("kdf n %d and r %d need more than %d bytes of memory", p.N, p.R, maxScryptMemory)
	case int64(p.N)*int64(p.R)*int64(p.P) > maxScryptWork:
		return fmt.Errorf("kdf n %d, r %d and p %d exceed the work limit %d", p.N, p.R, p.P, maxScryptWork)
	}
	return nil
}

// keyFile is a decoded and validated key file.
type keyFile struct {
	id         ID
	name       string
	created    time.Time
	createdRaw string // as written in the file, and authenticated
	pub        ed25519.PublicKey
	kdf        scryptParams
	salt       []byte
	nonce      []byte
	ciphertext []byte
}

// The JSON form of a key file.
type (
	keyFileJSON struct {
		Version   int         `json:"version"`
		ID        string      `json:"id"`
		Name      string      `json:"name"`
		Created   string      `json:"created"`
		PublicKey string      `json:"public_key"`
		KDF       *kdfJSON    `json:"kdf"`
		Cipher    *cipherJSON `json:"cipher"`
	}
	kdfJSON struct {
		Name string `json:"name"`
		N    int    `json:"n"`
		R    int    `json:"r"`
		P    int    `json:"p"`
		Salt string `json:"salt"`
	}
	cipherJSON struct {
		Name       string `json:"name"`
		Nonce      string `json:"nonce"`
		Ciphertext string `json:"ciphertext"`
	}
)

var b64 = base64.StdEncoding.Strict()

// entry returns the public part of f.
func (f *keyFile) entry() Entry {
	return Entry{
		ID:        f.id,
		Name:      f.name,
		PublicKey: append(ed25519.PublicKey(nil), f.pub...),
		Created:   f.created,
	}
}

// sealKeyFile encrypts k under passphrase with the scrypt parameters kdf.
func sealKeyFile(k *Key, name string, created time.Time, passphrase []byte, kdf scryptParams) (*keyFile, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	createdRaw := created.UTC().Format(time.RFC3339Nano)
	created, err := time.Parse(time.RFC3339Nano, createdRaw)
	if err != nil {
		return nil, fmt.Errorf("created time: %w", err)
	}
	f := &keyFile{
		id:         k.ID(),
		name:       name,
		created:    created,
		createdRaw: createdRaw,
		pub:        k.Public(),
		kdf:        kdf,
		salt:       make([]byte, saltSize),
		nonce:      make([]byte, chacha20poly1305.NonceSizeX),
	}
	rand.Read(f.salt)
	rand.Read(f.nonce)
	aead, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	seed := k.Seed()
	defer clear(seed)
	f.ciphertext = aead.Seal(nil, f.nonce, seed, f.additionalData())
	return f, nil
}

// open decrypts f with passphrase. The error wraps [ErrWrongPassphrase] if
// the passphrase is wrong or the file was altered.
func (f *keyFile) open(passphrase []byte) (*Key, error) {
	aead, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	seed, err := aead.Open(nil, f.nonce, f.ciphertext, f.additionalData())
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer clear(seed)
	k, err := NewKeyFromSeed(seed)
	if err != nil {
		return nil, err
	}
	if k.ID() != f.id {
		return nil, fmt.Errorf("decrypted key has id %s, want %s", k.ID(), f.id)
	}
	return k, nil
}

// aead derives the file key from passphrase.
func (f *keyFile) aead(passphrase []byte) (cipher.AEAD, error) {
	if err := f.kdf.check(); err != nil {
		return nil, err
	}
	key, err := scrypt.Key(passphrase, f.salt, f.kdf.N, f.kdf.R, f.kdf.P, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	defer clear(key)
	return chacha20poly1305.NewX(key)
}

// additionalData encodes every field of f but the nonce and ciphertext,
// each length-prefixed, for the AEAD to authenticate.
func (f *keyFile) additionalData() []byte {
	b := []byte("iop key file\x00")
	b = binary.BigEndian.AppendUint32(b, keyFileVersion)
	b = appendField(b, f.id[:])
	b = appendField(b, []byte(f.name))
	b = appendField(b, []byte(f.createdRaw))
	b = appendField(b, f.pub)
	b = appendField(b, []byte(kdfScrypt))
	b = binary.BigEndian.AppendUint64(b, uint64(f.kdf.N))
	b = binary.BigEndian.AppendUint64(b, uint64(f.kdf.R))
	b = binary.BigEndian.AppendUint64(b, uint64(f.kdf.P))
	b = appendField(b, f.salt)
	b = appendField(b, []byte(cipherXChaCha))
	return b
}

func appendField(b, field []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(field)))
	return append(b, field...)
}

// encode returns the JSON form of f.
func (f *keyFile) encode() []byte {
	j := keyFileJSON{
		Version:   keyFileVersion,
		ID:        f.id.String(),
		Name:      f.name,
		Created:   f.createdRaw,
		PublicKey: b64.EncodeToString(f.pub),
		KDF: &kdfJSON{
			Name: kdfScrypt,
			N:    f.kdf.N,
			R:    f.kdf.R,
			P:    f.kdf.P,
			Salt: b64.EncodeToString(f.salt),
		},
		Cipher: &cipherJSON{
			Name:       cipherXChaCha,
			Nonce:      b64.EncodeToString(f.nonce),
			Ciphertext: b64.EncodeToString(f.ciphertext),
		},
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		panic("identity: encode key file: " + err.Error()) // cannot happen: only strings and ints
	}
	return append(b, '\n')
}

// decodeKeyFile decodes and validates an untrusted key file. It does not
// decrypt it.
func decodeKeyFile(data []byte) (*keyFile, error) {
	f, err := decodeKeyFileFields(data)
	if err != nil {
		return nil, fmt.Errorf("decode key file: %w", err)
	}
	return f, nil
}

func decodeKeyFileFields(data []byte) (*keyFile, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("size %d exceeds %d bytes", len(data), maxKeyFileSize)
	}
	// Look at the version first, so that a file of a later version is
	// reported as such rather than as having unknown fields.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("invalid json: %w", err)
	}
	if v.Version == nil {
		return nil, errors.New("missing version")
	}
	if *v.Version != keyFileVersion {
		return nil, fmt.Errorf("unsupported version %d, want %d", *v.Version, keyFileVersion)
	}

	var j keyFileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("invalid json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after json object")
	}

	f := new(keyFile)
	var err error
	if f.id, err = ParseID(j.ID); err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	if err := checkName(j.Name); err != nil {
		return nil, err
	}
	f.name = j.Name
	if f.created, err = time.Parse(time.RFC3339Nano, j.Created); err != nil {
		return nil, fmt.Errorf("created: %w", err)
	}
	f.createdRaw = j.Created
	if f.pub, err = decodeBase64("public_key", j.PublicKey, PublicKeySize, PublicKeySize); err != nil {
		return nil, err
	}
	if got := IDFromPublicKey(f.pub); got != f.id {
		return nil, fmt.Errorf("public key has id %s, want %s", got, f.id)
	}

	if j.KDF == nil {
		return nil, errors.New("missing kdf")
	}
	if j.KDF.Name != kdfScrypt {
		return nil, fmt.Errorf("unsupported kdf %s, want %q", quoteShort(j.KDF.Name), kdfScrypt)
	}
	f.kdf = scryptParams{N: j.KDF.N, R: j.KDF.R, P: j.KDF.P}
	if err := f.kdf.check(); err != nil {
		return nil, err
	}
	if f.salt, err = decodeBase64("kdf salt", j.KDF.Salt, minSaltSize, maxSaltSize); err != nil {
		return nil, err
	}

	if j.Cipher == nil {
		return nil, errors.New("missing cipher")
	}
	if j.Cipher.Name != cipherXChaCha {
		return nil, fmt.Errorf("unsupported cipher %s, want %q", quoteShort(j.Cipher.Name), cipherXChaCha)
	}
	const nonceSize = chacha20poly1305.NonceSizeX
	if f.nonce, err = decodeBase64("cipher nonce", j.Cipher.Nonce, nonceSize, nonceSize); err != nil {
		return nil, err
	}
	const ctSize = SeedSize + chacha20poly1305.Overhead
	if f.ciphertext, err = decodeBase64("cipher ciphertext", j.Cipher.Ciphertext, ctSize, ctSize); err != nil {
		return nil, err
	}
	return f, nil
}

// decodeBase64 decodes the base64 field named what, which must decode to
// between min and max bytes.
func decodeBase64(what, s string, minLen, maxLen int) ([]byte, error) {
	if len(s) > b64.EncodedLen(maxLen) {
		return nil, fmt.Errorf("%s: %d base64 characters, want at most %d", what, len(s), b64.EncodedLen(maxLen))
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) < minLen || len(b) > maxLen {
		if minLen == maxLen {
			return nil, fmt.Errorf("%s: %d bytes, want %d", what, len(b), minLen)
		}
		return nil, fmt.Errorf("%s: %d bytes, want %d to %d", what, len(b), minLen, maxLen)
	}
	return b, nil
}

// checkName reports whether name can name an identity: at most 64 bytes of
// UTF-8 without control characters, and not itself an ID.
func checkName(name string) error {
	switch {
	case len(name) > maxNameLen:
		return fmt.Errorf("name %s: %d bytes, want at most %d", quoteShort(name), len(name), maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q: invalid utf-8", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("name %q: contains control or replacement character %U", name, r)
		}
	}
	if _, err := ParseID(name); err == nil {
		return fmt.Errorf("name %q: must not be an id", name)
	}
	return nil
}
