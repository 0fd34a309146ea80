package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
)

// device is an identity with its agent running and answering
// private-graph requests, as `iop agent` runs it.
type device struct {
	key  *identity.Key
	home string
	a    *client.Agent
}

func startDevice(t *testing.T, srv *profileservertest.Server, who string, askTimeout time.Duration, opts ...func(*client.AgentConfig)) *device {
	t.Helper()
	d := &device{key: profileservertest.NewKey(t), home: t.TempDir()}
	cfg := client.AgentConfig{Home: d.home, Key: d.key, Server: srv.Addr, Type: "person", AskTimeout: askTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	d.a, _ = startAgent(t, cfg)
	waitOnline(t, d.a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := d.a.SetProfile(ctx, client.ProfileChange{Name: name(who)}); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.a.ServeRelations(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("ServeRelations of %s: %v", who, err)
		}
	})
	waitFor(t, 20*time.Second, who+"'s relation service", func() bool {
		return slices.Contains(d.a.Status().Services, client.RelationService)
	})
	return d
}

func (d *device) graph() *client.PrivateGraph { return client.OpenPrivateGraph(d.home, d.key) }

// TestPrivateEdges runs the private graph end to end between four agents
// on one profile server: a private edge is proposed to the recipient's
// device and accepted there, stored only on the issuer's device (encrypted),
// then read by a third party through the owner's decision or allow-list,
// and disclosed to a fourth.
func TestPrivateEdges(t *testing.T) {
	srv := profileservertest.Start(t)
	ann := startDevice(t, srv, "Ann", 2*time.Second)
	bob := startDevice(t, srv, "Bob", 2*time.Second)
	cid := startDevice(t, srv, "Cid", 2*time.Second)
	dan := startDevice(t, srv, "Dan", 2*time.Second)
	h := profileservertest.ClientHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	card := func(from *device, to *device, typ string) *graph.SignedCard {
		t.Helper()
		sc, err := graph.SignCard(from.key, graph.Card{Type: typ, Visibility: graph.VisibilityPrivate, Recipient: to.key.Public(),
			ValidTo: time.Now().AddDate(1, 0, 0), Properties: map[string]string{"role": "engineer"}})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}

	// Ann proposes; the card waits on Bob's device, not at the server.
	sc := card(ann, bob, "work/employs")
	if err := client.ProposePrivate(ctx, h, ann.key, srv.Addr, ann.home, sc); err != nil {
		t.Fatal(err)
	}
	in, err := bob.graph().Incoming()
	if err != nil || len(in) != 1 || in[0].ID() != sc.ID() {
		t.Fatalf("Bob's private inbox = %v, %v; want the card", in, err)
	}
	out, err := ann.graph().Outgoing()
	if err != nil || len(out) != 1 {
		t.Fatalf("Ann's outgoing proposals = %v, %v; want 1", out, err)
	}

	// Refusals change nothing: a card replayed by another identity, a
	// card that is not private.
	if err := client.ProposePrivate(ctx, h, cid.key, srv.Addr, cid.home, sc); !errors.Is(err, client.ErrRefused) ||
		!strings.Contains(err.Error(), "but "+cid.key.ID().Short()+" is calling") {
		t.Errorf("card replayed by another identity: ProposePrivate = %v, want refused", err)
	}
	if out, _ := cid.graph().Outgoing(); len(out) != 0 {
		t.Errorf("a refused proposal stays in the proposer's store: %d", len(out))
	}
	public, err := graph.SignCard(ann.key, graph.Card{Type: "work/employs", Recipient: bob.key.Public(), ValidTo: time.Now().AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ProposePrivate(ctx, h, ann.key, srv.Addr, ann.home, public); err == nil {
		t.Error("a public card was proposed to a device")
	}
	if in, _ := bob.graph().Incoming(); len(in) != 1 {
		t.Fatalf("Bob's private inbox after refusals = %d cards, want 1", len(in))
	}

	// Bob accepts: the edge is stored on Ann's device only.
	if _, err := client.AcceptPrivate(ctx, h, bob.key, srv.Addr, bob.home, sc, []byte("hr")); err != nil {
		t.Fatal(err)
	}
	edges, err := ann.graph().Edges(time.Now())
	if err != nil || len(edges) != 1 || edges[0].Edge.ID() != sc.ID() || edges[0].Status != graph.EdgeValid {
		t.Fatalf("Ann's private edges = %v, %v; want the accepted edge", edges, err)
	}
	if in, _ := bob.graph().Incoming(); len(in) != 0 {
		t.Errorf("Bob's private inbox after accepting = %d cards, want 0", len(in))
	}
	if out, _ := ann.graph().Outgoing(); len(out) != 0 {
		t.Errorf("Ann's outgoing proposals after acceptance = %d, want 0", len(out))
	}
	// The acceptance cannot be delivered twice.
	if _, err := client.AcceptPrivate(ctx, h, bob.key, srv.Addr, bob.home, sc, []byte("hr")); !errors.Is(err, client.ErrRefused) {
		t.Errorf("second acceptance = %v, want refused", err)
	}
	// At rest, the vault holds none of the edge's bytes in the clear.
	raw, err := os.ReadFile(filepath.Join(ann.home, "agent", ann.key.ID().String()+".vault"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("work/employs")) || bytes.Contains(raw, []byte("engineer")) || bytes.Contains(raw, bob.key.Public()) {
		t.Error("Ann's vault holds the private edge in the clear")
	}
	// The server never saw it: neither the relations nor the inbox of Bob.
	conn, err := client.Dial(ctx, h, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := conn.AllRelatedIdentities(ctx, bob.key.ID(), client.RelationOptions{IncludeInvalid: true}); err != nil || len(got) != 0 {
		t.Errorf("Bob's public edges at the server = %d, %v; want none", len(got), err)
	}

	// Cid asks Ann: nothing on the allow-list, so Ann decides; she refuses.
	type answer struct {
		edges []*graph.EdgeState
		err   error
	}
	ask := func(who *device, types ...string) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			e, _, err := client.AskPrivate(ctx, h, who.key, srv.Addr, who.home, ann.key.ID(), types)
			ch <- answer{e, err}
		}()
		return ch
	}
	pending := func() client.AskRequest {
		t.Helper()
		var reqs []client.AskRequest
		waitFor(t, 20*time.Second, "a request waiting for Ann", func() bool {
			reqs = ann.a.Pending()
			return len(reqs) == 1
		})
		return reqs[0]
	}
	got := ask(cid, "work/*")
	r := pending()
	if r.Requester != cid.key.ID() || r.Edges != 1 || !slices.Equal(r.Types, []string{"work/*"}) {
		t.Errorf("pending request = %+v", r)
	}
	if err := ann.a.Decide(r.ID, false, false); err != nil {
		t.Fatal(err)
	}
	if a := <-got; !errors.Is(a.err, client.ErrRefused) || len(a.edges) != 0 {
		t.Fatalf("refused ask = %d edges, %v; want refused", len(a.edges), a.err)
	}
	// Nobody answers: refused after Ann's ask timeout.
	got = ask(cid, "work/*")
	pending()
	if a := <-got; !errors.Is(a.err, client.ErrRefused) || !strings.Contains(a.err.Error(), "did not answer") {
		t.Fatalf("unanswered ask = %v, want refused for lack of an answer", a.err)
	}
	// Types that match nothing still wait for Ann: the answer does not
	// tell Cid whether such edges exist.
	got = ask(cid, "family/*")
	if r := pending(); r.Edges != 0 {
		t.Errorf("pending request for unmatched types = %+v, want 0 edges", r)
	}
	if a := <-got; !errors.Is(a.err, client.ErrRefused) {
		t.Fatalf("ask for other types = %d edges, %v; want refused without an answer", len(a.edges), a.err)
	}

	// Ann grants and remembers: Cid gets the verified edge, and the next
	// ask is answered from the allow-list without her.
	got = ask(cid, "work/*")
	r = pending()
	if err := ann.a.Decide(r.ID, true, true); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || len(a.edges) != 1 || a.edges[0].Edge.ID() != sc.ID() {
		t.Fatalf("granted ask = %d edges, %v; want the edge", len(a.edges), a.err)
	}
	if a := <-ask(cid); a.err != nil || len(a.edges) != 1 {
		t.Fatalf("ask covered by the allow-list = %d edges, %v", len(a.edges), a.err)
	}
	if rules, err := ann.graph().Policy(); err != nil || len(rules) != 1 || rules[0].Requester != cid.key.ID().String() {
		t.Errorf("Ann's allow-list = %+v, %v", rules, err)
	}
	if d, err := cid.graph().Disclosed(time.Now()); err != nil || len(d) != 1 {
		t.Errorf("Cid keeps %d disclosed edges, %v; want 1", len(d), err)
	}

	// Ann discloses the edge to Dan; Dan may not pass on an edge he is no
	// party of.
	proof, err := graph.EncodeProof(edges[0].Proof())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Disclose(ctx, h, ann.key, srv.Addr, ann.home, dan.key.ID(), [][]byte{proof}); err != nil {
		t.Fatal(err)
	}
	if d, err := dan.graph().Disclosed(time.Now()); err != nil || len(d) != 1 || d[0].Edge.ID() != sc.ID() {
		t.Fatalf("Dan's disclosed edges = %v, %v; want the edge", d, err)
	}
	if err := client.Disclose(ctx, h, dan.key, srv.Addr, dan.home, cid.key.ID(), [][]byte{proof}); !errors.Is(err, client.ErrRefused) || !strings.Contains(err.Error(), "not a party") {
		t.Errorf("disclosure by a non-party = %v, want refused", err)
	}
	forged := bytes.Clone(proof)
	forged[len(forged)-1] ^= 1
	if err := client.Disclose(ctx, h, ann.key, srv.Addr, ann.home, cid.key.ID(), [][]byte{forged}); !errors.Is(err, client.ErrRefused) {
		t.Errorf("disclosure of a forged proof = %v, want refused", err)
	}

	// Ann revokes the edge on her device and sends the revocation to
	// everyone she showed it to (Cid through asks, Dan by disclosure): both
	// copies become revoked. Her answers to asks carry it too.
	if err := ann.graph().Revoke(sc.ID()); err != nil {
		t.Fatal(err)
	}
	if shown, err := ann.graph().ShownTo(sc.ID()); err != nil || len(shown) != 2 {
		t.Fatalf("Ann showed the edge to %v, %v; want Cid and Dan", shown, err)
	}
	sent, failed, err := client.SendRevocation(ctx, h, ann.key, srv.Addr, ann.home, sc.ID())
	if err != nil || sent != 2 || len(failed) != 0 {
		t.Fatalf("SendRevocation = %d sent, failed %v, %v; want 2, none", sent, failed, err)
	}
	for _, d := range []*device{cid, dan} {
		kept, err := d.graph().Disclosed(time.Now())
		if err != nil || len(kept) != 1 || !kept[0].Revoked {
			t.Errorf("copy kept after the revocation = %v, %v; want it revoked", kept, err)
		}
	}
	if a := <-ask(cid); a.err != nil || len(a.edges) != 1 || !a.edges[0].Revoked {
		t.Fatalf("ask after the revocation = %d edges, %v; want the revoked edge", len(a.edges), a.err)
	}
	// The older, unrevoked proof does not replace the revoked copy.
	if err := client.Disclose(ctx, h, ann.key, srv.Addr, ann.home, dan.key.ID(), [][]byte{proof}); err != nil {
		t.Fatal(err)
	}
	if kept, _ := dan.graph().Disclosed(time.Now()); len(kept) != 1 || !kept[0].Revoked {
		t.Error("an older proof replaced the revoked copy")
	}
}

// TestPrivateInboxShares: one issuer fills only its share of a device's
// private inbox, and the refused proposal is forgotten on its side.
func TestPrivateInboxShares(t *testing.T) {
	srv := profileservertest.Start(t)
	bob := startDevice(t, srv, "Bob", time.Second)
	mallory := &device{key: profileservertest.NewKey(t), home: t.TempDir()}
	h := profileservertest.ClientHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 6 {
		sc, err := graph.SignCard(mallory.key, graph.Card{Type: "social/friend", Visibility: graph.VisibilityPrivate,
			Recipient: bob.key.Public(), ValidTo: time.Now().AddDate(0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		err = client.ProposePrivate(ctx, h, mallory.key, srv.Addr, mallory.home, sc)
		if i < 5 && err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
		if i == 5 && (!errors.Is(err, client.ErrRefused) || !strings.Contains(err.Error(), "waiting already")) {
			t.Fatalf("proposal past the issuer's share = %v, want refused", err)
		}
	}
	if in, _ := bob.graph().Incoming(); len(in) != 5 {
		t.Errorf("Bob's private inbox = %d cards, want 5", len(in))
	}
	if out, _ := mallory.graph().Outgoing(); len(out) != 5 {
		t.Errorf("the issuer keeps %d outgoing proposals, want the 5 delivered", len(out))
	}
}

// TestSilentCallers: an identity holds at most two of a device's
// private-graph connections, and one that sends nothing loses its
// connection after the read timeout; other identities are served
// meanwhile.
func TestSilentCallers(t *testing.T) {
	srv := profileservertest.Start(t)
	bob := startDevice(t, srv, "Bob", time.Second, func(c *client.AgentConfig) { c.RelationReadTimeout = 500 * time.Millisecond })
	mallory := &device{key: profileservertest.NewKey(t), home: t.TempDir()}
	cid := &device{key: profileservertest.NewKey(t), home: t.TempDir()}
	h := profileservertest.ClientHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	propose := func(from *device) error {
		sc, err := graph.SignCard(from.key, graph.Card{Type: "social/friend", Visibility: graph.VisibilityPrivate,
			Recipient: bob.key.Public(), ValidTo: time.Now().AddDate(0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return client.ProposePrivate(ctx, h, from.key, srv.Addr, from.home, sc)
	}
	var silent []*client.PeerConn
	for range 2 {
		pc, err := client.DialService(ctx, h, mallory.key, srv.Addr, bob.key.ID(), client.RelationService, client.DialOptions{DisableICE: true})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		silent = append(silent, pc)
	}
	// Both silent connections are held: a third from Mallory is closed
	// unanswered, while Cid is served.
	if err := propose(mallory); err == nil {
		t.Error("a third connection of one identity was served")
	}
	if err := propose(cid); err != nil {
		t.Errorf("another identity's proposal while Mallory holds two connections: %v", err)
	}
	// The device closes the silent connections after its read timeout.
	for i, pc := range silent {
		if _, err := io.ReadAll(pc); err != nil && !errors.Is(err, io.EOF) {
			t.Logf("silent connection %d ended with %v", i, err)
		}
	}
	if err := propose(mallory); err != nil {
		t.Errorf("Mallory's proposal once its silent connections were closed: %v", err)
	}
}
