package graph

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Limits of profile fields, in bytes.
const (
	MaxTypeLen       = 64
	MaxNameLen       = 64
	MaxExtraLen      = 200
	MaxImageSize     = 20 * 1024
	MaxThumbnailSize = 5 * 1024
)

// Version is the record format version this package writes (SemVer bytes).
var Version = [3]byte{1, 0, 0}

// FieldError reports an invalid field of a record. Field is the protocol's
// camelCase name without the record prefix, e.g. "name" or "extraData".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrInvalidSignature reports a record whose signature does not verify.
var ErrInvalidSignature = errors.New("invalid signature")

// Profile is a graph node: the public profile of one identity.
type Profile struct {
	Version       [3]byte
	PublicKey     ed25519.PublicKey
	Type          string
	Name          string
	Location      Location
	Extra         string
	ImageHash     []byte // SHA-256 of the profile image, or nil
	ThumbnailHash []byte // SHA-256 of the thumbnail, or nil
	Sequence      uint64
	Timestamp     time.Time
}

// ID is the network ID of the profile's owner.
func (p *Profile) ID() identity.ID { return identity.IDFromPublicKey(p.PublicKey) }

// ValidateType checks an identity type as used at registration: non-empty,
// at most MaxTypeLen bytes of UTF-8, and no '*' (a wildcard in searches).
func ValidateType(t string) error {
	switch {
	case t == "":
		return errors.New("empty")
	case len(t) > MaxTypeLen:
		return fmt.Errorf("%d bytes, limit %d", len(t), MaxTypeLen)
	case !utf8.ValidString(t):
		return errors.New("not valid UTF-8")
	case strings.Contains(t, "*"):
		return errors.New("contains '*'")
	}
	return nil
}

// Validate checks every field against the protocol's limits and returns a
// *FieldError naming the first offending field.
func (p *Profile) Validate() error {
	if p.Version[0] == 0 && p.Version[1] == 0 && p.Version[2] == 0 {
		return fieldErr("version", "0.0.0 is not a valid version")
	}
	if p.Version[0] != Version[0] {
		return fieldErr("version", "unsupported major version %d", p.Version[0])
	}
	if len(p.PublicKey) != ed25519.PublicKeySize {
		return fieldErr("publicKey", "%d bytes, want %d", len(p.PublicKey), ed25519.PublicKeySize)
	}
	if err := ValidateType(p.Type); err != nil {
		return fieldErr("type", "%v", err)
	}
	switch {
	case p.Name == "":
		return fieldErr("name", "empty")
	case len(p.Name) > MaxNameLen:
		return fieldErr("name", "%d bytes, limit %d", len(p.Name), MaxNameLen)
	case !utf8.ValidString(p.Name):
		return fieldErr("name", "not valid UTF-8")
	}
	if err := p.Location.validate(); err != nil {
		return err
	}
	switch {
	case len(p.Extra) > MaxExtraLen:
		return fieldErr("extraData", "%d bytes, limit %d", len(p.Extra), MaxExtraLen)
	case !utf8.ValidString(p.Extra):
		return fieldErr("extraData", "not valid UTF-8")
	}
	if len(p.ImageHash) != 0 && len(p.ImageHash) != sha256.Size {
		return fieldErr("profileImageHash", "%d bytes, want 0 or %d", len(p.ImageHash), sha256.Size)
	}
	if len(p.ThumbnailHash) != 0 && len(p.ThumbnailHash) != sha256.Size {
		return fieldErr("thumbnailImageHash", "%d bytes, want 0 or %d", len(p.ThumbnailHash), sha256.Size)
	}
	if p.Sequence == 0 {
		return fieldErr("sequence", "must be at least 1")
	}
	return nil
}

// SignedProfile is a profile with the exact bytes its owner signed.
type SignedProfile struct {
	Profile   Profile
	Raw       []byte // the encoded ProfileInformation that was signed
	Signature []byte
}

// ID is the network ID of the profile's owner.
func (s *SignedProfile) ID() identity.ID { return s.Profile.ID() }

// Proto returns the wire form of s.
func (s *SignedProfile) Proto() *wirepb.SignedProfile {
	return &wirepb.SignedProfile{Profile: s.Raw, Signature: s.Signature}
}

// Sign validates p, sets its version and public key from k, encodes it and
// signs the encoding.
func Sign(k *identity.Key, p Profile) (*SignedProfile, error) {
	p.Version = Version
	p.PublicKey = k.Public()
	if p.Timestamp.IsZero() {
		p.Timestamp = time.Now()
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&wirepb.ProfileInformation{
		Version:            p.Version[:],
		PublicKey:          p.PublicKey,
		Type:               p.Type,
		Name:               p.Name,
		Latitude:           p.Location.Lat,
		Longitude:          p.Location.Lon,
		ExtraData:          p.Extra,
		ProfileImageHash:   p.ImageHash,
		ThumbnailImageHash: p.ThumbnailHash,
		Sequence:           p.Sequence,
		Timestamp:          p.Timestamp.UnixMilli(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	p.Timestamp = time.UnixMilli(p.Timestamp.UnixMilli())
	return &SignedProfile{Profile: p, Raw: raw, Signature: k.Sign(identity.DomainProfile, raw)}, nil
}

// Open decodes and verifies a signed profile received from anyone. When
// owner is not nil the profile must belong to that key, and the signature is
// checked with it before anything is decoded. It returns a *FieldError for
// an invalid field and ErrInvalidSignature for a bad signature.
func Open(raw, sig []byte, owner ed25519.PublicKey) (*SignedProfile, error) {
	if owner != nil {
		if err := identity.Verify(owner, identity.DomainProfile, raw, sig); err != nil {
			return nil, ErrInvalidSignature
		}
	}
	var m wirepb.ProfileInformation
	if err := proto.Unmarshal(raw, &m); err != nil {
		return nil, fieldErr("profile", "not a profile record: %v", err)
	}
	if len(m.Version) != 3 {
		return nil, fieldErr("version", "%d bytes, want 3", len(m.Version))
	}
	p := Profile{
		PublicKey:     m.PublicKey,
		Type:          m.Type,
		Name:          m.Name,
		Location:      Location{Lat: m.Latitude, Lon: m.Longitude},
		Extra:         m.ExtraData,
		ImageHash:     m.ProfileImageHash,
		ThumbnailHash: m.ThumbnailImageHash,
		Sequence:      m.Sequence,
		Timestamp:     time.UnixMilli(m.Timestamp),
	}
	copy(p.Version[:], m.Version)
	if len(p.ImageHash) == 0 {
		p.ImageHash = nil
	}
	if len(p.ThumbnailHash) == 0 {
		p.ThumbnailHash = nil
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if owner == nil {
		if err := identity.Verify(p.PublicKey, identity.DomainProfile, raw, sig); err != nil {
			return nil, ErrInvalidSignature
		}
	} else if !bytes.Equal(owner, p.PublicKey) {
		return nil, fieldErr("publicKey", "profile belongs to another identity")
	}
	return &SignedProfile{Profile: p, Raw: raw, Signature: sig}, nil
}

// OpenProto is Open for the wire form.
func OpenProto(sp *wirepb.SignedProfile, owner ed25519.PublicKey) (*SignedProfile, error) {
	if sp == nil {
		return nil, fieldErr("profile", "missing")
	}
	return Open(sp.Profile, sp.Signature, owner)
}
