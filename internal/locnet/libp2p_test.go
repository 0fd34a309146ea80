package locnet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/time/rate"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
	"github.com/iop-go/iop/internal/locnet/locpb"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLibp2p runs four nodes on real libp2p hosts on loopback.
func TestLibp2p(t *testing.T) {
	ctx := testCtx(t)
	locs := []graph.Location{deg(t, 47.50, 19.04), deg(t, 48.21, 16.37), deg(t, 50.08, 14.44), deg(t, 52.23, 21.01)}
	nodes := locnettest.StartHosts(t, locs, nil)
	for _, hn := range nodes[1:] {
		if err := hn.Node.Bootstrap(ctx); err != nil {
			t.Fatalf("bootstrap: %v", err)
		}
	}
	for _, hn := range nodes {
		hn.Node.Maintain(ctx)
	}
	for i, hn := range nodes {
		if got := len(hn.Node.Neighbours()); got != 3 {
			t.Errorf("node %d has %d neighbours, want 3", i, got)
		}
		for _, nb := range hn.Node.Neighbours() {
			if len(nb.Addrs) == 0 {
				t.Errorf("node %d: neighbour %s without addresses", i, nb.ID.Short())
			}
		}
	}
	if obs := nodes[3].Node.ObservedAddr(); obs == "" {
		t.Error("ObservedAddr empty after relations were accepted")
	}
	// Closest to Brno (between Vienna and Prague): Vienna.
	got, err := nodes[3].Node.ExploreClosest(ctx, deg(t, 49.19, 16.61), 2, 5)
	if err != nil || len(got) == 0 || got[0].ID != nodes[1].Key.ID() {
		t.Fatalf("ExploreClosest(Brno) = %v, %v; want Vienna first", got, err)
	}
	local := nodes[0].Node.ClosestNodes(deg(t, 49.19, 16.61), 10, 250)
	if len(local) != 2 || local[0].ID != nodes[1].Key.ID() || local[1].ID != nodes[2].Key.ID() {
		t.Errorf("ClosestNodes(Brno, 250 km) = %v, want Vienna, Prague", local)
	}
	// A service change reaches the neighbours at once.
	_, sub := nodes[0].Node.Subscribe(16)
	defer sub.Close()
	if err := nodes[2].Node.SetServices(ctx, []locnet.Service{{Type: "profile", Data: []byte{1}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-sub.C():
		if c.Kind != locnet.Updated || c.Info.ID != nodes[2].Key.ID() || len(c.Info.Services) != 1 {
			t.Errorf("change = %v %v, want Prague updated with a service", c.Kind, c.Info)
		}
	case <-ctx.Done():
		t.Fatal("no neighbourhood change")
	}
}

func TestLibp2pWrongNode(t *testing.T) {
	ctx := testCtx(t)
	nodes := locnettest.StartHosts(t, []graph.Location{deg(t, 0, 0), deg(t, 0, 1), deg(t, 0, 2)}, nil)
	getInfo := &locpb.Request{Body: &locpb.Request_GetNodeInfo{GetNodeInfo: &locpb.GetNodeInfoRequest{}}}
	// A contact naming one node with another node's key.
	c := nodes[1].Contact()
	c.ID = nodes[2].Key.ID()
	if _, err := nodes[0].Transport.Call(ctx, c, getInfo); !errors.Is(err, locnet.ErrWrongNode) {
		t.Errorf("Call with a mismatched contact = %v, want ErrWrongNode", err)
	}
	// A node answering with another node's (valid) info.
	other := nodes[2].Node.Self()
	nodes[1].Transport.Handle(liar{real: nodes[1].Node, change: func(_ *locpb.Request, resp *locpb.Response) *locpb.Response {
		if _, ok := resp.Body.(*locpb.Response_GetNodeInfo); ok {
			return &locpb.Response{Body: &locpb.Response_GetNodeInfo{GetNodeInfo: &locpb.GetNodeInfoResponse{Node: other.Proto()}}}
		}
		return resp
	}})
	if _, err := nodes[0].Transport.Call(ctx, nodes[1].Contact(), getInfo); !errors.Is(err, locnet.ErrWrongNode) {
		t.Errorf("Call answered with another node's info = %v, want ErrWrongNode", err)
	}
	// A seed known only by its address is identified by its /p2p/ part.
	seed := locnet.Contact{Addrs: nodes[2].Transport.Addrs()}
	resp, err := nodes[0].Transport.Call(ctx, seed, getInfo)
	if err != nil || resp.GetGetNodeInfo() == nil {
		t.Fatalf("Call(address only) = %v, %v", resp, err)
	}
}

func TestLibp2pBusy(t *testing.T) {
	ctx := testCtx(t)
	nodes := locnettest.StartHosts(t, []graph.Location{deg(t, 0, 0), deg(t, 0, 1)}, nil)
	tr, err := locnet.NewLibp2pTransport(locnet.Libp2pConfig{Host: nodes[1].Host, PeerRate: rate.Every(time.Hour), PeerBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Handle(nodes[1].Node)
	getCount := &locpb.Request{Body: &locpb.Request_GetNodeCount{GetNodeCount: &locpb.GetNodeCountRequest{}}}
	for i, busy := range []bool{false, false, true, true} {
		resp, err := nodes[0].Transport.Call(ctx, nodes[1].Contact(), getCount)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := resp.Status == locpb.Status_BUSY; got != busy {
			t.Errorf("call %d: status %v, want busy %v", i, resp.Status, busy)
		}
	}
	// A BUSY answer is an error that errors.Is ErrBusy, whatever its details.
	if errors.Is(&wire.StatusError{Status: wirepb.Status_BUSY, Details: "x"}, locnet.ErrBusy) == false {
		t.Error("a BUSY status error is not ErrBusy")
	}
}

func TestLibp2pMalformed(t *testing.T) {
	ctx := testCtx(t)
	nodes := locnettest.StartHosts(t, []graph.Location{deg(t, 0, 0), deg(t, 0, 1)}, nil)
	h := nodes[0].Host
	h.Peerstore().AddAddrs(nodes[1].Host.ID(), nodes[1].Host.Addrs(), time.Minute)
	for _, tt := range []struct {
		name string
		send func(network.Stream) error
	}{
		{"garbage", func(st network.Stream) error { return wire.WriteFrame(st, []byte{0xff, 0xff, 0xff}) }},
		{"no body", func(st network.Stream) error { return wire.WriteFrame(st, nil) }},
		{"oversized", func(st network.Stream) error { _, err := st.Write([]byte{0x7f, 0, 0, 0}); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := h.NewStream(ctx, nodes[1].Host.ID(), locnet.ProtocolID)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_ = st.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tt.send(st); err != nil {
				t.Fatal(err)
			}
			b, err := wire.ReadFrame(st)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			resp, err := locnet.DecodeResponse(b)
			if err != nil || resp.Status != locpb.Status_PROTOCOL_VIOLATION {
				t.Fatalf("response = %v, %v; want PROTOCOL_VIOLATION", resp, err)
			}
		})
	}
}

// TestLibp2pRun runs nodes as services on real time with short intervals.
func TestLibp2pRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three LOC nodes over libp2p on the wall clock for about 5 s; skipped with -short")
	}
	locs := []graph.Location{deg(t, 0, 0), deg(t, 0, 1), deg(t, 0, 2)}
	nodes := locnettest.StartHosts(t, locs, func(i int, c *locnet.Config) {
		c.DiscoveryInterval = 200 * time.Millisecond
		c.RenewInterval = time.Second
		c.EntryExpiry = 3 * time.Second
		c.BootstrapRetry = 100 * time.Millisecond
	})
	_, sub := nodes[0].Node.Subscribe(64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(nodes))
	for _, hn := range nodes {
		go func() { done <- hn.Node.Run(ctx) }()
	}
	seen := map[string]bool{}
	timeout := time.After(20 * time.Second)
	for len(seen) < 2 {
		select {
		case c := <-sub.C():
			if c.Kind == locnet.Added {
				seen[c.Info.ID.String()] = true
			}
		case <-timeout:
			t.Fatalf("node 0 saw %d neighbours join, want 2", len(seen))
		}
	}
	cancel()
	for range nodes {
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
	nodes[0].Node.Close()
	if err := nodes[0].Node.Run(context.Background()); !errors.Is(err, locnet.ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
}
