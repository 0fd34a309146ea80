package client

import (
	"context"
	"fmt"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can"
	"github.com/iop-go/iop/internal/can/canpb"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// PublishClaim signs the conversation identity's claim "I am hosted at
// this server" and asks the server to publish it in the content address
// network, so anyone can resolve the identity to this server.
func (c *Conn) PublishClaim(ctx context.Context) error {
	key, _, err := c.conversation()
	if err != nil {
		return err
	}
	srv := c.ServerID()
	claim, sig, err := can.SignClaim(key, &canpb.IdentityClaim{ServerId: srv[:], State: canpb.ClaimState_HOSTED, Sequence: uint64(time.Now().UnixMilli())})
	if err != nil {
		return err
	}
	_, err = c.Call(ctx, &wirepb.Request{Signature: sig, Body: &wirepb.Request_PublishClaim{PublishClaim: &wirepb.PublishClaimRequest{Claim: claim}}})
	if err != nil {
		return fmt.Errorf("publish claim: %w", err)
	}
	return nil
}

// Resolution is where an identity is hosted, as the content address
// network says, verified.
type Resolution struct {
	ID       identity.ID     `json:"id"`
	State    string          `json:"state"`              // hosted, moved or cancelled
	Server   identity.ID     `json:"server"`             // hosting server, or the one it moved to
	Previous *identity.ID    `json:"previous,omitempty"` // the server that published a move
	Addrs    []string        `json:"addrs,omitempty"`    // the server's addresses (with /p2p/), when its contact was found
	Location *graph.Location `json:"-"`
	Expires  time.Time       `json:"expires"`
}

// Resolve asks the node where an identity is hosted and verifies every
// signature of the answer itself.
func (c *Conn) Resolve(ctx context.Context, id identity.ID) (*Resolution, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_Resolve{Resolve: &wirepb.ResolveRequest{IdentityId: id[:]}}})
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", id, err)
	}
	r := resp.GetResolve()
	now := time.Now()
	p, err := can.OpenPointer(can.IdentityKey(id), r.Pointer, now)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w: %v", id, ErrBadServer, err)
	}
	res := &Resolution{ID: id, Server: p.Server, Expires: p.Expires}
	switch p.Claim.State {
	case canpb.ClaimState_HOSTED:
		res.State = "hosted"
	case canpb.ClaimState_MOVED:
		res.State = "moved"
		prev := p.Publisher
		res.Previous = &prev
	default:
		res.State = "cancelled"
	}
	if len(r.Contact) > 0 {
		nc, err := can.OpenNodeContact(can.NodeKey(p.Server), r.Contact, now)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: server contact: %w: %v", id, ErrBadServer, err)
		}
		pid, err := peerIDOf(nc.PublicKey)
		if err != nil {
			return nil, err
		}
		for _, a := range nc.Addrs {
			res.Addrs = append(res.Addrs, a+"/p2p/"+pid)
		}
		if nc.Latitude != graph.NoLocation {
			res.Location = &graph.Location{Lat: nc.Latitude, Lon: nc.Longitude}
		}
	}
	return res, nil
}
