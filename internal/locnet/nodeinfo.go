package locnet

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// DomainNodeInfo is the signature domain of node infos.
const DomainNodeInfo = identity.Domain("iop/loc-nodeinfo/1")

// Limits of a node info.
const (
	MaxAddrs          = 16       // contact addresses
	MaxAddrLen        = 256      // bytes per address
	MaxServices       = 16       // services
	MaxServiceTypeLen = 64       // bytes of a service type
	MaxServiceData    = 1024     // bytes of a service's data
	MaxNodeInfoSize   = 24 << 10 // bytes of an encoded NodeInfo
)

// ErrInvalidSignature reports a node info whose signature does not verify.
var ErrInvalidSignature = errors.New("invalid node info signature")

// Service is a service a node offers, such as "profile" with the profile
// server's protocol information in Data.
type Service struct {
	Type string
	Data []byte // at most MaxServiceData bytes
}

// NodeInfo is the record a node signs about itself. A NodeInfo obtained from
// [SignNodeInfo] or [OpenNodeInfo] carries the exact bytes that were signed;
// only those travel, so changing the decoded fields of a NodeInfo changes
// nothing on the wire. NodeInfos are shared: treat them as read-only.
type NodeInfo struct {
	ID        identity.ID // SHA-256 of PublicKey
	PublicKey ed25519.PublicKey
	Addrs     []string // contact multiaddrs; opaque to this package
	Location  graph.Location
	Services  []Service
	Sequence  uint64    // strictly increasing per node; a higher one replaces a lower one
	IssuedAt  time.Time // the signer's clock, millisecond precision

	Raw       []byte // the encoded locpb.NodeInfo that was signed
	Signature []byte

	pb *locpb.SignedNodeInfo // the wire form, built once
}

// Proto returns the wire form of n. It is shared: do not modify it.
func (n *NodeInfo) Proto() *locpb.SignedNodeInfo {
	if n.pb != nil {
		return n.pb
	}
	return &locpb.SignedNodeInfo{PublicKey: n.PublicKey, NodeInfo: n.Raw, Signature: n.Signature}
}

// Contact returns how to reach n.
func (n *NodeInfo) Contact() Contact {
	return Contact{ID: n.ID, PublicKey: n.PublicKey, Addrs: n.Addrs}
}

// Service returns the service of type typ, if n offers it.
func (n *NodeInfo) Service(typ string) (Service, bool) {
	for _, s := range n.Services {
		if s.Type == typ {
			return s, true
		}
	}
	return Service{}, false
}

// String describes n for logs.
func (n *NodeInfo) String() string {
	return fmt.Sprintf("node %s at %s seq %d", n.ID.Short(), n.Location, n.Sequence)
}

// sameRecord reports whether n and o are the same signed bytes.
func (n *NodeInfo) sameRecord(o *NodeInfo) bool {
	return n.Sequence == o.Sequence && bytes.Equal(n.Raw, o.Raw) && bytes.Equal(n.Signature, o.Signature)
}

// SignNodeInfo validates info, sets its public key and ID from k, encodes it
// and signs the encoding. Sequence must be positive and IssuedAt set.
func SignNodeInfo(k *identity.Key, info NodeInfo) (*NodeInfo, error) {
	info.PublicKey = k.Public()
	info.ID = k.ID()
	info.IssuedAt = time.UnixMilli(info.IssuedAt.UnixMilli())
	if err := info.validate(); err != nil {
		return nil, err
	}
	m := &locpb.NodeInfo{
		PublicKey: info.PublicKey,
		Addresses: info.Addrs,
		Latitude:  info.Location.Lat,
		Longitude: info.Location.Lon,
		Sequence:  info.Sequence,
		IssuedAt:  info.IssuedAt.UnixMilli(),
	}
	for _, s := range info.Services {
		m.Services = append(m.Services, &locpb.Service{Type: s.Type, Data: s.Data})
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode node info: %w", err)
	}
	if len(raw) > MaxNodeInfoSize {
		return nil, fieldErr("nodeInfo", "%d bytes encoded, limit %d", len(raw), MaxNodeInfoSize)
	}
	info.Raw = raw
	info.Signature = k.Sign(DomainNodeInfo, raw)
	info.pb = &locpb.SignedNodeInfo{PublicKey: info.PublicKey, NodeInfo: info.Raw, Signature: info.Signature}
	return &info, nil
}

// OpenNodeInfo verifies a signed node info received from anyone and decodes
// it. The signature is checked over the carried bytes before they are
// decoded, and the key inside must be the key that signed. It returns an
// error wrapping [ErrInvalidSignature] for a bad signature and a
// *graph.FieldError for an invalid field. Freshness (sequence, issue time)
// is the caller's business. The result shares the byte slices of s.
func OpenNodeInfo(s *locpb.SignedNodeInfo) (*NodeInfo, error) {
	if s == nil {
		return nil, fieldErr("nodeInfo", "missing")
	}
	if len(s.PublicKey) != identity.PublicKeySize {
		return nil, fieldErr("publicKey", "%d bytes, want %d", len(s.PublicKey), identity.PublicKeySize)
	}
	if len(s.NodeInfo) > MaxNodeInfoSize {
		return nil, fieldErr("nodeInfo", "%d bytes, limit %d", len(s.NodeInfo), MaxNodeInfoSize)
	}
	if err := identity.Verify(s.PublicKey, DomainNodeInfo, s.NodeInfo, s.Signature); err != nil {
		return nil, fmt.Errorf("node info of %s: %w", identity.IDFromPublicKey(s.PublicKey).Short(), ErrInvalidSignature)
	}
	var m locpb.NodeInfo
	if err := proto.Unmarshal(s.NodeInfo, &m); err != nil {
		return nil, fieldErr("nodeInfo", "not a node info record: %v", err)
	}
	if !bytes.Equal(m.PublicKey, s.PublicKey) {
		return nil, fieldErr("nodeInfo.publicKey", "differs from the signing key")
	}
	pub := ed25519.PublicKey(bytes.Clone(s.PublicKey))
	info := &NodeInfo{
		ID:        identity.IDFromPublicKey(pub),
		PublicKey: pub,
		Addrs:     m.Addresses,
		Location:  graph.Location{Lat: m.Latitude, Lon: m.Longitude},
		Sequence:  m.Sequence,
		IssuedAt:  time.UnixMilli(m.IssuedAt),
		Raw:       s.NodeInfo,
		Signature: s.Signature,
	}
	info.pb = &locpb.SignedNodeInfo{PublicKey: info.PublicKey, NodeInfo: info.Raw, Signature: info.Signature}
	for _, sv := range m.Services {
		info.Services = append(info.Services, Service{Type: sv.Type, Data: sv.Data})
	}
	if err := info.validate(); err != nil {
		return nil, err
	}
	return info, nil
}

// validate checks the decoded fields against the limits.
func (n *NodeInfo) validate() error {
	if len(n.PublicKey) != identity.PublicKeySize {
		return fieldErr("publicKey", "%d bytes, want %d", len(n.PublicKey), identity.PublicKeySize)
	}
	if !n.Location.IsSet() {
		return fieldErr("location", "not set")
	}
	if err := graph.CheckLocation(n.Location); err != nil {
		var fe *graph.FieldError
		if errors.As(err, &fe) {
			return fieldErr("location."+fe.Field, "%s", fe.Reason)
		}
		return fieldErr("location", "%v", err)
	}
	if len(n.Addrs) > MaxAddrs {
		return fieldErr("addresses", "%d addresses, limit %d", len(n.Addrs), MaxAddrs)
	}
	for i, a := range n.Addrs {
		if a == "" || len(a) > MaxAddrLen || !utf8.ValidString(a) {
			return fieldErr(fmt.Sprintf("addresses[%d]", i), "want 1 to %d bytes of UTF-8", MaxAddrLen)
		}
	}
	if len(n.Services) > MaxServices {
		return fieldErr("services", "%d services, limit %d", len(n.Services), MaxServices)
	}
	for i, s := range n.Services {
		if s.Type == "" || len(s.Type) > MaxServiceTypeLen || !utf8.ValidString(s.Type) {
			return fieldErr(fmt.Sprintf("services[%d].type", i), "want 1 to %d bytes of UTF-8", MaxServiceTypeLen)
		}
		if len(s.Data) > MaxServiceData {
			return fieldErr(fmt.Sprintf("services[%d].data", i), "%d bytes, limit %d", len(s.Data), MaxServiceData)
		}
		for _, o := range n.Services[:i] {
			if o.Type == s.Type {
				return fieldErr(fmt.Sprintf("services[%d].type", i), "%q appears twice", s.Type)
			}
		}
	}
	if n.Sequence == 0 {
		return fieldErr("sequence", "zero")
	}
	if n.IssuedAt.UnixMilli() <= 0 {
		return fieldErr("issuedAt", "not set")
	}
	return nil
}

func fieldErr(field, format string, args ...any) error {
	return &graph.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// VerifyCache remembers node infos whose signatures verified, so that a
// record seen again is not verified again. The key is the signature; a hit
// also compares the public key and the signed bytes, so a cached answer is
// exactly what verifying again would give. One cache may be shared by many
// nodes (a simulation shares one across the whole network). It is safe for
// concurrent use.
type VerifyCache struct {
	max int

	mu sync.Mutex // guards the fields below
	m  map[string]*NodeInfo
}

// NewVerifyCache returns a cache of at most max node infos (0 for no limit).
// When it is full it starts again from empty.
func NewVerifyCache(max int) *VerifyCache {
	return &VerifyCache{max: max, m: make(map[string]*NodeInfo)}
}

// Open is [OpenNodeInfo] through the cache.
func (c *VerifyCache) Open(s *locpb.SignedNodeInfo) (*NodeInfo, error) {
	if s == nil {
		return OpenNodeInfo(s)
	}
	c.mu.Lock()
	hit := c.m[string(s.Signature)]
	c.mu.Unlock()
	if hit != nil && bytes.Equal(hit.Raw, s.NodeInfo) && bytes.Equal(hit.PublicKey, s.PublicKey) {
		return hit, nil
	}
	info, err := OpenNodeInfo(s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.max > 0 && len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[string(s.Signature)] = info
	c.mu.Unlock()
	return info, nil
}
