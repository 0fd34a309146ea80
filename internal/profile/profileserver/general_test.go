package profileserver_test

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// frame is body with its length prefix.
func frame(body []byte) []byte {
	var b bytes.Buffer
	if err := wire.WriteFrame(&b, body); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// header is a bare length prefix announcing n bytes.
func header(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	wantOK(t, err)
	return b
}

func TestPing(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	c := srv.Dial(t)
	ctx := testCtx(t)
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"none", nil, nil},
		{"one byte", []byte{7}, nil},
		{"64 bytes", bytes.Repeat([]byte{'p'}, profileserver.MaxPingPayload), nil},
		{"65 bytes", bytes.Repeat([]byte{'p'}, profileserver.MaxPingPayload+1), wire.Invalid("payload")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			clock, err := c.Ping(ctx, tt.payload)
			if tt.want != nil {
				wantStatus(t, err, wirepb.Status_INVALID_VALUE, "payload")
				return
			}
			wantOK(t, err) // Ping checks the echo itself
			if clock.Before(before.Add(-time.Minute)) || clock.After(time.Now().Add(time.Minute)) {
				t.Errorf("Ping clock = %v, want about %v", clock, before)
			}
		})
	}
	// A refused ping leaves the stream usable.
	if _, err := c.Ping(ctx, []byte("still there")); err != nil {
		t.Fatalf("Ping after a refused ping: %v", err)
	}
}

func TestListRoles(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	roles, err := srv.Dial(t).ListRoles(testCtx(t))
	wantOK(t, err)
	want := []client.Role{
		{Role: "client", Protocol: string(profileserver.ProtocolClient)},
		{Role: "neighbor", Protocol: string(profileserver.ProtocolNeighbor)},
	}
	if diff := cmp.Diff(want, roles); diff != "" {
		t.Errorf("ListRoles mismatch (-want +got):\n%s", diff)
	}
}

// TestMalformedFrames sends frames the server cannot read: each answers
// PROTOCOL_VIOLATION with id 0 and the stream is closed.
func TestMalformedFrames(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)

	// A Message whose request holds only an unknown field (a request kind
	// from the future): it decodes to a request without a body.
	unknownKind := protowire.AppendTag(nil, 1, protowire.VarintType)
	unknownKind = protowire.AppendVarint(unknownKind, 1)
	inner := protowire.AppendTag(nil, 99, protowire.BytesType)
	inner = protowire.AppendBytes(inner, []byte("x"))
	unknownKind = protowire.AppendTag(unknownKind, 2, protowire.BytesType)
	unknownKind = protowire.AppendBytes(unknownKind, inner)

	tests := []struct {
		name string
		in   []byte
	}{
		{"garbage body", frame([]byte{0xff, 0xff, 0xff, 0xff})},
		{"garbage without framing", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"empty body", frame(nil)},
		{"message without kind", frame(marshal(t, &wirepb.Message{Id: 3}))},
		{"request without body", frame(marshal(t, &wirepb.Message{Id: 3, Kind: &wirepb.Message_Request{Request: &wirepb.Request{}}}))},
		{"unknown request kind", frame(unknownKind)},
		{"oversized by one byte", header(wire.MaxFrame - wire.HeaderSize + 1)},
		{"oversized maximum", header(0xffffffff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openRaw(t, h, srv, profileserver.ProtocolClient)
			c.write(tt.in)
			c.wantViolation(0)
		})
	}

	t.Run("after a valid request", func(t *testing.T) {
		c := openRaw(t, h, srv, profileserver.ProtocolClient)
		ping := frame(marshal(t, &wirepb.Message{Id: 1, Kind: &wirepb.Message_Request{Request: pingReq([]byte("a"))}}))
		c.write(append(ping, frame([]byte{0xff})...)) // pipelined
		// Both answers arrive, in order.
		m, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if m.Id != 1 || m.GetResponse().GetStatus() != wirepb.Status_OK {
			t.Fatalf("ping before the garbage = %v, want OK", m)
		}
		c.wantViolation(0)
	})

	// The largest legal frame is read in full and answered normally.
	t.Run("largest frame", func(t *testing.T) {
		c := openRaw(t, h, srv, profileserver.ProtocolClient)
		pad := make([]byte, wire.MaxFrame-wire.HeaderSize-64)
		req := pingReq(nil)
		req.Signature = pad // an ignored field, to fill the frame
		body := marshal(t, &wirepb.Message{Id: 9, Kind: &wirepb.Message_Request{Request: req}})
		if len(body) > wire.MaxFrame-wire.HeaderSize {
			t.Fatalf("test frame is %d bytes, over the limit", len(body))
		}
		c.write(frame(body))
		if resp := c.response(9); resp.Status != wirepb.Status_OK {
			t.Fatalf("answer to a %d-byte frame = %v, want OK", len(body), resp)
		}
	})

	// Every stream the server closed is forgotten.
	waitUntil(t, callTimeout, "sessions of closed streams end", func() bool { return srv.Stats().Sessions <= 1 })
}

func TestUnsolicitedResponse(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	c := openRaw(t, profileservertest.ClientHost(t), srv, profileserver.ProtocolClient)
	c.send(&wirepb.Message{Id: 7, Kind: &wirepb.Message_Response{Response: &wirepb.Response{Status: wirepb.Status_OK}}})
	c.wantViolation(7)
}

// TestRequestIDs checks that pipelined requests are answered in order, each
// with its own id.
func TestRequestIDs(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	c := openRaw(t, profileservertest.ClientHost(t), srv, profileserver.ProtocolClient)
	ids := []uint32{5, 0, 1 << 31, 6}
	var all []byte
	for i, id := range ids {
		all = append(all, frame(marshal(t, &wirepb.Message{Id: id, Kind: &wirepb.Message_Request{Request: pingReq([]byte{byte(i)})}}))...)
	}
	before := time.Now()
	c.write(all)
	for i, id := range ids {
		resp := c.response(id)
		if !bytes.Equal(resp.GetPing().GetPayload(), []byte{byte(i)}) {
			t.Errorf("response %d (id %d) = %v, want the echo of ping %d", i, id, resp, i)
		}
		if ts := time.UnixMilli(resp.Timestamp); ts.Before(before.Add(-time.Minute)) || ts.After(time.Now().Add(time.Minute)) {
			t.Errorf("response %d timestamp = %v, want about %v", i, ts, before)
		}
	}
}

func TestIdleStreamClosed(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	srv := profileservertest.Start(t, func(c *profileserver.Config) {
		c.ClientIdleTimeout = idle
		c.NeighborIdleTimeout = idle
	})
	h := profileservertest.ClientHost(t)

	t.Run("client", func(t *testing.T) {
		start := time.Now()
		c := srv.DialFrom(t, h)
		waitDone(t, c, "idle client stream")
		if el := time.Since(start); el < idle {
			t.Errorf("idle stream closed after %v, want at least %v", el, idle)
		}
	})
	t.Run("client after a request", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		_, err := c.Ping(testCtx(t), nil)
		wantOK(t, err)
		start := time.Now()
		waitDone(t, c, "idle client stream")
		if el := time.Since(start); el < idle/2 {
			t.Errorf("stream closed %v after its last answer, want about %v", el, idle)
		}
	})
	t.Run("checked-in identity goes offline", func(t *testing.T) {
		key := newKey(t)
		c := customerFrom(t, srv, h, key, "person")
		publish(t, c, key, profileOf("person", "Idle", 1), nil, nil)
		waitDone(t, c, "idle checked-in stream")
		// The server forgets the session just after it resets the stream.
		observer := srv.DialFrom(t, h) // kept open by the polling
		waitUntil(t, callTimeout, "identity offline after its stream idled out", func() bool {
			info, err := observer.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
			wantOK(t, err)
			return !info.Online
		})
	})
	t.Run("neighbor", func(t *testing.T) {
		start := time.Now()
		c := openRaw(t, h, srv, profileserver.ProtocolNeighbor)
		c.wantClosed()
		if el := time.Since(start); el < idle {
			t.Errorf("idle neighbor stream closed after %v, want at least %v", el, idle)
		}
	})
}

// TestActiveStreamStaysOpen checks that traffic resets the idle timer.
func TestActiveStreamStaysOpen(t *testing.T) {
	t.Parallel()
	const idle = 600 * time.Millisecond
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.ClientIdleTimeout = idle })
	c := srv.Dial(t)
	tick := time.NewTicker(idle / 6)
	defer tick.Stop()
	end := time.Now().Add(3 * idle)
	for time.Now().Before(end) {
		if _, err := c.Ping(testCtx(t), nil); err != nil {
			t.Fatalf("ping on a busy stream: %v", err)
		}
		<-tick.C
	}
}

// TestHalfSentFrameDropped checks that a frame that never completes is
// dropped at the idle timeout without an answer.
func TestHalfSentFrameDropped(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.ClientIdleTimeout = idle })
	h := profileservertest.ClientHost(t)
	full := frame(marshal(t, &wirepb.Message{Id: 1, Kind: &wirepb.Message_Request{Request: pingReq(make([]byte, 40))}}))
	tests := []struct {
		name string
		in   []byte
	}{
		{"half header", full[:2]},
		{"header only", full[:wire.HeaderSize]},
		{"half body", full[:len(full)/2]},
		{"all but one byte", full[:len(full)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now() // the idle timer may start when the stream opens
			c := openRaw(t, h, srv, profileserver.ProtocolClient)
			c.write(tt.in)
			c.wantClosed()
			if el := time.Since(start); el < idle {
				t.Errorf("stream with a partial frame closed after %v, want at least %v", el, idle)
			}
		})
	}
}

// TestTrickledFrameDropped checks that the idle timeout bounds a whole
// frame: a peer that sends a frame one byte at a time, each well within the
// timeout, is still dropped.
func TestTrickledFrameDropped(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.ClientIdleTimeout = idle })
	c := openRaw(t, profileservertest.ClientHost(t), srv, profileserver.ProtocolClient)
	full := frame(marshal(t, &wirepb.Message{Id: 1, Kind: &wirepb.Message_Request{Request: pingReq(make([]byte, 40))}}))
	var sent atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(idle / 6)
		defer tick.Stop()
		for _, b := range full {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.st.Write([]byte{b}); err != nil {
				return
			}
			sent.Add(1)
		}
	})
	c.wantClosed()
	close(stop)
	wg.Wait()
	if n := int(sent.Load()); n >= len(full) {
		t.Errorf("the server read all %d trickled bytes, want it to drop the frame at the idle timeout", n)
	}
}

func TestStartConversationVersions(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	tests := []struct {
		name     string
		versions [][]byte
		status   wirepb.Status
		details  string
	}{
		{"1.0.0", [][]byte{{1, 0, 0}}, wirepb.Status_OK, ""},
		{"other minor and patch", [][]byte{{1, 7, 3}}, wirepb.Status_OK, ""},
		{"2.0.0 then 1.1.0", [][]byte{{2, 0, 0}, {1, 1, 0}}, wirepb.Status_OK, ""},
		{"none", nil, wirepb.Status_INVALID_VALUE, "supportedVersions"},
		{"0.0.0", [][]byte{{0, 0, 0}}, wirepb.Status_INVALID_VALUE, "supportedVersions[0]"},
		{"short second", [][]byte{{1, 0, 0}, {1, 0}}, wirepb.Status_INVALID_VALUE, "supportedVersions[1]"},
		{"long", [][]byte{{1, 0, 0, 0}}, wirepb.Status_INVALID_VALUE, "supportedVersions[0]"},
		{"empty", [][]byte{{}}, wirepb.Status_INVALID_VALUE, "supportedVersions[0]"},
		{"0.0.0 after a good one", [][]byte{{1, 0, 0}, {0, 0, 0}}, wirepb.Status_INVALID_VALUE, "supportedVersions[1]"},
		{"no major 1", [][]byte{{2, 0, 0}, {0, 9, 0}}, wirepb.Status_UNSUPPORTED, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := srv.Dial(t)
			req := startReq(key.Public())
			req.GetStartConversation().SupportedVersions = tt.versions
			resp, err := c.Call(testCtx(t), req)
			if tt.status != wirepb.Status_OK {
				wantStatus(t, err, tt.status, tt.details)
				// The refusal leaves the stream without a conversation.
				wantOK(t, c.StartConversation(testCtx(t), key))
				return
			}
			wantOK(t, err)
			if got := resp.GetStartConversation().GetVersion(); !bytes.Equal(got, profileserver.ProtocolVersion[:]) {
				t.Errorf("version = %v, want %v", got, profileserver.ProtocolVersion)
			}
		})
	}
}

// TestStreamLimitPerPeer checks MaxStreamsPerPeer: a stream over the limit
// answers BUSY and is closed, other peers are not affected, and a closed
// stream frees its slot.
func TestStreamLimitPerPeer(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.MaxStreamsPerPeer = 2 })
	h := profileservertest.ClientHost(t)
	ctx := testCtx(t)
	c1, c2 := srv.DialFrom(t, h), srv.DialFrom(t, h)
	for _, c := range []*client.Conn{c1, c2} {
		_, err := c.Ping(ctx, nil) // the server has taken the stream
		wantOK(t, err)
	}
	over := openRaw(t, h, srv, profileserver.ProtocolClient)
	if resp := over.response(0); resp.Status != wirepb.Status_BUSY {
		t.Fatalf("answer on the third stream = %v, want BUSY", resp)
	}
	over.wantClosed()

	o := srv.Dial(t)
	if _, err := o.Ping(ctx, nil); err != nil {
		t.Errorf("ping from another peer: %v", err)
	}
	o.Close()
	c1.Close()
	waitUntil(t, callTimeout, "closed stream ends", func() bool { return srv.Stats().Sessions == 1 })
	if _, err := srv.DialFrom(t, h).Ping(ctx, nil); err != nil {
		t.Errorf("ping on a stream that replaced a closed one: %v", err)
	}
}

// TestPeerRateLimit checks that requests over a peer's rate answer BUSY and
// leave the stream open.
func TestPeerRateLimit(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, func(c *profileserver.Config) {
		c.PeerRate = 1e-6
		c.PeerBurst = 3
	})
	h := profileservertest.ClientHost(t)
	ctx := testCtx(t)
	a, b := srv.DialFrom(t, h), srv.DialFrom(t, h) // the burst is shared by a peer's streams
	for _, c := range []*client.Conn{a, b, a} {
		_, err := c.Ping(ctx, nil)
		wantOK(t, err)
	}
	for _, c := range []*client.Conn{b, a} {
		_, err := c.Ping(ctx, nil)
		wantStatus(t, err, wirepb.Status_BUSY, "")
	}
	if err := a.Err(); err != nil {
		t.Fatalf("stream closed after BUSY: %v", err)
	}
	if _, err := srv.Dial(t).Ping(ctx, nil); err != nil {
		t.Errorf("ping from another peer: %v", err)
	}
}

// TestServerCloseDropsSessions checks that Close ends every stream.
func TestServerCloseDropsSessions(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	a := srv.Customer(t, key, "person")
	b := srv.Dial(t)
	_, err := b.Ping(testCtx(t), nil)
	wantOK(t, err)
	srv.Stop()
	waitDone(t, a, "checked-in stream after Close")
	waitDone(t, b, "plain stream after Close")
}

// TestNeighborRole checks the neighbour protocol: it serves ping, roles and
// identity verification, and answers BAD_ROLE to every client request,
// whatever the conversation state.
func TestNeighborRole(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := openRaw(t, profileservertest.ClientHost(t), srv, profileserver.ProtocolNeighbor)

	clientOnly := []struct {
		name string
		req  *wirepb.Request
	}{
		{"RegisterHosting", contractReq(t, &wirepb.HostingContract{IdentityPublicKey: key.Public(), ServerPublicKey: srv.Key.Public(),
			StartTime: time.Now().UnixMilli(), IdentityType: "person"}, key)},
		{"CheckIn", proveReq(true, make([]byte, 32), make([]byte, 64))},
		{"UpdateProfile", updateReq(signInfo(t, key, infoOf(key, "person", "N", 1)), nil, nil, false)},
		{"CancelHosting", &wirepb.Request{Body: &wirepb.Request_CancelHosting{CancelHosting: &wirepb.CancelHostingRequest{}}}},
		{"AppServiceAdd", &wirepb.Request{Body: &wirepb.Request_AppServiceAdd{AppServiceAdd: &wirepb.ApplicationServiceAddRequest{ServiceNames: []string{"chat"}}}}},
		{"AppServiceRemove", &wirepb.Request{Body: &wirepb.Request_AppServiceRemove{AppServiceRemove: &wirepb.ApplicationServiceRemoveRequest{ServiceName: "chat"}}}},
		{"GetProfile", getProfileReq(make([]byte, 32))},
		{"Search", &wirepb.Request{Body: &wirepb.Request_Search{Search: &wirepb.ProfileSearchRequest{MaxResponseRecordCount: 10, MaxTotalRecordCount: 10}}}},
		{"SearchPart", &wirepb.Request{Body: &wirepb.Request_SearchPart{SearchPart: &wirepb.ProfileSearchPartRequest{RecordCount: 1}}}},
		{"Stats", &wirepb.Request{Body: &wirepb.Request_Stats{Stats: &wirepb.ProfileStatsRequest{}}}},
	}
	badRole := func(t *testing.T) {
		for _, tt := range clientOnly {
			if resp := c.call(tt.req); resp.Status != wirepb.Status_BAD_ROLE {
				t.Errorf("%s on the neighbor role = %s %q, want BAD_ROLE", tt.name, wire.StatusName(resp.Status), resp.Details)
			}
		}
	}

	t.Run("no conversation", badRole)

	if resp := c.call(pingReq([]byte("n"))); resp.Status != wirepb.Status_OK || string(resp.GetPing().GetPayload()) != "n" {
		t.Fatalf("Ping on the neighbor role = %v, want an echo", resp)
	}
	if resp := c.call(&wirepb.Request{Body: &wirepb.Request_ListRoles{ListRoles: &wirepb.ListRolesRequest{}}}); len(resp.GetListRoles().GetRoles()) != 2 {
		t.Fatalf("ListRoles on the neighbor role = %v, want two roles", resp)
	}
	resp := c.call(startReq(key.Public()))
	wantOK(t, statusErr(resp))
	challenge := resp.GetStartConversation().GetChallenge()
	sig := key.Sign(identity.DomainChallenge, wire.ChallengeMessage(challenge, srv.Key.Public()))
	wantOK(t, statusErr(c.call(proveReq(false, challenge, sig))))

	t.Run("verified", badRole)
}
