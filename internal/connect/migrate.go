package connect

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/quic-go/quic-go"
)

const alpn = "iop-connect/1"

// hello is exchanged on the direct stream before it carries data: the
// initiator's hello commits it to the path, the responder's makes the path usable.
var hello = []byte("IOPc")

var errPeerAborted = errors.New("connect: peer gave up on the direct path")

// migrate tries to establish the direct stream and switches our writes to it.
func (c *Conn) migrate() {
	s, path, err := c.establish()
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Debug("connect: staying on the relay", "err", err)
		}
		c.dropDirect()
		c.giveUp()
		return
	}
	c.mu.Lock()
	c.stream = s
	close(c.directReady)
	c.mu.Unlock()

	// Switch our writes: SWITCH is the last frame of this direction on the relay.
	select {
	case c.wlock <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	if c.finSent || c.writeErr != nil || isClosed(c.closing) {
		<-c.wlock
		return
	}
	if err := c.sendFrame(c.ctx, frame{typ: frameSwitch}); err != nil {
		c.writeErr = fmt.Errorf("connect: send SWITCH: %w", err)
		<-c.wlock
		return
	}
	s.SetWriteDeadline(c.wdl.get())
	c.wdirect = s
	<-c.wlock
	c.setFinalPath(path)
	c.log.Debug("connect: switched writes to the direct path", "path", path, "after", time.Since(c.start))
	c.maybeCloseRelay()
}

// dropDirect frees the ICE agent and QUIC after a failed attempt.
func (c *Conn) dropDirect() {
	c.mu.Lock()
	qconn, tr, agent := c.qconn, c.transport, c.agent
	c.qconn, c.transport, c.agent = nil, nil, nil
	c.mu.Unlock()
	if qconn != nil {
		qconn.CloseWithError(0, "gave up")
	}
	if agent != nil {
		agent.Close()
	}
	if tr != nil {
		tr.Close()
	}
}

// abort tells the peer we give up, unless it told us first.
func (c *Conn) abort(err error) error {
	if !errors.Is(err, errPeerAborted) && c.ctx.Err() == nil {
		if sendErr := c.sendFrame(c.ctx, frame{typ: frameAbort}); sendErr != nil {
			c.log.Debug("connect: send ABORT", "err", sendErr)
		}
	}
	return err
}

func (c *Conn) newAgent() (*ice.Agent, error) {
	var urls []*stun.URI
	for _, srv := range c.cfg.ICEServers {
		for _, raw := range srv.URLs {
			u, err := stun.ParseURI(raw)
			if err != nil {
				return nil, fmt.Errorf("connect: ICE server URL %q: %w", raw, err)
			}
			if u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS {
				u.Username, u.Password = srv.Username, srv.Credential
			}
			urls = append(urls, u)
		}
	}
	opts := []ice.AgentOption{
		ice.WithUrls(urls),
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4}),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithLoggerFactory(pionLogger{c.log}),
	}
	if c.cfg.RelayOnly {
		// pion keeps the 2 s relay acceptance wait with the options API; with
		// relay candidates only there is nothing better to wait for.
		opts = append(opts, ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeRelay}),
			ice.WithRelayAcceptanceMinWait(0))
	} else {
		// pion's default waits before a pair may be nominated (srflx 0.5 s,
		// prflx 1 s, relay 2 s) exist to let better pairs turn up. Our
		// stream is already flowing on the relay, so waiting only delays
		// the move; the order of preference is kept (direct pairs may win
		// from prflxAcceptanceWait on, TURN pairs only from
		// relayAcceptanceWait), and natbench measures the effect.
		opts = append(opts, ice.WithCandidateTypes([]ice.CandidateType{
			ice.CandidateTypeHost, ice.CandidateTypeServerReflexive, ice.CandidateTypeRelay}),
			ice.WithSrflxAcceptanceMinWait(srflxAcceptanceWait),
			ice.WithPrflxAcceptanceMinWait(prflxAcceptanceWait),
			ice.WithRelayAcceptanceMinWait(relayAcceptanceWait))
	}
	if c.cfg.IncludeLoopback {
		opts = append(opts, ice.WithIncludeLoopback())
	}
	if c.cfg.IPFilter != nil {
		opts = append(opts, ice.WithIPFilter(c.cfg.IPFilter))
	}
	a, err := ice.NewAgentWithOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("connect: create ICE agent: %w", err)
	}
	return a, nil
}

type iceResult struct {
	conn *ice.Conn
	err  error
}

type quicResult struct {
	stream *quic.Stream
	err    error
}

// attempt decides, once, between committing to the direct path (sending our
// hello) and giving it up (sending ABORT).
type attempt struct {
	mu        sync.Mutex // guards the fields below
	decided   bool
	committed bool
}

// commit reports whether this side may send its hello.
func (a *attempt) commit() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.decided {
		a.decided, a.committed = true, true
	}
	return a.committed
}

// abort reports whether this side may give up.
func (a *attempt) abort() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.decided {
		a.decided = true
	}
	return !a.committed
}

// establish runs ICE and QUIC and returns the direct stream and its path name.
func (c *Conn) establish() (*quic.Stream, string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.ICETimeout)
	defer cancel()

	cert, fp, err := newCertificate()
	if err != nil {
		return nil, "", c.abort(err)
	}
	agent, err := c.newAgent()
	if err != nil {
		return nil, "", c.abort(err)
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		agent.Close()
		return nil, "", c.ctx.Err()
	}
	c.agent = agent
	c.mu.Unlock()

	local := make(chan ice.Candidate, 64)
	gatherDone := make(chan struct{})
	var gatherOnce sync.Once
	if err := agent.OnCandidate(func(cand ice.Candidate) {
		if cand == nil {
			gatherOnce.Do(func() { close(gatherDone) })
			return
		}
		select {
		case local <- cand:
		default: // more candidates than anyone needs
		}
	}); err != nil {
		return nil, "", c.abort(fmt.Errorf("connect: ICE: %w", err))
	}
	ufrag, pwd, err := agent.GetLocalUserCredentials()
	if err != nil {
		return nil, "", c.abort(fmt.Errorf("connect: ICE credentials: %w", err))
	}
	if err := c.sendFrame(ctx, frame{typ: frameOffer, ufrag: ufrag, pwd: pwd, fingerprint: fp}); err != nil {
		return nil, "", err
	}
	if err := agent.GatherCandidates(); err != nil {
		return nil, "", c.abort(fmt.Errorf("connect: ICE gather: %w", err))
	}

	var (
		peerFP    [sha256.Size]byte
		haveOffer bool
		iceDone   = make(chan iceResult, 1)
		quicDone  = make(chan quicResult, 1)
		att       = &attempt{}
	)
	qctx, qcancel := context.WithCancel(c.ctx)
	defer qcancel()
	iceCtx := ctx
	for {
		select {
		case cand := <-local:
			if err := c.sendFrame(ctx, frame{typ: frameCandidate, data: []byte(cand.Marshal())}); err != nil {
				return nil, "", c.abort(err)
			}
		case <-gatherDone:
			gatherDone = nil
			// Trickle the candidates still queued, then end them.
			for len(local) > 0 {
				if err := c.sendFrame(ctx, frame{typ: frameCandidate, data: []byte((<-local).Marshal())}); err != nil {
					return nil, "", c.abort(err)
				}
			}
			if err := c.sendFrame(ctx, frame{typ: frameEndOfCandidates}); err != nil {
				return nil, "", c.abort(err)
			}
		case f := <-c.ctrl:
			switch f.typ {
			case frameOffer:
				if haveOffer {
					return nil, "", c.abort(errors.New("connect: second OFFER from the peer"))
				}
				haveOffer, peerFP = true, f.fingerprint
				var conn *ice.Conn
				if c.cfg.Initiator {
					conn, err = agent.StartDial(f.ufrag, f.pwd)
				} else {
					conn, err = agent.StartAccept(f.ufrag, f.pwd)
				}
				if err != nil {
					return nil, "", c.abort(fmt.Errorf("connect: ICE start: %w", err))
				}
				c.wg.Go(func() {
					iceDone <- iceResult{conn: conn, err: agent.AwaitConnect(iceCtx)}
				})
			case frameCandidate:
				cand, err := ice.UnmarshalCandidate(string(f.data))
				if err != nil {
					c.log.Debug("connect: bad remote candidate", "err", err)
					continue
				}
				if err := agent.AddRemoteCandidate(cand); err != nil {
					c.log.Debug("connect: add remote candidate", "err", err)
				}
			case frameEndOfCandidates:
			case frameAbort:
				// Also after the initiator committed: the responder sends ABORT
				// only before its hello, so nothing was switched.
				return nil, "", errPeerAborted
			}
		case r := <-iceDone:
			if r.err != nil {
				return nil, "", c.abort(fmt.Errorf("connect: ICE connect: %w", r.err))
			}
			pair, err := agent.GetSelectedCandidatePair()
			if err != nil || pair == nil {
				return nil, "", c.abort(fmt.Errorf("connect: ICE selected pair: %v", err))
			}
			c.log.Debug("connect: ICE connected", "local", pair.Local.Type().String(), "remote", pair.Remote.Type().String(), "after", time.Since(c.start))
			c.wg.Go(func() {
				s, err := c.secure(qctx, iceCtx, r.conn, cert, peerFP, att)
				quicDone <- quicResult{stream: s, err: err}
			})
		case r := <-quicDone:
			if r.err != nil {
				if att.abort() {
					return nil, "", c.abort(r.err)
				}
				// Committed: if the peer switched, its SWITCH fails our reader;
				// ABORT would help neither side.
				return nil, "", r.err
			}
			path := PathDirect
			if pair, err := agent.GetSelectedCandidatePair(); err == nil && pair != nil &&
				(pair.Local.Type() == ice.CandidateTypeRelay || pair.Remote.Type() == ice.CandidateTypeRelay) {
				path = PathTURN
			}
			return r.stream, path, nil
		case <-ctx.Done():
			if c.ctx.Err() == nil && !att.abort() {
				// After its hello a side waits for the QUIC result (the peer's
				// hello, ABORT or the QUIC idle timeout), not for the ICE timeout.
				ctx = c.ctx
				continue
			}
			if c.ctx.Err() != nil {
				return nil, "", c.ctx.Err()
			}
			return nil, "", c.abort(fmt.Errorf("connect: no direct path within %v", c.cfg.ICETimeout))
		}
	}
}

// secure runs QUIC over the ICE connection and the hello exchange. ctx ends
// the attempt; limit is the ICE deadline, which binds until this side commits.
func (c *Conn) secure(ctx, limit context.Context, ic *ice.Conn, cert tls.Certificate, peerFP [sha256.Size]byte, att *attempt) (*quic.Stream, error) {
	pc := &icePacketConn{conn: ic}
	tr := &quic.Transport{Conn: pc}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return nil, c.ctx.Err()
	}
	c.transport = tr
	c.mu.Unlock()

	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("connect: QUIC peer sent no certificate")
		}
		if got := sha256.Sum256(raw[0]); !bytes.Equal(got[:], peerFP[:]) {
			return errors.New("connect: QUIC peer certificate does not match the fingerprint sent over the secure channel")
		}
		return nil
	}
	tlsConf := &tls.Config{
		Certificates:          []tls.Certificate{cert},
		MinVersion:            tls.VersionTLS13,
		NextProtos:            []string{alpn},
		InsecureSkipVerify:    true, // verify checks the exact certificate instead
		VerifyPeerCertificate: verify,
		ClientAuth:            tls.RequireAnyClientCert,
		ServerName:            "iop-connect",
	}
	qconf := &quic.Config{
		HandshakeIdleTimeout:    c.cfg.ICETimeout,
		MaxIdleTimeout:          c.cfg.IdleTimeout,
		KeepAlivePeriod:         c.cfg.IdleTimeout / 3,
		DisablePathMTUDiscovery: true,
		MaxIncomingStreams:      1,
		MaxIncomingUniStreams:   -1,
	}
	hctx, hcancel := mergeContexts(ctx, limit)
	defer hcancel()
	var (
		qconn *quic.Conn
		s     *quic.Stream
		err   error
	)
	if c.cfg.Initiator {
		qconn, err = tr.Dial(hctx, pc.RemoteAddr(), tlsConf, qconf)
		if err != nil {
			return nil, fmt.Errorf("connect: QUIC dial: %w", err)
		}
		c.setQUIC(qconn)
		if s, err = qconn.OpenStreamSync(hctx); err != nil {
			return nil, fmt.Errorf("connect: QUIC open stream: %w", err)
		}
		if hctx.Err() != nil {
			return nil, fmt.Errorf("connect: QUIC: %w", hctx.Err())
		}
		if !att.commit() {
			return nil, errors.New("connect: QUIC: attempt already given up")
		}
		if _, err := s.Write(hello); err != nil {
			return nil, fmt.Errorf("connect: QUIC hello: %w", err)
		}
		if err := readHello(ctx, s); err != nil {
			return nil, err
		}
		return s, nil
	}
	ln, err := tr.Listen(tlsConf, qconf)
	if err != nil {
		return nil, fmt.Errorf("connect: QUIC listen: %w", err)
	}
	defer ln.Close()
	if qconn, err = ln.Accept(hctx); err != nil {
		return nil, fmt.Errorf("connect: QUIC accept: %w", err)
	}
	c.setQUIC(qconn)
	if s, err = qconn.AcceptStream(hctx); err != nil {
		return nil, fmt.Errorf("connect: QUIC accept stream: %w", err)
	}
	if err := readHello(hctx, s); err != nil {
		return nil, err
	}
	if !att.commit() {
		return nil, errors.New("connect: QUIC: attempt already given up")
	}
	if _, err := s.Write(hello); err != nil {
		return nil, fmt.Errorf("connect: QUIC hello: %w", err)
	}
	return s, nil
}

func (c *Conn) setQUIC(q *quic.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		q.CloseWithError(0, "closed")
		return
	}
	c.qconn = q
}

// readHello reads the peer's hello, giving up when ctx ends.
func readHello(ctx context.Context, s *quic.Stream) error {
	stop := context.AfterFunc(ctx, func() { s.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, len(hello))
	if _, err := io.ReadFull(s, buf); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("connect: QUIC hello: %w", ctx.Err())
		}
		return fmt.Errorf("connect: QUIC hello: %w", err)
	}
	if !bytes.Equal(buf, hello) {
		return errors.New("connect: QUIC hello: wrong bytes")
	}
	s.SetReadDeadline(time.Time{})
	return nil
}

// mergeContexts returns a context that ends when either a or b ends.
func mergeContexts(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// newCertificate makes a fresh self-signed Ed25519 certificate and its SHA-256 fingerprint.
func newCertificate() (tls.Certificate, [sha256.Size]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, [sha256.Size]byte{}, fmt.Errorf("connect: generate certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, [sha256.Size]byte{}, fmt.Errorf("connect: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, [sha256.Size]byte{}, fmt.Errorf("connect: create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, sha256.Sum256(der), nil
}

// Nomination waits of the ICE agent (see newAgent).
const (
	srflxAcceptanceWait = 200 * time.Millisecond
	prflxAcceptanceWait = 200 * time.Millisecond
	relayAcceptanceWait = 1000 * time.Millisecond
)

// iceAddr is the single remote address QUIC sees on an ICE connection.
type iceAddr struct{}

func (iceAddr) Network() string { return "ice" }
func (iceAddr) String() string  { return "ice-peer" }

// icePacketConn adapts an ICE connection to the net.PacketConn QUIC needs.
type icePacketConn struct{ conn *ice.Conn }

func (p *icePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := p.conn.Read(b)
	return n, iceAddr{}, err
}

func (p *icePacketConn) WriteTo(b []byte, _ net.Addr) (int, error) { return p.conn.Write(b) }
func (p *icePacketConn) Close() error                              { return p.conn.Close() }
func (p *icePacketConn) LocalAddr() net.Addr                       { return iceAddr{} }
func (p *icePacketConn) RemoteAddr() net.Addr                      { return iceAddr{} }
func (p *icePacketConn) SetDeadline(t time.Time) error             { return p.conn.SetDeadline(t) }
func (p *icePacketConn) SetReadDeadline(t time.Time) error         { return p.conn.SetReadDeadline(t) }
func (p *icePacketConn) SetWriteDeadline(t time.Time) error        { return p.conn.SetWriteDeadline(t) }

// SetReadBuffer and SetWriteBuffer accept quic-go's buffer tuning: the
// sockets belong to the ICE agent, so there is nothing to set (and quic-go
// would otherwise log a warning).
func (p *icePacketConn) SetReadBuffer(int) error  { return nil }
func (p *icePacketConn) SetWriteBuffer(int) error { return nil }
