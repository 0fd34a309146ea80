package locnet_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

func TestSignOpenNodeInfo(t *testing.T) {
	k := locnettest.Key(1, 1)
	at := time.UnixMilli(1_700_000_000_123)
	in := locnet.NodeInfo{
		Addrs:    []string{"/ip4/1.2.3.4/tcp/4001"},
		Location: deg(t, 47.5, 19.04),
		Services: []locnet.Service{{Type: "profile", Data: []byte("v1")}, {Type: "stun"}},
		Sequence: 7,
		IssuedAt: at,
	}
	signed, err := locnet.SignNodeInfo(k, in)
	if err != nil {
		t.Fatal(err)
	}
	if signed.ID != k.ID() {
		t.Errorf("ID = %s, want %s", signed.ID, k.ID())
	}
	got, err := locnet.OpenNodeInfo(signed.Proto())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"ID", got.ID, k.ID()},
		{"Addrs", got.Addrs, in.Addrs},
		{"Location", got.Location, in.Location},
		{"Services", got.Services, in.Services},
		{"Sequence", got.Sequence, in.Sequence},
		{"IssuedAt", got.IssuedAt.UnixMilli(), at.UnixMilli()},
		{"Raw", got.Raw, signed.Raw},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("OpenNodeInfo: %s differs (-want +got):\n%s", c.name, diff)
		}
	}
	if s, ok := got.Service("profile"); !ok || string(s.Data) != "v1" {
		t.Errorf("Service(profile) = %v, %v", s, ok)
	}
}

// encode signs m with k as a node info, bypassing SignNodeInfo's checks.
func encode(t *testing.T, k *identity.Key, m *locpb.NodeInfo) *locpb.SignedNodeInfo {
	t.Helper()
	raw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &locpb.SignedNodeInfo{PublicKey: k.Public(), NodeInfo: raw, Signature: k.Sign(locnet.DomainNodeInfo, raw)}
}

func TestOpenNodeInfoRefuses(t *testing.T) {
	k, other := locnettest.Key(1, 1), locnettest.Key(1, 2)
	good := func() *locpb.NodeInfo {
		return &locpb.NodeInfo{PublicKey: k.Public(), Latitude: 1_000_000, Longitude: 2_000_000, Sequence: 1, IssuedAt: 1_700_000_000_000}
	}
	valid := encode(t, k, good())
	tests := []struct {
		name  string
		s     *locpb.SignedNodeInfo
		field string // "" for a signature error
	}{
		{"nil", nil, "nodeInfo"},
		{"forged byte", func() *locpb.SignedNodeInfo {
			s := proto.Clone(valid).(*locpb.SignedNodeInfo)
			s.NodeInfo[len(s.NodeInfo)-1] ^= 1
			return s
		}(), ""},
		{"signed by another key", func() *locpb.SignedNodeInfo {
			s := encode(t, other, good())
			s.PublicKey = k.Public()
			return s
		}(), ""},
		{"other domain", func() *locpb.SignedNodeInfo {
			s := proto.Clone(valid).(*locpb.SignedNodeInfo)
			s.Signature = k.Sign(identity.DomainProfile, s.NodeInfo)
			return s
		}(), ""},
		{"inner key differs", encode(t, other, good()), "nodeInfo.publicKey"},
		{"short key", &locpb.SignedNodeInfo{PublicKey: []byte{1}, NodeInfo: valid.NodeInfo, Signature: valid.Signature}, "publicKey"},
		{"no location", func() *locpb.SignedNodeInfo {
			m := good()
			m.Latitude, m.Longitude = graph.NoLocation, graph.NoLocation
			return encode(t, k, m)
		}(), "location"},
		{"latitude out of range", func() *locpb.SignedNodeInfo {
			m := good()
			m.Latitude = 91_000_000
			return encode(t, k, m)
		}(), "location.latitude"},
		{"zero sequence", func() *locpb.SignedNodeInfo {
			m := good()
			m.Sequence = 0
			return encode(t, k, m)
		}(), "sequence"},
		{"no issue time", func() *locpb.SignedNodeInfo {
			m := good()
			m.IssuedAt = 0
			return encode(t, k, m)
		}(), "issuedAt"},
		{"service data too long", func() *locpb.SignedNodeInfo {
			m := good()
			m.Services = []*locpb.Service{{Type: "profile", Data: make([]byte, locnet.MaxServiceData+1)}}
			return encode(t, k, m)
		}(), "services[0].data"},
		{"service twice", func() *locpb.SignedNodeInfo {
			m := good()
			m.Services = []*locpb.Service{{Type: "profile"}, {Type: "profile"}}
			return encode(t, k, m)
		}(), "services[1].type"},
		{"too many addresses", func() *locpb.SignedNodeInfo {
			m := good()
			for range locnet.MaxAddrs + 1 {
				m.Addresses = append(m.Addresses, "/ip4/1.2.3.4/tcp/1")
			}
			return encode(t, k, m)
		}(), "addresses"},
		{"empty address", func() *locpb.SignedNodeInfo {
			m := good()
			m.Addresses = []string{""}
			return encode(t, k, m)
		}(), "addresses[0]"},
		{"too large", func() *locpb.SignedNodeInfo {
			m := good()
			m.Addresses = []string{strings.Repeat("a", locnet.MaxNodeInfoSize)}
			return encode(t, k, m)
		}(), "nodeInfo"},
		{"not a record", func() *locpb.SignedNodeInfo {
			raw := []byte{0xff, 0xff, 0xff}
			return &locpb.SignedNodeInfo{PublicKey: k.Public(), NodeInfo: raw, Signature: k.Sign(locnet.DomainNodeInfo, raw)}
		}(), "nodeInfo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := locnet.OpenNodeInfo(tt.s)
			if tt.field == "" {
				if !errors.Is(err, locnet.ErrInvalidSignature) {
					t.Fatalf("OpenNodeInfo = %v, want ErrInvalidSignature", err)
				}
				return
			}
			var fe *graph.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("OpenNodeInfo = %v, want a field error on %q", err, tt.field)
			}
		})
	}
}

func TestSignNodeInfoValidates(t *testing.T) {
	k := locnettest.Key(1, 1)
	_, err := locnet.SignNodeInfo(k, locnet.NodeInfo{Location: graph.Nowhere, Sequence: 1, IssuedAt: time.Now()})
	var fe *graph.FieldError
	if !errors.As(err, &fe) || fe.Field != "location" {
		t.Errorf("SignNodeInfo(no location) = %v, want a field error on location", err)
	}
}

func TestVerifyCache(t *testing.T) {
	k := locnettest.Key(1, 1)
	info := signInfo(t, k, deg(t, 1, 2), 1, time.UnixMilli(1_700_000_000_000))
	c := locnet.NewVerifyCache(2)
	a, err := c.Open(info.Proto())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Open(info.Proto())
	if err != nil || a != b {
		t.Fatalf("second Open = %p, %v; want the cached %p", b, err, a)
	}
	// Same signature over other bytes: no cache hit, and it fails.
	forged := proto.Clone(info.Proto()).(*locpb.SignedNodeInfo)
	forged.NodeInfo = bytes.Clone(forged.NodeInfo)
	forged.NodeInfo[3] ^= 0x40
	if _, err := c.Open(forged); !errors.Is(err, locnet.ErrInvalidSignature) {
		t.Fatalf("Open(forged) = %v, want ErrInvalidSignature", err)
	}
}
