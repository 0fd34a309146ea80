package profileserver_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// FuzzServerFrame writes arbitrary bytes to a fresh client stream of one
// server (started once per fuzz process) and checks that the server only
// ever answers with well-formed responses, says nothing after a protocol
// violation, ends the stream, and still answers a ping on another stream.
func FuzzServerFrame(f *testing.F) {
	key := newKey(f)
	msg := func(m *wirepb.Message) []byte { return frame(marshal(f, m)) }
	req := func(id uint32, r *wirepb.Request) []byte {
		return msg(&wirepb.Message{Id: id, Kind: &wirepb.Message_Request{Request: r}})
	}
	ping := req(1, pingReq([]byte("hello")))
	for _, seed := range [][]byte{
		nil,
		{0},
		{0xff, 0xff, 0xff, 0xff},
		header(wire.MaxFrame),
		frame(nil),
		frame([]byte{0xff}),
		ping,
		ping[:len(ping)-2],
		append(append([]byte{}, ping...), ping...),
		req(2, startReq(key.Public())),
		append(req(1, startReq(key.Public())), req(2, proveReq(true, make([]byte, 32), make([]byte, 64)))...),
		req(3, &wirepb.Request{Body: &wirepb.Request_Search{Search: &wirepb.ProfileSearchRequest{
			MaxResponseRecordCount: 10, MaxTotalRecordCount: 10, Name: "a*", ExtraData: "(a|b)+$"}}}),
		req(4, &wirepb.Request{Body: &wirepb.Request_SearchPart{SearchPart: &wirepb.ProfileSearchPartRequest{RecordCount: 1}}}),
		req(5, getProfileReq(make([]byte, 32))),
		req(6, &wirepb.Request{Body: &wirepb.Request_Stats{Stats: &wirepb.ProfileStatsRequest{}}}),
		msg(&wirepb.Message{Id: 7, Kind: &wirepb.Message_Response{Response: &wirepb.Response{}}}),
	} {
		f.Add(seed)
	}

	srv := profileservertest.Start(f, func(c *profileserver.Config) {
		c.PeerRate = rate.Inf
		c.MaxStreamsPerPeer = 1000
		c.ClientIdleTimeout = 5 * time.Second // bounds a stream the server still waits on
	})
	h := profileservertest.ClientHost(f)
	h.Peerstore().AddAddrs(srv.Addr.ID, srv.Addr.Addrs, time.Hour)

	f.Fuzz(func(t *testing.T, in []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		st, err := h.NewStream(ctx, srv.Addr.ID, profileserver.ProtocolClient)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		st.SetDeadline(time.Now().Add(callTimeout))
		if len(in) > 0 {
			if _, err := st.Write(in); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		st.CloseWrite() // the server reads EOF after the input

		violation := false
		for {
			m, err := wire.ReadMessage(st)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("server neither answered nor closed the stream within %v", callTimeout)
				}
				break // the server closed the stream
			}
			if violation {
				t.Fatalf("message %v after a protocol violation", m)
			}
			if m.GetResponse() == nil {
				t.Fatalf("server sent %v, want only responses", m)
			}
			violation = m.GetResponse().Status == wirepb.Status_PROTOCOL_VIOLATION
		}

		c, err := client.Dial(ctx, h, srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Ping(ctx, []byte("alive")); err != nil {
			t.Fatalf("ping after the input: %v", err)
		}
	})
}
