package node_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/node"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// TestTurnCredentials: an identity that proved its key to a node gets
// short-lived TURN credentials and allocates a relay on the node's
// STUN/TURN server with a standard (pion) TURN client; an unproven
// conversation gets none.
func TestTurnCredentials(t *testing.T) {
	n, err := node.New(node.Config{DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, HTTP: "off", TURN: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	h, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	ai, err := p2p.ParseAddr(n.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(qctx, h, ai)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, _ := identity.GenerateKey(nil)
	if err := c.StartConversation(qctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TurnCredentials(qctx); !errors.Is(err, client.Status(wirepb.Status_UNAUTHORIZED)) {
		t.Fatalf("TurnCredentials before proving the key = %v, want UNAUTHORIZED", err)
	}
	if err := c.VerifyIdentity(qctx); err != nil {
		t.Fatal(err)
	}
	cred, err := c.TurnCredentials(qctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(cred.Username, ":"+k.ID().String()) || time.Until(cred.Expires) <= 0 {
		t.Errorf("credentials = %+v, want a username naming %s and a future expiry", cred, k.ID().Short())
	}
	var server string
	for _, u := range cred.URLs {
		if a, ok := strings.CutPrefix(u, "stun:"); ok {
			server = a
		}
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server, TURNServerAddr: server,
		Username: cred.Username, Password: cred.Password, Realm: cred.Realm, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := tc.Allocate()
	if err != nil {
		t.Fatalf("Allocate with granted credentials: %v", err)
	}
	defer relay.Close()
	if ra, ok := relay.LocalAddr().(*net.UDPAddr); !ok || !ra.IP.IsLoopback() {
		t.Errorf("relay address = %v, want one on the node's loopback", relay.LocalAddr())
	}
}
