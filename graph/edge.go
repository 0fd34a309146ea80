package graph

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/iop-go/iop/identity"
)

// The signature domains of edge records.
const (
	DomainEdgeCard   identity.Domain = "iop/edge-card/1"   // the issuer's signature over a card ID
	DomainEdgeAccept identity.Domain = "iop/edge-accept/1" // the recipient's signed acceptance
	DomainEdgeRecord identity.Domain = "iop/edge-record/1" // revocation and property change records
)

// Limits of edge records, in bytes unless stated otherwise.
const (
	MaxEdgeTypeLen      = 64 // as the 2017 MaxCardType
	MaxApplicationIDLen = 32 // as the 2017 MaxApplicationId
	CardNonceSize       = 16
	MaxCardSize         = 8 * 1024
	MaxAcceptanceSize   = 128
)

// EdgeVersion is the edge card format version this package writes (SemVer
// bytes).
var EdgeVersion = [3]byte{1, 0, 0}

// NoExpiry is the ValidTo of a card that does not expire: the last
// millisecond of year 9999.
var NoExpiry = time.UnixMilli(maxMillis)

// Sentinel errors of edge verification, matched with errors.Is. Most come
// joined with a *FieldError naming the offending field.
var (
	ErrWrongCard   = errors.New("names another card")
	ErrNotAccepted = errors.New("edge not accepted by its recipient")
	ErrNotAllowed  = errors.New("not allowed by the edge type's rules")
	ErrReplay      = errors.New("replayed or out-of-order record")
	ErrRevoked     = errors.New("edge revoked")
	ErrExpired     = errors.New("edge expired")
	ErrNotYetValid = errors.New("edge not yet valid")
)

// joinErr returns an error that is both a *FieldError for field and the
// sentinel err.
func joinErr(sentinel error, field, format string, args ...any) error {
	return fmt.Errorf("%w: %w", fieldErr(field, format, args...), sentinel)
}

// sigErr is the error for a signature in field that does not verify.
func sigErr(field string, sig []byte) error {
	if len(sig) == 0 {
		return joinErr(ErrInvalidSignature, field, "missing")
	}
	return joinErr(ErrInvalidSignature, field, "does not verify")
}

// Visibility says where an edge may be published.
type Visibility uint8

const (
	// VisibilityPublic edges are stored by servers and on the public network.
	VisibilityPublic Visibility = 0
	// VisibilityPrivate edges stay on the predecessor's (issuer's) device
	// and are shown to others only with the owner's consent.
	VisibilityPrivate Visibility = 1
)

// String returns "public" or "private".
func (v Visibility) String() string {
	switch v {
	case VisibilityPublic:
		return "public"
	case VisibilityPrivate:
		return "private"
	}
	return fmt.Sprintf("Visibility(%d)", uint8(v))
}

// CardID identifies a card: SHA-256 over "iop/edge-card/1", a zero byte
// and the card's encoding with its cardId field set to 32 zero bytes.
type CardID [sha256.Size]byte

// String returns the 64 lowercase hexadecimal characters of id.
func (id CardID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID.
func (id CardID) IsZero() bool { return id == CardID{} }

// ValidateEdgeType checks an edge type: 1 to MaxEdgeTypeLen bytes of
// '/'-separated, non-empty segments of ASCII letters, digits, '-', '_' and
// '.', such as "work/employs". ('*' is reserved for queries.)
func ValidateEdgeType(t string) error {
	switch {
	case t == "":
		return errors.New("empty")
	case len(t) > MaxEdgeTypeLen:
		return fmt.Errorf("%d bytes, limit %d", len(t), MaxEdgeTypeLen)
	}
	seg := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '/':
			if seg == 0 {
				return fmt.Errorf("%q has an empty segment", t)
			}
			seg = 0
		case isNameByte(c):
			seg++
		default:
			return fmt.Errorf("%.70q: byte 0x%02x at offset %d is not a letter, digit, '-', '_', '.' or '/'", t, c, i)
		}
	}
	if seg == 0 {
		return fmt.Errorf("%q has an empty segment", t)
	}
	return nil
}

// Card is the content of an edge: a relationship of Type from the issuer (the
// predecessor node) to the recipient, valid from ValidFrom to ValidTo
// inclusive, both at millisecond precision.
type Card struct {
	Version   [3]byte
	Type      string
	Issuer    ed25519.PublicKey
	Recipient ed25519.PublicKey
	ValidFrom time.Time
	ValidTo   time.Time
	// Properties holds at most MaxProperties entries; keys are 1 to
	// MaxPropertyKeyLen ASCII letters, digits, '-', '_' and '.', values at
	// most MaxPropertyValueLen bytes of UTF-8. They are encoded in key order.
	Properties map[string]string
	Visibility Visibility
	Created    time.Time // when the issuer made the card
	Nonce      []byte    // CardNonceSize random bytes, so equal cards differ
}

// IssuerID is the network ID of the issuer.
func (c *Card) IssuerID() identity.ID { return identity.IDFromPublicKey(c.Issuer) }

// RecipientID is the network ID of the recipient.
func (c *Card) RecipientID() identity.ID { return identity.IDFromPublicKey(c.Recipient) }

// Validate checks every field against the limits and returns a *FieldError
// naming the first offending field.
func (c *Card) Validate() error {
	if c.Version == [3]byte{} {
		return fieldErr("version", "0.0.0 is not a valid version")
	}
	if c.Version[0] != EdgeVersion[0] {
		return fieldErr("version", "unsupported major version %d", c.Version[0])
	}
	if err := ValidateEdgeType(c.Type); err != nil {
		return fieldErr("type", "%v", err)
	}
	if len(c.Issuer) != ed25519.PublicKeySize {
		return fieldErr("issuerPublicKey", "%d bytes, want %d", len(c.Issuer), ed25519.PublicKeySize)
	}
	if len(c.Recipient) != ed25519.PublicKeySize {
		return fieldErr("recipientPublicKey", "%d bytes, want %d", len(c.Recipient), ed25519.PublicKeySize)
	}
	if bytes.Equal(c.Issuer, c.Recipient) {
		return fieldErr("recipientPublicKey", "same as the issuer's: an edge joins two nodes")
	}
	from, err := millis("validFrom", c.ValidFrom, 0)
	if err != nil {
		return err
	}
	to, err := millis("validTo", c.ValidTo, 0)
	if err != nil {
		return err
	}
	if to < from {
		return fieldErr("validTo", "%s is before validFrom %s", c.ValidTo.UTC().Format(time.RFC3339Nano), c.ValidFrom.UTC().Format(time.RFC3339Nano))
	}
	if _, err := millis("created", c.Created, 1); err != nil {
		return err
	}
	if len(c.Nonce) != CardNonceSize {
		return fieldErr("nonce", "%d bytes, want %d", len(c.Nonce), CardNonceSize)
	}
	if c.Visibility > VisibilityPrivate {
		return fieldErr("visibility", "unknown value %d", c.Visibility)
	}
	return validateProperties("properties", c.Properties)
}

// encode returns the canonical encoding of c, which must be valid, with a
// zero cardId:
//
//	message EdgeCard {
//	  bytes card_id = 1;              // 32 bytes
//	  bytes version = 2;              // 3 bytes
//	  string type = 3;
//	  bytes issuer_public_key = 4;    // 32 bytes
//	  bytes recipient_public_key = 5; // 32 bytes
//	  int64 valid_from = 6;           // ms since the epoch
//	  int64 valid_to = 7;             // ms since the epoch
//	  int64 created = 8;              // ms since the epoch
//	  bytes nonce = 9;                // 16 bytes
//	  Visibility visibility = 10;     // PUBLIC = 0, PRIVATE = 1
//	  repeated Property properties = 11; // ascending unique keys
//	}
//	message Property { string key = 1; string value = 2; }
func (c *Card) encode() []byte {
	b := make([]byte, 0, 160+len(c.Type)+len(c.Properties)*48)
	b = appendBytesField(b, 1, make([]byte, sha256.Size))
	b = appendBytesField(b, 2, c.Version[:])
	b = appendStringField(b, 3, c.Type)
	b = appendBytesField(b, 4, c.Issuer)
	b = appendBytesField(b, 5, c.Recipient)
	b = appendVarintField(b, 6, uint64(c.ValidFrom.UnixMilli()))
	b = appendVarintField(b, 7, uint64(c.ValidTo.UnixMilli()))
	b = appendVarintField(b, 8, uint64(c.Created.UnixMilli()))
	b = appendBytesField(b, 9, c.Nonce)
	b = appendVarintField(b, 10, uint64(c.Visibility))
	return appendProperties(b, 11, c.Properties)
}

// ID validates c and returns its card ID.
func (c *Card) ID() (CardID, error) {
	if err := c.Validate(); err != nil {
		return CardID{}, err
	}
	return cardID(c.encode()), nil
}

// cardIDOffset is where the 32 bytes of the cardId field start in a card's
// encoding: after its one-byte tag and one-byte length.
const cardIDOffset = 2

// cardIDPrefix starts every card ID hash input.
var cardIDPrefix = []byte(string(DomainEdgeCard) + "\x00")

// cardID returns the ID of the card encoded in raw, hashing it as if its
// cardId field held zeros. raw must start with a 32-byte cardId field.
func cardID(raw []byte) CardID {
	var zero [sha256.Size]byte
	h := sha256.New()
	h.Write(cardIDPrefix)
	h.Write(raw[:cardIDOffset])
	h.Write(zero[:])
	h.Write(raw[cardIDOffset+sha256.Size:])
	var id CardID
	h.Sum(id[:0])
	return id
}

// hasCardIDField reports whether raw starts with a 32-byte field 1.
func hasCardIDField(raw []byte) bool {
	return len(raw) >= cardIDOffset+sha256.Size && raw[0] == 0x0a && raw[1] == sha256.Size
}

// SignedCard is a card with the exact bytes the issuer made and the issuer's
// signature over the card ID.
type SignedCard struct {
	Card      Card
	Raw       []byte // the canonical encoding, with the card ID filled in
	Signature []byte // by the issuer, over the ID, in DomainEdgeCard
	id        CardID
}

// ID returns the card ID. For a SignedCard not made by SignCard or OpenCard
// it is computed from Raw on every call.
func (s *SignedCard) ID() CardID {
	if s.id.IsZero() && hasCardIDField(s.Raw) {
		return cardID(s.Raw)
	}
	return s.id
}

// SignCard fills in the card's version and issuer from k, its nonce from
// crypto/rand and Created with the current time when they are empty,
// ValidFrom with Created and ValidTo with NoExpiry when they are zero;
// validates it; encodes it and signs its ID.
func SignCard(k *identity.Key, c Card) (*SignedCard, error) {
	c.Version = EdgeVersion
	c.Issuer = k.Public()
	c.Properties = maps.Clone(c.Properties)
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	if c.ValidFrom.IsZero() {
		c.ValidFrom = c.Created
	}
	if c.ValidTo.IsZero() {
		c.ValidTo = NoExpiry
	}
	if c.Nonce == nil {
		c.Nonce = make([]byte, CardNonceSize)
		if _, err := rand.Read(c.Nonce); err != nil {
			return nil, fmt.Errorf("edge card nonce: %w", err)
		}
	} else {
		c.Nonce = bytes.Clone(c.Nonce)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	raw := c.encode()
	id := cardID(raw)
	copy(raw[cardIDOffset:], id[:])
	c.ValidFrom = time.UnixMilli(c.ValidFrom.UnixMilli())
	c.ValidTo = time.UnixMilli(c.ValidTo.UnixMilli())
	c.Created = time.UnixMilli(c.Created.UnixMilli())
	return &SignedCard{Card: c, Raw: raw, Signature: k.Sign(DomainEdgeCard, id[:]), id: id}, nil
}

// cardSpecs are the fields of EdgeCard.
var cardSpecs = []fieldSpec{
	{name: "cardId", typ: protowire.BytesType},
	{name: "version", typ: protowire.BytesType},
	{name: "type", typ: protowire.BytesType},
	{name: "issuerPublicKey", typ: protowire.BytesType},
	{name: "recipientPublicKey", typ: protowire.BytesType},
	{name: "validFrom", typ: protowire.VarintType},
	{name: "validTo", typ: protowire.VarintType},
	{name: "created", typ: protowire.VarintType},
	{name: "nonce", typ: protowire.BytesType},
	{name: "visibility", typ: protowire.VarintType},
	{name: "properties", typ: protowire.BytesType, repeated: true},
}

// decodeCard decodes and validates the canonical encoding of a card and
// checks that its cardId field matches its content. It does not check the
// signature.
func decodeCard(raw []byte) (Card, CardID, error) {
	var c Card
	if len(raw) > MaxCardSize {
		return c, CardID{}, fieldErr("card", "%d bytes, limit %d", len(raw), MaxCardSize)
	}
	if !hasCardIDField(raw) {
		return c, CardID{}, fieldErr("cardId", "a card must start with its 32-byte ID")
	}
	var version []byte
	var prevKey string
	err := decodeFields(raw, "card", cardSpecs, func(num int, v uint64, s []byte) error {
		var err error
		switch num {
		case 2:
			version = s
		case 3:
			c.Type = string(s)
		case 4:
			c.Issuer = ed25519.PublicKey(bytes.Clone(s))
		case 5:
			c.Recipient = ed25519.PublicKey(bytes.Clone(s))
		case 6:
			c.ValidFrom, err = timeValue("validFrom", v)
		case 7:
			c.ValidTo, err = timeValue("validTo", v)
		case 8:
			c.Created, err = timeValue("created", v)
		case 9:
			c.Nonce = bytes.Clone(s)
		case 10:
			if v > uint64(VisibilityPrivate) {
				return fieldErr("visibility", "unknown value %d", v)
			}
			c.Visibility = Visibility(v)
		case 11:
			if c.Properties == nil {
				c.Properties = make(map[string]string)
			}
			prevKey, err = decodeProperty("properties", s, c.Properties, prevKey)
		}
		return err
	})
	if err != nil {
		return c, CardID{}, err
	}
	if len(version) != 3 {
		return c, CardID{}, fieldErr("version", "%d bytes, want 3", len(version))
	}
	copy(c.Version[:], version)
	if c.ValidFrom.IsZero() {
		c.ValidFrom = time.UnixMilli(0)
	}
	if c.ValidTo.IsZero() {
		c.ValidTo = time.UnixMilli(0)
	}
	if c.Created.IsZero() {
		c.Created = time.UnixMilli(0)
	}
	if err := c.Validate(); err != nil {
		return c, CardID{}, err
	}
	id := cardID(raw)
	if !bytes.Equal(raw[cardIDOffset:cardIDOffset+sha256.Size], id[:]) {
		return c, CardID{}, fieldErr("cardId", "%x does not match the card's content (%s)", raw[cardIDOffset:cardIDOffset+sha256.Size], id)
	}
	return c, id, nil
}

// OpenCard decodes and verifies a signed card received from anyone. When
// issuer is not nil the card must be issued by that key, and the signature is
// checked with it before anything is decoded. Errors are *FieldError values
// naming the field; a bad signature also matches ErrInvalidSignature.
func OpenCard(raw, sig []byte, issuer ed25519.PublicKey) (*SignedCard, error) {
	if issuer != nil {
		if len(raw) > MaxCardSize || !hasCardIDField(raw) {
			return nil, fieldErr("card", "not a card record")
		}
		id := cardID(raw)
		if identity.Verify(issuer, DomainEdgeCard, id[:], sig) != nil {
			return nil, sigErr("issuerSignature", sig)
		}
	}
	c, id, err := decodeCard(raw)
	if err != nil {
		return nil, err
	}
	if issuer == nil {
		if identity.Verify(c.Issuer, DomainEdgeCard, id[:], sig) != nil {
			return nil, sigErr("issuerSignature", sig)
		}
	} else if !bytes.Equal(issuer, c.Issuer) {
		return nil, fieldErr("issuerPublicKey", "card issued by another identity")
	}
	return &SignedCard{Card: c, Raw: raw, Signature: sig, id: id}, nil
}

// Acceptance is the recipient's consent to a card (the 2017
// CardApplicationInformation): it names the card and an application ID that
// binds this use of the card to one transaction or action.
type Acceptance struct {
	CardID        CardID
	ApplicationID []byte // 1 to MaxApplicationIDLen bytes
}

// Validate checks the acceptance's fields.
func (a *Acceptance) Validate() error {
	if a.CardID.IsZero() {
		return fieldErr("cardId", "zero")
	}
	switch {
	case len(a.ApplicationID) == 0:
		return fieldErr("applicationId", "empty")
	case len(a.ApplicationID) > MaxApplicationIDLen:
		return fieldErr("applicationId", "%d bytes, limit %d", len(a.ApplicationID), MaxApplicationIDLen)
	}
	return nil
}

// encode returns the canonical encoding of a, which must be valid:
//
//	message EdgeAcceptance {
//	  bytes card_id = 1;        // 32 bytes
//	  bytes application_id = 2; // 1 to 32 bytes
//	}
func (a *Acceptance) encode() []byte {
	b := make([]byte, 0, 4+len(a.CardID)+len(a.ApplicationID))
	b = appendBytesField(b, 1, a.CardID[:])
	return appendBytesField(b, 2, a.ApplicationID)
}

// SignedAcceptance is an acceptance with the exact bytes the recipient
// signed.
type SignedAcceptance struct {
	Acceptance Acceptance
	Raw        []byte
	Signature  []byte // by the recipient, over Raw, in DomainEdgeAccept
}

// Accept makes k's acceptance of the card sc for application appID; k must
// be the card's recipient. Pass the card ID as appID when the card is used
// once.
func Accept(k *identity.Key, sc *SignedCard, appID []byte) (*SignedAcceptance, error) {
	if !bytes.Equal(k.Public(), sc.Card.Recipient) {
		return nil, joinErr(ErrNotAllowed, "recipientPublicKey", "only the card's recipient can accept it")
	}
	a := Acceptance{CardID: sc.ID(), ApplicationID: bytes.Clone(appID)}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	raw := a.encode()
	return &SignedAcceptance{Acceptance: a, Raw: raw, Signature: k.Sign(DomainEdgeAccept, raw)}, nil
}

// acceptanceSpecs are the fields of EdgeAcceptance.
var acceptanceSpecs = []fieldSpec{
	{name: "cardId", typ: protowire.BytesType},
	{name: "applicationId", typ: protowire.BytesType},
}

// decodeAcceptance decodes and validates the canonical encoding of an
// acceptance.
func decodeAcceptance(raw []byte) (Acceptance, error) {
	var a Acceptance
	if len(raw) > MaxAcceptanceSize {
		return a, fieldErr("acceptance", "%d bytes, limit %d", len(raw), MaxAcceptanceSize)
	}
	err := decodeFields(raw, "acceptance", acceptanceSpecs, func(num int, _ uint64, s []byte) error {
		if num == 1 {
			if len(s) != len(a.CardID) {
				return fieldErr("cardId", "%d bytes, want %d", len(s), len(a.CardID))
			}
			copy(a.CardID[:], s)
		} else {
			a.ApplicationID = bytes.Clone(s)
		}
		return nil
	})
	if err != nil {
		return a, err
	}
	return a, a.Validate()
}

// OpenAcceptance verifies and decodes the acceptance of the card sc: the
// recipient's signature is checked before anything is decoded, then the
// acceptance must name sc. When appID is not nil the acceptance must be for
// that application.
func OpenAcceptance(raw, sig []byte, sc *SignedCard, appID []byte) (*SignedAcceptance, error) {
	if identity.Verify(sc.Card.Recipient, DomainEdgeAccept, raw, sig) != nil {
		return nil, sigErr("recipientSignature", sig)
	}
	a, err := decodeAcceptance(raw)
	if err != nil {
		return nil, err
	}
	if id := sc.ID(); a.CardID != id {
		return nil, joinErr(ErrWrongCard, "cardId", "acceptance names card %s, not %s", a.CardID, id)
	}
	if appID != nil && !bytes.Equal(a.ApplicationID, appID) {
		return nil, fieldErr("applicationId", "acceptance is for application %q, not %q", a.ApplicationID, appID)
	}
	return &SignedAcceptance{Acceptance: a, Raw: raw, Signature: sig}, nil
}

// Edge is a signed card and, unless its type's rules make it one-sided, the
// recipient's acceptance of it. An edge exists only when both signatures
// verify and the acceptance names the card; build one with OpenEdge or
// NewEdge.
type Edge struct {
	Card       *SignedCard
	Acceptance *SignedAcceptance // nil only for types whose rules say IssuerOnly
}

// NewEdge joins a card and its acceptance, both already verified (made by
// SignCard and Accept or opened by OpenCard and OpenAcceptance). acc may be
// nil for a type whose rules say IssuerOnly.
func NewEdge(sc *SignedCard, acc *SignedAcceptance) (*Edge, error) {
	if sc == nil {
		return nil, fieldErr("card", "missing")
	}
	if acc == nil {
		if !rulesOf(sc.Card.Type).IssuerOnly {
			return nil, joinErr(ErrNotAccepted, "acceptance", "missing: type %q needs the recipient's acceptance", sc.Card.Type)
		}
		return &Edge{Card: sc}, nil
	}
	if acc.Acceptance.CardID != sc.ID() {
		return nil, joinErr(ErrWrongCard, "cardId", "acceptance names card %s, not %s", acc.Acceptance.CardID, sc.ID())
	}
	return &Edge{Card: sc, Acceptance: acc}, nil
}

// OpenEdge verifies a signed card and its acceptance (accRaw empty when the
// type needs none) received from anyone.
func OpenEdge(cardRaw, cardSig, accRaw, accSig []byte) (*Edge, error) {
	sc, err := OpenCard(cardRaw, cardSig, nil)
	if err != nil {
		return nil, err
	}
	if len(accRaw) == 0 && len(accSig) == 0 {
		return NewEdge(sc, nil)
	}
	acc, err := OpenAcceptance(accRaw, accSig, sc, nil)
	if err != nil {
		return nil, err
	}
	return &Edge{Card: sc, Acceptance: acc}, nil
}

// ID returns the edge's card ID.
func (e *Edge) ID() CardID { return e.Card.ID() }

// String describes the edge for logs.
func (e *Edge) String() string {
	c := &e.Card.Card
	var b strings.Builder
	fmt.Fprintf(&b, "edge %s %q %s -> %s", e.ID().String()[:12], c.Type, c.IssuerID().Short(), c.RecipientID().Short())
	if c.Visibility == VisibilityPrivate {
		b.WriteString(" private")
	}
	return b.String()
}
