package devnet

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
)

// TestRestartKeepsNodesAndData starts a devnet, stores a profile on a node,
// stops it and starts it again on the same directory: the same nodes come
// back at the same addresses with the profile.
func TestRestartKeepsNodesAndData(t *testing.T) {
	dir := t.TempDir()
	d, err := Start(Config{Dir: dir, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	first := d.Info()
	if len(first.Nodes) != 2 || first.Nodes[0].Location == first.Nodes[1].Location {
		t.Fatalf("devnet nodes = %+v, want 2 at different places", first.Nodes)
	}
	var onDisk Info
	data, err := os.ReadFile(filepath.Join(dir, "devnet.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk.Nodes[1].Addr != first.Nodes[1].Addr {
		t.Fatalf("devnet.json = %s (%v), want the running nodes", data, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	key, _ := identity.GenerateKey(nil)
	h, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ai, err := p2p.ParseAddr(first.Nodes[1].Addr)
	if err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	c, err := client.Dial(qctx, h, ai)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartConversation(qctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterHosting(qctx, "chat/user"); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckIn(qctx); err != nil {
		t.Fatal(err)
	}
	sp, err := graph.Sign(key, graph.Profile{Type: "chat/user", Name: "Ada", Location: graph.Nowhere, Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateProfile(qctx, sp, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The location based network forms (node 1 bootstraps through node 0).
	tick := time.NewTicker(20 * time.Millisecond) // polling the overlay's state
	for len(d.Nodes()[1].Loc().Neighbours()) == 0 {
		select {
		case <-tick.C:
		case <-qctx.Done():
			t.Fatal("node 1 has no LOC neighbour after 30 s")
		}
	}
	tick.Stop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	d, err = Start(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	again := d.Info()
	// The LOC map comes back from the store before the node runs.
	if nb := d.Nodes()[1].Loc().Neighbours(); len(nb) == 0 || nb[0].ID != first.Nodes[0].ID {
		t.Errorf("node 1's LOC neighbours after restart = %v, want node 0 from its store", nb)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if len(again.Nodes) != 2 {
		t.Fatalf("restarted devnet has %d nodes, want 2", len(again.Nodes))
	}
	for i := range again.Nodes {
		if again.Nodes[i].ID != first.Nodes[i].ID || again.Nodes[i].Addr != first.Nodes[i].Addr {
			t.Errorf("node %d after restart = %s at %s, want %s at %s", i, again.Nodes[i].ID, again.Nodes[i].Addr, first.Nodes[i].ID, first.Nodes[i].Addr)
		}
	}
	c, err = client.Dial(qctx, h, ai)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.GetProfile(qctx, key.ID(), client.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Profile.Profile.Name != "Ada" {
		t.Errorf("profile after restart = %q, want Ada", info.Profile.Profile.Name)
	}
}
