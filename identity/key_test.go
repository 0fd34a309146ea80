package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKey returns a deterministic key derived from n.
func testKey(t testing.TB, n byte) *Key {
	t.Helper()
	k, err := NewKeyFromSeed(bytes.Repeat([]byte{n}, SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRFC8032Ed25519ctx checks Sign against the first Ed25519ctx test
// vector of RFC 8032, section 7.2, whose context is "foo".
func TestRFC8032Ed25519ctx(t *testing.T) {
	k, err := NewKeyFromSeed(mustHex(t, "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6"))
	if err != nil {
		t.Fatal(err)
	}
	pub := mustHex(t, "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292")
	msg := mustHex(t, "f726936d19c800494e3fdaff20b276a8")
	want := mustHex(t, "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d")
	if got := k.Public(); !bytes.Equal(got, pub) {
		t.Fatalf("Public() = %x, want %x", got, pub)
	}
	if got := k.Sign("foo", msg); !bytes.Equal(got, want) {
		t.Fatalf("Sign(%q, %x) = %x, want %x", "foo", msg, got, want)
	}
	if err := Verify(pub, "foo", msg, want); err != nil {
		t.Fatalf("Verify of the RFC 8032 vector: %v", err)
	}
	if got := k.ID(); got != IDFromPublicKey(pub) {
		t.Errorf("ID() = %v, want %v", got, IDFromPublicKey(pub))
	}
}

func TestSignVerify(t *testing.T) {
	k := testKey(t, 1)
	other := testKey(t, 2)
	msg := []byte("hello, people")
	sig := k.Sign(DomainProfile, msg)

	tampered := bytes.Clone(msg)
	tampered[0] ^= 1
	badSig := bytes.Clone(sig)
	badSig[10] ^= 1
	plain := ed25519.Sign(ed25519.NewKeyFromSeed(k.Seed()), msg) // no context

	tests := []struct {
		name    string
		pub     []byte
		d       Domain
		msg     []byte
		sig     []byte
		wantErr error
	}{
		{"valid", k.Public(), DomainProfile, msg, sig, nil},
		{"wrong domain", k.Public(), DomainChallenge, msg, sig, ErrInvalidSignature},
		{"wrong key", other.Public(), DomainProfile, msg, sig, ErrInvalidSignature},
		{"tampered message", k.Public(), DomainProfile, tampered, sig, ErrInvalidSignature},
		{"empty message", k.Public(), DomainProfile, nil, sig, ErrInvalidSignature},
		{"tampered signature", k.Public(), DomainProfile, msg, badSig, ErrInvalidSignature},
		{"short signature", k.Public(), DomainProfile, msg, sig[:63], ErrInvalidSignature},
		{"long signature", k.Public(), DomainProfile, msg, append(bytes.Clone(sig), 0), ErrInvalidSignature},
		{"no signature", k.Public(), DomainProfile, msg, nil, ErrInvalidSignature},
		{"plain ed25519 signature", k.Public(), DomainProfile, msg, plain, ErrInvalidSignature},
		{"empty domain", k.Public(), "", msg, plain, ErrInvalidSignature},
		{"long domain", k.Public(), Domain(strings.Repeat("d", 256)), msg, sig, ErrInvalidSignature},
		{"short key", k.Public()[:31], DomainProfile, msg, sig, ErrInvalidPublicKey},
		{"long key", append(k.Public(), 0), DomainProfile, msg, sig, ErrInvalidPublicKey},
		{"no key", nil, DomainProfile, msg, sig, ErrInvalidPublicKey},
		{"id instead of key", []byte(k.ID().String()[:32]), DomainProfile, msg, sig, ErrInvalidSignature},
		{"key not on curve", bytes.Repeat([]byte{0xff}, 32), DomainProfile, msg, sig, ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.pub, tt.d, tt.msg, tt.sig)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Verify(%x, %.20q, %q, %x) = %v, want %v", tt.pub, tt.d, tt.msg, tt.sig, err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "identity: verify") {
				t.Errorf("Verify error = %q, want prefix %q", err, "identity: verify")
			}
		})
	}
}

func TestDomainsDistinct(t *testing.T) {
	domains := []Domain{DomainProfile, DomainHostingContract, DomainChallenge, DomainServerChallenge, DomainRequest}
	k := testKey(t, 3)
	msg := []byte("the same bytes")
	for _, signed := range domains {
		sig := k.Sign(signed, msg)
		for _, checked := range domains {
			err := Verify(k.Public(), checked, msg, sig)
			if (err == nil) != (signed == checked) {
				t.Errorf("Verify(%s) of a signature for %s = %v", checked, signed, err)
			}
		}
	}
}

func TestSignPanicsOnInvalidDomain(t *testing.T) {
	k := testKey(t, 1)
	for _, d := range []Domain{"", Domain(strings.Repeat("x", 256))} {
		t.Run(fmt.Sprintf("len%d", len(d)), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Sign(domain of %d bytes) did not panic", len(d))
				}
			}()
			k.Sign(d, []byte("msg"))
		})
	}
	// 255 bytes is the longest allowed domain.
	d := Domain(strings.Repeat("x", 255))
	if err := Verify(k.Public(), d, nil, k.Sign(d, nil)); err != nil {
		t.Errorf("Verify with a 255-byte domain: %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, SeedSize)
	k, err := GenerateKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Seed(); !bytes.Equal(got, seed) {
		t.Errorf("GenerateKey(reader of %x).Seed() = %x, want %x", seed, got, seed)
	}
	if _, err := GenerateKey(bytes.NewReader(seed[:31])); err == nil {
		t.Errorf("GenerateKey(short reader) error = nil, want error")
	}

	a, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() == b.ID() {
		t.Errorf("GenerateKey(nil) returned the same key twice: %v", a.ID())
	}
	if err := Verify(a.Public(), DomainRequest, []byte("x"), a.Sign(DomainRequest, []byte("x"))); err != nil {
		t.Errorf("Verify of a generated key's signature: %v", err)
	}
}

func TestNewKeyFromSeed(t *testing.T) {
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := NewKeyFromSeed(make([]byte, n)); err == nil {
			t.Errorf("NewKeyFromSeed(%d bytes) error = nil, want error", n)
		}
	}
	seed := bytes.Repeat([]byte{9}, SeedSize)
	k, err := NewKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	seed[0] = 0 // k must not retain seed
	if k.Seed()[0] != 9 {
		t.Errorf("NewKeyFromSeed retained its argument")
	}
	k.Seed()[1] = 0
	k.Public()[1] ^= 1
	if !bytes.Equal(k.Seed(), bytes.Repeat([]byte{9}, SeedSize)) || k.ID() != IDFromPublicKey(k.Public()) {
		t.Errorf("Seed or Public returned the key's own memory")
	}
}

func TestKeyStringHidesSeed(t *testing.T) {
	k := testKey(t, 0xab)
	secret := hex.EncodeToString(k.Seed())
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(format, k)
		if strings.Contains(got, secret) || strings.Contains(got, "171 171") || !strings.Contains(got, k.ID().String()) {
			t.Errorf("Sprintf(%q, key) = %q, want the ID and not the seed", format, got)
		}
	}
}
