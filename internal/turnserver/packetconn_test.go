package turnserver_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/turnserver"
	"github.com/iop-go/iop/internal/turnserver/turnservertest"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// Attribute values of RFC 8656 not exported by pion/stun.
var transportUDP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}

// rawClient sends hand-built STUN requests to a server.
type rawClient struct {
	t    *testing.T
	conn net.PacketConn
	srv  *turnserver.Server
}

func newRawClient(t *testing.T, srv *turnserver.Server) *rawClient {
	return &rawClient{t: t, conn: listen(t), srv: srv}
}

// do sends a request built from setters and returns the response with the
// same transaction ID.
func (c *rawClient) do(setters ...stun.Setter) *stun.Message {
	c.t.Helper()
	req, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	if err != nil {
		c.t.Fatalf("stun.Build: %v", err)
	}
	if _, err := c.conn.WriteTo(req.Raw, c.srv.Addr()); err != nil {
		c.t.Fatalf("WriteTo: %v", err)
	}
	for {
		b, _ := read(c.t, c.conn)
		res := &stun.Message{Raw: append([]byte(nil), b...)}
		if err := res.Decode(); err != nil {
			c.t.Fatalf("response does not decode: %v", err)
		}
		if res.TransactionID == req.TransactionID {
			return res
		}
	}
}

// nonce gets a fresh nonce with an unauthenticated Allocate.
func (c *rawClient) nonce() stun.Nonce {
	c.t.Helper()
	res := c.do(stun.NewType(stun.MethodAllocate, stun.ClassRequest), transportUDP, stun.Fingerprint)
	var nonce stun.Nonce
	if err := nonce.GetFrom(res); err != nil {
		c.t.Fatalf("401 has no NONCE: %v (%v)", err, res)
	}
	if got := errorCode(c.t, res); got.Code != stun.CodeUnauthorized || string(got.Reason) != "Unauthorized" {
		c.t.Errorf("unauthenticated Allocate = %v, want 401 Unauthorized", got)
	}
	return nonce
}

// authed returns the setters of an authenticated request: attrs, then
// USERNAME, REALM, NONCE, MESSAGE-INTEGRITY and FINGERPRINT.
func (c *rawClient) authed(t stun.MessageType, creds turnserver.Credentials, nonce stun.Nonce, attrs ...stun.Setter) []stun.Setter {
	key := turn.GenerateAuthKey(creds.Username, c.srv.Realm(), creds.Password)
	s := append([]stun.Setter{t}, attrs...)
	return append(s, stun.NewUsername(creds.Username), stun.NewRealm(c.srv.Realm()), nonce,
		stun.MessageIntegrity(key), stun.Fingerprint)
}

// peerAddress is an XOR-PEER-ADDRESS setter.
type peerAddress stun.XORMappedAddress

func (a peerAddress) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress(a).AddToAs(m, stun.AttrXORPeerAddress)
}

func errorCode(t *testing.T, m *stun.Message) stun.ErrorCodeAttribute {
	t.Helper()
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		t.Fatalf("response %v has no ERROR-CODE: %v", m, err)
	}
	return ec
}

var (
	allocateRequest = stun.NewType(stun.MethodAllocate, stun.ClassRequest)
	dontFragment    = stun.RawAttribute{Type: stun.AttrDontFragment}
)

func TestDontFragmentAccepted(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	alice := testID("alice")
	creds := srv.Grant(alice, time.Now())
	c := newRawClient(t, srv)
	res := c.do(c.authed(allocateRequest, creds, c.nonce(), transportUDP, dontFragment)...)
	if res.Type != stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse) {
		t.Fatalf("Allocate with DONT-FRAGMENT = %v (%v), want success", res, errorCode(t, res))
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil || !relayed.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("XOR-RELAYED-ADDRESS = %v, %v; want 127.0.0.1", relayed, err)
	}
	key := turn.GenerateAuthKey(creds.Username, srv.Realm(), creds.Password)
	if err := stun.MessageIntegrity(key).Check(res); err != nil {
		t.Errorf("success response MESSAGE-INTEGRITY: %v", err)
	}
	if got := srv.Allocations(alice); got != 1 {
		t.Errorf("Allocations(alice) = %d, want 1", got)
	}
}

func TestDontFragmentUnauthenticated(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	alice := testID("alice")
	good := srv.Grant(alice, time.Now())
	tests := []struct {
		name  string
		creds turnserver.Credentials
	}{
		{"wrong password", turnserver.Credentials{Username: good.Username, Password: "x"}},
		{"expired", srv.Grant(alice, time.Now().Add(-time.Hour))},
		{"malformed username", turnserver.Credentials{Username: "alice", Password: good.Password}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, srv)
			res := c.do(c.authed(allocateRequest, tt.creds, c.nonce(), transportUDP, dontFragment)...)
			if got := errorCode(t, res); got.Code != stun.CodeUnauthorized || string(got.Reason) != "Unauthorized" {
				t.Errorf("Allocate = %v, want 401 Unauthorized", got)
			}
		})
	}
	t.Run("stale nonce", func(t *testing.T) {
		c := newRawClient(t, srv)
		res := c.do(c.authed(allocateRequest, good, stun.NewNonce("bogus"), transportUDP, dontFragment)...)
		if got := errorCode(t, res); got.Code != stun.CodeStaleNonce || string(got.Reason) != "Stale Nonce" {
			t.Errorf("Allocate = %v, want 438 Stale Nonce", got)
		}
	})
	if got := srv.Allocations(alice); got != 0 {
		t.Errorf("Allocations(alice) = %d, want 0", got)
	}
}

// TestReasonPhrases checks error responses with MESSAGE-INTEGRITY: the
// phrase is added and the response is still signed with the user's key.
func TestReasonPhrases(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{MaxAllocationsPerIdentity: 1})
	alice := testID("alice")
	creds := srv.Grant(alice, time.Now())
	key := turn.GenerateAuthKey(creds.Username, srv.Realm(), creds.Password)
	c := newRawClient(t, srv)
	nonce := c.nonce()
	check := func(name string, res *stun.Message, code stun.ErrorCode, reason string) {
		t.Helper()
		got := errorCode(t, res)
		if got.Code != code || string(got.Reason) != reason {
			t.Errorf("%s = %v, want %d %s", name, got, code, reason)
		}
		if err := stun.MessageIntegrity(key).Check(res); err != nil {
			t.Errorf("%s MESSAGE-INTEGRITY: %v", name, err)
		}
		if err := stun.Fingerprint.Check(res); err != nil && res.Contains(stun.AttrFingerprint) {
			t.Errorf("%s FINGERPRINT: %v", name, err)
		}
	}

	tcp := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{1, 0, 0, 0}}
	check("Allocate ICMP", c.do(c.authed(allocateRequest, creds, nonce, tcp)...), stun.CodeUnsupportedTransProto, "Unsupported Transport Protocol")
	unknown := stun.RawAttribute{Type: 0x7F00, Value: []byte{1, 2, 3, 4}}
	check("Allocate unknown attribute", c.do(c.authed(allocateRequest, creds, nonce, transportUDP, unknown)...), stun.CodeUnknownAttribute, "Unknown Attribute")

	res := c.do(c.authed(allocateRequest, creds, nonce, transportUDP)...)
	if res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate = %v (%v), want success", res, errorCode(t, res))
	}
	check("second Allocate", c.do(c.authed(allocateRequest, creds, nonce, transportUDP)...), stun.CodeAllocMismatch, "Allocation Mismatch")
	v6 := stun.XORMappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 9}
	perm := stun.NewType(stun.MethodCreatePermission, stun.ClassRequest)
	check("CreatePermission IPv6", c.do(c.authed(perm, creds, nonce, peerAddress(v6))...), stun.CodePeerAddrFamilyMismatch, "Peer Address Family Mismatch")

	other := newRawClient(t, srv)
	check("Allocate over quota", other.do(other.authed(allocateRequest, creds, other.nonce(), transportUDP)...), stun.CodeAllocQuotaReached, "Allocation Quota Reached")
}

func TestReasonPhraseBinding(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	c := newRawClient(t, srv)
	unknown := stun.RawAttribute{Type: 0x7F00, Value: []byte{1, 2, 3, 4}}
	res := c.do(stun.BindingRequest, unknown, stun.Fingerprint)
	if got := errorCode(t, res); got.Code != stun.CodeUnknownAttribute || !strings.EqualFold(string(got.Reason), "Unknown Attribute") {
		t.Errorf("Binding with unknown attribute = %v, want 420 Unknown Attribute", got)
	}
}
