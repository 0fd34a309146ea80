package profileserver

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func (ss *session) ping(req *wirepb.Request) (*wirepb.Response, error) {
	p := req.GetPing().GetPayload()
	if len(p) > MaxPingPayload {
		return nil, wire.Invalid("payload")
	}
	return &wirepb.Response{Body: &wirepb.Response_Ping{Ping: &wirepb.PingResponse{
		Payload: p, Clock: wire.Now(ss.s.cfg.Now()),
	}}}, nil
}

func (ss *session) listRoles(*wirepb.Request) (*wirepb.Response, error) {
	return &wirepb.Response{Body: &wirepb.Response_ListRoles{ListRoles: &wirepb.ListRolesResponse{
		Roles: []*wirepb.ServerRole{
			{Role: roleClient.String(), ProtocolId: string(ProtocolClient)},
			{Role: roleNeighbor.String(), ProtocolId: string(ProtocolNeighbor)},
		},
	}}}, nil
}

func (ss *session) startConversation(req *wirepb.Request) (*wirepb.Response, error) {
	r := req.GetStartConversation()
	supported := false
	for i, v := range r.SupportedVersions {
		if len(v) != 3 || (v[0] == 0 && v[1] == 0 && v[2] == 0) {
			return nil, wire.Invalid(fmt.Sprintf("supportedVersions[%d]", i))
		}
		if v[0] == ProtocolVersion[0] {
			supported = true
		}
	}
	if len(r.SupportedVersions) == 0 {
		return nil, wire.Invalid("supportedVersions")
	}
	if !supported {
		return nil, wire.Errorf(wirepb.Status_UNSUPPORTED, "no supported version: this server speaks %d.x", ProtocolVersion[0])
	}
	if len(r.PublicKey) != ed25519.PublicKeySize {
		return nil, wire.Invalid("publicKey")
	}
	if len(r.ClientChallenge) != ChallengeSize {
		return nil, wire.Invalid("clientChallenge")
	}
	ss.challenge = make([]byte, ChallengeSize)
	if _, err := rand.Read(ss.challenge); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	ss.clientKey = append(ed25519.PublicKey(nil), r.PublicKey...)
	ss.clientID = identity.IDFromPublicKey(ss.clientKey)
	ss.state = stateStarted
	return &wirepb.Response{
		Signature: ss.s.cfg.Key.Sign(identity.DomainServerChallenge, r.ClientChallenge),
		Body: &wirepb.Response_StartConversation{StartConversation: &wirepb.StartConversationResponse{
			Version:         ProtocolVersion[:],
			PublicKey:       ss.s.cfg.Key.Public(),
			Challenge:       ss.challenge,
			ClientChallenge: r.ClientChallenge,
		}},
	}, nil
}

// proveKey checks a challenge signature of the conversation's client key.
func (ss *session) proveKey(challenge, sig []byte) error {
	if !bytes.Equal(challenge, ss.challenge) {
		return wire.Invalid("challenge")
	}
	msg := wire.ChallengeMessage(challenge, ss.s.cfg.Key.Public())
	if err := identity.Verify(ss.clientKey, identity.DomainChallenge, msg, sig); err != nil {
		return wire.Errorf(wirepb.Status_INVALID_SIGNATURE, "challenge signature does not verify with the conversation's public key")
	}
	return nil
}

func (ss *session) verifyIdentity(req *wirepb.Request) (*wirepb.Response, error) {
	if err := ss.proveKey(req.GetVerifyIdentity().GetChallenge(), req.Signature); err != nil {
		return nil, err
	}
	ss.state = stateVerified
	return &wirepb.Response{Body: &wirepb.Response_VerifyIdentity{VerifyIdentity: &wirepb.VerifyIdentityResponse{}}}, nil
}

func (ss *session) checkIn(req *wirepb.Request) (*wirepb.Response, error) {
	if err := ss.proveKey(req.GetCheckIn().GetChallenge(), req.Signature); err != nil {
		return nil, err
	}
	s := ss.s
	s.mu.Lock()
	h := s.ids[ss.clientID]
	if h == nil || !h.active() {
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here: register hosting first", ss.clientID)
	}
	old := h.online
	h.online = ss
	ss.services = nil
	s.mu.Unlock()
	if old != nil {
		// One connection per identity: the newest check-in wins.
		s.log.Debug("check-in replaces an older session", "identity", ss.clientID.Short())
		old.stream.Reset()
	}
	ss.state = stateAuthenticated
	return &wirepb.Response{Body: &wirepb.Response_CheckIn{CheckIn: &wirepb.CheckInResponse{}}}, nil
}

func (ss *session) nodeStatus(*wirepb.Request) (*wirepb.Response, error) {
	if ss.s.cfg.NodeStatus == nil {
		return nil, wire.Errorf(wirepb.Status_UNSUPPORTED, "this server does not report node status")
	}
	doc, err := ss.s.cfg.NodeStatus()
	if err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_NodeStatus{NodeStatus: &wirepb.NodeStatusResponse{Json: doc}}}, nil
}

func (ss *session) turnCredentials(*wirepb.Request) (*wirepb.Response, error) {
	if ss.s.cfg.TurnGrant == nil {
		return nil, wire.Errorf(wirepb.Status_UNSUPPORTED, "this node runs no TURN server")
	}
	return &wirepb.Response{Body: &wirepb.Response_TurnCredentials{TurnCredentials: ss.s.cfg.TurnGrant(ss.clientID)}}, nil
}
