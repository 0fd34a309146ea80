package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/search"
)

// Limits and defaults of a PathQuery.
const (
	DefaultPathHops  = 4   // PathQuery.MaxHops when zero
	MaxPathHops      = 6   // the largest MaxHops FindPath accepts
	DefaultPathVisit = 500 // PathQuery.MaxVisit when zero
)

// Errors of FindPath, matched with errors.Is. Both come inside a *PathError
// that says how far the search went.
var (
	// ErrNoPath means the search ran to its end, within MaxHops, and found
	// no path. When the edges of some identities could not be read, a path
	// may still exist through them.
	ErrNoPath = errors.New("no path")
	// ErrVisitLimit means the search expanded MaxVisit identities before it
	// was done: a path may exist.
	ErrVisitLimit = errors.New("path search visit limit reached")
)

// EdgeSource yields the valid edges whose recipient is id, of any of the
// given types (types empty = all; an entry may be a pattern such as
// "work/*", see MatchEdgeType). Implementations fetch from servers, the DHT,
// or a local store; they have already verified the proofs. They may return
// more edges than asked for: FindPath checks recipient, type and validity of
// every edge again.
type EdgeSource interface {
	IncomingEdges(ctx context.Context, id identity.ID, types []string) ([]*EdgeState, error)
}

// PathQuery asks for a chain of edges From -> ... -> To.
type PathQuery struct {
	From, To identity.ID
	// Types are the edge types allowed on every hop: exact types or IoP
	// wildcards such as "work/*" (see MatchEdgeType). Empty allows any type.
	Types    []string
	MaxHops  int       // edges in the path at most; 0 means DefaultPathHops, at most MaxPathHops
	MaxVisit int       // identities expanded at most; 0 means DefaultPathVisit
	Now      time.Time // the instant edges must be valid at; zero means time.Now()
}

// withDefaults returns q with its defaults filled in and checks it.
func (q PathQuery) withDefaults() (PathQuery, []search.Wildcard, error) {
	switch {
	case q.From.IsZero():
		return q, nil, errors.New("path query: no source identity")
	case q.To.IsZero():
		return q, nil, errors.New("path query: no target identity")
	case q.From == q.To:
		return q, nil, fmt.Errorf("path query: source and target are the same identity %s", q.From.Short())
	case q.MaxHops < 0 || q.MaxHops > MaxPathHops:
		return q, nil, fmt.Errorf("path query: max hops %d, want 1 to %d", q.MaxHops, MaxPathHops)
	case q.MaxVisit < 0:
		return q, nil, fmt.Errorf("path query: max visit %d is negative", q.MaxVisit)
	}
	if q.MaxHops == 0 {
		q.MaxHops = DefaultPathHops
	}
	if q.MaxVisit == 0 {
		q.MaxVisit = DefaultPathVisit
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	pats, err := parseTypePatterns(q.Types)
	if err != nil {
		return q, nil, fmt.Errorf("path query: %w", err)
	}
	return q, pats, nil
}

// parseTypePatterns parses edge type patterns; nil means any type.
func parseTypePatterns(types []string) ([]search.Wildcard, error) {
	var pats []search.Wildcard
	for _, t := range types {
		w, err := search.ParseWildcard(t)
		if err != nil {
			return nil, fmt.Errorf("edge type pattern: %w", err)
		}
		if w.IsAll() {
			return nil, nil
		}
		pats = append(pats, w)
	}
	return pats, nil
}

// matchTypes reports whether t matches any of pats; nil pats match all.
func matchTypes(pats []search.Wildcard, t string) bool {
	if pats == nil {
		return true
	}
	for _, w := range pats {
		if w.Match(t) {
			return true
		}
	}
	return false
}

// MatchEdgeType reports whether the edge type t matches pattern, with the
// semantics of the IoP WildcardType filter that servers apply to `rel get
// --type`: case-insensitive, and a '*' as the first and/or last byte matches
// any prefix and/or suffix, so "work/*" matches "work/employs". "" and "*"
// match every type; a pattern longer than 64 bytes matches none.
func MatchEdgeType(pattern, t string) bool {
	w, err := search.ParseWildcard(pattern)
	return err == nil && w.Match(t)
}

// Path is a chain of edges: Edges[0]'s issuer is the query's From, each
// edge's recipient is the next edge's issuer, and the last edge's recipient
// is To.
type Path struct {
	Edges []*EdgeState
}

// String describes the path for logs: "a -[work/employs]-> b -[...]-> c".
func (p *Path) String() string {
	if p == nil || len(p.Edges) == 0 {
		return "empty path"
	}
	var b strings.Builder
	for i, s := range p.Edges {
		c := &s.Edge.Card.Card
		if i == 0 {
			b.WriteString(c.IssuerID().Short())
		}
		fmt.Fprintf(&b, " -[%s]-> %s", c.Type, c.RecipientID().Short())
	}
	return b.String()
}

// PathError is the error of a FindPath that found no path. It matches
// ErrNoPath or ErrVisitLimit and, when some identities' edges could not be
// read, the first such error.
type PathError struct {
	From, To  identity.ID
	MaxHops   int
	Visited   int  // identities whose incoming edges were asked for
	GaveUp    bool // MaxVisit was reached before the search was done
	Failed    int  // identities whose incoming edges could not be read
	FailedID  identity.ID
	FailedErr error // the source's error for FailedID, the first failure
}

// Error says why no path was found and how far the search went.
func (e *PathError) Error() string {
	var b strings.Builder
	if e.GaveUp {
		fmt.Fprintf(&b, "path search from %s to %s gave up after %d identities (the visit limit) within %d hops", e.From.Short(), e.To.Short(), e.Visited, e.MaxHops)
	} else {
		fmt.Fprintf(&b, "no path from %s to %s within %d hops (%d identities visited)", e.From.Short(), e.To.Short(), e.MaxHops, e.Visited)
	}
	if e.Failed > 0 {
		fmt.Fprintf(&b, "; the edges of %d identities could not be read, first %s: %v", e.Failed, e.FailedID.Short(), e.FailedErr)
	}
	return b.String()
}

// Unwrap returns ErrNoPath or ErrVisitLimit and the first source error.
func (e *PathError) Unwrap() []error {
	sentinel := ErrNoPath
	if e.GaveUp {
		sentinel = ErrVisitLimit
	}
	if e.FailedErr == nil {
		return []error{sentinel}
	}
	return []error{sentinel, e.FailedErr}
}

// FindPath finds a shortest chain of edges from q.From to q.To whose edges
// are all valid at q.Now and of q.Types. It searches breadth-first
// backwards from q.To, asking src for the incoming edges of each identity,
// since public edges are stored at their recipient's server. An identity
// whose edges src cannot read is skipped. Without a path it returns a
// *PathError matching ErrNoPath, or ErrVisitLimit when it expanded
// q.MaxVisit identities first. It returns ctx's error when ctx is done.
func FindPath(ctx context.Context, src EdgeSource, q PathQuery) (*Path, error) {
	q, pats, err := q.withDefaults()
	if err != nil {
		return nil, err
	}
	// toward[id] is the edge from id one hop closer to q.To.
	toward := map[identity.ID]*EdgeState{q.To: nil}
	frontier := []identity.ID{q.To}
	perr := &PathError{From: q.From, To: q.To, MaxHops: q.MaxHops}
	for hop := 1; hop <= q.MaxHops && len(frontier) > 0; hop++ {
		var next []identity.ID
		for _, id := range frontier {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("path search from %s to %s: %w", q.From.Short(), q.To.Short(), err)
			}
			if perr.Visited >= q.MaxVisit {
				perr.GaveUp = true
				return nil, perr
			}
			perr.Visited++
			edges, err := src.IncomingEdges(ctx, id, q.Types)
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return nil, fmt.Errorf("path search from %s to %s: %w", q.From.Short(), q.To.Short(), cerr)
				}
				if perr.Failed == 0 {
					perr.FailedID, perr.FailedErr = id, err
				}
				perr.Failed++
				continue
			}
			for _, s := range edges {
				if !usableEdge(s, id, pats, q.Now) {
					continue
				}
				issuer := s.Edge.Card.Card.IssuerID()
				if _, seen := toward[issuer]; seen {
					continue
				}
				toward[issuer] = s
				if issuer == q.From {
					return buildPath(toward, q.From, q.To), nil
				}
				next = append(next, issuer)
			}
		}
		frontier = next
	}
	return nil, perr
}

// usableEdge reports whether s is an edge to recipient of one of the types
// pats, valid at now.
func usableEdge(s *EdgeState, recipient identity.ID, pats []search.Wildcard, now time.Time) bool {
	if s == nil || s.Edge == nil || s.Edge.Card == nil {
		return false
	}
	c := &s.Edge.Card.Card
	return c.RecipientID() == recipient && matchTypes(pats, c.Type) && s.StatusAt(now) == EdgeValid
}

// buildPath follows toward from from to to.
func buildPath(toward map[identity.ID]*EdgeState, from, to identity.ID) *Path {
	p := &Path{}
	for id := from; id != to; {
		s := toward[id]
		p.Edges = append(p.Edges, s)
		id = s.Edge.Card.Card.RecipientID()
	}
	return p
}

// Verify checks p against q offline, so that a path received from elsewhere
// can be trusted as far as its signatures go: every edge is verified again
// from its signed card, acceptance and change records, must be valid at
// q.Now (zero means time.Now()) and of q.Types; the edges must chain from
// q.From to q.To without visiting an identity twice, in at most q.MaxHops
// hops. Records left out of a path (such as a revocation) cannot be
// detected here.
func (p *Path) Verify(q PathQuery) error {
	q, pats, err := q.withDefaults()
	if err != nil {
		return err
	}
	if p == nil || len(p.Edges) == 0 {
		return errors.New("path: no edges")
	}
	if len(p.Edges) > q.MaxHops {
		return fmt.Errorf("path: %d hops, limit %d", len(p.Edges), q.MaxHops)
	}
	at := q.From
	seen := map[identity.ID]bool{q.From: true}
	for i, s := range p.Edges {
		if s == nil || s.Edge == nil || s.Edge.Card == nil {
			return fmt.Errorf("path: hop %d: no edge", i)
		}
		blob, err := EncodeProof(s.Proof())
		if err != nil {
			return fmt.Errorf("path: hop %d: %w", i, err)
		}
		st, err := OpenProof(blob, q.Now)
		if err != nil {
			return fmt.Errorf("path: hop %d: %w", i, err)
		}
		c := &st.Edge.Card.Card
		if issuer := c.IssuerID(); issuer != at {
			what := "the previous hop's recipient"
			if i == 0 {
				what = "the source"
			}
			return fmt.Errorf("path: hop %d: issued by %s, not %s %s", i, issuer.Short(), what, at.Short())
		}
		if !matchTypes(pats, c.Type) {
			return fmt.Errorf("path: hop %d: type %q is not one of %q", i, c.Type, q.Types)
		}
		if err := st.Err(); err != nil {
			return fmt.Errorf("path: hop %d: %w", i, err)
		}
		at = c.RecipientID()
		if seen[at] {
			return fmt.Errorf("path: hop %d: visits %s twice", i, at.Short())
		}
		seen[at] = true
	}
	if at != q.To {
		return fmt.Errorf("path: ends at %s, not the target %s", at.Short(), q.To.Short())
	}
	return nil
}
