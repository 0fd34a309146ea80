package p2p

import (
	"bytes"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/iop-go/iop/identity"
)

func TestIdentityKeyIsPeerKey(t *testing.T) {
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := PeerID(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyOf(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, k.Public()) {
		t.Errorf("PublicKeyOf(PeerID(k)) = %x, want %x", pub, k.Public())
	}
	h, err := New(Config{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Limits: ServerLimits()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.ID() != id {
		t.Errorf("host ID = %s, want %s", h.ID(), id)
	}
	addrs := FullAddrs(h)
	if len(addrs) == 0 {
		t.Fatal("no listen addresses")
	}
	ai, err := ParseAddr(addrs[0].String())
	if err != nil || ai.ID != id {
		t.Errorf("ParseAddr(%s) = %v, %v", addrs[0], ai, err)
	}
}

func TestParseAddrErrors(t *testing.T) {
	for _, s := range []string{"", "not a multiaddr", "/ip4/127.0.0.1/tcp/1"} {
		if _, err := ParseAddr(s); err == nil {
			t.Errorf("ParseAddr(%q) succeeded", s)
		}
	}
}

func TestRaiseFDLimit(t *testing.T) {
	soft, err := RaiseFDLimit()
	if err != nil {
		t.Fatal(err)
	}
	_, hard, err := FDLimit()
	if err != nil || soft != hard {
		t.Errorf("after RaiseFDLimit soft = %d, hard = %d (%v); want equal", soft, hard, err)
	}
}

func TestAnnounceable(t *testing.T) {
	parse := func(ss ...string) []ma.Multiaddr {
		var out []ma.Multiaddr
		for _, s := range ss {
			out = append(out, ma.StringCast(s))
		}
		return out
	}
	got := Announceable(parse("/ip4/127.0.0.1/tcp/1", "/ip4/203.0.113.5/tcp/1", "/ip6/::1/tcp/1"))
	if len(got) != 1 || got[0].String() != "/ip4/203.0.113.5/tcp/1" {
		t.Errorf("Announceable(mixed) = %v, want only the public address", got)
	}
	if got := Announceable(parse("/ip4/127.0.0.1/tcp/1")); len(got) != 1 {
		t.Errorf("Announceable(loopback only) = %v, want it kept", got)
	}
}
