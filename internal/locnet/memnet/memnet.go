// Package memnet is an in-memory network for the location based network:
// nodes are addressed by ID (or by their "/memnet/<id>" address), and a
// call is a synchronous function call into the callee's handler, so
// thousands of nodes run in one goroutine, deterministically, under a
// simulated clock. Failures are injected by taking nodes down and by
// partitioning the network into groups that cannot reach each other.
package memnet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// AddrPrefix starts the address of every endpoint.
const AddrPrefix = "/memnet/"

// Addr is the address of the endpoint of id.
func Addr(id identity.ID) string { return AddrPrefix + id.String() }

// Network is an in-memory network. It is safe for concurrent use, but calls
// are synchronous: the callee runs in the caller's goroutine.
type Network struct {
	// Encode makes every call marshal and unmarshal its request and response,
	// as the wire would. It is slower; simulations leave it off.
	Encode bool

	mu    sync.Mutex // guards the fields below
	nodes map[identity.ID]*Endpoint
	group map[identity.ID]int // partition group; absent means group 0
	kinds map[string]uint64   // requests sent, by request name
	calls atomic.Uint64
}

// New returns an empty network.
func New() *Network {
	return &Network{nodes: make(map[identity.ID]*Endpoint), group: make(map[identity.ID]int), kinds: make(map[string]uint64)}
}

// Endpoint is one node's attachment to the network: its Transport.
type Endpoint struct {
	net  *Network
	id   identity.ID
	pub  ed25519.PublicKey
	addr string

	calls atomic.Uint64 // requests sent

	mu      sync.Mutex // guards the fields below
	handler locnet.Handler
	down    bool
}

// Join attaches the node with public key pub. The endpoint is the node's
// Transport; serve requests with Handle (a running locnet.Node does it
// itself).
func (n *Network) Join(pub ed25519.PublicKey) *Endpoint {
	id := identity.IDFromPublicKey(pub)
	e := &Endpoint{net: n, id: id, pub: pub, addr: Addr(id)}
	n.mu.Lock()
	n.nodes[id] = e
	n.mu.Unlock()
	return e
}

// Endpoint returns the endpoint of id, or nil.
func (n *Network) Endpoint(id identity.ID) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[id]
}

// Leave detaches the node of id for good.
func (n *Network) Leave(id identity.ID) {
	n.mu.Lock()
	delete(n.nodes, id)
	delete(n.group, id)
	n.mu.Unlock()
}

// Partition splits the network: nodes in different groups cannot reach
// each other. Nodes in no group form one more group.
func (n *Network) Partition(groups ...[]identity.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.group)
	for i, g := range groups {
		for _, id := range g {
			n.group[id] = i + 1
		}
	}
}

// Heal removes the partition.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.group)
	n.mu.Unlock()
}

// Calls is the number of requests sent on the network.
func (n *Network) Calls() uint64 { return n.calls.Load() }

// CallsByKind returns the number of requests sent on the network by
// request name (locnet.RequestName).
func (n *Network) CallsByKind() map[string]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]uint64, len(n.kinds))
	for k, v := range n.kinds {
		out[k] = v
	}
	return out
}

// ID is the endpoint's node ID.
func (e *Endpoint) ID() identity.ID { return e.id }

// Addr is the endpoint's address.
func (e *Endpoint) Addr() string { return e.addr }

// Contact is how to reach the endpoint.
func (e *Endpoint) Contact() locnet.Contact {
	return locnet.Contact{ID: e.id, PublicKey: e.pub, Addrs: []string{e.addr}}
}

// Calls is the number of requests the endpoint sent.
func (e *Endpoint) Calls() uint64 { return e.calls.Load() }

// Handle sets the handler of requests to the endpoint; nil stops serving.
func (e *Endpoint) Handle(h locnet.Handler) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

// SetDown takes the node off the network (calls to and from it fail) or
// brings it back.
func (e *Endpoint) SetDown(down bool) {
	e.mu.Lock()
	e.down = down
	e.mu.Unlock()
}

func (e *Endpoint) state() (locnet.Handler, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.handler, e.down
}

// Call implements locnet.Transport: it runs the callee's handler with this
// endpoint as the authenticated caller.
func (e *Endpoint) Call(ctx context.Context, to locnet.Contact, req *locpb.Request) (*locpb.Response, error) {
	e.calls.Add(1)
	e.net.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, err := target(to)
	if err != nil {
		return nil, err
	}
	e.net.mu.Lock()
	e.net.kinds[locnet.RequestName(req)]++
	callee := e.net.nodes[id]
	split := e.net.group[e.id] != e.net.group[id]
	e.net.mu.Unlock()
	if callee == nil || split {
		return nil, fmt.Errorf("memnet: call %s: %w", id.Short(), locnet.ErrUnreachable)
	}
	h, down := callee.state()
	_, selfDown := e.state()
	if h == nil || down || selfDown {
		return nil, fmt.Errorf("memnet: call %s: %w", id.Short(), locnet.ErrUnreachable)
	}
	from := locnet.Contact{ID: e.id, PublicKey: e.pub, Addrs: []string{e.addr}}
	if !e.net.Encode {
		return h.HandleRequest(ctx, from, req), nil
	}
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("memnet: encode request: %w", err)
	}
	req, err = locnet.DecodeRequest(b)
	if err != nil {
		return nil, err
	}
	resp := h.HandleRequest(ctx, from, req)
	if b, err = proto.Marshal(resp); err != nil {
		return nil, fmt.Errorf("memnet: encode response: %w", err)
	}
	return locnet.DecodeResponse(b)
}

// target is the node a contact names: its ID, or the ID in its address.
func target(to locnet.Contact) (identity.ID, error) {
	if !to.ID.IsZero() {
		return to.ID, nil
	}
	for _, a := range to.Addrs {
		if s, ok := strings.CutPrefix(a, AddrPrefix); ok {
			return identity.ParseID(s)
		}
	}
	return identity.ID{}, fmt.Errorf("memnet: contact %v has no memnet address: %w", to, locnet.ErrUnreachable)
}
