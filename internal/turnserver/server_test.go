package turnserver_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/turnserver"
	"github.com/iop-go/iop/internal/turnserver/turnservertest"
	"github.com/pion/turn/v5"
)

// testID returns a deterministic identity ID for name.
func testID(name string) identity.ID {
	return identity.ID(sha256.Sum256([]byte(name)))
}

// listen opens a UDP socket on loopback, closed when the test ends.
func listen(t *testing.T) net.PacketConn {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// newClient returns a listening pion TURN client of srv with the given
// credentials, closed when the test ends.
func newClient(t *testing.T, srv *turnserver.Server, user, pass string) (*turn.Client, net.PacketConn) {
	t.Helper()
	conn := listen(t)
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: srv.Addr().String(),
		TURNServerAddr: srv.Addr().String(),
		Username:       user,
		Password:       pass,
		Realm:          srv.Realm(),
		Conn:           conn,
	})
	if err != nil {
		t.Fatalf("turn.NewClient: %v", err)
	}
	if err := c.Listen(); err != nil {
		t.Fatalf("Client.Listen: %v", err)
	}
	t.Cleanup(c.Close)
	return c, conn
}

// allocate allocates a relay with creds, closed when the test ends.
func allocate(t *testing.T, srv *turnserver.Server, creds turnserver.Credentials) (net.PacketConn, error) {
	t.Helper()
	c, _ := newClient(t, srv, creds.Username, creds.Password)
	relay, err := c.Allocate()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { relay.Close() })
	return relay, nil
}

// read reads one datagram from conn within a second.
func read(t *testing.T, conn net.PacketConn) ([]byte, net.Addr) {
	t.Helper()
	buf := make([]byte, 1500)
	conn.SetReadDeadline(time.Now().Add(time.Second))
	n, from, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	return buf[:n], from
}

func TestBinding(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	c, conn := newClient(t, srv, "", "")
	got, err := c.SendBindingRequest()
	if err != nil {
		t.Fatalf("SendBindingRequest: %v", err)
	}
	if got.String() != conn.LocalAddr().String() {
		t.Errorf("SendBindingRequest() = %v, want %v", got, conn.LocalAddr())
	}
}

func TestRelay(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	id := testID("alice")
	creds := srv.Grant(id, time.Now())
	c, _ := newClient(t, srv, creds.Username, creds.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { relay.Close() })
	if got := srv.Allocations(id); got != 1 {
		t.Errorf("Allocations(alice) = %d, want 1", got)
	}
	relayAddr := relay.LocalAddr().(*net.UDPAddr)
	if !relayAddr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("relay address = %v, want 127.0.0.1", relayAddr)
	}

	peer := listen(t)
	if err := c.CreatePermission(peer.LocalAddr()); err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}
	if _, err := relay.WriteTo([]byte("hello"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay WriteTo: %v", err)
	}
	got, from := read(t, peer)
	if string(got) != "hello" || from.String() != relayAddr.String() {
		t.Errorf("peer got %q from %v, want %q from %v", got, from, "hello", relayAddr)
	}

	if _, err := peer.WriteTo([]byte("world"), relayAddr); err != nil {
		t.Fatalf("peer WriteTo: %v", err)
	}
	got, from = read(t, relay)
	if string(got) != "world" || from.String() != peer.LocalAddr().String() {
		t.Errorf("client got %q from %v, want %q from %v", got, from, "world", peer.LocalAddr())
	}
}

func TestCloseReleasesRelays(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	relay, err := allocate(t, srv, srv.Grant(testID("alice"), time.Now()))
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The relayed port is free again as soon as Close returns.
	conn, err := net.ListenPacket("udp4", relay.LocalAddr().String())
	if err != nil {
		t.Fatalf("ListenPacket(%v) after Close: %v", relay.LocalAddr(), err)
	}
	conn.Close()
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestRefused(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	alice, bob := testID("alice"), testID("bob")
	now := time.Now()
	good := srv.Grant(alice, now)
	other := turnservertest.Start(t, turnserver.Config{}) // another node's secret
	tests := []struct {
		name  string
		creds turnserver.Credentials
	}{
		{"expired", srv.Grant(alice, now.Add(-time.Hour))},
		{"wrong password", turnserver.Credentials{Username: good.Username, Password: good.Password + "x"}},
		{"forged identity", turnserver.Credentials{
			Username: strings.Replace(good.Username, alice.String(), bob.String(), 1),
			Password: good.Password,
		}},
		{"forged expiry", turnserver.Credentials{
			Username: strings.Replace(good.Username, ":", "0:", 1),
			Password: good.Password,
		}},
		{"other secret", other.Grant(alice, now)},
		{"malformed", turnserver.Credentials{Username: "alice", Password: "secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay, err := allocate(t, srv, tt.creds)
			if err == nil {
				t.Fatalf("Allocate(%q) = %v, want error", tt.creds.Username, relay.LocalAddr())
			}
			if !strings.Contains(err.Error(), "401") {
				t.Errorf("Allocate(%q) = %v, want 401", tt.creds.Username, err)
			}
		})
	}
	if got := srv.Allocations(alice) + srv.Allocations(bob); got != 0 {
		t.Errorf("live allocations = %d, want 0", got)
	}
}

func TestQuota(t *testing.T) {
	const max = 2
	srv := turnservertest.Start(t, turnserver.Config{MaxAllocationsPerIdentity: max})
	alice := testID("alice")
	var relays []net.PacketConn
	for i := range max {
		// Fresh credentials each time: the quota is per identity.
		relay, err := allocate(t, srv, srv.Grant(alice, time.Now().Add(time.Duration(i)*time.Second)))
		if err != nil {
			t.Fatalf("Allocate #%d: %v", i+1, err)
		}
		relays = append(relays, relay)
	}
	if _, err := allocate(t, srv, srv.Grant(alice, time.Now())); err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("Allocate #%d = %v, want 486 (quota)", max+1, err)
	}
	if _, err := allocate(t, srv, srv.Grant(testID("bob"), time.Now())); err != nil {
		t.Fatalf("Allocate(bob) = %v, want success", err)
	}

	// Releasing one allocation makes room for another. The client's Close
	// does not wait for the server's answer, so retry for a while.
	if err := relays[0].Close(); err != nil {
		t.Fatalf("relay Close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := allocate(t, srv, srv.Grant(alice, time.Now()))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Allocate after release = %v, want success", err)
		}
	}
	if got := srv.Allocations(alice); got != max {
		t.Errorf("Allocations(alice) = %d, want %d", got, max)
	}
}

func TestMaxBytesPerAllocation(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{MaxBytesPerAllocation: 250})
	relay, err := allocate(t, srv, srv.Grant(testID("alice"), time.Now()))
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	peer := listen(t)
	msg := bytes.Repeat([]byte{'x'}, 100)
	for i := range 3 {
		msg[0] = byte('0' + i)
		if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
			t.Fatalf("WriteTo #%d: %v", i, err)
		}
	}
	for i := range 2 {
		got, _ := read(t, peer)
		if got[0] != byte('0'+i) {
			t.Errorf("datagram #%d starts %q, want %q", i, got[0], byte('0'+i))
		}
	}
	// The third one exceeds the budget and is dropped.
	peer.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := peer.ReadFrom(make([]byte, 1500)); !isTimeout(err) {
		t.Errorf("ReadFrom after budget = %d bytes, %v; want timeout", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestGrant(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{Secret: []byte("0123456789abcdef"), CredentialTTL: time.Minute})
	id := testID("alice")
	now := time.Unix(1_800_000_000, 500_000_000)
	c := srv.Grant(id, now)
	if want := "1800000060:" + id.String(); c.Username != want {
		t.Errorf("Grant().Username = %q, want %q", c.Username, want)
	}
	if want := time.Unix(1_800_000_060, 0); !c.Expires.Equal(want) {
		t.Errorf("Grant().Expires = %v, want %v", c.Expires, want)
	}
	// The TURN REST API password, as coturn's use-auth-secret computes it.
	m := hmac.New(sha256.New, []byte("0123456789abcdef"))
	m.Write([]byte(c.Username))
	if want := base64.StdEncoding.EncodeToString(m.Sum(nil)); c.Password != want {
		t.Errorf("Grant().Password = %q, want %q", c.Password, want)
	}

	gotID, exp, err := turnserver.ParseUsername(c.Username, now)
	if err != nil || gotID != id || !exp.Equal(c.Expires) {
		t.Errorf("ParseUsername(%q) = %v, %v, %v; want %v, %v, nil", c.Username, gotID, exp, err, id, c.Expires)
	}
	if _, _, err := turnserver.ParseUsername(c.Username, now.Add(2*time.Minute)); !errors.Is(err, turnserver.ErrExpired) {
		t.Errorf("ParseUsername(%q) later = %v, want ErrExpired", c.Username, err)
	}
}

func TestParseUsernameMalformed(t *testing.T) {
	id := testID("alice").String()
	for _, u := range []string{"", "x", ":" + id, "abc:" + id, "-5:" + id, "+5:" + id, "5:", "5:" + id[:10], "5:" + id + ":x", "5 :" + id} {
		if _, _, err := turnserver.ParseUsername(u, time.Unix(0, 0)); !errors.Is(err, turnserver.ErrMalformedUsername) {
			t.Errorf("ParseUsername(%q) = %v, want ErrMalformedUsername", u, err)
		}
	}
}

func FuzzParseUsername(f *testing.F) {
	f.Add("1800000060:" + testID("alice").String())
	f.Add("x:y")
	f.Fuzz(func(t *testing.T, u string) {
		id, exp, err := turnserver.ParseUsername(u, time.Unix(0, 0))
		if err != nil {
			return
		}
		canon := strconv.FormatInt(exp.Unix(), 10) + ":" + id.String()
		id2, exp2, err := turnserver.ParseUsername(canon, time.Unix(0, 0))
		if err != nil || id2 != id || !exp2.Equal(exp) {
			t.Errorf("ParseUsername(%q) = %v, %v, %v; want %v, %v (from %q)", canon, id2, exp2, err, id, exp, u)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	secret := []byte("0123456789abcdef")
	tests := []struct {
		name string
		cfg  turnserver.Config
		ok   bool
	}{
		{"minimal", turnserver.Config{ListenUDP: "127.0.0.1:0", Secret: secret}, true},
		{"no listen", turnserver.Config{Secret: secret}, false},
		{"bad listen", turnserver.Config{ListenUDP: "127.0.0.1", Secret: secret}, false},
		{"no secret", turnserver.Config{ListenUDP: "127.0.0.1:0"}, false},
		{"short secret", turnserver.Config{ListenUDP: "127.0.0.1:0", Secret: secret[:8]}, false},
		{"unspecified relay", turnserver.Config{ListenUDP: "127.0.0.1:0", Secret: secret, RelayIP: net.IPv4zero}, false},
		{"negative bytes", turnserver.Config{ListenUDP: "127.0.0.1:0", Secret: secret, MaxBytesPerAllocation: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := turnserver.New(turnserver.Config{ListenUDP: "0.0.0.0:0", Secret: secret}); err == nil {
		t.Errorf("New(0.0.0.0 without RelayIP) = nil error, want error")
	}
}
