package client

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can"
	"github.com/iop-go/iop/internal/profile/search"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// AddRelatedIdentity stores a public edge at the checked-in identity's
// hosting server: sc is the issuer's signed card naming this identity as
// recipient, acc this identity's acceptance of it (graph.Accept), whose
// application ID is the edge's key at the server.
func (c *Conn) AddRelatedIdentity(ctx context.Context, sc *graph.SignedCard, acc *graph.SignedAcceptance) error {
	if sc == nil || acc == nil {
		return fmt.Errorf("add related identity: card and acceptance are required")
	}
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_AddRelatedIdentity{AddRelatedIdentity: &wirepb.AddRelatedIdentityRequest{
		Card: sc.Raw, CardSignature: sc.Signature,
		Acceptance: acc.Raw, AcceptanceSignature: acc.Signature,
		ApplicationId: acc.Acceptance.ApplicationID,
	}}})
	if err != nil {
		return fmt.Errorf("add related identity: %w", err)
	}
	return nil
}

// RemoveRelatedIdentity removes the checked-in identity's edge stored under
// application ID appID.
func (c *Conn) RemoveRelatedIdentity(ctx context.Context, appID []byte) error {
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_RemoveRelatedIdentity{RemoveRelatedIdentity: &wirepb.RemoveRelatedIdentityRequest{
		ApplicationId: appID,
	}}})
	if err != nil {
		return fmt.Errorf("remove related identity: %w", err)
	}
	return nil
}

// AddEdgeRecord delivers a change record of an edge (graph.SignRevocation or
// graph.SignPropertyChange, by a party the type's rules allow) to the
// hosting server of the edge's recipient, which applies it to its stored
// edges of that card and says to how many. Anyone may deliver a record: it
// is signed.
func (c *Conn) AddEdgeRecord(ctx context.Context, recipient identity.ID, rec *graph.SignedRecord) (int, error) {
	if rec == nil {
		return 0, fmt.Errorf("add edge record: record is required")
	}
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_AddEdgeRecord{AddEdgeRecord: &wirepb.AddEdgeRecordRequest{
		RecipientId: recipient[:], Record: rec.Raw, Signature: rec.Signature,
	}}})
	if err != nil {
		return 0, fmt.Errorf("add edge record: %w", err)
	}
	return int(resp.GetAddEdgeRecord().GetUpdated()), nil
}

// RelationOptions filters GetRelatedIdentities.
type RelationOptions struct {
	// IncludeInvalid includes revoked, expired and not yet valid edges.
	IncludeInvalid bool
	// Type is an IoP wildcard over the edge type: case-insensitive, '*'
	// special only as the first and/or last byte; "" matches every type.
	Type string
	// Issuer, when not nil, keeps only the edges issued by that identity.
	Issuer *identity.ID
	// Skip leaves out that many matching edges, to page on after an answer
	// that had more.
	Skip int
}

// GetRelatedIdentities returns the public edges whose recipient is id,
// stored at its hosting server. Every edge is verified here with
// graph.OpenProof (card, issuer signature, acceptance and change records)
// at the local clock, and must match id and the filters; one that does not
// makes the whole answer fail with ErrBadServer. more reports that the
// server had further matching edges than fit in one answer: ask again with
// Skip increased by the number returned.
func (c *Conn) GetRelatedIdentities(ctx context.Context, id identity.ID, opt RelationOptions) (edges []*graph.EdgeState, more bool, err error) {
	if !utf8.ValidString(opt.Type) {
		return nil, false, fmt.Errorf("get related identities of %s: type: not valid UTF-8", id)
	}
	wild, err := search.ParseWildcard(opt.Type)
	if err != nil {
		return nil, false, fmt.Errorf("get related identities of %s: type: %w", id, err)
	}
	if opt.Skip < 0 || int64(opt.Skip) > int64(^uint32(0)) {
		return nil, false, fmt.Errorf("get related identities of %s: skip %d out of range", id, opt.Skip)
	}
	r := &wirepb.GetRelatedIdentitiesRequest{
		IdentityId: id[:], IncludeInvalid: opt.IncludeInvalid, TypeWildcard: opt.Type, Skip: uint32(opt.Skip),
	}
	if opt.Issuer != nil {
		r.IssuerId = opt.Issuer[:]
	}
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_GetRelatedIdentities{GetRelatedIdentities: r}})
	if err != nil {
		return nil, false, fmt.Errorf("get related identities of %s: %w", id, err)
	}
	out := resp.GetGetRelatedIdentities()
	states, errs := graph.VerifyProofs(out.Proofs, time.Now(), 0)
	seen := make(map[string]int, len(states))
	for i, st := range states {
		if errs[i] != nil {
			return nil, false, fmt.Errorf("get related identities of %s: %w: proof %d: %v", id, ErrBadServer, i, errs[i])
		}
		card := &st.Edge.Card.Card
		switch {
		case card.RecipientID() != id:
			return nil, false, fmt.Errorf("get related identities of %s: %w: proof %d names recipient %s", id, ErrBadServer, i, card.RecipientID())
		case !wild.Match(card.Type):
			return nil, false, fmt.Errorf("get related identities of %s: %w: proof %d has type %q, not matching %q", id, ErrBadServer, i, card.Type, opt.Type)
		case opt.Issuer != nil && card.IssuerID() != *opt.Issuer:
			return nil, false, fmt.Errorf("get related identities of %s: %w: proof %d has issuer %s", id, ErrBadServer, i, card.IssuerID())
		case card.Visibility != graph.VisibilityPublic:
			return nil, false, fmt.Errorf("get related identities of %s: %w: proof %d is a private edge", id, ErrBadServer, i)
		case st.Edge.Acceptance == nil || len(st.Edge.Acceptance.Acceptance.ApplicationID) == 0:
			return nil, false, fmt.Errorf("get related identities of %s: %w: proof %d has no acceptance", id, ErrBadServer, i)
		}
		app := string(st.Edge.Acceptance.Acceptance.ApplicationID)
		if j, ok := seen[app]; ok {
			return nil, false, fmt.Errorf("get related identities of %s: %w: proofs %d and %d share an application ID", id, ErrBadServer, j, i)
		}
		seen[app] = i
	}
	return states, out.Truncated, nil
}

// ProposeRelation delivers sc, a public card signed by the conversation's
// identity (proved with VerifyIdentity or CheckIn), to the inbox of its
// recipient, hosted at this server.
func (c *Conn) ProposeRelation(ctx context.Context, sc *graph.SignedCard) error {
	if sc == nil {
		return fmt.Errorf("propose relation: card is required")
	}
	if sc.Card.Visibility != graph.VisibilityPublic {
		return fmt.Errorf("propose relation: a private card never goes to a server: propose it to the recipient's device with ProposePrivate")
	}
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_ProposeRelation{ProposeRelation: &wirepb.ProposeRelationRequest{
		Card: sc.Raw, CardSignature: sc.Signature,
	}}})
	if err != nil {
		return fmt.Errorf("propose relation: %w", err)
	}
	return nil
}

// RelationInbox returns the pending proposals to the conversation's identity
// (proved with VerifyIdentity or CheckIn) at its hosting server. Every card
// is verified here with graph.OpenCard and must be public and name this
// identity as recipient; one that does not makes the answer fail with
// ErrBadServer.
func (c *Conn) RelationInbox(ctx context.Context) ([]*graph.SignedCard, error) {
	key, _, err := c.conversation()
	if err != nil {
		return nil, fmt.Errorf("relation inbox: %w", err)
	}
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_GetRelationInbox{GetRelationInbox: &wirepb.GetRelationInboxRequest{}}})
	if err != nil {
		return nil, fmt.Errorf("relation inbox: %w", err)
	}
	items := resp.GetGetRelationInbox().GetCards()
	out := make([]*graph.SignedCard, 0, len(items))
	for i, it := range items {
		sc, err := graph.OpenCard(it.Card, it.CardSignature, nil)
		if err != nil {
			return nil, fmt.Errorf("relation inbox: %w: card %d: %v", ErrBadServer, i, err)
		}
		if !sc.Card.Recipient.Equal(key.Public()) || sc.Card.Visibility != graph.VisibilityPublic {
			return nil, fmt.Errorf("relation inbox: %w: card %d is not a public card to this identity", ErrBadServer, i)
		}
		out = append(out, sc)
	}
	return out, nil
}

// AcceptRelation stores the public edge of sc and acc (graph.Accept by the
// conversation's identity) at its hosting server and removes the card from
// its inbox. Unlike AddRelatedIdentity it needs only VerifyIdentity, so a
// running agent keeps its check-in.
func (c *Conn) AcceptRelation(ctx context.Context, sc *graph.SignedCard, acc *graph.SignedAcceptance) error {
	if sc == nil || acc == nil {
		return fmt.Errorf("accept relation: card and acceptance are required")
	}
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_AcceptRelation{AcceptRelation: &wirepb.AcceptRelationRequest{
		Card: sc.Raw, CardSignature: sc.Signature,
		Acceptance: acc.Raw, AcceptanceSignature: acc.Signature,
		ApplicationId: acc.Acceptance.ApplicationID,
	}}})
	if err != nil {
		return fmt.Errorf("accept relation: %w", err)
	}
	return nil
}

// RejectRelation removes the pending proposal of card id from the
// conversation's identity's inbox without storing an edge.
func (c *Conn) RejectRelation(ctx context.Context, id graph.CardID) error {
	_, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_RejectRelation{RejectRelation: &wirepb.RejectRelationRequest{CardId: id[:]}}})
	if err != nil {
		return fmt.Errorf("reject relation: %w", err)
	}
	return nil
}

// AllRelatedIdentities returns every public edge of id matching opt (from
// opt.Skip on), asking page after page until the server has no more; each
// is verified as GetRelatedIdentities does.
func (c *Conn) AllRelatedIdentities(ctx context.Context, id identity.ID, opt RelationOptions) ([]*graph.EdgeState, error) {
	var all []*graph.EdgeState
	for {
		edges, more, err := c.GetRelatedIdentities(ctx, id, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, edges...)
		opt.Skip += len(edges)
		if !more || len(edges) == 0 {
			return all, nil
		}
	}
}

// Published is an identity's public graph as its hosting server last
// published it in the content address network.
type Published struct {
	Edges     []*graph.EdgeState // verified, matching the options
	Publisher identity.ID        // the hosting server that signed the pages
	Sequence  uint64             // the publication's version
	Expires   time.Time          // when the first page expires unless republished
	Missing   []int              // pages that could not be read or were of another version
}

// PublishedRelations reads the public edges of id from the content address
// network through the node c is connected to, as id's hosting server
// published them: readable while that server is down. Every page is
// verified (the server's signature and id's claim naming that server) and
// every edge as GetRelatedIdentities does; one that fails makes the answer
// fail with ErrBadServer. The options filter the edges here.
func (c *Conn) PublishedRelations(ctx context.Context, id identity.ID, opt RelationOptions) (*Published, error) {
	wild, err := search.ParseWildcard(opt.Type)
	if err != nil {
		return nil, fmt.Errorf("published relations of %s: type: %w", id, err)
	}
	now := time.Now()
	out := &Published{}
	var first *can.RelationPage
	var proofs [][]byte
	for page, total := 0, 1; page < total; {
		resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_PublishedRelations{PublishedRelations: &wirepb.PublishedRelationsRequest{
			IdentityId: id[:], FirstPage: uint32(page),
		}}})
		if err != nil {
			return nil, fmt.Errorf("published relations of %s: %w", id, err)
		}
		r := resp.GetPublishedRelations()
		if len(r.Pages) == 0 {
			return nil, fmt.Errorf("published relations of %s: %w: no page from %d on", id, ErrBadServer, page)
		}
		for _, v := range r.Pages {
			p, err := can.OpenRelationPage(can.RelationKey(id, page), v, now)
			switch {
			case page == 0 && err != nil:
				return nil, fmt.Errorf("published relations of %s: %w: page 0: %v", id, ErrBadServer, err)
			case page == 0:
				first, total = p, p.Pages
				out.Publisher, out.Sequence, out.Expires = p.Publisher, p.Sequence, p.Expires
			case err != nil || p.Sequence != first.Sequence || p.Publisher != first.Publisher:
				out.Missing = append(out.Missing, page)
				page++
				continue
			}
			proofs = append(proofs, p.Proofs...)
			page++
		}
	}
	states, errs := graph.VerifyProofs(proofs, now, 0)
	for i, st := range states {
		if errs[i] != nil {
			return nil, fmt.Errorf("published relations of %s: %w: proof %d: %v", id, ErrBadServer, i, errs[i])
		}
		card := &st.Edge.Card.Card
		switch {
		case card.RecipientID() != id:
			return nil, fmt.Errorf("published relations of %s: %w: proof %d names recipient %s", id, ErrBadServer, i, card.RecipientID())
		case card.Visibility != graph.VisibilityPublic:
			return nil, fmt.Errorf("published relations of %s: %w: proof %d is a private edge", id, ErrBadServer, i)
		case !wild.Match(card.Type), opt.Issuer != nil && card.IssuerID() != *opt.Issuer:
			continue
		case !opt.IncludeInvalid && st.Status != graph.EdgeValid:
			continue
		}
		out.Edges = append(out.Edges, st)
	}
	return out, nil
}
