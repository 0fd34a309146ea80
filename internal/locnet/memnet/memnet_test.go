package memnet_test

import (
	"context"
	"errors"
	"testing"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
	"github.com/iop-go/iop/internal/locnet/locpb"
	"github.com/iop-go/iop/internal/locnet/memnet"
)

// echo answers every request with a node count of 1.
type echo struct{ from *locnet.Contact }

func (e echo) HandleRequest(_ context.Context, from locnet.Contact, _ *locpb.Request) *locpb.Response {
	*e.from = from
	return &locpb.Response{Body: &locpb.Response_GetNodeCount{GetNodeCount: &locpb.GetNodeCountResponse{NodeCount: 1}}}
}

func TestNetwork(t *testing.T) {
	ctx := context.Background()
	for _, encode := range []bool{false, true} {
		net := memnet.New()
		net.Encode = encode
		a := net.Join(locnettest.Key(1, 1).Public())
		b := net.Join(locnettest.Key(1, 2).Public())
		var from locnet.Contact
		b.Handle(echo{&from})
		req := &locpb.Request{Body: &locpb.Request_GetNodeCount{GetNodeCount: &locpb.GetNodeCountRequest{}}}
		call := func(to locnet.Contact) error {
			resp, err := a.Call(ctx, to, req)
			if err == nil && resp.GetGetNodeCount().GetNodeCount() != 1 {
				t.Fatalf("response = %v", resp)
			}
			return err
		}
		if err := call(b.Contact()); err != nil {
			t.Fatalf("encode %v: call: %v", encode, err)
		}
		if from.ID != a.ID() || from.Addrs[0] != a.Addr() {
			t.Errorf("callee saw caller %v, want %s", from, a.ID().Short())
		}
		// By address only.
		if err := call(locnet.Contact{Addrs: []string{b.Addr()}}); err != nil {
			t.Errorf("call by address: %v", err)
		}
		unreachable := func(what string) {
			t.Helper()
			if err := call(b.Contact()); !errors.Is(err, locnet.ErrUnreachable) {
				t.Errorf("%s: call = %v, want ErrUnreachable", what, err)
			}
		}
		net.Partition([]identity.ID{a.ID()}, []identity.ID{b.ID()})
		unreachable("partitioned")
		net.Heal()
		if err := call(b.Contact()); err != nil {
			t.Errorf("healed: %v", err)
		}
		b.SetDown(true)
		unreachable("callee down")
		b.SetDown(false)
		a.SetDown(true)
		unreachable("caller down")
		a.SetDown(false)
		b.Handle(nil)
		unreachable("not serving")
		if got := a.Calls(); got != 7 || net.CallsByKind()["getNodeCount"] != 7 {
			t.Errorf("Calls() = %d, by kind %v; want 7", got, net.CallsByKind())
		}
	}
}
