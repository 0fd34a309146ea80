package locnet_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// TestRequestNodeInfoChecks sends relation requests whose node info is
// wrong in some way: each is refused with a status and nothing is stored.
func TestRequestNodeInfoChecks(t *testing.T) {
	e := newEnv(t)
	n, _ := e.node(deg(t, 0, 0), nil)
	now := e.clock.Now()
	p := e.peer(deg(t, 0, 1))
	other := e.peer(deg(t, 0, 2))
	forged := proto.Clone(p.info.Proto()).(*locpb.SignedNodeInfo)
	forged.NodeInfo = bytes.Clone(forged.NodeInfo)
	forged.NodeInfo[len(forged.NodeInfo)-1] ^= 1
	tests := []struct {
		name   string
		from   peer
		info   *locpb.SignedNodeInfo
		status locpb.Status
	}{
		{"forged", p, forged, locpb.Status_INVALID_SIGNATURE},
		{"another node's info", other, p.info.Proto(), locpb.Status_UNAUTHORIZED},
		{"issued in the future", p, signInfo(t, p.key, p.info.Location, 2, now.Add(time.Hour)).Proto(), locpb.Status_INVALID_VALUE},
		{"issued too long ago", p, signInfo(t, p.key, p.info.Location, 2, now.Add(-49*time.Hour)).Proto(), locpb.Status_INVALID_VALUE},
		{"missing", p, nil, locpb.Status_INVALID_VALUE},
	}
	for _, tt := range tests {
		for _, name := range []string{"acceptNeighbour", "acceptColleague", "renewNeighbour"} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				resp := n.HandleRequest(ctx, tt.from.contact(), build(name, tt.info))
				if resp.Status != tt.status {
					t.Fatalf("status = %v (%s), want %v", resp.Status, resp.Details, tt.status)
				}
				if got := len(n.Entries()); got != 0 {
					t.Fatalf("map holds %d entries after a refused request", got)
				}
			})
		}
	}
}

func TestReplayedNodeInfo(t *testing.T) {
	e := newEnv(t)
	n, _ := e.node(deg(t, 0, 0), nil)
	now := e.clock.Now()
	p := e.peer(deg(t, 0, 1))
	v5 := signInfo(t, p.key, deg(t, 0, 1), 5, now)
	v3 := signInfo(t, p.key, deg(t, 0, 3), 3, now)
	v5b := signInfo(t, p.key, deg(t, 0, 4), 5, now)
	resp := n.HandleRequest(ctx, p.contact(), build("acceptNeighbour", v5.Proto()))
	if !resp.GetBuildNetwork().GetAccepted() {
		t.Fatalf("acceptNeighbour = %v", resp)
	}
	for _, tt := range []struct {
		name string
		info *locnet.NodeInfo
	}{{"older sequence", v3}, {"same sequence, other content", v5b}} {
		resp := n.HandleRequest(ctx, p.contact(), build("renewNeighbour", tt.info.Proto()))
		if resp.Status != locpb.Status_INVALID_VALUE {
			t.Errorf("%s: status = %v (%s), want INVALID_VALUE", tt.name, resp.Status, resp.Details)
		}
		if en, _ := entry(n, p.key.ID()); en.Info.Sequence != 5 || en.Info.Location != v5.Location {
			t.Errorf("%s: stored info became %v", tt.name, en.Info)
		}
	}
	// The same record again is a renewal; a newer one replaces it.
	if resp := n.HandleRequest(ctx, p.contact(), build("renewNeighbour", v5.Proto())); !resp.GetBuildNetwork().GetAccepted() {
		t.Errorf("renewal with the same record refused: %v", resp)
	}
	v6 := signInfo(t, p.key, deg(t, 0, 1), 6, now)
	if resp := n.HandleRequest(ctx, p.contact(), build("renewNeighbour", v6.Proto())); !resp.GetBuildNetwork().GetAccepted() {
		t.Errorf("renewal with a newer record refused: %v", resp)
	}
	if en, _ := entry(n, p.key.ID()); en.Info.Sequence != 6 {
		t.Errorf("stored sequence = %d, want 6", en.Info.Sequence)
	}
	if got := n.Stats().StaleInfos; got != 2 {
		t.Errorf("Stats().StaleInfos = %d, want 2", got)
	}
}

// liar wraps a node's handler and changes its answers.
type liar struct {
	real   locnet.Handler
	change func(req *locpb.Request, resp *locpb.Response) *locpb.Response
}

func (l liar) HandleRequest(ctx context.Context, from locnet.Contact, req *locpb.Request) *locpb.Response {
	return l.change(req, l.real.HandleRequest(ctx, from, req))
}

var _ locnet.Handler = liar{}

// TestLyingPeer joins a node through a seed that tampers with the node
// infos it passes on and answers relation requests with another node's
// info. Nothing it forged is stored.
func TestLyingPeer(t *testing.T) {
	e := newEnv(t)
	seed, seedEP := e.node(deg(t, 0, 0), nil)
	var honest []*locnet.Node
	for i := range 5 {
		h, _ := e.node(deg(t, 1, float64(i)), func(c *locnet.Config) { c.Seeds = []locnet.Contact{seedEP.Contact()} })
		if err := h.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		honest = append(honest, h)
	}
	victimInfo := honest[0].Self()
	seedEP.Handle(liar{real: seed, change: func(req *locpb.Request, resp *locpb.Response) *locpb.Response {
		resp = proto.Clone(resp).(*locpb.Response)
		switch b := resp.Body.(type) {
		case *locpb.Response_NodeList:
			for _, s := range b.NodeList.Nodes {
				if bytes.Equal(s.PublicKey, victimInfo.PublicKey) {
					// Move the victim: change its latitude inside the signed bytes.
					s.NodeInfo = bytes.Clone(s.NodeInfo)
					// After the key (field 1, 34 bytes), the tag of field 3 (fixed32).
					i := 34 + bytes.IndexByte(s.NodeInfo[34:], 0x1d)
					s.NodeInfo[i+1] ^= 0x55
				}
			}
		case *locpb.Response_BuildNetwork:
			b.BuildNetwork.Acceptor = victimInfo.Proto()
		}
		return resp
	}})
	newcomer, _ := e.node(deg(t, 1, 0.5), func(c *locnet.Config) { c.Seeds = []locnet.Contact{seedEP.Contact()} })
	_ = newcomer.Bootstrap(ctx)
	st := newcomer.Stats()
	if st.BadInfos == 0 {
		t.Error("no tampered node info was refused")
	}
	if st.WrongNode == 0 {
		t.Error("no answer with another node's info was refused")
	}
	for _, en := range newcomer.Entries() {
		if _, err := locnet.OpenNodeInfo(en.Info.Proto()); err != nil {
			t.Errorf("stored node info does not verify: %v", err)
		}
		if en.Info.ID == seed.ID() {
			t.Errorf("stored the lying seed, whose answers named another node")
		}
		if en.Info.ID == victimInfo.ID && en.Info.Location != victimInfo.Location {
			t.Errorf("stored the victim at a forged location %v", en.Info.Location)
		}
	}
	// The honest nodes are still found, with their true infos.
	found := 0
	for _, h := range honest {
		if en, ok := entry(newcomer, h.ID()); ok && en.Info.Location == h.Self().Location {
			found++
		}
	}
	if found < 4 {
		t.Errorf("newcomer knows %d of the 5 honest nodes, want at least 4", found)
	}
}
