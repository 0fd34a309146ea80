package locnet

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
)

// Relation is how a node relates to a node in its map.
type Relation uint8

// The relations (2017 NodeRelationType without Self: a node is never in its
// own map).
const (
	Colleague Relation = 1 // part of the world map, thinned by bubbles
	Neighbour Relation = 2 // one of the nodes near this one
)

func (r Relation) String() string {
	switch r {
	case Colleague:
		return "colleague"
	case Neighbour:
		return "neighbour"
	}
	return fmt.Sprintf("relation(%d)", uint8(r))
}

// Role says which end of a relation renews it.
type Role uint8

// The roles (2017 NodeContactRoleType without Self).
const (
	Initiator Role = 1 // this node asked for the relation and renews it
	Acceptor  Role = 2 // the other node asked and renews it
)

func (r Role) String() string {
	switch r {
	case Initiator:
		return "initiator"
	case Acceptor:
		return "acceptor"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Entry is one node of a node's map.
type Entry struct {
	Info      *NodeInfo
	Relation  Relation
	Role      Role
	ExpiresAt time.Time
}

// Store persists a node's map. The node keeps its working copy in memory
// and writes every change through; at start it loads the stored entries,
// verifies them again and drops the expired ones. Errors are logged: the
// map in memory stays authoritative.
type Store interface {
	Load() ([]Entry, error)
	Put(Entry) error
	Delete(identity.ID) error
}

// MemStore is a Store in memory, for tests and for restarting a node within
// one process. It is safe for concurrent use.
type MemStore struct {
	mu sync.Mutex // guards m
	m  map[identity.ID]Entry
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: make(map[identity.ID]Entry)} }

// Load returns the stored entries in no particular order.
func (s *MemStore) Load() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return compareIDs(a.Info.ID, b.Info.ID) })
	return out, nil
}

// Put stores e, replacing the entry of the same node.
func (s *MemStore) Put(e Entry) error {
	s.mu.Lock()
	s.m[e.Info.ID] = e
	s.mu.Unlock()
	return nil
}

// Delete removes the entry of id.
func (s *MemStore) Delete(id identity.ID) error {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
	return nil
}

func compareIDs(a, b identity.ID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// entry is an Entry with what the queries need precomputed.
type entry struct {
	Entry
	v    vec
	dist float64 // km from the owner of the table
}

// table is a node's map: a slice, so that scans are fast and their order
// deterministic, with an index by ID. A node holds about 50 neighbours and
// some hundreds of colleagues, so queries scan the slice.
type table struct {
	self        vec
	list        []entry // values, so that scans read memory in order
	idx         map[identity.ID]int
	nNeighbours int
}

func newTable(self vec) *table {
	return &table{self: self, idx: make(map[identity.ID]int)}
}

func (t *table) len() int { return len(t.list) }

// get returns the entry of id, or nil. The pointer is valid until the
// table changes.
func (t *table) get(id identity.ID) *entry {
	if i, ok := t.idx[id]; ok {
		return &t.list[i]
	}
	return nil
}

// put inserts e or replaces the entry of the same node in place.
func (t *table) put(e entry) {
	if i, ok := t.idx[e.Info.ID]; ok {
		if t.list[i].Relation == Neighbour {
			t.nNeighbours--
		}
		t.list[i] = e
	} else {
		t.idx[e.Info.ID] = len(t.list)
		t.list = append(t.list, e)
	}
	if e.Relation == Neighbour {
		t.nNeighbours++
	}
}

// remove deletes the entry of id by moving the last entry into its place.
func (t *table) remove(id identity.ID) (entry, bool) {
	i, ok := t.idx[id]
	if !ok {
		return entry{}, false
	}
	e := t.list[i]
	last := len(t.list) - 1
	if i != last {
		t.list[i] = t.list[last]
		t.idx[t.list[i].Info.ID] = i
	}
	t.list[last] = entry{}
	t.list = t.list[:last]
	delete(t.idx, id)
	if e.Relation == Neighbour {
		t.nNeighbours--
	}
	return e, true
}

// neighbourRank is the number of neighbours other than skip closer to this
// node than distKm: a candidate is among the k closest when its rank is
// below k (the 2017 admission rule: fewer than k neighbours, or closer than
// the k-th).
func (t *table) neighbourRank(distKm float64, skip identity.ID) int {
	r := 0
	for i := range t.list {
		e := &t.list[i]
		if e.dist < distKm && e.Relation == Neighbour && e.Info.ID != skip {
			r++
		}
	}
	return r
}

// kthNeighbourDist is the distance of the k-th closest neighbour, or +Inf
// when there are fewer than k.
func (t *table) kthNeighbourDist(k int) float64 {
	if t.nNeighbours < k {
		return math.Inf(1)
	}
	d := make([]float64, 0, t.nNeighbours)
	for i := range t.list {
		if e := &t.list[i]; e.Relation == Neighbour {
			d = append(d, e.dist)
		}
	}
	slices.Sort(d)
	return d[k-1]
}

// closerThanMe counts the entries other than skip that are closer to v than
// this node is, stopping at limit. Fewer than k means this node may be among
// the k closest nodes to v (it knows only part of the network, so the count
// never exceeds the truth).
func (t *table) closerThanMe(v vec, skip identity.ID, limit int) int {
	mine := t.self.dot(v)
	n := 0
	for i := range t.list {
		if e := &t.list[i]; e.v.dot(v) > mine && e.Info.ID != skip {
			n++
			if n >= limit {
				break
			}
		}
	}
	return n
}

// closestColleague is the colleague other than skip closest to v.
func (t *table) closestColleague(v vec, skip identity.ID) *entry {
	var best *entry
	bd := -2.0
	for i := range t.list {
		e := &t.list[i]
		if e.Relation != Colleague {
			continue
		}
		if d := e.v.dot(v); d > bd && e.Info.ID != skip {
			best, bd = e, d
		}
	}
	return best
}

// overlaps applies the bubble rule to a candidate colleague at v, distKm
// from this node, against the closest colleague other than skip.
func (t *table) overlaps(v vec, distKm float64, skip identity.ID) bool {
	c := t.closestColleague(v, skip)
	if c == nil {
		return false
	}
	return BubblesOverlap(distKm, c.dist, c.v.km(v))
}

// closest returns up to max entries closest to v, closest first, within
// radiusKm (no limit when radiusKm <= 0), with neighbours or not.
func (t *table) closest(v vec, max int, radiusKm float64, neighbours bool) []*entry {
	if max <= 0 {
		return nil
	}
	minDot := -2.0
	if radiusKm > 0 {
		// chord = 2 sin(d/2R); dot = 1 - chord²/2.
		a := radiusKm * 1000 / graph.EarthRadius / 2
		if a < math.Pi/2 {
			s := math.Sin(a)
			minDot = 1 - 2*s*s
		}
	}
	type hit struct {
		e *entry
		d float64
	}
	top := make([]hit, 0, min(max, len(t.list)))
	for i := range t.list {
		e := &t.list[i]
		if !neighbours && e.Relation == Neighbour {
			continue
		}
		d := e.v.dot(v)
		if d < minDot {
			continue
		}
		if len(top) == max && d <= top[len(top)-1].d {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, d, func(h hit, d float64) int {
			switch {
			case h.d > d:
				return -1
			case h.d < d:
				return 1
			}
			return 0
		})
		// Equal distances keep insertion order: place after equals.
		for i < len(top) && top[i].d == d {
			i++
		}
		if len(top) < max {
			top = append(top, hit{})
		}
		copy(top[i+1:], top[i:len(top)-1])
		top[i] = hit{e, d}
	}
	out := make([]*entry, len(top))
	for i, h := range top {
		out[i] = h.e
	}
	return out
}
