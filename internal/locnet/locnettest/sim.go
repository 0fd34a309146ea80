// Package locnettest helps test the location based network: world-like node
// placement, a simulation of thousands of nodes on memnet under a virtual
// clock with quality measures computed by brute force, and real nodes on
// libp2p hosts on loopback.
package locnettest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/memnet"
)

// Epoch is when simulated clocks start.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a virtual clock. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Key is the deterministic key number i of a simulation seeded with seed.
func Key(seed uint64, i int) *identity.Key {
	var s [identity.SeedSize]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(i))
	s[16] = 0x1c
	k, err := identity.NewKeyFromSeed(s[:])
	if err != nil {
		panic(err)
	}
	return k
}

// World returns n locations like those of a real network: a fraction
// uniform of them spread uniformly over latitudes -56 to 70, the others
// around Cities chosen with Zipf weights (the i-th city weighs 1/(i+1))
// with a normal spread of 25 km.
func World(r *rand.Rand, n int, uniform float64) []graph.Location {
	cum := make([]float64, len(Cities))
	total := 0.0
	for i := range Cities {
		total += 1 / float64(i+1)
		cum[i] = total
	}
	out := make([]graph.Location, n)
	for i := range out {
		var lat, lon float64
		if r.Float64() < uniform {
			lo, hi := math.Sin(-56*math.Pi/180), math.Sin(70*math.Pi/180)
			lat = math.Asin(lo+r.Float64()*(hi-lo)) * 180 / math.Pi
			lon = r.Float64()*360 - 180
		} else {
			c := Cities[min(sort(cum, r.Float64()*total), len(Cities)-1)]
			const sigmaKm = 25.0
			lat = c.Lat + r.NormFloat64()*sigmaKm/111.2
			lon = c.Lon + r.NormFloat64()*sigmaKm/(111.2*math.Cos(c.Lat*math.Pi/180))
			lat = max(-89.9, min(89.9, lat))
			if lon > 180 {
				lon -= 360
			} else if lon <= -180 {
				lon += 360
			}
		}
		l, err := graph.LocationFromDegrees(lat, lon)
		if err != nil {
			panic(err)
		}
		out[i] = l
	}
	return out
}

// nth returns the n-th smallest value of d (from 0), reordering d.
func nth(d []float64, n int) float64 {
	lo, hi := 0, len(d)-1
	for lo < hi {
		p := d[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for d[i] < p {
				i++
			}
			for d[j] > p {
				j--
			}
			if i <= j {
				d[i], d[j] = d[j], d[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return d[n]
		}
	}
	return d[n]
}

func sort(cum []float64, x float64) int {
	i, _ := slices.BinarySearch(cum, x)
	return i
}

// SimConfig configures a simulation.
type SimConfig struct {
	Seed      uint64           // seeds the keys and every random choice
	Locations []graph.Location // one node per location
	Seeds     []int            // the indexes of the seed nodes; default 0, 1, 2
	// Configure, if set, edits the configuration of node i before it is
	// created.
	Configure func(i int, c *locnet.Config)
}

// SimNode is one node of a simulation.
type SimNode struct {
	Node     *locnet.Node
	Endpoint *memnet.Endpoint
	Key      *identity.Key
	Location graph.Location
	Down     bool // taken off the network
}

// Sim is a network of nodes on memnet driven by a virtual clock, in one
// goroutine, deterministically.
type Sim struct {
	Net   *memnet.Network
	Clock *Clock
	Cache *locnet.VerifyCache // shared by all nodes: each record is verified once
	Nodes []*SimNode
	Seeds []locnet.Contact
	Rand  *rand.Rand
}

// NewSim creates the nodes of a simulation; they join with JoinAll.
func NewSim(tb testing.TB, cfg SimConfig) *Sim {
	tb.Helper()
	if cfg.Seeds == nil {
		cfg.Seeds = []int{0, 1, 2}
	}
	s := &Sim{
		Net:   memnet.New(),
		Clock: NewClock(Epoch),
		Cache: locnet.NewVerifyCache(0),
		Rand:  rand.New(rand.NewPCG(cfg.Seed, 0x51a)),
	}
	for i := range cfg.Locations {
		k := Key(cfg.Seed, i)
		ep := s.Net.Join(k.Public())
		s.Nodes = append(s.Nodes, &SimNode{Endpoint: ep, Key: k, Location: cfg.Locations[i]})
	}
	for _, i := range cfg.Seeds {
		if i < len(s.Nodes) {
			s.Seeds = append(s.Seeds, s.Nodes[i].Endpoint.Contact())
		}
	}
	for i, sn := range s.Nodes {
		c := locnet.Config{
			Key:         sn.Key,
			Location:    sn.Location,
			Addrs:       []string{sn.Endpoint.Addr()},
			Seeds:       s.Seeds,
			Transport:   sn.Endpoint,
			Clock:       s.Clock.Now,
			Rand:        rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1)),
			VerifyCache: s.Cache,
		}
		if cfg.Configure != nil {
			cfg.Configure(i, &c)
		}
		n, err := locnet.New(c)
		if err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
		sn.Node = n
		sn.Endpoint.Handle(n)
	}
	return s
}

// IDs returns the IDs of the nodes with indexes from lo to hi-1.
func (s *Sim) IDs(lo, hi int) []identity.ID {
	var out []identity.ID
	for _, sn := range s.Nodes[lo:hi] {
		out = append(out, sn.Key.ID())
	}
	return out
}

// JoinAll bootstraps the nodes one after the other, a second apart.
func (s *Sim) JoinAll(ctx context.Context) {
	for _, sn := range s.Nodes {
		s.Clock.Advance(time.Second)
		if !sn.Down {
			_ = sn.Node.Bootstrap(ctx)
		}
	}
}

// Run moves the clock forward by total in steps of step, and after each
// step calls Tick on every live node in order.
func (s *Sim) Run(ctx context.Context, total, step time.Duration) {
	for d := time.Duration(0); d < total; d += step {
		s.Clock.Advance(step)
		for _, sn := range s.Nodes {
			if !sn.Down {
				sn.Node.Tick(ctx)
			}
		}
	}
}

// SetDown takes node i off the network or brings it back.
func (s *Sim) SetDown(i int, down bool) {
	s.Nodes[i].Down = down
	s.Nodes[i].Endpoint.SetDown(down)
}

// Live returns the indexes of the nodes on the network.
func (s *Sim) Live() []int {
	var out []int
	for i, sn := range s.Nodes {
		if !sn.Down {
			out = append(out, i)
		}
	}
	return out
}

// Quality is how well a simulated network matches the truth.
type Quality struct {
	Nodes           int
	MinRecall       float64 // the worst node's fraction of its true K nearest among its neighbours
	MeanRecall      float64
	BelowRecall     int // nodes whose recall is under the wanted one
	Unreachable     int // nodes a BFS over the relations from node 0 does not reach
	ExploreOK       int // random points whose true closest node ExploreClosest found
	ExploreTotal    int
	ExploreCalls    float64 // mean requests per exploration
	MeanNeighbours  float64
	MaxNeighbours   int
	MeanColleagues  float64
	MaxColleagues   int
	DeadInTables    int // entries of nodes that are down
	WorstRecallNode int
}

func (q Quality) String() string {
	return fmt.Sprintf("nodes %d: recall min %.3f mean %.4f below %d; unreachable %d; explore %d/%d (%.1f calls); neighbours mean %.1f max %d; colleagues mean %.1f max %d; dead entries %d",
		q.Nodes, q.MinRecall, q.MeanRecall, q.BelowRecall, q.Unreachable, q.ExploreOK, q.ExploreTotal, q.ExploreCalls,
		q.MeanNeighbours, q.MaxNeighbours, q.MeanColleagues, q.MaxColleagues, q.DeadInTables)
}

// Measure computes the quality of the live network by brute force with
// graph.Distance: neighbour recall against the true k nearest live nodes
// (a node below wantRecall counts in BelowRecall), reachability, and
// ExploreClosest (maxHops hops) from random live nodes towards random
// points of the world. The explorations send requests: read Net.Calls
// before measuring when counting the algorithm's messages.
func (s *Sim) Measure(ctx context.Context, k int, wantRecall float64, points, maxHops int) Quality {
	live := s.Live()
	q := Quality{Nodes: len(live), MinRecall: 1}
	down := make(map[identity.ID]bool)
	for _, sn := range s.Nodes {
		if sn.Down {
			down[sn.Key.ID()] = true
		}
	}
	byID := make(map[identity.ID]int)
	for _, i := range live {
		byID[s.Nodes[i].Key.ID()] = i
	}
	sumRecall := 0.0
	ids := make([]identity.ID, len(live))
	for x, i := range live {
		ids[x] = s.Nodes[i].Key.ID()
	}
	dists := make([]float64, len(live))
	scratch := make([]float64, 0, len(live))
	for _, i := range live {
		sn := s.Nodes[i]
		scratch = scratch[:0]
		for x, j := range live {
			dists[x] = graph.Distance(sn.Location, s.Nodes[j].Location)
			if j != i {
				scratch = append(scratch, dists[x])
			}
		}
		kk := min(k, len(scratch))
		have := make(map[identity.ID]bool)
		for _, n := range sn.Node.Neighbours() {
			have[n.ID] = true
		}
		hit := 0
		if kk > 0 {
			// A node as far as the k-th counts as one of the k nearest.
			kth := nth(scratch, kk-1)
			for x, j := range live {
				if j != i && dists[x] <= kth && have[ids[x]] {
					hit++
				}
			}
			hit = min(hit, kk)
		}
		recall := 1.0
		if kk > 0 {
			recall = float64(hit) / float64(kk)
		}
		sumRecall += recall
		if recall < q.MinRecall {
			q.MinRecall, q.WorstRecallNode = recall, i
		}
		if recall < wantRecall {
			q.BelowRecall++
		}
		st := sn.Node.Stats()
		q.MeanNeighbours += float64(st.Neighbours)
		q.MaxNeighbours = max(q.MaxNeighbours, st.Neighbours)
		q.MeanColleagues += float64(st.Colleagues)
		q.MaxColleagues = max(q.MaxColleagues, st.Colleagues)
		for _, e := range sn.Node.Entries() {
			if down[e.Info.ID] {
				q.DeadInTables++
			}
		}
	}
	if len(live) > 0 {
		q.MeanRecall = sumRecall / float64(len(live))
		q.MeanNeighbours /= float64(len(live))
		q.MeanColleagues /= float64(len(live))
	}
	// Reachability over the relations, from the first live node.
	if len(live) > 0 {
		seen := map[int]bool{live[0]: true}
		queue := []int{live[0]}
		for len(queue) > 0 {
			i := queue[0]
			queue = queue[1:]
			for _, e := range s.Nodes[i].Node.Entries() {
				if j, ok := byID[e.Info.ID]; ok && !seen[j] {
					seen[j] = true
					queue = append(queue, j)
				}
			}
		}
		q.Unreachable = len(live) - len(seen)
	}
	// Exploration towards random points.
	calls := 0
	r := rand.New(rand.NewPCG(uint64(points), 0xe4))
	for range points {
		lat := math.Asin(2*r.Float64()-1) * 180 / math.Pi
		pt, _ := graph.LocationFromDegrees(lat, r.Float64()*360-180)
		from := s.Nodes[live[r.IntN(len(live))]]
		best := math.Inf(1)
		for _, j := range live {
			best = min(best, graph.Distance(pt, s.Nodes[j].Location))
		}
		before := from.Endpoint.Calls()
		got, err := from.Node.ExploreClosest(ctx, pt, 5, maxHops)
		calls += int(from.Endpoint.Calls() - before)
		q.ExploreTotal++
		if err == nil && len(got) > 0 && graph.Distance(pt, got[0].Location) <= best {
			q.ExploreOK++
		}
	}
	if points > 0 {
		q.ExploreCalls = float64(calls) / float64(points)
	}
	return q
}
