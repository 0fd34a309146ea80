package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can"
	"github.com/iop-go/iop/internal/can/canpb"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// ErrBadServer reports a server answer that fails verification: a wrong
// signature, a key that does not match the libp2p peer, or a forged record.
var ErrBadServer = errors.New("profile server answered with data that does not verify")

// Ping sends a ping and returns the server's clock.
func (c *Conn) Ping(ctx context.Context, payload []byte) (time.Time, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_Ping{Ping: &wirepb.PingRequest{Payload: payload}}})
	if err != nil {
		return time.Time{}, err
	}
	if !bytes.Equal(resp.GetPing().GetPayload(), payload) {
		return time.Time{}, fmt.Errorf("%w: ping payload not echoed", ErrBadServer)
	}
	return time.UnixMilli(resp.GetPing().GetClock()), nil
}

// Role is a server role and the libp2p protocol that serves it.
type Role struct {
	Role     string `json:"role"`
	Protocol string `json:"protocol"`
}

// ListRoles lists the server's roles.
func (c *Conn) ListRoles(ctx context.Context) ([]Role, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_ListRoles{ListRoles: &wirepb.ListRolesRequest{}}})
	if err != nil {
		return nil, err
	}
	var out []Role
	for _, r := range resp.GetListRoles().GetRoles() {
		out = append(out, Role{Role: r.Role, Protocol: r.ProtocolId})
	}
	return out, nil
}

// StartConversation starts a conversation as key's identity. It checks that
// the server proves the key of the libp2p peer it was dialled as.
func (c *Conn) StartConversation(ctx context.Context, key *identity.Key) error {
	cc := make([]byte, profileserver.ChallengeSize)
	if _, err := rand.Read(cc); err != nil {
		return err
	}
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_StartConversation{StartConversation: &wirepb.StartConversationRequest{
		SupportedVersions: [][]byte{profileserver.ProtocolVersion[:]},
		PublicKey:         key.Public(),
		ClientChallenge:   cc,
	}}})
	if err != nil {
		return fmt.Errorf("start conversation: %w", err)
	}
	r := resp.GetStartConversation()
	if !bytes.Equal(r.GetPublicKey(), c.serverKey) || !bytes.Equal(r.GetClientChallenge(), cc) ||
		len(r.GetChallenge()) != profileserver.ChallengeSize {
		return fmt.Errorf("start conversation: %w: server key or challenge mismatch", ErrBadServer)
	}
	if err := identity.Verify(c.serverKey, identity.DomainServerChallenge, cc, resp.Signature); err != nil {
		return fmt.Errorf("start conversation: %w: %v", ErrBadServer, err)
	}
	c.mu.Lock()
	c.key, c.challenge = key, r.Challenge
	c.mu.Unlock()
	return nil
}

func (c *Conn) conversation() (*identity.Key, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key == nil {
		return nil, nil, errors.New("no conversation: call StartConversation first")
	}
	return c.key, c.challenge, nil
}

func (c *Conn) proveKey(ctx context.Context, checkIn bool) error {
	key, ch, err := c.conversation()
	if err != nil {
		return err
	}
	sig := key.Sign(identity.DomainChallenge, wire.ChallengeMessage(ch, c.serverKey))
	req := &wirepb.Request{Signature: sig}
	if checkIn {
		req.Body = &wirepb.Request_CheckIn{CheckIn: &wirepb.CheckInRequest{Challenge: ch}}
	} else {
		req.Body = &wirepb.Request_VerifyIdentity{VerifyIdentity: &wirepb.VerifyIdentityRequest{Challenge: ch}}
	}
	_, err = c.Call(ctx, req)
	return err
}

// CheckIn checks the conversation's identity in: it becomes online, and any
// older connection of the same identity is dropped.
func (c *Conn) CheckIn(ctx context.Context) error {
	if err := c.proveKey(ctx, true); err != nil {
		return fmt.Errorf("check in: %w", err)
	}
	return nil
}

// VerifyIdentity proves the conversation's key without checking in.
func (c *Conn) VerifyIdentity(ctx context.Context) error {
	if err := c.proveKey(ctx, false); err != nil {
		return fmt.Errorf("verify identity: %w", err)
	}
	return nil
}

// Agreement is a hosting agreement: the contract signed by the identity and
// countersigned by the server.
type Agreement struct {
	Contract        []byte `json:"contract"`
	ClientSignature []byte `json:"client_signature"`
	ServerSignature []byte `json:"server_signature"`
}

// RegisterHosting asks the server to host the conversation's identity with
// the given identity type, which is fixed from then on.
func (c *Conn) RegisterHosting(ctx context.Context, identityType string) (*Agreement, error) {
	key, _, err := c.conversation()
	if err != nil {
		return nil, err
	}
	contract, err := proto.Marshal(&wirepb.HostingContract{
		IdentityPublicKey: key.Public(),
		ServerPublicKey:   c.serverKey,
		StartTime:         time.Now().UnixMilli(),
		IdentityType:      identityType,
	})
	if err != nil {
		return nil, err
	}
	sig := key.Sign(identity.DomainHostingContract, contract)
	resp, err := c.Call(ctx, &wirepb.Request{Signature: sig, Body: &wirepb.Request_RegisterHosting{
		RegisterHosting: &wirepb.RegisterHostingRequest{Contract: contract}}})
	if err != nil {
		return nil, fmt.Errorf("register hosting: %w", err)
	}
	if !bytes.Equal(resp.GetRegisterHosting().GetContract(), contract) {
		return nil, fmt.Errorf("register hosting: %w: contract changed", ErrBadServer)
	}
	if err := identity.Verify(c.serverKey, identity.DomainHostingContract, contract, resp.Signature); err != nil {
		return nil, fmt.Errorf("register hosting: %w: countersignature: %v", ErrBadServer, err)
	}
	return &Agreement{Contract: contract, ClientSignature: sig, ServerSignature: resp.Signature}, nil
}

// UpdateProfile publishes a signed profile with its images. An image may be
// nil when its hash is unchanged since the last update.
func (c *Conn) UpdateProfile(ctx context.Context, sp *graph.SignedProfile, image, thumbnail []byte, noPropagation bool) error {
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_UpdateProfile{UpdateProfile: &wirepb.UpdateProfileRequest{
		Profile: sp.Proto(), ProfileImage: image, ThumbnailImage: thumbnail, NoPropagation: noPropagation,
	}}})
	if err != nil {
		return fmt.Errorf("update profile: %w", err)
	}
	return nil
}

// CancelHosting ends the hosting agreement, optionally leaving a redirect
// to the identity's new server. The identity's final claim (moved to the
// new server, or cancelled) goes with it, so the server publishes that in
// place of its hosting pointer.
func (c *Conn) CancelHosting(ctx context.Context, redirect *identity.ID) error {
	key, _, err := c.conversation()
	if err != nil {
		return err
	}
	r := &wirepb.CancelHostingRequest{}
	claim := &canpb.IdentityClaim{Sequence: uint64(time.Now().UnixMilli())}
	if redirect != nil {
		r.RedirectToNewServer, r.NewServerId = true, redirect[:]
		claim.State, claim.ServerId = canpb.ClaimState_MOVED, redirect[:]
	} else {
		srv := c.ServerID()
		claim.State, claim.ServerId = canpb.ClaimState_CANCELLED, srv[:]
	}
	raw, sig, err := can.SignClaim(key, claim)
	if err != nil {
		return err
	}
	r.FinalClaim = raw
	if _, err := c.Call(ctx, &wirepb.Request{Signature: sig, Body: &wirepb.Request_CancelHosting{CancelHosting: r}}); err != nil {
		return fmt.Errorf("cancel hosting: %w", err)
	}
	return nil
}

// AddServices enables application services for the checked-in identity.
func (c *Conn) AddServices(ctx context.Context, names ...string) error {
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_AppServiceAdd{AppServiceAdd: &wirepb.ApplicationServiceAddRequest{ServiceNames: names}}})
	if err != nil {
		return fmt.Errorf("add services: %w", err)
	}
	return nil
}

// RemoveService disables an application service.
func (c *Conn) RemoveService(ctx context.Context, name string) error {
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_AppServiceRemove{AppServiceRemove: &wirepb.ApplicationServiceRemoveRequest{ServiceName: name}}})
	if err != nil {
		return fmt.Errorf("remove service: %w", err)
	}
	return nil
}

// GetOptions selects what GetProfile includes.
type GetOptions struct {
	Image, Thumbnail, Services bool
}

// ProfileInfo is what a server knows of an identity.
type ProfileInfo struct {
	ID           identity.ID
	Hosted       bool         // false when the identity cancelled hosting here
	TargetServer *identity.ID // where a cancelled identity moved, if known
	Online       bool
	Profile      *graph.SignedProfile // verified; nil when not hosted
	Image        []byte
	Thumbnail    []byte
	Services     []string
}

// GetProfile asks for an identity's profile and verifies it.
func (c *Conn) GetProfile(ctx context.Context, id identity.ID, opt GetOptions) (*ProfileInfo, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_GetProfile{GetProfile: &wirepb.GetProfileRequest{
		IdentityId: id[:], IncludeProfileImage: opt.Image, IncludeThumbnailImage: opt.Thumbnail, IncludeApplicationServices: opt.Services,
	}}})
	if err != nil {
		return nil, fmt.Errorf("get profile %s: %w", id, err)
	}
	r := resp.GetGetProfile()
	info := &ProfileInfo{ID: id, Hosted: r.IsHosted, Online: r.IsOnline, Services: r.ApplicationServices}
	if r.IsTargetServerKnown {
		t, err := identity.IDFromBytes(r.TargetServerId)
		if err != nil {
			return nil, fmt.Errorf("get profile %s: %w: target server id", id, ErrBadServer)
		}
		info.TargetServer = &t
	}
	if !r.IsHosted {
		return info, nil
	}
	sp, err := graph.OpenProto(r.SignedProfile, nil)
	if err != nil || sp.ID() != id {
		return nil, fmt.Errorf("get profile %s: %w: %v", id, ErrBadServer, err)
	}
	info.Profile = sp
	if len(r.ProfileImage) > 0 {
		if err := graph.CheckImage(graph.ProfileImage, r.ProfileImage, sp.Profile.ImageHash); err != nil {
			return nil, fmt.Errorf("get profile %s: %w: image: %v", id, ErrBadServer, err)
		}
		info.Image = r.ProfileImage
	}
	if len(r.ThumbnailImage) > 0 {
		if err := graph.CheckImage(graph.ThumbnailImage, r.ThumbnailImage, sp.Profile.ThumbnailHash); err != nil {
			return nil, fmt.Errorf("get profile %s: %w: thumbnail: %v", id, ErrBadServer, err)
		}
		info.Thumbnail = r.ThumbnailImage
	}
	return info, nil
}

// Stats returns the number of hosted identities per type.
func (c *Conn) Stats(ctx context.Context) (map[string]int, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_Stats{Stats: &wirepb.ProfileStatsRequest{}}})
	if err != nil {
		return nil, fmt.Errorf("profile stats: %w", err)
	}
	out := make(map[string]int)
	for _, s := range resp.GetStats().GetStats() {
		out[s.IdentityType] = int(s.Count)
	}
	return out, nil
}

// NodeStatus returns the node's status document (JSON), the same as its
// HTTP API's /api/status.
func (c *Conn) NodeStatus(ctx context.Context) ([]byte, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_NodeStatus{NodeStatus: &wirepb.NodeStatusRequest{}}})
	if err != nil {
		return nil, fmt.Errorf("node status: %w", err)
	}
	return resp.GetNodeStatus().GetJson(), nil
}

// TurnCredentials are short-lived credentials of a node's STUN/TURN server.
type TurnCredentials struct {
	URLs     []string  `json:"urls"`
	Username string    `json:"username"`
	Password string    `json:"password"`
	Realm    string    `json:"realm"`
	Expires  time.Time `json:"expires"`
}

// TurnCredentials asks the node for TURN credentials for the conversation's
// identity, which must have proven its key (VerifyIdentity or CheckIn).
func (c *Conn) TurnCredentials(ctx context.Context) (*TurnCredentials, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_TurnCredentials{TurnCredentials: &wirepb.TurnCredentialsRequest{}}})
	if err != nil {
		return nil, fmt.Errorf("TURN credentials: %w", err)
	}
	r := resp.GetTurnCredentials()
	return &TurnCredentials{URLs: r.Urls, Username: r.Username, Password: r.Password, Realm: r.Realm, Expires: time.UnixMilli(r.Expires)}, nil
}
