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
//     claim instead (with a higher sequence, so it replaces the old one).
//
// Validators accept a record only when every signature verifies, the key
// matches the signer, and the expiry is in the future but within MaxTTL;
// among valid records the highest sequence wins. The records a node
// publishes are republished every RepublishInterval, and a restarted node
// republishes them from its own store (the profile server's database), so
// nothing depends on the DHT's in-memory state surviving.
package can

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
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

	mu       sync.Mutex // guards the fields below
	pointers map[identity.ID][]byte
	seq      uint64
	ready    chan struct{} // closed after the first bootstrap round
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
		NamespaceNode:     nodeValidator{now: cfg.Now},
		NamespaceIdentity: pointerValidator{now: cfg.Now},
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
	return &CAN{cfg: cfg, dht: d, log: cfg.Logger, pointers: make(map[identity.ID][]byte), ready: make(chan struct{})}, nil
}

// Run connects to the bootstrap peers, fills the routing table, publishes
// the node's records and republishes them until ctx ends.
func (c *CAN) Run(ctx context.Context) error {
	defer c.dht.Close()
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
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
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
	c.mu.Unlock()
	for id, v := range vals {
		if err := c.put(ctx, IdentityKey(id), v); err != nil {
			c.log.Debug("republish identity pointer", "identity", id.Short(), "err", err)
		}
	}
}

func (c *CAN) put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := c.dht.PutValue(ctx, key, value)
	if err != nil && c.dht.RoutingTable().Size() == 0 {
		// Alone in the network: the value is stored locally and will be
		// replicated by the next republish once peers appear.
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
	now := c.cfg.Now()
	c.mu.Lock()
	c.seq = max(c.seq+1, uint64(now.UnixMilli()))
	rec.Sequence = c.seq
	c.mu.Unlock()
	rec.ExpiresAt = now.Add(c.cfg.TTL).UnixMilli()
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
