package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Domain names what a signature is for. It is the Ed25519ctx context string,
// so a signature made for one domain never verifies for another.
// A domain is 1 to 255 bytes long.
type Domain string

// The signature domains of the protocol.
const (
	DomainProfile         Domain = "iop/profile/1"          // signed profile records (graph nodes)
	DomainHostingContract Domain = "iop/hosting-contract/1" // hosting agreements (client and server)
	DomainChallenge       Domain = "iop/challenge/1"        // conversation challenge-response
	DomainServerChallenge Domain = "iop/server-challenge/1" // server proving its key to a client
	DomainRequest         Domain = "iop/request/1"          // signed protocol requests
)

// maxDomainLen is the longest Ed25519ctx context, in bytes.
const maxDomainLen = 255

// valid reports whether d can be used as an Ed25519ctx context.
func (d Domain) valid() bool {
	return len(d) > 0 && len(d) <= maxDomainLen
}

// Sizes of keys and signatures, in bytes.
const (
	SeedSize      = ed25519.SeedSize
	PublicKeySize = ed25519.PublicKeySize
	SignatureSize = ed25519.SignatureSize
)

var (
	// ErrInvalidSignature means a signature does not verify.
	ErrInvalidSignature = errors.New("invalid signature")
	// ErrInvalidPublicKey means a public key is not 32 bytes long.
	ErrInvalidPublicKey = errors.New("invalid public key")
)

// Key is a private identity key. Its zero value is not usable; create one
// with [GenerateKey] or [NewKeyFromSeed]. A Key is safe for concurrent use.
type Key struct {
	priv ed25519.PrivateKey
	id   ID
}

// GenerateKey returns a new key whose seed is read from rand, or from
// crypto/rand if rand is nil.
func GenerateKey(rand io.Reader) (*Key, error) {
	seed := make([]byte, SeedSize)
	defer clear(seed)
	if rand == nil {
		rand = cryptoRand{}
	}
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return NewKeyFromSeed(seed)
}

// cryptoRand reads from crypto/rand.
type cryptoRand struct{}

func (cryptoRand) Read(b []byte) (int, error) { return rand.Read(b) }

// NewKeyFromSeed returns the key with the given 32-byte seed (the RFC 8032
// private key). It does not retain seed.
func NewKeyFromSeed(seed []byte) (*Key, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("identity: key from seed: seed is %d bytes, want %d", len(seed), SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &Key{priv: priv, id: IDFromPublicKey(ed25519.PublicKey(priv[SeedSize:]))}, nil
}

// Seed returns a copy of the 32-byte seed of k, from which
// [NewKeyFromSeed] recreates it.
func (k *Key) Seed() []byte {
	return k.priv.Seed()
}

// Public returns a copy of the public key of k.
func (k *Key) Public() ed25519.PublicKey {
	return ed25519.PublicKey(append([]byte(nil), k.priv[SeedSize:]...))
}

// ID returns the network ID of k.
func (k *Key) ID() ID {
	return k.id
}

// String describes k by its ID only, so that printing a key never
// reveals its secret.
func (k *Key) String() string {
	return "identity.Key(" + k.id.String() + ")"
}

// GoString is like String, for the %#v verb.
func (k *Key) GoString() string {
	return k.String()
}

// Sign signs msg for domain d with Ed25519ctx. It panics if d is empty or
// longer than 255 bytes: domains are constants, so that is a programming
// error.
func (k *Key) Sign(d Domain, msg []byte) []byte {
	if !d.valid() {
		panic(fmt.Sprintf("identity: sign: invalid domain %s: length %d, want 1 to %d bytes", quoteShort(string(d)), len(d), maxDomainLen))
	}
	sig, err := k.priv.Sign(nil, msg, &ed25519.Options{Context: string(d)})
	if err != nil {
		// Only possible in FIPS 140-only mode, which forbids Ed25519ctx.
		panic("identity: sign: " + err.Error())
	}
	return sig
}

// Verify checks that sig is a signature of msg for domain d by the
// Ed25519 public key pub. The error wraps [ErrInvalidPublicKey] if pub is not
// 32 bytes long, and [ErrInvalidSignature] for any other failure, including
// an invalid domain.
func Verify(pub []byte, d Domain, msg, sig []byte) error {
	if len(pub) != PublicKeySize {
		return fmt.Errorf("identity: verify %s signature: public key is %d bytes, want %d: %w", d, len(pub), PublicKeySize, ErrInvalidPublicKey)
	}
	if !d.valid() {
		return fmt.Errorf("identity: verify signature: invalid domain %s: length %d, want 1 to %d bytes: %w", quoteShort(string(d)), len(d), maxDomainLen, ErrInvalidSignature)
	}
	if len(sig) != SignatureSize {
		return fmt.Errorf("identity: verify %s signature: signature is %d bytes, want %d: %w", d, len(sig), SignatureSize, ErrInvalidSignature)
	}
	if err := ed25519.VerifyWithOptions(pub, msg, sig, &ed25519.Options{Context: string(d)}); err != nil {
		return fmt.Errorf("identity: verify %s signature by %s: %w", d, IDFromPublicKey(pub).Short(), ErrInvalidSignature)
	}
	return nil
}
