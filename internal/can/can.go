// Package can runs the IoP content address network: a private Kademlia DHT
// (go-libp2p-kad-dht under the protocol prefix /iop) that every node joins.
// It stores signed, sequence-numbered, expiring records with validators of
// our own:
//
//   - /iop-node/<node ID>: a node's contact record (addresses, location,
//     services), signed by the node's key;
//   - /iop-id/<identity ID>: an identity pointer, "identity X is hosted at
//     server S", signed by the identity (the claim) and countersigned by the
//     server that publishes it, which sets its expiry. When an identity
//     leaves, its old server publishes the identity's MOVED or CANCELLED
//     claim instead (with a higher sequence, so it replaces the old one);
//   - /iop-rel/<identity ID>/<page>: one page of an identity's public
//     relationship edges (opaque proofs, verified by readers with the graph
//     package), published by its hosting server: the identity's HOSTED claim
//     naming that server, signed by the server, with a version sequence
//     shared by all pages of one set and the number of pages, so a reader
//     reads page 0 and then the others, and can tell pages of another
//     version apart. The edges stay readable while the server is down.
//
// Validators accept a record only when every signature verifies, the key
// matches the signer, and the expiry is in the future but within MaxTTL;
// among valid records the highest sequence wins (for pointers and relation
// pages, the claim's sequence first). The records a node
// publishes are republished every RepublishInterval, and a restarted node
// republishes them from its own store (the profile server's database), so
// nothing depends on the DHT's in-memory state surviving.
package can

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can/canpb"
)

// ProtocolPrefix is the DHT protocol prefix of the IoP network.
const ProtocolPrefix = "/iop"

// Config configures the CAN service.
type Config struct {
	Host      host.Host     // required
	Key       *identity.Key // required: the node's key (the host's key)
	Bootstrap []peer.AddrInfo
	Logger    *slog.Logger
	Now       func() time.Time

	TTL               time.Duration // expiry of records this node signs; default 24 h
	RepublishInterval time.Duration // default 1 h
	// Contact returns the node's current contact record (without key,
	// sequence or expiry, which the service sets).
	Contact func() *canpb.NodeContact
}

// CAN is a node's view of the content address network.
type CAN struct {
	cfg Config
	dht *dht.IpfsDHT
	log *slog.Logger

	mu        sync.Mutex // guards the fields below
	pointers  map[identity.ID][]byte
	relations map[identity.ID]*relationSet
	seq       uint64
	alone     bool          // records were put while no peer was known
	ready     chan struct{} // closed after the first bootstrap round
}

// New builds the DHT on the host. Run joins the network.
func New(cfg Config) (*CAN, error) {
	if cfg.Host == nil || cfg.Key == nil {
		return nil, errors.New("can: Host and Key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TTL == 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.RepublishInterval == 0 {
		cfg.RepublishInterval = time.Hour
	}
	v := record.NamespacedValidator{
		NamespaceNode:      nodeValidator{now: cfg.Now},
		NamespaceIdentity:  pointerValidator{now: cfg.Now},
		NamespaceRelations: relationValidator{now: cfg.Now},
	}
	d, err := dht.New(cfg.Host,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.Validator(v),
		dht.BootstrapPeers(cfg.Bootstrap...),
		dht.DisableProviders(),
		dht.MaxRecordAge(MaxTTL),
	)
	if err != nil {
		return nil, fmt.Errorf("can: %w", err)
	}
	return &CAN{
		cfg:       cfg,
		dht:       d,
		log:       cfg.Logger,
		pointers:  make(map[identity.ID][]byte),
		relations: make(map[identity.ID]*relationSet),
		ready:     make(chan struct{}),
	}, nil
}

// Run connects to the bootstrap peers, fills the routing table, publishes
// the node's records and republishes them until ctx ends.
func (c *CAN) Run(ctx context.Context) error {
	defer c.dht.Close()
	// Records put while the node was alone are only in its own store:
	// the first peers to arrive get them at once, not at the next
	// republish (which may be an hour away, and the node may be gone).
	var joined <-chan interface{}
	if sub, err := c.cfg.Host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged)); err == nil {
		defer sub.Close()
		joined = sub.Out()
	}
	for _, b := range c.cfg.Bootstrap {
		if b.ID == c.cfg.Host.ID() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := c.cfg.Host.Connect(cctx, b); err != nil {
			c.log.Warn("bootstrap peer unreachable", "peer", b.ID, "err", err)
		}
		cancel()
	}
	if err := c.dht.Bootstrap(ctx); err != nil {
		return fmt.Errorf("can: bootstrap: %w", err)
	}
	select {
	case <-c.dht.RefreshRoutingTable():
	case <-ctx.Done():
		return nil
	}
	close(c.ready)
	c.log.Info("content address network joined", "peers", c.dht.RoutingTable().Size())
	t := time.NewTicker(c.cfg.RepublishInterval)
	defer t.Stop()
	for {
		c.republish(ctx)
		c.mu.Lock()
		if c.alone && c.dht.RoutingTable().Size() > 0 {
			c.alone = false // every record went to peers
		}
		c.mu.Unlock()
		if !c.untilRepublish(ctx, t.C, joined) {
			return nil
		}
	}
}

// untilRepublish waits for the next periodic republish, or for the first
// peer in the routing table while records put alone wait for one. It
// returns false when ctx ends.
func (c *CAN) untilRepublish(ctx context.Context, tick <-chan time.Time, joined <-chan interface{}) bool {
	var check <-chan time.Time // set while waiting for a new peer to enter the routing table
	checks := 0
	c.mu.Lock()
	alone := c.alone
	c.mu.Unlock()
	if alone {
		// Peers may have arrived during the republish, or before Run
		// listened for them.
		check = time.After(0)
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick:
			return true
		case <-joined:
			c.mu.Lock()
			alone := c.alone
			c.mu.Unlock()
			if alone && check == nil {
				check, checks = time.After(50*time.Millisecond), 0
			}
		case <-check:
			check = nil
			if c.dht.RoutingTable().Size() > 0 {
				c.log.Debug("peers joined: republishing the records stored alone")
				return true
			}
			if checks++; checks < 100 {
				check = time.After(50 * time.Millisecond)
			}
		}
	}
}

// Alone reports whether records this node put while it knew no peer are
// still only in its own store (they go to the first peers that join).
func (c *CAN) Alone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alone
}

// Ready is closed once the node has joined the network.
func (c *CAN) Ready() <-chan struct{} { return c.ready }

// RoutingTableSize is the number of DHT peers this node knows.
func (c *CAN) RoutingTableSize() int { return c.dht.RoutingTable().Size() }

// DHT is the underlying DHT, for tests and benchmarks.
func (c *CAN) DHT() *dht.IpfsDHT { return c.dht }

func (c *CAN) republish(ctx context.Context) {
	if err := c.PublishContact(ctx); err != nil {
		c.log.Warn("publish node contact", "err", err)
	}
	c.mu.Lock()
	vals := make(map[identity.ID][]byte, len(c.pointers))
	for id, v := range c.pointers {
		vals[id] = v
	}
	type version struct {
		set *relationSet
		seq uint64
	}
	rels := make(map[identity.ID]version, len(c.relations))
	for id, set := range c.relations {
		rels[id] = version{set, c.nextSeqLocked()}
	}
	c.mu.Unlock()
	for id, v := range vals {
		if err := c.put(ctx, IdentityKey(id), v); err != nil {
			c.log.Debug("republish identity pointer", "identity", id.Short(), "err", err)
		}
	}
	for id, v := range rels {
		if err := c.putRelations(ctx, id, v.set, v.seq); err != nil {
			c.log.Debug("republish relations", "identity", id.Short(), "err", err)
		}
	}
}

// nextSeqLocked returns a fresh sequence for a record this node signs:
// increasing, and at least the time in ms, so it keeps increasing across
// restarts.
func (c *CAN) nextSeqLocked() uint64 {
	c.seq = max(c.seq+1, uint64(c.cfg.Now().UnixMilli()))
	return c.seq
}

func (c *CAN) put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := c.dht.PutValue(ctx, key, value)
	if err != nil && c.dht.RoutingTable().Size() == 0 {
		// Alone in the network: the value is stored locally and is
		// replicated as soon as peers appear (see Run).
		c.mu.Lock()
		c.alone = true
		c.mu.Unlock()
		return nil
	}
	return err
}

// PublishContact signs and publishes the node's contact record.
func (c *CAN) PublishContact(ctx context.Context) error {
	if c.cfg.Contact == nil {
		return nil
	}
	rec := c.cfg.Contact()
	c.mu.Lock()
	rec.Sequence = c.nextSeqLocked()
	c.mu.Unlock()
	rec.ExpiresAt = c.cfg.Now().Add(c.cfg.TTL).UnixMilli()
	v, err := SignNodeContact(c.cfg.Key, rec)
	if err != nil {
		return err
	}
	return c.put(ctx, NodeKey(c.cfg.Key.ID()), v)
}

// PublishPointer countersigns an identity's claim and publishes it; the
// node republishes it until Forget. Call it again to refresh the expiry.
func (c *CAN) PublishPointer(ctx context.Context, claim, claimSig []byte) error {
	cl, err := OpenClaim(claim, claimSig, nil)
	if err != nil {
		return err
	}
	id := identity.IDFromPublicKey(cl.IdentityPublicKey)
	v, err := SignPointer(c.cfg.Key, claim, claimSig, c.cfg.Now().Add(c.cfg.TTL))
	if err != nil {
		return err
	}
	if _, err := OpenPointer(IdentityKey(id), v, c.cfg.Now()); err != nil {
		return err
	}
	c.mu.Lock()
	c.pointers[id] = v
	c.mu.Unlock()
	return c.put(ctx, IdentityKey(id), v)
}

// Forget stops republishing an identity's pointer.
func (c *CAN) Forget(id identity.ID) {
	c.mu.Lock()
	delete(c.pointers, id)
	c.mu.Unlock()
}

// ErrNotFound reports a key with no valid record in the network.
var ErrNotFound = errors.New("not found in the content address network")

func (c *CAN) get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.dht.GetValue(ctx, key)
	if err != nil {
		// No peer answered (or none is left): what this node holds
		// itself still counts.
		if lv, lerr := c.dht.GetValue(ctx, key, routing.Offline); lerr == nil {
			return lv, nil
		}
	}
	if errors.Is(err, routing.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("can: get %s: %w", key, err)
	}
	return v, nil
}

// Resolve finds an identity's pointer. It returns the verified pointer and
// the raw value (for callers that verify again themselves).
func (c *CAN) Resolve(ctx context.Context, id identity.ID) (*Pointer, []byte, error) {
	v, err := c.get(ctx, IdentityKey(id))
	if err != nil {
		return nil, nil, err
	}
	p, err := OpenPointer(IdentityKey(id), v, c.cfg.Now())
	return p, v, err
}

// Contact finds a node's contact record.
func (c *CAN) Contact(ctx context.Context, id identity.ID) (*canpb.NodeContact, []byte, error) {
	v, err := c.get(ctx, NodeKey(id))
	if err != nil {
		return nil, nil, err
	}
	nc, err := OpenNodeContact(NodeKey(id), v, c.cfg.Now())
	return nc, v, err
}

// relationSet is an identity's relation set as this node publishes it.
type relationSet struct {
	claim, claimSig []byte
	pages           [][][]byte // proofs, packed into pages
}

// putParallel bounds the pages a node puts or gets at once.
const putParallel = 8

// PublishRelations publishes the public relationship edges (proofs made by
// graph.EncodeProof) of an identity this node hosts, given the identity's
// HOSTED claim naming this node. It packs the proofs into pages, signs them
// with a fresh version sequence and republishes them until ForgetRelations;
// calling it again replaces the set. The node keeps proofs: the caller
// must not modify them.
func (c *CAN) PublishRelations(ctx context.Context, claim, claimSig []byte, proofs [][]byte) error {
	cl, err := OpenClaim(claim, claimSig, nil)
	if err != nil {
		return err
	}
	id := identity.IDFromPublicKey(cl.IdentityPublicKey)
	if cl.State != canpb.ClaimState_HOSTED {
		return fmt.Errorf("can: publish relations of %s: the claim is %s, not HOSTED", id.Short(), cl.State)
	}
	if srv, _ := identity.IDFromBytes(cl.ServerId); srv != c.cfg.Key.ID() {
		return fmt.Errorf("can: publish relations of %s: the claim names server %s, not this node", id.Short(), srv.Short())
	}
	for i, p := range proofs {
		if len(p) == 0 || len(p) > MaxProofSize {
			return fmt.Errorf("can: publish relations of %s: proof %d has %d bytes (1 to %d)", id.Short(), i, len(p), MaxProofSize)
		}
	}
	pages := PackRelationPages(slices.Clone(proofs), RelationPageBudget(claim, claimSig))
	if len(pages) > MaxRelationPages {
		return fmt.Errorf("can: publish relations of %s: %d proofs need %d pages, limit %d", id.Short(), len(proofs), len(pages), MaxRelationPages)
	}
	set := &relationSet{claim: claim, claimSig: claimSig, pages: pages}
	// The set and its sequence change together, so a concurrent republish
	// of the previous set always carries a lower sequence.
	c.mu.Lock()
	c.relations[id] = set
	seq := c.nextSeqLocked()
	c.mu.Unlock()
	return c.putRelations(ctx, id, set, seq)
}

// ForgetRelations stops republishing an identity's relation set.
func (c *CAN) ForgetRelations(id identity.ID) {
	c.mu.Lock()
	delete(c.relations, id)
	c.mu.Unlock()
}

// putRelations signs a relation set as version seq and puts its pages:
// pages 1 and up first, then page 0, which tells readers how many to read,
// so they rarely see a new page 0 before the pages it announces.
func (c *CAN) putRelations(ctx context.Context, id identity.ID, set *relationSet, seq uint64) error {
	exp := c.cfg.Now().Add(c.cfg.TTL)
	vals := make([][]byte, len(set.pages))
	for i, proofs := range set.pages {
		v, err := SignRelationPage(c.cfg.Key, set.claim, set.claimSig, i, len(set.pages), seq, exp, proofs)
		if err != nil {
			return fmt.Errorf("can: sign relation page %d of %s: %w", i, id.Short(), err)
		}
		vals[i] = v
	}
	if _, err := OpenRelationPage(RelationKey(id, 0), vals[0], c.cfg.Now()); err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(putParallel)
	for i := 1; i < len(vals); i++ {
		g.Go(func() error {
			if err := c.put(ctx, RelationKey(id, i), vals[i]); err != nil {
				return fmt.Errorf("page %d: %w", i, err)
			}
			return nil
		})
	}
	// Page 0 goes out even when another page failed: the pages already put
	// replaced the previous version's, and readers list the missing one.
	err := g.Wait()
	if err0 := c.put(ctx, RelationKey(id, 0), vals[0]); err0 != nil {
		err = errors.Join(err, fmt.Errorf("page 0: %w", err0))
	}
	if err != nil {
		return fmt.Errorf("can: publish relations of %s: %w", id.Short(), err)
	}
	return nil
}

// RelationSet is an identity's relation set as read from the network.
type RelationSet struct {
	Identity  identity.ID
	Publisher identity.ID // the hosting server
	Claim     *canpb.IdentityClaim
	Sequence  uint64    // the publisher's version
	Expires   time.Time // the earliest expiry of the pages read
	Pages     int
	Proofs    [][]byte // of the pages read, in page order; unverified
	Missing   []int    // pages not found, invalid or of another version
}

// RelationPage finds the raw value of one page of an identity's relation
// set (ErrNotFound when there is none), for callers that pass it on or
// open it themselves with OpenRelationPage. Only values that passed the
// DHT's validator are returned.
func (c *CAN) RelationPage(ctx context.Context, id identity.ID, page int) ([]byte, error) {
	return c.get(ctx, RelationKey(id, page))
}

// Relations reads an identity's relation set: page 0, then the other pages
// it announces. It fails only when page 0 cannot be read (ErrNotFound when
// there is none); pages that cannot be read, or that belong to another
// version than page 0, are listed in Missing. The proofs are not verified:
// callers verify them with graph.OpenProof or graph.VerifyProofs.
func (c *CAN) Relations(ctx context.Context, id identity.ID) (*RelationSet, error) {
	v, err := c.RelationPage(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	p0, err := OpenRelationPage(RelationKey(id, 0), v, c.cfg.Now())
	if err != nil {
		return nil, err
	}
	pages := make([]*RelationPage, p0.Pages)
	pages[0] = p0
	var g errgroup.Group
	g.SetLimit(putParallel)
	for i := 1; i < p0.Pages; i++ {
		g.Go(func() error {
			v, err := c.RelationPage(ctx, id, i)
			if err != nil {
				c.log.Debug("read relation page", "identity", id.Short(), "page", i, "err", err)
				return nil
			}
			p, err := OpenRelationPage(RelationKey(id, i), v, c.cfg.Now())
			if err != nil || p.Publisher != p0.Publisher || p.Sequence != p0.Sequence || p.Pages != p0.Pages {
				return nil
			}
			pages[i] = p
			return nil
		})
	}
	g.Wait()
	set := &RelationSet{
		Identity:  id,
		Publisher: p0.Publisher,
		Claim:     p0.Claim,
		Sequence:  p0.Sequence,
		Expires:   p0.Expires,
		Pages:     p0.Pages,
	}
	for i, p := range pages {
		if p == nil {
			set.Missing = append(set.Missing, i)
			continue
		}
		set.Proofs = append(set.Proofs, p.Proofs...)
		if p.Expires.Before(set.Expires) {
			set.Expires = p.Expires
		}
	}
	return set, nil
}
