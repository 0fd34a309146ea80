package turnserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/pion/turn/v5"
)

// Defaults of [Config].
const (
	DefaultRealm                     = "iop"
	DefaultCredentialTTL             = 10 * time.Minute
	DefaultMaxAllocationsPerIdentity = 4
)

// Config configures a [Server]. Zero fields take the defaults noted.
type Config struct {
	// ListenUDP is the UDP address of the STUN/TURN listener, for example
	// "0.0.0.0:3478" or "127.0.0.1:0".
	ListenUDP string
	// RelayIP is the address relayed ports are bound on and advertised as
	// XOR-RELAYED-ADDRESS. Default: the IP of ListenUDP, which must then be
	// specified (not 0.0.0.0 or ::).
	RelayIP net.IP
	// Realm is the long-term credential realm. Default "iop".
	Realm string
	// Secret is this node's HMAC key for credentials. Required, at least 16
	// bytes.
	Secret []byte
	// CredentialTTL is how long granted credentials stay valid. Default 10
	// minutes.
	CredentialTTL time.Duration
	// MaxAllocationsPerIdentity caps the live allocations of one identity.
	// Default 4; negative means no limit.
	MaxAllocationsPerIdentity int
	// MaxBytesPerAllocation caps the bytes one allocation relays, both
	// directions together. Zero means no limit.
	MaxBytesPerAllocation int64
	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
}

// minSecret is the shortest Secret accepted.
const minSecret = 16

// Validate reports whether c, with defaults applied, can start a server.
func (c *Config) Validate() error {
	d := c.withDefaults()
	if d.ListenUDP == "" {
		return errors.New("turnserver: ListenUDP is empty")
	}
	if _, _, err := net.SplitHostPort(d.ListenUDP); err != nil {
		return fmt.Errorf("turnserver: ListenUDP %q: %w", d.ListenUDP, err)
	}
	if len(d.Secret) < minSecret {
		return fmt.Errorf("turnserver: Secret has %d bytes, want at least %d", len(d.Secret), minSecret)
	}
	if d.CredentialTTL < 0 {
		return fmt.Errorf("turnserver: CredentialTTL %v is negative", d.CredentialTTL)
	}
	if d.MaxBytesPerAllocation < 0 {
		return fmt.Errorf("turnserver: MaxBytesPerAllocation %d is negative", d.MaxBytesPerAllocation)
	}
	if d.RelayIP != nil && d.RelayIP.IsUnspecified() {
		return fmt.Errorf("turnserver: RelayIP %v is unspecified", d.RelayIP)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.CredentialTTL == 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	if c.MaxAllocationsPerIdentity == 0 {
		c.MaxAllocationsPerIdentity = DefaultMaxAllocationsPerIdentity
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Server is a running STUN/TURN server. It serves from [New] until
// [Server.Close].
type Server struct {
	cfg  Config
	conn *net.UDPConn
	turn *turn.Server
	log  *slog.Logger
	now  func() time.Time // time.Now; replaced in tests

	mu     sync.Mutex              // guards the fields below
	allocs map[string]int          // identity ID hex -> live allocations
	relays map[*relayConn]struct{} // open relayed sockets
	closed bool
}

// New listens on cfg.ListenUDP and starts serving.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Secret = append([]byte(nil), cfg.Secret...)

	laddr, err := net.ResolveUDPAddr("udp", cfg.ListenUDP)
	if err != nil {
		return nil, fmt.Errorf("turnserver: resolve %q: %w", cfg.ListenUDP, err)
	}
	relayIP := cfg.RelayIP
	if relayIP == nil {
		if laddr.IP == nil || laddr.IP.IsUnspecified() {
			return nil, fmt.Errorf("turnserver: ListenUDP %q has no specific IP; set RelayIP", cfg.ListenUDP)
		}
		relayIP = laddr.IP
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("turnserver: listen: %w", err)
	}
	// Absorb bursts, as coturn does; the kernel caps the sizes at
	// net.core.rmem_max / wmem_max, and a failure only leaves the default.
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)

	s := &Server{
		cfg:    cfg,
		conn:   conn,
		log:    cfg.Logger,
		now:    time.Now,
		allocs: make(map[string]int),
		relays: make(map[*relayConn]struct{}),
	}
	ts, err := turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.quota,
		LoggerFactory: slogFactory{log: cfg.Logger.With("component", "pion-turn")},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: s.allocationCreated,
			OnAllocationDeleted: s.allocationDeleted,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:        newListenConn(conn, s.longTermKey),
			PermissionHandler: permitPeer(relayIP),
			RelayAddressGenerator: &relayGenerator{
				static: turn.RelayAddressGeneratorStatic{
					RelayAddress: relayIP,
					Address:      relayIP.String(),
				},
				srv: s,
			},
		}},
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("turnserver: start: %w", err)
	}
	s.turn = ts
	s.log.Info("turn server listening", "addr", conn.LocalAddr(), "relay_ip", relayIP, "realm", cfg.Realm)
	return s, nil
}

// Addr returns the address of the UDP listener.
func (s *Server) Addr() *net.UDPAddr {
	return s.conn.LocalAddr().(*net.UDPAddr)
}

// Realm returns the realm clients must use.
func (s *Server) Realm() string { return s.cfg.Realm }

// Close stops the server: it closes the listener and every relayed socket
// before returning. pion's own goroutines exit as their sockets fail.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	relays := make([]*relayConn, 0, len(s.relays))
	for rc := range s.relays {
		relays = append(relays, rc)
	}
	s.mu.Unlock()

	// pion's Close only closes the listener; its read loop then closes the
	// allocations in the background. Close the relayed sockets here so none
	// outlives Close.
	err := s.turn.Close()
	for _, rc := range relays {
		rc.Close()
	}
	if err != nil {
		return fmt.Errorf("turnserver: close: %w", err)
	}
	return nil
}

// Allocations returns the number of live allocations of id.
func (s *Server) Allocations(id identity.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocs[id.String()]
}

// authenticate is pion's AuthHandler: it returns the identity ID as the
// user ID (so quotas are per identity) and the long-term key of the
// username's expected password.
func (s *Server) authenticate(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	id, _, err := ParseUsername(ra.Username, s.now())
	if err != nil {
		s.log.Debug("turn auth refused", "src", ra.SrcAddr, "method", ra.Method, "err", err)
		return "", nil, false
	}
	pw := password(s.cfg.Secret, ra.Username)
	return id.String(), turn.GenerateAuthKey(ra.Username, s.cfg.Realm, pw), true
}

// quota is pion's QuotaHandler, called before an allocation is made. pion
// handles the requests of one listener one at a time, so the check and the
// OnAllocationCreated that follows cannot interleave with another Allocate.
func (s *Server) quota(userID, _ string, src net.Addr) bool {
	if s.cfg.MaxAllocationsPerIdentity < 0 {
		return true
	}
	s.mu.Lock()
	n := s.allocs[userID]
	s.mu.Unlock()
	if n >= s.cfg.MaxAllocationsPerIdentity {
		s.log.Info("turn allocation quota reached", "id", userID, "src", src, "live", n)
		return false
	}
	return true
}

func (s *Server) allocationCreated(src, _ net.Addr, _, userID, _ string, relay net.Addr, _ int) {
	s.mu.Lock()
	s.allocs[userID]++
	n := s.allocs[userID]
	s.mu.Unlock()
	s.log.Debug("turn allocation created", "id", userID, "src", src, "relay", relay, "live", n)
}

func (s *Server) allocationDeleted(src, _ net.Addr, _, userID, _ string) {
	s.mu.Lock()
	if s.allocs[userID] <= 1 {
		delete(s.allocs, userID)
	} else {
		s.allocs[userID]--
	}
	s.mu.Unlock()
	s.log.Debug("turn allocation deleted", "id", userID, "src", src)
}

// relayGenerator binds relayed UDP ports like turn.RelayAddressGeneratorStatic,
// wraps each in a relayConn the server tracks, and refuses TCP allocations.
type relayGenerator struct {
	static turn.RelayAddressGeneratorStatic
	srv    *Server
}

var (
	errNoTCPRelay = errors.New("turnserver: tcp relay not supported")
	errClosed     = errors.New("turnserver: server closed")
)

func (g *relayGenerator) Validate() error { return g.static.Validate() }

func (g *relayGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.static.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	rc := &relayConn{PacketConn: conn, srv: g.srv, capped: g.srv.cfg.MaxBytesPerAllocation > 0}
	if udp, ok := conn.(*net.UDPConn); ok {
		_ = udp.SetReadBuffer(relaySocketBuffer)
		rc.batch = newBatchReader(udp, relayBatch)
	}
	rc.left.Store(g.srv.cfg.MaxBytesPerAllocation)
	if !g.srv.addRelay(rc) {
		conn.Close()
		return nil, nil, errClosed
	}
	return rc, addr, nil
}

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCPRelay
}

// addRelay tracks rc until it closes; it reports false once the server is
// closed.
func (s *Server) addRelay(rc *relayConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.relays[rc] = struct{}{}
	return true
}

// relayConn is a relayed socket. When capped, it has a byte budget shared
// by both directions and drops datagrams that do not fit. Inbound datagrams
// are charged before pion checks permissions, so traffic from peers without a
// permission counts too.
type relayConn struct {
	net.PacketConn
	batch  *batchReader // reads PacketConn in batches, when it is a *net.UDPConn
	srv    *Server
	capped bool
	left   atomic.Int64
	once   sync.Once
}

// take reports whether n more bytes fit in the budget, and spends them if so.
func (c *relayConn) take(n int) bool {
	if !c.capped {
		return true
	}
	for {
		left := c.left.Load()
		if int64(n) > left {
			return false
		}
		if c.left.CompareAndSwap(left, left-int64(n)) {
			return true
		}
	}
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.take(len(p)) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		var (
			n    int
			addr net.Addr
			err  error
		)
		if c.batch != nil {
			n, addr, err = c.batch.read(p)
		} else {
			n, addr, err = c.PacketConn.ReadFrom(p)
		}
		if err != nil || c.take(n) {
			return n, addr, err
		}
	}
}

// Close closes the socket once; later calls return nil, so that pion's
// allocation manager and Server.Close may both close it.
func (c *relayConn) Close() error {
	err := error(nil)
	c.once.Do(func() {
		err = c.PacketConn.Close()
		c.srv.mu.Lock()
		delete(c.srv.relays, c)
		c.srv.mu.Unlock()
	})
	return err
}

// permitPeer is the relay's peer-address filter: a relay on a public
// address refuses to send to loopback, private, link-local, multicast and
// unspecified addresses, so it cannot be used to reach the node's own
// network; a relay on loopback or a private network (a devnet, a test
// lab) may reach its own kind.
func permitPeer(relay net.IP) turn.PermissionHandler {
	return func(_ net.Addr, peer net.IP) bool {
		switch {
		case peer == nil, peer.IsUnspecified(), peer.IsMulticast(), peer.IsLinkLocalUnicast(), peer.IsLinkLocalMulticast():
			return false
		case peer.IsLoopback():
			return relay.IsLoopback()
		case peer.IsPrivate():
			return relay.IsPrivate() || relay.IsLoopback()
		}
		return true
	}
}
