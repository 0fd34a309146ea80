package locnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet/locpb"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/wire"
)

// ProtocolID is the libp2p protocol of the location based network. A
// stream carries one request and its response.
const ProtocolID protocol.ID = "/iop/loc/1"

// Libp2pConfig configures a Libp2pTransport. Zero fields take the defaults
// noted.
type Libp2pConfig struct {
	Host              host.Host     // required; its key is the node's key
	Logger            *slog.Logger  // default: discard
	CallTimeout       time.Duration // default 10 s: deadline of one request, on both sides
	PeerRate          rate.Limit    // default 20 requests/s per peer
	PeerBurst         int           // default 100
	MaxStreamsPerPeer int           // default 16 requests at once per peer
}

// Libp2pTransport carries the location based network over libp2p streams:
// one request per stream, each a length-prefixed protobuf frame
// (internal/wire). The peer ID authenticates both ends: a caller's ID is
// its peer's key, and a callee must answer with its own node info. It is a
// Server: Handle (or Node.Run) serves the protocol on the host.
type Libp2pTransport struct {
	cfg Libp2pConfig
	log *slog.Logger

	mu      sync.Mutex // guards the fields below
	handler Handler
	limits  map[peer.ID]*rate.Limiter
	active  map[peer.ID]int
	closed  bool

	wg sync.WaitGroup // one per stream being served
}

// NewLibp2pTransport returns a transport on cfg.Host. It serves nothing
// until Handle is called.
func NewLibp2pTransport(cfg Libp2pConfig) (*Libp2pTransport, error) {
	if cfg.Host == nil {
		return nil, errors.New("locnet: Libp2pConfig.Host is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.CallTimeout, DefaultCallTimeout)
	setDefault(&cfg.PeerRate, 20)
	setDefault(&cfg.PeerBurst, 100)
	setDefault(&cfg.MaxStreamsPerPeer, 16)
	return &Libp2pTransport{
		cfg:    cfg,
		log:    cfg.Logger,
		limits: make(map[peer.ID]*rate.Limiter),
		active: make(map[peer.ID]int),
	}, nil
}

// Addrs are the host's addresses to put in the node info: its listen
// addresses with /p2p/<peer id>.
func (t *Libp2pTransport) Addrs() []string {
	var out []string
	for _, a := range p2p.FullAddrs(t.cfg.Host) {
		out = append(out, a.String())
	}
	return out
}

// Handle serves the protocol with h; nil stops serving.
func (t *Libp2pTransport) Handle(h Handler) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.handler = h
	if h == nil {
		t.cfg.Host.RemoveStreamHandler(ProtocolID)
		return
	}
	t.cfg.Host.SetStreamHandler(ProtocolID, t.serve)
}

// Close stops serving and waits for the requests being answered.
func (t *Libp2pTransport) Close() {
	t.mu.Lock()
	t.closed = true
	t.handler = nil
	t.mu.Unlock()
	t.cfg.Host.RemoveStreamHandler(ProtocolID)
	t.wg.Wait()
}

// admit applies the per-peer limits; it returns the handler, or nil and
// whether the peer is only busy.
func (t *Libp2pTransport) admit(p peer.ID) (Handler, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.handler == nil {
		return nil, false
	}
	if len(t.limits) > 4*len(t.active)+1024 {
		for id, l := range t.limits {
			if t.active[id] == 0 && l.Tokens() >= float64(t.cfg.PeerBurst) {
				delete(t.limits, id)
			}
		}
	}
	l := t.limits[p]
	if l == nil {
		l = rate.NewLimiter(t.cfg.PeerRate, t.cfg.PeerBurst)
		t.limits[p] = l
	}
	if t.active[p] >= t.cfg.MaxStreamsPerPeer || !l.Allow() {
		return nil, true
	}
	t.active[p]++
	t.wg.Add(1)
	return t.handler, false
}

func (t *Libp2pTransport) release(p peer.ID) {
	t.mu.Lock()
	if t.active[p]--; t.active[p] <= 0 {
		delete(t.active, p)
	}
	t.mu.Unlock()
	t.wg.Done()
}

// serve answers the one request of a stream.
func (t *Libp2pTransport) serve(st network.Stream) {
	p := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(t.cfg.CallTimeout))
	h, busy := t.admit(p)
	if h == nil {
		if busy {
			t.reply(st, errorResponse(locpb.Status_BUSY, "too many requests from %s; retry later", p))
		} else {
			_ = st.Reset()
		}
		return
	}
	defer t.release(p)
	body, err := wire.ReadFrame(st)
	if err != nil {
		if errors.Is(err, wire.ErrFrameTooLarge) {
			t.reply(st, errorResponse(locpb.Status_PROTOCOL_VIOLATION, "%v", err))
			return
		}
		t.log.Debug("read request", "peer", p, "err", err)
		_ = st.Reset()
		return
	}
	req, err := DecodeRequest(body)
	if err != nil {
		t.reply(st, errorResponse(locpb.Status_PROTOCOL_VIOLATION, "%v", err))
		return
	}
	pub, err := p2p.PublicKeyOf(p)
	if err != nil {
		t.reply(st, errorResponse(locpb.Status_UNAUTHORIZED, "peer key: %v", err))
		return
	}
	from := Contact{ID: identity.IDFromPublicKey(pub), PublicKey: pub}
	if a := st.Conn().RemoteMultiaddr(); a != nil {
		from.Addrs = []string{a.String() + "/p2p/" + p.String()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.CallTimeout)
	resp := h.HandleRequest(ctx, from, req)
	cancel()
	if resp == nil {
		resp = errorResponse(locpb.Status_INTERNAL, "no response")
	}
	t.reply(st, resp)
}

// reply writes resp and closes the stream.
func (t *Libp2pTransport) reply(st network.Stream, resp *locpb.Response) {
	b, err := proto.Marshal(resp)
	if err == nil {
		err = wire.WriteFrame(st, b)
	}
	if err != nil {
		t.log.Debug("write response", "peer", st.Conn().RemotePeer(), "err", err)
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// Call implements Transport.
func (t *Libp2pTransport) Call(ctx context.Context, to Contact, req *locpb.Request) (*locpb.Response, error) {
	ai, pub, err := addrInfo(to)
	if err != nil {
		return nil, err
	}
	if !to.ID.IsZero() && identity.IDFromPublicKey(pub) != to.ID {
		return nil, fmt.Errorf("locnet: contact %s has the peer ID of %s: %w", to.ID.Short(), identity.IDFromPublicKey(pub).Short(), ErrWrongNode)
	}
	if ai.ID == t.cfg.Host.ID() {
		return nil, fmt.Errorf("locnet: call to self: %w", ErrUnreachable)
	}
	if len(ai.Addrs) > 0 {
		t.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.CallTimeout)
	defer cancel()
	st, err := t.cfg.Host.NewStream(ctx, ai.ID, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("locnet: open stream to %s: %w: %v", ai.ID, ErrUnreachable, err)
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("locnet: encode request: %w", err)
	}
	if err := wire.WriteFrame(st, b); err != nil {
		return nil, fmt.Errorf("locnet: send %s to %s: %w", RequestName(req), ai.ID, err)
	}
	_ = st.CloseWrite()
	rb, err := wire.ReadFrame(st)
	if err != nil {
		return nil, fmt.Errorf("locnet: read %s response from %s: %w", RequestName(req), ai.ID, err)
	}
	resp, err := DecodeResponse(rb)
	if err != nil {
		return nil, err
	}
	if ri := responderInfo(resp); ri != nil && !bytes.Equal(ri.PublicKey, pub) {
		return nil, fmt.Errorf("locnet: %s answered with the node info of %s: %w", ai.ID,
			identity.IDFromPublicKey(ri.PublicKey).Short(), ErrWrongNode)
	}
	return resp, nil
}

// addrInfo is the libp2p peer and addresses of a contact, with the peer's
// key: from the contact's key if it has one, else from a /p2p/ address.
// Addresses of other peers are dropped.
func addrInfo(to Contact) (peer.AddrInfo, ed25519.PublicKey, error) {
	var ai peer.AddrInfo
	if len(to.PublicKey) > 0 {
		pk, err := crypto.UnmarshalEd25519PublicKey(to.PublicKey)
		if err != nil {
			return ai, nil, fmt.Errorf("locnet: contact key: %w", err)
		}
		if ai.ID, err = peer.IDFromPublicKey(pk); err != nil {
			return ai, nil, fmt.Errorf("locnet: contact key: %w", err)
		}
	}
	for _, s := range to.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		tr, id := peer.SplitAddr(a)
		if id != "" {
			if ai.ID == "" {
				ai.ID = id
			} else if id != ai.ID {
				continue
			}
		}
		if tr != nil {
			ai.Addrs = append(ai.Addrs, tr)
		}
	}
	if ai.ID == "" {
		return ai, nil, fmt.Errorf("locnet: contact %v has neither a key nor a /p2p/ address: %w", to, ErrUnreachable)
	}
	pub, err := p2p.PublicKeyOf(ai.ID)
	if err != nil {
		return ai, nil, fmt.Errorf("locnet: contact %v: %w", to, err)
	}
	return ai, pub, nil
}
