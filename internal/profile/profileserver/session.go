package profileserver

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// role is the server role a stream was opened for.
type role int

const (
	roleClient role = 1 << iota
	roleNeighbor
)

func (r role) String() string {
	if r == roleNeighbor {
		return "neighbor"
	}
	return "client"
}

// convState is the conversation state of a session.
type convState int

const (
	stateNone convState = iota
	stateStarted
	stateVerified
	stateAuthenticated
)

// session is one protocol stream. Its fields are owned by the goroutine that
// serves the stream, except where noted.
type session struct {
	s       *Server
	stream  network.Stream
	role    role
	peer    peer.ID
	limiter *rate.Limiter

	state     convState
	clientKey ed25519.PublicKey
	clientID  identity.ID
	challenge []byte
	cache     *searchCache

	services []string // guarded by s.mu; set while checked in

	curID uint32    // id of the request being handled (loop goroutine)
	relay *callSide // the call side this stream joined (set by the loop goroutine, read under s.callMu)

	wmu sync.Mutex // serializes writes: calls write from other sessions' goroutines

	pmu     sync.Mutex // guards the fields below
	nextOut uint32     // id of the server's last request on this stream
	waiting map[uint32]func(*wirepb.Response)
	ended   bool

	closing atomic.Bool // set by kick: end the stream after the current answer
}

// serveStream runs a session on st until the peer leaves, misbehaves or
// idles out.
func (s *Server) serveStream(st network.Stream, r role) {
	p := st.Conn().RemotePeer()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.Reset()
		return
	}
	if s.peerCount[p] >= s.cfg.MaxStreamsPerPeer {
		s.mu.Unlock()
		ss := &session{s: s, stream: st}
		ss.writeBusy("too many streams from this peer (limit %d)", s.cfg.MaxStreamsPerPeer)
		st.Close()
		return
	}
	ss := &session{s: s, stream: st, role: r, peer: p, limiter: s.peerLimiterLocked(p)}
	s.peerCount[p]++
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	defer s.wg.Done()
	s.endSession(ss, ss.loop())
	ss.endRequests()
	if ss.relay != nil {
		s.endCall(ss.relay.c, ss.relay, "the other side left the call")
	}
}

// endSession forgets a finished session, closing its stream (orderly) or
// resetting it.
func (s *Server) endSession(ss *session, orderly bool) {
	if orderly {
		ss.stream.Close()
	} else {
		ss.stream.Reset()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, ss)
	if s.peerCount[ss.peer]--; s.peerCount[ss.peer] <= 0 {
		delete(s.peerCount, ss.peer)
		// A limiter is forgotten only when it is full: a fresh one would be
		// identical, so closing and reopening streams does not reset it.
		if l := s.peerLimits[ss.peer]; l != nil && l.Tokens() >= float64(s.cfg.PeerBurst) {
			delete(s.peerLimits, ss.peer)
		}
	}
	if ss.state == stateAuthenticated {
		if h := s.ids[ss.clientID]; h != nil && h.online == ss {
			h.online = nil
		}
	}
}

func (ss *session) idleTimeout() time.Duration {
	if ss.role == roleNeighbor {
		return ss.s.cfg.NeighborIdleTimeout
	}
	return ss.s.cfg.ClientIdleTimeout
}

// loop serves requests until the stream ends. It reports whether the end
// is orderly (the peer finished, or a final violation answer was written),
// in which case the stream is closed so the last answer reaches the peer,
// rather than reset.
func (ss *session) loop() (orderly bool) {
	log := ss.s.log.With("peer", ss.peer, "role", ss.role)
	for {
		// The deadline is set before closing is read, and kick sets closing
		// before it moves the deadline: a kick is never missed.
		ss.stream.SetReadDeadline(time.Now().Add(ss.idleTimeout()))
		if ss.closing.Load() {
			return true
		}
		body, err := wire.ReadFrame(ss.stream)
		if err != nil {
			switch {
			case ss.closing.Load():
				return true
			case errors.Is(err, io.EOF):
				return true
			case errors.Is(err, wire.ErrFrameTooLarge):
				return ss.writeViolation(0, err.Error())
			case errors.Is(err, os.ErrDeadlineExceeded):
				log.Debug("idle stream closed", "idle", ss.idleTimeout())
			default:
				log.Debug("stream read", "err", err)
			}
			return false
		}
		msg, err := wire.DecodeMessage(body)
		if err != nil {
			return ss.writeViolation(0, err.Error())
		}
		if r := msg.GetResponse(); r != nil {
			if !ss.answered(msg.Id, r) {
				return ss.writeViolation(msg.Id, "unsolicited response")
			}
			continue
		}
		req := msg.GetRequest()
		if req == nil {
			return ss.writeViolation(msg.Id, "message is neither a request nor a response")
		}
		ss.curID = msg.Id
		var resp *wirepb.Response
		if ss.relay != nil {
			// A joined call's traffic is bounded by its window and its
			// bandwidth cap, not by the request rate.
			resp = ss.handle(req)
		} else if !ss.limiter.Allow() {
			resp = errorResponse(wire.Errorf(wirepb.Status_BUSY,
				"rate limit of %v requests/s per peer reached, retry later", ss.s.cfg.PeerRate))
		} else {
			resp = ss.handle(req)
		}
		if resp == nil {
			continue // answered later (calls)
		}
		if err := ss.write(msg.Id, resp); err != nil {
			log.Debug("stream write", "err", err)
			return false
		}
		if resp.Status == wirepb.Status_PROTOCOL_VIOLATION {
			return true
		}
	}
}

func errorResponse(err error) *wirepb.Response {
	var se *wire.StatusError
	if errors.As(err, &se) {
		return &wirepb.Response{Status: se.Status, Details: se.Details}
	}
	return &wirepb.Response{Status: wirepb.Status_INTERNAL, Details: "internal error"}
}

func (ss *session) write(id uint32, resp *wirepb.Response) error {
	resp.Timestamp = wire.Now(ss.s.cfg.Now())
	return ss.writeMessage(&wirepb.Message{Id: id, Kind: &wirepb.Message_Response{Response: resp}})
}

func (ss *session) writeMessage(m *wirepb.Message) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.stream.SetWriteDeadline(time.Now().Add(ss.s.cfg.WriteTimeout))
	return wire.WriteMessage(ss.stream, m)
}

// request sends a server request on the stream; done, when not nil, gets
// the client's answer, or nil if the stream ends first.
func (ss *session) request(req *wirepb.Request, done func(*wirepb.Response)) error {
	ss.pmu.Lock()
	if ss.ended {
		ss.pmu.Unlock()
		return io.ErrClosedPipe
	}
	ss.nextOut++
	if ss.nextOut == 0 {
		ss.nextOut = 1
	}
	id := ss.nextOut
	if ss.waiting == nil {
		ss.waiting = make(map[uint32]func(*wirepb.Response))
	}
	if done == nil {
		done = func(*wirepb.Response) {}
	}
	ss.waiting[id] = done
	ss.pmu.Unlock()
	if err := ss.writeMessage(&wirepb.Message{Id: id, Kind: &wirepb.Message_Request{Request: req}}); err != nil {
		ss.pmu.Lock()
		delete(ss.waiting, id)
		ss.pmu.Unlock()
		ss.kick()
		return err
	}
	return nil
}

// answered delivers the client's answer to the server request id; it
// reports false for an answer nobody waits for.
func (ss *session) answered(id uint32, resp *wirepb.Response) bool {
	ss.pmu.Lock()
	done := ss.waiting[id]
	delete(ss.waiting, id)
	ss.pmu.Unlock()
	if done == nil {
		return false
	}
	done(resp)
	return true
}

// endRequests tells every waiter of an unanswered server request that the
// stream has ended.
func (ss *session) endRequests() {
	ss.pmu.Lock()
	ss.ended = true
	w := ss.waiting
	ss.waiting = nil
	ss.pmu.Unlock()
	for _, done := range w {
		done(nil)
	}
}

// kick ends the stream after the answer being written, from any goroutine.
func (ss *session) kick() {
	ss.closing.Store(true)
	ss.stream.SetReadDeadline(time.Now())
}

// writeViolation answers a protocol violation; it reports whether the
// answer was written.
func (ss *session) writeViolation(id uint32, details string) bool {
	return ss.write(id, &wirepb.Response{Status: wirepb.Status_PROTOCOL_VIOLATION, Details: details}) == nil
}

func (ss *session) writeBusy(format string, args ...any) {
	_ = ss.write(0, errorResponse(wire.Errorf(wirepb.Status_BUSY, format, args...)))
}

// need is the conversation state an operation requires.
type need int

const (
	needAny      need = iota
	needNone          // no conversation yet
	needStarted       // started, and not checked in
	needVerified      // verified or checked in
	needAuth          // checked in
)

type handler struct {
	roles role
	need  need
	fn    func(ss *session, req *wirepb.Request) (*wirepb.Response, error)
}

var (
	hPing               = handler{roleClient | roleNeighbor, needAny, (*session).ping}
	hListRoles          = handler{roleClient | roleNeighbor, needAny, (*session).listRoles}
	hStart              = handler{roleClient | roleNeighbor, needNone, (*session).startConversation}
	hRegister           = handler{roleClient, needStarted, (*session).registerHosting}
	hCheckIn            = handler{roleClient, needStarted, (*session).checkIn}
	hVerify             = handler{roleClient | roleNeighbor, needStarted, (*session).verifyIdentity}
	hUpdate             = handler{roleClient, needAuth, (*session).updateProfile}
	hCancel             = handler{roleClient, needAuth, (*session).cancelHosting}
	hServiceAdd         = handler{roleClient, needAuth, (*session).addServices}
	hServiceRemove      = handler{roleClient, needAuth, (*session).removeService}
	hGetProfile         = handler{roleClient, needAny, (*session).getProfile}
	hSearch             = handler{roleClient, needAny, (*session).search}
	hSearchPart         = handler{roleClient, needAny, (*session).searchPart}
	hStats              = handler{roleClient, needAny, (*session).stats}
	hPublishClaim       = handler{roleClient, needAuth, (*session).publishClaim}
	hResolve            = handler{roleClient, needAny, (*session).resolve}
	hPublishedRelations = handler{roleClient, needAny, (*session).publishedRelations}
	hSync               = handler{roleNeighbor, needVerified, (*session).neighborhoodSync}
	hNodeStatus         = handler{roleClient | roleNeighbor, needAny, (*session).nodeStatus}
	hTurn               = handler{roleClient, needVerified, (*session).turnCredentials}
	hCallService        = handler{roleClient, needVerified, (*session).callService}
	hRelaySend          = handler{roleClient, needAny, (*session).relaySend}
	hCloseCall          = handler{roleClient, needAny, (*session).closeCall}
	hAddRelated         = handler{roleClient, needAuth, (*session).addRelatedIdentity}
	hRemoveRelated      = handler{roleClient, needAuth, (*session).removeRelatedIdentity}
	hGetRelated         = handler{roleClient, needAny, (*session).getRelatedIdentities}
	hEdgeRecord         = handler{roleClient, needAny, (*session).addEdgeRecord}
	hPropose            = handler{roleClient, needVerified, (*session).proposeRelation}
	hInbox              = handler{roleClient, needVerified, (*session).getRelationInbox}
	hAccept             = handler{roleClient, needVerified, (*session).acceptRelation}
	hReject             = handler{roleClient, needVerified, (*session).rejectRelation}
)

func handlerFor(req *wirepb.Request) (handler, bool) {
	switch req.Body.(type) {
	case *wirepb.Request_Ping:
		return hPing, true
	case *wirepb.Request_ListRoles:
		return hListRoles, true
	case *wirepb.Request_StartConversation:
		return hStart, true
	case *wirepb.Request_RegisterHosting:
		return hRegister, true
	case *wirepb.Request_CheckIn:
		return hCheckIn, true
	case *wirepb.Request_VerifyIdentity:
		return hVerify, true
	case *wirepb.Request_UpdateProfile:
		return hUpdate, true
	case *wirepb.Request_CancelHosting:
		return hCancel, true
	case *wirepb.Request_AppServiceAdd:
		return hServiceAdd, true
	case *wirepb.Request_AppServiceRemove:
		return hServiceRemove, true
	case *wirepb.Request_GetProfile:
		return hGetProfile, true
	case *wirepb.Request_Search:
		return hSearch, true
	case *wirepb.Request_SearchPart:
		return hSearchPart, true
	case *wirepb.Request_Stats:
		return hStats, true
	case *wirepb.Request_PublishClaim:
		return hPublishClaim, true
	case *wirepb.Request_Resolve:
		return hResolve, true
	case *wirepb.Request_PublishedRelations:
		return hPublishedRelations, true
	case *wirepb.Request_NeighborhoodSync:
		return hSync, true
	case *wirepb.Request_NodeStatus:
		return hNodeStatus, true
	case *wirepb.Request_TurnCredentials:
		return hTurn, true
	case *wirepb.Request_CallService:
		return hCallService, true
	case *wirepb.Request_RelaySend:
		return hRelaySend, true
	case *wirepb.Request_CloseCall:
		return hCloseCall, true
	case *wirepb.Request_AddRelatedIdentity:
		return hAddRelated, true
	case *wirepb.Request_RemoveRelatedIdentity:
		return hRemoveRelated, true
	case *wirepb.Request_GetRelatedIdentities:
		return hGetRelated, true
	case *wirepb.Request_ProposeRelation:
		return hPropose, true
	case *wirepb.Request_GetRelationInbox:
		return hInbox, true
	case *wirepb.Request_AcceptRelation:
		return hAccept, true
	case *wirepb.Request_RejectRelation:
		return hReject, true
	case *wirepb.Request_AddEdgeRecord:
		return hEdgeRecord, true
	}
	return handler{}, false
}

// onRelayStream reports whether req may be sent on a stream that joined a
// call.
func onRelayStream(req *wirepb.Request) bool {
	switch req.Body.(type) {
	case *wirepb.Request_RelaySend, *wirepb.Request_CloseCall, *wirepb.Request_Ping:
		return true
	}
	return false
}

// handle checks role and conversation state, then runs the operation.
func (ss *session) handle(req *wirepb.Request) *wirepb.Response {
	h, ok := handlerFor(req)
	if !ok {
		return errorResponse(wire.Errorf(wirepb.Status_UNSUPPORTED, "unknown request"))
	}
	if ss.relay != nil && !onRelayStream(req) {
		return errorResponse(wire.Errorf(wirepb.Status_BAD_CONVERSATION_STATUS, "this stream carries a call: open another stream for other requests"))
	}
	if h.roles&ss.role == 0 {
		return errorResponse(wire.Errorf(wirepb.Status_BAD_ROLE, "request not served on the %s role (%s)", ss.role, protocolOf(ss.role)))
	}
	switch h.need {
	case needNone:
		if ss.state != stateNone {
			return errorResponse(wire.Errorf(wirepb.Status_BAD_CONVERSATION_STATUS, "conversation already started"))
		}
	case needStarted:
		if ss.state == stateNone {
			return errorResponse(wire.Errorf(wirepb.Status_BAD_CONVERSATION_STATUS, "start a conversation first"))
		}
		if ss.state == stateAuthenticated {
			return errorResponse(wire.Errorf(wirepb.Status_BAD_CONVERSATION_STATUS, "already checked in"))
		}
	case needVerified:
		if ss.state < stateVerified {
			return errorResponse(wire.Errorf(wirepb.Status_UNAUTHORIZED, "verify your identity first"))
		}
	case needAuth:
		if ss.state != stateAuthenticated {
			return errorResponse(wire.Errorf(wirepb.Status_UNAUTHORIZED, "check in first"))
		}
	}
	resp, err := h.fn(ss, req)
	if err != nil {
		var se *wire.StatusError
		if !errors.As(err, &se) {
			ss.s.log.Error("request failed", "peer", ss.peer, "err", err)
		}
		return errorResponse(err)
	}
	return resp
}

func protocolOf(r role) string {
	if r == roleNeighbor {
		return string(ProtocolNeighbor)
	}
	return string(ProtocolClient)
}

// ctx returns a context bounded by the search timeout, for long operations.
func (ss *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ss.s.cfg.SearchTimeout)
}
