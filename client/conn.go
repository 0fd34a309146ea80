package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// ErrClosed reports a call on a connection that has ended.
var ErrClosed = errors.New("connection to profile server closed")

// StatusError is a non-OK answer of a server: Status tells the kind of
// failure and Details names the offending field or the reason. Test for a
// status with errors.Is(err, client.Status(s)).
type StatusError = wire.StatusError

// Status returns a target for errors.Is that matches any StatusError with
// status s.
func Status(s wirepb.Status) error { return &wire.StatusError{Status: s} }

// Conn is one protocol stream to a profile server. It is safe for
// concurrent use; requests are answered in the order they were sent.
type Conn struct {
	stream    network.Stream
	server    peer.ID
	serverKey ed25519.PublicKey

	wmu sync.Mutex // serializes writes

	mu        sync.Mutex // guards the fields below
	nextID    uint32
	pending   map[uint32]func(*wirepb.Response)
	err       error
	onRequest func(id uint32, req *wirepb.Request) *wirepb.Response // serves server requests

	// Set by StartConversation; used by the calls that need them.
	key       *identity.Key
	challenge []byte

	done chan struct{}
}

// Dial opens a protocol stream to the profile server at addr on h.
func Dial(ctx context.Context, h host.Host, addr peer.AddrInfo) (*Conn, error) {
	key, err := p2p.PublicKeyOf(addr.ID)
	if err != nil {
		return nil, fmt.Errorf("profile server %s: %w", addr.ID, err)
	}
	if len(addr.Addrs) > 0 {
		h.Peerstore().AddAddrs(addr.ID, addr.Addrs, time.Hour)
	}
	st, err := h.NewStream(ctx, addr.ID, profileserver.ProtocolClient)
	if err != nil {
		return nil, fmt.Errorf("connect to profile server %s: %w", addr.ID, err)
	}
	c := &Conn{stream: st, server: addr.ID, serverKey: key, pending: make(map[uint32]func(*wirepb.Response)), done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Server is the peer ID of the server.
func (c *Conn) Server() peer.ID { return c.server }

// ServerID is the network ID of the server.
func (c *Conn) ServerID() identity.ID { return identity.IDFromPublicKey(c.serverKey) }

// Done is closed when the connection ends; Err then tells why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return c.stream.Close()
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	c.stream.Reset()
	close(c.done)
}

func (c *Conn) readLoop() {
	for {
		m, err := wire.ReadMessage(c.stream)
		if err != nil {
			c.fail(fmt.Errorf("%w: %v", ErrClosed, err))
			return
		}
		if req := m.GetRequest(); req != nil {
			c.mu.Lock()
			h := c.onRequest
			c.mu.Unlock()
			var resp *wirepb.Response
			if h == nil {
				resp = &wirepb.Response{Status: wirepb.Status_UNSUPPORTED, Details: "this client serves no requests on this stream"}
			} else {
				resp = h(m.Id, req)
			}
			if resp != nil {
				if err := c.respond(m.Id, resp); err != nil {
					c.fail(fmt.Errorf("%w: %v", ErrClosed, err))
					return
				}
			}
			continue
		}
		resp := m.GetResponse()
		if resp == nil {
			c.fail(fmt.Errorf("%w: message from server is neither a request nor a response", ErrClosed))
			return
		}
		c.mu.Lock()
		done := c.pending[m.Id]
		delete(c.pending, m.Id)
		c.mu.Unlock()
		if done == nil {
			// The server answers a frame it could not attribute with id 0
			// (a violation or a refusal) and then closes.
			c.fail(fmt.Errorf("%w: %v", ErrClosed, &wire.StatusError{Status: resp.Status, Details: resp.Details}))
			return
		}
		done(resp)
	}
}

// serveRequests makes h answer the requests the server sends on this
// stream (incoming calls, relayed messages). h runs on the read loop and
// must not block; it returns nil to answer later with respond.
func (c *Conn) serveRequests(h func(id uint32, req *wirepb.Request) *wirepb.Response) {
	c.mu.Lock()
	c.onRequest = h
	c.mu.Unlock()
}

// respond answers the server's request id.
func (c *Conn) respond(id uint32, resp *wirepb.Response) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.stream.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return wire.WriteMessage(c.stream, &wirepb.Message{Id: id, Kind: &wirepb.Message_Response{Response: resp}})
}

// send writes a request whose answer goes to done (on the read loop; done
// must not block). done is not called if the connection ends first.
func (c *Conn) send(ctx context.Context, req *wirepb.Request, done func(*wirepb.Response)) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	c.pending[id] = done
	c.mu.Unlock()

	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		c.stream.SetWriteDeadline(dl)
	} else {
		c.stream.SetWriteDeadline(time.Time{})
	}
	err := wire.WriteMessage(c.stream, &wirepb.Message{Id: id, Kind: &wirepb.Message_Request{Request: req}})
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: %v", ErrClosed, err))
		return c.Err()
	}
	return nil
}

// Call sends a request and waits for its response. A non-OK status is
// returned as a *StatusError together with the response.
func (c *Conn) Call(ctx context.Context, req *wirepb.Request) (*wirepb.Response, error) {
	// The buffered channel absorbs a late answer after ctx ended, which
	// then does not count as unsolicited.
	ch := make(chan *wirepb.Response, 1)
	if err := c.send(ctx, req, func(r *wirepb.Response) { ch <- r }); err != nil {
		return nil, err
	}
	select {
	case resp := <-ch:
		if resp.Status != wirepb.Status_OK {
			return resp, &wire.StatusError{Status: resp.Status, Details: resp.Details}
		}
		return resp, nil
	case <-c.done:
		return nil, c.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// peerIDOf is the libp2p peer ID (text) of an Ed25519 identity key.
func peerIDOf(pub []byte) (string, error) {
	pk, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
