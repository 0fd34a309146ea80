package profileserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// callee is a checked-in identity with services whose incoming calls go to
// a channel (accepted) unless reject is set.
type callee struct {
	key   *identity.Key
	conn  *client.Conn
	calls chan client.IncomingCall
}

func newCallee(t *testing.T, srv *profileservertest.Server, services ...string) *callee {
	t.Helper()
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	publish(t, c, key, profileOf("person", "Callee", 1), nil, nil)
	if len(services) > 0 {
		wantOK(t, c.AddServices(testCtx(t), services...))
	}
	ce := &callee{key: key, conn: c, calls: make(chan client.IncomingCall, 8)}
	c.OnIncomingCall(func(ic client.IncomingCall) error {
		ce.calls <- ic
		return nil
	})
	return ce
}

// verifiedCaller is a conversation that proved key's identity.
func verifiedCaller(t *testing.T, srv *profileservertest.Server) (*identity.Key, *client.Conn) {
	t.Helper()
	key := newKey(t)
	c := srv.Dial(t)
	ctx := testCtx(t)
	wantOK(t, c.StartConversation(ctx, key))
	wantOK(t, c.VerifyIdentity(ctx))
	return key, c
}

// join joins a call from a fresh client host in the background.
func join(t *testing.T, srv *profileservertest.Server, token []byte) <-chan joined {
	t.Helper()
	h := profileservertest.ClientHost(t)
	ch := make(chan joined, 1)
	go func() {
		r, err := client.JoinCall(testCtx(t), h, srv.Addr, token)
		if r != nil {
			t.Cleanup(func() { r.Close() })
		}
		ch <- joined{r, err}
	}()
	return ch
}

type joined struct {
	r   *client.Relay
	err error
}

func recvJoin(t *testing.T, ch <-chan joined) joined {
	t.Helper()
	select {
	case j := <-ch:
		return j
	case <-time.After(callTimeout):
		t.Fatal("JoinCall did not return")
	}
	return joined{}
}

// setUpCall calls ce's service and joins both sides.
func setUpCall(t *testing.T, srv *profileservertest.Server, ce *callee, caller *client.Conn, service string) (a, b *client.Relay) {
	t.Helper()
	tok, err := caller.CallService(testCtx(t), ce.key.ID(), service)
	wantOK(t, err)
	var ic client.IncomingCall
	select {
	case ic = <-ce.calls:
	case <-time.After(callTimeout):
		t.Fatal("callee not notified")
	}
	ja, jb := join(t, srv, tok), join(t, srv, ic.Token)
	ra, rb := recvJoin(t, ja), recvJoin(t, jb)
	wantOK(t, ra.err)
	wantOK(t, rb.err)
	return ra.r, rb.r
}

func TestCallRelaysInOrderBothWays(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	ce := newCallee(t, srv, "chat")
	callerKey, caller := verifiedCaller(t, srv)
	ctx := testCtx(t)

	tok, err := caller.CallService(ctx, ce.key.ID(), "chat")
	wantOK(t, err)
	ic := <-ce.calls
	if ic.Caller != callerKey.ID() || ic.Service != "chat" || !bytes.Equal(ic.CallerKey, callerKey.Public()) {
		t.Fatalf("incoming call = %+v, want caller %s service chat", ic, callerKey.ID().Short())
	}
	if bytes.Equal(tok, ic.Token) {
		t.Fatal("caller and callee got the same token")
	}
	ja, jb := join(t, srv, tok), join(t, srv, ic.Token)
	a, b := recvJoin(t, ja), recvJoin(t, jb)
	wantOK(t, a.err)
	wantOK(t, b.err)
	if got := srv.Stats().Calls; got != 1 {
		t.Errorf("Stats.Calls = %d, want 1", got)
	}

	// 200 messages each way, concurrently, more than the window: every
	// message arrives once and in order.
	const n = 200
	errs := make(chan error, 4)
	send := func(r *client.Relay, tag string) {
		for i := range n {
			if err := r.Send(ctx, fmt.Appendf(nil, "%s-%d", tag, i)); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}
	recv := func(r *client.Relay, tag string) {
		for i := range n {
			m, err := r.Recv(ctx)
			if err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprintf("%s-%d", tag, i); string(m) != want {
				errs <- fmt.Errorf("message %d = %q, want %q", i, m, want)
				return
			}
		}
		errs <- nil
	}
	go send(a.r, "a")
	go send(b.r, "b")
	go recv(b.r, "a")
	go recv(a.r, "b")
	for range 4 {
		wantOK(t, <-errs)
	}

	// The largest message passes; a larger one is refused by the SDK.
	big := bytes.Repeat([]byte{7}, profileserver.MaxRelayMessage)
	wantOK(t, a.r.Send(ctx, big))
	m, err := b.r.Recv(ctx)
	wantOK(t, err)
	if !bytes.Equal(m, big) {
		t.Fatal("largest message corrupted")
	}
	if err := a.r.Send(ctx, append(big, 1)); err == nil {
		t.Fatal("Send of an oversized message succeeded")
	}

	// Either side closes: the other reads EOF with the reason, and the
	// server forgets the call.
	wantOK(t, a.r.Close())
	if _, err := b.r.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the other side closed = %v, want EOF", err)
	}
	if b.r.CloseReason() == "" {
		t.Error("CloseReason is empty after the call was closed")
	}
	if err := b.r.Send(ctx, []byte("late")); !errors.Is(err, client.ErrCallClosed) {
		t.Errorf("Send after close = %v, want ErrCallClosed", err)
	}
	waitUntil(t, callTimeout, "call forgotten", func() bool { return srv.Stats().Calls == 0 })
}

func TestCallRefusals(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	ce := newCallee(t, srv, "chat")
	_, caller := verifiedCaller(t, srv)
	ctx := testCtx(t)

	// Hosted but offline.
	offKey := newKey(t)
	off := srv.Customer(t, offKey, "person")
	publish(t, off, offKey, profileOf("person", "Off", 1), nil, nil)
	off.Close()
	waitUntil(t, callTimeout, "offline", func() bool { return srv.Stats().Online == 1 })

	// Hosted, online, but no profile yet.
	uninitKey := newKey(t)
	srv.Customer(t, uninitKey, "person")

	cases := []struct {
		name    string
		id      []byte
		service string
		status  wirepb.Status
		details string
	}{
		{"bad id", []byte{1, 2, 3}, "chat", wirepb.Status_INVALID_VALUE, "identityNetworkId"},
		{"empty service", idBytes(ce.key.ID()), "", wirepb.Status_INVALID_VALUE, "serviceName"},
		{"long service", idBytes(ce.key.ID()), string(bytes.Repeat([]byte("s"), profileserver.MaxServiceNameLen+1)), wirepb.Status_INVALID_VALUE, "serviceName"},
		{"unknown identity", randBytes(32), "chat", wirepb.Status_NOT_FOUND, ""},
		{"not enabled", idBytes(ce.key.ID()), "video", wirepb.Status_NOT_AVAILABLE, ""},
		{"offline", idBytes(offKey.ID()), "chat", wirepb.Status_NOT_AVAILABLE, ""},
		{"uninitialized", idBytes(uninitKey.ID()), "chat", wirepb.Status_UNINITIALIZED, ""},
	}
	for _, tc := range cases {
		_, err := caller.Call(ctx, &wirepb.Request{Body: &wirepb.Request_CallService{CallService: &wirepb.CallServiceRequest{
			IdentityId: tc.id, ServiceName: tc.service}}})
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, err, tc.status, tc.details) })
	}

	// Unverified conversations cannot call.
	anon := srv.Dial(t)
	_, err := anon.CallService(ctx, ce.key.ID(), "chat")
	wantStatus(t, err, wirepb.Status_UNAUTHORIZED, "")
	if len(ce.calls) != 0 {
		t.Errorf("callee was notified %d times by refused calls", len(ce.calls))
	}

	// Rejected by the callee.
	rejKey := newKey(t)
	rej := srv.Customer(t, rejKey, "person")
	publish(t, rej, rejKey, profileOf("person", "Busy", 1), nil, nil)
	wantOK(t, rej.AddServices(ctx, "chat"))
	rej.OnIncomingCall(func(client.IncomingCall) error { return client.ErrRejected })
	_, err = caller.CallService(ctx, rejKey.ID(), "chat")
	wantStatus(t, err, wirepb.Status_REJECTED, "")

	// Forged tokens join nothing.
	j := recvJoin(t, join(t, srv, randBytes(profileserver.TokenSize)))
	wantStatus(t, j.err, wirepb.Status_NOT_FOUND, "")
	if got := srv.Stats().Calls; got != 0 {
		t.Errorf("Stats.Calls = %d after refused calls, want 0", got)
	}
}

func TestCallTimeouts(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, func(c *profileserver.Config) {
		c.CallAnswerTimeout = 300 * time.Millisecond
		c.CallJoinTimeout = 300 * time.Millisecond
	})
	ctx := testCtx(t)
	_, caller := verifiedCaller(t, srv)

	// A callee that does not answer.
	silentKey := newKey(t)
	silent := srv.Customer(t, silentKey, "person")
	publish(t, silent, silentKey, profileOf("person", "Silent", 1), nil, nil)
	wantOK(t, silent.AddServices(ctx, "chat"))
	release := make(chan struct{})
	silent.OnIncomingCall(func(client.IncomingCall) error { <-release; return nil })
	start := time.Now()
	_, err := caller.CallService(ctx, silentKey.ID(), "chat")
	close(release)
	wantStatus(t, err, wirepb.Status_NOT_AVAILABLE, "")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("unanswered call failed after %v, before the answer timeout", d)
	}

	// Only the caller joins: its init is answered with an error when the
	// other side misses its deadline.
	ce := newCallee(t, srv, "chat")
	tok, err := caller.CallService(ctx, ce.key.ID(), "chat")
	wantOK(t, err)
	ic := <-ce.calls
	j := recvJoin(t, join(t, srv, tok))
	wantStatus(t, j.err, wirepb.Status_NOT_AVAILABLE, "")
	// The late side finds its token expired.
	j = recvJoin(t, join(t, srv, ic.Token))
	wantStatus(t, j.err, wirepb.Status_NOT_FOUND, "")

	// Nobody joins: the tokens expire.
	tok, err = caller.CallService(ctx, ce.key.ID(), "chat")
	wantOK(t, err)
	<-ce.calls
	waitUntil(t, callTimeout, "unjoined call expired", func() bool { return srv.Stats().Calls == 0 })
	j = recvJoin(t, join(t, srv, tok))
	wantStatus(t, j.err, wirepb.Status_NOT_FOUND, "")
}

func TestCallSideVanishes(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	ce := newCallee(t, srv, "chat")
	_, caller := verifiedCaller(t, srv)
	ctx := testCtx(t)
	tok, err := caller.CallService(ctx, ce.key.ID(), "chat")
	wantOK(t, err)
	ic := <-ce.calls

	// The caller joins on a raw stream and then disappears (reset).
	h := profileservertest.ClientHost(t)
	raw := openRaw(t, h, srv, profileserver.ProtocolClient)
	raw.id++
	raw.send(&wirepb.Message{Id: raw.id, Kind: &wirepb.Message_Request{Request: relaySendReq(tok, nil)}})
	jb := recvJoin(t, join(t, srv, ic.Token))
	wantOK(t, jb.err)
	wantOK(t, statusErr(raw.response(raw.id)))
	raw.st.Reset()
	if _, err := jb.r.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the other side vanished = %v, want EOF", err)
	}
	if jb.r.CloseReason() == "" {
		t.Error("no close reason after the other side vanished")
	}
	waitUntil(t, callTimeout, "call forgotten", func() bool { return srv.Stats().Calls == 0 })
}

func relaySendReq(tok, msg []byte) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_RelaySend{RelaySend: &wirepb.RelaySendRequest{Token: tok, Message: msg}}}
}

func TestCallProtocolViolations(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	ce := newCallee(t, srv, "chat")
	_, caller := verifiedCaller(t, srv)
	ctx := testCtx(t)
	h := profileservertest.ClientHost(t)

	t.Run("more than 20 unacknowledged", func(t *testing.T) {
		tok, err := caller.CallService(ctx, ce.key.ID(), "chat")
		wantOK(t, err)
		ic := <-ce.calls
		raw := openRaw(t, h, srv, profileserver.ProtocolClient)
		raw.id++
		raw.send(&wirepb.Message{Id: raw.id, Kind: &wirepb.Message_Request{Request: relaySendReq(tok, nil)}})
		jb := recvJoin(t, join(t, srv, ic.Token)) // never reads: nothing is acknowledged
		wantOK(t, jb.err)
		wantOK(t, statusErr(raw.response(raw.id)))
		for i := 0; i <= profileserver.MaxUnacked; i++ {
			raw.id++
			raw.send(&wirepb.Message{Id: raw.id, Kind: &wirepb.Message_Request{Request: relaySendReq(tok, []byte{byte(i)})}})
		}
		// The 21st is refused and the call ends; the first 20 stay
		// unacknowledged (the receiver never read them).
		resp := raw.response(raw.id)
		wantStatus(t, statusErr(resp), wirepb.Status_QUOTA_EXCEEDED, "")
		got := 0
		for {
			_, err := jb.r.Recv(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			wantOK(t, err)
			got++
		}
		if got > profileserver.MaxUnacked {
			t.Errorf("receiver got %d messages, want at most %d", got, profileserver.MaxUnacked)
		}
	})

	t.Run("message before the init answer", func(t *testing.T) {
		tok, err := caller.CallService(ctx, ce.key.ID(), "chat")
		wantOK(t, err)
		ic := <-ce.calls
		raw := openRaw(t, h, srv, profileserver.ProtocolClient)
		raw.send(&wirepb.Message{Id: 1, Kind: &wirepb.Message_Request{Request: relaySendReq(tok, nil)}})
		raw.send(&wirepb.Message{Id: 2, Kind: &wirepb.Message_Request{Request: relaySendReq(tok, []byte("early"))}})
		// Both requests are answered with errors; the call is gone.
		seen := map[uint32]wirepb.Status{}
		for len(seen) < 2 {
			m, err := raw.read()
			wantOK(t, err)
			if r := m.GetResponse(); r != nil {
				seen[m.Id] = r.Status
			}
		}
		if seen[2] != wirepb.Status_BAD_CONVERSATION_STATUS || seen[1] == wirepb.Status_OK {
			t.Errorf("answers = %v, want init refused and message 2 BAD_CONVERSATION_STATUS", seen)
		}
		j := recvJoin(t, join(t, srv, ic.Token))
		wantStatus(t, j.err, wirepb.Status_NOT_FOUND, "")
	})

	t.Run("reusing streams", func(t *testing.T) {
		tok, err := caller.CallService(ctx, ce.key.ID(), "chat")
		wantOK(t, err)
		ic := <-ce.calls
		// A conversation stream cannot join a call.
		_, err = caller.Call(ctx, relaySendReq(tok, nil))
		wantStatus(t, err, wirepb.Status_BAD_CONVERSATION_STATUS, "")
		// A joined stream carries only the call.
		raw := openRaw(t, h, srv, profileserver.ProtocolClient)
		raw.id++
		raw.send(&wirepb.Message{Id: raw.id, Kind: &wirepb.Message_Request{Request: relaySendReq(tok, nil)}})
		jb := recvJoin(t, join(t, srv, ic.Token))
		wantOK(t, jb.err)
		wantOK(t, statusErr(raw.response(raw.id)))
		wantStatus(t, statusErr(raw.call(getProfileReq(idBytes(ce.key.ID())))), wirepb.Status_BAD_CONVERSATION_STATUS, "")
		// A token is used once.
		j := recvJoin(t, join(t, srv, ic.Token))
		wantStatus(t, j.err, wirepb.Status_NOT_FOUND, "")
		// Messages with another token are refused.
		wantStatus(t, statusErr(raw.call(relaySendReq(randBytes(profileserver.TokenSize), []byte("x")))), wirepb.Status_NOT_FOUND, "")
		// Ping keeps a relay stream alive.
		wantOK(t, statusErr(raw.call(pingReq(nil))))
		wantOK(t, jb.r.Close())
		raw.wantCloseCall()
	})
	waitUntil(t, callTimeout, "calls forgotten", func() bool { return srv.Stats().Calls == 0 })
}

// wantCloseCall reads until the server's CloseCall request, then expects
// the stream to end.
func (c *rawConn) wantCloseCall() {
	c.t.Helper()
	for {
		m, err := c.read()
		if err != nil {
			c.t.Fatalf("stream ended without CloseCall: %v", err)
		}
		if m.GetRequest().GetCloseCall() != nil {
			break
		}
	}
	c.wantClosed()
}

// TestCallNoLeaks runs many calls through set-up, relay and close and
// checks that the server holds no calls and the client no goroutines
// afterwards.
func TestCallNoLeaks(t *testing.T) {
	srv := profileservertest.Start(t, unlimited)
	ce := newCallee(t, srv, "chat")
	_, caller := verifiedCaller(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*callTimeout)
	defer cancel()
	for i := range 10 {
		a, b := setUpCall(t, srv, ce, caller, "chat")
		wantOK(t, a.Send(ctx, []byte{byte(i)}))
		m, err := b.Recv(ctx)
		wantOK(t, err)
		if len(m) != 1 || m[0] != byte(i) {
			t.Fatalf("call %d: got %v", i, m)
		}
		if i%2 == 0 {
			wantOK(t, a.Close())
		} else {
			wantOK(t, b.Close())
		}
	}
	waitUntil(t, callTimeout, "calls forgotten", func() bool { return srv.Stats().Calls == 0 })
	// Only the callee's and the caller's conversation streams remain.
	waitUntil(t, callTimeout, "relay streams closed", func() bool { return srv.Stats().Sessions == 2 })
}

func idBytes(id identity.ID) []byte { return id[:] }
