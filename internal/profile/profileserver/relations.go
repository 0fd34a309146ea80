package profileserver

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/search"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// MaxRelations is the protocol's limit of public edges stored per identity
// (the 2017 max_identity_relations maximum), and Config.MaxRelations's
// default.
const MaxRelations = 2000

// RelationsBudget bounds the proofs of one GetRelatedIdentities answer, in
// encoded bytes, leaving room for the message around them in a frame; it is
// Config.RelationsBudget's default.
const RelationsBudget = wire.MaxFrame - 4096

// relationKey is the bucketRelations key of recipient's edge appID.
func relationKey(recipient identity.ID, appID []byte) []byte {
	k := make([]byte, 0, len(recipient)+len(appID))
	k = append(k, recipient[:]...)
	return append(k, appID...)
}

// cardField maps an error of graph.OpenCard to the 2017 field names under
// "signedCard".
func cardField(err error) error {
	var fe *graph.FieldError
	if errors.As(err, &fe) {
		switch fe.Field {
		case "issuerSignature":
			return wire.Invalid("signedCard.issuerSignature")
		case "card":
			return wire.Invalid("signedCard.card")
		}
		return wire.Invalid("signedCard.card." + fe.Field)
	}
	if errors.Is(err, graph.ErrInvalidSignature) {
		return wire.Invalid("signedCard.issuerSignature")
	}
	return wire.Invalid("signedCard.card")
}

// acceptanceField maps an error of graph.OpenAcceptance: a bad recipient
// signature is INVALID_SIGNATURE (as in 2017), a bad field INVALID_VALUE
// under "cardApplication".
func acceptanceField(err error) error {
	if errors.Is(err, graph.ErrInvalidSignature) {
		return wire.Errorf(wirepb.Status_INVALID_SIGNATURE, "card application signature does not verify")
	}
	var fe *graph.FieldError
	if errors.As(err, &fe) && fe.Field != "acceptance" {
		return wire.Invalid("cardApplication." + fe.Field)
	}
	return wire.Invalid("cardApplication")
}

// validApplicationID reports whether id is 1 to graph.MaxApplicationIDLen
// bytes.
func validApplicationID(id []byte) bool {
	return len(id) > 0 && len(id) <= graph.MaxApplicationIDLen
}

// addRelatedIdentity stores a public edge whose recipient is the checked-in
// identity (see storeRelation).
func (ss *session) addRelatedIdentity(req *wirepb.Request) (*wirepb.Response, error) {
	r := req.GetAddRelatedIdentity()
	in := relationInput{r.Card, r.CardSignature, r.Acceptance, r.AcceptanceSignature, r.ApplicationId}
	if err := ss.storeRelation(in, true, nil); err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_AddRelatedIdentity{AddRelatedIdentity: &wirepb.AddRelatedIdentityResponse{}}}, nil
}

// relationInput is a signed card and the recipient's signed acceptance of
// it for an application ID, as a request carries them.
type relationInput struct {
	card, cardSig, acc, accSig, appID []byte
}

// storeRelation verifies in and stores the public edge for the
// conversation's identity. Everything is verified with package graph: the
// card (its ID, fields and issuer signature), the recipient's acceptance of
// this card for this application ID, and that the card is public, names
// the caller as recipient and has not expired. checkedIn requires the
// session to be the identity's check-in (AddRelatedIdentity); otherwise a
// proven key is enough (AcceptRelation). also, when set, runs in the same
// durable transaction. The edge is committed before the answer.
func (ss *session) storeRelation(in relationInput, checkedIn bool, also func(tx *bbolt.Tx, cardID graph.CardID) error) error {
	s := ss.s
	if len(in.card) == 0 {
		return wire.Invalid("signedCard.card")
	}
	sc, err := graph.OpenCard(in.card, in.cardSig, nil)
	if err != nil {
		return cardField(err)
	}
	if !bytes.Equal(sc.Card.Recipient, ss.clientKey) {
		return wire.Invalid("signedCard.card.recipientPublicKey")
	}
	if sc.Card.Visibility != graph.VisibilityPublic {
		return wire.Invalid("signedCard.card.visibility")
	}
	if !validApplicationID(in.appID) {
		return wire.Invalid("cardApplication.applicationId")
	}
	acc, err := graph.OpenAcceptance(in.acc, in.accSig, sc, in.appID)
	if err != nil {
		return acceptanceField(err)
	}
	e, err := graph.NewEdge(sc, acc)
	if err != nil {
		return acceptanceField(err)
	}
	now := s.cfg.Now()
	st, err := graph.Derive(e, nil, now)
	if err != nil {
		return acceptanceField(err)
	}
	if st.Status == graph.EdgeExpired {
		return wire.Invalid("signedCard.card.validTo")
	}
	issuer := sc.Card.IssuerID()
	cardID := sc.ID()
	key := relationKey(ss.clientID, in.appID)
	limit := s.cfg.MaxRelations
	return s.relationWrite(ss, checkedIn, func(tx *bbolt.Tx, b *bbolt.Bucket, tag []byte) error {
		if b.Get(key) != nil {
			return wire.Errorf(wirepb.Status_ALREADY_EXISTS, "a relation with application ID %x is already stored", in.appID)
		}
		n, records, err := scanCard(b, ss.clientID, cardID[:], now)
		if err != nil {
			return err
		}
		if n >= limit {
			return wire.Errorf(wirepb.Status_QUOTA_EXCEEDED, "at most %d relations per identity", limit)
		}
		// A card stored already under another application ID, or removed
		// after its revocation, keeps its change records: storing it again
		// does not undo a revocation.
		st := st
		if len(records) == 0 {
			if records, err = revokedRecords(tx, ss.clientID, cardID, now); err != nil {
				return err
			}
		}
		if len(records) > 0 {
			if st, err = graph.Derive(e, records, now); err != nil {
				return fmt.Errorf("records of stored card %s: %w", cardID, err)
			}
		}
		proof, err := graph.EncodeProof(st.Proof())
		if err != nil {
			return wire.Invalid("signedCard.card")
		}
		v, err := proto.Marshal(&wirepb.StoredRelation{
			CardId:    cardID[:],
			Proof:     proof,
			Type:      sc.Card.Type,
			IssuerId:  issuer[:],
			ValidFrom: sc.Card.ValidFrom.UnixMilli(),
			ValidTo:   sc.Card.ValidTo.UnixMilli(),
			Revoked:   st.Revoked,
			Hosting:   tag,
		})
		if err != nil {
			return fmt.Errorf("encode relation: %w", err)
		}
		if err := b.Put(key, v); err != nil {
			return err
		}
		if also != nil {
			return also(tx, cardID)
		}
		return nil
	})
}

// removeRelatedIdentity removes the checked-in identity's edge stored under
// an application ID.
func (ss *session) removeRelatedIdentity(req *wirepb.Request) (*wirepb.Response, error) {
	appID := req.GetRemoveRelatedIdentity().GetApplicationId()
	if !validApplicationID(appID) {
		return nil, wire.Invalid("applicationId")
	}
	key := relationKey(ss.clientID, appID)
	err := ss.s.relationWrite(ss, true, func(tx *bbolt.Tx, b *bbolt.Bucket, _ []byte) error {
		v := b.Get(key)
		if v == nil {
			return wire.Errorf(wirepb.Status_NOT_FOUND, "no relation with application ID %x", appID)
		}
		var rel wirepb.StoredRelation
		if err := proto.Unmarshal(v, &rel); err != nil {
			return fmt.Errorf("stored relation %x: %w", key, err)
		}
		if rel.Revoked {
			if err := rememberRevoked(tx, ss.clientID, &rel, 2*ss.s.cfg.MaxRelations); err != nil {
				return err
			}
		}
		return b.Delete(key)
	})
	if err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_RemoveRelatedIdentity{RemoveRelatedIdentity: &wirepb.RemoveRelatedIdentityResponse{}}}, nil
}

// revokedKey is the bucketRevoked key of recipient's card.
func revokedKey(recipient identity.ID, cardID []byte) []byte {
	return append(append(make([]byte, 0, len(recipient)+len(cardID)), recipient[:]...), cardID...)
}

// rememberRevoked keeps the proof of a revoked edge its recipient removes,
// so that storing the card again keeps it revoked; at most limit per
// recipient.
func rememberRevoked(tx *bbolt.Tx, recipient identity.ID, rel *wirepb.StoredRelation, limit int) error {
	b := tx.Bucket(bucketRevoked)
	key := revokedKey(recipient, rel.CardId)
	if b.Get(key) == nil {
		n := 0
		c := b.Cursor()
		for k, _ := c.Seek(recipient[:]); k != nil && bytes.HasPrefix(k, recipient[:]); k, _ = c.Next() {
			n++
		}
		if n >= limit {
			return wire.Errorf(wirepb.Status_QUOTA_EXCEEDED, "%d removed revoked edges are remembered already: a revoked edge cannot be removed", limit)
		}
	}
	return b.Put(key, rel.Proof)
}

// revokedRecords returns the records of recipient's removed revoked edge of
// card cardID, or nil.
func revokedRecords(tx *bbolt.Tx, recipient identity.ID, cardID graph.CardID, now time.Time) ([]graph.SignedRecord, error) {
	v := tx.Bucket(bucketRevoked).Get(revokedKey(recipient, cardID[:]))
	if v == nil {
		return nil, nil
	}
	st, err := graph.OpenProof(v, now)
	if err != nil {
		return nil, fmt.Errorf("remembered revocation of %s: %w", cardID, err)
	}
	return st.Records, nil
}

// hostingTag identifies the hosting agreement of h: edges stored under an
// earlier agreement of the same identity (hosting cancelled, then
// registered again) are stale, invisible to queries and removed by the
// identity's next relation write.
func hostingTag(h *hosted) []byte {
	sum := sha256.Sum256(h.rec.Contract)
	return sum[:8]
}

// errStopScan ends eachRelation early without an error.
var errStopScan = errors.New("stop scan")

// eachRelation calls fn with the key and decoded record of every stored
// edge of id in b, in key order, until fn returns an error (errStopScan
// ends the scan without one). k is valid only during the transaction.
func eachRelation(b *bbolt.Bucket, id identity.ID, fn func(k []byte, rel *wirepb.StoredRelation) error) error {
	c := b.Cursor()
	for k, v := c.Seek(id[:]); k != nil && bytes.HasPrefix(k, id[:]); k, v = c.Next() {
		var rel wirepb.StoredRelation
		if err := proto.Unmarshal(v, &rel); err != nil {
			return fmt.Errorf("stored relation %x: %w", k, err)
		}
		if err := fn(k, &rel); err != nil {
			if errors.Is(err, errStopScan) {
				return nil
			}
			return err
		}
	}
	return nil
}

// purgeStale deletes the edges of id not stored under hosting tag tag,
// remembering the revoked ones.
func purgeStale(b *bbolt.Bucket, id identity.ID, tag []byte) error {
	var stale [][]byte
	err := eachRelation(b, id, func(k []byte, rel *wirepb.StoredRelation) error {
		if !bytes.Equal(rel.Hosting, tag) {
			stale = append(stale, bytes.Clone(k))
		}
		return nil
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	if err := rememberAllRevoked(b.Tx(), b, id, func(rel *wirepb.StoredRelation) bool { return !bytes.Equal(rel.Hosting, tag) }); err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// rememberAllRevoked keeps the proofs of id's revoked edges (those which
// also pass which, when set) in bucketRevoked, beyond any limit: they are
// about to be deleted and their revocations must outlive them.
func rememberAllRevoked(tx *bbolt.Tx, b *bbolt.Bucket, id identity.ID, which func(*wirepb.StoredRelation) bool) error {
	type kept struct{ cardID, proof []byte }
	var revoked []kept
	err := eachRelation(b, id, func(_ []byte, rel *wirepb.StoredRelation) error {
		if rel.Revoked && (which == nil || which(rel)) {
			revoked = append(revoked, kept{bytes.Clone(rel.CardId), bytes.Clone(rel.Proof)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	rb := tx.Bucket(bucketRevoked)
	for _, r := range revoked {
		if err := rb.Put(revokedKey(id, r.cardID), r.proof); err != nil {
			return err
		}
	}
	return nil
}

// relationWrite runs fn on the relations bucket in one durable transaction
// (bbolt fsyncs the commit before Update returns), after removing stale
// edges, while ss's identity is hosted here (and, with checkedIn, ss is its
// check-in) and no other write to the identity is in progress. fn gets the
// transaction and the current hosting tag. An error from fn rolls the
// transaction back.
func (s *Server) relationWrite(ss *session, checkedIn bool, fn func(tx *bbolt.Tx, b *bbolt.Bucket, tag []byte) error) error {
	s.mu.Lock()
	h := s.ids[ss.clientID]
	switch {
	case h == nil || !h.active():
		s.mu.Unlock()
		return wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", ss.clientID)
	case checkedIn && h.online != ss:
		s.mu.Unlock()
		return wire.Errorf(wirepb.Status_UNAUTHORIZED, "not checked in")
	}
	if err := s.beginLocked(ss.clientID); err != nil {
		s.mu.Unlock()
		return err
	}
	tag := hostingTag(h)
	s.mu.Unlock()
	err := s.store.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRelations)
		if err := purgeStale(b, ss.clientID, tag); err != nil {
			return err
		}
		return fn(tx, b, tag)
	})
	s.mu.Lock()
	s.endLocked(ss.clientID)
	s.mu.Unlock()
	var se *wire.StatusError
	if err != nil && !errors.As(err, &se) {
		return fmt.Errorf("store relations of %s: %w", ss.clientID, err)
	}
	if err == nil {
		s.relationsChanged(ss.clientID)
	}
	return err
}

// scanCard counts the stored edges of recipient and returns the change
// records of its stored edge of card cardID that has the most (nil if it has
// none stored).
func scanCard(b *bbolt.Bucket, recipient identity.ID, cardID []byte, now time.Time) (int, []graph.SignedRecord, error) {
	n := 0
	var records []graph.SignedRecord
	err := eachRelation(b, recipient, func(k []byte, rel *wirepb.StoredRelation) error {
		n++
		if !bytes.Equal(rel.CardId, cardID) {
			return nil
		}
		st, err := graph.OpenProof(rel.Proof, now)
		if err != nil {
			return fmt.Errorf("stored relation %x: %w", k, err)
		}
		if len(st.Records) > len(records) {
			records = st.Records
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return n, records, nil
}

// getRelatedIdentities answers the public edges of a hosted identity, as
// graph proofs the caller verifies itself. The type filter is an IoP
// WildcardType (search.ParseWildcard: case-insensitive, '*' special only as
// the first and/or last byte). Edges that are revoked, expired or not yet
// valid at the server's clock are left out unless include_invalid.
func (ss *session) getRelatedIdentities(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetGetRelatedIdentities()
	id, err := identity.IDFromBytes(r.IdentityId)
	if err != nil {
		return nil, wire.Invalid("identityNetworkId")
	}
	wild, err := search.ParseWildcard(r.TypeWildcard)
	if err != nil {
		return nil, wire.Invalid("type")
	}
	var issuer identity.ID
	if len(r.IssuerId) > 0 {
		if issuer, err = identity.IDFromBytes(r.IssuerId); err != nil {
			return nil, wire.Invalid("issuerNetworkId")
		}
	}
	s.mu.Lock()
	h := s.ids[id]
	hosted := h != nil && h.active()
	var tag []byte
	if hosted {
		tag = hostingTag(h)
	}
	s.mu.Unlock()
	if !hosted {
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", id)
	}
	now := s.cfg.Now().UnixMilli()
	out := &wirepb.GetRelatedIdentitiesResponse{}
	skip := r.Skip
	size, budget := 0, ss.s.cfg.RelationsBudget
	err = s.store.db.View(func(tx *bbolt.Tx) error {
		return eachRelation(tx.Bucket(bucketRelations), id, func(_ []byte, rel *wirepb.StoredRelation) error {
			switch {
			case !bytes.Equal(rel.Hosting, tag):
				return nil
			case !wild.Match(rel.Type):
				return nil
			case len(r.IssuerId) > 0 && !bytes.Equal(rel.IssuerId, issuer[:]):
				return nil
			case !r.IncludeInvalid && (rel.Revoked || now < rel.ValidFrom || now > rel.ValidTo):
				return nil
			}
			if skip > 0 {
				skip--
				return nil
			}
			cost := 1 + protowire.SizeBytes(len(rel.Proof))
			if size+cost > budget {
				out.Truncated = true
				return errStopScan
			}
			size += cost
			out.Proofs = append(out.Proofs, bytes.Clone(rel.Proof))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_GetRelatedIdentities{GetRelatedIdentities: out}}, nil
}

// recordField maps an error of graph.EdgeState.Apply to the protocol: a
// signature that does not verify is INVALID_SIGNATURE, anything else
// INVALID_VALUE naming the record's field ("record.sequence" for a replayed
// record or one after the revocation, "record.signer" for a party the type's
// rules do not allow).
func recordField(err error) error {
	if errors.Is(err, graph.ErrInvalidSignature) {
		return wire.Errorf(wirepb.Status_INVALID_SIGNATURE, "record signature does not verify")
	}
	var fe *graph.FieldError
	if errors.As(err, &fe) && fe.Field != "record" {
		return wire.Invalid("record." + fe.Field)
	}
	return wire.Invalid("record")
}

// recordCardID returns the cardId field of an encoded graph change record,
// to find the stored edges it may apply to; graph verifies the record.
func recordCardID(raw []byte) ([]byte, bool) {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return nil, false
		}
		raw = raw[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(raw)
			if n < 0 || len(v) != len(graph.CardID{}) {
				return nil, false
			}
			return v, true
		}
		if n = protowire.ConsumeFieldValue(num, typ, raw); n < 0 {
			return nil, false
		}
		raw = raw[n:]
	}
	return nil, false
}

// addEdgeRecord applies a signed change record to the stored edges of its
// card whose recipient is recipient_id. The record authenticates itself
// (graph checks its signature, the signer's party against the type's rules
// and its sequence), so anyone may deliver it. It is applied to every stored
// edge of the card that takes it (the same card may be stored under several
// application IDs); if none does, the first edge's reason is the answer.
func (ss *session) addEdgeRecord(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetAddEdgeRecord()
	id, err := identity.IDFromBytes(r.RecipientId)
	if err != nil {
		return nil, wire.Invalid("recipientId")
	}
	if len(r.Record) == 0 {
		return nil, wire.Invalid("record")
	}
	cardID, ok := recordCardID(r.Record)
	if !ok {
		return nil, wire.Invalid("record.cardId")
	}
	s.mu.Lock()
	h := s.ids[id]
	if h == nil || !h.active() {
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", id)
	}
	if err := s.beginLocked(id); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	tag := hostingTag(h)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.endLocked(id)
		s.mu.Unlock()
	}()
	now := s.cfg.Now()
	rec := &graph.SignedRecord{Raw: r.Record, Signature: r.Signature}
	updated := 0
	err = s.store.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRelations)
		if err := purgeStale(b, id, tag); err != nil {
			return err
		}
		var first error
		type change struct{ k, v []byte }
		var changes []change
		err := eachRelation(b, id, func(k []byte, rel *wirepb.StoredRelation) error {
			if !bytes.Equal(rel.CardId, cardID) {
				return nil
			}
			st, err := graph.OpenProof(rel.Proof, now)
			if err != nil {
				return fmt.Errorf("stored relation %x: %w", k, err)
			}
			err = st.Apply(rec)
			if err == nil {
				var proof []byte
				if proof, err = graph.EncodeProof(st.Proof()); err != nil {
					err = wire.Errorf(wirepb.Status_QUOTA_EXCEEDED, "at most %d records per edge", graph.MaxProofRecords)
				} else {
					rel.Proof, rel.Revoked = proof, st.Revoked
					nv, err := proto.Marshal(rel)
					if err != nil {
						return fmt.Errorf("encode relation: %w", err)
					}
					changes = append(changes, change{bytes.Clone(k), nv})
					return nil
				}
			}
			if first == nil {
				first = err
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			if first == nil {
				return wire.Errorf(wirepb.Status_NOT_FOUND, "no edge of card %x is stored for %s", cardID, id)
			}
			var se *wire.StatusError
			if errors.As(first, &se) {
				return first
			}
			return recordField(first)
		}
		for _, ch := range changes {
			if err := b.Put(ch.k, ch.v); err != nil {
				return err
			}
		}
		updated = len(changes)
		return nil
	})
	if err != nil {
		var se *wire.StatusError
		if !errors.As(err, &se) {
			return nil, fmt.Errorf("store record for %s: %w", id, err)
		}
		return nil, err
	}
	s.relationsChanged(id)
	return &wirepb.Response{Body: &wirepb.Response_AddEdgeRecord{AddEdgeRecord: &wirepb.AddEdgeRecordResponse{Updated: uint32(updated)}}}, nil
}
