package profileserver

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can/canpb"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// MaxContractSkew is how far in the past a hosting contract may start.
const MaxContractSkew = time.Hour

func (ss *session) registerHosting(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	raw := req.GetRegisterHosting().GetContract()
	var c wirepb.HostingContract
	if err := proto.Unmarshal(raw, &c); err != nil || len(raw) == 0 {
		return nil, wire.Invalid("contract")
	}
	if !bytes.Equal(c.IdentityPublicKey, ss.clientKey) {
		return nil, wire.Invalid("contract.identityPublicKey")
	}
	if !bytes.Equal(c.ServerPublicKey, s.cfg.Key.Public()) {
		return nil, wire.Invalid("contract.serverPublicKey")
	}
	now := s.cfg.Now()
	if time.UnixMilli(c.StartTime).Before(now.Add(-MaxContractSkew)) {
		return nil, wire.Invalid("contract.startTime")
	}
	if err := graph.ValidateType(c.IdentityType); err != nil {
		return nil, wire.Invalid("contract.identityType")
	}
	if err := identity.Verify(ss.clientKey, identity.DomainHostingContract, raw, req.Signature); err != nil {
		return nil, wire.Errorf(wirepb.Status_INVALID_SIGNATURE, "contract signature does not verify")
	}
	rec := &wirepb.HostedIdentity{
		PublicKey:       ss.clientKey,
		Type:            c.IdentityType,
		Contract:        raw,
		ClientSignature: req.Signature,
		ServerSignature: s.cfg.Key.Sign(identity.DomainHostingContract, raw),
		RegisteredAt:    wire.Now(now),
	}

	s.mu.Lock()
	old := s.ids[ss.clientID]
	switch {
	case old != nil && old.active():
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_ALREADY_EXISTS, "identity %s is already hosted here", ss.clientID)
	case s.nactive+s.registering >= s.cfg.MaxHosted:
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_QUOTA_EXCEEDED, "this server hosts its maximum of %d identities", s.cfg.MaxHosted)
	}
	if err := s.beginLocked(ss.clientID); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.registering++
	s.mu.Unlock()
	// Registering again after a cancel starts afresh: the old profile and
	// images go.
	err := s.store.put(ss.clientID, rec, imageUpdate{graph.ProfileImage, nil}, imageUpdate{graph.ThumbnailImage, nil})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registering--
	s.endLocked(ss.clientID)
	if err != nil {
		return nil, fmt.Errorf("store registration of %s: %w", ss.clientID, err)
	}
	s.ids[ss.clientID] = &hosted{rec: rec}
	s.nactive++
	s.log.Info("hosting registered", "identity", ss.clientID.Short(), "type", c.IdentityType)
	return &wirepb.Response{
		Signature: rec.ServerSignature,
		Body:      &wirepb.Response_RegisterHosting{RegisterHosting: &wirepb.RegisterHostingResponse{Contract: raw}},
	}, nil
}

func (ss *session) cancelHosting(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetCancelHosting()
	var redirect []byte
	if r.RedirectToNewServer {
		if _, err := identity.IDFromBytes(r.NewServerId); err != nil || bytes.Equal(r.NewServerId, s.id[:]) {
			return nil, wire.Invalid("newServerId")
		}
		redirect = r.NewServerId
	} else if len(r.NewServerId) != 0 {
		return nil, wire.Invalid("newServerId")
	}
	s.mu.Lock()
	h := s.ids[ss.clientID]
	if h == nil || !h.active() {
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", ss.clientID)
	}
	if h.online != ss {
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_UNAUTHORIZED, "not checked in: a newer check-in replaced this connection")
	}
	var final []byte
	if len(r.FinalClaim) > 0 {
		c, err := checkClaim(ss, h, r.FinalClaim, req.Signature, "finalClaim")
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		target := identity.ID(c.ServerId)
		switch {
		case c.State == canpb.ClaimState_MOVED && redirect != nil && bytes.Equal(target[:], redirect):
		case c.State == canpb.ClaimState_CANCELLED && target == s.id:
		default:
			s.mu.Unlock()
			return nil, wire.Invalid("finalClaim.serverId")
		}
		final = r.FinalClaim
	}
	if err := s.beginLocked(ss.clientID); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	rec := proto.Clone(h.rec).(*wirepb.HostedIdentity)
	s.mu.Unlock()
	rec.Cancelled = true
	rec.CancelledAt = wire.Now(s.cfg.Now())
	rec.RedirectServerId = redirect
	rec.Profile = nil
	if final != nil {
		rec.Claim, rec.ClaimSignature = final, req.Signature
	}
	err := s.store.put(ss.clientID, rec, imageUpdate{graph.ProfileImage, nil}, imageUpdate{graph.ThumbnailImage, nil})
	if err == nil {
		// Its public edges and pending proposals end with the hosting. If
		// this fails they stay hidden (stored under the old agreement) and
		// go with the identity's next relation write.
		if derr := s.store.deleteRelations(ss.clientID); derr != nil {
			s.log.Warn("delete relations of a cancelled identity", "identity", ss.clientID.Short(), "err", derr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(ss.clientID)
	if err != nil {
		return nil, fmt.Errorf("store cancellation of %s: %w", ss.clientID, err)
	}
	if h.profile != nil {
		s.appendLocked(logEntry{id: ss.clientID})
	}
	h.rec, h.profile, h.online = rec, nil, nil
	s.nactive--
	if final != nil {
		s.publish(final, req.Signature)
	} else if s.cfg.Directory != nil {
		// The hosting pointer is no longer republished and expires.
		s.cfg.Directory.Forget(ss.clientID)
	}
	// Its pages are no longer republished and expire: a publication in
	// flight runs once more, finds the identity gone and forgets them.
	s.relationsChangedLocked(ss.clientID)
	s.index.Delete(ss.clientID)
	ss.services = nil
	ss.state = stateVerified
	s.log.Info("hosting cancelled", "identity", ss.clientID.Short(), "redirect", len(redirect) > 0)
	return &wirepb.Response{Body: &wirepb.Response_CancelHosting{CancelHosting: &wirepb.CancelHostingResponse{}}}, nil
}

// profileField maps a graph.FieldError to the protocol's details.
func profileField(err error) error {
	var fe *graph.FieldError
	if errors.As(err, &fe) {
		if fe.Field == "profile" {
			return wire.Invalid("profile")
		}
		return wire.Invalid("profile." + fe.Field)
	}
	if errors.Is(err, graph.ErrInvalidSignature) {
		return wire.Errorf(wirepb.Status_INVALID_SIGNATURE, "profile signature does not verify")
	}
	return err
}

// imageChange decides what an update does to one image slot: keep it (nil,
// false), or store new bytes or delete (data, true).
func imageChange(kind graph.ImageKind, field string, newHash, oldHash, img []byte) ([]byte, bool, error) {
	if len(newHash) == 0 {
		if len(img) != 0 {
			return nil, false, wire.Invalid(field)
		}
		return nil, len(oldHash) != 0, nil
	}
	if len(img) == 0 {
		if bytes.Equal(newHash, oldHash) {
			return nil, false, nil
		}
		return nil, false, wire.Invalid(field)
	}
	if err := graph.CheckImage(kind, img, newHash); err != nil {
		return nil, false, wire.Invalid(field)
	}
	return img, true, nil
}

func (ss *session) updateProfile(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetUpdateProfile()
	sp, err := graph.OpenProto(r.Profile, ss.clientKey)
	if err != nil {
		return nil, profileField(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock() // dropped around the durable write below
	h := s.ids[ss.clientID]
	if h == nil || !h.active() || h.online != ss {
		return nil, wire.Errorf(wirepb.Status_UNAUTHORIZED, "not checked in")
	}
	if h.updates == nil {
		h.updates = rate.NewLimiter(s.cfg.UpdateRate, s.cfg.UpdateBurst)
	}
	if !h.updates.Allow() {
		return nil, wire.Errorf(wirepb.Status_BUSY, "profile update rate limit of %v/s reached, retry later", s.cfg.UpdateRate)
	}
	if sp.Profile.Type != h.rec.Type {
		return nil, wire.Invalid("profile.type")
	}
	var oldImage, oldThumb []byte
	if h.profile != nil {
		if sp.Profile.Sequence <= h.profile.Profile.Sequence {
			return nil, wire.Invalid("profile.sequence")
		}
		oldImage, oldThumb = h.profile.Profile.ImageHash, h.profile.Profile.ThumbnailHash
	} else if r.NoPropagation {
		return nil, wire.Invalid("noPropagation")
	}
	var changes []imageUpdate
	img, change, err := imageChange(graph.ProfileImage, "profileImage", sp.Profile.ImageHash, oldImage, r.ProfileImage)
	if err != nil {
		return nil, err
	}
	if change {
		changes = append(changes, imageUpdate{graph.ProfileImage, img})
	}
	thumb, change, err := imageChange(graph.ThumbnailImage, "thumbnailImage", sp.Profile.ThumbnailHash, oldThumb, r.ThumbnailImage)
	if err != nil {
		return nil, err
	}
	if change {
		changes = append(changes, imageUpdate{graph.ThumbnailImage, thumb})
	}
	if err := s.beginLocked(ss.clientID); err != nil {
		return nil, err
	}
	rec := proto.Clone(h.rec).(*wirepb.HostedIdentity)
	rec.Profile = sp.Proto()
	s.mu.Unlock()
	err = s.store.put(ss.clientID, rec, changes...)
	s.mu.Lock()
	s.endLocked(ss.clientID)
	if err != nil {
		return nil, fmt.Errorf("store profile of %s: %w", ss.clientID, err)
	}
	if !h.active() {
		// Unreachable while begin/end serialize writes of one identity;
		// kept so a future change cannot resurrect a cancelled identity.
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is no longer hosted here", ss.clientID)
	}
	h.rec, h.profile = rec, sp
	s.index.Put(indexEntry(sp))
	if !r.NoPropagation {
		s.appendLocked(logEntry{id: ss.clientID, profile: sp})
	}
	return &wirepb.Response{Body: &wirepb.Response_UpdateProfile{UpdateProfile: &wirepb.UpdateProfileResponse{}}}, nil
}

func validServiceName(n string) bool {
	return n != "" && len(n) <= MaxServiceNameLen && utf8.ValidString(n)
}

func (ss *session) addServices(req *wirepb.Request) (*wirepb.Response, error) {
	names := req.GetAppServiceAdd().GetServiceNames()
	if len(names) == 0 {
		return nil, wire.Invalid("serviceNames")
	}
	for i, n := range names {
		if !validServiceName(n) {
			return nil, wire.Invalid(fmt.Sprintf("serviceNames[%d]", i))
		}
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	merged := append([]string(nil), ss.services...)
	for _, n := range names {
		if !contains(merged, n) {
			merged = append(merged, n)
		}
	}
	if len(merged) > MaxServices {
		return nil, wire.Errorf(wirepb.Status_QUOTA_EXCEEDED, "at most %d application services per identity", MaxServices)
	}
	ss.services = merged
	return &wirepb.Response{Body: &wirepb.Response_AppServiceAdd{AppServiceAdd: &wirepb.ApplicationServiceAddResponse{}}}, nil
}

func (ss *session) removeService(req *wirepb.Request) (*wirepb.Response, error) {
	name := req.GetAppServiceRemove().GetServiceName()
	if !validServiceName(name) {
		return nil, wire.Invalid("serviceName")
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range ss.services {
		if n == name {
			ss.services = append(ss.services[:i:i], ss.services[i+1:]...)
			return &wirepb.Response{Body: &wirepb.Response_AppServiceRemove{AppServiceRemove: &wirepb.ApplicationServiceRemoveResponse{}}}, nil
		}
	}
	return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "service %q is not enabled", name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// beginLocked marks a write to id in progress; a second concurrent write to
// the same identity answers BUSY instead of racing the first.
func (s *Server) beginLocked(id identity.ID) error {
	if s.writing[id] {
		return wire.Errorf(wirepb.Status_BUSY, "another change to identity %s is in progress, retry", id.Short())
	}
	s.writing[id] = true
	return nil
}

func (s *Server) endLocked(id identity.ID) { delete(s.writing, id) }
