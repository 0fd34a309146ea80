// Package node composes the IoP services into one process, the full node
// that iopd and `iop devnet` run: the libp2p host, the node's database, the
// profile server and the HTTP API.
package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can"
	"github.com/iop-go/iop/internal/can/canpb"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/chainnode"
	"github.com/iop-go/iop/internal/chain/types"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/turnserver"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Config configures a node. It is also the JSON config file of iopd.
type Config struct {
	DataDir  string         `json:"data_dir"` // required: key, database
	Listen   []string       `json:"listen"`   // libp2p multiaddrs; default TCP and QUIC on port 16987 of all interfaces
	HTTP     string         `json:"http"`     // HTTP API address; default 127.0.0.1:16988; "off" disables
	Location graph.Location `json:"-"`        // the operator-declared location
	Loc      string         `json:"location"` // the same as "LAT,LON" in config files
	Name     string         `json:"name"`     // a label for logs and status
	// Bootstrap are multiaddrs (with /p2p/) of nodes to join the network
	// through; empty for the first node of a network.
	Bootstrap []string `json:"bootstrap"`
	// TURN is the UDP address of the node's STUN/TURN server, a specific
	// IP with a port (e.g. 203.0.113.5:3478, or 127.0.0.1:0); empty runs
	// none.
	TURN string `json:"turn"`

	MaxHosted int `json:"max_hosted"` // profile server quota; default 20,000
	// Chain is the token chain network the node runs: "main", "test" or
	// "devnet"; empty or "off" runs none.
	Chain string `json:"chain"`
	// Mine makes the node mine with its own key whenever that key holds a
	// licence on the chain (and is under the cap).
	Mine bool `json:"mine"`
	// MinerSeed, when set, is the seed of the key the node mines with
	// instead of its own (devnets use the well-known devnet miner keys);
	// it also pays the devnet faucet.
	MinerSeed []byte `json:"-"`
	// ChainParams, when set, replaces the parameters of Chain (tests run a
	// devnet with faster blocks).
	ChainParams *chaincfg.Params `json:"-"`
	Logger      *slog.Logger     `json:"-"`
}

// DefaultListen are the listen addresses of a node without configuration.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/16987", "/ip4/0.0.0.0/udp/16987/quic-v1"}

// LoadConfig reads a JSON config file.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("node: a data directory is required (--data DIR)")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(c.Listen) == 0 {
		c.Listen = DefaultListen
	}
	if c.HTTP == "" {
		c.HTTP = "127.0.0.1:16988"
	}
	if c.Loc != "" {
		l, err := graph.ParseLocation(c.Loc)
		if err != nil {
			return fmt.Errorf("node: %w", err)
		}
		c.Location = l
	} else if c.Location == (graph.Location{}) {
		c.Location = graph.Nowhere
	}
	return nil
}

// TURN quotas of a node: credentials live long enough for long calls, and
// one allocation relays at most turnMaxBytes (both directions).
const (
	turnCredentialTTL = 12 * time.Hour
	turnMaxBytes      = 4 << 30
)

// Node is a running full node.
type Node struct {
	cfg     Config
	key     *identity.Key
	host    host.Host
	db      *bbolt.DB
	profile *profileserver.Server
	turn    *turnserver.Server // nil when the node runs none
	can     *can.CAN
	loc     *locnet.Node // nil when the node has no location
	chainDB *bbolt.DB    // nil when the node runs no chain
	chain   atomic.Pointer[chainnode.Node]
	params  *chaincfg.Params
	httpLn  net.Listener
	started time.Time
	log     *slog.Logger
}

// New opens the node's key and database and builds its services. The
// node's libp2p listeners are open when New returns; Run serves.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	if soft, err := p2p.RaiseFDLimit(); err != nil {
		cfg.Logger.Warn("could not raise the open-file limit", "err", err)
	} else {
		cfg.Logger.Debug("open-file limit", "soft", soft)
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.DataDir, "node.key"))
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, key: key, started: time.Now(), log: cfg.Logger}
	ok := false
	defer func() {
		if !ok {
			n.close()
		}
	}()
	dbPath := filepath.Join(cfg.DataDir, "node.db")
	n.db, err = bbolt.Open(dbPath, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("node: open database %s: %w (is another node using this data directory?)", dbPath, err)
	}
	n.host, err = p2p.New(p2p.Config{Key: key, Listen: cfg.Listen, Limits: p2p.ServerLimits()})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	var boot []peer.AddrInfo
	for _, b := range cfg.Bootstrap {
		ai, err := p2p.ParseAddr(b)
		if err != nil {
			return nil, fmt.Errorf("node: bootstrap: %w", err)
		}
		boot = append(boot, ai)
	}
	if cfg.TURN != "" {
		// The HMAC secret of TURN credentials is derived from the node key,
		// so credentials stay valid across a restart.
		secret := sha256.Sum256(append([]byte("iop/turn-secret/1"), key.Seed()...))
		n.turn, err = turnserver.New(turnserver.Config{ListenUDP: cfg.TURN, Secret: secret[:], Logger: cfg.Logger.With("service", "turn"),
			// A TURN allocation cannot be refreshed once its credentials
			// expire, so they must outlive the connections relayed on them;
			// the per-identity allocation cap and the byte cap bound what
			// one identity can take meanwhile.
			CredentialTTL:         turnCredentialTTL,
			MaxBytesPerAllocation: turnMaxBytes,
		})
		if err != nil {
			return nil, fmt.Errorf("node: STUN/TURN server on %s: %w", cfg.TURN, err)
		}
	}
	n.can, err = can.New(can.Config{
		Host: n.host, Key: key, Bootstrap: boot, Logger: cfg.Logger.With("service", "can"), Contact: n.contact,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Location.IsSet() {
		tr, err := locnet.NewLibp2pTransport(locnet.Libp2pConfig{Host: n.host, Logger: cfg.Logger.With("service", "loc")})
		if err != nil {
			return nil, err
		}
		var seeds []locnet.Contact
		for _, b := range boot {
			pub, err := p2p.PublicKeyOf(b.ID)
			if err != nil {
				return nil, fmt.Errorf("node: bootstrap %s: %w", b.ID, err)
			}
			c := locnet.Contact{ID: identity.IDFromPublicKey(pub), PublicKey: pub}
			for _, a := range b.Addrs {
				c.Addrs = append(c.Addrs, a.String())
			}
			seeds = append(seeds, c)
		}
		store, err := newLocStore(n.db)
		if err != nil {
			return nil, err
		}
		n.loc, err = locnet.New(locnet.Config{
			Key: key, Location: cfg.Location, Addrs: tr.Addrs(), Seeds: seeds, Transport: tr, Store: store,
			Services: locServices(n.services()),
			Logger:   cfg.Logger.With("service", "loc"),
		})
		if err != nil {
			return nil, fmt.Errorf("node: location based network: %w", err)
		}
	} else {
		cfg.Logger.Warn("node has no location: it stays out of the location based network and has no profile neighbours (set --location LAT,LON)")
	}
	n.profile, err = profileserver.New(profileserver.Config{
		Host: n.host, Key: key, DB: n.db, Logger: cfg.Logger.With("service", "profile"), MaxHosted: cfg.MaxHosted,
		Directory:  n.can,
		Relations:  n.can,
		NodeStatus: func() ([]byte, error) { return json.Marshal(n.Status()) },
		TurnGrant:  n.turnGrant(),
	})
	if err != nil {
		return nil, err
	}
	if cfg.ChainParams != nil {
		n.params = cfg.ChainParams
	} else if cfg.Chain != "" && cfg.Chain != "off" {
		if n.params, err = chaincfg.ByName(cfg.Chain); err != nil {
			return nil, fmt.Errorf("node: --chain: %w", err)
		}
	}
	if n.params != nil {
		path := filepath.Join(cfg.DataDir, "chain-"+n.params.Name+".db")
		n.chainDB, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("node: open chain database %s: %w", path, err)
		}
	}
	if cfg.HTTP != "off" {
		n.httpLn, err = net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return nil, fmt.Errorf("node: HTTP API on %s: %w (choose another with --http)", cfg.HTTP, err)
		}
	}
	// Clients may call as soon as New returns.
	n.profile.Start()
	ok = true
	return n, nil
}

// loadOrCreateKey reads the node key file (hex seed, 0600) or creates it.
func loadOrCreateKey(path string) (*identity.Key, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := identity.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k.Seed())+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("node key %s: %w", path, err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("node key %s: not a hex seed: %w", path, err)
	}
	return identity.NewKeyFromSeed(seed)
}

// contact is the node's contact record for the content address network.
func (n *Node) contact() *canpb.NodeContact {
	c := &canpb.NodeContact{Latitude: n.cfg.Location.Lat, Longitude: n.cfg.Location.Lon, Services: n.services()}
	for _, a := range p2p.Announceable(n.host.Addrs()) {
		c.Addrs = append(c.Addrs, a.String())
	}
	return c
}

// followNeighbours keeps the profile server's neighbours in step with the
// location based network: its neighbours that run a profile server, nearest
// first, up to the profile server's limit.
func (n *Node) followNeighbours(ctx context.Context) error {
	for ctx.Err() == nil {
		cur, sub := n.loc.Subscribe(256)
		set := make(map[identity.ID]locnet.NodeInfo)
		for _, ni := range cur {
			set[ni.ID] = ni
		}
		n.applyNeighbours(set)
	loop:
		for {
			select {
			case <-ctx.Done():
				sub.Close()
				return nil
			case ch, ok := <-sub.C():
				if !ok {
					break loop // cut off as a slow subscriber: subscribe again
				}
				if ch.Kind == locnet.Removed {
					delete(set, ch.Info.ID)
				} else {
					set[ch.Info.ID] = ch.Info
				}
				n.applyNeighbours(set)
			}
		}
	}
	return nil
}

func (n *Node) applyNeighbours(set map[identity.ID]locnet.NodeInfo) {
	var infos []locnet.NodeInfo
	for _, ni := range set {
		if _, ok := ni.Service("profile"); ok {
			infos = append(infos, ni)
		}
	}
	sort.Slice(infos, func(i, j int) bool {
		return graph.Distance(n.cfg.Location, infos[i].Location) < graph.Distance(n.cfg.Location, infos[j].Location)
	})
	var addrs []peer.AddrInfo
	for _, ni := range infos {
		if len(addrs) == profileserver.MaxNeighbors {
			break
		}
		pk, err := crypto.UnmarshalEd25519PublicKey(ni.PublicKey)
		if err != nil {
			continue
		}
		id, err := peer.IDFromPublicKey(pk)
		if err != nil {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, a := range ni.Addrs {
			if m, err := ma.NewMultiaddr(a); err == nil {
				if t, _ := peer.SplitAddr(m); t != nil {
					ai.Addrs = append(ai.Addrs, t)
				}
			}
		}
		addrs = append(addrs, ai)
	}
	n.profile.SetNeighbors(addrs)
}

// turnGrant returns the profile server's TURN credential grant, or nil
// when the node runs no TURN server.
func (n *Node) turnGrant() func(identity.ID) *wirepb.TurnCredentialsResponse {
	if n.turn == nil {
		return nil
	}
	return func(id identity.ID) *wirepb.TurnCredentialsResponse {
		c := n.turn.Grant(id, time.Now())
		a := n.turn.Addr().String()
		return &wirepb.TurnCredentialsResponse{
			Urls:     []string{"stun:" + a, "turn:" + a + "?transport=udp"},
			Username: c.Username, Password: c.Password, Expires: c.Expires.UnixMilli(), Realm: n.turn.Realm(),
		}
	}
}

// services are the services the node advertises in the location based
// network and the content address network.
func (n *Node) services() []*canpb.Service {
	out := []*canpb.Service{{Type: "profile", Data: []byte(profileserver.ProtocolClient)}}
	if n.turn != nil {
		a := []byte(n.turn.Addr().String())
		out = append(out, &canpb.Service{Type: "stun", Data: a}, &canpb.Service{Type: "turn", Data: a})
	}
	return out
}

// Loc is the node's location based network service, or nil.
func (n *Node) Loc() *locnet.Node { return n.loc }

// CAN is the node's content address network service.
func (n *Node) CAN() *can.CAN { return n.can }

// ID is the node's network ID.
func (n *Node) ID() identity.ID { return n.key.ID() }

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// ProfileServer is the node's profile server.
func (n *Node) ProfileServer() *profileserver.Server { return n.profile }

// Addrs are the node's full multiaddrs (with /p2p/<peer id>).
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range p2p.FullAddrs(n.host) {
		out = append(out, a.String())
	}
	return out
}

// HTTPURL is the base URL of the HTTP API, or "" when it is off.
func (n *Node) HTTPURL() string {
	if n.httpLn == nil {
		return ""
	}
	return "http://" + n.httpLn.Addr().String()
}

// Status is the node's /api/status document.
type Status struct {
	ID            identity.ID         `json:"id"`
	PeerID        string              `json:"peer_id"`
	Name          string              `json:"name,omitempty"`
	Addrs         []string            `json:"addrs"`
	Location      string              `json:"location"`
	Uptime        string              `json:"uptime"`
	Profile       profileserver.Stats `json:"profile"`
	Peers         int                 `json:"peers"`
	LocNeighbours int                 `json:"loc_neighbours"`
	LocColleagues int                 `json:"loc_colleagues"`
	DHTPeers      int                 `json:"dht_peers"`
	Chain         *ChainStatus        `json:"chain,omitempty"`
}

// ChainStatus is the token chain part of a node's status.
type ChainStatus struct {
	Network string `json:"network"`
	Height  int64  `json:"height"`
	Tip     string `json:"tip"`
	// Address is the token address of the node's key: the address to
	// licence for iopd --mine.
	Address string `json:"address"`
}

// Status returns the node's status.
func (n *Node) Status() Status {
	var ln, lc int
	if n.loc != nil {
		ln, lc = len(n.loc.Neighbours()), len(n.loc.Colleagues())
	}
	var cs *ChainStatus
	if cn := n.chain.Load(); cn != nil {
		t := cn.Chain().Tip()
		cs = &ChainStatus{Network: n.params.Name, Height: t.Height, Tip: t.Hash.String(),
			Address: types.AddressOf(n.key.Public()).Encode(n.params.AddressPrefix)}
	}
	return Status{
		Chain:         cs,
		LocNeighbours: ln, LocColleagues: lc,
		ID: n.ID(), PeerID: n.host.ID().String(), Name: n.cfg.Name, Addrs: n.Addrs(),
		Location: n.cfg.Location.String(), Uptime: time.Since(n.started).Round(time.Second).String(),
		Profile: n.profile.Stats(), Peers: len(n.host.Network().Peers()), DHTPeers: n.can.RoutingTableSize(),
	}
}

// Run serves until ctx ends, then shuts everything down.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.profile.Run(ctx) })
	g.Go(func() error { return n.can.Run(ctx) })
	if n.loc != nil {
		g.Go(func() error { return n.loc.Run(ctx) })
		g.Go(func() error { return n.followNeighbours(ctx) })
	}
	if n.chainDB != nil {
		g.Go(func() error {
			start := time.Now()
			cn, err := n.startChain(ctx)
			if err != nil {
				return err
			}
			defer cn.Close()
			n.log.Debug("chain started", "took", time.Since(start))
			return cn.Run(ctx)
		})
	}
	if n.httpLn != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(n.Status())
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(n.httpLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("HTTP API: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	n.log.Info("node running", "id", n.ID(), "addrs", n.Addrs(), "http", n.HTTPURL(), "location", n.cfg.Location)
	return g.Wait()
}

// Close releases a node that was built but not run; Run closes by itself.
func (n *Node) Close() { n.close() }

func locServices(in []*canpb.Service) []locnet.Service {
	out := make([]locnet.Service, 0, len(in))
	for _, s := range in {
		out = append(out, locnet.Service{Type: s.Type, Data: s.Data})
	}
	return out
}

// startChain opens the token chain and its services on the node's host.
func (n *Node) startChain(ctx context.Context) (*chainnode.Node, error) {
	cfg := chainnode.Config{Params: n.params, DB: n.chainDB, Host: n.host, Logger: n.log.With("service", "chain")}
	switch {
	case n.cfg.MinerSeed != nil:
		k, err := identity.NewKeyFromSeed(n.cfg.MinerSeed)
		if err != nil {
			return nil, fmt.Errorf("node: miner key: %w", err)
		}
		cfg.MinerKey, cfg.Faucet = k, k
	case n.cfg.Mine:
		cfg.MinerKey = n.key
	}
	cn, err := chainnode.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("node: chain: %w", err)
	}
	n.chain.Store(cn)
	return cn, nil
}

func (n *Node) close() {
	if n.chainDB != nil {
		n.chainDB.Close()
	}
	if n.turn != nil {
		n.turn.Close()
	}
	if n.host != nil {
		n.host.Close()
	}
	if n.db != nil {
		n.db.Close()
	}
	if n.httpLn != nil {
		n.httpLn.Close()
	}
}
