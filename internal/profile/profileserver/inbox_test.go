package profileserver_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// verified dials srv and proves key with VerifyIdentity (no check-in).
func verified(t testing.TB, srv *profileservertest.Server, key *identity.Key) *client.Conn {
	t.Helper()
	ctx := testCtx(t)
	c := srv.Dial(t)
	wantOK(t, c.StartConversation(ctx, key))
	wantOK(t, c.VerifyIdentity(ctx))
	return c
}

func proposeReq(sc *graph.SignedCard, sig []byte) *wirepb.Request {
	return &wirepb.Request{Body: &wirepb.Request_ProposeRelation{ProposeRelation: &wirepb.ProposeRelationRequest{Card: sc.Raw, CardSignature: sig}}}
}

// wantInbox checks the card IDs in c's inbox, in the server's order (by card
// ID).
func wantInbox(t testing.TB, c *client.Conn, want ...*graph.SignedCard) {
	t.Helper()
	got, err := c.RelationInbox(testCtx(t))
	wantOK(t, err)
	if len(got) != len(want) {
		t.Fatalf("inbox holds %d cards, want %d", len(got), len(want))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if g.ID() == w.ID() && bytes.Equal(g.Raw, w.Raw) {
				found = true
			}
		}
		if !found {
			t.Errorf("inbox lacks card %s", w.ID())
		}
	}
}

func TestInboxRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t)
	issuer, recipient := newKey(t), newKey(t)
	checkedIn := srv.Customer(t, recipient, "person")
	a := verified(t, srv, issuer)
	b := verified(t, srv, recipient)

	wantInbox(t, b)
	sc := signCard(t, issuer, recipient, "work/employs", nil)
	wantOK(t, a.ProposeRelation(ctx, sc))
	wantInbox(t, b, sc)
	// The recipient's check-in works as well, and is not displaced by the
	// verified conversation.
	wantInbox(t, checkedIn, sc)

	wantOK(t, b.AcceptRelation(ctx, sc, accept(t, recipient, sc, "job-1")))
	wantInbox(t, b)
	edges := wantRelated(t, srv.Dial(t), recipient.ID(), client.RelationOptions{}, "job-1")
	if edges[0].Edge.Card.Card.IssuerID() != issuer.ID() || edges[0].Edge.ID() != sc.ID() {
		t.Errorf("stored edge %v, want card %s of %s", edges[0].Edge, sc.ID(), issuer.ID())
	}
	// The checked-in session still works: it was not displaced.
	wantOK(t, checkedIn.RemoveRelatedIdentity(ctx, []byte("job-1")))
	wantOK(t, b.AcceptRelation(ctx, sc, accept(t, recipient, sc, "job-2")))

	// A second acceptance under the same application ID is refused.
	wantStatus(t, b.AcceptRelation(ctx, sc, accept(t, recipient, sc, "job-2")), wirepb.Status_ALREADY_EXISTS, "")

	// Rejecting removes a proposal without storing an edge.
	sc2 := signCard(t, issuer, recipient, "social/friend", nil)
	wantOK(t, a.ProposeRelation(ctx, sc2))
	wantInbox(t, b, sc2)
	wantOK(t, b.RejectRelation(ctx, sc2.ID()))
	wantInbox(t, b)
	wantStatus(t, b.RejectRelation(ctx, sc2.ID()), wirepb.Status_NOT_FOUND, "")
	wantRelated(t, srv.Dial(t), recipient.ID(), client.RelationOptions{}, "job-2")

	// Cancelling the hosting deletes the pending proposals and the edges:
	// hosted again, the identity starts with neither.
	wantOK(t, a.ProposeRelation(ctx, signCard(t, issuer, recipient, "social/friend", nil)))
	wantOK(t, checkedIn.CancelHosting(ctx, nil))
	again := srv.Customer(t, recipient, "person")
	wantInbox(t, again)
	wantRelated(t, srv.Dial(t), recipient.ID(), client.RelationOptions{IncludeInvalid: true})
}

func TestInboxRejected(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.MaxInbox = 2 })
	issuer, recipient, other, stranger := newKey(t), newKey(t), newKey(t), newKey(t)
	srv.Customer(t, recipient, "person")
	a := verified(t, srv, issuer)
	b := verified(t, srv, recipient)

	sc := signCard(t, issuer, recipient, "work/employs", nil)
	byOther := signCard(t, other, recipient, "work/employs", nil)
	forged := signCard(t, issuer, recipient, "work/employs", nil)
	forgedSig := other.Sign(graph.DomainEdgeCard, func() []byte { id := forged.ID(); return id[:] }())
	tampered := *sc
	tampered.Raw = bytes.Clone(sc.Raw)
	tampered.Raw[len(tampered.Raw)-1] ^= 1
	toStranger := signCard(t, issuer, stranger, "work/employs", nil)
	private := signCard(t, issuer, recipient, "work/employs", func(c *graph.Card) { c.Visibility = graph.VisibilityPrivate })
	expired := signCard(t, issuer, recipient, "work/employs", func(c *graph.Card) {
		c.Created, c.ValidFrom, c.ValidTo = time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})

	for _, tc := range []struct {
		name    string
		req     *wirepb.Request
		status  wirepb.Status
		details string
	}{
		{"no card", proposeReq(&graph.SignedCard{}, nil), wirepb.Status_INVALID_VALUE, "signedCard.card"},
		{"issuer is not the caller", proposeReq(byOther, byOther.Signature), wirepb.Status_INVALID_VALUE, "signedCard.card.issuerPublicKey"},
		{"forged issuer signature", proposeReq(forged, forgedSig), wirepb.Status_INVALID_VALUE, "signedCard.issuerSignature"},
		{"missing issuer signature", proposeReq(sc, nil), wirepb.Status_INVALID_VALUE, "signedCard.issuerSignature"},
		{"tampered card", proposeReq(&tampered, sc.Signature), wirepb.Status_INVALID_VALUE, "signedCard.card.cardId"},
		{"recipient not hosted", proposeReq(toStranger, toStranger.Signature), wirepb.Status_NOT_FOUND, ""},
		{"private edge", proposeReq(private, private.Signature), wirepb.Status_INVALID_VALUE, "signedCard.card.visibility"},
		{"expired card", proposeReq(expired, expired.Signature), wirepb.Status_INVALID_VALUE, "signedCard.card.validTo"},
	} {
		_, err := a.Call(ctx, tc.req)
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, err, tc.status, tc.details) })
	}
	// Bad input changed nothing.
	wantInbox(t, b)

	// Without a proved key nothing is proposed, listed or accepted.
	anon := srv.Dial(t)
	_, err := anon.Call(ctx, proposeReq(sc, sc.Signature))
	wantStatus(t, err, wirepb.Status_UNAUTHORIZED, "")
	_, err = anon.Call(ctx, &wirepb.Request{Body: &wirepb.Request_GetRelationInbox{GetRelationInbox: &wirepb.GetRelationInboxRequest{}}})
	wantStatus(t, err, wirepb.Status_UNAUTHORIZED, "")
	// A verified identity not hosted here has no inbox.
	wantStatus(t, func() error { _, err := a.RelationInbox(ctx); return err }(), wirepb.Status_NOT_FOUND, "")

	wantOK(t, a.ProposeRelation(ctx, sc))
	wantStatus(t, a.ProposeRelation(ctx, sc), wirepb.Status_ALREADY_EXISTS, "")
	sc2 := signCard(t, issuer, recipient, "work/employs", nil)
	wantOK(t, a.ProposeRelation(ctx, sc2))
	sc3 := signCard(t, issuer, recipient, "work/employs", nil)
	wantStatus(t, a.ProposeRelation(ctx, sc3), wirepb.Status_QUOTA_EXCEEDED, "")
	wantInbox(t, b, sc, sc2)

	// Accepting needs the recipient's own proved key and a valid acceptance;
	// a refused acceptance leaves the inbox as it was.
	wantStatus(t, a.AcceptRelation(ctx, sc, accept(t, recipient, sc, "app")), wirepb.Status_INVALID_VALUE, "signedCard.card.recipientPublicKey")
	acc := accept(t, recipient, sc, "app")
	_, err = b.Call(ctx, &wirepb.Request{Body: &wirepb.Request_AcceptRelation{AcceptRelation: &wirepb.AcceptRelationRequest{
		Card: sc.Raw, CardSignature: sc.Signature, Acceptance: acc.Raw, AcceptanceSignature: other.Sign(graph.DomainEdgeAccept, acc.Raw), ApplicationId: []byte("app"),
	}}})
	wantStatus(t, err, wirepb.Status_INVALID_SIGNATURE, "")
	wantStatus(t, b.RejectRelation(ctx, graph.CardID{}), wirepb.Status_NOT_FOUND, "")
	_, err = b.Call(ctx, &wirepb.Request{Body: &wirepb.Request_RejectRelation{RejectRelation: &wirepb.RejectRelationRequest{CardId: []byte{1}}}})
	wantStatus(t, err, wirepb.Status_INVALID_VALUE, "cardId")
	wantInbox(t, b, sc, sc2)
	wantRelated(t, srv.Dial(t), recipient.ID(), client.RelationOptions{IncludeInvalid: true})

	// Accepting one frees a place.
	wantOK(t, b.AcceptRelation(ctx, sc, acc))
	wantOK(t, a.ProposeRelation(ctx, sc3))
	wantInbox(t, b, sc2, sc3)
}
