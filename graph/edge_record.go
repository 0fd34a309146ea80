package graph

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/iop-go/iop/identity"
)

// MaxRecordSize is the largest encoded change record, in bytes.
const MaxRecordSize = 8 * 1024

// RecordKind says what a change record does.
type RecordKind uint8

const (
	// RecordRevocation ends the edge for good.
	RecordRevocation RecordKind = 1
	// RecordPropertyChange sets and removes properties of the edge.
	RecordPropertyChange RecordKind = 2
)

// String returns "revocation" or "property change".
func (k RecordKind) String() string {
	switch k {
	case RecordRevocation:
		return "revocation"
	case RecordPropertyChange:
		return "property change"
	}
	return fmt.Sprintf("RecordKind(%d)", uint8(k))
}

// Record changes an edge after it was made: a revocation, or a property
// change that sets and removes properties. Each record is signed by one
// party, which the type's rules must allow to make it, and carries a
// sequence number; the records of one edge, by either party, have strictly
// increasing sequence numbers (not necessarily consecutive).
type Record struct {
	Kind     RecordKind
	CardID   CardID
	Sequence uint64    // at least 1
	Time     time.Time // when it was signed, for information
	Signer   Party
	Set      map[string]string // property changes only
	Remove   []string          // property changes only; unique keys
}

// Validate checks the record's fields on their own (not against an edge).
func (r *Record) Validate() error {
	if r.Kind != RecordRevocation && r.Kind != RecordPropertyChange {
		return fieldErr("kind", "unknown record kind %d", r.Kind)
	}
	if r.CardID.IsZero() {
		return fieldErr("cardId", "zero")
	}
	if r.Sequence == 0 {
		return fieldErr("sequence", "must be at least 1")
	}
	if _, err := millis("time", r.Time, 1); err != nil {
		return err
	}
	if r.Signer > PartyRecipient {
		return fieldErr("signer", "unknown party %d", r.Signer)
	}
	if r.Kind == RecordRevocation {
		if len(r.Set) != 0 || len(r.Remove) != 0 {
			return fieldErr("set", "a revocation changes no properties")
		}
		return nil
	}
	if len(r.Set) == 0 && len(r.Remove) == 0 {
		return fieldErr("set", "a property change must set or remove at least one property")
	}
	if err := validateProperties("set", r.Set); err != nil {
		return err
	}
	if len(r.Remove) > MaxProperties {
		return fieldErr("remove", "%d keys, limit %d", len(r.Remove), MaxProperties)
	}
	for i, k := range r.Remove {
		if err := validatePropertyKey(k); err != nil {
			return fieldErr("remove", "%v", err)
		}
		if slices.Contains(r.Remove[:i], k) {
			return fieldErr("remove", "key %q listed twice", k)
		}
		if _, ok := r.Set[k]; ok {
			return fieldErr("remove", "key %q is both set and removed", k)
		}
	}
	return nil
}

// encode returns the canonical encoding of r, which must be valid:
//
//	message EdgeRecord {
//	  RecordKind kind = 1;        // REVOCATION = 1, PROPERTY_CHANGE = 2
//	  bytes card_id = 2;          // 32 bytes
//	  uint64 sequence = 3;
//	  int64 time = 4;             // ms since the epoch
//	  Party signer = 5;           // ISSUER = 0, RECIPIENT = 1
//	  repeated Property set = 6;  // ascending unique keys
//	  repeated string remove = 7; // ascending unique keys
//	}
func (r *Record) encode() []byte {
	b := make([]byte, 0, 64+len(r.Set)*48+len(r.Remove)*16)
	b = appendVarintField(b, 1, uint64(r.Kind))
	b = appendBytesField(b, 2, r.CardID[:])
	b = appendVarintField(b, 3, r.Sequence)
	b = appendVarintField(b, 4, uint64(r.Time.UnixMilli()))
	b = appendVarintField(b, 5, uint64(r.Signer))
	b = appendProperties(b, 6, r.Set)
	for _, k := range slices.Sorted(slices.Values(r.Remove)) {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	return b
}

// recordSpecs are the fields of EdgeRecord.
var recordSpecs = []fieldSpec{
	{name: "kind", typ: protowire.VarintType},
	{name: "cardId", typ: protowire.BytesType},
	{name: "sequence", typ: protowire.VarintType},
	{name: "time", typ: protowire.VarintType},
	{name: "signer", typ: protowire.VarintType},
	{name: "set", typ: protowire.BytesType, repeated: true},
	{name: "remove", typ: protowire.BytesType, repeated: true},
}

// decodeRecord decodes and validates the canonical encoding of a record. It
// does not check the signature.
func decodeRecord(raw []byte) (Record, error) {
	var r Record
	if len(raw) > MaxRecordSize {
		return r, fieldErr("record", "%d bytes, limit %d", len(raw), MaxRecordSize)
	}
	var prevSet string
	err := decodeFields(raw, "record", recordSpecs, func(num int, v uint64, s []byte) error {
		var err error
		switch num {
		case 1:
			if v > uint64(RecordPropertyChange) {
				return fieldErr("kind", "unknown record kind %d", v)
			}
			r.Kind = RecordKind(v)
		case 2:
			if len(s) != len(r.CardID) {
				return fieldErr("cardId", "%d bytes, want %d", len(s), len(r.CardID))
			}
			copy(r.CardID[:], s)
		case 3:
			r.Sequence = v
		case 4:
			r.Time, err = timeValue("time", v)
		case 5:
			if v > uint64(PartyRecipient) {
				return fieldErr("signer", "unknown party %d", v)
			}
			r.Signer = Party(v)
		case 6:
			if r.Set == nil {
				r.Set = make(map[string]string)
			}
			prevSet, err = decodeProperty("set", s, r.Set, prevSet)
		case 7:
			k := string(s)
			if n := len(r.Remove); n > 0 && k <= r.Remove[n-1] {
				return fieldErr("remove", "key %q is not after %q: keys must be unique and ascending", k, r.Remove[n-1])
			}
			if len(r.Remove) >= MaxProperties {
				return fieldErr("remove", "more than %d keys", MaxProperties)
			}
			r.Remove = append(r.Remove, k)
		}
		return err
	})
	if err != nil {
		return r, err
	}
	if r.Time.IsZero() {
		r.Time = time.UnixMilli(0)
	}
	return r, r.Validate()
}

// SignedRecord is a change record with the exact bytes its signer signed.
// Derive and EdgeState.Apply trust only Raw and Signature: they decode and
// verify them again, and ignore Record.
type SignedRecord struct {
	Record    Record
	Raw       []byte
	Signature []byte // by the signer, over Raw, in DomainEdgeRecord
}

// partyOf returns the party of sc's edge whose key k is.
func partyOf(k *identity.Key, c *Card) (Party, error) {
	pub := k.Public()
	switch {
	case bytes.Equal(pub, c.Issuer):
		return PartyIssuer, nil
	case bytes.Equal(pub, c.Recipient):
		return PartyRecipient, nil
	}
	return 0, joinErr(ErrNotAllowed, "signer", "key %s is neither the issuer nor the recipient of the card", k.ID().Short())
}

// signRecord fills in the signer and card of r from k and sc, checks it
// against the type's rules and signs it.
func signRecord(k *identity.Key, sc *SignedCard, r Record) (*SignedRecord, error) {
	p, err := partyOf(k, &sc.Card)
	if err != nil {
		return nil, err
	}
	r.Signer, r.CardID = p, sc.ID()
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	rules := rulesOf(sc.Card.Type)
	if err := rules.permit(&r); err != nil {
		return nil, err
	}
	r.Time = time.UnixMilli(r.Time.UnixMilli())
	raw := r.encode()
	return &SignedRecord{Record: r, Raw: raw, Signature: k.Sign(DomainEdgeRecord, raw)}, nil
}

// SignRevocation makes k's revocation of the edge of card sc, with sequence
// number seq (greater than that of every earlier record of the edge) and
// time t (now if zero). k must be a party the type's rules allow to revoke.
func SignRevocation(k *identity.Key, sc *SignedCard, seq uint64, t time.Time) (*SignedRecord, error) {
	return signRecord(k, sc, Record{Kind: RecordRevocation, Sequence: seq, Time: t})
}

// SignPropertyChange makes k's change of the properties of the edge of card
// sc: it sets the properties in set and removes the keys in remove. seq and t
// are as for SignRevocation; the type's rules must allow k to change every
// key.
func SignPropertyChange(k *identity.Key, sc *SignedCard, seq uint64, t time.Time, set map[string]string, remove []string) (*SignedRecord, error) {
	return signRecord(k, sc, Record{Kind: RecordPropertyChange, Sequence: seq, Time: t,
		Set: maps.Clone(set), Remove: slices.Sorted(slices.Values(remove))})
}

// permit checks that the rules allow r's signer to make r.
func (rules *TypeRules) permit(r *Record) error {
	if r.Kind == RecordRevocation {
		if !rules.MayRevoke(r.Signer) {
			return joinErr(ErrNotAllowed, "signer", "the %s may not revoke this edge (revoke: %s)", r.Signer, rules.Revoke)
		}
		return nil
	}
	for k := range r.Set {
		if !rules.MayChange(r.Signer, k) {
			return joinErr(ErrNotAllowed, "set", "the %s may not change property %q", r.Signer, k)
		}
	}
	for _, k := range r.Remove {
		if !rules.MayChange(r.Signer, k) {
			return joinErr(ErrNotAllowed, "remove", "the %s may not change property %q", r.Signer, k)
		}
	}
	return nil
}

// EdgeStatus is the state of an edge at some time.
type EdgeStatus uint8

const (
	EdgeValid       EdgeStatus = iota + 1 // within its validity window and not revoked
	EdgeRevoked                           // revoked by a party allowed to
	EdgeExpired                           // after its card's validTo
	EdgeNotYetValid                       // before its card's validFrom
)

// String returns the status in words, such as "expired".
func (s EdgeStatus) String() string {
	switch s {
	case EdgeValid:
		return "valid"
	case EdgeRevoked:
		return "revoked"
	case EdgeExpired:
		return "expired"
	case EdgeNotYetValid:
		return "not yet valid"
	}
	return fmt.Sprintf("EdgeStatus(%d)", uint8(s))
}

// EdgeState is the current state of an edge, derived from its card,
// acceptance and change records.
type EdgeState struct {
	Edge       *Edge
	Rules      TypeRules         // of the card's type
	Status     EdgeStatus        // at the time given to Derive
	Properties map[string]string // current; do not modify
	Sequence   uint64            // of the last record applied, 0 if none
	Revoked    bool
	RevokedBy  Party
	RevokedAt  time.Time      // the revocation's Time
	Records    []SignedRecord // the records applied, in order

	ownProps bool // Properties is not shared with the card
}

// NewState returns the state of edge e before any change record, with the
// card's properties, at time now.
func NewState(e *Edge, now time.Time) *EdgeState {
	s := &EdgeState{Edge: e, Rules: Rules(e.Card.Card.Type), Properties: e.Card.Card.Properties}
	s.Status = s.StatusAt(now)
	return s
}

// StatusAt returns the edge's status at time t.
func (s *EdgeState) StatusAt(t time.Time) EdgeStatus {
	c := &s.Edge.Card.Card
	switch ms := t.UnixMilli(); {
	case s.Revoked:
		return EdgeRevoked
	case ms < c.ValidFrom.UnixMilli():
		return EdgeNotYetValid
	case ms > c.ValidTo.UnixMilli():
		return EdgeExpired
	}
	return EdgeValid
}

// Err returns nil if the edge is valid (as of Status) and otherwise an error
// saying why not, matching ErrRevoked, ErrExpired or ErrNotYetValid.
func (s *EdgeState) Err() error {
	c := &s.Edge.Card.Card
	switch s.Status {
	case EdgeValid:
		return nil
	case EdgeRevoked:
		return joinErr(ErrRevoked, "revocation", "revoked by the %s at %s", s.RevokedBy, s.RevokedAt.UTC().Format(time.RFC3339Nano))
	case EdgeExpired:
		return joinErr(ErrExpired, "validTo", "expired at %s", c.ValidTo.UTC().Format(time.RFC3339Nano))
	case EdgeNotYetValid:
		return joinErr(ErrNotYetValid, "validFrom", "valid from %s", c.ValidFrom.UTC().Format(time.RFC3339Nano))
	}
	return fmt.Errorf("edge state: unknown status %d", s.Status)
}

// Apply verifies the change record raw, signed with sig, and applies it to s.
// The record must be well formed, name this edge's card, carry a valid
// signature of the party it names, come after the last record applied
// (a higher sequence number, and no record after a revocation) and be
// allowed by the type's rules. On error s is unchanged. Apply does not
// update Status; call StatusAt.
func (s *EdgeState) Apply(rec *SignedRecord) error {
	r, err := decodeRecord(rec.Raw)
	if err != nil {
		return err
	}
	c := s.Edge.Card
	if id := c.ID(); r.CardID != id {
		return joinErr(ErrWrongCard, "cardId", "record for card %s, not %s", r.CardID, id)
	}
	key := c.Card.Issuer
	if r.Signer == PartyRecipient {
		key = c.Card.Recipient
	}
	if identity.Verify(key, DomainEdgeRecord, rec.Raw, rec.Signature) != nil {
		return sigErr("signature", rec.Signature)
	}
	if s.Revoked {
		return joinErr(ErrRevoked, "sequence", "record %d after the revocation %d", r.Sequence, s.Sequence)
	}
	if r.Sequence <= s.Sequence {
		return joinErr(ErrReplay, "sequence", "%d does not follow %d", r.Sequence, s.Sequence)
	}
	if err := s.Rules.permit(&r); err != nil {
		return err
	}
	if r.Kind == RecordRevocation {
		s.Revoked, s.RevokedBy, s.RevokedAt = true, r.Signer, r.Time
		s.Status = EdgeRevoked
	} else {
		n := len(s.Properties)
		for _, k := range r.Remove {
			if _, ok := s.Properties[k]; !ok {
				return fieldErr("remove", "the edge has no property %q", k)
			}
			n--
		}
		for k := range r.Set {
			if _, ok := s.Properties[k]; !ok {
				n++
			}
		}
		if n > MaxProperties {
			return fieldErr("set", "the edge would have %d properties, limit %d", n, MaxProperties)
		}
		if !s.ownProps {
			s.Properties, s.ownProps = maps.Clone(s.Properties), true
		}
		if s.Properties == nil {
			s.Properties = make(map[string]string, len(r.Set))
		}
		for _, k := range r.Remove {
			delete(s.Properties, k)
		}
		maps.Copy(s.Properties, r.Set)
	}
	s.Sequence = r.Sequence
	s.Records = append(s.Records, SignedRecord{Record: r, Raw: rec.Raw, Signature: rec.Signature})
	return nil
}

// RecordError reports which change record of an edge was rejected.
type RecordError struct {
	Index int // in the list given to Derive
	Err   error
}

// Error names the record and the reason.
func (e *RecordError) Error() string { return fmt.Sprintf("record %d: %v", e.Index, e.Err) }

// Unwrap returns the reason.
func (e *RecordError) Unwrap() error { return e.Err }

// Derive verifies the change records of edge e, which must be in sequence
// order, and returns the edge's state at time now. A record that is
// malformed, forged, for another card, replayed or out of order, after the
// revocation, or not allowed by the type's rules is rejected with a
// *RecordError wrapping the reason. Derive is a pure function of its
// arguments: anyone holding the records derives the same state.
func Derive(e *Edge, records []SignedRecord, now time.Time) (*EdgeState, error) {
	if e == nil || e.Card == nil {
		return nil, fieldErr("card", "missing")
	}
	s := NewState(e, now)
	if e.Acceptance == nil && !s.Rules.IssuerOnly {
		return nil, joinErr(ErrNotAccepted, "acceptance", "missing: type %q needs the recipient's acceptance", e.Card.Card.Type)
	}
	if e.Acceptance != nil && e.Acceptance.Acceptance.CardID != e.ID() {
		return nil, joinErr(ErrWrongCard, "cardId", "acceptance names card %s, not %s", e.Acceptance.Acceptance.CardID, e.ID())
	}
	if len(records) > 0 {
		s.Records = make([]SignedRecord, 0, len(records))
	}
	for i := range records {
		if err := s.Apply(&records[i]); err != nil {
			return nil, &RecordError{Index: i, Err: err}
		}
	}
	s.Status = s.StatusAt(now)
	return s, nil
}
