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

func TestDebugExcess(t *testing.T) {
	n := 2000
	if s := os.Getenv("IOP_LOCNET_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	locs := locnettest.World(rand.New(rand.NewPCG(1, 2)), n, 0.1)
	sim := locnettest.NewSim(t, locnettest.SimConfig{Seed: 1, Locations: locs})
	sim.JoinAll(ctx)
	sim.Run(ctx, 4*locnet.DefaultRenewInterval, 30*time.Minute)
	byID := map[identity.ID]int{}
	for i, sn := range sim.Nodes {
		byID[sn.Key.ID()] = i
	}
	top := make([]map[int]bool, n)
	for i := range locs {
		type nd struct {
			j int
			d float64
		}
		var ds []nd
		for j := range locs {
			if j != i {
				ds = append(ds, nd{j, graph.Distance(locs[i], locs[j])})
			}
		}
		slices.SortFunc(ds, func(a, b nd) int { return cmp.Compare(a.d, b.d) })
		top[i] = map[int]bool{}
		for _, x := range ds[:50] {
			top[i][x.j] = true
		}
	}
	var cls [4][3]int // [mine/theirs/both/neither][role init/acc]
	shown := 0
	for i, sn := range sim.Nodes {
		es := sn.Node.Entries()
		var c [4][3]int
		for _, e := range es {
			if e.Relation != locnet.Neighbour {
				continue
			}
			j := byID[e.Info.ID]
			k := 3
			switch {
			case top[i][j] && top[j][i]:
				k = 2
			case top[i][j]:
				k = 0
			case top[j][i]:
				k = 1
			}
			c[k][e.Role]++
			cls[k][e.Role]++
		}
		if sn.Node.Stats().Neighbours > 150 && shown < 3 {
			shown++
			cnt := 0
			for _, e := range es {
				j := byID[e.Info.ID]
				if e.Relation != locnet.Neighbour || top[i][j] || top[j][i] || cnt > 4 {
					continue
				}
				cnt++
				var back locnet.Entry
				for _, f := range sim.Nodes[j].Node.Entries() {
					if f.Info.ID == sn.Key.ID() {
						back = f
					}
				}
				t.Logf("   neither %d d=%.0fkm role %v expires in %v; back: %v %v expires in %v; j has %d neighbours", j, graph.Distance(locs[i], locs[j])/1000, e.Role, e.ExpiresAt.Sub(sim.Clock.Now()), back.Relation, back.Role, back.ExpiresAt.Sub(sim.Clock.Now()), sim.Nodes[j].Node.Stats().Neighbours)
			}
			t.Logf("node %d at %v: %d neighbours: mine %v theirs %v both %v neither %v", i, sn.Location, sn.Node.Stats().Neighbours, c[0][1:], c[1][1:], c[2][1:], c[3][1:])
		}
	}
	t.Logf("all: mine %v theirs %v both %v neither %v", cls[0][1:], cls[1][1:], cls[2][1:], cls[3][1:])
}
