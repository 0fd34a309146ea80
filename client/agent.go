package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/atomicfile"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// AgentConfig configures an Agent.
type AgentConfig struct {
	Home   string        // required: the home directory (state lives in Home/agent)
	Key    *identity.Key // required: the identity the agent acts for
	Server peer.AddrInfo // the hosting profile server; empty to use the one in the stored state
	Type   string        // identity type to register with; may come later with the first profile
	Host   host.Host     // libp2p host; nil to create one
	Logger *slog.Logger

	KeepAlive  time.Duration // ping interval; default 30 s (servers drop clients idle for 60 s)
	MinBackoff time.Duration // first reconnect delay; default 500 ms
	MaxBackoff time.Duration // longest reconnect delay; default 30 s
	AskTimeout time.Duration // how long a request for private edges waits for the owner; default AskTimeout
	// RelationReadTimeout is how long a caller of the private-graph
	// service has to send its request; default RelationReadTimeout.
	RelationReadTimeout time.Duration
}

// AgentState is what an agent reports about itself.
type AgentState string

// Agent states.
const (
	StateConnecting AgentState = "connecting"
	StateWaiting    AgentState = "waiting-for-profile" // not hosted yet; the first profile gives the type
	StateOnline     AgentState = "online"
	StateStopped    AgentState = "stopped"
)

// AgentStatus is a snapshot of an agent.
type AgentStatus struct {
	ID        identity.ID  `json:"id"`
	Server    string       `json:"server"`
	State     AgentState   `json:"state"`
	LastError string       `json:"last_error,omitempty"`
	Hosted    bool         `json:"hosted"`
	Profile   *ProfileView `json:"profile,omitempty"`
	Services  []string     `json:"services"`
}

// agentFile is the agent's durable state, one JSON file per identity.
type agentFile struct {
	Server    string     `json:"server"`       // peer ID of the hosting server
	Addrs     []string   `json:"server_addrs"` // its multiaddrs, to reconnect without --server
	Type      string     `json:"type,omitempty"`
	Agreement *Agreement `json:"agreement,omitempty"`
	Profile   []byte     `json:"profile,omitempty"` // signed bytes of the last acknowledged profile
	Signature []byte     `json:"signature,omitempty"`
	Image     []byte     `json:"image,omitempty"`
	Thumbnail []byte     `json:"thumbnail,omitempty"`
	Services  []string   `json:"services,omitempty"`
}

// Agent keeps one identity hosted and checked in at its profile server,
// reconnecting with back-off when the server goes away, and publishes the
// identity's profile.
type Agent struct {
	cfg     AgentConfig
	id      identity.ID
	path    string
	host    host.Host
	ownHost bool
	log     *slog.Logger

	opMu sync.Mutex // serializes profile and service changes

	mu      sync.Mutex // guards the fields below
	st      agentFile
	profile *graph.SignedProfile
	conn    *Conn
	state   AgentState
	lastErr error
	online  chan struct{} // closed while online; replaced when going offline
	ended   chan struct{} // closed when hosting was cancelled: Run returns

	listeners map[string]*Listener // application services accepted
	accepting int                  // incoming calls being set up
	local     localConns           // accepted connections for local API clients

	rel relService // the private-graph service: pending requests, connections
}

// NewAgent loads the agent's state from its home directory.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Home == "" || cfg.Key == nil {
		return nil, errors.New("agent: Home and Key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.AskTimeout == 0 {
		cfg.AskTimeout = AskTimeout
	}
	if cfg.RelationReadTimeout == 0 {
		cfg.RelationReadTimeout = RelationReadTimeout
	}
	a := &Agent{cfg: cfg, id: cfg.Key.ID(), log: cfg.Logger, state: StateConnecting, online: make(chan struct{}), ended: make(chan struct{})}
	a.path = filepath.Join(cfg.Home, "agent", a.id.String()+".json")
	if err := a.load(); err != nil {
		return nil, err
	}
	if cfg.Server.ID != "" {
		if a.st.Server != "" && a.st.Server != cfg.Server.ID.String() && a.st.Agreement != nil {
			return nil, fmt.Errorf("agent: identity %s is hosted at %s; cancel that hosting before moving to %s",
				a.id.Short(), a.st.Server, cfg.Server.ID)
		}
		if a.st.Server != cfg.Server.ID.String() {
			a.st.Server = cfg.Server.ID.String()
			a.st.Agreement = nil
		}
		a.st.Addrs = a.st.Addrs[:0]
		for _, m := range cfg.Server.Addrs {
			a.st.Addrs = append(a.st.Addrs, m.String())
		}
	} else if a.st.Server == "" {
		return nil, errors.New("agent: no profile server: pass --server <multiaddr of a node>")
	}
	if cfg.Type != "" {
		if a.st.Type != "" && a.st.Type != cfg.Type {
			return nil, fmt.Errorf("agent: identity type is %q, fixed at registration; it cannot become %q", a.st.Type, cfg.Type)
		}
		if err := graph.ValidateType(cfg.Type); err != nil {
			return nil, fmt.Errorf("agent: type %q: %w", cfg.Type, err)
		}
		a.st.Type = cfg.Type
	}
	return a, nil
}

func (a *Agent) load() error {
	data, err := os.ReadFile(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	if err := json.Unmarshal(data, &a.st); err != nil {
		return fmt.Errorf("agent state %s: %w", a.path, err)
	}
	if a.st.Profile != nil {
		sp, err := graph.Open(a.st.Profile, a.st.Signature, a.cfg.Key.Public())
		if err != nil {
			return fmt.Errorf("agent state %s: stored profile: %w", a.path, err)
		}
		a.profile = sp
	}
	return nil
}

// saveLocked writes the state atomically and durably.
func (a *Agent) saveLocked() error {
	data, err := json.MarshalIndent(&a.st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Dir(a.path), filepath.Base(a.path), data, false)
}

// ID is the agent's identity.
func (a *Agent) ID() identity.ID { return a.id }

// Status returns a snapshot of the agent.
func (a *Agent) Status() AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := AgentStatus{ID: a.id, Server: a.st.Server, State: a.state, Hosted: a.st.Agreement != nil,
		Services: append([]string{}, a.st.Services...)}
	if a.lastErr != nil {
		s.LastError = a.lastErr.Error()
	}
	if a.profile != nil {
		v := ViewOf(a.profile)
		s.Profile = &v
	}
	return s
}

// WaitOnline blocks until the agent is checked in or ctx ends.
func (a *Agent) WaitOnline(ctx context.Context) error {
	for {
		a.mu.Lock()
		ch, st := a.online, a.state
		a.mu.Unlock()
		if st == StateOnline {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *Agent) setState(s AgentState, conn *Conn, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.state
	a.state, a.conn, a.lastErr = s, conn, err
	if s == StateOnline && was != StateOnline {
		close(a.online)
	} else if s != StateOnline && was == StateOnline {
		a.online = make(chan struct{})
	}
}

// Run keeps the identity checked in until ctx ends, reconnecting with
// exponential back-off and jitter.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.Host == nil {
		h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
		if err != nil {
			return err
		}
		a.cfg.Host, a.ownHost = h, true
	}
	a.mu.Lock()
	a.host = a.cfg.Host
	a.mu.Unlock()
	if a.ownHost {
		defer a.host.Close()
	}
	defer a.setState(StateStopped, nil, nil)
	backoff := a.cfg.MinBackoff
	for {
		started := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-a.ended:
			a.log.Info("hosting cancelled; the agent stops")
			return nil
		default:
		}
		a.setState(StateConnecting, nil, err)
		a.log.Warn("profile server connection lost; reconnecting", "server", a.cfg.Server.ID, "err", err, "in", backoff)
		if time.Since(started) > a.cfg.MaxBackoff {
			backoff = a.cfg.MinBackoff
		}
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, a.cfg.MaxBackoff)
	}
}

func (a *Agent) serverAddr() (peer.AddrInfo, error) {
	if a.cfg.Server.ID != "" {
		return a.cfg.Server, nil
	}
	id, err := peer.Decode(a.st.Server)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("stored server %q: %w", a.st.Server, err)
	}
	ai := peer.AddrInfo{ID: id}
	for _, s := range a.st.Addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("stored server address %q: %w", s, err)
		}
		ai.Addrs = append(ai.Addrs, m)
	}
	return ai, nil
}

// session runs one connection: conversation, registration if needed,
// check-in, resynchronisation, then keep-alive until the connection ends.
func (a *Agent) session(ctx context.Context) error {
	addr, err := a.serverAddr()
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := Dial(dctx, a.host, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.OnIncomingCall(a.incomingCall(c, addr))
	if err := c.StartConversation(dctx, a.cfg.Key); err != nil {
		return err
	}
	a.opMu.Lock()
	err = c.CheckIn(dctx)
	if errors.Is(err, Status(wirepb.Status_NOT_FOUND)) {
		a.mu.Lock()
		typ := a.st.Type
		a.mu.Unlock()
		if typ == "" {
			a.opMu.Unlock()
			a.setState(StateWaiting, c, nil)
			a.log.Info("not hosted yet: waiting for the first profile to learn the identity type")
			return a.keepAlive(ctx, c)
		}
		err = a.registerAndCheckIn(dctx, c, typ)
	}
	if err == nil {
		err = a.resync(dctx, c)
	}
	if err == nil {
		// Anyone can now resolve the identity to this server. A node
		// without the content address network says so; that is no reason
		// to stay offline.
		if perr := c.PublishClaim(dctx); perr != nil && !errors.Is(perr, Status(wirepb.Status_UNSUPPORTED)) {
			a.log.Warn("publish hosting claim", "err", perr)
		}
	}
	a.opMu.Unlock()
	if err != nil {
		return err
	}
	a.setState(StateOnline, c, nil)
	a.log.Info("checked in", "identity", a.id.Short(), "server", addr.ID)
	return a.keepAlive(ctx, c)
}

// registerAndCheckIn registers hosting and checks in. Callers hold opMu.
func (a *Agent) registerAndCheckIn(ctx context.Context, c *Conn, typ string) error {
	ag, err := c.RegisterHosting(ctx, typ)
	if err != nil && !errors.Is(err, Status(wirepb.Status_ALREADY_EXISTS)) {
		return err
	}
	if ag != nil {
		a.mu.Lock()
		a.st.Agreement = ag
		a.st.Type = typ
		err = a.saveLocked()
		a.mu.Unlock()
		if err != nil {
			return fmt.Errorf("save hosting agreement: %w", err)
		}
		a.log.Info("hosting registered", "identity", a.id.Short(), "type", typ)
	}
	return c.CheckIn(ctx)
}

// resync brings the server up to date after a check-in: the newest profile
// (the server may have lost nothing, or may hold a newer one made by another
// device of the same identity) and the enabled services.
func (a *Agent) resync(ctx context.Context, c *Conn) error {
	info, err := c.GetProfile(ctx, a.id, GetOptions{})
	switch {
	case errors.Is(err, Status(wirepb.Status_UNINITIALIZED)):
	case err != nil:
		return err
	}
	a.mu.Lock()
	local := a.profile
	img, thumb := a.st.Image, a.st.Thumbnail
	services := append([]string(nil), a.st.Services...)
	if info != nil && info.Profile != nil && (local == nil || info.Profile.Profile.Sequence > local.Profile.Sequence) {
		// The server's copy is newer: adopt it (images are fetched lazily).
		a.profile = info.Profile
		a.st.Profile, a.st.Signature = info.Profile.Raw, info.Profile.Signature
		local = nil
		_ = a.saveLocked()
	}
	a.mu.Unlock()
	if local != nil && (info == nil || info.Profile == nil || info.Profile.Profile.Sequence < local.Profile.Sequence) {
		if err := c.UpdateProfile(ctx, local, img, thumb, false); err != nil {
			return err
		}
	}
	if len(services) > 0 {
		if err := c.AddServices(ctx, services...); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) keepAlive(ctx context.Context, c *Conn) error {
	t := time.NewTicker(a.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
			return c.Err()
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, a.cfg.KeepAlive)
			_, err := c.Ping(pctx, nil)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("keep-alive: %w", err)
			}
		}
	}
}

// ErrOffline reports an operation that needs the profile server while the
// agent is not connected.
var ErrOffline = errors.New("agent is not connected to its profile server")

// ProfileChange is a change to the agent's profile; nil fields keep their
// current value.
type ProfileChange struct {
	Type          *string         `json:"type,omitempty"`
	Name          *string         `json:"name,omitempty"`
	Location      *graph.Location `json:"location,omitempty"`
	Extra         *string         `json:"extra,omitempty"`
	Image         []byte          `json:"image,omitempty"`       // a new PNG/JPEG image
	Thumbnail     []byte          `json:"thumbnail,omitempty"`   // a new thumbnail; made from Image when absent
	ClearImage    bool            `json:"clear_image,omitempty"` // remove image and thumbnail
	NoPropagation bool            `json:"no_propagation,omitempty"`
}

func (a *Agent) connFor(ctx context.Context) (*Conn, AgentState, error) {
	a.mu.Lock()
	c, st, lastErr := a.conn, a.state, a.lastErr
	a.mu.Unlock()
	if c == nil {
		if lastErr != nil {
			return nil, st, fmt.Errorf("%w (%v): it reconnects by itself, try again shortly", ErrOffline, lastErr)
		}
		return nil, st, fmt.Errorf("%w: it reconnects by itself, try again shortly", ErrOffline)
	}
	return c, st, nil
}

// SetProfile applies a change to the profile, signs it with the next
// sequence number, publishes it and stores it once the server acknowledged
// it. The first profile registers hosting when needed.
func (a *Agent) SetProfile(ctx context.Context, ch ProfileChange) (*graph.SignedProfile, error) {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	c, st, err := a.connFor(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	typ := a.st.Type
	cur := a.profile
	img, thumb := a.st.Image, a.st.Thumbnail
	a.mu.Unlock()

	if ch.Type != nil && *ch.Type != typ {
		if typ != "" {
			return nil, fmt.Errorf("identity type is %q, fixed at registration; it cannot become %q", typ, *ch.Type)
		}
		typ = *ch.Type
	}
	var p graph.Profile
	if cur != nil {
		p = cur.Profile
		p.Sequence++
	} else {
		p = graph.Profile{Location: graph.Nowhere, Sequence: 1}
	}
	p.Timestamp = time.Time{}
	if typ == "" {
		return nil, errors.New("the first profile needs a type (--type), e.g. chat/user")
	}
	p.Type = typ
	if ch.Name != nil {
		p.Name = *ch.Name
	}
	if ch.Location != nil {
		p.Location = *ch.Location
	}
	if ch.Extra != nil {
		p.Extra = *ch.Extra
	}
	newImg, newThumb := img, thumb
	switch {
	case ch.ClearImage:
		newImg, newThumb = nil, nil
	case ch.Image != nil:
		newImg, newThumb = ch.Image, ch.Thumbnail
		if newThumb == nil {
			if newThumb, err = MakeThumbnail(ch.Image); err != nil {
				return nil, err
			}
		}
	case ch.Thumbnail != nil:
		newThumb = ch.Thumbnail
	}
	p.ImageHash, p.ThumbnailHash = graph.HashImage(newImg), graph.HashImage(newThumb)
	if newImg != nil {
		if err := graph.CheckImage(graph.ProfileImage, newImg, p.ImageHash); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	if newThumb != nil {
		if err := graph.CheckImage(graph.ThumbnailImage, newThumb, p.ThumbnailHash); err != nil {
			return nil, fmt.Errorf("thumbnail: %w", err)
		}
	}
	sp, err := graph.Sign(a.cfg.Key, p)
	if err != nil {
		return nil, err
	}
	if st == StateWaiting {
		if err := a.registerAndCheckIn(ctx, c, typ); err != nil {
			return nil, err
		}
		if err := c.PublishClaim(ctx); err != nil && !errors.Is(err, Status(wirepb.Status_UNSUPPORTED)) {
			a.log.Warn("publish hosting claim", "err", err)
		}
	}
	if err := c.UpdateProfile(ctx, sp, newImg, newThumb, ch.NoPropagation && cur != nil); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.profile = sp
	a.st.Type = typ
	a.st.Profile, a.st.Signature = sp.Raw, sp.Signature
	a.st.Image, a.st.Thumbnail = newImg, newThumb
	err = a.saveLocked()
	a.mu.Unlock()
	if st == StateWaiting {
		a.setState(StateOnline, c, nil)
	}
	if err != nil {
		return sp, fmt.Errorf("profile published but not saved locally: %w", err)
	}
	return sp, nil
}

// CancelHosting ends the identity's hosting agreement, leaving a redirect
// to newServer when it is not nil, and publishes the move. The agent then
// stops; to move, run an agent again with the new server.
func (a *Agent) CancelHosting(ctx context.Context, newServer *identity.ID) error {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	c, st, err := a.connFor(ctx)
	if err != nil {
		return err
	}
	if st != StateOnline {
		return fmt.Errorf("%w: not hosted or not checked in", ErrOffline)
	}
	if err := c.CancelHosting(ctx, newServer); err != nil {
		return err
	}
	a.mu.Lock()
	a.st.Agreement, a.st.Profile, a.st.Signature, a.st.Image, a.st.Thumbnail = nil, nil, nil, nil, nil
	a.st.Server, a.st.Addrs = "", nil
	a.profile = nil
	err = a.saveLocked()
	a.mu.Unlock()
	close(a.ended) // Run returns instead of registering again
	c.Close()
	return err
}

// AddServices enables application services, now and after every check-in.
func (a *Agent) AddServices(ctx context.Context, names ...string) error {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	c, st, err := a.connFor(ctx)
	if err != nil {
		return err
	}
	if st != StateOnline {
		return fmt.Errorf("%w: publish a profile first", ErrOffline)
	}
	if err := c.AddServices(ctx, names...); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		if !contains(a.st.Services, n) {
			a.st.Services = append(a.st.Services, n)
		}
	}
	return a.saveLocked()
}

// RemoveService disables an application service.
func (a *Agent) RemoveService(ctx context.Context, name string) error {
	a.opMu.Lock()
	defer a.opMu.Unlock()
	c, _, err := a.connFor(ctx)
	if err != nil {
		return err
	}
	if err := c.RemoveService(ctx, name); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, n := range a.st.Services {
		if n == name {
			a.st.Services = append(a.st.Services[:i:i], a.st.Services[i+1:]...)
			break
		}
	}
	return a.saveLocked()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
