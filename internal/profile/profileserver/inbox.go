package profileserver

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// MaxInbox is Config.MaxInbox's default: the pending relationship proposals
// kept per hosted identity.
const MaxInbox = 100

// inboxKey is the bucketInbox key of recipient's proposal of card cardID.
func inboxKey(recipient identity.ID, cardID []byte) []byte {
	k := make([]byte, 0, len(recipient)+len(cardID))
	k = append(k, recipient[:]...)
	return append(k, cardID...)
}

// hostedTag reports whether id is hosted here (not cancelled) and returns
// the tag of its hosting agreement.
func (s *Server) hostedTag(id identity.ID) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.ids[id]
	if h == nil || !h.active() {
		return nil, false
	}
	return hostingTag(h), true
}

// proposeRelation stores a signed public card in the inbox of its
// recipient, hosted here. The caller must have proved the card issuer's key.
// The proposal is committed before the answer.
func (ss *session) proposeRelation(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetProposeRelation()
	if len(r.Card) == 0 {
		return nil, wire.Invalid("signedCard.card")
	}
	sc, err := graph.OpenCard(r.Card, r.CardSignature, nil)
	if err != nil {
		return nil, cardField(err)
	}
	if !bytes.Equal(sc.Card.Issuer, ss.clientKey) {
		return nil, wire.Invalid("signedCard.card.issuerPublicKey")
	}
	if sc.Card.Visibility != graph.VisibilityPublic {
		return nil, wire.Invalid("signedCard.card.visibility")
	}
	if s.cfg.Now().After(sc.Card.ValidTo) {
		return nil, wire.Invalid("signedCard.card.validTo")
	}
	recipient := sc.Card.RecipientID()
	if _, ok := s.hostedTag(recipient); !ok {
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", recipient)
	}
	cardID := sc.ID()
	key := inboxKey(recipient, cardID[:])
	v, err := proto.Marshal(&wirepb.SignedCardItem{Card: r.Card, CardSignature: r.CardSignature})
	if err != nil {
		return nil, fmt.Errorf("encode proposal: %w", err)
	}
	limit := s.cfg.MaxInbox
	err = s.store.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketInbox)
		if b.Get(key) != nil {
			return wire.Errorf(wirepb.Status_ALREADY_EXISTS, "card %s is already proposed", cardID)
		}
		n := 0
		c := b.Cursor()
		for k, _ := c.Seek(recipient[:]); k != nil && bytes.HasPrefix(k, recipient[:]); k, _ = c.Next() {
			n++
		}
		if n >= limit {
			return wire.Errorf(wirepb.Status_QUOTA_EXCEEDED, "at most %d pending proposals per identity", limit)
		}
		return b.Put(key, v)
	})
	if err != nil {
		return nil, storeErr("store proposal", err)
	}
	return &wirepb.Response{Body: &wirepb.Response_ProposeRelation{ProposeRelation: &wirepb.ProposeRelationResponse{}}}, nil
}

// storeErr passes a protocol status through and wraps anything else.
func storeErr(what string, err error) error {
	var se *wire.StatusError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// getRelationInbox answers the pending proposals to the conversation's
// identity, as many as fit in Config.RelationsBudget bytes.
func (ss *session) getRelationInbox(*wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	id := ss.clientID
	if _, ok := s.hostedTag(id); !ok {
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", id)
	}
	out := &wirepb.GetRelationInboxResponse{}
	size, budget := 0, s.cfg.RelationsBudget
	err := s.store.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInbox).Cursor()
		for k, v := c.Seek(id[:]); k != nil && bytes.HasPrefix(k, id[:]); k, v = c.Next() {
			cost := 1 + protowire.SizeBytes(len(v))
			if size+cost > budget {
				return nil
			}
			size += cost
			item := new(wirepb.SignedCardItem)
			if err := proto.Unmarshal(v, item); err != nil {
				return fmt.Errorf("stored proposal %x: %w", k, err)
			}
			out.Cards = append(out.Cards, item)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_GetRelationInbox{GetRelationInbox: out}}, nil
}

// acceptRelation stores a public edge whose recipient is the conversation's
// identity, verified as addRelatedIdentity does, on a conversation that
// proved the recipient's key (a check-in is not needed, so a running agent
// keeps its own), and removes the card from the identity's inbox in the
// same durable transaction.
func (ss *session) acceptRelation(req *wirepb.Request) (*wirepb.Response, error) {
	r := req.GetAcceptRelation()
	in := relationInput{r.Card, r.CardSignature, r.Acceptance, r.AcceptanceSignature, r.ApplicationId}
	err := ss.storeRelation(in, false, func(tx *bbolt.Tx, cardID graph.CardID) error {
		return tx.Bucket(bucketInbox).Delete(inboxKey(ss.clientID, cardID[:]))
	})
	if err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_AcceptRelation{AcceptRelation: &wirepb.AcceptRelationResponse{}}}, nil
}

// rejectRelation removes a pending proposal to the conversation's identity
// without storing an edge.
func (ss *session) rejectRelation(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	cardID := req.GetRejectRelation().GetCardId()
	if len(cardID) != len(graph.CardID{}) {
		return nil, wire.Invalid("cardId")
	}
	id := ss.clientID
	if _, ok := s.hostedTag(id); !ok {
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", id)
	}
	key := inboxKey(id, cardID)
	err := s.store.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketInbox)
		if b.Get(key) == nil {
			return wire.Errorf(wirepb.Status_NOT_FOUND, "no pending proposal of card %x", cardID)
		}
		return b.Delete(key)
	})
	if err != nil {
		return nil, storeErr("reject proposal", err)
	}
	return &wirepb.Response{Body: &wirepb.Response_RejectRelation{RejectRelation: &wirepb.RejectRelationResponse{}}}, nil
}
