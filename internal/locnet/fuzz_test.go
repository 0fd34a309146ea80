package locnet_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
	"github.com/iop-go/iop/internal/locnet/locpb"
	"github.com/iop-go/iop/internal/locnet/memnet"
)

func FuzzOpenNodeInfo(f *testing.F) {
	k := locnettest.Key(5, 1)
	info := signInfo(f, k, deg(f, 10, 20), 3, locnettest.Epoch)
	f.Add([]byte(info.PublicKey), info.Raw, info.Signature)
	f.Add([]byte(info.PublicKey), []byte{}, info.Signature)
	f.Fuzz(func(t *testing.T, pub, raw, sig []byte) {
		got, err := locnet.OpenNodeInfo(&locpb.SignedNodeInfo{PublicKey: pub, NodeInfo: raw, Signature: sig})
		if err != nil {
			return
		}
		// Whatever opens is signed by its key and re-opens the same.
		again, err := locnet.OpenNodeInfo(got.Proto())
		if err != nil || again.ID != got.ID || again.Sequence != got.Sequence || again.Location != got.Location {
			t.Fatalf("re-open = %v, %v; want %v", again, err, got)
		}
	})
}

// fuzzNode is a node with some neighbours and colleagues, to answer fuzzed
// requests.
func fuzzNode(f *testing.F) (*locnet.Node, []peer) {
	e := &env{t: f, net: memnet.New(), clock: locnettest.NewClock(locnettest.Epoch)}
	n, _ := e.node(deg(f, 0, 0), nil)
	var peers []peer
	for i := range 8 {
		p := e.peer(deg(f, float64(i), float64(i*i)))
		name := "acceptNeighbour"
		if i%2 == 1 {
			name = "acceptColleague"
		}
		n.HandleRequest(context.Background(), p.contact(), build(name, p.info.Proto()))
		peers = append(peers, p)
	}
	return n, peers
}

func FuzzHandleRequest(f *testing.F) {
	n, peers := fuzzNode(f)
	newcomer := peers[0]
	for _, r := range []*locpb.Request{
		build("acceptNeighbour", newcomer.info.Proto()),
		build("renewColleague", peers[1].info.Proto()),
		{Body: &locpb.Request_GetNodeCount{GetNodeCount: &locpb.GetNodeCountRequest{}}},
		{Body: &locpb.Request_GetRandomNodes{GetRandomNodes: &locpb.GetRandomNodesRequest{MaxNodeCount: 5}}},
		{Body: &locpb.Request_GetClosestNodes{GetClosestNodes: &locpb.GetClosestNodesRequest{Latitude: 1, Longitude: 2, MaxNodeCount: 3, MaxRadiusKm: 500}}},
		{Body: &locpb.Request_GetNodeInfo{GetNodeInfo: &locpb.GetNodeInfoRequest{}}},
	} {
		b, _ := proto.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := locnet.DecodeRequest(b)
		if err != nil {
			return
		}
		resp := n.HandleRequest(context.Background(), newcomer.contact(), req)
		if resp == nil {
			t.Fatal("nil response")
		}
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
		for _, e := range n.Entries() {
			if _, err := locnet.OpenNodeInfo(e.Info.Proto()); err != nil {
				t.Fatalf("stored an unverifiable node info: %v", err)
			}
		}
	})
}

// fixedTransport answers every call with one response.
type fixedTransport struct{ resp *locpb.Response }

func (f fixedTransport) Call(context.Context, locnet.Contact, *locpb.Request) (*locpb.Response, error) {
	return f.resp, nil
}

func FuzzDecodeResponse(f *testing.F) {
	k := locnettest.Key(5, 2)
	info := signInfo(f, k, deg(f, 1, 1), 1, locnettest.Epoch)
	for _, r := range []*locpb.Response{
		{Body: &locpb.Response_NodeList{NodeList: &locpb.NodeListResponse{Nodes: []*locpb.SignedNodeInfo{info.Proto()}}}},
		{Body: &locpb.Response_BuildNetwork{BuildNetwork: &locpb.BuildNetworkResponse{Accepted: true, Acceptor: info.Proto()}}},
		{Body: &locpb.Response_GetNodeInfo{GetNodeInfo: &locpb.GetNodeInfoResponse{Node: info.Proto()}}},
		{Body: &locpb.Response_GetNodeCount{GetNodeCount: &locpb.GetNodeCountResponse{NodeCount: 7}}},
		{Status: locpb.Status_BUSY, Details: "later"},
	} {
		b, _ := proto.Marshal(r)
		f.Add(b)
	}
	seed := locnet.Contact{ID: k.ID(), PublicKey: k.Public(), Addrs: []string{"/memnet/x"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := locnet.DecodeResponse(b)
		if err != nil {
			return
		}
		clock := locnettest.NewClock(locnettest.Epoch.Add(time.Minute))
		n, err := locnet.New(locnet.Config{
			Key: locnettest.Key(5, 3), Location: deg(t, 0, 0), Transport: fixedTransport{resp},
			Seeds: []locnet.Contact{seed}, Clock: clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_ = n.Bootstrap(ctx)
		n.Discover(ctx)
		n.MergeSplits(ctx)
		_, _ = n.ExploreClosest(ctx, deg(t, 1, 1), 3, 3)
		n.Maintain(ctx)
		for _, e := range n.Entries() {
			if _, err := locnet.OpenNodeInfo(e.Info.Proto()); err != nil {
				t.Fatalf("stored an unverifiable node info: %v", err)
			}
		}
	})
}
