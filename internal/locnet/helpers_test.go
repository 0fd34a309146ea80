package locnet_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locnettest"
	"github.com/iop-go/iop/internal/locnet/locpb"
	"github.com/iop-go/iop/internal/locnet/memnet"
)

var ctx = context.Background()

// deg is a location in degrees.
func deg(t testing.TB, lat, lon float64) graph.Location {
	t.Helper()
	l, err := graph.LocationFromDegrees(lat, lon)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// env is a memnet with a virtual clock.
type env struct {
	t     testing.TB
	net   *memnet.Network
	clock *locnettest.Clock
	n     int
}

func newEnv(t testing.TB) *env {
	return &env{t: t, net: memnet.New(), clock: locnettest.NewClock(locnettest.Epoch)}
}

// node starts a node at loc, serving on the memnet.
func (e *env) node(loc graph.Location, edit func(*locnet.Config)) (*locnet.Node, *memnet.Endpoint) {
	e.t.Helper()
	e.n++
	k := locnettest.Key(99, e.n)
	ep := e.net.Join(k.Public())
	c := locnet.Config{
		Key: k, Location: loc, Addrs: []string{ep.Addr()}, Transport: ep,
		Clock: e.clock.Now, Rand: rand.New(rand.NewPCG(7, uint64(e.n))),
	}
	if edit != nil {
		edit(&c)
	}
	n, err := locnet.New(c)
	if err != nil {
		e.t.Fatal(err)
	}
	ep.Handle(n)
	return n, ep
}

// peer is a key with a signed node info that is not a running node: tests
// send requests in its name.
type peer struct {
	key  *identity.Key
	info *locnet.NodeInfo
}

func (e *env) peer(loc graph.Location) peer {
	e.t.Helper()
	e.n++
	k := locnettest.Key(99, e.n)
	return peer{key: k, info: signInfo(e.t, k, loc, 1, e.clock.Now())}
}

func (p peer) contact() locnet.Contact {
	return locnet.Contact{ID: p.key.ID(), PublicKey: p.key.Public(), Addrs: []string{memnet.Addr(p.key.ID())}}
}

func signInfo(t testing.TB, k *identity.Key, loc graph.Location, seq uint64, at time.Time) *locnet.NodeInfo {
	t.Helper()
	info, err := locnet.SignNodeInfo(k, locnet.NodeInfo{
		Addrs: []string{memnet.Addr(k.ID())}, Location: loc, Sequence: seq, IssuedAt: at,
	})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// build is a relation request.
func build(name string, info *locpb.SignedNodeInfo) *locpb.Request {
	b := &locpb.BuildNetworkRequest{Requestor: info}
	switch name {
	case "acceptColleague":
		return &locpb.Request{Body: &locpb.Request_AcceptColleague{AcceptColleague: b}}
	case "renewColleague":
		return &locpb.Request{Body: &locpb.Request_RenewColleague{RenewColleague: b}}
	case "acceptNeighbour":
		return &locpb.Request{Body: &locpb.Request_AcceptNeighbour{AcceptNeighbour: b}}
	case "renewNeighbour":
		return &locpb.Request{Body: &locpb.Request_RenewNeighbour{RenewNeighbour: b}}
	}
	panic(name)
}

// ask sends a relation request from p to n and returns whether n accepted.
func ask(t testing.TB, n *locnet.Node, p peer, name string) bool {
	t.Helper()
	resp := n.HandleRequest(ctx, p.contact(), build(name, p.info.Proto()))
	if resp.Status != locpb.Status_OK {
		t.Fatalf("%s from %s: status %v %s", name, p.info, resp.Status, resp.Details)
	}
	return resp.GetBuildNetwork().Accepted
}

// entry returns n's entry of id.
func entry(n *locnet.Node, id identity.ID) (locnet.Entry, bool) {
	for _, e := range n.Entries() {
		if e.Info.ID == id {
			return e, true
		}
	}
	return locnet.Entry{}, false
}
