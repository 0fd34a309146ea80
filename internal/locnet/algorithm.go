package locnet

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// maxWalkHops bounds the walks of bootstrap and merging.
const maxWalkHops = 32

// exploreBeam is how many of the closest nodes found a walk asks before it
// stops.
const exploreBeam = 3

// closestRequest asks for the count nodes closest to loc.
func closestRequest(loc graph.Location, count int) *locpb.Request {
	return &locpb.Request{Body: &locpb.Request_GetClosestNodes{GetClosestNodes: &locpb.GetClosestNodesRequest{
		Latitude: loc.Lat, Longitude: loc.Lon, MaxNodeCount: uint32(count), IncludeNeighbours: true,
	}}}
}

// randomRequest asks for up to count random nodes.
func randomRequest(count int, neighbours bool) *locpb.Request {
	return &locpb.Request{Body: &locpb.Request_GetRandomNodes{GetRandomNodes: &locpb.GetRandomNodesRequest{
		MaxNodeCount: uint32(count), IncludeNeighbours: neighbours,
	}}}
}

// Bootstrap joins the network through the seeds (2017 EnsureMapFilled):
// InitializeWorld fills the world map with colleagues, then
// InitializeNeighbourhood finds the nearest nodes. Tick calls it while the
// map is empty. It fails when no seed answered and the map stayed empty.
func (n *Node) Bootstrap(ctx context.Context) error {
	seed, werr := n.initWorld(ctx)
	n.initNeighbourhood(ctx, seed)
	n.mu.Lock()
	size := n.tab.len()
	nb := n.tab.nNeighbours
	n.mu.Unlock()
	n.log.Debug("bootstrap done", "map", size, "neighbours", nb, "err", werr)
	if size == 0 {
		if werr == nil {
			werr = ErrNoSeeds
		}
		return fmt.Errorf("locnet: bootstrap: %w", werr)
	}
	return nil
}

// initWorld is 2017 InitializeWorld: from the first seed that answers it
// takes the node count N and random nodes, and tries random nodes as
// colleagues until the map holds 0.75 N nodes, asking the colleagues it
// gains for more random nodes when it runs out. It stops early when three
// rounds in a row add nothing. It returns the seed that answered.
func (n *Node) initWorld(ctx context.Context) (*NodeInfo, error) {
	k := n.cfg.NeighbourhoodSize
	n.mu.Lock()
	seeds := slices.Clone(n.seeds)
	n.rng.Shuffle(len(seeds), func(i, j int) { seeds[i], seeds[j] = seeds[j], seeds[i] })
	n.mu.Unlock()
	var (
		seed  *NodeInfo
		count int
		cands []*NodeInfo
	)
	for _, sc := range seeds {
		if sc.ID == n.id || ctx.Err() != nil {
			continue
		}
		info, err := n.nodeInfoOf(ctx, sc)
		if err != nil || info.ID == n.id {
			continue
		}
		resp, err := n.call(ctx, sc, &locpb.Request{Body: &locpb.Request_GetNodeCount{GetNodeCount: &locpb.GetNodeCountRequest{}}})
		if err != nil {
			continue
		}
		count = int(resp.GetGetNodeCount().NodeCount)
		resp, err = n.call(ctx, sc, randomRequest(2*k, false))
		if err != nil {
			continue
		}
		seed = info
		cands = n.openList(resp.GetNodeList().Nodes, n.cfg.Clock())
		break
	}
	if seed == nil {
		return nil, ErrNoSeeds
	}
	n.tryRelation(ctx, seed, Colleague)
	target := int(math.Ceil(initWorldFillRate * float64(count)))
	asked := map[identity.ID]bool{seed.ID: true}
	idle := 0
	for ctx.Err() == nil {
		n.mu.Lock()
		size := n.tab.len()
		n.mu.Unlock()
		if size >= target {
			break
		}
		if len(cands) == 0 {
			if idle >= 3 {
				break
			}
			idle++
			from := n.randomUnasked(asked)
			if from == nil {
				break
			}
			asked[from.ID] = true
			resp, err := n.call(ctx, from.Contact(), randomRequest(2*k, false))
			if err == nil {
				cands = n.openList(resp.GetNodeList().Nodes, n.cfg.Clock())
			}
			continue
		}
		c := cands[len(cands)-1]
		cands = cands[:len(cands)-1]
		if n.tryRelation(ctx, c, Colleague) {
			idle = 0
		}
	}
	return seed, nil
}

// nodeInfoOf asks a node for its node info; it must be the node the
// contact names, when the contact names one.
func (n *Node) nodeInfoOf(ctx context.Context, c Contact) (*NodeInfo, error) {
	resp, err := n.call(ctx, c, &locpb.Request{Body: &locpb.Request_GetNodeInfo{GetNodeInfo: &locpb.GetNodeInfoRequest{}}})
	if err != nil {
		return nil, err
	}
	info, err := n.openInfo(resp.GetGetNodeInfo().Node, n.cfg.Clock())
	if err != nil {
		return nil, err
	}
	if !c.ID.IsZero() && info.ID != c.ID {
		n.counters.wrongNode.Add(1)
		return nil, fmt.Errorf("asked %s, answered %s: %w", c.ID.Short(), info.ID.Short(), ErrWrongNode)
	}
	return info, nil
}

// randomUnasked is a random node of the map not in asked.
func (n *Node) randomUnasked(asked map[identity.ID]bool) *NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	var pool []*NodeInfo
	for _, e := range n.tab.list {
		if !asked[e.Info.ID] {
			pool = append(pool, e.Info)
		}
	}
	if len(pool) == 0 {
		return nil
	}
	return pool[n.rng.IntN(len(pool))]
}

// initNeighbourhood is 2017 InitializeNeighbourhood: walk from the closest
// known node (or the seed) towards this node's location until no closer
// node appears, then search the neighbourhood from there.
func (n *Node) initNeighbourhood(ctx context.Context, seed *NodeInfo) {
	var start []*NodeInfo
	n.mu.Lock()
	if es := n.tab.closest(n.selfV, 1, 0, true); len(es) > 0 {
		start = append(start, es[0].Info)
	}
	n.mu.Unlock()
	if seed != nil {
		start = append(start, seed)
	}
	if len(start) == 0 {
		return
	}
	found := n.explore(ctx, n.cfg.Location, n.cfg.NeighbourhoodSize, maxWalkHops, start)
	n.searchNeighbourhood(ctx, found, true, 4*n.cfg.NeighbourhoodSize)
}

// searchNeighbourhood is a greedy search for the nearest nodes: it takes
// the candidate closest to this node, tries it as a neighbour, asks it for
// its closest nodes to this node and adds them to the candidates. It goes
// on while candidates rank among the NeighbourhoodSize closest, for at most
// maxAsks questions. The start nodes are always asked; with askKnown the
// neighbours already in the map are candidates too (bootstrap), otherwise
// only other nodes (periodic refresh).
func (n *Node) searchNeighbourhood(ctx context.Context, start []*NodeInfo, askKnown bool, maxAsks int) {
	type cand struct {
		info   *NodeInfo
		dist   float64
		forced bool
	}
	var pool []cand
	seen := make(map[identity.ID]bool)
	add := func(info *NodeInfo, forced bool) {
		if info.ID == n.id || seen[info.ID] {
			return
		}
		seen[info.ID] = true
		pool = append(pool, cand{info, n.selfV.km(toVec(info.Location)), forced})
	}
	for _, s := range start {
		add(s, true)
	}
	k := n.cfg.NeighbourhoodSize
	for asks := 0; asks < maxAsks && len(pool) > 0 && ctx.Err() == nil; {
		best := 0
		for i, c := range pool {
			if c.dist < pool[best].dist {
				best = i
			}
		}
		c := pool[best]
		pool[best] = pool[len(pool)-1]
		pool = pool[:len(pool)-1]
		n.mu.Lock()
		within := n.tab.neighbourRank(c.dist, c.info.ID) < k
		e := n.tab.get(c.info.ID)
		isNeighbour := e != nil && e.Relation == Neighbour
		n.mu.Unlock()
		if !within && !c.forced {
			continue
		}
		if !isNeighbour && within {
			n.tryRelation(ctx, c.info, Neighbour)
		}
		asks++
		resp, err := n.call(ctx, c.info.Contact(), closestRequest(n.cfg.Location, k))
		if err != nil {
			continue
		}
		list := n.openList(resp.GetNodeList().Nodes, n.cfg.Clock())
		n.mu.Lock()
		for _, r := range list {
			if e := n.tab.get(r.ID); askKnown || e == nil || e.Relation != Neighbour {
				add(r, false)
			}
		}
		n.mu.Unlock()
	}
}

// explore walks towards target (2017 ExploreNetworkNodesByDistance): it
// asks the closest node it knows of for its count closest nodes to target
// and merges the answer, until the closest node is one it already asked or
// maxHops nodes were asked. Unlike 2017 it goes on until the exploreBeam
// closest were all asked: in the sparse parts of the world the closest node
// to a point may be unknown to the first node that looks closest. It
// returns the count closest nodes found, closest first. This node is in the
// result only if it is in start.
func (n *Node) explore(ctx context.Context, target graph.Location, count, maxHops int, start []*NodeInfo) []*NodeInfo {
	tv := toVec(target)
	type hit struct {
		info *NodeInfo
		dot  float64
	}
	best := make([]hit, 0, count+1)
	merge := func(list []*NodeInfo) {
		for _, in := range list {
			if slices.ContainsFunc(best, func(b hit) bool { return b.info.ID == in.ID }) {
				continue
			}
			best = append(best, hit{in, toVec(in.Location).dot(tv)})
		}
		slices.SortStableFunc(best, func(a, b hit) int {
			switch {
			case a.dot > b.dot:
				return -1
			case a.dot < b.dot:
				return 1
			}
			return 0
		})
		if len(best) > count {
			best = best[:count]
		}
	}
	merge(start)
	asked := map[identity.ID]bool{n.id: true}
	for hops := 0; hops < maxHops && ctx.Err() == nil; {
		// The closest node not asked yet among the first exploreBeam.
		var c *NodeInfo
		for i := range min(len(best), exploreBeam) {
			if !asked[best[i].info.ID] {
				c = best[i].info
				break
			}
		}
		if c == nil {
			break
		}
		asked[c.ID] = true
		hops++
		resp, err := n.call(ctx, c.Contact(), closestRequest(target, count))
		if err != nil {
			best = slices.DeleteFunc(best, func(h hit) bool { return h.info == c })
			continue
		}
		merge(n.openList(resp.GetNodeList().Nodes, n.cfg.Clock()))
	}
	out := make([]*NodeInfo, len(best))
	for i, b := range best {
		out[i] = b.info
	}
	return out
}

// ExploreClosest finds the count nodes closest to loc by walking the
// network from this node's own closest nodes, asking at most maxHops nodes
// (2017 ExploreNetworkNodesByDistance). The result is closest first and
// may include this node.
func (n *Node) ExploreClosest(ctx context.Context, loc graph.Location, count, maxHops int) ([]NodeInfo, error) {
	if err := graph.CheckLocation(loc); err != nil || !loc.IsSet() {
		return nil, fmt.Errorf("locnet: explore: location %v: invalid", loc)
	}
	count = min(max(count, 1), MaxListNodes)
	n.mu.Lock()
	start := n.closestLocked(toVec(loc), count, 0, true)
	n.mu.Unlock()
	found := n.explore(ctx, loc, count, maxHops, start)
	out := make([]NodeInfo, len(found))
	for i, f := range found {
		out[i] = *f
	}
	return out, ctx.Err()
}

// Maintain is the periodic maintenance (2017 RenewNodeRelations then
// ExpireOldNodes): it re-signs the node info, renews relations, drops
// expired ones, bootstraps again if the map is empty and otherwise
// refreshes the neighbourhood by asking some neighbours for nodes closer to
// this one.
func (n *Node) Maintain(ctx context.Context) {
	n.mu.Lock()
	now := n.cfg.Clock()
	if now.Sub(n.self.IssuedAt) >= n.cfg.RenewInterval/2 {
		if err := n.resignLocked(now, nil); err != nil {
			n.log.Error("re-sign node info", "err", err)
		}
	}
	n.mu.Unlock()
	n.renewRelations(ctx, false)
	n.mu.Lock()
	n.expireLocked(n.cfg.Clock())
	empty := n.tab.len() == 0
	n.mu.Unlock()
	if empty {
		if err := n.Bootstrap(ctx); err != nil {
			n.log.Info("bootstrap after expiry", "err", err)
		}
		return
	}
	n.refreshNeighbourhood(ctx)
}

// refreshNeighbourhood asks RefreshQueries random neighbours among the
// closest for their closest nodes to this node and follows every new node
// that ranks among the closest. Nodes that joined after this one are found
// this way.
func (n *Node) refreshNeighbourhood(ctx context.Context) {
	n.mu.Lock()
	var nb []*entry
	for i := range n.tab.list {
		if e := &n.tab.list[i]; e.Relation == Neighbour {
			nb = append(nb, e)
		}
	}
	slices.SortStableFunc(nb, func(a, b *entry) int {
		switch {
		case a.dist < b.dist:
			return -1
		case a.dist > b.dist:
			return 1
		}
		return 0
	})
	nb = nb[:min(len(nb), n.cfg.NeighbourhoodSize)]
	n.rng.Shuffle(len(nb), func(i, j int) { nb[i], nb[j] = nb[j], nb[i] })
	var start []*NodeInfo
	for _, e := range nb[:min(len(nb), n.cfg.RefreshQueries)] {
		start = append(start, e.Info)
	}
	n.mu.Unlock()
	n.searchNeighbourhood(ctx, start, false, n.cfg.RefreshQueries+2*n.cfg.NeighbourhoodSize)
}

// Discover is 2017 DiscoverUnknownAreas: for DiscoveryPoints random points
// of the world, it asks the known node closest to the point for its closest
// node; a node it did not know is tried as a neighbour, else as a
// colleague.
func (n *Node) Discover(ctx context.Context) {
	for range n.cfg.DiscoveryPoints {
		if ctx.Err() != nil {
			return
		}
		n.mu.Lock()
		pt := randomLocation(n.rng)
		es := n.tab.closest(toVec(pt), 1, 0, true)
		n.mu.Unlock()
		if len(es) == 0 {
			return
		}
		resp, err := n.call(ctx, es[0].Info.Contact(), closestRequest(pt, 1))
		if err != nil {
			continue
		}
		list := n.openList(resp.GetNodeList().Nodes, n.cfg.Clock())
		if len(list) == 0 {
			continue
		}
		n.mu.Lock()
		known := n.tab.get(list[0].ID) != nil
		n.mu.Unlock()
		if !known && !n.tryRelation(ctx, list[0], Neighbour) {
			n.tryRelation(ctx, list[0], Colleague)
		}
	}
}

// MergeSplits joins networks that grew apart (2017 MergeSplits, extended):
// it takes MergeNodeCount random nodes from a random seed and tries each as
// a colleague, and if accepted as a neighbour. Then it walks from those
// nodes towards its own location: nearby nodes it did not know mean the
// seed's network is another one, and the neighbourhood search continues
// from them.
func (n *Node) MergeSplits(ctx context.Context) {
	n.mu.Lock()
	var seeds []Contact
	for _, s := range n.seeds {
		if s.ID != n.id {
			seeds = append(seeds, s)
		}
	}
	var seed Contact
	if len(seeds) > 0 {
		seed = seeds[n.rng.IntN(len(seeds))]
	}
	n.mu.Unlock()
	if len(seeds) == 0 {
		return
	}
	resp, err := n.call(ctx, seed, randomRequest(n.cfg.MergeNodeCount, true))
	if err != nil {
		return
	}
	list := n.openList(resp.GetNodeList().Nodes, n.cfg.Clock())
	for _, r := range list {
		if n.tryRelation(ctx, r, Colleague) {
			n.tryRelation(ctx, r, Neighbour)
		}
	}
	found := n.explore(ctx, n.cfg.Location, n.cfg.NeighbourhoodSize, maxWalkHops, list)
	var fresh []*NodeInfo
	n.mu.Lock()
	for _, f := range found {
		if n.tab.get(f.ID) == nil && n.wantsLocked(f) {
			fresh = append(fresh, f)
		}
	}
	n.mu.Unlock()
	if len(fresh) > 0 {
		n.log.Debug("merging a split", "new neighbours", len(fresh))
		n.searchNeighbourhood(ctx, fresh, false, 4*n.cfg.NeighbourhoodSize)
	}
}
