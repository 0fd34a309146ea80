package profileserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/profile/search"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Protocol IDs of the server's roles.
const (
	ProtocolClient   protocol.ID = "/iop/profile/1"
	ProtocolNeighbor protocol.ID = "/iop/profile/1/neighbor"
)

// ProtocolVersion is the protocol version this server speaks (SemVer bytes).
var ProtocolVersion = [3]byte{1, 0, 0}

// Protocol limits (2017 values).
const (
	MaxHostedIdentities  = 20000 // protocol maximum of hosted identities
	MaxServices          = 50    // application services per checked-in identity
	MaxServiceNameLen    = 32    // bytes
	MaxPingPayload       = 64    // bytes
	ChallengeSize        = 32    // bytes
	MaxSearchTotal       = 10000 // results per search without thumbnails
	MaxSearchTotalThumbs = 1000  // results per search with thumbnails
	MaxSearchPage        = 1000  // results per response without thumbnails
	MaxSearchPageThumbs  = 100   // results per response with thumbnails
	MaxSearchTypeLen     = 64    // bytes of the type wildcard
	MaxSearchNameLen     = 64    // bytes of the name wildcard
	MaxSearchRegexLen    = 256   // bytes of the extra-data regex
)

// Config configures a Server. Zero fields take the defaults noted.
type Config struct {
	Host   host.Host     // required: the node's libp2p host
	Key    *identity.Key // required: the node's identity key, the same key as Host's
	DB     *bbolt.DB     // required: the node's database
	Logger *slog.Logger  // default: discard
	// Directory publishes identity pointers and resolves them (the
	// content address network); nil runs without one.
	Directory Directory
	// Relations publishes hosted identities' public edges in the content
	// address network and reads them back; nil runs without.
	Relations RelationDirectory
	// NodeStatus returns the node's status document (JSON) for the
	// NodeStatus request; nil answers UNSUPPORTED.
	NodeStatus func() ([]byte, error)
	// TurnGrant grants TURN credentials to a proven identity; nil answers
	// UNSUPPORTED.
	TurnGrant func(id identity.ID) *wirepb.TurnCredentialsResponse

	MaxHosted           int           // default 20,000 (the protocol maximum)
	ClientIdleTimeout   time.Duration // default 60 s: a client must send something this often
	NeighborIdleTimeout time.Duration // default 300 s
	WriteTimeout        time.Duration // default 10 s
	SearchCacheTTL      time.Duration // default 180 s: how long search results stay pageable
	SearchTimeout       time.Duration // default 15 s: total time of one search
	RegexBudget         time.Duration // default 1 s: extra-data regex time per search
	MaxStreamsPerPeer   int           // default 16 concurrent protocol streams per peer
	PeerRate            rate.Limit    // default 100 requests/s per peer
	PeerBurst           int           // default 200
	UpdateRate          rate.Limit    // default 20 profile updates/s per identity
	UpdateBurst         int           // default 50
	RedirectKeep        time.Duration // default 30 days: how long a cancelled identity's redirect is kept
	CutOffPause         time.Duration // default 1 h: how long a neighbour that sent invalid data is not followed
	CallAnswerTimeout   time.Duration // default 10 s: how long a callee has to answer a call
	CallJoinTimeout     time.Duration // default 30 s: how long each side has to join an accepted call
	MaxUnacked          int           // default 20 unacknowledged relayed messages per side
	MaxCallsPerIdentity int           // default 16 calls being set up to one callee at a time
	RelayRate           rate.Limit    // default 8 MiB/s: bytes one side of a call may relay per second
	MaxRelations        int           // default 2,000 public edges per identity (the protocol maximum)
	RelationsBudget     int           // default just under a frame: bytes of proofs in one related-identities answer
	MaxInbox            int           // default 100 pending relationship proposals per identity

	Now func() time.Time // default time.Now
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxHosted == 0 {
		c.MaxHosted = MaxHostedIdentities
	}
	if c.ClientIdleTimeout == 0 {
		c.ClientIdleTimeout = 60 * time.Second
	}
	if c.NeighborIdleTimeout == 0 {
		c.NeighborIdleTimeout = 300 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SearchCacheTTL == 0 {
		c.SearchCacheTTL = 180 * time.Second
	}
	if c.SearchTimeout == 0 {
		c.SearchTimeout = 15 * time.Second
	}
	if c.RegexBudget == 0 {
		c.RegexBudget = time.Second
	}
	if c.MaxStreamsPerPeer == 0 {
		c.MaxStreamsPerPeer = 16
	}
	if c.PeerRate == 0 {
		c.PeerRate = 100
	}
	if c.PeerBurst == 0 {
		c.PeerBurst = 200
	}
	if c.UpdateRate == 0 {
		c.UpdateRate = 20
	}
	if c.UpdateBurst == 0 {
		c.UpdateBurst = 50
	}
	if c.RedirectKeep == 0 {
		c.RedirectKeep = 30 * 24 * time.Hour
	}
	if c.CutOffPause == 0 {
		c.CutOffPause = time.Hour
	}
	if c.CallAnswerTimeout == 0 {
		c.CallAnswerTimeout = 10 * time.Second
	}
	if c.CallJoinTimeout == 0 {
		c.CallJoinTimeout = 30 * time.Second
	}
	if c.MaxUnacked == 0 {
		c.MaxUnacked = MaxUnacked
	}
	if c.MaxCallsPerIdentity == 0 {
		c.MaxCallsPerIdentity = 16
	}
	if c.RelayRate == 0 {
		c.RelayRate = 8 << 20
	}
	if c.MaxRelations == 0 {
		c.MaxRelations = MaxRelations
	}
	if c.MaxInbox == 0 {
		c.MaxInbox = MaxInbox
	}
	if c.RelationsBudget == 0 {
		c.RelationsBudget = RelationsBudget
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("profile server: Config.Host is required")
	case c.Key == nil:
		return errors.New("profile server: Config.Key is required")
	case c.DB == nil:
		return errors.New("profile server: Config.DB is required")
	case c.MaxHosted < 0 || c.MaxHosted > MaxHostedIdentities:
		return fmt.Errorf("profile server: MaxHosted %d out of range 1..%d", c.MaxHosted, MaxHostedIdentities)
	}
	if id, err := p2p.PeerID(c.Key); err != nil || id != c.Host.ID() {
		return errors.New("profile server: Config.Key is not the host's key")
	}
	return nil
}

// hosted is the in-memory state of one stored identity.
type hosted struct {
	rec     *wirepb.HostedIdentity
	profile *graph.SignedProfile // nil until initialized
	online  *session             // the checked-in session, or nil
	updates *rate.Limiter
}

func (h *hosted) active() bool { return !h.rec.Cancelled }

// Server is a profile server.
type Server struct {
	cfg   Config
	id    identity.ID
	store *store
	index *search.Index
	log   *slog.Logger

	mu          sync.Mutex // guards the fields below
	ids         map[identity.ID]*hosted
	relPub      relPublishing        // identities whose public edges are being published
	nactive     int                  // hosted identities that are not cancelled
	registering int                  // registrations being written
	writing     map[identity.ID]bool // identities with a write in progress
	sessions    map[*session]struct{}
	changes     changeLog                 // changes for followers
	followers   map[identity.ID]time.Time // followers and when they last synced
	following   map[identity.ID]*follower // neighbours this server follows
	neighbors   map[identity.ID]*neighborInfo
	sources     map[uint32]identity.ID // index source → neighbour
	nextSource  uint32
	done        chan struct{}                            // closed by Close
	afterApply  func(nb identity.ID, items []sharedItem) // test hook, called with mu held
	snapshots   int
	peerCount   map[peer.ID]int
	peerLimits  map[peer.ID]*rate.Limiter
	closed      bool

	callMu       sync.Mutex // guards calls, pendingCalls and every call's fields
	calls        map[token]*callSide
	pendingCalls map[identity.ID]int // calls waiting for the callee's answer

	wg sync.WaitGroup // one per session goroutine
}

// New loads the server's state from the database and rebuilds the search
// index. Call Start to begin serving.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := openStore(cfg.DB)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		id:         cfg.Key.ID(),
		store:      st,
		log:        cfg.Logger,
		ids:        make(map[identity.ID]*hosted),
		writing:    make(map[identity.ID]bool),
		changes:    newChangeLog(),
		followers:  make(map[identity.ID]time.Time),
		following:  make(map[identity.ID]*follower),
		neighbors:  make(map[identity.ID]*neighborInfo),
		sources:    make(map[uint32]identity.ID),
		nextSource: 1,
		done:       make(chan struct{}),
		sessions:   make(map[*session]struct{}),
		peerCount:  make(map[peer.ID]int),
		peerLimits: make(map[peer.ID]*rate.Limiter),

		calls:        make(map[token]*callSide),
		pendingCalls: make(map[identity.ID]int),
	}
	start := time.Now()
	var entries []search.Profile
	err = st.forEach(func(id identity.ID, rec *wirepb.HostedIdentity) error {
		h := &hosted{rec: rec}
		if rec.Profile != nil {
			sp, err := graph.OpenProto(rec.Profile, rec.PublicKey)
			if err != nil {
				return fmt.Errorf("stored profile of %s: %w", id, err)
			}
			h.profile = sp
			if h.active() {
				entries = append(entries, indexEntry(sp))
			}
		}
		if h.active() {
			s.nactive++
		}
		s.ids[id] = h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile server: load: %w", err)
	}
	shared, err := s.loadNeighbors()
	if err != nil {
		return nil, fmt.Errorf("profile server: load neighbours: %w", err)
	}
	for _, e := range shared {
		if _, hosted := s.ids[e.ID]; !hosted {
			entries = append(entries, e)
		}
	}
	s.index = search.Build(entries)
	if err := s.Sweep(); err != nil {
		return nil, err
	}
	s.log.Info("profile server loaded", "identities", len(s.ids), "hosted", s.nactive,
		"indexed", len(entries), "took", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// indexEntry is the search index entry of a hosted profile.
func indexEntry(sp *graph.SignedProfile) search.Profile {
	p := &sp.Profile
	return search.Profile{
		ID: sp.ID(), Source: 0, Type: p.Type, Name: p.Name,
		Lat: p.Location.Lat, Lon: p.Location.Lon, Extra: p.Extra,
	}
}

// ID is the server's network ID.
func (s *Server) ID() identity.ID { return s.id }

// Start registers the protocol handlers on the host.
func (s *Server) Start() {
	s.cfg.Host.SetStreamHandler(ProtocolClient, func(st network.Stream) { s.serveStream(st, roleClient) })
	s.cfg.Host.SetStreamHandler(ProtocolNeighbor, func(st network.Stream) { s.serveStream(st, roleNeighbor) })
}

// Run serves until ctx is done, then closes the server. It republishes the
// stored identity pointers, and once an hour it forgets cancelled
// identities whose redirect has been kept long enough.
func (s *Server) Run(ctx context.Context) error {
	s.Start()
	s.publishAll()
	s.publishAllRelations()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Close()
			return nil
		case <-t.C:
			if err := s.Sweep(); err != nil {
				s.log.Error("sweep of cancelled identities", "err", err)
			}
			s.expireNeighbors()
		}
	}
}

// expiredLocked reports whether a cancelled identity's redirect is past
// its keeping time.
func (s *Server) expiredLocked(h *hosted, now time.Time) bool {
	return h.rec.Cancelled && now.After(time.UnixMilli(h.rec.CancelledAt).Add(s.cfg.RedirectKeep))
}

// Sweep forgets cancelled identities kept longer than RedirectKeep.
func (s *Server) Sweep() error {
	now := s.cfg.Now()
	s.mu.Lock()
	var gone []identity.ID
	for id, h := range s.ids {
		if s.expiredLocked(h, now) && !s.writing[id] {
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.mu.Lock()
		h := s.ids[id]
		if h == nil || !s.expiredLocked(h, now) || s.beginLocked(id) != nil {
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		err := s.store.deleteIdentity(id)
		s.mu.Lock()
		s.endLocked(id)
		if err == nil && s.ids[id] == h {
			delete(s.ids, id)
			if s.cfg.Directory != nil {
				s.cfg.Directory.Forget(id)
			}
		}
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("forget cancelled identity %s: %w", id, err)
		}
	}
	if len(gone) > 0 {
		s.log.Info("forgot cancelled identities", "count", len(gone))
	}
	return nil
}

// Close stops serving, drops every session and waits for their goroutines.
func (s *Server) Close() {
	defer s.index.Close()
	s.cfg.Host.RemoveStreamHandler(ProtocolClient)
	s.cfg.Host.RemoveStreamHandler(ProtocolNeighbor)
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	for ss := range s.sessions {
		ss.stream.Reset()
	}
	for _, f := range s.following {
		f.cancel()
	}
	s.mu.Unlock()
	s.callMu.Lock()
	for _, cs := range s.calls {
		cs.c.timer.Stop()
	}
	s.callMu.Unlock()
	s.wg.Wait()
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Hosted    int `json:"hosted"`    // identities with an active hosting agreement
	Online    int `json:"online"`    // identities checked in now
	Sessions  int `json:"sessions"`  // open protocol streams
	Indexed   int `json:"indexed"`   // profiles in the search index
	Shared    int `json:"shared"`    // profiles shared by neighbours
	Neighbors int `json:"neighbors"` // neighbours followed
	Followers int `json:"followers"` // servers following this one
	Snapshots int `json:"snapshots"` // snapshots started for followers since the start
	Calls     int `json:"calls"`     // application-service calls being set up or relayed
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Hosted: s.nactive, Sessions: len(s.sessions), Indexed: s.index.Len(),
		Neighbors: len(s.following), Followers: len(s.followers), Snapshots: s.snapshots}
	s.callMu.Lock()
	st.Calls = len(s.calls) / 2
	s.callMu.Unlock()
	for _, ni := range s.neighbors {
		st.Shared += ni.count
	}
	for _, h := range s.ids {
		if h.online != nil {
			st.Online++
		}
	}
	return st
}

// typeStats counts hosted identities per type, uninitialized ones included.
func (s *Server) typeStats() []*wirepb.ProfileStatsItem {
	s.mu.Lock()
	counts := make(map[string]uint32)
	for _, h := range s.ids {
		if h.active() {
			counts[h.rec.Type]++
		}
	}
	s.mu.Unlock()
	out := make([]*wirepb.ProfileStatsItem, 0, len(counts))
	for t, n := range counts {
		out = append(out, &wirepb.ProfileStatsItem{IdentityType: t, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IdentityType < out[j].IdentityType })
	return out
}

// peerLimiterLocked returns the request rate limiter shared by a peer's
// streams. Limiters of peers without streams are swept when full.
func (s *Server) peerLimiterLocked(p peer.ID) *rate.Limiter {
	if len(s.peerLimits) > 4*len(s.peerCount)+1024 {
		for id, l := range s.peerLimits {
			if s.peerCount[id] == 0 && l.Tokens() >= float64(s.cfg.PeerBurst) {
				delete(s.peerLimits, id)
			}
		}
	}
	l := s.peerLimits[p]
	if l == nil {
		l = rate.NewLimiter(s.cfg.PeerRate, s.cfg.PeerBurst)
		s.peerLimits[p] = l
	}
	return l
}
