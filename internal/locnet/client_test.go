package locnet_test

import (
	"testing"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
	"github.com/iop-go/iop/internal/p2p"
)

// TestClosestFrom: a caller outside the network (a plain client host) finds
// the nodes closest to a point, starting from any node.
func TestClosestFrom(t *testing.T) {
	ctx := testCtx(t)
	locs := []graph.Location{deg(t, 47.50, 19.04), deg(t, 48.21, 16.37), deg(t, 50.08, 14.44), deg(t, 52.23, 21.01)}
	nodes := locnettest.StartHosts(t, locs, nil)
	for _, hn := range nodes[1:] {
		if err := hn.Node.Bootstrap(ctx); err != nil {
			t.Fatalf("bootstrap: %v", err)
		}
	}
	h, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tr, err := locnet.NewLibp2pTransport(locnet.Libp2pConfig{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	start := nodes[3].Node.Self() // Warsaw
	got, err := locnet.ClosestFrom(ctx, tr, start.Contact(), deg(t, 49.19, 16.61), 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != nodes[1].Key.ID() || got[1].ID != nodes[2].Key.ID() {
		t.Errorf("ClosestFrom(Brno) = %v, want Vienna then Prague", got)
	}
	if _, err := locnet.ClosestFrom(ctx, tr, start.Contact(), graph.Nowhere, 2, 5); err == nil {
		t.Error("ClosestFrom accepted no location")
	}
}
