package locnet_test

import (
	"math"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/locnet"
)

func TestBubbleSize(t *testing.T) {
	tests := []struct{ dist, want float64 }{
		{0, 2.37},       // log10(2500)*501-1700: about 3 km next to the node
		{1000, 75.58},   // log10(3500)*501-1700
		{10000, 352.55}, // log10(12500)*501-1700
		{20000, 480.44},
	}
	for _, tt := range tests {
		if got := locnet.BubbleSize(tt.dist); math.Abs(got-tt.want) > 0.01 {
			t.Errorf("BubbleSize(%v) = %.2f, want %.2f", tt.dist, got, tt.want)
		}
	}
	// Two colleagues 1,000 km away overlap when closer than 151.2 km.
	if !locnet.BubblesOverlap(1000, 1000, 151) || locnet.BubblesOverlap(1000, 1000, 151.3) {
		t.Errorf("BubblesOverlap around 151.2 km wrong")
	}
}

func TestColleagueAdmission(t *testing.T) {
	e := newEnv(t)
	n, _ := e.node(deg(t, 0, 0), nil)
	// A colleague about 1,000 km east: its bubble is 75.6 km.
	first := e.peer(deg(t, 0, 9))
	if !ask(t, n, first, "acceptColleague") {
		t.Fatal("first colleague refused on an empty map")
	}
	tests := []struct {
		name   string
		lat    float64
		lon    float64
		accept bool
	}{
		// 0.5° (56 km) from the first: bubbles 75.6 + ~72 km overlap.
		{"overlapping", 0, 8.5, false},
		// 2° (222 km) from the first: no overlap.
		{"beyond the bubbles", 0, 7, true},
		// Near this node bubbles are small: 5 km apart is fine.
		{"near this node", 0, 0.05, true},
		{"near the near one", 0, 0.06, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.peer(deg(t, tt.lat, tt.lon))
			got := ask(t, n, p, "acceptColleague")
			if got != tt.accept {
				t.Fatalf("acceptColleague at %v,%v = %v, want %v", tt.lat, tt.lon, got, tt.accept)
			}
			en, stored := entry(n, p.key.ID())
			if stored != tt.accept || stored && (en.Relation != locnet.Colleague || en.Role != locnet.Acceptor) {
				t.Fatalf("entry = %+v, %v; want stored %v as an accepted colleague", en, stored, tt.accept)
			}
		})
	}
	// A colleague renews; a neighbour is never downgraded to a colleague.
	if !ask(t, n, first, "renewColleague") {
		t.Error("renewColleague of a colleague refused")
	}
	nb := e.peer(deg(t, 0, 0.2))
	if !ask(t, n, nb, "acceptNeighbour") {
		t.Fatal("acceptNeighbour refused on an empty neighbourhood")
	}
	if ask(t, n, nb, "acceptColleague") {
		t.Error("acceptColleague of a neighbour accepted: no downgrade allowed")
	}
	if en, _ := entry(n, nb.key.ID()); en.Relation != locnet.Neighbour {
		t.Errorf("neighbour became %v", en.Relation)
	}
}

// fillNeighbours makes 50 neighbours of n along the equator east of it, 11
// to 556 km away, and returns them closest first.
func fillNeighbours(t *testing.T, e *env, n *locnet.Node) []peer {
	var out []peer
	for i := range 50 {
		p := e.peer(deg(t, 0, 0.1*float64(i+1)))
		if !ask(t, n, p, "acceptNeighbour") {
			t.Fatalf("neighbour %d refused", i)
		}
		out = append(out, p)
	}
	return out
}

func TestNeighbourAdmissionAtLimit(t *testing.T) {
	e := newEnv(t)
	n, _ := e.node(deg(t, 0, 0), nil)
	nbs := fillNeighbours(t, e, n)
	if got := n.Stats().Neighbours; got != 50 {
		t.Fatalf("neighbours = %d, want 50", got)
	}
	// Farther than the 50th and beyond them: refused.
	far := e.peer(deg(t, 0, 6))
	if ask(t, n, far, "acceptNeighbour") {
		t.Fatal("acceptNeighbour beyond the 50th accepted")
	}
	if _, ok := entry(n, far.key.ID()); ok {
		t.Fatal("refused node stored")
	}
	// Closer than the 50th: accepted, the neighbourhood exceeds 50.
	near := e.peer(deg(t, 0, -0.05))
	if !ask(t, n, near, "acceptNeighbour") {
		t.Fatal("acceptNeighbour closer than the 50th refused")
	}
	if got := n.Stats().Neighbours; got != 51 {
		t.Fatalf("neighbours = %d, want 51", got)
	}
	// The old 50th now ranks 50, and with a colleague farther east this node
	// knows 50 nodes closer to it than itself: its renewal is refused and it
	// goes.
	if !ask(t, n, e.peer(deg(t, 0, 8)), "acceptColleague") {
		t.Fatal("colleague refused")
	}
	last := nbs[49]
	if ask(t, n, last, "renewNeighbour") {
		t.Fatal("renewNeighbour of the neighbour ranked 50 accepted")
	}
	if _, ok := entry(n, last.key.ID()); ok {
		t.Fatal("neighbour whose renewal was refused still stored")
	}
	// Ranks below 50 renew.
	if !ask(t, n, nbs[48], "renewNeighbour") {
		t.Fatal("renewNeighbour of the neighbour ranked 49 refused")
	}
	if got := n.Stats().Neighbours; got != 50 {
		t.Fatalf("neighbours = %d, want 50", got)
	}
}

// TestNeighbourWantedBy checks the extension of the 2017 rule: a node
// accepts a requester that ranks beyond its 50th neighbour when it may be
// among the requester's 50 nearest, i.e. it knows fewer than 50 nodes
// closer to the requester than itself.
func TestNeighbourWantedBy(t *testing.T) {
	e := newEnv(t)
	n, _ := e.node(deg(t, 0, 0), nil)
	fillNeighbours(t, e, n) // all east of n
	west := e.peer(deg(t, 0, -6))
	if !ask(t, n, west, "acceptNeighbour") {
		t.Fatal("a lone node to the west, whose nearest known node is n, refused")
	}
	en, _ := entry(n, west.key.ID())
	if en.Relation != locnet.Neighbour || en.Role != locnet.Acceptor {
		t.Fatalf("entry = %v/%v, want neighbour/acceptor", en.Relation, en.Role)
	}
}

func TestNeighbourCap(t *testing.T) {
	e := newEnv(t)
	n, _ := e.node(deg(t, 0, 0), func(c *locnet.Config) { c.MaxNeighbours = 52 })
	fillNeighbours(t, e, n)
	for i, accept := range []bool{true, true, false} {
		p := e.peer(deg(t, float64(i+1), -10))
		if got := ask(t, n, p, "acceptNeighbour"); got != accept {
			t.Errorf("request %d beyond the 50th with a cap of 52 = %v, want %v", i, got, accept)
		}
	}
}

func TestRolesAndExpiry(t *testing.T) {
	e := newEnv(t)
	a, epA := e.node(deg(t, 0, 0), nil)
	b, epB := e.node(deg(t, 0, 1), func(c *locnet.Config) { c.Seeds = []locnet.Contact{epA.Contact()} })
	if err := b.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	ea, _ := entry(a, b.ID())
	eb, _ := entry(b, a.ID())
	if ea.Relation != locnet.Neighbour || ea.Role != locnet.Acceptor || eb.Relation != locnet.Neighbour || eb.Role != locnet.Initiator {
		t.Fatalf("after b joined through a: a has %v/%v, b has %v/%v; want neighbour acceptor / initiator", ea.Relation, ea.Role, eb.Relation, eb.Role)
	}
	// Only the initiator renews.
	e.clock.Advance(locnet.DefaultRenewInterval)
	ca, cb := epA.Calls(), epB.Calls()
	a.Maintain(ctx)
	b.Maintain(ctx)
	if got := e.net.CallsByKind()["renewNeighbour"]; got != 1 {
		t.Errorf("renewNeighbour calls = %d, want 1", got)
	}
	if epB.Calls() == cb {
		t.Error("the initiator sent nothing at maintenance")
	}
	_ = ca
	ea2, _ := entry(a, b.ID())
	if !ea2.ExpiresAt.After(ea.ExpiresAt) {
		t.Errorf("a's entry of b expires %v, not later than %v after renewal", ea2.ExpiresAt, ea.ExpiresAt)
	}
	// b goes away: a keeps it until the relation expires, then drops it.
	epB.SetDown(true)
	e.clock.Advance(locnet.DefaultEntryExpiry - time.Minute)
	a.Tick(ctx)
	if _, ok := entry(a, b.ID()); !ok {
		t.Fatal("entry dropped before it expired")
	}
	e.clock.Advance(2 * time.Minute)
	a.Tick(ctx)
	if _, ok := entry(a, b.ID()); ok {
		t.Fatal("entry of a vanished node kept after expiry")
	}
}
