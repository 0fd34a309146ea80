package locnet_test

import (
	"errors"
	"testing"

	"github.com/iop-go/iop/internal/locnet"
)

// next returns the next change or fails.
func next(t *testing.T, s *locnet.Subscription) locnet.Change {
	t.Helper()
	select {
	case c, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return c
	default:
		t.Fatal("no change delivered")
	}
	return locnet.Change{}
}

func TestSubscribeAndSetServices(t *testing.T) {
	e := newEnv(t)
	a, epA := e.node(deg(t, 0, 0), nil)
	cur, sub := a.Subscribe(16)
	defer sub.Close()
	if len(cur) != 0 {
		t.Fatalf("Subscribe on an empty node = %d neighbours", len(cur))
	}
	b, epB := e.node(deg(t, 0, 1), func(c *locnet.Config) { c.Seeds = []locnet.Contact{epA.Contact()} })
	if err := b.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if c := next(t, sub); c.Kind != locnet.Added || c.Info.ID != b.ID() {
		t.Fatalf("change = %v %s, want added %s", c.Kind, c.Info.ID.Short(), b.ID().Short())
	}
	// b offers a profile server: a learns it at once.
	svc := []locnet.Service{{Type: "profile", Data: []byte("/iop/profile/1")}}
	seq := b.Self().Sequence
	if err := b.SetServices(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if b.Self().Sequence <= seq {
		t.Errorf("sequence %d not raised from %d", b.Self().Sequence, seq)
	}
	c := next(t, sub)
	if s, ok := c.Info.Service("profile"); c.Kind != locnet.Updated || !ok || string(s.Data) != "/iop/profile/1" {
		t.Fatalf("change = %v with services %v, want updated with the profile service", c.Kind, c.Info.Services)
	}
	if nb := a.Neighbours(); len(nb) != 1 || len(nb[0].Services) != 1 {
		t.Fatalf("a.Neighbours() = %v", nb)
	}
	// b vanishes: a drops it when the relation expires.
	epB.SetDown(true)
	e.clock.Advance(locnet.DefaultEntryExpiry + 1)
	a.Tick(ctx)
	if c := next(t, sub); c.Kind != locnet.Removed || c.Info.ID != b.ID() {
		t.Fatalf("change = %v %s, want removed %s", c.Kind, c.Info.ID.Short(), b.ID().Short())
	}
}

func TestSlowSubscriber(t *testing.T) {
	e := newEnv(t)
	n, _ := e.node(deg(t, 0, 0), nil)
	_, sub := n.Subscribe(0) // room for 16
	for i := range 17 {
		if !ask(t, n, e.peer(deg(t, 0, 0.01*float64(i+1))), "acceptNeighbour") {
			t.Fatal("refused")
		}
	}
	got := 0
	for range sub.C() {
		got++
	}
	if got != 16 || !errors.Is(sub.Err(), locnet.ErrSlowSubscriber) {
		t.Fatalf("received %d changes, Err() = %v; want 16 and ErrSlowSubscriber", got, sub.Err())
	}
	n.Close()
}

func TestStoreReload(t *testing.T) {
	e := newEnv(t)
	store := locnet.NewMemStore()
	seed, epSeed := e.node(deg(t, 0, 0), nil)
	_ = seed
	var peers []peer
	n, _ := e.node(deg(t, 0, 1), func(c *locnet.Config) { c.Store = store; c.Seeds = []locnet.Contact{epSeed.Contact()} })
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p := e.peer(deg(t, 1, float64(i)))
		ask(t, n, p, "acceptNeighbour")
		peers = append(peers, p)
	}
	want := len(n.Entries())
	n.Close()
	again, err := locnet.New(locnet.Config{Key: peers[0].key, Location: deg(t, 0, 1), Transport: e.net.Join(peers[0].key.Public()), Clock: e.clock.Now, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	// The reloaded map drops the node's own entry (peers[0] is now itself).
	if got := len(again.Entries()); got != want-1 {
		t.Errorf("reloaded %d entries, want %d", got, want-1)
	}
	e.clock.Advance(locnet.DefaultEntryExpiry)
	again2, err := locnet.New(locnet.Config{Key: peers[1].key, Location: deg(t, 0, 1), Transport: e.net.Join(peers[1].key.Public()), Clock: e.clock.Now, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(again2.Entries()); got != 0 {
		t.Errorf("reloaded %d expired entries, want 0", got)
	}
}
