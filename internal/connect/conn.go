package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/flynn/noise"
	"github.com/pion/ice/v4"
	"github.com/quic-go/quic-go"

	"github.com/iop-go/iop/identity"
)

// Path names returned by Conn.Path.
const (
	PathRelay  = "relay:profile-server"
	PathDirect = "direct"
	PathTURN   = "turn"
)

// ErrPeerClosed is returned by Write after the peer closed the connection.
var ErrPeerClosed = errors.New("connect: peer closed the connection")

// closeLinger bounds how long Close waits for the peer to answer its FIN.
const closeLinger = 3 * time.Second

// inboundQueue is the number of received chunks buffered ahead of Read.
const inboundQueue = 64

// Addr names an identity as a net.Addr.
type Addr struct{ ID identity.ID }

// Network returns "iop".
func (Addr) Network() string { return "iop" }

// String returns the identity in hexadecimal.
func (a Addr) String() string { return a.ID.String() }

// Timing tells how long the phases of a connection took, measured from the start of Open.
type Timing struct {
	// Handshake is when the secure channel over the relay was ready.
	Handshake time.Duration
	// FinalPath is when the final path was known (migrated or given up); zero until then.
	FinalPath time.Duration
}

// inbound is one item of the receive queue: data or the end of the stream.
type inbound struct {
	data []byte
	err  error // io.EOF after the peer's FIN, or why the connection failed
}

// Conn is an authenticated, encrypted, reliable and ordered byte stream to
// one peer. It implements net.Conn and is safe for concurrent use.
type Conn struct {
	cfg    Config
	log    *slog.Logger
	relay  Relay
	peerID identity.ID
	start  time.Time
	hsDur  time.Duration

	ctx    context.Context // ends at teardown: stops every goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closing   chan struct{} // closed by Close
	closeOnce sync.Once

	sendLock   chan struct{} // held while encrypting and sending on the relay: guards enc and the nonce order
	enc        *noise.CipherState
	dec        *noise.CipherState // used only by the relay reader
	relayChunk int                // largest DATA payload in one relay message

	wlock    chan struct{} // the write lock, held by Write, the switch and Close
	wdirect  *quic.Stream  // guarded by wlock: nil while writes go to the relay
	finSent  bool          // guarded by wlock
	writeErr error         // guarded by wlock: sticky

	rlock  chan struct{} // the read lock
	rbuf   []byte        // guarded by rlock: rest of the current chunk
	rerr   error         // guarded by rlock: sticky
	in     chan inbound
	rdl    *deadline
	wdl    *deadline
	ctrl   chan frame    // control frames from the relay reader to the migration
	peerIn chan struct{} // closed when the peer's stream ended (FIN or failure)

	directReady  chan struct{} // closed when the direct stream is usable
	directFailed chan struct{} // closed when the migration gave up
	pathKnown    chan struct{} // closed when the final path is known

	mu          sync.Mutex // guards the fields below
	path        string
	pathDur     time.Duration
	stream      *quic.Stream
	qconn       *quic.Conn
	transport   *quic.Transport
	agent       *ice.Agent
	switchRecv  bool
	switchAcked bool
	relayClosed bool
	peerInOnce  bool
}

// Open runs the handshake over relay and returns the connection once the
// peer has proved its identity. The connection is usable at once over the
// relay; unless cfg.DisableICE, it migrates to a direct or TURN path in the
// background. ctx bounds the handshake only. On failure the relay is closed.
func Open(ctx context.Context, cfg Config, relay Relay) (*Conn, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if relay.MaxMessage() < 1024 {
		relay.Close()
		return nil, fmt.Errorf("connect: relay message limit %d is below 1 KiB", relay.MaxMessage())
	}
	sess, err := handshake(ctx, cfg, relay)
	if err != nil {
		relay.Close()
		return nil, err
	}
	c := &Conn{
		cfg:          cfg,
		log:          cfg.Logger.With("peer", cfg.Peer.Short()),
		relay:        relay,
		peerID:       cfg.Peer,
		start:        start,
		hsDur:        time.Since(start),
		closing:      make(chan struct{}),
		enc:          sess.enc,
		dec:          sess.dec,
		relayChunk:   min(relay.MaxMessage(), 65535) - 16 - 1,
		wlock:        make(chan struct{}, 1),
		sendLock:     make(chan struct{}, 1),
		rlock:        make(chan struct{}, 1),
		in:           make(chan inbound, inboundQueue),
		rdl:          newDeadline(),
		wdl:          newDeadline(),
		ctrl:         make(chan frame, 128),
		peerIn:       make(chan struct{}),
		directReady:  make(chan struct{}),
		directFailed: make(chan struct{}),
		pathKnown:    make(chan struct{}),
		path:         PathRelay,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.log.Debug("connect: handshake done", "initiator", cfg.Initiator, "took", c.hsDur)
	c.wg.Go(c.readRelay)
	if cfg.DisableICE {
		c.giveUp()
		// Spare a peer that tries ICE the wait for our OFFER.
		c.wg.Go(func() {
			if err := c.sendFrame(c.ctx, frame{typ: frameAbort}); err != nil {
				c.log.Debug("connect: send ABORT", "err", err)
			}
		})
	} else {
		c.wg.Go(c.migrate)
	}
	return c, nil
}

// PeerID returns the peer's proven identity.
func (c *Conn) PeerID() identity.ID { return c.peerID }

// LocalAddr returns this side's identity.
func (c *Conn) LocalAddr() net.Addr { return Addr{ID: c.cfg.Key.ID()} }

// RemoteAddr returns the peer's identity.
func (c *Conn) RemoteAddr() net.Addr { return Addr{ID: c.peerID} }

// Path returns the path this side writes on: PathRelay, PathDirect or PathTURN.
func (c *Conn) Path() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.path
}

// WaitPath waits until the final path is known — migrated, or the attempt
// given up — and returns it.
func (c *Conn) WaitPath(ctx context.Context) (string, error) {
	select {
	case <-c.pathKnown:
		return c.Path(), nil
	case <-ctx.Done():
		return c.Path(), ctx.Err()
	}
}

// Timing returns how long the handshake and the migration took.
func (c *Conn) Timing() Timing {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Timing{Handshake: c.hsDur, FinalPath: c.pathDur}
}

// setFinalPath records the final path once.
func (c *Conn) setFinalPath(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if isClosed(c.pathKnown) {
		return
	}
	c.path = path
	c.pathDur = time.Since(c.start)
	close(c.pathKnown)
}

// giveUp ends the migration attempt: the connection stays on the relay.
func (c *Conn) giveUp() {
	c.mu.Lock()
	if !isClosed(c.directFailed) && !isClosed(c.directReady) {
		close(c.directFailed)
	}
	c.mu.Unlock()
	c.setFinalPath(PathRelay)
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for pending and future Reads.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	c.mu.Lock()
	s := c.stream
	c.mu.Unlock()
	if s != nil {
		s.SetWriteDeadline(t)
	}
	return nil
}

// Read reads data sent by the peer. It returns io.EOF after the peer's
// Close and all data before it.
func (c *Conn) Read(p []byte) (int, error) {
	select {
	case c.rlock <- struct{}{}:
	case <-c.closing:
		return 0, net.ErrClosed
	case <-c.rdl.wait():
		return 0, os.ErrDeadlineExceeded
	}
	defer func() { <-c.rlock }()
	if isClosed(c.closing) {
		return 0, net.ErrClosed
	}
	for len(c.rbuf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if isClosed(c.rdl.wait()) {
			return 0, os.ErrDeadlineExceeded
		}
		select {
		case it := <-c.in:
			c.rbuf, c.rerr = it.data, it.err
		case <-c.closing:
			return 0, net.ErrClosed
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// Write writes p to the peer, over the relay in chunks or over the direct stream.
func (c *Conn) Write(p []byte) (int, error) {
	select {
	case c.wlock <- struct{}{}:
	case <-c.closing:
		return 0, net.ErrClosed
	case <-c.wdl.wait():
		return 0, os.ErrDeadlineExceeded
	}
	defer func() { <-c.wlock }()
	switch {
	case isClosed(c.closing):
		return 0, net.ErrClosed
	case c.writeErr != nil:
		return 0, c.writeErr
	case c.finSent:
		return 0, ErrPeerClosed
	case isClosed(c.wdl.wait()):
		return 0, os.ErrDeadlineExceeded
	}
	n := 0
	if c.wdirect == nil && len(p) > 0 {
		ctx, stop := c.writeContext()
		defer stop()
		for n < len(p) && c.wdirect == nil {
			chunk := p[n:min(len(p), n+c.relayChunk)]
			if err := c.sendFrame(ctx, frame{typ: frameData, data: chunk}); err != nil {
				return n, c.writeFailed(err)
			}
			n += len(chunk)
		}
	}
	if n < len(p) {
		m, err := c.wdirect.Write(p[n:])
		n += m
		if err != nil {
			return n, c.writeFailed(err)
		}
	}
	return n, nil
}

// writeContext returns a context that ends with the write deadline or Close.
func (c *Conn) writeContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(c.ctx)
	dl := c.wdl.wait()
	go func() {
		select {
		case <-dl:
		case <-c.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}

// writeFailed maps a write error; errors other than deadlines stick. Called with wlock held.
func (c *Conn) writeFailed(err error) error {
	switch {
	case isClosed(c.closing):
		return net.ErrClosed
	case isClosed(c.wdl.wait()) || errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	case isClosed(c.peerIn) && !errors.Is(err, io.EOF):
		err = fmt.Errorf("%w: %w", ErrPeerClosed, err)
	}
	c.writeErr = fmt.Errorf("connect: write: %w", err)
	return c.writeErr
}

// sendFrame encrypts f and sends it on the relay.
func (c *Conn) sendFrame(ctx context.Context, f frame) error {
	select {
	case c.sendLock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("connect: relay send: %w", ctx.Err())
	}
	defer func() { <-c.sendLock }()
	msg, err := c.enc.Encrypt(nil, nil, appendFrame(nil, f))
	if err != nil {
		return fmt.Errorf("connect: encrypt frame: %w", err)
	}
	if err := c.relay.Send(ctx, msg); err != nil {
		return fmt.Errorf("connect: relay send: %w", err)
	}
	return nil
}

// deliver queues an item for Read; after Close it is dropped.
func (c *Conn) deliver(it inbound) bool {
	select {
	case c.in <- it:
		return true
	case <-c.closing:
		return false
	case <-c.ctx.Done():
		return false
	}
}

// endInbound delivers the end of the peer's stream: io.EOF on FIN, else err.
func (c *Conn) endInbound(err error) {
	c.mu.Lock()
	if c.peerInOnce {
		c.mu.Unlock()
		return
	}
	c.peerInOnce = true
	close(c.peerIn)
	c.mu.Unlock()
	if err == io.EOF {
		c.log.Debug("connect: peer sent FIN")
		c.wg.Go(c.answerFin)
	} else {
		c.log.Debug("connect: peer stream failed", "err", err)
	}
	c.deliver(inbound{err: err})
}

// answerFin sends our FIN once the peer's arrived (the connection is closed as a whole).
func (c *Conn) answerFin() {
	select {
	case c.wlock <- struct{}{}:
	case <-c.ctx.Done():
		return
	case <-c.closing:
		return // Close sends the FIN
	}
	defer func() { <-c.wlock }()
	c.sendFinLocked(c.ctx)
}

// sendFinLocked ends our direction on the current path. Called with wlock held.
func (c *Conn) sendFinLocked(ctx context.Context) {
	if c.finSent {
		return
	}
	c.finSent = true
	if c.wdirect != nil {
		c.wdirect.Close()
		return
	}
	if err := c.sendFrame(ctx, frame{typ: frameFin}); err != nil {
		c.log.Debug("connect: send FIN", "err", err)
	}
}

// readRelay reads frames from the relay until the peer switched and the relay is closed.
func (c *Conn) readRelay() {
	for {
		msg, err := c.relay.Recv(c.ctx)
		c.mu.Lock()
		switched := c.switchRecv
		c.mu.Unlock()
		if err != nil {
			if !switched && c.ctx.Err() == nil {
				if err == io.EOF {
					err = fmt.Errorf("connect: relay closed before the peer's FIN: %w", io.ErrUnexpectedEOF)
				} else {
					err = fmt.Errorf("connect: relay receive: %w", err)
				}
				c.endInbound(err)
			}
			return
		}
		plain, err := c.dec.Decrypt(nil, nil, msg)
		if err != nil {
			c.protocolError(fmt.Errorf("connect: decrypt relay message: %w", err))
			return
		}
		f, err := decodeFrame(plain)
		if err != nil {
			c.protocolError(err)
			return
		}
		if switched && (f.typ == frameData || f.typ == frameFin || f.typ == frameSwitch) {
			c.protocolError(fmt.Errorf("connect: frame type %d on the relay after SWITCH", f.typ))
			return
		}
		switch f.typ {
		case frameData:
			if !c.deliver(inbound{data: f.data}) && c.ctx.Err() != nil {
				return
			}
		case frameFin:
			c.endInbound(io.EOF)
		case frameReject:
			c.endInbound(fmt.Errorf("connect: peer rejected the connection: %q", f.data))
			return
		case frameSwitch:
			c.mu.Lock()
			c.switchRecv = true
			c.mu.Unlock()
			c.log.Debug("connect: peer switched to the direct path")
			c.wg.Go(c.followSwitch)
			c.wg.Go(func() {
				if err := c.sendFrame(c.ctx, frame{typ: frameSwitchAck}); err != nil {
					c.log.Debug("connect: send SWITCH-ACK", "err", err)
				}
				c.maybeCloseRelay()
			})
		case frameSwitchAck:
			c.mu.Lock()
			c.switchAcked = true
			c.mu.Unlock()
			c.maybeCloseRelay()
		default: // OFFER, CANDIDATE, END-OF-CANDIDATES, ABORT: for the migration while it runs
			select {
			case c.ctrl <- f:
			case <-c.directFailed:
			case <-c.directReady:
			case <-c.ctx.Done():
				return
			}
		}
	}
}

// protocolError fails the connection after the peer broke the protocol.
func (c *Conn) protocolError(err error) {
	c.log.Debug("connect: protocol error", "err", err)
	c.endInbound(err)
	c.relay.Close()
}

// maybeCloseRelay closes the relay once both directions have switched and
// the peer has our SWITCH.
func (c *Conn) maybeCloseRelay() {
	c.mu.Lock()
	done := c.switchRecv && c.switchAcked && !c.relayClosed
	if done {
		c.relayClosed = true
	}
	c.mu.Unlock()
	if done {
		c.log.Debug("connect: both directions switched; closing the relay")
		c.relay.Close()
	}
}

// followSwitch reads the peer's direction from the direct stream after its SWITCH.
func (c *Conn) followSwitch() {
	select {
	case <-c.directReady:
	case <-c.directFailed:
		c.endInbound(errors.New("connect: peer switched to a direct path this side does not have"))
		return
	case <-c.ctx.Done():
		return
	}
	c.mu.Lock()
	s := c.stream
	c.mu.Unlock()
	for {
		buf := make([]byte, 32<<10)
		n, err := s.Read(buf)
		if n > 0 && !c.deliver(inbound{data: buf[:n]}) && c.ctx.Err() != nil {
			return
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			if err != io.EOF {
				err = fmt.Errorf("connect: direct path: %w", err)
			}
			c.endInbound(err)
			return
		}
	}
}

// Close sends FIN on the current path, waits briefly for the peer's answer
// and frees every resource. Pending Reads and Writes return net.ErrClosed.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.mu.Lock()
		s := c.stream
		c.mu.Unlock()
		if s != nil {
			s.SetWriteDeadline(time.Now()) // unblock a Write waiting for flow control
		}
		linger, cancel := context.WithTimeout(c.ctx, closeLinger)
		defer cancel()
		select {
		case c.wlock <- struct{}{}:
			if s != nil {
				s.SetWriteDeadline(time.Time{})
			}
			c.sendFinLocked(linger)
			<-c.wlock
		case <-linger.Done():
		}
		select {
		case <-c.peerIn:
		case <-linger.Done():
		}
		c.teardown()
	})
	return nil
}

// teardown stops every goroutine and frees the paths.
func (c *Conn) teardown() {
	c.cancel()
	c.mu.Lock()
	qconn, tr, agent := c.qconn, c.transport, c.agent
	c.mu.Unlock()
	if qconn != nil {
		st := qconn.ConnectionStats()
		c.log.Debug("connect: direct path stats", "packets_sent", st.PacketsSent, "packets_lost", st.PacketsLost, "rtt", st.SmoothedRTT)
		qconn.CloseWithError(0, "closed")
	}
	if agent != nil {
		agent.Close()
	}
	if tr != nil {
		tr.Close()
	}
	c.relay.Close()
	c.wg.Wait()
}

// kill drops the connection without FIN, as if the device vanished: the ICE
// agent goes first so that no QUIC close reaches the peer.
func (c *Conn) kill() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.mu.Lock()
		agent := c.agent
		c.mu.Unlock()
		if agent != nil {
			agent.Close()
		}
		c.relay.Close()
		c.teardown()
	})
}
