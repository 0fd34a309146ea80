package can

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can/canpb"
)

// Signature domains of CAN records.
const (
	DomainNodeContact identity.Domain = "iop/can-node/1"
	DomainClaim       identity.Domain = "iop/can-claim/1"
	DomainPointer     identity.Domain = "iop/can-pointer/1"
)

// Key namespaces in the DHT.
const (
	NamespaceNode     = "iop-node"
	NamespaceIdentity = "iop-id"
)

// Limits of records.
const (
	MaxRecordSize = 8 << 10        // bytes of a DHT value
	MaxAddrs      = 16             // addresses in a contact
	MaxServices   = 16             // services in a contact
	MaxTTL        = 48 * time.Hour // furthest expiry a record may carry
)

// ErrInvalidRecord reports a DHT value that fails validation.
var ErrInvalidRecord = errors.New("invalid CAN record")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRecord, fmt.Sprintf(format, args...))
}

// NodeKey is the DHT key of a node's contact record.
func NodeKey(id identity.ID) string { return "/" + NamespaceNode + "/" + id.String() }

// IdentityKey is the DHT key of an identity's pointer.
func IdentityKey(id identity.ID) string { return "/" + NamespaceIdentity + "/" + id.String() }

// parseKey splits "/ns/<hex id>".
func parseKey(key, ns string) (identity.ID, error) {
	rest, ok := strings.CutPrefix(key, "/"+ns+"/")
	if !ok {
		return identity.ID{}, invalid("key %q not in namespace %s", key, ns)
	}
	return identity.ParseID(rest)
}

func sign(k *identity.Key, d identity.Domain, m proto.Message) ([]byte, error) {
	return signLimit(k, d, m, MaxRecordSize)
}

// signLimit signs m and wraps it in a Signed record of at most limit bytes.
func signLimit(k *identity.Key, d identity.Domain, m proto.Message, limit int) ([]byte, error) {
	rec, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	out, err := proto.Marshal(&canpb.Signed{Record: rec, Signature: k.Sign(d, rec)})
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("record of %d bytes is over the %d-byte limit", len(out), limit)
	}
	return out, nil
}

func unwrap(value []byte) (*canpb.Signed, error) { return unwrapLimit(value, MaxRecordSize) }

// unwrapLimit decodes a Signed record of at most limit bytes.
func unwrapLimit(value []byte, limit int) (*canpb.Signed, error) {
	if len(value) > limit {
		return nil, invalid("%d bytes, limit %d", len(value), limit)
	}
	var s canpb.Signed
	if err := proto.Unmarshal(value, &s); err != nil {
		return nil, invalid("not a signed record: %v", err)
	}
	return &s, nil
}

func checkExpiry(ms int64, now time.Time) error {
	exp := time.UnixMilli(ms)
	if !exp.After(now) {
		return invalid("expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if exp.After(now.Add(MaxTTL)) {
		return invalid("expiry %s is more than %s ahead", exp.UTC().Format(time.RFC3339), MaxTTL)
	}
	return nil
}

// SignNodeContact signs a node's contact record.
func SignNodeContact(k *identity.Key, c *canpb.NodeContact) ([]byte, error) {
	c.PublicKey = k.Public()
	return sign(k, DomainNodeContact, c)
}

// OpenNodeContact validates a contact value stored under key at time now.
func OpenNodeContact(key string, value []byte, now time.Time) (*canpb.NodeContact, error) {
	id, err := parseKey(key, NamespaceNode)
	if err != nil {
		return nil, err
	}
	s, err := unwrap(value)
	if err != nil {
		return nil, err
	}
	var c canpb.NodeContact
	if err := proto.Unmarshal(s.Record, &c); err != nil {
		return nil, invalid("node contact: %v", err)
	}
	if identity.IDFromPublicKey(c.PublicKey) != id {
		return nil, invalid("node contact key does not match %s", key)
	}
	if err := identity.Verify(c.PublicKey, DomainNodeContact, s.Record, s.Signature); err != nil {
		return nil, invalid("node contact signature: %v", err)
	}
	if len(c.Addrs) > MaxAddrs || len(c.Services) > MaxServices {
		return nil, invalid("node contact has too many addresses or services")
	}
	if err := checkExpiry(c.ExpiresAt, now); err != nil {
		return nil, err
	}
	return &c, nil
}

// SignClaim is the identity's side of a pointer.
func SignClaim(k *identity.Key, c *canpb.IdentityClaim) (claim, sig []byte, err error) {
	c.IdentityPublicKey = k.Public()
	claim, err = proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, nil, err
	}
	return claim, k.Sign(DomainClaim, claim), nil
}

// OpenClaim verifies an identity's claim. owner, when not nil, must be the
// claiming identity.
func OpenClaim(claim, sig []byte, owner ed25519.PublicKey) (*canpb.IdentityClaim, error) {
	var c canpb.IdentityClaim
	if err := proto.Unmarshal(claim, &c); err != nil {
		return nil, invalid("claim: %v", err)
	}
	if owner != nil && !bytes.Equal(owner, c.IdentityPublicKey) {
		return nil, invalid("claim made by another identity")
	}
	if err := identity.Verify(c.IdentityPublicKey, DomainClaim, claim, sig); err != nil {
		return nil, invalid("claim signature: %v", err)
	}
	if _, err := identity.IDFromBytes(c.ServerId); err != nil {
		return nil, invalid("claim server ID: %v", err)
	}
	if c.Sequence == 0 {
		return nil, invalid("claim sequence 0")
	}
	return &c, nil
}

// SignPointer countersigns an identity's claim as server k, valid until
// expires.
func SignPointer(k *identity.Key, claim, claimSig []byte, expires time.Time) ([]byte, error) {
	return sign(k, DomainPointer, &canpb.IdentityPointer{
		Claim: claim, IdentitySignature: claimSig, ServerPublicKey: k.Public(), ExpiresAt: expires.UnixMilli(),
	})
}

// Pointer is a verified identity pointer.
type Pointer struct {
	Claim     *canpb.IdentityClaim
	Identity  identity.ID
	Server    identity.ID // where the identity is (HOSTED) or went (MOVED)
	Publisher identity.ID // the countersigning server
	Expires   time.Time
}

// OpenPointer validates an identity pointer stored under key at time now.
func OpenPointer(key string, value []byte, now time.Time) (*Pointer, error) {
	id, err := parseKey(key, NamespaceIdentity)
	if err != nil {
		return nil, err
	}
	s, err := unwrap(value)
	if err != nil {
		return nil, err
	}
	var p canpb.IdentityPointer
	if err := proto.Unmarshal(s.Record, &p); err != nil {
		return nil, invalid("pointer: %v", err)
	}
	if err := identity.Verify(p.ServerPublicKey, DomainPointer, s.Record, s.Signature); err != nil {
		return nil, invalid("pointer countersignature: %v", err)
	}
	c, err := OpenClaim(p.Claim, p.IdentitySignature, nil)
	if err != nil {
		return nil, err
	}
	if identity.IDFromPublicKey(c.IdentityPublicKey) != id {
		return nil, invalid("pointer identity does not match %s", key)
	}
	publisher := identity.IDFromPublicKey(p.ServerPublicKey)
	server, _ := identity.IDFromBytes(c.ServerId)
	if c.State == canpb.ClaimState_HOSTED && server != publisher {
		return nil, invalid("hosting claim for server %s countersigned by %s", server.Short(), publisher.Short())
	}
	if c.State == canpb.ClaimState_CANCELLED && server != publisher {
		return nil, invalid("cancellation claim for server %s countersigned by %s", server.Short(), publisher.Short())
	}
	if err := checkExpiry(p.ExpiresAt, now); err != nil {
		return nil, err
	}
	return &Pointer{Claim: c, Identity: id, Server: server, Publisher: publisher, Expires: time.UnixMilli(p.ExpiresAt)}, nil
}
