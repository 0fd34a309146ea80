package locnet_test

import (
	"cmp"
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
)

func TestDebugRecall(t *testing.T) {
	n := 200
	if s := os.Getenv("IOP_LOCNET_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	locs := locnettest.World(rand.New(rand.NewPCG(1, 2)), n, 0.1)
	sim := locnettest.NewSim(t, locnettest.SimConfig{Seed: 1, Locations: locs})
	sim.JoinAll(ctx)
	sim.Run(ctx, 3*locnet.DefaultRenewInterval, 30*time.Minute)
	byID := map[identity.ID]int{}
	for i, sn := range sim.Nodes {
		byID[sn.Key.ID()] = i
	}
	bad := 0
	for i, sn := range sim.Nodes {
		type nd struct {
			j int
			d float64
		}
		var ds []nd
		for j := range sim.Nodes {
			if j != i {
				ds = append(ds, nd{j, graph.Distance(sn.Location, sim.Nodes[j].Location) / 1000})
			}
		}
		slices.SortFunc(ds, func(a, b nd) int { return cmp.Compare(a.d, b.d) })
		ents := map[identity.ID]locnet.Entry{}
		for _, e := range sn.Node.Entries() {
			ents[e.Info.ID] = e
		}
		miss := 0
		for _, x := range ds[:50] {
			e, ok := ents[sim.Nodes[x.j].Key.ID()]
			if !ok || e.Relation != locnet.Neighbour {
				miss++
			}
		}
		if miss <= 2 {
			continue
		}
		bad++
		if bad > 3 {
			continue
		}
		t.Logf("node %d at %v: %d missing; neighbours %d", i, sn.Location, miss, sn.Node.Stats().Neighbours)
		for r, x := range ds[:50] {
			e, ok := ents[sim.Nodes[x.j].Key.ID()]
			if ok && e.Relation == locnet.Neighbour {
				continue
			}
			// does the other know me?
			var back string
			for _, f := range sim.Nodes[x.j].Node.Entries() {
				if f.Info.ID == sn.Key.ID() {
					back = f.Relation.String() + "/" + f.Role.String()
				}
			}
			other := sim.Nodes[x.j].Node
			// how many nodes does the other know closer to me than itself?
			closer := 0
			for _, f := range other.Entries() {
				if graph.Distance(f.Info.Location, sn.Location) < graph.Distance(sim.Nodes[x.j].Location, sn.Location) {
					closer++
				}
			}
			t.Logf("  rank %d node %d d=%.1f km: mine=%v/%v back=%q other's neighbours=%d closer=%d", r, x.j, x.d, ok, e.Relation, back, other.Stats().Neighbours, closer)
		}
	}
}
