package profileserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// callTimeout bounds every single exchange with a server in these tests. It
// is generous so that -race on two cores never trips it; a hang still fails.
const callTimeout = 20 * time.Second

// testCtx returns a context that ends with the test or after callTimeout.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// unlimited lifts the per-peer request rate and stream limits, for tests
// that drive many identities through one client host.
func unlimited(c *profileserver.Config) {
	c.PeerRate = rate.Inf
	c.MaxStreamsPerPeer = 60
	c.UpdateRate = rate.Inf
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %v", what, d)
		}
		<-tick.C
	}
}

// waitDone waits until a client connection has ended.
func waitDone(t testing.TB, c *client.Conn, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(callTimeout):
		t.Fatalf("%s: connection still open after %v", what, callTimeout)
	}
}

// wantStatus checks that err carries status and, unless details is empty,
// exactly those details.
func wantStatus(t testing.TB, err error, status wirepb.Status, details string) {
	t.Helper()
	var se *wire.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want %s %q", err, wire.StatusName(status), details)
	}
	if se.Status != status || (details != "" && se.Details != details) {
		t.Fatalf("err = %s %q, want %s %q", wire.StatusName(se.Status), se.Details, wire.StatusName(status), details)
	}
}

// wantOK fails the test on a non-nil error.
func wantOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// statusErr turns a raw response into the error a client would see.
func statusErr(resp *wirepb.Response) error {
	if resp.Status == wirepb.Status_OK {
		return nil
	}
	return &wire.StatusError{Status: resp.Status, Details: resp.Details}
}

// rawConn is a stream driven frame by frame, for requests the SDK cannot
// make: other roles, malformed frames, forged fields.
type rawConn struct {
	t  testing.TB
	st network.Stream
	id uint32
}

// openRaw opens a stream on proto from h to srv.
func openRaw(t testing.TB, h host.Host, srv *profileservertest.Server, proto protocol.ID) *rawConn {
	t.Helper()
	h.Peerstore().AddAddrs(srv.Addr.ID, srv.Addr.Addrs, time.Hour)
	st, err := h.NewStream(testCtx(t), srv.Addr.ID, proto)
	if err != nil {
		t.Fatalf("NewStream(%s): %v", proto, err)
	}
	t.Cleanup(func() { st.Reset() })
	return &rawConn{t: t, st: st}
}

// write sends raw bytes.
func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.st.SetWriteDeadline(time.Now().Add(callTimeout))
	if _, err := c.st.Write(b); err != nil {
		c.t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// send writes one message.
func (c *rawConn) send(m *wirepb.Message) {
	c.t.Helper()
	c.st.SetWriteDeadline(time.Now().Add(callTimeout))
	if err := wire.WriteMessage(c.st, m); err != nil {
		c.t.Fatalf("write message: %v", err)
	}
}

// read reads one message; a timeout fails the test, any other error is
// returned.
func (c *rawConn) read() (*wirepb.Message, error) {
	c.t.Helper()
	c.st.SetReadDeadline(time.Now().Add(callTimeout))
	m, err := wire.ReadMessage(c.st)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("no message within %v", callTimeout)
	}
	return m, err
}

// response reads one message that must be a response with id.
func (c *rawConn) response(id uint32) *wirepb.Response {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("read response %d: %v", id, err)
	}
	if m.GetResponse() == nil || m.Id != id {
		c.t.Fatalf("got message %v, want the response to request %d", m, id)
	}
	return m.GetResponse()
}

// call sends req with a fresh id and returns its response.
func (c *rawConn) call(req *wirepb.Request) *wirepb.Response {
	c.t.Helper()
	c.id++
	c.send(&wirepb.Message{Id: c.id, Kind: &wirepb.Message_Request{Request: req}})
	return c.response(c.id)
}

// wantClosed checks that the server has closed the stream: the next read
// fails (it must not time out, nor deliver another message).
func (c *rawConn) wantClosed() {
	c.t.Helper()
	if m, err := c.read(); err == nil {
		c.t.Fatalf("read after the server should have closed = %v, want an error", m)
	}
}

// wantViolation checks that the server answers a protocol violation with
// PROTOCOL_VIOLATION and id, and then ends the stream.
func (c *rawConn) wantViolation(id uint32) {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("stream ended without the PROTOCOL_VIOLATION answer: %v", err)
	}
	if resp := m.GetResponse(); resp == nil || m.Id != id || resp.Status != wirepb.Status_PROTOCOL_VIOLATION {
		c.t.Fatalf("answer = %v, want PROTOCOL_VIOLATION with id %d", m, id)
	}
	c.wantClosed()
}

// pingReq is a ping request.
func pingReq(payload []byte) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_Ping{Ping: &wirepb.PingRequest{Payload: payload}}}
}

// startReq is a StartConversation request for pub.
func startReq(pub []byte) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_StartConversation{StartConversation: &wirepb.StartConversationRequest{
		SupportedVersions: [][]byte{profileserver.ProtocolVersion[:]},
		PublicKey:         pub,
		ClientChallenge:   randBytes(profileserver.ChallengeSize),
	}}}
}

// startConversation starts a conversation on c as key and returns the
// server's challenge, for tests that sign it themselves.
func startConversation(t testing.TB, c *client.Conn, key *identity.Key) []byte {
	t.Helper()
	resp, err := c.Call(testCtx(t), startReq(key.Public()))
	wantOK(t, err)
	return resp.GetStartConversation().GetChallenge()
}

// proveReq is a CheckIn (or VerifyIdentity) request with the given challenge
// and signature.
func proveReq(checkIn bool, challenge, sig []byte) *wirepb.Request {
	if checkIn {
		return &wirepb.Request{Signature: sig, Body: &wirepb.Request_CheckIn{CheckIn: &wirepb.CheckInRequest{Challenge: challenge}}}
	}
	return &wirepb.Request{Signature: sig, Body: &wirepb.Request_VerifyIdentity{VerifyIdentity: &wirepb.VerifyIdentityRequest{Challenge: challenge}}}
}

// contractReq is a RegisterHosting request for a contract signed by signer.
func contractReq(t testing.TB, c *wirepb.HostingContract, signer *identity.Key) *wirepb.Request {
	t.Helper()
	raw, err := proto.Marshal(c)
	wantOK(t, err)
	return &wirepb.Request{Signature: signer.Sign(identity.DomainHostingContract, raw),
		Body: &wirepb.Request_RegisterHosting{RegisterHosting: &wirepb.RegisterHostingRequest{Contract: raw}}}
}

// updateReq is an UpdateProfile request.
func updateReq(sp *wirepb.SignedProfile, img, thumb []byte, noPropagation bool) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_UpdateProfile{UpdateProfile: &wirepb.UpdateProfileRequest{
		Profile: sp, ProfileImage: img, ThumbnailImage: thumb, NoPropagation: noPropagation}}}
}

// getProfileReq asks for the profile of the identity whose ID bytes are id.
func getProfileReq(id []byte) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_GetProfile{GetProfile: &wirepb.GetProfileRequest{IdentityId: id}}}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newKey returns a fresh identity key.
func newKey(t testing.TB) *identity.Key { return profileservertest.NewKey(t) }

// customerFrom dials srv from h, registers key as typ and checks it in.
func customerFrom(t testing.TB, srv *profileservertest.Server, h host.Host, key *identity.Key, typ string) *client.Conn {
	t.Helper()
	ctx := testCtx(t)
	c := srv.DialFrom(t, h)
	wantOK(t, c.StartConversation(ctx, key))
	if _, err := c.RegisterHosting(ctx, typ); err != nil {
		t.Fatal(err)
	}
	wantOK(t, c.CheckIn(ctx))
	return c
}

// profileOf is a valid profile of type typ and name for key.
func profileOf(typ, name string, seq uint64) graph.Profile {
	return graph.Profile{Type: typ, Name: name, Location: graph.Nowhere, Sequence: seq}
}

// sign signs p with key.
func sign(t testing.TB, key *identity.Key, p graph.Profile) *graph.SignedProfile {
	t.Helper()
	sp, err := graph.Sign(key, p)
	if err != nil {
		t.Fatalf("graph.Sign(%+v): %v", p, err)
	}
	return sp
}

// publish signs p and updates it on c, which must be checked in as key.
func publish(t testing.TB, c *client.Conn, key *identity.Key, p graph.Profile, img, thumb []byte) *graph.SignedProfile {
	t.Helper()
	sp := sign(t, key, p)
	wantOK(t, c.UpdateProfile(testCtx(t), sp, img, thumb, false))
	return sp
}

// infoOf is the wire form of a valid profile, for tests that corrupt fields
// before signing.
func infoOf(key *identity.Key, typ, name string, seq uint64) *wirepb.ProfileInformation {
	return &wirepb.ProfileInformation{
		Version: graph.Version[:], PublicKey: key.Public(), Type: typ, Name: name,
		Latitude: graph.NoLocation, Longitude: graph.NoLocation,
		Sequence: seq, Timestamp: time.Now().UnixMilli(),
	}
}

// signInfo encodes pi and signs it with signer.
func signInfo(t testing.TB, signer *identity.Key, pi *wirepb.ProfileInformation) *wirepb.SignedProfile {
	t.Helper()
	raw, err := proto.Marshal(pi)
	wantOK(t, err)
	return &wirepb.SignedProfile{Profile: raw, Signature: signer.Sign(identity.DomainProfile, raw)}
}

// solidPNG is a small PNG of one colour.
func solidPNG(t testing.TB, side int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	wantOK(t, png.Encode(&b, img))
	return b.Bytes()
}

// noisePNG is a PNG of random pixels: it does not compress, so its size
// is about 4·side² bytes.
func noisePNG(t testing.TB, side int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	rand.Read(img.Pix)
	var b bytes.Buffer
	wantOK(t, png.Encode(&b, img))
	return b.Bytes()
}

// smallJPEG is a small JPEG of one colour.
func smallJPEG(t testing.TB, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	wantOK(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 50}))
	return b.Bytes()
}

func rgb(r, g, b uint8) color.RGBA { return color.RGBA{R: r, G: g, B: b, A: 255} }

// hashOf is the profile hash of an image.
func hashOf(img []byte) []byte { return graph.HashImage(img) }
