package locnet

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// HandleRequest answers a request from another node. from must be the
// authenticated caller: relation requests are accepted only from the node
// whose info they carry.
func (n *Node) HandleRequest(ctx context.Context, from Contact, req *locpb.Request) *locpb.Response {
	n.counters.served.Add(1)
	if req == nil || req.Body == nil {
		return errorResponse(locpb.Status_PROTOCOL_VIOLATION, "request without a body")
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return errorResponse(locpb.Status_INTERNAL, "node closed")
	}
	now := n.cfg.Clock()
	switch b := req.Body.(type) {
	case *locpb.Request_AcceptColleague:
		return n.handleBuild(from, b.AcceptColleague, Colleague, false, "acceptColleague", now)
	case *locpb.Request_RenewColleague:
		return n.handleBuild(from, b.RenewColleague, Colleague, true, "renewColleague", now)
	case *locpb.Request_AcceptNeighbour:
		return n.handleBuild(from, b.AcceptNeighbour, Neighbour, false, "acceptNeighbour", now)
	case *locpb.Request_RenewNeighbour:
		return n.handleBuild(from, b.RenewNeighbour, Neighbour, true, "renewNeighbour", now)
	case *locpb.Request_GetNodeCount:
		n.mu.Lock()
		c := n.tab.len() + 1
		n.mu.Unlock()
		return &locpb.Response{Body: &locpb.Response_GetNodeCount{GetNodeCount: &locpb.GetNodeCountResponse{NodeCount: uint32(c)}}}
	case *locpb.Request_GetRandomNodes:
		if b.GetRandomNodes == nil {
			return errorResponse(locpb.Status_PROTOCOL_VIOLATION, "getRandomNodes: empty")
		}
		return n.nodeList(n.randomNodes(int(min(b.GetRandomNodes.MaxNodeCount, MaxListNodes)), b.GetRandomNodes.IncludeNeighbours))
	case *locpb.Request_GetClosestNodes:
		return n.handleClosest(b.GetClosestNodes)
	case *locpb.Request_GetNodeInfo:
		n.mu.Lock()
		self := n.self.Proto()
		n.mu.Unlock()
		return &locpb.Response{Body: &locpb.Response_GetNodeInfo{GetNodeInfo: &locpb.GetNodeInfoResponse{Node: self}}}
	}
	return errorResponse(locpb.Status_UNSUPPORTED, "unknown request")
}

// nodeList is a list response, cut to fit in a frame.
func (n *Node) nodeList(infos []*NodeInfo) *locpb.Response {
	list := &locpb.NodeListResponse{Nodes: make([]*locpb.SignedNodeInfo, 0, len(infos))}
	size := 0
	for _, in := range infos {
		size += len(in.Raw) + len(in.Signature) + len(in.PublicKey) + 16
		if size > maxListBytes {
			break
		}
		list.Nodes = append(list.Nodes, in.Proto())
	}
	return &locpb.Response{Body: &locpb.Response_NodeList{NodeList: list}}
}

// randomNodes is a random sample of the map (2017 GetRandomNodes).
func (n *Node) randomNodes(max int, neighbours bool) []*NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	pool := make([]*NodeInfo, 0, n.tab.len())
	for _, e := range n.tab.list {
		if neighbours || e.Relation != Neighbour {
			pool = append(pool, e.Info)
		}
	}
	max = min(max, len(pool))
	for i := range max {
		j := i + n.rng.IntN(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:max]
}

func (n *Node) handleClosest(r *locpb.GetClosestNodesRequest) *locpb.Response {
	if r == nil {
		return errorResponse(locpb.Status_PROTOCOL_VIOLATION, "getClosestNodes: empty")
	}
	loc := graph.Location{Lat: r.Latitude, Lon: r.Longitude}
	if !loc.IsSet() || graph.CheckLocation(loc) != nil {
		return errorResponse(locpb.Status_INVALID_VALUE, "getClosestNodes.location")
	}
	radius := float64(r.MaxRadiusKm)
	if math.IsNaN(radius) || math.IsInf(radius, 0) {
		return errorResponse(locpb.Status_INVALID_VALUE, "getClosestNodes.maxRadiusKm")
	}
	if r.MaxNodeCount == 0 {
		return errorResponse(locpb.Status_INVALID_VALUE, "getClosestNodes.maxNodeCount")
	}
	n.mu.Lock()
	infos := n.closestLocked(toVec(loc), int(min(r.MaxNodeCount, MaxListNodes)), radius, r.IncludeNeighbours)
	n.mu.Unlock()
	return n.nodeList(infos)
}

// handleBuild answers the four relation requests (2017 AcceptColleague,
// RenewColleague, AcceptNeighbour, RenewNeighbour).
func (n *Node) handleBuild(from Contact, b *locpb.BuildNetworkRequest, rel Relation, renew bool, name string, now time.Time) *locpb.Response {
	if b == nil || b.Requestor == nil {
		return errorResponse(locpb.Status_INVALID_VALUE, "%s.requestor", name)
	}
	info, err := n.openInfo(b.Requestor, now)
	if err != nil {
		return infoError(name+".requestor", err)
	}
	if info.ID != from.ID {
		return errorResponse(locpb.Status_UNAUTHORIZED, "%s.requestor: node info of %s sent by %s", name, info.ID.Short(), from.ID.Short())
	}
	if info.ID == n.id {
		return errorResponse(locpb.Status_INVALID_VALUE, "%s.requestor: this node's own info", name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.tab.get(info.ID)
	if e != nil && !newerOrSame(e.Info, info) {
		n.counters.staleInfos.Add(1)
		return errorResponse(locpb.Status_INVALID_VALUE, "%s.requestor.sequence: %d, older than %d", name, info.Sequence, e.Info.Sequence)
	}
	var accepted bool
	switch {
	case rel == Colleague && e != nil && e.Relation == Neighbour:
		// No downgrade from neighbour to colleague.
	case rel == Colleague:
		accepted = e != nil && e.Info.Location == info.Location || !n.overlapsLocked(info)
	default:
		accepted = n.admitNeighbourLocked(info)
	}
	switch {
	case accepted:
		n.storeLocked(info, rel, Acceptor, now.Add(n.cfg.EntryExpiry))
	case e != nil && e.Relation == rel && (renew || rel == Neighbour):
		n.removeLocked(info.ID, name+" refused")
	}
	var remote string
	if len(from.Addrs) > 0 {
		remote = from.Addrs[0]
	}
	return &locpb.Response{Body: &locpb.Response_BuildNetwork{BuildNetwork: &locpb.BuildNetworkResponse{
		Accepted: accepted, Acceptor: n.self.Proto(), RemoteAddress: remote,
	}}}
}

// infoError is the response to an invalid node info in field.
func infoError(field string, err error) *locpb.Response {
	var fe *graph.FieldError
	switch {
	case errors.Is(err, ErrInvalidSignature):
		return errorResponse(locpb.Status_INVALID_SIGNATURE, "%s", field)
	case errors.Is(err, ErrStaleInfo):
		return errorResponse(locpb.Status_INVALID_VALUE, "%s.issuedAt", field)
	case errors.As(err, &fe):
		return errorResponse(locpb.Status_INVALID_VALUE, "%s.%s", field, fe.Field)
	}
	return errorResponse(locpb.Status_INVALID_VALUE, "%s", field)
}
