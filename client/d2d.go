package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/connect"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Device-to-device connections.
//
// A connection starts as an application-service call through the callee's
// profile server (it always works), then moves to a direct ICE path, or a
// TURN relay when no direct path exists, without the application noticing.
// Both identities are authenticated and everything is encrypted end to end;
// see package internal/connect for the protocol.

// PeerConn is an authenticated, encrypted, reliable and ordered connection
// to another identity. Path tells which path carries the bytes now:
// PathRelay, PathDirect or PathTURN.
type PeerConn = connect.Conn

// Paths of a PeerConn.
const (
	PathRelay  = connect.PathRelay
	PathDirect = connect.PathDirect
	PathTURN   = connect.PathTURN
)

// DialOptions tune how connections are made. The zero value is the normal
// behaviour: ICE with the callee's node's STUN/TURN server.
type DialOptions struct {
	DisableICE      bool             // stay on the profile-server relay
	RelayOnly       bool             // ICE with TURN relay candidates only (hides local addresses)
	IncludeLoopback bool             // allow loopback host candidates (tests on one machine)
	ICETimeout      time.Duration    // default 10 s
	Logger          *slog.Logger     // default: discard
	Timing          func(DialTiming) // reports the set-up phases of Dial, when set
}

// DialTiming tells how long the phases of a Dial took, from its start.
type DialTiming struct {
	Resolved time.Duration `json:"resolved_ms"` // the callee's hosting server found
	Accepted time.Duration `json:"accepted_ms"` // the callee accepted the call
	Joined   time.Duration `json:"joined_ms"`   // both sides joined the relay
	Secure   time.Duration `json:"secure_ms"`   // the end-to-end handshake completed: the first byte may flow
}

// callBinding is the call context both sides put into the handshake: a
// handshake made for another call, server, pair or service fails.
func callBinding(server, caller, callee identity.ID, service string) []byte {
	b := []byte("iop/call/1\x00")
	b = append(b, server[:]...)
	b = append(b, caller[:]...)
	b = append(b, callee[:]...)
	return append(b, service...)
}

func (o DialOptions) config(key *identity.Key, peerID identity.ID, initiator bool, binding []byte, turn *TurnCredentials) connect.Config {
	cfg := connect.Config{
		Key:             key,
		Peer:            peerID,
		Initiator:       initiator,
		Binding:         binding,
		DisableICE:      o.DisableICE,
		RelayOnly:       o.RelayOnly,
		IncludeLoopback: o.IncludeLoopback,
		ICETimeout:      o.ICETimeout,
		Logger:          o.Logger,
	}
	if turn != nil && len(turn.URLs) > 0 {
		cfg.ICEServers = []connect.ICEServer{{URLs: turn.URLs, Username: turn.Username, Credential: turn.Password}}
	}
	return cfg
}

// DialService connects key's identity to the application service of
// identity id. via is any node: it resolves where id is hosted (through the
// content address network) unless via hosts id itself. The callee must be
// checked in with the service enabled and must accept the call.
func DialService(ctx context.Context, h host.Host, key *identity.Key, via peer.AddrInfo, id identity.ID, service string, opt DialOptions) (*PeerConn, error) {
	start := time.Now()
	var t DialTiming
	server, err := hostingServer(ctx, h, via, id)
	if err != nil {
		return nil, err
	}
	t.Resolved = time.Since(start)
	c, err := Dial(ctx, h, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.StartConversation(ctx, key); err != nil {
		return nil, err
	}
	if err := c.VerifyIdentity(ctx); err != nil {
		return nil, err
	}
	// Credentials are asked for while the callee decides; a node without
	// TURN still allows direct paths through host candidates.
	type creds struct {
		tc  *TurnCredentials
		err error
	}
	credc := make(chan creds, 1)
	if !opt.DisableICE {
		go func() {
			tc, err := c.TurnCredentials(ctx)
			credc <- creds{tc, err}
		}()
	} else {
		credc <- creds{}
	}
	token, err := c.CallService(ctx, id, service)
	if err != nil {
		return nil, err
	}
	t.Accepted = time.Since(start)
	relay, err := JoinCall(ctx, h, server, token)
	if err != nil {
		return nil, err
	}
	t.Joined = time.Since(start)
	cr := <-credc
	if cr.err != nil && opt.Logger != nil {
		opt.Logger.Warn("no TURN credentials; direct paths only", "err", cr.err)
	}
	cfg := opt.config(key, id, true, callBinding(c.ServerID(), key.ID(), id, service), cr.tc)
	pc, err := connect.Open(ctx, cfg, relay)
	if err != nil {
		relay.Close()
		return nil, err
	}
	t.Secure = time.Since(start)
	if opt.Timing != nil {
		opt.Timing(t)
	}
	return pc, nil
}

// ErrNotHosted reports an identity whose hosting was cancelled or moved,
// as its signed pointer says.
var ErrNotHosted = errors.New("not hosted")

// HostingServer finds the profile server hosting identity id: via itself
// when it hosts id, otherwise the server id's signed pointer in the content
// address network names (found through via).
func HostingServer(ctx context.Context, h host.Host, via peer.AddrInfo, id identity.ID) (peer.AddrInfo, error) {
	return hostingServer(ctx, h, via, id)
}

// hostingServer finds the server hosting id, asking via.
func hostingServer(ctx context.Context, h host.Host, via peer.AddrInfo, id identity.ID) (peer.AddrInfo, error) {
	c, err := Dial(ctx, h, via)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	defer c.Close()
	// via may host id itself: no lookup needed.
	info, err := c.GetProfile(ctx, id, GetOptions{})
	if err == nil && info.Hosted || errors.Is(err, Status(wirepb.Status_UNINITIALIZED)) {
		// Hosted here (with or without a profile yet).
		return via, nil
	}
	res, err := c.Resolve(ctx, id)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	if res.State != "hosted" {
		return peer.AddrInfo{}, fmt.Errorf("%w: identity %s is not hosted anywhere now (%s)", ErrNotHosted, id.Short(), res.State)
	}
	if res.Server == c.ServerID() {
		return via, nil
	}
	var ai peer.AddrInfo
	for _, a := range res.Addrs {
		pi, err := peer.AddrInfoFromString(a)
		if err != nil {
			continue
		}
		ai.ID = pi.ID
		ai.Addrs = append(ai.Addrs, pi.Addrs...)
	}
	if ai.ID == "" {
		return peer.AddrInfo{}, fmt.Errorf("identity %s is hosted by %s, whose addresses are unknown", id.Short(), res.Server.Short())
	}
	return ai, nil
}

// Dial connects the agent's identity to the application service of
// identity id. The agent need not be online: any node it knows finds the
// callee's server.
func (a *Agent) Dial(ctx context.Context, id identity.ID, service string, opt DialOptions) (*PeerConn, error) {
	addr, err := a.serverAddr()
	if err != nil {
		return nil, err
	}
	h := a.hostOrNil()
	if h == nil {
		return nil, errors.New("agent is not running: call Run first")
	}
	if opt.Logger == nil {
		opt.Logger = a.log
	}
	return DialService(ctx, h, a.cfg.Key, addr, id, service, opt)
}

func (a *Agent) hostOrNil() host.Host {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.host
}

// maxAccepting bounds the calls an agent sets up at once.
const maxAccepting = 16

// Listener accepts connections to one application service of an agent.
type Listener struct {
	a       *Agent
	service string
	opt     DialOptions
	conns   chan *PeerConn
	done    chan struct{}
	added   bool // the service was enabled by Listen
}

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("listener closed")

// Listen enables the application service on the agent's identity and
// accepts the calls other identities make to it. Calls for services nobody
// listens to are rejected. The agent must be online.
func (a *Agent) Listen(ctx context.Context, service string, opt DialOptions) (*Listener, error) {
	l := &Listener{a: a, service: service, opt: opt, conns: make(chan *PeerConn), done: make(chan struct{})}
	a.mu.Lock()
	if a.listeners == nil {
		a.listeners = make(map[string]*Listener)
	}
	if a.listeners[service] != nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("service %q already has a listener", service)
	}
	a.listeners[service] = l
	enabled := contains(a.st.Services, service)
	a.mu.Unlock()
	if !enabled {
		if err := a.AddServices(ctx, service); err != nil {
			a.mu.Lock()
			delete(a.listeners, service)
			a.mu.Unlock()
			return nil, err
		}
		l.added = true
	}
	return l, nil
}

// Accept waits for the next connection.
func (l *Listener) Accept(ctx context.Context) (*PeerConn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Service is the application service the listener accepts.
func (l *Listener) Service() string { return l.service }

// Close stops accepting; a service that Listen enabled is disabled again.
func (l *Listener) Close() error {
	a := l.a
	a.mu.Lock()
	if a.listeners[l.service] != l {
		a.mu.Unlock()
		return nil
	}
	delete(a.listeners, l.service)
	close(l.done)
	a.mu.Unlock()
	if l.added {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.RemoveService(ctx, l.service); err != nil {
			return fmt.Errorf("disable service %q: %w", l.service, err)
		}
	}
	return nil
}

// incomingCall decides on a call offered on the check-in connection c to
// server (read loop: no blocking).
func (a *Agent) incomingCall(c *Conn, server peer.AddrInfo) func(IncomingCall) error {
	return func(ic IncomingCall) error {
		a.mu.Lock()
		l := a.listeners[ic.Service]
		busy := a.accepting >= maxAccepting
		if l != nil && !busy {
			a.accepting++
		}
		a.mu.Unlock()
		switch {
		case l == nil:
			return fmt.Errorf("%w: nobody listens to service %q", ErrRejected, ic.Service)
		case busy:
			return fmt.Errorf("%w: %d calls are being set up", ErrRejected, maxAccepting)
		}
		go func() {
			defer func() {
				a.mu.Lock()
				a.accepting--
				a.mu.Unlock()
			}()
			if err := a.answer(c, server, l, ic); err != nil {
				a.log.Warn("incoming call failed", "caller", ic.Caller.Short(), "service", ic.Service, "err", err)
			}
		}()
		return nil
	}
}

// answer joins an accepted call and hands the connection to l.
func (a *Agent) answer(c *Conn, server peer.AddrInfo, l *Listener, ic IncomingCall) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var tc *TurnCredentials
	credc := make(chan *TurnCredentials, 1)
	if !l.opt.DisableICE {
		go func() {
			tc, err := c.TurnCredentials(ctx)
			if err != nil {
				a.log.Debug("no TURN credentials; direct paths only", "err", err)
			}
			credc <- tc
		}()
	} else {
		credc <- nil
	}
	relay, err := JoinCall(ctx, a.hostOrNil(), server, ic.Token)
	if err != nil {
		return err
	}
	tc = <-credc
	opt := l.opt
	if opt.Logger == nil {
		opt.Logger = a.log
	}
	cfg := opt.config(a.cfg.Key, ic.Caller, false, callBinding(c.ServerID(), ic.Caller, a.id, ic.Service), tc)
	pc, err := connect.Open(ctx, cfg, relay)
	if err != nil {
		relay.Close()
		return err
	}
	select {
	case l.conns <- pc:
		return nil
	case <-l.done:
	case <-ctx.Done():
	}
	pc.Close()
	return errors.New("nobody accepted the connection in time")
}

// ServerAddr is the address of the agent's profile server (from its
// configuration or its stored state).
func (a *Agent) ServerAddr() (peer.AddrInfo, error) { return a.serverAddr() }
