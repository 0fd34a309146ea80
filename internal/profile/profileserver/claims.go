package profileserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can"
	"github.com/iop-go/iop/internal/can/canpb"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Directory is the content address network as the profile server uses it:
// it publishes identity pointers and resolves them. *can.CAN implements it.
type Directory interface {
	PublishPointer(ctx context.Context, claim, claimSig []byte) error
	Forget(id identity.ID)
	Resolve(ctx context.Context, id identity.ID) (*can.Pointer, []byte, error)
	Contact(ctx context.Context, id identity.ID) (*canpb.NodeContact, []byte, error)
}

// publish hands a claim to the directory in the background: the client's
// answer does not wait for the DHT, and the directory republishes anyway.
func (s *Server) publish(claim, sig []byte) {
	if s.cfg.Directory == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.cfg.Directory.PublishPointer(ctx, claim, sig); err != nil {
			s.log.Debug("publish identity pointer", "err", err)
		}
	}()
}

// publishAll republishes the stored claims of every identity, as a
// restarted node resumes from its store.
func (s *Server) publishAll() {
	if s.cfg.Directory == nil {
		return
	}
	s.mu.Lock()
	type pair struct{ c, sig []byte }
	var all []pair
	for _, h := range s.ids {
		if len(h.rec.Claim) > 0 {
			all = append(all, pair{h.rec.Claim, h.rec.ClaimSignature})
		}
	}
	s.mu.Unlock()
	for _, p := range all {
		s.publish(p.c, p.sig)
	}
}

// checkClaim verifies a claim of the conversation's identity against its
// stored one: the sequence must grow, except for a resend of the same claim.
func checkClaim(ss *session, h *hosted, raw, sig []byte, field string) (*canpb.IdentityClaim, error) {
	c, err := can.OpenClaim(raw, sig, ss.clientKey)
	if err != nil {
		if errors.Is(err, can.ErrInvalidRecord) && identity.Verify(ss.clientKey, can.DomainClaim, raw, sig) != nil {
			return nil, wire.Errorf(wirepb.Status_INVALID_SIGNATURE, "claim signature does not verify")
		}
		return nil, wire.Invalid(field)
	}
	if len(h.rec.Claim) > 0 && !bytes.Equal(raw, h.rec.Claim) {
		var old canpb.IdentityClaim
		if proto.Unmarshal(h.rec.Claim, &old) == nil && c.Sequence <= old.Sequence {
			return nil, wire.Invalid(field + ".sequence")
		}
	}
	return c, nil
}

func (ss *session) publishClaim(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	raw := req.GetPublishClaim().GetClaim()
	s.mu.Lock()
	h := s.ids[ss.clientID]
	if h == nil || !h.active() || h.online != ss {
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_UNAUTHORIZED, "not checked in")
	}
	c, err := checkClaim(ss, h, raw, req.Signature, "claim")
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if c.State != canpb.ClaimState_HOSTED || identity.ID(c.ServerId) != s.id {
		s.mu.Unlock()
		return nil, wire.Invalid("claim.serverId")
	}
	if err := s.beginLocked(ss.clientID); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	rec := proto.Clone(h.rec).(*wirepb.HostedIdentity)
	s.mu.Unlock()
	rec.Claim, rec.ClaimSignature = raw, req.Signature
	err = s.store.put(ss.clientID, rec)
	s.mu.Lock()
	s.endLocked(ss.clientID)
	if err == nil && h.active() {
		h.rec.Claim, h.rec.ClaimSignature = raw, req.Signature
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("store claim of %s: %w", ss.clientID, err)
	}
	s.publish(raw, req.Signature)
	s.relationsChanged(ss.clientID) // the pages carry the claim
	return &wirepb.Response{Body: &wirepb.Response_PublishClaim{PublishClaim: &wirepb.PublishClaimResponse{}}}, nil
}

func (ss *session) resolve(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	id, err := identity.IDFromBytes(req.GetResolve().GetIdentityId())
	if err != nil {
		return nil, wire.Invalid("identityNetworkId")
	}
	if s.cfg.Directory == nil {
		return nil, wire.Errorf(wirepb.Status_UNSUPPORTED, "this node does not run the content address network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, pv, err := s.cfg.Directory.Resolve(ctx, id)
	if errors.Is(err, can.ErrNotFound) {
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not in the content address network", id)
	}
	if err != nil {
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "resolve %s: %v", id.Short(), err)
	}
	out := &wirepb.ResolveResponse{Pointer: pv}
	if p.Claim.State != canpb.ClaimState_CANCELLED {
		if _, cv, err := s.cfg.Directory.Contact(ctx, p.Server); err == nil {
			out.Contact = cv
		}
	}
	return &wirepb.Response{Body: &wirepb.Response_Resolve{Resolve: out}}, nil
}
