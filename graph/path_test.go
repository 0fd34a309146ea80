package graph

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/iop-go/iop/identity"
)

// pathNet is a set of named identities and the signed edges between them,
// served by memorySource.
type pathNet struct {
	t     *testing.T
	keys  map[string]*identity.Key
	names map[identity.ID]string
	src   *memorySource
}

func newPathNet(t *testing.T) *pathNet {
	return &pathNet{
		t:     t,
		keys:  make(map[string]*identity.Key),
		names: make(map[identity.ID]string),
		src:   &memorySource{in: make(map[identity.ID][]*EdgeState), fail: make(map[identity.ID]error)},
	}
}

func (n *pathNet) key(name string) *identity.Key {
	k, ok := n.keys[name]
	if !ok {
		k = newKey(n.t)
		n.keys[name] = k
		n.names[k.ID()] = name
	}
	return k
}

func (n *pathNet) id(name string) identity.ID { return n.key(name).ID() }

// pathHop describes an edge of a test network.
type pathHop struct {
	from, to, typ string
	mod           func(*Card) // changes the card before it is signed
	revoked       bool        // the issuer revoked it before edgeT
}

// add signs, accepts and derives the edge h at edgeT and stores it at its
// recipient.
func (n *pathNet) add(h pathHop) *EdgeState {
	n.t.Helper()
	issuer, recipient := n.key(h.from), n.key(h.to)
	c := Card{
		Type:      h.typ,
		Recipient: recipient.Public(),
		ValidFrom: edgeT.AddDate(0, -6, 0),
		ValidTo:   edgeT.AddDate(0, 6, 0),
		Created:   edgeT.AddDate(0, -6, 0),
	}
	if h.mod != nil {
		h.mod(&c)
	}
	sc, err := SignCard(issuer, c)
	if err != nil {
		n.t.Fatal(err)
	}
	acc, err := Accept(recipient, sc, []byte("path-test"))
	if err != nil {
		n.t.Fatal(err)
	}
	e, err := NewEdge(sc, acc)
	if err != nil {
		n.t.Fatal(err)
	}
	var recs []SignedRecord
	if h.revoked {
		rev, err := SignRevocation(issuer, sc, 1, edgeT.Add(-time.Hour))
		if err != nil {
			n.t.Fatal(err)
		}
		recs = append(recs, *rev)
	}
	st, err := Derive(e, recs, edgeT)
	if err != nil {
		n.t.Fatal(err)
	}
	rid := recipient.ID()
	n.src.in[rid] = append(n.src.in[rid], st)
	return st
}

// pathNames returns the names of the identities along p.
func (n *pathNet) pathNames(p *Path) []string {
	if p == nil {
		return nil
	}
	var names []string
	for i, s := range p.Edges {
		if i == 0 {
			names = append(names, n.names[s.Edge.Card.Card.IssuerID()])
		}
		names = append(names, n.names[s.Edge.Card.Card.RecipientID()])
	}
	return names
}

// memorySource is an EdgeSource over a map, as a local store would be. It
// returns every stored edge whatever the types asked for, so that FindPath's
// own checks are tested.
type memorySource struct {
	in    map[identity.ID][]*EdgeState // by recipient
	fail  map[identity.ID]error
	asked []identity.ID
}

func (m *memorySource) IncomingEdges(ctx context.Context, id identity.ID, types []string) ([]*EdgeState, error) {
	m.asked = append(m.asked, id)
	if err := m.fail[id]; err != nil {
		return nil, err
	}
	return m.in[id], nil
}

func TestFindPath(t *testing.T) {
	const employs, manages, friend = "work/employs", "work/manages", "social/friend"
	chain := []pathHop{{"a", "b", employs, nil, false}, {"b", "c", employs, nil, false}, {"c", "d", employs, nil, false}}
	tests := []struct {
		name    string
		edges   []pathHop
		fail    []string // identities whose edges cannot be read
		setup   func(*pathNet)
		query   func(*PathQuery)
		want    []string
		wantErr error
		wantMsg string // in the error
	}{
		{name: "direct edge", edges: []pathHop{{"a", "d", employs, nil, false}}, want: []string{"a", "d"}},
		{name: "3-hop chain", edges: chain, want: []string{"a", "b", "c", "d"}},
		{
			name:  "shortest of two",
			edges: append(slices.Clone(chain), pathHop{"a", "e", friend, nil, false}, pathHop{"e", "d", friend, nil, false}),
			want:  []string{"a", "e", "d"},
		},
		{
			name:  "shortest of two, long one listed last",
			edges: append([]pathHop{{"a", "e", friend, nil, false}, {"e", "d", friend, nil, false}}, chain...),
			want:  []string{"a", "e", "d"},
		},
		{
			name:    "type filter excludes a hop",
			edges:   []pathHop{{"a", "b", employs, nil, false}, {"b", "c", friend, nil, false}, {"c", "d", employs, nil, false}},
			query:   func(q *PathQuery) { q.Types = []string{employs} },
			wantErr: ErrNoPath,
		},
		{
			name: "type filter takes the longer path",
			edges: append(slices.Clone(chain),
				pathHop{"a", "e", friend, nil, false}, pathHop{"e", "d", friend, nil, false}),
			query: func(q *PathQuery) { q.Types = []string{employs} },
			want:  []string{"a", "b", "c", "d"},
		},
		{
			name:  "wildcard type",
			edges: []pathHop{{"a", "b", employs, nil, false}, {"b", "c", manages, nil, false}, {"c", "d", "work/employs/intern", nil, false}},
			query: func(q *PathQuery) { q.Types = []string{"work/*"} },
			want:  []string{"a", "b", "c", "d"},
		},
		{
			name:    "wildcard type excludes another family",
			edges:   []pathHop{{"a", "b", employs, nil, false}, {"b", "c", friend, nil, false}, {"c", "d", manages, nil, false}},
			query:   func(q *PathQuery) { q.Types = []string{"work/*"} },
			wantErr: ErrNoPath,
		},
		{
			name:  "any of several types",
			edges: []pathHop{{"a", "b", employs, nil, false}, {"b", "c", friend, nil, false}, {"c", "d", manages, nil, false}},
			query: func(q *PathQuery) { q.Types = []string{"social/friend", "work/*"} },
			want:  []string{"a", "b", "c", "d"},
		},
		{
			name:    "revoked edge breaks the path",
			edges:   []pathHop{{"a", "b", employs, nil, false}, {"b", "c", employs, nil, true}, {"c", "d", employs, nil, false}},
			wantErr: ErrNoPath,
		},
		{
			name: "revoked edge, path around it",
			edges: []pathHop{{"a", "b", employs, nil, false}, {"b", "c", employs, nil, true}, {"c", "d", employs, nil, false},
				{"b", "e", friend, nil, false}, {"e", "c", friend, nil, false}},
			want: []string{"a", "b", "e", "c", "d"},
		},
		{
			name: "expired edge",
			edges: []pathHop{{"a", "b", employs, nil, false}, {"b", "d", employs, func(c *Card) {
				c.ValidTo = edgeT.Add(-time.Millisecond)
			}, false}},
			wantErr: ErrNoPath,
		},
		{
			name: "not yet valid",
			edges: []pathHop{{"a", "b", employs, nil, false}, {"b", "d", employs, func(c *Card) {
				c.ValidFrom = edgeT.Add(time.Millisecond)
				c.ValidTo = edgeT.Add(time.Hour)
			}, false}},
			wantErr: ErrNoPath,
		},
		{
			name: "valid at the query's instant",
			edges: []pathHop{{"a", "b", employs, nil, false}, {"b", "d", employs, func(c *Card) {
				c.ValidFrom = edgeT.Add(time.Millisecond)
				c.ValidTo = edgeT.Add(time.Hour)
			}, false}},
			query: func(q *PathQuery) { q.Now = edgeT.Add(time.Minute) },
			want:  []string{"a", "b", "d"},
		},
		{
			name:    "cycle without a path",
			edges:   []pathHop{{"b", "c", friend, nil, false}, {"c", "b", friend, nil, false}, {"c", "d", friend, nil, false}, {"d", "c", friend, nil, false}},
			query:   func(q *PathQuery) { q.MaxHops = MaxPathHops },
			wantErr: ErrNoPath,
			wantMsg: "3 identities visited",
		},
		{
			name:  "cycle on the path",
			edges: []pathHop{{"a", "b", friend, nil, false}, {"b", "c", friend, nil, false}, {"c", "b", friend, nil, false}, {"c", "d", friend, nil, false}},
			want:  []string{"a", "b", "c", "d"},
		},
		{
			name:    "max hops too small",
			edges:   chain,
			query:   func(q *PathQuery) { q.MaxHops = 2 },
			wantErr: ErrNoPath,
			wantMsg: "within 2 hops",
		},
		{
			name:  "max hops just enough",
			edges: chain,
			query: func(q *PathQuery) { q.MaxHops = 3 },
			want:  []string{"a", "b", "c", "d"},
		},
		{
			name: "default max hops is 4",
			edges: []pathHop{{"a", "b", friend, nil, false}, {"b", "c", friend, nil, false}, {"c", "e", friend, nil, false},
				{"e", "f", friend, nil, false}, {"f", "d", friend, nil, false}},
			wantErr: ErrNoPath,
			wantMsg: "within 4 hops",
		},
		{
			name: "max visit exhausted",
			edges: []pathHop{{"x1", "d", friend, nil, false}, {"x2", "d", friend, nil, false}, {"x3", "d", friend, nil, false},
				{"x4", "d", friend, nil, false}, {"a", "x4", friend, nil, false}},
			query:   func(q *PathQuery) { q.MaxVisit = 3 },
			wantErr: ErrVisitLimit,
			wantMsg: "gave up after 3 identities",
		},
		{
			name:  "max visit just enough",
			edges: []pathHop{{"x1", "d", friend, nil, false}, {"x2", "d", friend, nil, false}, {"a", "x2", friend, nil, false}},
			query: func(q *PathQuery) { q.MaxVisit = 3 },
			want:  []string{"a", "x2", "d"},
		},
		{
			name:  "source error on one branch, path on another",
			edges: []pathHop{{"b", "d", friend, nil, false}, {"c", "d", friend, nil, false}, {"a", "b", friend, nil, false}, {"a", "c", friend, nil, false}},
			fail:  []string{"b"},
			want:  []string{"a", "c", "d"},
		},
		{
			name:    "source errors and no path",
			edges:   []pathHop{{"b", "d", friend, nil, false}, {"c", "d", friend, nil, false}},
			fail:    []string{"b", "c"},
			wantErr: ErrNoPath,
			wantMsg: "the edges of 2 identities could not be read, first",
		},
		{
			name:    "target unreadable",
			edges:   []pathHop{{"a", "d", friend, nil, false}},
			fail:    []string{"d"},
			wantErr: ErrNoPath,
			wantMsg: "server unreachable",
		},
		{
			name:    "edge stored at the wrong recipient is ignored",
			edges:   []pathHop{{"a", "b", friend, nil, false}},
			setup:   func(n *pathNet) { n.src.in[n.id("d")] = n.src.in[n.id("b")] },
			wantErr: ErrNoPath,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newPathNet(t)
			for _, h := range tt.edges {
				n.add(h)
			}
			for _, name := range tt.fail {
				n.src.fail[n.id(name)] = fmt.Errorf("server unreachable for %s", name)
			}
			if tt.setup != nil {
				tt.setup(n)
			}
			q := PathQuery{From: n.id("a"), To: n.id("d"), Now: edgeT}
			if tt.query != nil {
				tt.query(&q)
			}
			p, err := FindPath(t.Context(), n.src, q)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FindPath = %v, %v; want %v", n.pathNames(p), err, tt.wantErr)
				}
				var pe *PathError
				if !errors.As(err, &pe) {
					t.Errorf("FindPath error %T is not a *PathError", err)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("FindPath error %q does not mention %q", err, tt.wantMsg)
				}
				if tt.wantErr == ErrVisitLimit && errors.Is(err, ErrNoPath) {
					t.Errorf("FindPath error %q matches ErrNoPath too", err)
				}
				if len(tt.fail) > 0 && pe != nil && pe.Failed != len(tt.fail) {
					t.Errorf("PathError.Failed = %d, want %d", pe.Failed, len(tt.fail))
				}
				return
			}
			if err != nil {
				t.Fatalf("FindPath = %v", err)
			}
			if diff := cmp.Diff(tt.want, n.pathNames(p)); diff != "" {
				t.Errorf("FindPath path (-want +got):\n%s", diff)
			}
			if err := p.Verify(q); err != nil {
				t.Errorf("Verify(FindPath result) = %v", err)
			}
			seen := make(map[identity.ID]bool)
			for _, id := range n.src.asked {
				if seen[id] {
					t.Errorf("FindPath asked for the edges of %s twice", n.names[id])
				}
				seen[id] = true
			}
		})
	}
}

func TestFindPathQueryErrors(t *testing.T) {
	n := newPathNet(t)
	n.add(pathHop{"a", "b", "social/friend", nil, false})
	a, b := n.id("a"), n.id("b")
	tests := []struct {
		name string
		q    PathQuery
	}{
		{"no source", PathQuery{To: b}},
		{"no target", PathQuery{From: a}},
		{"same identity", PathQuery{From: a, To: a}},
		{"too many hops", PathQuery{From: a, To: b, MaxHops: MaxPathHops + 1}},
		{"negative hops", PathQuery{From: a, To: b, MaxHops: -1}},
		{"negative visit", PathQuery{From: a, To: b, MaxVisit: -1}},
		{"pattern too long", PathQuery{From: a, To: b, Types: []string{strings.Repeat("w", 65)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := FindPath(t.Context(), n.src, tt.q); err == nil || errors.Is(err, ErrNoPath) {
				t.Errorf("FindPath = %v, %v; want a query error", p, err)
			}
		})
	}
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := FindPath(ctx, n.src, PathQuery{From: a, To: b}); !errors.Is(err, context.Canceled) {
			t.Errorf("FindPath(canceled) = %v, want context.Canceled", err)
		}
	})
	t.Run("zero now is the current time", func(t *testing.T) {
		n := newPathNet(t)
		now := time.Now()
		n.add(pathHop{"a", "b", "social/friend", func(c *Card) {
			c.Created, c.ValidFrom, c.ValidTo = now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)
		}, false})
		q := PathQuery{From: n.id("a"), To: n.id("b")}
		if _, err := FindPath(t.Context(), n.src, q); !errors.Is(err, ErrNoPath) {
			t.Errorf("FindPath(Now zero, edge expired an hour ago) = %v, want ErrNoPath", err)
		}
		q.Now = now.Add(-90 * time.Minute)
		if _, err := FindPath(t.Context(), n.src, q); err != nil {
			t.Errorf("FindPath(Now within the edge's window) = %v", err)
		}
	})
}

func TestMatchEdgeType(t *testing.T) {
	tests := []struct {
		pattern, typ string
		want         bool
	}{
		{"work/employs", "work/employs", true},
		{"work/employs", "work/employs/intern", false},
		{"work/*", "work/employs", true},
		{"work/*", "work/employs/intern", true},
		{"work/*", "social/friend", false},
		{"work/*", "workshop/x", false},
		{"WORK/*", "work/employs", true},
		{"*/friend", "social/friend", true},
		{"", "social/friend", true},
		{"*", "social/friend", true},
		{strings.Repeat("w", 65), "w", false},
	}
	for _, tt := range tests {
		if got := MatchEdgeType(tt.pattern, tt.typ); got != tt.want {
			t.Errorf("MatchEdgeType(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
		}
	}
}

// cloneState returns a copy of s with its own Edge and SignedCard, so a test
// can tamper with it.
func cloneState(s *EdgeState) *EdgeState {
	c := *s
	e := *s.Edge
	sc := *s.Edge.Card
	e.Card = &sc
	c.Edge = &e
	return &c
}

func TestPathVerify(t *testing.T) {
	n := newPathNet(t)
	ab := n.add(pathHop{"a", "b", "work/employs", nil, false})
	bc := n.add(pathHop{"b", "c", "work/manages", nil, false})
	cd := n.add(pathHop{"c", "d", "social/friend", nil, false})
	revoked := n.add(pathHop{"c", "d", "social/friend", nil, true})
	expiring := n.add(pathHop{"c", "d", "social/friend", func(c *Card) { c.ValidTo = edgeT.Add(time.Hour) }, false})
	bb := n.add(pathHop{"c", "b", "social/friend", nil, false})
	forged := cloneState(bc)
	forged.Edge.Card.Signature = byteFlip(forged.Edge.Card.Signature)
	retyped := cloneState(cd)
	retyped.Edge.Card.Card.Type = "work/employs" // the signed bytes still say social/friend
	q := PathQuery{From: n.id("a"), To: n.id("d"), Now: edgeT}
	tests := []struct {
		name     string
		edges    []*EdgeState
		query    func(*PathQuery)
		wantMsg  string
		sentinel error
	}{
		{name: "valid", edges: []*EdgeState{ab, bc, cd}},
		{name: "no edges", edges: nil, wantMsg: "no edges"},
		{name: "broken chain", edges: []*EdgeState{ab, cd}, wantMsg: "hop 1: issued by"},
		{name: "tampered order", edges: []*EdgeState{bc, ab, cd}, wantMsg: "hop 0: issued by"},
		{name: "wrong source", edges: []*EdgeState{bc, cd}, wantMsg: "hop 0: issued by"},
		{name: "wrong target", edges: []*EdgeState{ab, bc}, wantMsg: "ends at"},
		{name: "nil edge", edges: []*EdgeState{ab, nil, cd}, wantMsg: "hop 1: no edge"},
		{name: "visits an identity twice", edges: []*EdgeState{ab, bc, bb, bc, cd}, query: func(q *PathQuery) { q.MaxHops = MaxPathHops }, wantMsg: "twice"},
		{name: "wrong type", edges: []*EdgeState{ab, bc, cd}, query: func(q *PathQuery) { q.Types = []string{"work/*"} }, wantMsg: "hop 2: type \"social/friend\""},
		{name: "wildcard types", edges: []*EdgeState{ab, bc, cd}, query: func(q *PathQuery) { q.Types = []string{"work/*", "social/friend"} }},
		{name: "decoded type tampered", edges: []*EdgeState{ab, bc, retyped}, query: func(q *PathQuery) { q.Types = []string{"work/*"} }, wantMsg: "hop 2: type"},
		{name: "forged signature", edges: []*EdgeState{ab, forged, cd}, wantMsg: "hop 1", sentinel: ErrInvalidSignature},
		{name: "revoked", edges: []*EdgeState{ab, bc, revoked}, wantMsg: "hop 2", sentinel: ErrRevoked},
		{name: "valid at edgeT", edges: []*EdgeState{ab, bc, expiring}},
		{name: "expired at the query's instant", edges: []*EdgeState{ab, bc, expiring}, query: func(q *PathQuery) { q.Now = edgeT.Add(2 * time.Hour) }, wantMsg: "hop 2", sentinel: ErrExpired},
		{name: "not yet valid at the query's instant", edges: []*EdgeState{ab, bc, cd}, query: func(q *PathQuery) { q.Now = edgeT.AddDate(-1, 0, 0) }, wantMsg: "hop 0", sentinel: ErrNotYetValid},
		{name: "too many hops", edges: []*EdgeState{ab, bc, cd}, query: func(q *PathQuery) { q.MaxHops = 2 }, wantMsg: "3 hops, limit 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := q
			if tt.query != nil {
				tt.query(&q)
			}
			err := (&Path{Edges: tt.edges}).Verify(q)
			if tt.wantMsg == "" && tt.sentinel == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = nil, want an error mentioning %q", tt.wantMsg)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Verify = %q, want it to mention %q", err, tt.wantMsg)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("Verify = %v, want %v", err, tt.sentinel)
			}
		})
	}
}
