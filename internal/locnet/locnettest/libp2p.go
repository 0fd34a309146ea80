package locnettest

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/p2p"
)

// HostNode is a location network node on a real libp2p host.
type HostNode struct {
	Key       *identity.Key
	Host      host.Host
	Transport *locnet.Libp2pTransport
	Node      *locnet.Node
}

// Contact is how to reach the node: its ID, key and /p2p/ addresses.
func (h *HostNode) Contact() locnet.Contact {
	return locnet.Contact{ID: h.Key.ID(), PublicKey: h.Key.Public(), Addrs: h.Transport.Addrs()}
}

// StartHosts starts one node per location, each on its own libp2p host
// listening on loopback TCP, serving the protocol but not running: the test
// drives Bootstrap, Maintain and the rest. Node 0 is every node's seed.
// configure, if not nil, edits each configuration. Everything is closed
// when the test ends.
func StartHosts(tb testing.TB, locs []graph.Location, configure func(i int, c *locnet.Config)) []*HostNode {
	tb.Helper()
	var out []*HostNode
	for i, loc := range locs {
		k, err := identity.GenerateKey(nil)
		if err != nil {
			tb.Fatal(err)
		}
		h, err := p2p.New(p2p.Config{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			tb.Fatalf("host %d: %v", i, err)
		}
		tb.Cleanup(func() { h.Close() })
		tr, err := locnet.NewLibp2pTransport(locnet.Libp2pConfig{Host: h})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(tr.Close)
		hn := &HostNode{Key: k, Host: h, Transport: tr}
		c := locnet.Config{Key: k, Location: loc, Addrs: tr.Addrs(), Transport: tr}
		if len(out) > 0 {
			c.Seeds = []locnet.Contact{out[0].Contact()}
		}
		if configure != nil {
			configure(i, &c)
		}
		n, err := locnet.New(c)
		if err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
		tb.Cleanup(n.Close)
		tr.Handle(n)
		hn.Node = n
		out = append(out, hn)
	}
	return out
}
