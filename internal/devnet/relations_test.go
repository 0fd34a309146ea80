package devnet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// TestPublicEdgesOutliveTheirServer: the public edges stored at an
// identity's hosting server are published in the content address
// network; another node hands them out, verified by the client, with a
// revocation included, and still does after the hosting node stopped.
func TestPublicEdgesOutliveTheirServer(t *testing.T) {
	d, err := Start(Config{Dir: t.TempDir(), Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stopAll := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(rctx) }()
	t.Cleanup(func() {
		stopAll()
		if err := <-ran; err != nil {
			t.Errorf("devnet: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range d.Nodes() {
		select {
		case <-n.CAN().Ready():
		case <-ctx.Done():
			t.Fatal("nodes did not join the content address network")
		}
	}
	h, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	info := d.Info()

	// Bea is hosted at node 0 and stores two edges there.
	kB, _ := identity.GenerateKey(nil)
	kA, _ := identity.GenerateKey(nil)
	kC, _ := identity.GenerateKey(nil)
	c := dialNode(t, ctx, h, info.Nodes[0].Addr)
	if err := c.StartConversation(ctx, kB); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterHosting(ctx, "person"); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishClaim(ctx); err != nil {
		t.Fatal(err)
	}
	edge := func(from *identity.Key, typ, app string) *graph.SignedCard {
		t.Helper()
		sc, err := graph.SignCard(from, graph.Card{Type: typ, Recipient: kB.Public(), ValidTo: time.Now().AddDate(1, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		acc, err := graph.Accept(kB, sc, []byte(app))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddRelatedIdentity(ctx, sc, acc); err != nil {
			t.Fatal(err)
		}
		return sc
	}
	employs := edge(kA, "work/employs", "hr")
	knows := edge(kC, "friend/knows", "social")

	other := dialNode(t, ctx, h, info.Nodes[2].Addr)
	// published reads Bea's edges through node 2 until want holds.
	published := func(what string, opt client.RelationOptions, want func(*client.Published) error) *client.Published {
		t.Helper()
		tick := time.NewTicker(20 * time.Millisecond) // pages are published in the background
		defer tick.Stop()
		for {
			pub, err := other.PublishedRelations(ctx, kB.ID(), opt)
			if err == nil {
				if err = want(pub); err == nil {
					return pub
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	count := func(n int) func(*client.Published) error {
		return func(p *client.Published) error {
			if len(p.Edges) != n {
				return fmt.Errorf("%d edges, want %d", len(p.Edges), n)
			}
			return nil
		}
	}
	pub := published("both edges published", client.RelationOptions{}, count(2))
	if pub.Publisher != info.Nodes[0].ID || len(pub.Missing) != 0 {
		t.Errorf("published by %s with pages %v missing; want node 0, none", pub.Publisher.Short(), pub.Missing)
	}
	published("the type filter", client.RelationOptions{Type: "work/*"}, count(1))

	// Ann revokes her edge at Bea's server: the revocation is published.
	rec, err := graph.SignRevocation(kA, employs, 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddEdgeRecord(ctx, kB.ID(), rec); err != nil {
		t.Fatal(err)
	}
	published("the revocation published", client.RelationOptions{}, count(1))

	// Node 0 stops: Bea's server is gone, her graph is still readable.
	c.Close()
	// Node 0 answered: Run has started it, so StopNode can stop it.
	if !d.StopNode(0) {
		t.Fatal("StopNode(0) on a running devnet = false")
	}
	ai, err := p2p.ParseAddr(info.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	h.Network().ClosePeer(ai.ID)
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := client.Dial(dctx, h, ai); err == nil {
		t.Fatal("node 0 still answers")
	}
	dcancel()
	for _, i := range []int{1, 2} {
		conn := dialNode(t, ctx, h, info.Nodes[i].Addr)
		pub, err := conn.PublishedRelations(ctx, kB.ID(), client.RelationOptions{IncludeInvalid: true})
		if err != nil {
			t.Fatalf("node %d: published edges with the hosting server down: %v", i, err)
		}
		states := map[graph.CardID]*graph.EdgeState{}
		for _, st := range pub.Edges {
			states[st.Edge.ID()] = st
		}
		if st := states[employs.ID()]; st == nil || !st.Revoked {
			t.Errorf("node %d: the revoked edge = %+v, want it, revoked", i, st)
		}
		if st := states[knows.ID()]; st == nil || st.Status != graph.EdgeValid {
			t.Errorf("node %d: the valid edge = %+v, want it, valid", i, st)
		}
	}
	// An identity nobody published is not found.
	stranger, _ := identity.GenerateKey(nil)
	if _, err := other.PublishedRelations(ctx, stranger.ID(), client.RelationOptions{}); !errors.Is(err, client.Status(wirepb.Status_NOT_FOUND)) {
		t.Errorf("published edges of a stranger = %v, want NOT_FOUND", err)
	}
}
