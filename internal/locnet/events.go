package locnet

import (
	"errors"
	"fmt"
	"slices"
)

// ChangeKind is what happened to a neighbour.
type ChangeKind uint8

// The kinds of neighbourhood change (2017 NeighbourhoodChangedNotification).
const (
	Added   ChangeKind = 1 // a node became a neighbour
	Updated ChangeKind = 2 // a neighbour signed a node info with other content
	Removed ChangeKind = 3 // a neighbour relation ended (refused, dropped or expired)
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("change(%d)", uint8(k))
}

// Change is one change of the neighbourhood.
type Change struct {
	Kind ChangeKind
	Info NodeInfo // for Removed, the last info known
}

// ErrSlowSubscriber ends a subscription whose buffer filled up: the
// subscriber missed changes and must subscribe again for a fresh snapshot.
var ErrSlowSubscriber = errors.New("neighbourhood subscriber too slow")

// Subscription delivers neighbourhood changes. Sending never blocks the
// node: when the buffer is full the subscription ends with
// ErrSlowSubscriber.
type Subscription struct {
	n   *Node
	c   chan Change
	err error // guarded by n.mu; set when c is closed
}

// Subscribe returns the current neighbours and a subscription to the
// changes that follow them, with room for buffer changes (at least 16).
func (n *Node) Subscribe(buffer int) ([]NodeInfo, *Subscription) {
	s := &Subscription{n: n, c: make(chan Change, max(buffer, 16))}
	n.mu.Lock()
	defer n.mu.Unlock()
	var cur []NodeInfo
	for _, e := range n.tab.list {
		if e.Relation == Neighbour {
			cur = append(cur, *e.Info)
		}
	}
	if n.closed {
		s.endLocked(ErrClosed)
	} else {
		n.subs = append(n.subs, s)
	}
	return cur, s
}

// C is the channel of changes. It is closed when the subscription ends;
// Err then says why.
func (s *Subscription) C() <-chan Change { return s.c }

// Err is why the subscription ended: nil while it runs or after Close,
// ErrSlowSubscriber or ErrClosed.
func (s *Subscription) Err() error {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	if i := slices.Index(s.n.subs, s); i >= 0 {
		s.n.subs = slices.Delete(s.n.subs, i, i+1)
		s.endLocked(nil)
	}
}

func (s *Subscription) endLocked(err error) {
	s.err = err
	close(s.c)
}

// emitLocked sends a change to every subscriber without blocking.
func (n *Node) emitLocked(k ChangeKind, info *NodeInfo) {
	if len(n.subs) == 0 {
		return
	}
	ch := Change{Kind: k, Info: *info}
	kept := n.subs[:0]
	for _, s := range n.subs {
		select {
		case s.c <- ch:
			kept = append(kept, s)
		default:
			s.endLocked(ErrSlowSubscriber)
		}
	}
	clear(n.subs[len(kept):])
	n.subs = kept
}
