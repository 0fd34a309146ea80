package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/search"
	"github.com/iop-go/iop/internal/vault"
)

// Timing and limits of private-graph requests an agent answers.
const (
	// AskTimeout is how long a request for private edges waits for the
	// owner's decision when the allow-list does not cover it.
	AskTimeout = 60 * time.Second
	// RelationReadTimeout is AgentConfig.RelationReadTimeout's default.
	RelationReadTimeout = 10 * time.Second
	relWorkTimeout      = 30 * time.Second // to answer it, apart from waiting for the owner
	maxRelConns         = 8                // private-graph requests being handled at once
	maxRelConnsPerPeer  = 2                // of them from one identity
	maxPendingAsks      = 32
	maxAsksPerRequester = 4 // pending asks of one requester
)

// AskRequest is a request for private edges waiting for the owner.
type AskRequest struct {
	ID        string      `json:"id"`
	Requester identity.ID `json:"requester"`
	Types     []string    `json:"types"` // wildcards; empty means every type
	Edges     int         `json:"edges"` // matching edges the allow-list does not cover
	At        time.Time   `json:"at"`

	granted chan bool // the owner's answer
}

// relService is the state of an agent's private-graph service: the
// requests waiting for the owner and the connections being handled.
type relService struct {
	mu      sync.Mutex // guards the fields below
	pending map[string]*AskRequest
	conns   map[identity.ID]int // relation connections being handled, by peer
	added   chan struct{}       // closed (and replaced) when a request is added
}

// addedChan is closed when the next request is added.
func (q *relService) addedChan() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.added == nil {
		q.added = make(chan struct{})
	}
	return q.added
}

func (q *relService) add(r *AskRequest) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= maxPendingAsks {
		return fmt.Errorf("the owner has %d requests waiting already", maxPendingAsks)
	}
	n := 0
	for _, p := range q.pending {
		if p.Requester == r.Requester {
			n++
		}
	}
	if n >= maxAsksPerRequester {
		return fmt.Errorf("%d of your requests are waiting for the owner already", n)
	}
	if q.pending == nil {
		q.pending = make(map[string]*AskRequest)
	}
	var b [8]byte
	rand.Read(b[:])
	r.ID = hex.EncodeToString(b[:])
	r.granted = make(chan bool, 1)
	q.pending[r.ID] = r
	if q.added != nil {
		close(q.added)
		q.added = nil
	}
	return nil
}

func (q *relService) remove(id string) {
	q.mu.Lock()
	delete(q.pending, id)
	q.mu.Unlock()
}

// enter counts a connection of peer, unless it has maxRelConnsPerPeer.
func (q *relService) enter(peer identity.ID) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conns[peer] >= maxRelConnsPerPeer {
		return false
	}
	if q.conns == nil {
		q.conns = make(map[identity.ID]int)
	}
	q.conns[peer]++
	return true
}

func (q *relService) leave(peer identity.ID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conns[peer]--; q.conns[peer] <= 0 {
		delete(q.conns, peer)
	}
}

// Pending returns the requests for private edges waiting for the owner.
func (a *Agent) Pending() []AskRequest {
	a.rel.mu.Lock()
	defer a.rel.mu.Unlock()
	out := make([]AskRequest, 0, len(a.rel.pending))
	for _, r := range a.rel.pending {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// ErrNoRequest reports a decision on a request that is not pending.
var ErrNoRequest = errors.New("no such pending request")

// Decide answers a pending request: grant or refuse. The requester has the
// answer at once; remember then adds the requester and its types to the
// allow-list (an error saving that rule does not undo the grant).
func (a *Agent) Decide(id string, grant, remember bool) error {
	a.rel.mu.Lock()
	r := a.rel.pending[id]
	delete(a.rel.pending, id)
	a.rel.mu.Unlock()
	if r == nil {
		return fmt.Errorf("%w %q (answered already, or the requester gave up)", ErrNoRequest, id)
	}
	r.granted <- grant
	if !grant || !remember {
		return nil
	}
	types := r.Types
	if len(types) == 0 {
		types = []string{"*"}
	}
	for _, t := range types {
		if err := a.PrivateGraph().Allow(PolicyRule{Requester: r.Requester.String(), Type: t}); err != nil {
			return fmt.Errorf("granted, but the allow-list was not changed: %w", err)
		}
	}
	return nil
}

// PrivateGraph is the store of the agent's identity's private graph.
func (a *Agent) PrivateGraph() *PrivateGraph { return OpenPrivateGraph(a.cfg.Home, a.cfg.Key) }

// ServeRelations answers other identities' private-graph requests on
// RelationService until ctx ends: proposals of private edges, acceptances
// of the agent's own proposals, requests to read its private edges (decided
// by its allow-list, else by its owner through Pending and Decide) and
// disclosures of edges to it. It waits for the agent to come online.
//
// At most maxRelConns requests are handled at once, maxRelConnsPerPeer of
// them from one identity; a request waiting for the owner gives up its
// slot, and ends when the requester hangs up.
func (a *Agent) ServeRelations(ctx context.Context) error {
	if err := a.WaitOnline(ctx); err != nil {
		return nil
	}
	l, err := a.Listen(ctx, RelationService, DialOptions{DisableICE: true})
	if err != nil {
		return fmt.Errorf("private graph: %w", err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxRelConns)
	for {
		pc, err := l.Accept(ctx)
		if err != nil {
			return nil
		}
		peer := pc.PeerID()
		select {
		case sem <- struct{}{}:
		default:
			pc.Close()
			continue
		}
		if !a.rel.enter(peer) {
			<-sem
			pc.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer a.rel.leave(peer)
			var once sync.Once
			release := func() { once.Do(func() { <-sem }) }
			defer release()
			stop := context.AfterFunc(ctx, func() { pc.Close() })
			defer stop()
			defer pc.Close()
			pc.SetDeadline(time.Now().Add(a.cfg.RelationReadTimeout))
			var req relRequest
			if err := readFrame(pc, &req); err != nil {
				a.log.Debug("private graph request unreadable", "peer", peer.Short(), "err", err)
				return
			}
			// The requester sends nothing more: a read that ends means it
			// hung up, which ends a wait for the owner.
			pc.SetDeadline(time.Time{})
			gone := make(chan struct{})
			go func() {
				var b [1]byte
				pc.Read(b[:])
				close(gone)
			}()
			defer func() {
				pc.Close()
				<-gone
			}()
			resp := a.answerRelation(ctx, peer, &req, gone, release)
			if resp.Error != "" {
				a.log.Info("private graph request refused", "peer", peer.Short(), "op", req.Op, "why", resp.Error)
			}
			pc.SetWriteDeadline(time.Now().Add(relWorkTimeout))
			if err := writeFrame(pc, resp); err != nil {
				a.log.Warn("private graph answer not sent", "peer", peer.Short(), "op", req.Op, "err", err)
			}
		}()
	}
}

func refused(format string, args ...any) *relResponse {
	return &relResponse{Status: relRefused, Error: fmt.Sprintf(format, args...)}
}

// answerRelation handles one request of the authenticated identity peer;
// gone closes when peer hangs up, release gives up the request's slot.
func (a *Agent) answerRelation(ctx context.Context, peer identity.ID, req *relRequest, gone <-chan struct{}, release func()) *relResponse {
	switch req.Op {
	case "propose":
		return a.receiveProposal(peer, req)
	case "accept":
		return a.receiveAcceptance(peer, req)
	case "ask":
		return a.answerAsk(ctx, peer, req, gone, release)
	case "disclose":
		return a.receiveDisclosure(peer, req)
	}
	return refused("unknown operation %q", req.Op)
}

func (a *Agent) receiveProposal(peer identity.ID, req *relRequest) *relResponse {
	sc, err := graph.OpenCard(req.Card, req.CardSig, nil)
	now := time.Now()
	switch {
	case err != nil:
		return refused("card: %v", err)
	case sc.Card.Visibility != graph.VisibilityPrivate:
		return refused("card: a public edge is proposed through the recipient's server inbox, not to its device")
	case sc.Card.RecipientID() != a.id:
		return refused("card: its recipient is %s, not %s", sc.Card.RecipientID().Short(), a.id.Short())
	case sc.Card.IssuerID() != peer:
		return refused("card: its issuer is %s, but %s is calling", sc.Card.IssuerID().Short(), peer.Short())
	case now.After(sc.Card.ValidTo):
		return refused("card: expired on %s", sc.Card.ValidTo.UTC().Format(time.DateOnly))
	}
	err = a.PrivateGraph().update(func(tx *vault.Tx) error {
		// Expired proposals make room; one issuer fills only its share.
		var expired []string
		fromPeer := 0
		tx.Range(bucketIn, func(k string, v []byte) bool {
			if c, err := decodeCard(v); err != nil || now.After(c.Card.ValidTo) {
				expired = append(expired, k)
			} else if c.Card.IssuerID() == peer {
				fromPeer++
			}
			return true
		})
		for _, k := range expired {
			tx.Delete(bucketIn, k)
		}
		if _, ok := tx.Get(bucketIn, sc.ID().String()); !ok && fromPeer >= maxInboxPerIssuer {
			return fmt.Errorf("%d of your proposals are waiting already", fromPeer)
		}
		return putLimited(tx, bucketIn, sc.ID().String(), encodeCard(sc), maxPrivateInbox, "private proposals waiting")
	})
	if err != nil {
		return refused("%v", err)
	}
	a.log.Info("private edge proposed", "card", sc.ID().String()[:12], "type", sc.Card.Type, "issuer", peer.Short())
	return &relResponse{Status: relPending}
}

func (a *Agent) receiveAcceptance(peer identity.ID, req *relRequest) *relResponse {
	sc, err := graph.OpenCard(req.Card, req.CardSig, a.cfg.Key.Public())
	if err != nil {
		return refused("card: %v", err)
	}
	if sc.Card.RecipientID() != peer {
		return refused("card: its recipient is %s, but %s is calling", sc.Card.RecipientID().Short(), peer.Short())
	}
	acc, err := graph.OpenAcceptance(req.Acceptance, req.AccSig, sc, nil)
	if err != nil {
		return refused("acceptance: %v", err)
	}
	e, err := graph.NewEdge(sc, acc)
	if err != nil {
		return refused("%v", err)
	}
	proof, err := graph.EncodeProof(graph.NewState(e, time.Now()).Proof())
	if err != nil {
		return refused("%v", err)
	}
	id := sc.ID().String()
	err = a.PrivateGraph().update(func(tx *vault.Tx) error {
		if _, ok := tx.Get(bucketOut, id); !ok {
			return fmt.Errorf("card %s: no proposal of it is waiting (accepted already, or never proposed from this device)", id[:12])
		}
		if err := putLimited(tx, bucketEdges, id, proof, maxPrivateEdges, "private edges"); err != nil {
			return err
		}
		tx.Delete(bucketOut, id)
		return nil
	})
	if err != nil {
		return refused("%v", err)
	}
	a.log.Info("private edge accepted", "card", id[:12], "type", sc.Card.Type, "recipient", peer.Short())
	return &relResponse{Status: relOK}
}

// answerAsk gives the requester the private edges of the asked types that
// the allow-list covers, and asks the owner about the rest. Revoked and
// expired edges are answered too, so that copies shown earlier learn of
// it. A requester the allow-list does not name at all waits for the owner
// even when nothing matches, so the answer does not tell whether edges
// exist.
func (a *Agent) answerAsk(ctx context.Context, peer identity.ID, req *relRequest, gone <-chan struct{}, release func()) *relResponse {
	if len(req.Types) > maxAskTypes {
		return refused("types: %d, at most %d", len(req.Types), maxAskTypes)
	}
	var pats []search.Wildcard
	for _, t := range req.Types {
		w, err := search.ParseWildcard(t)
		if err != nil {
			return refused("types: %v", err)
		}
		pats = append(pats, w)
	}
	pg := a.PrivateGraph()
	edges, err := pg.Edges(time.Now())
	if err != nil {
		a.log.Error("private graph unreadable", "err", err)
		return refused("the owner's store is unreadable")
	}
	rules, err := pg.Policy()
	if err != nil {
		return refused("the owner's policy is unreadable")
	}
	named := false
	for _, r := range rules {
		named = named || r.Requester == "*" || r.Requester == peer.String()
	}
	var free, ask []*graph.EdgeState
	for _, st := range edges {
		if st.Status == graph.EdgeNotYetValid || !matchAny(pats, st.Edge.Card.Card.Type) {
			continue
		}
		if allowed(rules, peer, st.Edge.Card.Card.Type) {
			free = append(free, st)
		} else {
			ask = append(ask, st)
		}
	}
	if len(ask) == 0 && named {
		return a.granted(peer, free)
	}
	r := &AskRequest{Requester: peer, Types: req.Types, Edges: len(ask), At: time.Now().UTC()}
	if err := a.rel.add(r); err != nil {
		return refused("%v", err)
	}
	defer a.rel.remove(r.ID)
	release() // waiting for the owner holds no slot
	a.log.Info("private edges requested: answer with `iop rel grant` or `iop rel deny`", "request", r.ID, "requester", peer.Short(), "types", req.Types)
	t := time.NewTimer(a.cfg.AskTimeout)
	defer t.Stop()
	select {
	case grant := <-r.granted:
		if grant {
			return a.granted(peer, append(free, ask...))
		}
		if len(free) == 0 {
			return refused("the owner refused")
		}
	case <-t.C:
		if len(free) == 0 {
			return refused("the owner did not answer within %s", a.cfg.AskTimeout)
		}
	case <-gone:
		return refused("the requester hung up")
	case <-ctx.Done():
		return refused("the owner's agent is stopping")
	}
	return a.granted(peer, free)
}

// granted answers the proofs of edges, as many as fit in a frame, and
// remembers whom they were shown to, so a later revocation can follow.
func (a *Agent) granted(peer identity.ID, edges []*graph.EdgeState) *relResponse {
	resp := &relResponse{Status: relGranted}
	var ids []graph.CardID
	size := 0
	for _, st := range edges {
		p, err := graph.EncodeProof(st.Proof())
		if err != nil {
			continue
		}
		size += len(p)*4/3 + 8 // base64 in JSON
		if size > maxRelFrame-64<<10 {
			resp.Truncated = true
			break
		}
		resp.Proofs = append(resp.Proofs, p)
		ids = append(ids, st.Edge.ID())
	}
	if err := a.PrivateGraph().MarkShown(peer, ids...); err != nil {
		a.log.Warn("cannot remember whom private edges were shown to", "err", err)
	}
	return resp
}

func matchAny(pats []search.Wildcard, t string) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		if p.Match(t) {
			return true
		}
	}
	return false
}

// receiveDisclosure keeps edges the caller shows: each must verify, have
// the caller as a party and be valid or revoked (a revocation replaces a
// copy kept earlier).
func (a *Agent) receiveDisclosure(peer identity.ID, req *relRequest) *relResponse {
	if len(req.Proofs) == 0 || len(req.Proofs) > maxDisclose {
		return refused("proofs: %d, want 1 to %d", len(req.Proofs), maxDisclose)
	}
	for i, p := range req.Proofs {
		if len(p) > maxDisclosedProof {
			return refused("proof %d: %d bytes, at most %d", i, len(p), maxDisclosedProof)
		}
	}
	states, errs := graph.VerifyProofs(req.Proofs, time.Now(), 2)
	for i, st := range states {
		if errs[i] != nil {
			return refused("proof %d: %v", i, errs[i])
		}
		c := &st.Edge.Card.Card
		if c.IssuerID() != peer && c.RecipientID() != peer {
			return refused("proof %d: %s is not a party of edge %s", i, peer.Short(), st.Edge.ID().String()[:12])
		}
		if st.Status != graph.EdgeValid && st.Status != graph.EdgeRevoked {
			return refused("proof %d: %v", i, st.Err())
		}
	}
	if err := a.PrivateGraph().addDisclosed(peer, states); err != nil {
		return refused("%v", err)
	}
	a.log.Info("edges disclosed to this identity", "by", peer.Short(), "edges", len(states))
	return &relResponse{Status: relOK}
}

// errUnreached reports a device that could not be called: the request was
// not delivered.
var errUnreached = errors.New("cannot reach")

// relCall sends one private-graph request to identity id's agent and
// returns its answer; refusals are errors matching ErrRefused.
func relCall(ctx context.Context, h host.Host, key *identity.Key, via peer.AddrInfo, id identity.ID, req *relRequest) (*relResponse, error) {
	pc, err := DialService(ctx, h, key, via, id, RelationService, DialOptions{DisableICE: true})
	if err != nil {
		return nil, fmt.Errorf("%w %s's device: %w", errUnreached, id.Short(), err)
	}
	defer pc.Close()
	if dl, ok := ctx.Deadline(); ok {
		pc.SetDeadline(dl)
	}
	if err := writeFrame(pc, req); err != nil {
		return nil, err
	}
	var resp relResponse
	if err := readFrame(pc, &resp); err != nil {
		return nil, fmt.Errorf("%s's device did not answer: %w", id.Short(), err)
	}
	if resp.Status == relRefused {
		return nil, fmt.Errorf("%w by %s: %s", ErrRefused, id.Short(), resp.Error)
	}
	return &resp, nil
}

// ProposePrivate offers a private edge (a card signed by key, naming the
// recipient) to the recipient's device, which keeps it until its owner
// accepts or rejects it. The proposal is remembered in key's private graph
// first: the acceptance comes back to this identity's agent.
func ProposePrivate(ctx context.Context, h host.Host, key *identity.Key, via peer.AddrInfo, home string, sc *graph.SignedCard) error {
	if sc.Card.Visibility != graph.VisibilityPrivate {
		return errors.New("propose private: the card is public")
	}
	pg := OpenPrivateGraph(home, key)
	id := sc.ID().String()
	err := pg.update(func(tx *vault.Tx) error {
		return putLimited(tx, bucketOut, id, encodeCard(sc), maxPrivateEdges, "private proposals")
	})
	if err != nil {
		return err
	}
	_, err = relCall(ctx, h, key, via, sc.Card.RecipientID(), &relRequest{Op: "propose", Card: sc.Raw, CardSig: sc.Signature})
	if errors.Is(err, ErrRefused) || errors.Is(err, errUnreached) {
		// Surely not kept by the recipient: forget it. After other errors
		// the recipient may have it, and its acceptance must find it here.
		pg.update(func(tx *vault.Tx) error {
			tx.Delete(bucketOut, id)
			return nil
		})
	}
	return err
}

// AcceptPrivate accepts a private proposal waiting in key's private graph:
// the acceptance goes to the issuer's device, which stores the edge; the
// proposal is then forgotten here.
func AcceptPrivate(ctx context.Context, h host.Host, key *identity.Key, via peer.AddrInfo, home string, sc *graph.SignedCard, appID []byte) (*graph.SignedAcceptance, error) {
	acc, err := graph.Accept(key, sc, appID)
	if err != nil {
		return nil, err
	}
	req := &relRequest{Op: "accept", Card: sc.Raw, CardSig: sc.Signature, Acceptance: acc.Raw, AccSig: acc.Signature}
	if _, err := relCall(ctx, h, key, via, sc.Card.IssuerID(), req); err != nil {
		return nil, err
	}
	return acc, OpenPrivateGraph(home, key).DropIncoming(sc.ID())
}

// AskPrivate asks identity owner's device for its private edges of the
// given types (wildcards; none for all). The owner's allow-list or the
// owner decides. The edges returned are verified, private and issued by
// owner, valid or revoked (a revocation of an edge shown earlier); they are
// kept in key's private graph as disclosed edges. truncated says the owner
// had more than fit in one answer.
func AskPrivate(ctx context.Context, h host.Host, key *identity.Key, via peer.AddrInfo, home string, owner identity.ID, types []string) (edges []*graph.EdgeState, truncated bool, err error) {
	resp, err := relCall(ctx, h, key, via, owner, &relRequest{Op: "ask", Types: types})
	if err != nil {
		return nil, false, err
	}
	if len(resp.Proofs) == 0 {
		return nil, resp.Truncated, nil
	}
	states, errs := graph.VerifyProofs(resp.Proofs, time.Now(), 0)
	for i, st := range states {
		c := &st.Edge.Card.Card
		switch {
		case errs[i] != nil:
			return nil, false, fmt.Errorf("%w: proof %d from %s: %v", ErrBadServer, i, owner.Short(), errs[i])
		case c.IssuerID() != owner:
			return nil, false, fmt.Errorf("%w: proof %d from %s is of an edge issued by %s", ErrBadServer, i, owner.Short(), c.IssuerID().Short())
		case c.Visibility != graph.VisibilityPrivate:
			return nil, false, fmt.Errorf("%w: proof %d from %s is of a public edge", ErrBadServer, i, owner.Short())
		}
	}
	return states, resp.Truncated, OpenPrivateGraph(home, key).addDisclosed(owner, states)
}

// Disclose shows edges (encoded proofs in which key's identity is a party)
// to identity to, whose device keeps them. The private edges of key's
// identity among them are remembered in its private graph (in home) as
// shown to to, so that a later revocation can follow them.
func Disclose(ctx context.Context, h host.Host, key *identity.Key, via peer.AddrInfo, home string, to identity.ID, proofs [][]byte) error {
	if _, err := relCall(ctx, h, key, via, to, &relRequest{Op: "disclose", Proofs: proofs}); err != nil {
		return err
	}
	var own []graph.CardID
	for _, p := range proofs {
		if st, err := graph.OpenProof(p, time.Now()); err == nil && st.Edge.Card.Card.IssuerID() == key.ID() && st.Edge.Card.Card.Visibility == graph.VisibilityPrivate {
			own = append(own, st.Edge.ID())
		}
	}
	return OpenPrivateGraph(home, key).MarkShown(to, own...)
}

// SendRevocation shows the revoked state of key's private edge id to every
// identity it was shown to, and returns those it could not reach (with
// why). Run it after PrivateGraph.Revoke.
func SendRevocation(ctx context.Context, h host.Host, key *identity.Key, via peer.AddrInfo, home string, id graph.CardID) (sent int, failed map[identity.ID]error, err error) {
	pg := OpenPrivateGraph(home, key)
	proof, err := pg.EdgeProof(id)
	if err != nil {
		return 0, nil, err
	}
	to, err := pg.ShownTo(id)
	if err != nil {
		return 0, nil, err
	}
	failed = map[identity.ID]error{}
	for _, t := range to {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := relCall(cctx, h, key, via, t, &relRequest{Op: "disclose", Proofs: [][]byte{proof}})
		cancel()
		if err != nil {
			failed[t] = err
			continue
		}
		sent++
	}
	return sent, failed, nil
}

// registerRelationAPI adds the private-graph routes of the local API:
//
//	GET  /v1/rel/requests         the requests waiting for the owner
//	GET  /v1/rel/requests/follow  them, then each new one: a JSON line each
//	POST /v1/rel/requests/{id}    {"grant":bool,"remember":bool}
func registerRelationAPI(ctx context.Context, handle func(string, func(*Agent, http.ResponseWriter, *http.Request))) {
	handle("GET /v1/rel/requests", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Pending())
	})
	handle("GET /v1/rel/requests/follow", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		enc := json.NewEncoder(w)
		sent := map[string]bool{}
		// The stream ends with the request or with the agent.
		rctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		for {
			added := a.rel.addedChan()
			for _, req := range a.Pending() {
				if sent[req.ID] {
					continue
				}
				sent[req.ID] = true
				if enc.Encode(req) != nil || rc.Flush() != nil {
					return
				}
			}
			select {
			case <-added:
			case <-rctx.Done():
				return
			}
		}
	})
	handle("POST /v1/rel/requests/{id}", func(a *Agent, w http.ResponseWriter, r *http.Request) {
		var d struct{ Grant, Remember bool }
		if !readJSON(w, r, &d) {
			return
		}
		if err := a.Decide(r.PathValue("id"), d.Grant, d.Remember); errors.Is(err, ErrNoRequest) {
			writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
			return
		} else if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
}

// RequestStream yields the requests for private edges as they arrive.
type RequestStream = LineStream[AskRequest]

// FollowRelationRequests streams the requests for private edges waiting
// for the owner, then each new one, until ctx ends or Close.
func (c *LocalClient) FollowRelationRequests(ctx context.Context) (*RequestStream, error) {
	return openStream[AskRequest](ctx, c, "/v1/rel/requests/follow")
}

// RelationRequests returns the requests for private edges waiting for the
// owner of the agent's identity.
func (c *LocalClient) RelationRequests(ctx context.Context) ([]AskRequest, error) {
	var out []AskRequest
	return out, c.do(ctx, http.MethodGet, "/v1/rel/requests", nil, &out)
}

// DecideRelationRequest grants or refuses a waiting request; remember adds
// the requester and its types to the allow-list.
func (c *LocalClient) DecideRelationRequest(ctx context.Context, id string, grant, remember bool) error {
	var out struct{}
	return c.do(ctx, http.MethodPost, "/v1/rel/requests/"+url.PathEscape(id), struct{ Grant, Remember bool }{grant, remember}, &out)
}
