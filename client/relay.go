package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// CallService asks the server to call the application service of identity
// id, which must be hosted there, checked in and have the service enabled.
// The conversation must be verified (VerifyIdentity or CheckIn). It returns
// the caller's token once the callee accepted; join the call with JoinCall.
func (c *Conn) CallService(ctx context.Context, id identity.ID, service string) ([]byte, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_CallService{CallService: &wirepb.CallServiceRequest{
		IdentityId: id[:], ServiceName: service,
	}}})
	if err != nil {
		return nil, fmt.Errorf("call %s service %q: %w", id.Short(), service, err)
	}
	tok := resp.GetCallService().GetCallerToken()
	if len(tok) != profileserver.TokenSize {
		return nil, fmt.Errorf("call %s: %w: token of %d bytes", id.Short(), ErrBadServer, len(tok))
	}
	return tok, nil
}

// relayKeepAlive is how often an idle relay stream pings the server, well
// within the server's 60 s idle timeout.
const relayKeepAlive = 20 * time.Second

// Relay is one side of an application-service call: its own stream to the
// profile server, which relays messages to the other side in order, with
// acknowledgement and at most MaxUnacked messages in flight per side. It
// is the first path of every device-to-device connection.
type Relay struct {
	conn  *Conn
	token []byte
	in    chan relayed // messages delivered and not yet read; closed by CloseCall
	sem   chan struct{}

	mu     sync.Mutex
	reason string // why the call was closed, when it was
	err    error  // first failed send
	closed bool   // in is closed (read loop only)

	once sync.Once
	quit chan struct{}
}

type relayed struct {
	id  uint32
	msg []byte
}

// ErrCallClosed reports a send on a call that has ended.
var ErrCallClosed = errors.New("call closed")

// JoinCall opens a new stream to the profile server that set up a call and
// joins the call with token. It returns once both sides have joined.
func JoinCall(ctx context.Context, h host.Host, server peer.AddrInfo, token []byte) (*Relay, error) {
	c, err := Dial(ctx, h, server)
	if err != nil {
		return nil, err
	}
	r := &Relay{
		conn:  c,
		token: append([]byte(nil), token...),
		in:    make(chan relayed, profileserver.MaxUnacked+1),
		sem:   make(chan struct{}, profileserver.MaxUnacked),
		quit:  make(chan struct{}),
	}
	c.serveRequests(r.serve)
	if _, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_RelaySend{RelaySend: &wirepb.RelaySendRequest{Token: r.token}}}); err != nil {
		c.Close()
		return nil, fmt.Errorf("join call: %w", err)
	}
	go r.keepAlive()
	return r, nil
}

// serve handles the server's requests on the relay stream (read loop).
func (r *Relay) serve(id uint32, req *wirepb.Request) *wirepb.Response {
	switch b := req.Body.(type) {
	case *wirepb.Request_RelayDeliver:
		if r.closed {
			return &wirepb.Response{Status: wirepb.Status_NOT_FOUND, Details: "call closed"}
		}
		select {
		case r.in <- relayed{id: id, msg: b.RelayDeliver.Message}:
			return nil // acknowledged when read
		default:
			return &wirepb.Response{Status: wirepb.Status_PROTOCOL_VIOLATION, Details: "more unacknowledged messages than the window allows"}
		}
	case *wirepb.Request_CloseCall:
		r.mu.Lock()
		r.reason = b.CloseCall.Reason
		r.mu.Unlock()
		if !r.closed {
			r.closed = true
			close(r.in)
		}
		return &wirepb.Response{Body: &wirepb.Response_CloseCall{CloseCall: &wirepb.CloseCallResponse{}}}
	}
	return &wirepb.Response{Status: wirepb.Status_UNSUPPORTED, Details: "unexpected request on a call stream"}
}

// MaxMessage is the largest message Send accepts.
func (r *Relay) MaxMessage() int { return profileserver.MaxRelayMessage }

// Send queues msg for the other side. It blocks while MaxUnacked messages
// are unacknowledged.
func (r *Relay) Send(ctx context.Context, msg []byte) error {
	if len(msg) > r.MaxMessage() {
		return fmt.Errorf("relay message of %d bytes exceeds %d", len(msg), r.MaxMessage())
	}
	if err := r.sendErr(); err != nil {
		return err
	}
	select {
	case r.sem <- struct{}{}:
	case <-r.conn.Done():
		return r.endErr()
	case <-r.quit:
		return ErrCallClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	err := r.conn.send(ctx, &wirepb.Request{Body: &wirepb.Request_RelaySend{RelaySend: &wirepb.RelaySendRequest{Token: r.token, Message: msg}}},
		func(resp *wirepb.Response) {
			<-r.sem
			if resp.Status != wirepb.Status_OK {
				r.mu.Lock()
				if r.err == nil {
					r.err = fmt.Errorf("relay: %w", &wire.StatusError{Status: resp.Status, Details: resp.Details})
				}
				r.mu.Unlock()
			}
		})
	if err != nil {
		return r.endErr()
	}
	return nil
}

func (r *Relay) sendErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if r.reason != "" {
		return fmt.Errorf("%w: %s", ErrCallClosed, r.reason)
	}
	return nil
}

// endErr tells why the relay stream ended.
func (r *Relay) endErr() error {
	if err := r.sendErr(); err != nil {
		return err
	}
	select {
	case <-r.quit:
		return ErrCallClosed
	default:
	}
	return fmt.Errorf("relay: %w", r.conn.Err())
}

// Recv returns the other side's next message, acknowledging it. It returns
// io.EOF once the call was closed (CloseReason tells why) and every message
// before that was read.
func (r *Relay) Recv(ctx context.Context) ([]byte, error) {
	var it relayed
	var ok bool
	select {
	case it, ok = <-r.in:
	default:
		select {
		case it, ok = <-r.in:
		case <-r.conn.Done():
			// A CloseCall is handled before the stream's end is seen.
			select {
			case it, ok = <-r.in:
			default:
				return nil, r.endErr()
			}
		case <-r.quit:
			return nil, io.EOF
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !ok {
		return nil, io.EOF
	}
	if err := r.conn.respond(it.id, &wirepb.Response{Body: &wirepb.Response_RelayDeliver{RelayDeliver: &wirepb.RelayDeliverResponse{}}}); err != nil {
		r.conn.fail(fmt.Errorf("%w: %v", ErrClosed, err))
	}
	return it.msg, nil
}

// CloseReason is why the call was closed by the other side or the server,
// or "" while it is open.
func (r *Relay) CloseReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Close ends the call for both sides. It is idempotent.
func (r *Relay) Close() error {
	r.once.Do(func() {
		close(r.quit)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = r.conn.Call(ctx, &wirepb.Request{Body: &wirepb.Request_CloseCall{CloseCall: &wirepb.CloseCallRequest{Token: r.token}}})
		cancel()
		r.conn.Close()
	})
	return nil
}

func (r *Relay) keepAlive() {
	t := time.NewTicker(relayKeepAlive)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), relayKeepAlive)
			_, _ = r.conn.Ping(ctx, nil)
			cancel()
		case <-r.conn.Done():
			return
		case <-r.quit:
			return
		}
	}
}

// IncomingCall is a call the server offers to a checked-in identity.
type IncomingCall struct {
	Caller    identity.ID
	CallerKey ed25519.PublicKey
	Service   string
	Token     []byte // the callee's token for JoinCall
}

// ErrRejected is what an incoming-call handler returns to reject a call.
var ErrRejected = errors.New("call rejected")

// OnIncomingCall makes h decide on the calls the server offers on this
// (checked-in) connection: nil accepts, an error rejects. h runs on the
// connection's read loop, so it must decide quickly (the server waits at
// most 10 s) and join the call elsewhere.
func (c *Conn) OnIncomingCall(h func(IncomingCall) error) {
	c.serveRequests(func(id uint32, req *wirepb.Request) *wirepb.Response {
		ic := req.GetIncomingCall()
		if ic == nil {
			return &wirepb.Response{Status: wirepb.Status_UNSUPPORTED, Details: "unexpected request on a check-in stream"}
		}
		if len(ic.CallerPublicKey) != ed25519.PublicKeySize || len(ic.CalleeToken) != profileserver.TokenSize {
			return &wirepb.Response{Status: wirepb.Status_INVALID_VALUE, Details: "incomingCall"}
		}
		call := IncomingCall{
			Caller:    identity.IDFromPublicKey(ic.CallerPublicKey),
			CallerKey: ed25519.PublicKey(ic.CallerPublicKey),
			Service:   ic.ServiceName,
			Token:     ic.CalleeToken,
		}
		if err := h(call); err != nil {
			return &wirepb.Response{Status: wirepb.Status_REJECTED, Details: err.Error()}
		}
		return &wirepb.Response{Body: &wirepb.Response_IncomingCall{IncomingCall: &wirepb.IncomingCallResponse{}}}
	})
}
