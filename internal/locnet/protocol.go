package locnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet/locpb"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Contact is how to reach a node.
type Contact struct {
	ID        identity.ID       // the node's ID; zero for a seed known only by address
	PublicKey ed25519.PublicKey // the node's key, when known
	Addrs     []string          // contact multiaddrs
}

func (c Contact) String() string {
	var b strings.Builder
	if c.ID.IsZero() {
		b.WriteString("?")
	} else {
		b.WriteString(c.ID.Short())
	}
	if len(c.Addrs) > 0 {
		b.WriteString(" ")
		b.WriteString(strings.Join(c.Addrs, ","))
	}
	return b.String()
}

// Transport carries the requests of the algorithm to other nodes.
// Implementations authenticate the callee: a response comes from the owner
// of the contact's key (libp2p checks the peer ID; memnet routes by ID).
type Transport interface {
	// Call sends req to the node at to and returns its response, whatever its
	// status. A transport failure is an error.
	Call(ctx context.Context, to Contact, req *locpb.Request) (*locpb.Response, error)
}

// Handler answers requests. A *Node is a Handler. from is the authenticated
// caller: its ID (from its transport key) and the address it called from.
type Handler interface {
	HandleRequest(ctx context.Context, from Contact, req *locpb.Request) *locpb.Response
}

// Server is a Transport that also serves incoming requests. Handle sets
// the handler; nil stops serving. [Node.Run] registers the node with its
// transport when the transport is a Server.
type Server interface {
	Handle(Handler)
}

// Errors a caller can tell apart. Status errors from the remote node are
// *wire.StatusError values; errors.Is(err, ErrBusy) matches a BUSY answer.
var (
	ErrBusy        error = &wire.StatusError{Status: wirepb.Status_BUSY}
	ErrUnreachable       = errors.New("node unreachable")
	ErrWrongNode         = errors.New("node answered with another identity")
	ErrNoSeeds           = errors.New("no seed node answered")
	ErrClosed            = errors.New("location network node closed")
	ErrMalformed         = errors.New("malformed location network message")
)

// Limits of requests and responses.
const (
	MaxListNodes = 100                        // nodes in one random or closest list
	maxListBytes = wire.MaxFrame - (64 << 10) // room left for the rest of a response
)

// statusError is the error of a non-OK response.
func statusError(resp *locpb.Response) error {
	return &wire.StatusError{Status: wirepb.Status(resp.Status), Details: resp.Details}
}

// errorResponse is a response with a non-OK status.
func errorResponse(s locpb.Status, format string, args ...any) *locpb.Response {
	return &locpb.Response{Status: s, Details: fmt.Sprintf(format, args...)}
}

// DecodeRequest decodes a request received from the network. It checks
// only the structure (exactly one body); the handler checks the values.
func DecodeRequest(b []byte) (*locpb.Request, error) {
	var req locpb.Request
	if err := proto.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("%w: request: %v", ErrMalformed, err)
	}
	if req.Body == nil {
		return nil, fmt.Errorf("%w: request without a body", ErrMalformed)
	}
	return &req, nil
}

// DecodeResponse decodes a response received from the network. It checks
// only the structure: an OK response has a body.
func DecodeResponse(b []byte) (*locpb.Response, error) {
	var resp locpb.Response
	if err := proto.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("%w: response: %v", ErrMalformed, err)
	}
	if resp.Status == locpb.Status_OK && resp.Body == nil {
		return nil, fmt.Errorf("%w: OK response without a body", ErrMalformed)
	}
	return &resp, nil
}

// RequestName is the camelCase name of a request, for details, logs and
// counters, e.g. "acceptNeighbour".
func RequestName(req *locpb.Request) string {
	switch req.Body.(type) {
	case *locpb.Request_AcceptColleague:
		return "acceptColleague"
	case *locpb.Request_RenewColleague:
		return "renewColleague"
	case *locpb.Request_AcceptNeighbour:
		return "acceptNeighbour"
	case *locpb.Request_RenewNeighbour:
		return "renewNeighbour"
	case *locpb.Request_GetNodeCount:
		return "getNodeCount"
	case *locpb.Request_GetRandomNodes:
		return "getRandomNodes"
	case *locpb.Request_GetClosestNodes:
		return "getClosestNodes"
	case *locpb.Request_GetNodeInfo:
		return "getNodeInfo"
	}
	return "unknown"
}

// buildRequest is an accept or renew request for rel carrying self.
func buildRequest(rel Relation, renew bool, self *locpb.SignedNodeInfo) *locpb.Request {
	b := &locpb.BuildNetworkRequest{Requestor: self}
	switch {
	case rel == Colleague && !renew:
		return &locpb.Request{Body: &locpb.Request_AcceptColleague{AcceptColleague: b}}
	case rel == Colleague:
		return &locpb.Request{Body: &locpb.Request_RenewColleague{RenewColleague: b}}
	case !renew:
		return &locpb.Request{Body: &locpb.Request_AcceptNeighbour{AcceptNeighbour: b}}
	}
	return &locpb.Request{Body: &locpb.Request_RenewNeighbour{RenewNeighbour: b}}
}

// responderInfo is the node info a response says is the responder's own, if
// it carries one.
func responderInfo(resp *locpb.Response) *locpb.SignedNodeInfo {
	switch b := resp.Body.(type) {
	case *locpb.Response_BuildNetwork:
		return b.BuildNetwork.GetAcceptor()
	case *locpb.Response_GetNodeInfo:
		return b.GetNodeInfo.GetNode()
	}
	return nil
}

// wantBody checks that an OK response has the body that answers req.
func wantBody(req *locpb.Request, resp *locpb.Response) error {
	ok := false
	switch req.Body.(type) {
	case *locpb.Request_AcceptColleague, *locpb.Request_RenewColleague,
		*locpb.Request_AcceptNeighbour, *locpb.Request_RenewNeighbour:
		b, is := resp.Body.(*locpb.Response_BuildNetwork)
		ok = is && b.BuildNetwork != nil
	case *locpb.Request_GetNodeCount:
		b, is := resp.Body.(*locpb.Response_GetNodeCount)
		ok = is && b.GetNodeCount != nil
	case *locpb.Request_GetRandomNodes, *locpb.Request_GetClosestNodes:
		b, is := resp.Body.(*locpb.Response_NodeList)
		ok = is && b.NodeList != nil
	case *locpb.Request_GetNodeInfo:
		b, is := resp.Body.(*locpb.Response_GetNodeInfo)
		ok = is && b.GetNodeInfo != nil
	}
	if !ok {
		return fmt.Errorf("%w: %s answered with %T", ErrMalformed, RequestName(req), resp.Body)
	}
	return nil
}
