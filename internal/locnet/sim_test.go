package locnet_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
)

// The quality the simulations must reach.
const (
	wantRecall  = 0.95 // of every node's true 50 nearest among its neighbours
	wantExplore = 0.99 // of random points whose closest node ExploreClosest finds
	explorePts  = 500
	exploreHops = 30
	simStep     = 30 * time.Minute // simulated time between ticks
)

// newWorldSim places n nodes around the world and creates them.
func newWorldSim(t testing.TB, n int, seed uint64, seeds []int) *locnettest.Sim {
	locs := locnettest.World(rand.New(rand.NewPCG(seed, 2017)), n, 0.1)
	return locnettest.NewSim(t, locnettest.SimConfig{Seed: seed, Locations: locs, Seeds: seeds})
}

// measure logs and returns the quality of the network.
func measure(t testing.TB, sim *locnettest.Sim, label string) locnettest.Quality {
	t.Helper()
	start := time.Now()
	q := sim.Measure(ctx, locnet.DefaultNeighbourhoodSize, wantRecall, explorePts, exploreHops)
	t.Logf("%s: %v (measured in %v)", label, q, time.Since(start).Round(time.Millisecond))
	return q
}

// checkQuality fails the test when q misses the criteria.
func checkQuality(t testing.TB, q locnettest.Quality, label string) {
	t.Helper()
	if q.BelowRecall > 0 {
		t.Errorf("%s: %d nodes hold fewer than %.0f%% of their 50 nearest (worst %.2f, node %d)", label, q.BelowRecall, 100*wantRecall, q.MinRecall, q.WorstRecallNode)
	}
	if q.Unreachable > 0 {
		t.Errorf("%s: %d nodes unreachable", label, q.Unreachable)
	}
	if rate := float64(q.ExploreOK) / float64(q.ExploreTotal); rate < wantExplore {
		t.Errorf("%s: ExploreClosest found the closest node for %.1f%% of points, want %.0f%%", label, 100*rate, 100*wantExplore)
	}
}

// runPeriods runs renewal periods and logs the requests sent per node in
// each, by kind.
func runPeriods(t testing.TB, sim *locnettest.Sim, periods int, step time.Duration, label string) {
	t.Helper()
	for p := range periods {
		c0, k0 := sim.Net.Calls(), sim.Net.CallsByKind()
		start := time.Now()
		sim.Run(ctx, locnet.DefaultRenewInterval, step)
		live := float64(len(sim.Live()))
		t.Logf("%s period %d: %.0f requests/node in %v [%s]", label, p+1, float64(sim.Net.Calls()-c0)/live,
			time.Since(start).Round(time.Millisecond), perNode(sim.Net.CallsByKind(), k0, live))
	}
}

func perNode(now, before map[string]uint64, nodes float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if d := now[k] - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, float64(d)/nodes))
		}
	}
	return strings.Join(parts, ", ")
}

// join bootstraps every node and logs what it cost.
func join(t testing.TB, sim *locnettest.Sim) {
	t.Helper()
	start := time.Now()
	sim.JoinAll(ctx)
	n := float64(len(sim.Nodes))
	t.Logf("join: %.0f requests/node in %v [%s]", float64(sim.Net.Calls())/n, time.Since(start).Round(time.Millisecond),
		perNode(sim.Net.CallsByKind(), nil, n))
}

// TestSimulation200 runs 200 nodes to convergence, through several renewal
// periods, and through the loss of nodes.
func TestSimulation200(t *testing.T) {
	sim := newWorldSim(t, 200, 1, nil)
	join(t, sim)
	runPeriods(t, sim, 3, simStep, "200")
	checkQuality(t, measure(t, sim, "200 converged"), "converged")

	// With the 2017 intervals (discovery every 5 minutes) for one period.
	runPeriods(t, sim, 1, locnet.DefaultDiscoveryInterval, "200 (5 min ticks)")

	// Relations survive renewal and expiry cycles.
	runPeriods(t, sim, 4, simStep, "200")
	checkQuality(t, measure(t, sim, "200 after 5 more periods"), "after 5 more periods")

	// Nodes that disappear are expired from every table.
	for _, i := range []int{5, 50, 150} {
		sim.SetDown(i, true)
	}
	runPeriods(t, sim, 6, simStep, "200 minus 3")
	q := measure(t, sim, "200 minus 3")
	if q.DeadInTables > 0 {
		t.Errorf("%d entries of vanished nodes remain after 42 h", q.DeadInTables)
	}
	checkQuality(t, q, "after 3 nodes left")
}

// TestSimulation2000 runs 2,000 nodes to convergence.
func TestSimulation2000(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("simulates 2,000 LOC nodes (about a minute, many times that under -race): skipped with -short and -race")
	}
	sim := newWorldSim(t, 2000, 2, nil)
	join(t, sim)
	runPeriods(t, sim, 3, simStep, "2000")
	checkQuality(t, measure(t, sim, "2000 converged"), "converged")
}

// TestSimulationSplit grows two networks apart behind a partition, with
// seeds on both sides, heals it and checks that they merge into one.
func TestSimulationSplit(t *testing.T) {
	n := 400
	if raceEnabled {
		n = 200
	}
	sim := newWorldSim(t, n, 3, []int{0, n / 2})
	sim.Net.Partition(sim.IDs(0, n/2), sim.IDs(n/2, n))
	join(t, sim)
	runPeriods(t, sim, 2, simStep, "split")
	q := measure(t, sim, "split")
	if q.Unreachable < n/2 {
		t.Fatalf("the halves are not apart: only %d nodes unreachable", q.Unreachable)
	}
	sim.Net.Heal()
	runPeriods(t, sim, 3, simStep, "healed")
	checkQuality(t, measure(t, sim, "merged"), "merged")
}

// TestSimulation10000 runs 10,000 nodes. It takes about five minutes and
// 1.5 GiB: set IOP_LOCNET_BIG=1 and run
//
//	IOP_LOCNET_BIG=1 go test ./internal/locnet -run TestSimulation10000 -v -timeout 60m
func TestSimulation10000(t *testing.T) {
	if os.Getenv("IOP_LOCNET_BIG") == "" {
		t.Skip("simulates 10,000 LOC nodes (about 5 minutes): set IOP_LOCNET_BIG=1")
	}
	sim := newWorldSim(t, 10000, 4, nil)
	join(t, sim)
	for p := range 4 {
		runPeriods(t, sim, 1, simStep, fmt.Sprintf("10000 #%d", p+1))
		measure(t, sim, fmt.Sprintf("10000 after period %d", p+1))
	}
	checkQuality(t, measure(t, sim, "10000 converged"), "converged")
}

// TestSimulationEncoded runs a small network whose every request and
// response goes through the protobuf codec, as on the wire.
func TestSimulationEncoded(t *testing.T) {
	sim := newWorldSim(t, 60, 5, nil)
	sim.Net.Encode = true
	join(t, sim)
	runPeriods(t, sim, 2, simStep, "60 encoded")
	checkQuality(t, measure(t, sim, "60 encoded"), "encoded")
}

// TestBootstrapRetriesSoon: a node whose seed is not up yet (both started
// at once, as a devnet starts them) retries after 1 s, 2 s, 4 s … rather
// than after BootstrapRetry, and joins within seconds of the seed coming
// up.
func TestBootstrapRetriesSoon(t *testing.T) {
	locs := locnettest.World(rand.New(rand.NewPCG(7, 2017)), 2, 0.1)
	sim := locnettest.NewSim(t, locnettest.SimConfig{Seed: 7, Locations: locs, Seeds: []int{0}})
	sim.SetDown(0, true)
	joiner := sim.Nodes[1].Node
	// Ten seconds with the seed down: the node keeps trying.
	before := sim.Net.Calls()
	sim.Run(ctx, 10*time.Second, 100*time.Millisecond)
	if len(joiner.Neighbours()) != 0 {
		t.Fatal("the node has neighbours while its only seed is down")
	}
	tries := sim.Net.Calls() - before
	if tries < 2 || tries > 6 {
		t.Errorf("bootstrap attempts in 10 s with the seed down = %d, want 2 to 6 (1 s, 2 s, 4 s … with jitter)", tries)
	}
	// The seed comes up: the node joins within its current back-off (at
	// most 16 s plus as much jitter), far before BootstrapRetry (5 min).
	sim.SetDown(0, false)
	for waited := time.Duration(0); len(joiner.Neighbours()) == 0; waited += 100 * time.Millisecond {
		if waited > 32*time.Second {
			t.Fatalf("the node did not join within %v of its seed coming up", waited)
		}
		sim.Run(ctx, 100*time.Millisecond, 100*time.Millisecond)
	}
}
