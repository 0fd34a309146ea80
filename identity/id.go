package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// IDSize is the size of an ID in bytes.
const IDSize = sha256.Size

// ID is a network ID: the SHA-256 hash of an Ed25519 public key.
// Its text form is 64 lowercase hexadecimal characters.
type ID [IDSize]byte

// IDFromPublicKey returns the network ID of pub, which should be a
// 32-byte Ed25519 public key.
func IDFromPublicKey(pub ed25519.PublicKey) ID {
	return ID(sha256.Sum256(pub))
}

// ParseID parses the text form of an ID: exactly 64 hexadecimal characters.
// Upper case is accepted; nothing else is.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("identity: parse id %s: length %d, want %d hex characters", quoteShort(s), len(s), 2*IDSize)
	}
	for i := 0; i < len(s); i++ {
		if fromHexChar(s[i]) < 0 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size <= 1 {
				return id, fmt.Errorf("identity: parse id %s: invalid byte 0x%02x at offset %d", quoteShort(s), s[i], i)
			}
			return id, fmt.Errorf("identity: parse id %s: invalid character %q at offset %d", quoteShort(s), r, i)
		}
	}
	for i := range id {
		id[i] = byte(fromHexChar(s[2*i])<<4 | fromHexChar(s[2*i+1]))
	}
	return id, nil
}

// IDFromBytes returns the ID held in b, which must be exactly 32 bytes.
func IDFromBytes(b []byte) (ID, error) {
	var id ID
	if len(b) != IDSize {
		return id, fmt.Errorf("identity: id from bytes: length %d, want %d", len(b), IDSize)
	}
	copy(id[:], b)
	return id, nil
}

// String returns the 64 lowercase hexadecimal characters of id.
func (id ID) String() string {
	return hex.EncodeToString(id[:])
}

// Short returns the first 12 hexadecimal characters of id, for logs.
func (id ID) Short() string {
	return hex.EncodeToString(id[:6])
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool {
	return id == ID{}
}

// MarshalText implements [encoding.TextMarshaler].
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, 2*IDSize)
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText implements [encoding.TextUnmarshaler]; it accepts what
// [ParseID] accepts.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// fromHexChar returns the value of the hexadecimal digit c, or -1.
func fromHexChar(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// quoteShort quotes s for an error message, shortening long input.
func quoteShort(s string) string {
	const limit = 80
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
