package devnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
)

// person is one identity of the scenario, as the test knows it
// independently of any server.
type person struct {
	key  *identity.Key
	name string
	typ  string
	loc  graph.Location
}

// TestScenario is in the spirit of the 2017 network simulator: servers at
// places, groups of identities around points, each hosted by the server
// nearest its group, and searches from every server checked against the
// expected set computed here from the scenario alone.
func TestScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("runs six full nodes until their neighbourhoods are shared (up to 90 s): skipped with -short")
	}
	places := []City{{"Lisbon", 38.72, -9.14}, {"Warsaw", 52.23, 21.01}, {"Rome", 41.90, 12.50},
		{"Nairobi", -1.29, 36.82}, {"Lima", -12.05, -77.04}, {"Osaka", 34.69, 135.50}}
	info, h := runDevnet(t, Config{Dir: t.TempDir(), Nodes: len(places), Places: places})

	r := rand.New(rand.NewPCG(7, 11))
	groups := []struct {
		centre graph.Location
		server int
		n      int
		typ    string
	}{
		{loc(t, 38.70, -9.20), 0, 12, "chat/user"},
		{loc(t, 52.20, 21.00), 1, 10, "taxi/driver"},
		{loc(t, 41.85, 12.45), 2, 8, "chat/user"},
		{loc(t, 34.70, 135.45), 5, 6, "chat/bot"},
	}
	var people []person
	var conns []*client.Conn
	qctx, qcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer qcancel()
	for gi, g := range groups {
		for i := range g.n {
			k, _ := identity.GenerateKey(nil)
			// Scatter within about 30 km of the group's centre.
			p := person{key: k, typ: g.typ, name: fmt.Sprintf("%s %c%02d", []string{"Ana", "Bo", "Cy", "Di"}[gi], 'a'+rune(i%26), i),
				loc: graph.Location{Lat: g.centre.Lat + int32(r.IntN(400000)-200000), Lon: g.centre.Lon + int32(r.IntN(400000)-200000)}}
			c := dialNode(t, qctx, h, info.Nodes[g.server].Addr)
			if err := c.StartConversation(qctx, k); err != nil {
				t.Fatal(err)
			}
			if _, err := c.RegisterHosting(qctx, p.typ); err != nil {
				t.Fatal(err)
			}
			if err := c.CheckIn(qctx); err != nil {
				t.Fatal(err)
			}
			sp, err := graph.Sign(k, graph.Profile{Type: p.typ, Name: p.name, Location: p.loc, Extra: fmt.Sprintf("group=%d", gi), Sequence: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.UpdateProfile(qctx, sp, nil, nil, false); err != nil {
				t.Fatal(err)
			}
			people, conns = append(people, p), append(conns, c)
		}
	}
	_ = conns

	type query struct {
		q      client.Query
		expect func(p person) bool
	}
	var queries []query
	for range 12 {
		centre := people[r.IntN(len(people))].loc
		radius := uint32([]int{5000, 50000, 500000, 3000000}[r.IntN(4)])
		queries = append(queries, query{client.Query{Near: &centre, Radius: radius, Limit: 1000},
			func(p person) bool { return graph.Distance(centre, p.loc) <= float64(radius) }})
	}
	queries = append(queries,
		query{client.Query{Type: "chat/*", Limit: 1000}, func(p person) bool { return strings.HasPrefix(p.typ, "chat/") }},
		query{client.Query{Name: "*a0*", Limit: 1000}, func(p person) bool { return strings.Contains(strings.ToLower(p.name), "a0") }},
		query{client.Query{Extra: "group=[13]", Limit: 1000}, func(p person) bool {
			return strings.HasPrefix(p.name, "Bo ") || strings.HasPrefix(p.name, "Di ")
		}},
	)
	// Every server follows every other (6 nodes < 50 neighbours), so once
	// the neighbourhoods are shared every search from any server covers all.
	for si, nd := range info.Nodes {
		c := dialNode(t, qctx, h, nd.Addr)
		deadline := time.Now().Add(90 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond) // polling other servers' sync state
		for {
			res, err := c.SearchAll(qctx, client.Query{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Matches) == len(people) && len(res.CoveredServers) == len(places) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d (%s) sees %d of %d profiles from %d servers after 90 s", si, nd.Name, len(res.Matches), len(people), len(res.CoveredServers))
			}
			<-tick.C
		}
		tick.Stop()
		for qi, q := range queries {
			res, err := c.SearchAll(qctx, q.q)
			if err != nil {
				t.Fatalf("server %d query %d: %v", si, qi, err)
			}
			var got, want []string
			for _, m := range res.Matches {
				got = append(got, m.Profile.Profile.Name)
			}
			for _, p := range people {
				if q.expect(p) {
					want = append(want, p.name)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("server %d query %d (%+v): got %d %v, want %d %v", si, qi, q.q, len(got), got, len(want), want)
			}
		}
	}
}

// runDevnet starts and runs a devnet until the test ends, and returns its
// description and a client host.
func runDevnet(t *testing.T, cfg Config) (Info, host.Host) {
	t.Helper()
	d, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	h, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return d.Info(), h
}

func loc(t *testing.T, lat, lon float64) graph.Location {
	t.Helper()
	l, err := graph.LocationFromDegrees(lat, lon)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func dialNode(t *testing.T, ctx context.Context, h host.Host, addr string) *client.Conn {
	t.Helper()
	ai, err := p2p.ParseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, h, ai)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestResolveFollowsMoves: an identity hosted at one node resolves from
// another node to its server; after it cancels with a redirect, every node
// resolves it as moved to the new server.
func TestResolveFollowsMoves(t *testing.T) {
	info, h := runDevnet(t, Config{Dir: t.TempDir(), Nodes: 3})
	qctx, qcancel := context.WithTimeout(context.Background(), time.Minute)
	defer qcancel()
	k, _ := identity.GenerateKey(nil)
	c := dialNode(t, qctx, h, info.Nodes[0].Addr)
	if err := c.StartConversation(qctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterHosting(qctx, "chat/user"); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckIn(qctx); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishClaim(qctx); err != nil {
		t.Fatal(err)
	}
	other := dialNode(t, qctx, h, info.Nodes[2].Addr)
	waitResolve := func(state string, server identity.ID) {
		t.Helper()
		tick := time.NewTicker(20 * time.Millisecond) // the pointer is published in the background
		defer tick.Stop()
		for {
			res, err := other.Resolve(qctx, k.ID())
			if err == nil && res.State == state && res.Server == server {
				return
			}
			select {
			case <-tick.C:
			case <-qctx.Done():
				t.Fatalf("resolve = %+v, %v; want %s at %s", res, err, state, server.Short())
			}
		}
	}
	waitResolve("hosted", info.Nodes[0].ID)
	target := info.Nodes[1].ID
	if err := c.CancelHosting(qctx, &target); err != nil {
		t.Fatal(err)
	}
	waitResolve("moved", target)
}
