package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/iop-go/iop/identity"
)

// The local API lets other processes of the same user accept connections
// through the running agent (which holds the check-in, so it is the one
// the server offers calls to):
//
//	GET /v1/listen?service=S   enables S and streams one JSON line (Incoming)
//	                           per accepted connection while the request lasts
//	GET /v1/conn/{id}          claims connection id: the HTTP connection
//	                           switches protocols and carries its bytes
//
// An accepted connection that nobody claims within claimTimeout is closed.

// claimTimeout is how long an accepted connection waits to be claimed.
const claimTimeout = 10 * time.Second

// Incoming describes a connection the agent accepted for a local listener.
type Incoming struct {
	Conn    string      `json:"conn"`    // claim ID for /v1/conn/{id}
	Peer    identity.ID `json:"peer"`    // the caller's identity, authenticated
	Service string      `json:"service"` // the application service called
	Path    string      `json:"path"`    // the path carrying the bytes now
	SetupMS int64       `json:"setup_ms"`
}

// localConns holds accepted connections until a local client claims them.
type localConns struct {
	mu    sync.Mutex
	conns map[string]*PeerConn
}

func (lc *localConns) put(pc *PeerConn) string {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	lc.mu.Lock()
	if lc.conns == nil {
		lc.conns = make(map[string]*PeerConn)
	}
	lc.conns[id] = pc
	lc.mu.Unlock()
	time.AfterFunc(claimTimeout, func() {
		if pc := lc.take(id); pc != nil {
			pc.Close()
		}
	})
	return id
}

func (lc *localConns) take(id string) *PeerConn {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	pc := lc.conns[id]
	delete(lc.conns, id)
	return pc
}

// serveListen is GET /v1/listen?service=S.
func (a *Agent) serveListen(w http.ResponseWriter, r *http.Request) {
	service := r.URL.Query().Get("service")
	l, err := a.Listen(r.Context(), service, DialOptions{})
	if err != nil {
		writeError(w, err)
		return
	}
	defer l.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	enc := json.NewEncoder(w)
	for {
		pc, err := l.Accept(r.Context())
		if err != nil {
			return
		}
		in := Incoming{Peer: pc.PeerID(), Service: service, Path: pc.Path(), SetupMS: pc.Timing().Handshake.Milliseconds()}
		in.Conn = a.local.put(pc)
		if enc.Encode(in) != nil || rc.Flush() != nil {
			return
		}
	}
}

// serveConn is GET /v1/conn/{id}: the connection's bytes on this socket.
func (a *Agent) serveConn(w http.ResponseWriter, r *http.Request) {
	pc := a.local.take(r.PathValue("id"))
	if pc == nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no accepted connection with this id (claimed already, or not within 10 s)"})
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Connection", "Upgrade")
	w.Header().Set("Upgrade", "iop-stream")
	w.WriteHeader(http.StatusSwitchingProtocols)
	local, buf, err := rc.Hijack()
	if err != nil {
		pc.Close()
		return
	}
	splice(local, buf.Reader, pc)
}

// splice copies both ways until either side ends, then closes both.
func splice(local net.Conn, localIn io.Reader, pc *PeerConn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(pc, localIn)
		done <- struct{}{}
	}()
	go func() {
		io.Copy(local, pc)
		done <- struct{}{}
	}()
	<-done
	pc.Close()
	local.Close()
	<-done
}

// LineStream yields the JSON lines a local API stream answers, one value
// each, until the agent ends it or Close.
type LineStream[T any] struct {
	resp *http.Response
	dec  *json.Decoder
}

// Next waits for the next value.
func (s *LineStream[T]) Next() (*T, error) {
	var v T
	if err := s.dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("agent ended the stream: %w", err)
	}
	return &v, nil
}

// Close ends the stream.
func (s *LineStream[T]) Close() error { return s.resp.Body.Close() }

// LocalListener receives the connections a running agent accepts for one
// service; claim each with Open.
type LocalListener = LineStream[Incoming]

// Listen asks the running agent to accept calls for service.
func (c *LocalClient) Listen(ctx context.Context, service string) (*LocalListener, error) {
	return openStream[Incoming](ctx, c, "/v1/listen?service="+url.QueryEscape(service))
}

// openStream opens a local API path that answers a stream of JSON lines.
func openStream[T any](ctx context.Context, c *LocalClient, path string) (*LineStream[T], error) {
	resp, err := c.stream(ctx, path)
	if err != nil {
		return nil, err
	}
	return &LineStream[T]{resp: resp, dec: json.NewDecoder(resp.Body)}, nil
}

// stream opens a local API path that answers a stream of JSON lines.
func (c *LocalClient) stream(ctx context.Context, path string) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w %s: start one with `iop agent --home %s`", ErrNoAgent, c.home, c.home)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e apiError
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("agent answered %s", resp.Status)
	}
	return resp, nil
}

// Open claims an accepted connection: the returned net.Conn carries its
// bytes through the agent.
func (c *LocalClient) Open(ctx context.Context, conn string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", SocketPath(c.home))
	if err != nil {
		return nil, fmt.Errorf("%w %s", ErrNoAgent, c.home)
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/conn/"+url.PathEscape(conn), nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "iop-stream")
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer nc.Close()
		var e apiError
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("agent answered %s", resp.Status)
	}
	return &bufferedConn{Conn: nc, r: br}, nil
}

// bufferedConn reads through the reader that parsed the HTTP response.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite half-closes the unix connection, when it can.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
