package locnet

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
)

// The 2017 constants.
const (
	DefaultNeighbourhoodSize = 50
	DefaultRenewInterval     = 7 * time.Hour
	DefaultEntryExpiry       = 24 * time.Hour
	DefaultDiscoveryInterval = 5 * time.Minute
	DefaultCallTimeout       = 10 * time.Second
	DefaultDiscoveryPoints   = 5
	DefaultMergeNodeCount    = 10
	initWorldFillRate        = 0.75
)

// Config configures a Node. Zero fields take the defaults noted.
type Config struct {
	Key       *identity.Key  // required: the node's key, the same key as its libp2p host
	Location  graph.Location // required: where the node declares it is
	Addrs     []string       // contact multiaddrs put in the node info
	Services  []Service      // services put in the node info
	Seeds     []Contact      // bootstrap nodes; may include this node
	Transport Transport      // required
	Store     Store          // default: the map lives in memory only

	Clock       func() time.Time // default time.Now; all time comes from here
	Rand        *mrand.Rand      // default: seeded from crypto/rand
	Logger      *slog.Logger     // default: discard
	VerifyCache *VerifyCache     // default: a private cache of 4,096 node infos

	NeighbourhoodSize int           // default 50: the nearest nodes a node wants
	MaxNeighbours     int           // default 3 × NeighbourhoodSize: cap on neighbours kept for others
	RenewInterval     time.Duration // default 7 h: renew relations, expire old ones, refresh the neighbourhood
	EntryExpiry       time.Duration // default 24 h: life of a relation that is not renewed
	DiscoveryInterval time.Duration // default 5 min: DiscoverUnknownAreas
	MergeInterval     time.Duration // default RenewInterval: MergeSplits
	BootstrapRetry    time.Duration // default 5 min: retry (randomly up to twice this) while alone
	CallTimeout       time.Duration // default 10 s per request
	MaxClockSkew      time.Duration // default 10 min: node infos issued later than now+skew are refused
	MaxInfoAge        time.Duration // default 2 × EntryExpiry: older node infos are refused
	DiscoveryPoints   int           // default 5 random world points per discovery
	MergeNodeCount    int           // default 10 random nodes per merge
	RefreshQueries    int           // default 5 neighbours asked per neighbourhood refresh
}

func (c *Config) setDefaults() {
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:])
		c.Rand = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.VerifyCache == nil {
		c.VerifyCache = NewVerifyCache(4096)
	}
	setDefault(&c.NeighbourhoodSize, DefaultNeighbourhoodSize)
	setDefault(&c.MaxNeighbours, 3*c.NeighbourhoodSize)
	setDefault(&c.RenewInterval, DefaultRenewInterval)
	setDefault(&c.EntryExpiry, DefaultEntryExpiry)
	setDefault(&c.DiscoveryInterval, DefaultDiscoveryInterval)
	setDefault(&c.MergeInterval, c.RenewInterval)
	setDefault(&c.BootstrapRetry, 5*time.Minute)
	setDefault(&c.CallTimeout, DefaultCallTimeout)
	setDefault(&c.MaxClockSkew, 10*time.Minute)
	setDefault(&c.MaxInfoAge, 2*c.EntryExpiry)
	setDefault(&c.DiscoveryPoints, DefaultDiscoveryPoints)
	setDefault(&c.MergeNodeCount, DefaultMergeNodeCount)
	setDefault(&c.RefreshQueries, 5)
}

func setDefault[T cmp.Ordered](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Validate reports a configuration error, once the defaults are applied.
func (c *Config) Validate() error {
	d := *c
	d.setDefaults()
	return d.validate()
}

func (c *Config) validate() error {
	switch {
	case c.Key == nil:
		return errors.New("locnet: Config.Key is required")
	case c.Transport == nil:
		return errors.New("locnet: Config.Transport is required")
	case !c.Location.IsSet():
		return errors.New("locnet: Config.Location is required")
	case c.NeighbourhoodSize < 1 || c.MaxNeighbours < c.NeighbourhoodSize:
		return fmt.Errorf("locnet: NeighbourhoodSize %d and MaxNeighbours %d: want 1 <= size <= max", c.NeighbourhoodSize, c.MaxNeighbours)
	case c.EntryExpiry <= c.RenewInterval:
		return fmt.Errorf("locnet: EntryExpiry %v must exceed RenewInterval %v", c.EntryExpiry, c.RenewInterval)
	}
	if err := graph.CheckLocation(c.Location); err != nil {
		return fmt.Errorf("locnet: Config.Location: %w", err)
	}
	return nil
}

// Node is a node of the location based network. Its methods are safe for
// concurrent use; it never holds its lock while it talks to another node.
type Node struct {
	cfg    Config
	id     identity.ID
	log    *slog.Logger
	verify *VerifyCache
	selfV  vec

	counters struct {
		calls, callErrors, served, badInfos, wrongNode, staleInfos atomic.Uint64
	}

	mu            sync.Mutex // guards the fields below
	self          *NodeInfo
	tab           *table
	rng           *mrand.Rand
	seeds         []Contact
	subs          []*Subscription
	observed      string                    // this node's address as the last acceptor saw it
	refused       map[identity.ID]time.Time // colleague requests refused, until when not to ask again
	nextBootstrap time.Time
	bootAttempts  int // bootstraps in a row that left the map empty
	nextMaintain  time.Time
	nextDiscover  time.Time
	nextMerge     time.Time
	closed        bool
	cancelRun     context.CancelFunc
	runDone       chan struct{}
}

// Stats are a node's counters.
type Stats struct {
	Neighbours, Colleagues int
	Calls                  uint64 // requests sent
	CallErrors             uint64 // requests that failed or answered an error status
	Served                 uint64 // requests answered
	BadInfos               uint64 // node infos refused: bad signature or invalid field
	WrongNode              uint64 // answers whose node info was not the expected node's
	StaleInfos             uint64 // node infos refused as older than the stored one, too old or from the future
}

// New creates a node and signs its node info. It loads the map from
// cfg.Store. Call Run, or drive it with Tick (simulations), to join the
// network.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	now := cfg.Clock()
	n := &Node{
		cfg:     cfg,
		id:      cfg.Key.ID(),
		log:     cfg.Logger.With("node", cfg.Key.ID().Short()),
		verify:  cfg.VerifyCache,
		selfV:   toVec(cfg.Location),
		rng:     cfg.Rand,
		seeds:   slices.Clone(cfg.Seeds),
		refused: make(map[identity.ID]time.Time),
	}
	n.tab = newTable(n.selfV)
	self, err := SignNodeInfo(cfg.Key, NodeInfo{
		Addrs: cfg.Addrs, Location: cfg.Location, Services: cfg.Services,
		Sequence: uint64(max(now.UnixMilli(), 1)), IssuedAt: now,
	})
	if err != nil {
		return nil, fmt.Errorf("locnet: sign node info: %w", err)
	}
	n.self = self
	if cfg.Store != nil {
		if err := n.load(now); err != nil {
			return nil, err
		}
	}
	n.nextBootstrap = now
	n.nextMaintain = now.Add(n.jitterLocked(cfg.RenewInterval))
	n.nextDiscover = now.Add(n.jitterLocked(cfg.DiscoveryInterval))
	n.nextMerge = now.Add(n.jitterLocked(cfg.MergeInterval))
	return n, nil
}

// load fills the map from the store.
func (n *Node) load(now time.Time) error {
	entries, err := n.cfg.Store.Load()
	if err != nil {
		return fmt.Errorf("locnet: load map: %w", err)
	}
	for _, e := range entries {
		if e.Info == nil || !e.ExpiresAt.After(now) {
			continue
		}
		info, err := n.verify.Open(e.Info.Proto())
		if err != nil || info.ID == n.id {
			n.log.Warn("dropping stored node info", "err", err)
			continue
		}
		n.tab.put(entry{Entry: Entry{Info: info, Relation: e.Relation, Role: e.Role, ExpiresAt: e.ExpiresAt},
			v: toVec(info.Location), dist: n.selfV.km(toVec(info.Location))})
	}
	return nil
}

// jitterLocked returns d changed by up to ±10 %, so that nodes started
// together do not all renew at once.
func (n *Node) jitterLocked(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(n.rng.Int64N(int64(d/5)+1))
}

// ID is the node's network ID.
func (n *Node) ID() identity.ID { return n.id }

// Self returns the node's current signed node info.
func (n *Node) Self() NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return *n.self
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Stats{
		Neighbours: n.tab.nNeighbours,
		Colleagues: n.tab.len() - n.tab.nNeighbours,
		Calls:      n.counters.calls.Load(),
		CallErrors: n.counters.callErrors.Load(),
		Served:     n.counters.served.Load(),
		BadInfos:   n.counters.badInfos.Load(),
		WrongNode:  n.counters.wrongNode.Load(),
		StaleInfos: n.counters.staleInfos.Load(),
	}
}

// ObservedAddr is this node's address as the last node that accepted a
// relation saw it (2017: how a node learns its external address).
func (n *Node) ObservedAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.observed
}

// Neighbours returns the neighbours, closest first.
func (n *Node) Neighbours() []NodeInfo { return n.byRelation(Neighbour) }

// Colleagues returns the colleagues, closest first.
func (n *Node) Colleagues() []NodeInfo { return n.byRelation(Colleague) }

func (n *Node) byRelation(r Relation) []NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	var es []*entry
	for i := range n.tab.list {
		if e := &n.tab.list[i]; e.Relation == r {
			es = append(es, e)
		}
	}
	slices.SortStableFunc(es, func(a, b *entry) int { return cmp.Compare(a.dist, b.dist) })
	out := make([]NodeInfo, len(es))
	for i, e := range es {
		out[i] = *e.Info
	}
	return out
}

// Entries returns a copy of the map, closest first.
func (n *Node) Entries() []Entry {
	n.mu.Lock()
	defer n.mu.Unlock()
	es := slices.Clone(n.tab.list)
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.dist, b.dist) })
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = e.Entry
	}
	return out
}

// ClosestNodes answers from the local map (this node included): up to max
// nodes within radiusKm of loc (no limit when radiusKm <= 0), closest first.
func (n *Node) ClosestNodes(loc graph.Location, max int, radiusKm float64) []NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	infos := n.closestLocked(toVec(loc), max, radiusKm, true)
	out := make([]NodeInfo, len(infos))
	for i, in := range infos {
		out[i] = *in
	}
	return out
}

// closestLocked is the local closest-nodes query, this node included.
func (n *Node) closestLocked(v vec, max int, radiusKm float64, neighbours bool) []*NodeInfo {
	if max <= 0 {
		return nil
	}
	es := n.tab.closest(v, max, radiusKm, neighbours)
	out := make([]*NodeInfo, 0, len(es)+1)
	selfDot := n.selfV.dot(v)
	selfIn := radiusKm <= 0 || n.selfV.km(v) <= radiusKm
	for _, e := range es {
		if selfIn && selfDot >= e.v.dot(v) {
			out = append(out, n.self)
			selfIn = false
		}
		out = append(out, e.Info)
	}
	if selfIn {
		out = append(out, n.self)
	}
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// SetSeeds replaces the bootstrap nodes.
func (n *Node) SetSeeds(seeds []Contact) {
	n.mu.Lock()
	n.seeds = slices.Clone(seeds)
	n.mu.Unlock()
}

// SetServices re-signs the node info with services and a higher sequence
// and pushes it to every neighbour by renewing the relation (2017:
// RegisterService triggers RenewNeighbours).
func (n *Node) SetServices(ctx context.Context, services []Service) error {
	n.mu.Lock()
	err := n.resignLocked(n.cfg.Clock(), func(i *NodeInfo) { i.Services = slices.Clone(services) })
	n.mu.Unlock()
	if err != nil {
		return err
	}
	n.renewRelations(ctx, true)
	return nil
}

// resignLocked signs a new node info, changed by edit, with a higher
// sequence.
func (n *Node) resignLocked(now time.Time, edit func(*NodeInfo)) error {
	info := *n.self
	info.Raw, info.Signature, info.pb = nil, nil, nil
	if edit != nil {
		edit(&info)
	}
	info.Sequence = max(n.self.Sequence+1, uint64(max(now.UnixMilli(), 1)))
	info.IssuedAt = now
	s, err := SignNodeInfo(n.cfg.Key, info)
	if err != nil {
		return fmt.Errorf("locnet: sign node info: %w", err)
	}
	n.self = s
	return nil
}

// Tick drops the relations that expired, then runs the periodic tasks that
// are due at the clock's current time: bootstrap while the map is empty,
// RenewInterval maintenance, MergeInterval merging and DiscoveryInterval
// discovery. Simulations call
// it after moving their clock; Run calls it on real time.
func (n *Node) Tick(ctx context.Context) {
	now := n.cfg.Clock()
	n.mu.Lock()
	boot := n.tab.len() == 0 && !now.Before(n.nextBootstrap)
	if n.tab.len() > 0 {
		n.bootAttempts = 0
	}
	if boot {
		// Seeds that start at the same time as this node are not up yet:
		// retry after 1 s, 2 s, 4 s … up to BootstrapRetry (plus up to as
		// much jitter), not BootstrapRetry right away.
		d := n.cfg.BootstrapRetry
		if n.bootAttempts < 16 {
			d = min(d, time.Second<<n.bootAttempts)
		}
		n.bootAttempts++
		n.nextBootstrap = now.Add(d + time.Duration(n.rng.Int64N(int64(d))))
	}
	maint := !now.Before(n.nextMaintain)
	if maint {
		n.nextMaintain = now.Add(n.jitterLocked(n.cfg.RenewInterval))
	}
	merge := !now.Before(n.nextMerge)
	if merge {
		n.nextMerge = now.Add(n.jitterLocked(n.cfg.MergeInterval))
	}
	disc := !now.Before(n.nextDiscover)
	if disc {
		n.nextDiscover = now.Add(n.jitterLocked(n.cfg.DiscoveryInterval))
	}
	n.expireLocked(now)
	n.mu.Unlock()
	if boot {
		if err := n.Bootstrap(ctx); err != nil {
			n.log.Info("bootstrap", "err", err)
		}
	}
	if maint {
		n.Maintain(ctx)
	}
	if merge {
		n.MergeSplits(ctx)
	}
	if disc {
		n.Discover(ctx)
	}
}

// nextDue is when Tick has something to do next.
func (n *Node) nextDue() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.nextMaintain
	for _, u := range []time.Time{n.nextMerge, n.nextDiscover} {
		if u.Before(t) {
			t = u
		}
	}
	if n.tab.len() == 0 && n.nextBootstrap.Before(t) {
		t = n.nextBootstrap
	}
	return t
}

// Run joins the network and runs the periodic tasks on real time until ctx
// is done or Close is called. When the transport is a Server, Run serves
// requests with the node while it runs.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.runDone != nil {
		n.mu.Unlock()
		return errors.New("locnet: node already running")
	}
	done := make(chan struct{})
	n.cancelRun, n.runDone = cancel, done
	n.mu.Unlock()
	defer close(done)
	if s, ok := n.cfg.Transport.(Server); ok {
		s.Handle(n)
		defer s.Handle(nil)
	}
	n.log.Info("location network node running", "location", n.cfg.Location.String(), "seeds", len(n.cfg.Seeds))
	for {
		n.Tick(ctx)
		wait := min(max(n.nextDue().Sub(n.cfg.Clock()), 100*time.Millisecond), n.cfg.DiscoveryInterval)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Close stops Run, waits for it to return and ends every subscription.
func (n *Node) Close() {
	n.mu.Lock()
	n.closed = true
	cancel, done := n.cancelRun, n.runDone
	for _, s := range n.subs {
		s.endLocked(ErrClosed)
	}
	n.subs = nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
