package profileserver_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/time/rate"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// signCard returns issuer's public card of type typ to recipient, valid from
// an hour ago for a year, after mod (if not nil) changed it.
func signCard(t testing.TB, issuer, recipient *identity.Key, typ string, mod func(*graph.Card)) *graph.SignedCard {
	t.Helper()
	now := time.Now()
	c := graph.Card{
		Type:       typ,
		Recipient:  recipient.Public(),
		ValidFrom:  now.Add(-time.Hour),
		ValidTo:    now.AddDate(1, 0, 0),
		Created:    now.Add(-time.Hour),
		Properties: map[string]string{"role": "engineer"},
	}
	if mod != nil {
		mod(&c)
	}
	sc, err := graph.SignCard(issuer, c)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// accept returns recipient's acceptance of sc for application appID.
func accept(t testing.TB, recipient *identity.Key, sc *graph.SignedCard, appID string) *graph.SignedAcceptance {
	t.Helper()
	acc, err := graph.Accept(recipient, sc, []byte(appID))
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

func addRelatedReq(sc *graph.SignedCard, cardSig []byte, acc *graph.SignedAcceptance, accSig, appID []byte) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_AddRelatedIdentity{AddRelatedIdentity: &wirepb.AddRelatedIdentityRequest{
		Card: sc.Raw, CardSignature: cardSig, Acceptance: acc.Raw, AcceptanceSignature: accSig, ApplicationId: appID,
	}}}
}

func getRelatedReq(id, issuer []byte, typ string, includeInvalid bool) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_GetRelatedIdentities{GetRelatedIdentities: &wirepb.GetRelatedIdentitiesRequest{
		IdentityId: id, IssuerId: issuer, TypeWildcard: typ, IncludeInvalid: includeInvalid,
	}}}
}

// appIDs returns the application IDs of edges, in the server's order.
func appIDs(edges []*graph.EdgeState) []string {
	out := []string{}
	for _, e := range edges {
		out = append(out, string(e.Edge.Acceptance.Acceptance.ApplicationID))
	}
	return out
}

// wantRelated checks the application IDs of the edges of id that match opt.
func wantRelated(t testing.TB, c *client.Conn, id identity.ID, opt client.RelationOptions, want ...string) []*graph.EdgeState {
	t.Helper()
	edges, more, err := c.GetRelatedIdentities(testCtx(t), id, opt)
	wantOK(t, err)
	if more {
		t.Errorf("GetRelatedIdentities(%+v): more = true for a short answer", opt)
	}
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, appIDs(edges)); diff != "" {
		t.Errorf("GetRelatedIdentities(%+v) application IDs (-want +got):\n%s", opt, diff)
	}
	return edges
}

func TestRelationsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t)
	issuer, recipient := newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")
	observer := srv.Dial(t)

	wantRelated(t, observer, recipient.ID(), client.RelationOptions{})
	sc := signCard(t, issuer, recipient, "work/employs", nil)
	wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, "job-1")))
	// The same card may be applied again under another application ID.
	wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, "job-2")))

	edges := wantRelated(t, observer, recipient.ID(), client.RelationOptions{}, "job-1", "job-2")
	e := edges[0]
	if !bytes.Equal(e.Edge.Card.Raw, sc.Raw) || e.Edge.Card.Card.IssuerID() != issuer.ID() ||
		e.Status != graph.EdgeValid || e.Properties["role"] != "engineer" {
		t.Errorf("edge = %v status %v properties %v, want the stored valid card", e.Edge, e.Status, e.Properties)
	}
	// A proof verifies offline for anyone.
	proof, err := graph.EncodeProof(e.Proof())
	wantOK(t, err)
	if _, err := graph.OpenProof(proof, time.Now()); err != nil {
		t.Errorf("OpenProof of a returned edge: %v", err)
	}

	wantOK(t, c.RemoveRelatedIdentity(ctx, []byte("job-1")))
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{}, "job-2")
	wantStatus(t, c.RemoveRelatedIdentity(ctx, []byte("job-1")), wirepb.Status_NOT_FOUND, "")
	wantStatus(t, c.RemoveRelatedIdentity(ctx, []byte("never")), wirepb.Status_NOT_FOUND, "")
	wantStatus(t, c.RemoveRelatedIdentity(ctx, nil), wirepb.Status_INVALID_VALUE, "applicationId")
	wantStatus(t, c.RemoveRelatedIdentity(ctx, make([]byte, graph.MaxApplicationIDLen+1)), wirepb.Status_INVALID_VALUE, "applicationId")
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{}, "job-2")
}

func TestRelationsRejected(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t)
	issuer, recipient, other := newKey(t), newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")

	sc := signCard(t, issuer, recipient, "work/employs", nil)
	acc := accept(t, recipient, sc, "app")
	app := []byte("app")
	forged := signCard(t, issuer, recipient, "work/employs", nil)
	forgedSig := other.Sign(graph.DomainEdgeCard, func() []byte { id := forged.ID(); return id[:] }())
	tampered := *sc
	tampered.Raw = bytes.Clone(sc.Raw)
	tampered.Raw[len(tampered.Raw)-1] ^= 1
	sc2 := signCard(t, issuer, recipient, "work/employs", nil)
	acc2 := accept(t, recipient, sc2, "app")
	forOther := signCard(t, issuer, other, "work/employs", nil)
	accOther := accept(t, other, forOther, "app")
	private := signCard(t, issuer, recipient, "work/employs", func(c *graph.Card) { c.Visibility = graph.VisibilityPrivate })
	expired := signCard(t, issuer, recipient, "work/employs", func(c *graph.Card) {
		c.Created, c.ValidFrom, c.ValidTo = time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	longID := bytes.Repeat([]byte{'a'}, graph.MaxApplicationIDLen+1)

	for _, tc := range []struct {
		name    string
		req     *wirepb.Request
		status  wirepb.Status
		details string
	}{
		{"no card", addRelatedReq(&graph.SignedCard{}, nil, acc, acc.Signature, app), wirepb.Status_INVALID_VALUE, "signedCard.card"},
		{"forged issuer signature", addRelatedReq(forged, forgedSig, accept(t, recipient, forged, "app"), accept(t, recipient, forged, "app").Signature, app),
			wirepb.Status_INVALID_VALUE, "signedCard.issuerSignature"},
		{"missing issuer signature", addRelatedReq(sc, nil, acc, acc.Signature, app), wirepb.Status_INVALID_VALUE, "signedCard.issuerSignature"},
		{"tampered card", addRelatedReq(&tampered, sc.Signature, acc, acc.Signature, app), wirepb.Status_INVALID_VALUE, "signedCard.card.cardId"},
		{"acceptance for another card", addRelatedReq(sc, sc.Signature, acc2, acc2.Signature, app), wirepb.Status_INVALID_VALUE, "cardApplication.cardId"},
		{"wrong application ID", addRelatedReq(sc, sc.Signature, acc, acc.Signature, []byte("other")), wirepb.Status_INVALID_VALUE, "cardApplication.applicationId"},
		{"empty application ID", addRelatedReq(sc, sc.Signature, acc, acc.Signature, nil), wirepb.Status_INVALID_VALUE, "cardApplication.applicationId"},
		{"long application ID", addRelatedReq(sc, sc.Signature, acc, acc.Signature, longID), wirepb.Status_INVALID_VALUE, "cardApplication.applicationId"},
		{"forged acceptance signature", addRelatedReq(sc, sc.Signature, acc, other.Sign(graph.DomainEdgeAccept, acc.Raw), app), wirepb.Status_INVALID_SIGNATURE, ""},
		{"missing acceptance", addRelatedReq(sc, sc.Signature, &graph.SignedAcceptance{}, nil, app), wirepb.Status_INVALID_SIGNATURE, ""},
		{"recipient is not the caller", addRelatedReq(forOther, forOther.Signature, accOther, accOther.Signature, app), wirepb.Status_INVALID_VALUE, "signedCard.card.recipientPublicKey"},
		{"private edge", addRelatedReq(private, private.Signature, accept(t, recipient, private, "app"), accept(t, recipient, private, "app").Signature, app),
			wirepb.Status_INVALID_VALUE, "signedCard.card.visibility"},
		{"expired card", addRelatedReq(expired, expired.Signature, accept(t, recipient, expired, "app"), accept(t, recipient, expired, "app").Signature, app),
			wirepb.Status_INVALID_VALUE, "signedCard.card.validTo"},
	} {
		_, err := c.Call(ctx, tc.req)
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, err, tc.status, tc.details) })
	}
	observer := srv.Dial(t)
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{IncludeInvalid: true})

	wantOK(t, c.AddRelatedIdentity(ctx, sc, acc))
	// A repeated application ID is refused, even for another card.
	wantStatus(t, c.AddRelatedIdentity(ctx, sc, acc), wirepb.Status_ALREADY_EXISTS, "")
	wantStatus(t, c.AddRelatedIdentity(ctx, sc2, acc2), wirepb.Status_ALREADY_EXISTS, "")
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{IncludeInvalid: true}, "app")

	// Only a checked-in identity adds or removes.
	wantStatus(t, observer.AddRelatedIdentity(ctx, sc, acc), wirepb.Status_UNAUTHORIZED, "")
	_, err := observer.Call(ctx, &wirepb.Request{Body: &wirepb.Request_RemoveRelatedIdentity{RemoveRelatedIdentity: &wirepb.RemoveRelatedIdentityRequest{ApplicationId: app}}})
	wantStatus(t, err, wirepb.Status_UNAUTHORIZED, "")

	// Queries name their bad fields; an identity not hosted here is unknown.
	rid, oid := recipient.ID(), other.ID()
	for _, tc := range []struct {
		name    string
		req     *wirepb.Request
		status  wirepb.Status
		details string
	}{
		{"bad identity", getRelatedReq(make([]byte, 31), nil, "", false), wirepb.Status_INVALID_VALUE, "identityNetworkId"},
		{"bad issuer", getRelatedReq(rid[:], make([]byte, 5), "", false), wirepb.Status_INVALID_VALUE, "issuerNetworkId"},
		{"long type", getRelatedReq(rid[:], nil, string(bytes.Repeat([]byte{'a'}, 65)), false), wirepb.Status_INVALID_VALUE, "type"},
		{"not hosted", getRelatedReq(oid[:], nil, "", false), wirepb.Status_NOT_FOUND, ""},
	} {
		_, err := observer.Call(ctx, tc.req)
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, err, tc.status, tc.details) })
	}
}

func TestRelationsFilters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t)
	alice, bob, recipient := newKey(t), newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")
	for _, e := range []struct {
		issuer *identity.Key
		typ    string
		app    string
	}{
		{alice, "work/employs", "a-employs"},
		{alice, "family/parent", "a-parent"},
		{bob, "work/manages", "b-manages"},
		{bob, "Work/Employs", "b-employs"},
	} {
		sc := signCard(t, e.issuer, recipient, e.typ, nil)
		wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, e.app)))
	}
	a, b := alice.ID(), bob.ID()
	observer := srv.Dial(t)
	for _, tc := range []struct {
		opt  client.RelationOptions
		want []string
	}{
		{client.RelationOptions{}, []string{"a-employs", "a-parent", "b-employs", "b-manages"}},
		{client.RelationOptions{Type: "*"}, []string{"a-employs", "a-parent", "b-employs", "b-manages"}},
		{client.RelationOptions{Type: "work/*"}, []string{"a-employs", "b-employs", "b-manages"}},
		{client.RelationOptions{Type: "*/employs"}, []string{"a-employs", "b-employs"}},
		{client.RelationOptions{Type: "WORK/EMPLOYS"}, []string{"a-employs", "b-employs"}},
		{client.RelationOptions{Type: "*par*"}, []string{"a-parent"}},
		{client.RelationOptions{Type: "work"}, nil},
		{client.RelationOptions{Issuer: &a}, []string{"a-employs", "a-parent"}},
		{client.RelationOptions{Issuer: &b, Type: "*manages"}, []string{"b-manages"}},
		{client.RelationOptions{Issuer: &b, Type: "family/*"}, nil},
		{client.RelationOptions{Skip: 3}, []string{"b-manages"}},
		{client.RelationOptions{Skip: 9}, nil},
	} {
		wantRelated(t, observer, recipient.ID(), tc.opt, tc.want...)
	}
}

func TestRelationsExpiry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.Now = clock })
	ctx := testCtx(t)
	issuer, recipient := newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")
	short := signCard(t, issuer, recipient, "work/employs", func(c *graph.Card) { c.ValidTo = time.Now().Add(time.Hour) })
	later := signCard(t, issuer, recipient, "work/employs", func(c *graph.Card) {
		c.ValidFrom, c.ValidTo = time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)
	})
	long := signCard(t, issuer, recipient, "work/employs", nil)
	wantOK(t, c.AddRelatedIdentity(ctx, short, accept(t, recipient, short, "short")))
	wantOK(t, c.AddRelatedIdentity(ctx, later, accept(t, recipient, later, "later")))
	wantOK(t, c.AddRelatedIdentity(ctx, long, accept(t, recipient, long, "long")))

	observer := srv.Dial(t)
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{}, "long", "short")
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{IncludeInvalid: true}, "later", "long", "short")

	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{}, "long")
	edges := wantRelated(t, observer, recipient.ID(), client.RelationOptions{IncludeInvalid: true}, "later", "long", "short")
	// The client derives the status at its own clock, still before expiry.
	if edges[2].Status != graph.EdgeValid {
		t.Errorf("short edge status at the client's clock = %v, want valid", edges[2].Status)
	}

	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{}, "later", "long")
}

// TestRelationsQuota runs a server with a quota of 3 relations.
func TestRelationsQuota(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.MaxRelations = 3 })
	issuer, recipient, second := newKey(t), newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")
	add := func(k *identity.Key, c *client.Conn, app string) error {
		sc := signCard(t, issuer, k, "work/employs", nil)
		return c.AddRelatedIdentity(ctx, sc, accept(t, k, sc, app))
	}
	for _, app := range []string{"1", "2", "3"} {
		wantOK(t, add(recipient, c, app))
	}
	wantStatus(t, add(recipient, c, "4"), wirepb.Status_QUOTA_EXCEEDED, "")
	// The quota is per identity.
	c2 := srv.Customer(t, second, "person")
	wantOK(t, add(second, c2, "1"))
	wantOK(t, c.RemoveRelatedIdentity(ctx, []byte("2")))
	wantOK(t, add(recipient, c, "4"))
	wantStatus(t, add(recipient, c, "5"), wirepb.Status_QUOTA_EXCEEDED, "")
	wantRelated(t, srv.Dial(t), recipient.ID(), client.RelationOptions{}, "1", "3", "4")
}

func TestRelationsSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t)
	issuer, recipient := newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")
	var cards []*graph.SignedCard
	for _, app := range []string{"x", "y", "z"} {
		sc := signCard(t, issuer, recipient, "work/employs", nil)
		cards = append(cards, sc)
		wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, app)))
	}
	wantOK(t, c.RemoveRelatedIdentity(ctx, []byte("y")))
	srv.Stop()

	srv = profileservertest.StartWith(t, srv.Key, srv.Dir)
	edges := wantRelated(t, srv.Dial(t), recipient.ID(), client.RelationOptions{}, "x", "z")
	got := [][]byte{edges[0].Edge.Card.Raw, edges[1].Edge.Card.Raw}
	if !slices.EqualFunc(got, [][]byte{cards[0].Raw, cards[2].Raw}, bytes.Equal) {
		t.Error("cards after restart differ from the stored ones")
	}
	// The restored store still enforces uniqueness and removal.
	c = srv.Dial(t)
	wantOK(t, c.StartConversation(ctx, recipient))
	wantOK(t, c.CheckIn(ctx))
	wantStatus(t, c.AddRelatedIdentity(ctx, cards[0], accept(t, recipient, cards[0], "x")), wirepb.Status_ALREADY_EXISTS, "")
	wantStatus(t, c.RemoveRelatedIdentity(ctx, []byte("y")), wirepb.Status_NOT_FOUND, "")
	wantOK(t, c.RemoveRelatedIdentity(ctx, []byte("z")))
	wantRelated(t, c, recipient.ID(), client.RelationOptions{}, "x")
}

func TestRelationsRecords(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t)
	issuer, recipient, other := newKey(t), newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")
	sc := signCard(t, issuer, recipient, "work/employs", nil)
	wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, "a")))
	wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, "b")))
	unrelated := signCard(t, issuer, recipient, "work/employs", nil)
	wantOK(t, c.AddRelatedIdentity(ctx, unrelated, accept(t, recipient, unrelated, "u")))
	rid := recipient.ID()

	// Anyone may deliver a record; it goes to every stored edge of its card.
	observer := srv.Dial(t)
	change, err := graph.SignPropertyChange(issuer, sc, 1, time.Time{}, map[string]string{"role": "lead"}, nil)
	wantOK(t, err)
	n, err := observer.AddEdgeRecord(ctx, rid, change)
	wantOK(t, err)
	if n != 2 {
		t.Errorf("AddEdgeRecord updated %d edges, want 2", n)
	}
	edges := wantRelated(t, observer, rid, client.RelationOptions{}, "a", "b", "u")
	if edges[0].Properties["role"] != "lead" || edges[1].Properties["role"] != "lead" || edges[2].Properties["role"] != "engineer" {
		t.Errorf("properties after the change = %v, %v, %v; want lead, lead, engineer", edges[0].Properties, edges[1].Properties, edges[2].Properties)
	}

	forged := *change
	forged.Signature = other.Sign(graph.DomainEdgeRecord, change.Raw)
	stranger := signCard(t, issuer, other, "work/employs", nil)
	strangerRec, err := graph.SignRevocation(issuer, stranger, 1, time.Time{})
	wantOK(t, err)
	for _, tc := range []struct {
		name    string
		id      identity.ID
		rec     *graph.SignedRecord
		status  wirepb.Status
		details string
	}{
		{"replayed", rid, change, wirepb.Status_INVALID_VALUE, "record.sequence"},
		{"forged signature", rid, &forged, wirepb.Status_INVALID_SIGNATURE, ""},
		{"garbage", rid, &graph.SignedRecord{Raw: []byte{0xff, 0x01}}, wirepb.Status_INVALID_VALUE, "record.cardId"},
		{"empty", rid, &graph.SignedRecord{}, wirepb.Status_INVALID_VALUE, "record"},
		{"card not stored", rid, strangerRec, wirepb.Status_NOT_FOUND, ""},
		{"identity not hosted", other.ID(), change, wirepb.Status_NOT_FOUND, ""},
	} {
		_, err := observer.AddEdgeRecord(ctx, tc.id, tc.rec)
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, err, tc.status, tc.details) })
	}
	_, err = observer.Call(ctx, &wirepb.Request{Body: &wirepb.Request_AddEdgeRecord{AddEdgeRecord: &wirepb.AddEdgeRecordRequest{
		RecipientId: []byte{1}, Record: change.Raw, Signature: change.Signature}}})
	wantStatus(t, err, wirepb.Status_INVALID_VALUE, "recipientId")

	// The recipient ends the employment; the edge is then invalid, and the
	// card applied again under a new application ID stays revoked.
	revoke, err := graph.SignRevocation(recipient, sc, 2, time.Time{})
	wantOK(t, err)
	n, err = c.AddEdgeRecord(ctx, rid, revoke)
	wantOK(t, err)
	if n != 2 {
		t.Errorf("revocation updated %d edges, want 2", n)
	}
	wantRelated(t, observer, rid, client.RelationOptions{}, "u")
	wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, "c")))
	wantRelated(t, observer, rid, client.RelationOptions{}, "u")
	edges = wantRelated(t, observer, rid, client.RelationOptions{IncludeInvalid: true}, "a", "b", "c", "u")
	for _, e := range edges[:3] {
		if e.Status != graph.EdgeRevoked || e.RevokedBy != graph.PartyRecipient {
			t.Errorf("edge %s: status %v by %v, want revoked by the recipient", e.Edge, e.Status, e.RevokedBy)
		}
	}
	after, err := graph.SignPropertyChange(issuer, sc, 3, time.Time{}, map[string]string{"role": "cto"}, nil)
	wantOK(t, err)
	_, err = observer.AddEdgeRecord(ctx, rid, after)
	wantStatus(t, err, wirepb.Status_INVALID_VALUE, "record.sequence")

	// Removing every copy of the revoked card and storing it again does
	// not shed the revocation: the server remembers it.
	for _, app := range []string{"a", "b", "c"} {
		wantOK(t, c.RemoveRelatedIdentity(ctx, []byte(app)))
	}
	wantRelated(t, observer, rid, client.RelationOptions{IncludeInvalid: true}, "u")
	wantOK(t, c.AddRelatedIdentity(ctx, sc, accept(t, recipient, sc, "d")))
	wantRelated(t, observer, rid, client.RelationOptions{}, "u")
	edges = wantRelated(t, observer, rid, client.RelationOptions{IncludeInvalid: true}, "d", "u")
	if !edges[0].Revoked {
		t.Errorf("the revoked card stored again = %v, want revoked", edges[0].Status)
	}
}

// TestRelationsClientVerifies: the client refuses an answer with any proof
// that does not verify or does not match the query.
func TestRelationsClientVerifies(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	liar := profileservertest.Start(t) // a real host with the liar's handler below
	var mu sync.Mutex
	var answer [][]byte
	liar.Host.SetStreamHandler(profileserver.ProtocolClient, func(st network.Stream) {
		defer st.Close()
		for {
			m, err := wire.ReadMessage(st)
			if err != nil {
				return
			}
			mu.Lock()
			out := &wirepb.GetRelatedIdentitiesResponse{Proofs: answer}
			mu.Unlock()
			resp := &wirepb.Response{Body: &wirepb.Response_GetRelatedIdentities{GetRelatedIdentities: out}}
			if err := wire.WriteMessage(st, &wirepb.Message{Id: m.Id, Kind: &wirepb.Message_Response{Response: resp}}); err != nil {
				return
			}
		}
	})
	c := liar.Dial(t)

	issuer, recipient, other := newKey(t), newKey(t), newKey(t)
	proofOf := func(sc *graph.SignedCard, acc *graph.SignedAcceptance) []byte {
		b, err := graph.EncodeProof(&graph.EdgeProof{Card: sc, Acceptance: acc})
		wantOK(t, err)
		return b
	}
	sc := signCard(t, issuer, recipient, "work/employs", nil)
	good := proofOf(sc, accept(t, recipient, sc, "a"))
	good2 := proofOf(sc, accept(t, recipient, sc, "b"))
	sameApp := proofOf(sc, accept(t, recipient, sc, "a"))
	forgedCard := *sc
	forgedCard.Signature = other.Sign(graph.DomainEdgeCard, func() []byte { id := sc.ID(); return id[:] }())
	forged := proofOf(&forgedCard, accept(t, recipient, sc, "f"))
	toOther := signCard(t, issuer, other, "work/employs", nil)
	private := signCard(t, issuer, recipient, "work/employs", func(c *graph.Card) { c.Visibility = graph.VisibilityPrivate })
	friend := signCard(t, issuer, recipient, "social/friend", nil)
	fromOther := signCard(t, other, recipient, "work/employs", nil)
	follows := signCard(t, issuer, recipient, "social/follows", nil)
	iss := issuer.ID()

	for _, tc := range []struct {
		name   string
		proofs [][]byte
		opt    client.RelationOptions
	}{
		{"forged issuer signature", [][]byte{good, forged}, client.RelationOptions{}},
		{"garbage", [][]byte{{0xff}}, client.RelationOptions{}},
		{"another recipient", [][]byte{proofOf(toOther, accept(t, other, toOther, "o"))}, client.RelationOptions{}},
		{"private edge", [][]byte{proofOf(private, accept(t, recipient, private, "p"))}, client.RelationOptions{}},
		{"type not asked for", [][]byte{good, proofOf(friend, accept(t, recipient, friend, "s"))}, client.RelationOptions{Type: "work/*"}},
		{"issuer not asked for", [][]byte{proofOf(fromOther, accept(t, recipient, fromOther, "x"))}, client.RelationOptions{Issuer: &iss}},
		{"no acceptance", [][]byte{proofOf(follows, nil)}, client.RelationOptions{}},
		{"repeated application ID", [][]byte{good, sameApp}, client.RelationOptions{}},
	} {
		mu.Lock()
		answer = tc.proofs
		mu.Unlock()
		_, _, err := c.GetRelatedIdentities(ctx, recipient.ID(), tc.opt)
		if !errors.Is(err, client.ErrBadServer) {
			t.Errorf("%s: err = %v, want ErrBadServer", tc.name, err)
		}
	}
	mu.Lock()
	answer = [][]byte{good, good2}
	mu.Unlock()
	edges, _, err := c.GetRelatedIdentities(ctx, recipient.ID(), client.RelationOptions{Type: "work/*", Issuer: &iss})
	wantOK(t, err)
	if diff := cmp.Diff([]string{"a", "b"}, appIDs(edges)); diff != "" {
		t.Errorf("honest answer (-want +got):\n%s", diff)
	}
}

// TestRelationsPaging runs a server whose answers hold two proofs.
func TestRelationsPaging(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	issuer, recipient := newKey(t), newKey(t)
	type edge struct {
		sc  *graph.SignedCard
		acc *graph.SignedAcceptance
	}
	var edges []edge
	var size int
	for _, app := range []string{"1", "2", "3", "4", "5"} {
		sc := signCard(t, issuer, recipient, "work/employs", nil)
		acc := accept(t, recipient, sc, app)
		edges = append(edges, edge{sc, acc})
		b, err := graph.EncodeProof(&graph.EdgeProof{Card: sc, Acceptance: acc})
		wantOK(t, err)
		size = max(size, len(b)+3)
	}
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.RelationsBudget = 2 * size })
	c := srv.Customer(t, recipient, "person")
	for _, e := range edges {
		wantOK(t, c.AddRelatedIdentity(ctx, e.sc, e.acc))
	}
	observer := srv.Dial(t)
	var got []string
	for skip := 0; ; {
		edges, more, err := observer.GetRelatedIdentities(ctx, recipient.ID(), client.RelationOptions{Skip: skip})
		wantOK(t, err)
		if len(edges) != 2 && more || len(edges) == 0 {
			t.Fatalf("page at %d: %d edges, more %v; want 2 per page until the last", skip, len(edges), more)
		}
		got = append(got, appIDs(edges)...)
		skip += len(edges)
		if !more {
			break
		}
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5"}, got); diff != "" {
		t.Errorf("paged application IDs (-want +got):\n%s", diff)
	}
}

// FuzzRelations sends arbitrary field values in the relation requests of a
// checked-in identity with one stored edge, and checks that the server
// answers every one with a protocol status (never INTERNAL), keeps the
// stream, and keeps the stored edge unchanged.
func FuzzRelations(f *testing.F) {
	ctx := testCtx(f)
	srv := profileservertest.Start(f, func(c *profileserver.Config) { c.PeerRate = rate.Inf })
	issuer, recipient := newKey(f), newKey(f)
	c := srv.Customer(f, recipient, "person")
	sc := signCard(f, issuer, recipient, "work/employs", nil)
	acc := accept(f, recipient, sc, "keep")
	wantOK(f, c.AddRelatedIdentity(ctx, sc, acc))
	rec, err := graph.SignRevocation(issuer, sc, 1, time.Time{})
	wantOK(f, err)
	rid := recipient.ID()

	f.Add(uint8(0), sc.Raw, sc.Signature, acc.Raw, acc.Signature, []byte("other"))
	f.Add(uint8(0), sc.Raw, sc.Signature, acc.Raw, acc.Signature, []byte("keep"))
	none := []byte{}
	f.Add(uint8(1), []byte("keep2"), none, none, none, none)
	f.Add(uint8(2), rid[:], []byte("*"), []byte{1}, rid[:], none)
	// A record signed by a stranger: the fuzzer cannot make it verify.
	f.Add(uint8(3), rid[:], rec.Raw, newKey(f).Sign(graph.DomainEdgeRecord, rec.Raw), none, none)
	f.Fuzz(func(t *testing.T, kind uint8, a, b, c2, d, e []byte) {
		var req *wirepb.Request
		switch kind % 4 {
		case 0:
			req = &wirepb.Request{Body: &wirepb.Request_AddRelatedIdentity{AddRelatedIdentity: &wirepb.AddRelatedIdentityRequest{
				Card: a, CardSignature: b, Acceptance: c2, AcceptanceSignature: d, ApplicationId: e}}}
		case 1:
			if string(a) == "keep" {
				return
			}
			req = &wirepb.Request{Body: &wirepb.Request_RemoveRelatedIdentity{RemoveRelatedIdentity: &wirepb.RemoveRelatedIdentityRequest{ApplicationId: a}}}
		case 2:
			if !utf8.Valid(b) {
				return // not encodable: proto strings are UTF-8
			}
			req = getRelatedReq(a, d, string(b), len(c2) > 0)
		case 3:
			req = &wirepb.Request{Body: &wirepb.Request_AddEdgeRecord{AddEdgeRecord: &wirepb.AddEdgeRecordRequest{
				RecipientId: a, Record: b, Signature: c2}}}
		}
		_, err := c.Call(testCtx(t), req)
		var se *wire.StatusError
		if err != nil && (!errors.As(err, &se) || se.Status == wirepb.Status_INTERNAL) {
			t.Fatalf("request %v: %v", req, err)
		}
		edges, _, err := c.GetRelatedIdentities(testCtx(t), rid, client.RelationOptions{IncludeInvalid: true})
		wantOK(t, err)
		if len(edges) == 0 || !bytes.Equal(edges[0].Edge.Card.Raw, sc.Raw) || edges[0].Revoked {
			t.Fatalf("stored edge changed: %v", appIDs(edges))
		}
	})
}

// TestRelationsNewHosting: edges stored under a cancelled hosting agreement
// do not come back when the identity registers again.
func TestRelationsNewHosting(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t)
	issuer, recipient := newKey(t), newKey(t)
	c := srv.Customer(t, recipient, "person")
	sc := signCard(t, issuer, recipient, "work/employs", nil)
	acc := accept(t, recipient, sc, "a")
	wantOK(t, c.AddRelatedIdentity(ctx, sc, acc))
	wantOK(t, c.CancelHosting(ctx, nil))
	observer := srv.Dial(t)
	_, _, err := observer.GetRelatedIdentities(ctx, recipient.ID(), client.RelationOptions{})
	wantStatus(t, err, wirepb.Status_NOT_FOUND, "")

	c = srv.Customer(t, recipient, "person")
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{IncludeInvalid: true})
	wantStatus(t, c.RemoveRelatedIdentity(ctx, []byte("a")), wirepb.Status_NOT_FOUND, "")
	wantOK(t, c.AddRelatedIdentity(ctx, sc, acc))
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{}, "a")

	// A revocation outlives the hosting: cancelled, hosted again and the
	// card stored again, the edge stays revoked.
	rec, err := graph.SignRevocation(issuer, sc, 1, time.Time{})
	wantOK(t, err)
	_, err = observer.AddEdgeRecord(ctx, recipient.ID(), rec)
	wantOK(t, err)
	wantOK(t, c.CancelHosting(ctx, nil))
	c = srv.Customer(t, recipient, "person")
	wantOK(t, c.AddRelatedIdentity(ctx, sc, acc))
	wantRelated(t, observer, recipient.ID(), client.RelationOptions{})
	edges := wantRelated(t, observer, recipient.ID(), client.RelationOptions{IncludeInvalid: true}, "a")
	if !edges[0].Revoked {
		t.Error("the revoked card stored again after a new hosting is valid")
	}
}
