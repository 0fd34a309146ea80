package locnet_test

import (
	"math/rand/v2"
	"testing"

	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// benchNode is a node whose map holds 50 neighbours and 300 colleagues
// spread over the world, the size of a map in a large network.
func benchNode(b *testing.B) (*env, *locnet.Node, peer) {
	e := newEnv(b)
	n, _ := e.node(deg(b, 47.5, 19.0), func(c *locnet.Config) { c.MaxNeighbours = 1000 })
	locs := locnettest.World(rand.New(rand.NewPCG(1, 1)), 2000, 0.3)
	nb, col := 0, 0
	var last peer
	for _, l := range locs {
		p := e.peer(l)
		switch {
		case nb < 50 && ask(b, n, p, "acceptNeighbour"):
			nb++
		case col < 300 && ask(b, n, p, "acceptColleague"):
			col++
		}
		last = p
	}
	return e, n, last
}

func BenchmarkGetClosestNodes(b *testing.B) {
	_, n, p := benchNode(b)
	req := &locpb.Request{Body: &locpb.Request_GetClosestNodes{GetClosestNodes: &locpb.GetClosestNodesRequest{
		Latitude: 35_000_000, Longitude: 139_000_000, MaxNodeCount: 50, IncludeNeighbours: true,
	}}}
	b.ReportAllocs()
	for b.Loop() {
		if resp := n.HandleRequest(ctx, p.contact(), req); len(resp.GetNodeList().GetNodes()) != 50 {
			b.Fatalf("response = %v", resp)
		}
	}
}

func BenchmarkAcceptColleague(b *testing.B) {
	e, n, _ := benchNode(b)
	p := e.peer(deg(b, -20, -60))
	req := build("acceptColleague", p.info.Proto())
	b.ReportAllocs()
	for b.Loop() {
		n.HandleRequest(ctx, p.contact(), req)
	}
}

func BenchmarkOpenNodeInfo(b *testing.B) {
	info := signInfo(b, locnettest.Key(1, 1), deg(b, 1, 2), 1, locnettest.Epoch)
	s := info.Proto()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := locnet.OpenNodeInfo(s); err != nil {
			b.Fatal(err)
		}
	}
}
