package locnet_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
)

func TestSimExplore(t *testing.T) {
	n := 200
	if s := os.Getenv("IOP_LOCNET_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	locs := locnettest.World(rand.New(rand.NewPCG(1, 2)), n, 0.1)
	sim := locnettest.NewSim(t, locnettest.SimConfig{Seed: 1, Locations: locs})
	start := time.Now()
	sim.JoinAll(ctx)
	t.Logf("joined in %v, %d calls (%.0f/node) %v", time.Since(start), sim.Net.Calls(), float64(sim.Net.Calls())/float64(n), sim.Net.CallsByKind())
	q := sim.Measure(ctx, locnet.DefaultNeighbourhoodSize, 0.95, 500, 30)
	t.Logf("after join: %v", q)
	for p := range 4 {
		c0 := sim.Net.Calls()
		k0 := sim.Net.CallsByKind()
		start = time.Now()
		sim.Run(ctx, locnet.DefaultRenewInterval, 30*time.Minute)
		k1 := sim.Net.CallsByKind()
		for k := range k1 {
			k1[k] -= k0[k]
		}
		t.Logf("period %d: %v, %.0f calls/node %v", p, time.Since(start), float64(sim.Net.Calls()-c0)/float64(n), k1)
		q := sim.Measure(ctx, locnet.DefaultNeighbourhoodSize, 0.95, 500, 30)
		t.Logf("period %d: %v", p, q)
	}
}
