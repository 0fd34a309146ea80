package profileserver

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Call limits (2017 values where the 2017 protocol had them).
const (
	TokenSize       = 16        // bytes of a call token
	MaxRelayMessage = 64 << 10  // bytes of one relayed message
	MaxUnacked      = 20        // unacknowledged relayed messages per side
	maxCallReason   = 256       // bytes of a CloseCall reason
	relayBurst      = 256 << 10 // bytes a side may send at once before RelayRate applies
)

// token is a call token: 128 random bits naming one side of one call.
type token [TokenSize]byte

// call is one application-service call. Its fields are guarded by
// Server.callMu.
type call struct {
	service string
	callee  identity.ID
	sides   [2]*callSide // caller, callee
	joined  bool         // both sides joined; relaying
	closed  bool
	timer   *time.Timer // answer/join deadline
}

// callSide is one side of a call.
type callSide struct {
	c       *call
	idx     int // 0 caller, 1 callee
	tok     token
	ss      *session // the side's relay stream once joined
	initID  uint32   // request id of the side's unanswered init message
	unacked int
	limit   *rate.Limiter
}

func (cs *callSide) other() *callSide { return cs.c.sides[1-cs.idx] }

func newToken() token {
	var t token
	rand.Read(t[:])
	return t
}

// callService handles CallServiceRequest: it notifies the callee and waits
// for its answer.
func (ss *session) callService(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetCallService()
	callee, err := identity.IDFromBytes(r.IdentityId)
	if err != nil {
		return nil, wire.Invalid("identityNetworkId")
	}
	if !validServiceName(r.ServiceName) {
		return nil, wire.Invalid("serviceName")
	}
	s.mu.Lock()
	h := s.ids[callee]
	var target *session
	switch {
	case h == nil || !h.active():
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", callee)
	case h.profile == nil:
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_UNINITIALIZED, "identity %s has no profile yet", callee)
	case h.online == nil:
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "identity %s is not online", callee)
	case !contains(h.online.services, r.ServiceName):
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "identity %s has not enabled service %q", callee, r.ServiceName)
	}
	target = h.online
	s.mu.Unlock()

	c := &call{service: r.ServiceName, callee: callee}
	s.callMu.Lock()
	if s.pendingCalls[callee] >= s.cfg.MaxCallsPerIdentity {
		s.callMu.Unlock()
		return nil, wire.Errorf(wirepb.Status_BUSY, "identity %s has %d calls being set up, retry later", callee, s.cfg.MaxCallsPerIdentity)
	}
	s.pendingCalls[callee]++
	for i := range c.sides {
		cs := &callSide{c: c, idx: i, limit: rate.NewLimiter(s.cfg.RelayRate, relayBurst)}
		for {
			cs.tok = newToken()
			if _, dup := s.calls[cs.tok]; !dup {
				break
			}
		}
		c.sides[i] = cs
		s.calls[cs.tok] = cs
	}
	// The overall guard: the callee answers, then the first side joins.
	c.timer = time.AfterFunc(s.cfg.CallAnswerTimeout+s.cfg.CallJoinTimeout, func() {
		s.endCall(c, nil, "call not joined in time")
	})
	s.callMu.Unlock()

	answered := make(chan *wirepb.Response, 1)
	err = target.request(&wirepb.Request{Body: &wirepb.Request_IncomingCall{IncomingCall: &wirepb.IncomingCallRequest{
		CallerPublicKey: ss.clientKey,
		ServiceName:     r.ServiceName,
		CalleeToken:     c.sides[1].tok[:],
	}}}, func(resp *wirepb.Response) { answered <- resp })
	var resp *wirepb.Response
	if err == nil {
		timer := time.NewTimer(s.cfg.CallAnswerTimeout)
		select {
		case resp = <-answered:
		case <-timer.C:
		case <-s.done:
		}
		timer.Stop()
	}
	s.callMu.Lock()
	s.pendingCalls[callee]--
	if s.pendingCalls[callee] <= 0 {
		delete(s.pendingCalls, callee)
	}
	s.callMu.Unlock()
	switch {
	case resp == nil:
		s.endCall(c, nil, "callee did not answer")
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "identity %s did not answer the call within %v", callee, s.cfg.CallAnswerTimeout)
	case resp.Status == wirepb.Status_REJECTED:
		s.endCall(c, nil, "callee rejected the call")
		return nil, wire.Errorf(wirepb.Status_REJECTED, "identity %s rejected the call", callee)
	case resp.Status != wirepb.Status_OK:
		s.endCall(c, nil, "callee refused the call")
		return nil, wire.Errorf(wirepb.Status_REJECTED, "identity %s refused the call: %s %s", callee, resp.Status, resp.Details)
	}
	s.callMu.Lock()
	if c.closed {
		s.callMu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "the call to %s ended before it was set up", callee)
	}
	if c.sides[1].ss == nil {
		// The first join is due within the join timeout from now.
		c.timer.Reset(s.cfg.CallJoinTimeout)
	}
	s.callMu.Unlock()
	s.log.Debug("call accepted", "caller", ss.clientID.Short(), "callee", callee.Short(), "service", r.ServiceName)
	return &wirepb.Response{Body: &wirepb.Response_CallService{CallService: &wirepb.CallServiceResponse{CallerToken: c.sides[0].tok[:]}}}, nil
}

// relaySend handles RelaySendRequest: the init message that joins a call
// on a fresh stream, then every relayed message.
func (ss *session) relaySend(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetRelaySend()
	if len(r.Message) > MaxRelayMessage {
		return nil, wire.Invalid("message")
	}
	if len(r.Token) != TokenSize {
		return nil, wire.Invalid("token")
	}
	var tok token
	copy(tok[:], r.Token)
	if ss.relay == nil {
		return ss.joinCall(tok)
	}
	cs := ss.relay
	s.callMu.Lock()
	c := cs.c
	switch {
	case c.closed:
		s.callMu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "the call has ended")
	case subtle.ConstantTimeCompare(tok[:], cs.tok[:]) != 1:
		s.callMu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "this stream belongs to another call token")
	case !c.joined:
		s.callMu.Unlock()
		s.endCall(c, cs, "a message was sent before the call was joined by both sides")
		return nil, wire.Errorf(wirepb.Status_BAD_CONVERSATION_STATUS, "message sent before the init message was answered; the call is closed")
	case cs.unacked >= s.cfg.MaxUnacked:
		s.callMu.Unlock()
		s.endCall(c, cs, fmt.Sprintf("more than %d unacknowledged messages", s.cfg.MaxUnacked))
		return nil, wire.Errorf(wirepb.Status_QUOTA_EXCEEDED, "more than %d unacknowledged messages; the call is closed", s.cfg.MaxUnacked)
	}
	cs.unacked++
	peer := cs.other().ss
	s.callMu.Unlock()

	// The relay's bandwidth cap: reading slower is the backpressure.
	if n := len(r.Message); n > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		err := cs.limit.WaitN(ctx, min(n, relayBurst))
		cancel()
		if err != nil {
			s.endCall(c, nil, "relay bandwidth exceeded")
			return nil, wire.Errorf(wirepb.Status_BUSY, "relay bandwidth of %v bytes/s exceeded; the call is closed", s.cfg.RelayRate)
		}
	}
	id := ss.curID
	tokCopy := cs.tok
	err := peer.request(&wirepb.Request{Body: &wirepb.Request_RelayDeliver{RelayDeliver: &wirepb.RelayDeliverRequest{Message: r.Message}}},
		func(resp *wirepb.Response) {
			s.callMu.Lock()
			cs.unacked--
			s.callMu.Unlock()
			if resp == nil {
				return // the receiver left; endCall answers nothing more
			}
			out := &wirepb.Response{Body: &wirepb.Response_RelaySend{RelaySend: &wirepb.RelaySendResponse{Token: tokCopy[:]}}}
			if resp.Status != wirepb.Status_OK {
				out = &wirepb.Response{Status: resp.Status, Details: "the receiver refused the message: " + resp.Details}
			}
			if err := ss.write(id, out); err != nil {
				ss.kick()
			}
		})
	if err != nil {
		s.endCall(c, nil, "the other side's stream failed")
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "the other side of the call is gone")
	}
	return nil, nil // answered when the receiver acknowledges
}

// joinCall makes ss the relay stream of the call side named by tok.
func (ss *session) joinCall(tok token) (*wirepb.Response, error) {
	s := ss.s
	if ss.state != stateNone {
		return nil, wire.Errorf(wirepb.Status_BAD_CONVERSATION_STATUS, "join a call on a new stream, not on a conversation")
	}
	s.callMu.Lock()
	cs := s.calls[tok]
	switch {
	case cs == nil || cs.c.closed:
		s.callMu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "unknown or expired call token")
	case cs.ss != nil:
		s.callMu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "call token already used")
	}
	c := cs.c
	cs.ss = ss
	cs.initID = ss.curID
	ss.relay = cs
	other := cs.other()
	if other.ss == nil {
		c.timer.Reset(s.cfg.CallJoinTimeout)
		s.callMu.Unlock()
		return nil, nil // answered when the other side joins
	}
	c.joined = true
	c.timer.Stop()
	otherID, otherTok := other.initID, other.tok
	s.callMu.Unlock()
	if err := other.ss.write(otherID, &wirepb.Response{Body: &wirepb.Response_RelaySend{RelaySend: &wirepb.RelaySendResponse{Token: otherTok[:]}}}); err != nil {
		s.endCall(c, nil, "the other side's stream failed")
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "the other side of the call is gone")
	}
	s.log.Debug("call joined", "service", c.service, "callee", c.callee.Short())
	return &wirepb.Response{Body: &wirepb.Response_RelaySend{RelaySend: &wirepb.RelaySendResponse{Token: tok[:]}}}, nil
}

// closeCall handles CloseCallRequest from a side on its relay stream.
func (ss *session) closeCall(req *wirepb.Request) (*wirepb.Response, error) {
	if ss.relay == nil {
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "this stream has joined no call")
	}
	reason := req.GetCloseCall().GetReason()
	if len(reason) > maxCallReason {
		reason = reason[:maxCallReason]
	}
	if reason == "" {
		reason = "closed by the other side"
	}
	ss.s.endCall(ss.relay.c, ss.relay, reason)
	return &wirepb.Response{Body: &wirepb.Response_CloseCall{CloseCall: &wirepb.CloseCallResponse{}}}, nil
}

// endCall closes c once: its tokens stop working, unanswered init
// messages get an error, and every joined side except by is told why and
// has its relay stream closed. by is the side that ended the call (it gets
// its answer instead of a CloseCall), or nil when the server ends it.
func (s *Server) endCall(c *call, by *callSide, reason string) {
	s.callMu.Lock()
	if c.closed {
		s.callMu.Unlock()
		return
	}
	c.closed = true
	c.timer.Stop()
	type notify struct {
		ss     *session
		initID uint32
		init   bool
		tok    token
	}
	var notices []notify
	for _, cs := range c.sides {
		delete(s.calls, cs.tok)
		if cs.ss == nil {
			continue
		}
		notices = append(notices, notify{ss: cs.ss, initID: cs.initID, init: !c.joined, tok: cs.tok})
	}
	s.callMu.Unlock()
	s.log.Debug("call ended", "service", c.service, "callee", c.callee.Short(), "reason", reason)
	for _, n := range notices {
		if n.init {
			n.ss.write(n.initID, errorResponse(wire.Errorf(wirepb.Status_NOT_AVAILABLE, "the call ended: %s", reason)))
		} else if by == nil || n.ss != by.ss {
			n.ss.request(&wirepb.Request{Body: &wirepb.Request_CloseCall{CloseCall: &wirepb.CloseCallRequest{Token: n.tok[:], Reason: reason}}}, nil)
		}
		n.ss.kick()
	}
}
