package can

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/internal/can/canpb"
	"github.com/iop-go/iop/internal/p2p"
)

// startNetwork starts n DHT nodes on loopback that bootstrap from node 0.
func startNetwork(t *testing.T, n int) []*CAN { return startNetworkB(t, n) }

func startNetworkB(t testing.TB, n int) []*CAN {
	t.Helper()
	var out []*CAN
	var boot []peer.AddrInfo
	for i := range n {
		c := startNode(t, boot)
		if i == 0 {
			h := c.cfg.Host
			boot = []peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}}
		}
		out = append(out, c)
	}
	for _, c := range out {
		select {
		case <-c.Ready():
		case <-time.After(30 * time.Second):
			t.Fatal("a node did not join the DHT within 30 s")
		}
	}
	// Peers enter a routing table asynchronously, after identify: connect
	// every pair (a node that joined early otherwise learns of later ones
	// only through their lookups, which under load can take long), then
	// wait until every node knows every other, so lookups do not race it.
	for i, a := range out {
		for _, b := range out[i+1:] {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			bh := b.cfg.Host
			if err := a.cfg.Host.Connect(ctx, peer.AddrInfo{ID: bh.ID(), Addrs: bh.Addrs()}); err != nil {
				t.Logf("connect %s to %s: %v", a.cfg.Host.ID(), bh.ID(), err)
			}
			cancel()
		}
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, c := range out {
		// Also until the records a node put alone (the first node's
		// contact) went to its peers: that republish would race the test.
		for c.RoutingTableSize() < n-1 || n > 1 && c.Alone() {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("a node knows %d of %d peers after 30 s", c.RoutingTableSize(), n-1)
			}
		}
	}
	return out
}

// startNode runs a CAN node on loopback that joins through boot, until the
// test ends or stopNode.
func startNode(t testing.TB, boot []peer.AddrInfo) *CAN {
	t.Helper()
	k := key(t)
	h, err := p2p.New(p2p.Config{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Limits: p2p.ServerLimits()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c, err := New(Config{Host: h, Key: k, Bootstrap: boot, Contact: func() *canpb.NodeContact {
		var addrs []string
		for _, a := range h.Addrs() {
			addrs = append(addrs, a.String())
		}
		return &canpb.NodeContact{Addrs: addrs}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			h.Close()
		})
	}
	nodeStops.Store(c, stop)
	t.Cleanup(stop)
	return c
}

// nodeStops holds the function that stops each node startNode started.
var nodeStops sync.Map // *CAN -> func()

// stopNode stops a node before the test ends, as its operator would.
func stopNode(c *CAN) {
	if stop, ok := nodeStops.Load(c); ok {
		stop.(func())()
	}
}

// TestRecordsPutAloneReachFirstPeer: a node alone in the network keeps
// what it publishes in its own store; the first peer to join gets it at
// once, and still serves it after the publisher is gone.
func TestRecordsPutAloneReachFirstPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startNetwork(t, 1)[0]
	user := key(t)
	c, s := claim(t, user, a.cfg.Key.ID(), canpb.ClaimState_HOSTED, 1)
	if err := a.PublishPointer(ctx, c, s); err != nil {
		t.Fatal(err)
	}
	if !a.Alone() {
		t.Fatal("a node with an empty routing table did not note its records as stored alone")
	}
	h := a.cfg.Host
	b := startNode(t, []peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}})
	tick := time.NewTicker(10 * time.Millisecond) // the republish runs in a's Run
	defer tick.Stop()
	for a.Alone() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the records put alone were never republished to the first peer")
		}
	}
	stopNode(a)
	if p, _, err := b.Resolve(ctx, user.ID()); err != nil || p.Identity != user.ID() {
		t.Fatalf("Resolve with the publisher gone = %v, %v", p, err)
	}
}

// TestResolveAcrossNodes publishes a pointer at one node and resolves it,
// and the server's contact, from every other node.
func TestResolveAcrossNodes(t *testing.T) {
	nodes := startNetwork(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	user := key(t)
	host := nodes[3]
	srvID := host.cfg.Key.ID()
	c, s := claim(t, user, srvID, canpb.ClaimState_HOSTED, 1)
	if err := host.PublishPointer(ctx, c, s); err != nil {
		t.Fatal(err)
	}
	if err := host.PublishContact(ctx); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		p, _, err := n.Resolve(ctx, user.ID())
		if err != nil {
			t.Fatalf("node %d: Resolve = %v", i, err)
		}
		if p.Server != srvID {
			t.Errorf("node %d: Resolve = server %s, want %s", i, p.Server.Short(), srvID.Short())
		}
		nc, _, err := n.Contact(ctx, srvID)
		if err != nil || len(nc.Addrs) == 0 {
			t.Fatalf("node %d: Contact = %v, %v", i, nc, err)
		}
	}
	// The identity moves: its old server publishes the MOVED claim, which
	// replaces the hosting pointer everywhere.
	newSrv := nodes[5].cfg.Key.ID()
	c2, s2 := claim(t, user, newSrv, canpb.ClaimState_MOVED, 2)
	if err := host.PublishPointer(ctx, c2, s2); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		p, _, err := n.Resolve(ctx, user.ID())
		if err != nil || p.Claim.State != canpb.ClaimState_MOVED || p.Server != newSrv {
			t.Errorf("node %d after the move: Resolve = %+v, %v; want MOVED to %s", i, p, err, newSrv.Short())
		}
	}
	// An older claim can no longer replace it.
	if err := host.PublishPointer(ctx, c, s); err == nil {
		t.Error("PublishPointer of an older claim succeeded")
	}
}

// TestForgedRecordsRejected: nodes refuse values that fail validation, so
// nothing forged is ever stored or served.
func TestForgedRecordsRejected(t *testing.T) {
	nodes := startNetwork(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, liar := key(t), key(t)
	srvID := nodes[1].cfg.Key.ID()
	// A hosting claim for node 1, countersigned by another key.
	c, s := claim(t, user, srvID, canpb.ClaimState_HOSTED, 1)
	forged, err := SignPointer(liar, c, s, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].dht.PutValue(ctx, IdentityKey(user.ID()), forged); err == nil {
		t.Fatal("PutValue of a forged pointer succeeded")
	}
	if _, _, err := nodes[2].Resolve(ctx, user.ID()); err == nil {
		t.Error("a forged pointer was resolved")
	}
}
