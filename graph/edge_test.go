package graph

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/iop-go/iop/identity"
)

// edgeT is the time every edge test treats as now.
var edgeT = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// edgeParties are the keys of an edge test: issuer, recipient and an
// outsider.
type edgeParties struct{ issuer, recipient, other *identity.Key }

func newEdgeParties(t testing.TB) edgeParties {
	t.Helper()
	return edgeParties{newKey(t), newKey(t), newKey(t)}
}

// card returns a valid card of type typ from the issuer to the recipient,
// valid for a year around edgeT.
func (p edgeParties) card(typ string, props map[string]string) Card {
	return Card{
		Type:       typ,
		Recipient:  p.recipient.Public(),
		ValidFrom:  edgeT.AddDate(0, -6, 0),
		ValidTo:    edgeT.AddDate(0, 6, 0),
		Properties: props,
		Created:    edgeT.AddDate(0, -6, 0),
	}
}

// edge signs and accepts a card of type typ.
func (p edgeParties) edge(t testing.TB, typ string, props map[string]string) (*SignedCard, *SignedAcceptance) {
	t.Helper()
	sc, err := SignCard(p.issuer, p.card(typ, props))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := Accept(p.recipient, sc, []byte("app-1"))
	if err != nil {
		t.Fatal(err)
	}
	return sc, acc
}

// wantErr checks that err is a *FieldError for field (unless field is empty)
// and matches sentinel (unless it is nil).
func wantErr(t *testing.T, what string, err error, field string, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want an error (field %q, %v)", what, field, sentinel)
	}
	if field != "" {
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s = %v, want a %q field error", what, err, field)
		}
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("%s = %v, want %v", what, err, sentinel)
	}
	if msg := err.Error(); msg == "" || msg != strings.ToLower(msg[:1])+msg[1:] {
		t.Errorf("%s: error %q does not start in lower case", what, msg)
	}
}

// signRaw signs record r as k without checking it, as a forger would.
func signRaw(k *identity.Key, r Record) SignedRecord {
	raw := r.encode()
	return SignedRecord{Record: r, Raw: raw, Signature: k.Sign(DomainEdgeRecord, raw)}
}

func TestEdgeRoundTrip(t *testing.T) {
	p := newEdgeParties(t)
	props := map[string]string{"role": "engineer", "team": "graph", "empty": ""}
	c := p.card("work/employs", props)
	c.Visibility = VisibilityPrivate
	sc, err := SignCard(p.issuer, c)
	if err != nil {
		t.Fatal(err)
	}
	props["role"] = "changed after signing"
	if sc.Card.Properties["role"] != "engineer" {
		t.Error("SignCard kept a reference to the caller's properties")
	}
	for _, issuer := range [][]byte{nil, p.issuer.Public()} {
		got, err := OpenCard(sc.Raw, sc.Signature, issuer)
		if err != nil {
			t.Fatalf("OpenCard(issuer=%x) = %v", issuer, err)
		}
		if got.ID() != sc.ID() || got.Card.Type != "work/employs" || !bytes.Equal(got.Card.Issuer, p.issuer.Public()) ||
			!bytes.Equal(got.Card.Recipient, p.recipient.Public()) || !got.Card.ValidFrom.Equal(sc.Card.ValidFrom) ||
			!got.Card.ValidTo.Equal(sc.Card.ValidTo) || !got.Card.Created.Equal(sc.Card.Created) ||
			!maps.Equal(got.Card.Properties, sc.Card.Properties) || got.Card.Visibility != VisibilityPrivate ||
			!bytes.Equal(got.Card.Nonce, sc.Card.Nonce) || got.Card.Version != EdgeVersion {
			t.Errorf("OpenCard = %+v, want %+v", got.Card, sc.Card)
		}
	}
	id, err := sc.Card.ID()
	if err != nil || id != sc.ID() {
		t.Errorf("Card.ID() = %s, %v; want %s", id, err, sc.ID())
	}
	if !bytes.Equal(sc.Raw[cardIDOffset:cardIDOffset+32], id[:]) {
		t.Error("the encoded card does not carry its ID")
	}
	if got := (&SignedCard{Raw: sc.Raw}).ID(); got != id {
		t.Errorf("ID computed from Raw = %s, want %s", got, id)
	}

	acc, err := Accept(p.recipient, sc, []byte("order-42"))
	if err != nil {
		t.Fatal(err)
	}
	gotAcc, err := OpenAcceptance(acc.Raw, acc.Signature, sc, []byte("order-42"))
	if err != nil {
		t.Fatal(err)
	}
	if gotAcc.Acceptance.CardID != id || string(gotAcc.Acceptance.ApplicationID) != "order-42" {
		t.Errorf("OpenAcceptance = %+v", gotAcc.Acceptance)
	}

	change, err := SignPropertyChange(p.issuer, sc, 1, edgeT, map[string]string{"role": "lead"}, []string{"team", "empty"})
	if err != nil {
		t.Fatal(err)
	}
	contact, err := SignPropertyChange(p.recipient, sc, 2, edgeT, map[string]string{"contact": "ada@example.org"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	edge, err := NewEdge(sc, acc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Derive(edge, []SignedRecord{*change, *contact}, edgeT)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"role": "lead", "contact": "ada@example.org"}
	if st.Status != EdgeValid || st.Err() != nil || !maps.Equal(st.Properties, want) || st.Sequence != 2 || len(st.Records) != 2 {
		t.Errorf("Derive = status %v, props %v, seq %d; want valid, %v, 2", st.Status, st.Properties, st.Sequence, want)
	}
	if !maps.Equal(sc.Card.Properties, map[string]string{"role": "engineer", "team": "graph", "empty": ""}) {
		t.Errorf("Derive changed the card's properties: %v", sc.Card.Properties)
	}

	blob, err := EncodeProof(st.Proof())
	if err != nil {
		t.Fatal(err)
	}
	st2, err := OpenProof(blob, edgeT)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Status != EdgeValid || !maps.Equal(st2.Properties, want) || st2.Edge.ID() != id ||
		string(st2.Edge.Acceptance.Acceptance.ApplicationID) != "order-42" || st2.Records[1].Record.Signer != PartyRecipient {
		t.Errorf("OpenProof = %+v", st2)
	}
	again, err := EncodeProof(st2.Proof())
	if err != nil || !bytes.Equal(again, blob) {
		t.Errorf("re-encoding an opened proof gives different bytes (%v)", err)
	}
	if s := edge.String(); !strings.Contains(s, "work/employs") || !strings.Contains(s, "private") {
		t.Errorf("Edge.String() = %q", s)
	}
}

func TestSignCardDefaults(t *testing.T) {
	p := newEdgeParties(t)
	before := time.Now().Add(-time.Second)
	a, err := SignCard(p.issuer, Card{Type: "social/friend", Recipient: p.recipient.Public()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := SignCard(p.issuer, Card{Type: "social/friend", Recipient: p.recipient.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() == b.ID() || bytes.Equal(a.Card.Nonce, b.Card.Nonce) {
		t.Error("two cards with the same content have the same ID: the nonce does not differ")
	}
	if a.Card.Created.Before(before) || !a.Card.ValidFrom.Equal(a.Card.Created) || !a.Card.ValidTo.Equal(NoExpiry) ||
		a.Card.Visibility != VisibilityPublic || a.Card.Version != EdgeVersion {
		t.Errorf("SignCard defaults = %+v", a.Card)
	}
	// A card valid from the epoch encodes validFrom as an omitted zero.
	c := p.card("social/friend", nil)
	c.ValidFrom = time.UnixMilli(0)
	sc, err := SignCard(p.issuer, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCard(sc.Raw, sc.Signature, nil); err != nil {
		t.Errorf("OpenCard(valid from the epoch) = %v", err)
	}
}

func TestValidateEdgeType(t *testing.T) {
	for _, ok := range []string{"work/employs", "a", "social/follows", "x.y/z_w-1/V2", strings.Repeat("t", MaxEdgeTypeLen)} {
		if err := ValidateEdgeType(ok); err != nil {
			t.Errorf("ValidateEdgeType(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("t", MaxEdgeTypeLen+1), "/work", "work/", "work//employs",
		"work/*", "work employs", "wörk", "work\x00", "work\\employs"} {
		if err := ValidateEdgeType(bad); err == nil {
			t.Errorf("ValidateEdgeType(%q) = nil, want an error", bad)
		}
	}
}

// TestCardValidateFields checks that every limit of a card names its field.
func TestCardValidateFields(t *testing.T) {
	p := newEdgeParties(t)
	manyProps := map[string]string{}
	for i := range MaxProperties + 1 {
		manyProps[string(rune('a'+i))] = "v"
	}
	tests := []struct {
		field  string
		change func(c *Card)
	}{
		{"version", func(c *Card) { c.Version = [3]byte{} }},
		{"version", func(c *Card) { c.Version = [3]byte{2, 0, 0} }},
		{"type", func(c *Card) { c.Type = "" }},
		{"type", func(c *Card) { c.Type = strings.Repeat("t", MaxEdgeTypeLen+1) }},
		{"type", func(c *Card) { c.Type = "work/*" }},
		{"issuerPublicKey", func(c *Card) { c.Issuer = c.Issuer[:31] }},
		{"recipientPublicKey", func(c *Card) { c.Recipient = nil }},
		{"recipientPublicKey", func(c *Card) { c.Recipient = c.Issuer }},
		{"validFrom", func(c *Card) { c.ValidFrom = time.UnixMilli(-1) }},
		{"validTo", func(c *Card) { c.ValidTo = NoExpiry.Add(time.Millisecond) }},
		{"validTo", func(c *Card) { c.ValidTo = c.ValidFrom.Add(-time.Millisecond) }},
		{"created", func(c *Card) { c.Created = time.UnixMilli(0) }},
		{"created", func(c *Card) { c.Created = time.Time{} }},
		{"nonce", func(c *Card) { c.Nonce = c.Nonce[:15] }},
		{"nonce", func(c *Card) { c.Nonce = nil }},
		{"visibility", func(c *Card) { c.Visibility = 2 }},
		{"properties", func(c *Card) { c.Properties = manyProps }},
		{"properties", func(c *Card) { c.Properties = map[string]string{"": "v"} }},
		{"properties", func(c *Card) { c.Properties = map[string]string{strings.Repeat("k", MaxPropertyKeyLen+1): "v"} }},
		{"properties", func(c *Card) { c.Properties = map[string]string{"a=b": "v"} }},
		{"properties", func(c *Card) { c.Properties = map[string]string{"k": strings.Repeat("v", MaxPropertyValueLen+1)} }},
		{"properties", func(c *Card) { c.Properties = map[string]string{"k": "\xff"} }},
	}
	valid := func() Card {
		c := p.card("work/employs", nil)
		c.Version, c.Issuer, c.Nonce = EdgeVersion, p.issuer.Public(), make([]byte, CardNonceSize)
		return c
	}
	for _, tt := range tests {
		c := valid()
		tt.change(&c)
		var fe *FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Validate after changing %s = %v, want a %q field error", tt.field, err, tt.field)
		}
	}
	c := valid()
	c.Type = strings.Repeat("t", MaxEdgeTypeLen)
	c.Properties = map[string]string{}
	for i := range MaxProperties {
		c.Properties[strings.Repeat(string(rune('a'+i)), MaxPropertyKeyLen)] = strings.Repeat("v", MaxPropertyValueLen)
	}
	c.ValidTo = NoExpiry
	if err := c.Validate(); err != nil {
		t.Errorf("Validate at the limits = %v", err)
	}
	sc, err := SignCard(p.issuer, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Raw) > MaxCardSize {
		t.Errorf("a card at the limits is %d bytes, more than MaxCardSize %d", len(sc.Raw), MaxCardSize)
	}
	if _, err := OpenCard(sc.Raw, sc.Signature, nil); err != nil {
		t.Errorf("OpenCard(card at the limits) = %v", err)
	}
}

// splitFields splits an encoded message into its fields, each with its tag.
func splitFields(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		_, _, n := protowire.ConsumeField(b)
		if n < 0 {
			t.Fatalf("splitFields: %v", protowire.ParseError(n))
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func TestOpenCardRejects(t *testing.T) {
	p := newEdgeParties(t)
	sc, _ := p.edge(t, "work/employs", map[string]string{"a": "1", "b": "2"})
	id := sc.ID()
	tampered := bytes.Clone(sc.Raw)
	i := bytes.Index(tampered, []byte("employs"))
	tampered[i] = 'E' // still a valid type, but the ID no longer matches
	// Another key signs the ID of a card that names the issuer.
	otherSig := p.other.Sign(DomainEdgeCard, id[:])
	// A card signed by "other" as issuer, opened expecting the real issuer.
	otherCard, err := SignCard(p.other, p.card("work/employs", nil))
	if err != nil {
		t.Fatal(err)
	}
	fields := splitFields(t, sc.Raw)
	join := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	// withID recomputes and fills in the ID of a hand-made encoding, so that
	// the decoder, not the ID check, must reject it.
	withID := func(b []byte) []byte {
		b = bytes.Clone(b)
		if hasCardIDField(b) {
			clear(b[cardIDOffset : cardIDOffset+32])
			id := cardID(b)
			copy(b[cardIDOffset:], id[:])
		}
		return b
	}
	tests := []struct {
		name     string
		raw, sig []byte
		issuer   []byte
		field    string
		sentinel error
	}{
		{"id does not match content", tampered, sc.Signature, nil, "cardId", nil},
		{"id does not match content, issuer given", tampered, sc.Signature, p.issuer.Public(), "issuerSignature", ErrInvalidSignature},
		{"forged signature", sc.Raw, otherSig, nil, "issuerSignature", ErrInvalidSignature},
		{"forged signature, issuer given", sc.Raw, otherSig, p.issuer.Public(), "issuerSignature", ErrInvalidSignature},
		{"missing signature", sc.Raw, nil, nil, "issuerSignature", ErrInvalidSignature},
		{"signature in another domain", sc.Raw, p.issuer.Sign(DomainEdgeAccept, id[:]), nil, "issuerSignature", ErrInvalidSignature},
		{"signature over the bytes, not the ID", sc.Raw, p.issuer.Sign(DomainEdgeCard, sc.Raw), nil, "issuerSignature", ErrInvalidSignature},
		{"issued by another identity", sc.Raw, otherSig, p.other.Public(), "", nil},
		{"expected issuer differs", otherCard.Raw, otherCard.Signature, p.issuer.Public(), "issuerSignature", ErrInvalidSignature},
		{"empty", nil, sc.Signature, nil, "cardId", nil},
		{"garbage", []byte{0xff, 0xff, 0xff}, sc.Signature, nil, "cardId", nil},
		{"too large", append(bytes.Clone(sc.Raw), make([]byte, MaxCardSize)...), sc.Signature, nil, "card", nil},
		{"trailing byte", append(bytes.Clone(sc.Raw), 0), sc.Signature, nil, "card", nil},
		{"trailing field", withID(append(bytes.Clone(sc.Raw), 0x60, 1)), sc.Signature, nil, "card", nil},
		{"truncated", sc.Raw[:len(sc.Raw)-1], sc.Signature, nil, "properties", nil},
		{"fields out of order", withID(join(fields[0], fields[2], fields[1], join(fields[3:]...))), sc.Signature, nil, "version", nil},
		{"field repeated", withID(join(fields[0], fields[1], fields[2], fields[2], join(fields[3:]...))), sc.Signature, nil, "type", nil},
		{"wrong wire type", withID(join(fields[0], fields[1], []byte{0x18, 1}, join(fields[3:]...))), sc.Signature, nil, "type", nil},
		{"zero value encoded", withID(join(join(fields[:9]...), []byte{0x50, 0}, join(fields[9:]...))), sc.Signature, nil, "visibility", nil},
		{"empty bytes encoded", withID(join(join(fields[:8]...), []byte{0x4a, 0}, join(fields[8:]...))), sc.Signature, nil, "nonce", nil},
		{"properties out of order", withID(join(join(fields[:len(fields)-2]...), fields[len(fields)-1], fields[len(fields)-2])), sc.Signature, nil, "properties", nil},
		{"property repeated", withID(join(join(fields[:len(fields)-1]...), fields[len(fields)-2])), sc.Signature, nil, "properties", nil},
		{"unknown visibility", withID(join(join(fields[:9]...), []byte{0x50, 7}, join(fields[9:]...))), sc.Signature, nil, "visibility", nil},
		{"time after year 9999", withID(join(join(fields[:6]...), protowire.AppendVarint([]byte{0x38}, maxMillis+1), join(fields[7:]...))), sc.Signature, nil, "validTo", nil},
		{"negative time", withID(join(join(fields[:5]...), protowire.AppendVarint([]byte{0x30}, uint64(1<<64-1)), join(fields[6:]...))), sc.Signature, nil, "validFrom", nil},
		{"non-minimal varint", withID(join(join(fields[:9]...), []byte{0x50, 0x81, 0x00}, join(fields[9:]...))), sc.Signature, nil, "visibility", nil},
		{"non-minimal length", withID(join(join(fields[:2]...), []byte{0x1a, 0x8c, 0x00}, fields[2][2:], join(fields[3:]...))), sc.Signature, nil, "type", nil},
		{"non-minimal tag", withID(join(join(fields[:2]...), []byte{0x9a, 0x00}, fields[2][1:], join(fields[3:]...))), sc.Signature, nil, "card", nil},
		{"unknown field", withID(join(sc.Raw, []byte{0x62, 1, 'x'})), sc.Signature, nil, "card", nil},
		{"no card id", join(fields[1:]...), sc.Signature, nil, "cardId", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenCard(tt.raw, tt.sig, tt.issuer)
			if tt.field == "" && tt.sentinel == nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "issuerPublicKey" {
					t.Errorf("OpenCard = %v, %v; want an issuerPublicKey field error", got, err)
				}
				return
			}
			wantErr(t, "OpenCard", err, tt.field, tt.sentinel)
		})
	}
}

func TestAcceptanceRejects(t *testing.T) {
	p := newEdgeParties(t)
	sc, acc := p.edge(t, "work/employs", nil)
	sc2, acc2 := p.edge(t, "work/employs", nil)
	byIssuer := p.issuer.Sign(DomainEdgeAccept, acc.Raw)
	tests := []struct {
		name     string
		raw, sig []byte
		card     *SignedCard
		appID    []byte
		field    string
		sentinel error
	}{
		{"signed by the issuer", acc.Raw, byIssuer, sc, nil, "recipientSignature", ErrInvalidSignature},
		{"missing signature", acc.Raw, nil, sc, nil, "recipientSignature", ErrInvalidSignature},
		{"signature in the card domain", acc.Raw, p.recipient.Sign(DomainEdgeCard, acc.Raw), sc, nil, "recipientSignature", ErrInvalidSignature},
		{"another card", acc2.Raw, acc2.Signature, sc, nil, "cardId", ErrWrongCard},
		{"another application", acc.Raw, acc.Signature, sc, []byte("app-2"), "applicationId", nil},
		{"acceptance of card 2 for card 1", acc.Raw, acc.Signature, sc2, nil, "cardId", ErrWrongCard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenAcceptance(tt.raw, tt.sig, tt.card, tt.appID)
			wantErr(t, "OpenAcceptance", err, tt.field, tt.sentinel)
		})
	}
	// Malformed acceptances, signed by the recipient so that decoding is
	// reached.
	id := sc.ID()
	malformed := []struct {
		name  string
		raw   []byte
		field string
	}{
		{"empty application ID", (&Acceptance{CardID: id}).encode(), "applicationId"},
		{"application ID too long", (&Acceptance{CardID: id, ApplicationID: make([]byte, MaxApplicationIDLen+1)}).encode(), "applicationId"},
		{"short card ID", append([]byte{0x0a, 31}, id[:31]...), "cardId"},
		{"trailing byte", append((&Acceptance{CardID: id, ApplicationID: []byte("a")}).encode(), 0), "acceptance"},
		{"fields swapped", append([]byte{0x12, 1, 'a', 0x0a, 32}, id[:]...), "cardId"},
		{"too large", make([]byte, MaxAcceptanceSize+1), "acceptance"},
	}
	for _, tt := range malformed {
		_, err := OpenAcceptance(tt.raw, p.recipient.Sign(DomainEdgeAccept, tt.raw), sc, nil)
		wantErr(t, "OpenAcceptance("+tt.name+")", err, tt.field, nil)
	}
	if _, err := OpenAcceptance(acc.Raw, acc.Signature, sc, []byte("app-1")); err != nil {
		t.Errorf("OpenAcceptance(right application) = %v", err)
	}
	// Only the recipient may accept, and the application ID is 1..32 bytes.
	_, err := Accept(p.issuer, sc, []byte("a"))
	wantErr(t, "Accept by the issuer", err, "recipientPublicKey", ErrNotAllowed)
	_, err = Accept(p.recipient, sc, nil)
	wantErr(t, "Accept without application ID", err, "applicationId", nil)
	_, err = Accept(p.recipient, sc, make([]byte, MaxApplicationIDLen+1))
	wantErr(t, "Accept with a long application ID", err, "applicationId", nil)
	if _, err := Accept(p.recipient, sc, make([]byte, MaxApplicationIDLen)); err != nil {
		t.Errorf("Accept with a 32-byte application ID = %v", err)
	}
}

func TestEdgeNeedsAcceptance(t *testing.T) {
	p := newEdgeParties(t)
	sc, acc := p.edge(t, "work/employs", nil)
	sc2, _ := p.edge(t, "work/employs", nil)
	_, err := NewEdge(sc, nil)
	wantErr(t, "NewEdge(employs, no acceptance)", err, "acceptance", ErrNotAccepted)
	_, err = OpenEdge(sc.Raw, sc.Signature, nil, nil)
	wantErr(t, "OpenEdge(employs, no acceptance)", err, "acceptance", ErrNotAccepted)
	_, err = Derive(&Edge{Card: sc}, nil, edgeT)
	wantErr(t, "Derive(employs, no acceptance)", err, "acceptance", ErrNotAccepted)
	_, err = NewEdge(sc2, acc)
	wantErr(t, "NewEdge(acceptance of another card)", err, "cardId", ErrWrongCard)
	_, err = OpenEdge(sc2.Raw, sc2.Signature, acc.Raw, acc.Signature)
	wantErr(t, "OpenEdge(acceptance of another card)", err, "cardId", ErrWrongCard)
	_, err = OpenEdge(sc.Raw, sc.Signature, acc.Raw, nil)
	wantErr(t, "OpenEdge(acceptance without signature)", err, "recipientSignature", ErrInvalidSignature)
	_, err = NewEdge(nil, acc)
	wantErr(t, "NewEdge(nil card)", err, "card", nil)
	_, err = Derive(&Edge{Card: sc2, Acceptance: acc}, nil, edgeT)
	wantErr(t, "Derive(acceptance of another card)", err, "cardId", ErrWrongCard)
	_, err = Derive(nil, nil, edgeT)
	wantErr(t, "Derive(nil edge)", err, "card", nil)

	// A one-sided type exists with the issuer's signature alone, and may
	// still carry an acceptance.
	follow, err := SignCard(p.issuer, p.card("social/follows", nil))
	if err != nil {
		t.Fatal(err)
	}
	e, err := OpenEdge(follow.Raw, follow.Signature, nil, nil)
	if err != nil {
		t.Fatalf("OpenEdge(follows, no acceptance) = %v", err)
	}
	st, err := Derive(e, nil, edgeT)
	if err != nil || st.Status != EdgeValid {
		t.Fatalf("Derive(follows) = %v, %v", st, err)
	}
	facc, err := Accept(p.recipient, follow, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEdge(follow.Raw, follow.Signature, facc.Raw, facc.Signature); err != nil {
		t.Errorf("OpenEdge(follows, accepted) = %v", err)
	}
	_, err = OpenEdge(follow.Raw, follow.Signature, facc.Raw, byteFlip(facc.Signature))
	wantErr(t, "OpenEdge(follows, forged acceptance)", err, "recipientSignature", ErrInvalidSignature)
}

// byteFlip returns b with its first bit flipped.
func byteFlip(b []byte) []byte {
	b = bytes.Clone(b)
	b[0] ^= 1
	return b
}

func TestRules(t *testing.T) {
	tests := []struct {
		typ                    string
		issuerOnly             bool
		issuerRevoke, recRevok bool
		key                    string
		issuerChange, recChg   bool
	}{
		{"work/employs", false, true, true, "title", true, false},
		{"work/employs", false, true, true, "contact", false, true},
		{"work/employs/intern", false, true, true, "contact", false, true},
		{"org/member", false, true, true, "role", true, false},
		{"social/friend", false, true, true, "nickname", true, true},
		{"social/follows", true, true, false, "list", true, false},
		{"shop/customer", false, true, false, "tier", true, false},
		{"work", false, true, false, "x", true, false},
		{"work/employsx", false, true, false, "contact", true, false},
	}
	for _, tt := range tests {
		r := Rules(tt.typ)
		if r.IssuerOnly != tt.issuerOnly || r.MayRevoke(PartyIssuer) != tt.issuerRevoke || r.MayRevoke(PartyRecipient) != tt.recRevok ||
			r.MayChange(PartyIssuer, tt.key) != tt.issuerChange || r.MayChange(PartyRecipient, tt.key) != tt.recChg {
			t.Errorf("Rules(%q) = %+v: issuerOnly %v, revoke %v/%v, change %q %v/%v; want %v, %v/%v, %v/%v", tt.typ, r,
				r.IssuerOnly, r.MayRevoke(PartyIssuer), r.MayRevoke(PartyRecipient), tt.key, r.MayChange(PartyIssuer, tt.key),
				r.MayChange(PartyRecipient, tt.key), tt.issuerOnly, tt.issuerRevoke, tt.recRevok, tt.issuerChange, tt.recChg)
		}
	}
	// The zero TypeRules are the defaults; Who and Controller combine.
	r := TypeRules{Controller: PartyRecipient, Revoke: WhoController, OtherProperties: WhoNobody, Properties: map[string]Who{"i": WhoIssuer}}
	if r.MayRevoke(PartyIssuer) || !r.MayRevoke(PartyRecipient) || r.MayChange(PartyIssuer, "x") || r.MayChange(PartyRecipient, "x") ||
		!r.MayChange(PartyIssuer, "i") || r.MayChange(PartyRecipient, "i") || r.MayRevoke(Party(7)) {
		t.Errorf("rules %+v combine wrongly", r)
	}
	// Rules returns a copy the caller may change.
	Rules("work/employs").Properties["contact"] = WhoNobody
	if !Rules("work/employs").MayChange(PartyRecipient, "contact") {
		t.Error("changing the result of Rules changed the built-in rules")
	}
	if got := BuiltinTypes(); !slices.Equal(got, []string{"org/member", "social/follows", "social/friend", "work/employs"}) {
		t.Errorf("BuiltinTypes() = %v", got)
	}
	// One-sided types must not give the recipient any power: it never signed.
	for _, typ := range BuiltinTypes() {
		r := Rules(typ)
		if err := ValidateEdgeType(typ); err != nil {
			t.Errorf("built-in type %q: %v", typ, err)
		}
		if r.IssuerOnly && (r.Controller != PartyIssuer || r.MayRevoke(PartyRecipient) || r.MayChange(PartyRecipient, "any")) {
			t.Errorf("one-sided type %q gives the recipient rights: %+v", typ, r)
		}
	}
	for _, s := range []string{PartyIssuer.String(), PartyRecipient.String(), Party(9).String(), WhoEither.String(), Who(9).String(),
		RecordRevocation.String(), RecordKind(9).String(), EdgeExpired.String(), EdgeStatus(0).String(), VisibilityPrivate.String(), Visibility(5).String()} {
		if s == "" {
			t.Error("empty String()")
		}
	}
}

func TestDeriveRecords(t *testing.T) {
	p := newEdgeParties(t)
	type rec func(sc *SignedCard) SignedRecord
	// sign makes a record as k without the signing-side rule check.
	sign := func(k *identity.Key, signer Party, kind RecordKind, seq uint64, set map[string]string, remove ...string) rec {
		return func(sc *SignedCard) SignedRecord {
			return signRaw(k, Record{Kind: kind, CardID: sc.ID(), Sequence: seq, Time: edgeT, Signer: signer, Set: set, Remove: remove})
		}
	}
	iss, rcp := PartyIssuer, PartyRecipient
	set := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		typ      string
		props    map[string]string
		records  func(p edgeParties) []rec
		index    int // of the rejected record, -1 if none
		field    string
		sentinel error
		status   EdgeStatus
		want     map[string]string
	}{
		{"no records", "work/employs", set("a", "1"), func(p edgeParties) []rec { return nil }, -1, "", nil, EdgeValid, set("a", "1")},
		{"issuer revokes employs", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordRevocation, 1, nil)}
		}, -1, "", nil, EdgeRevoked, nil},
		{"recipient revokes employs", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.recipient, rcp, RecordRevocation, 5, nil)}
		}, -1, "", nil, EdgeRevoked, nil},
		{"recipient may not revoke a default-type edge", "shop/customer", nil, func(p edgeParties) []rec {
			return []rec{sign(p.recipient, rcp, RecordRevocation, 1, nil)}
		}, 0, "signer", ErrNotAllowed, 0, nil},
		{"recipient may not revoke a follow", "social/follows", nil, func(p edgeParties) []rec {
			return []rec{sign(p.recipient, rcp, RecordRevocation, 1, nil)}
		}, 0, "signer", ErrNotAllowed, 0, nil},
		{"issuer revokes a follow", "social/follows", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordRevocation, 1, nil)}
		}, -1, "", nil, EdgeRevoked, nil},
		{"either changes a friendship", "social/friend", set("since", "2020"), func(p edgeParties) []rec {
			return []rec{sign(p.recipient, rcp, RecordPropertyChange, 1, set("nick", "bo")), sign(p.issuer, iss, RecordPropertyChange, 2, nil, "since")}
		}, -1, "", nil, EdgeValid, set("nick", "bo")},
		{"recipient may not change the employer's property", "work/employs", set("title", "dev"), func(p edgeParties) []rec {
			return []rec{sign(p.recipient, rcp, RecordPropertyChange, 1, set("title", "ceo"))}
		}, 0, "set", ErrNotAllowed, 0, nil},
		{"recipient may not remove the employer's property", "work/employs", set("title", "dev"), func(p edgeParties) []rec {
			return []rec{sign(p.recipient, rcp, RecordPropertyChange, 1, nil, "title")}
		}, 0, "remove", ErrNotAllowed, 0, nil},
		{"issuer may not change the employee's contact", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordPropertyChange, 1, set("contact", "x"))}
		}, 0, "set", ErrNotAllowed, 0, nil},
		{"forged: outsider signs as issuer", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.other, iss, RecordRevocation, 1, nil)}
		}, 0, "signature", ErrInvalidSignature, 0, nil},
		{"forged: issuer signs as recipient", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, rcp, RecordRevocation, 1, nil)}
		}, 0, "signature", ErrInvalidSignature, 0, nil},
		{"missing signature", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{func(sc *SignedCard) SignedRecord {
				r := sign(p.issuer, iss, RecordRevocation, 1, nil)(sc)
				r.Signature = nil
				return r
			}}
		}, 0, "signature", ErrInvalidSignature, 0, nil},
		{"signature in the card domain", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{func(sc *SignedCard) SignedRecord {
				r := sign(p.issuer, iss, RecordRevocation, 1, nil)(sc)
				r.Signature = p.issuer.Sign(DomainEdgeCard, r.Raw)
				return r
			}}
		}, 0, "signature", ErrInvalidSignature, 0, nil},
		{"replay of an old record after a newer one", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordPropertyChange, 1, set("t", "1")), sign(p.issuer, iss, RecordPropertyChange, 2, set("t", "2")),
				sign(p.issuer, iss, RecordPropertyChange, 1, set("t", "1"))}
		}, 2, "sequence", ErrReplay, 0, nil},
		{"duplicate sequence", "social/friend", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordPropertyChange, 3, set("t", "1")), sign(p.recipient, rcp, RecordPropertyChange, 3, set("t", "2"))}
		}, 1, "sequence", ErrReplay, 0, nil},
		{"record after the revocation", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordRevocation, 1, nil), sign(p.issuer, iss, RecordPropertyChange, 2, set("t", "1"))}
		}, 1, "sequence", ErrRevoked, 0, nil},
		{"second revocation", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordRevocation, 1, nil), sign(p.recipient, rcp, RecordRevocation, 2, nil)}
		}, 1, "sequence", ErrRevoked, 0, nil},
		{"record for another card", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{func(sc *SignedCard) SignedRecord {
				return signRaw(p.issuer, Record{Kind: RecordRevocation, CardID: CardID{1}, Sequence: 1, Time: edgeT})
			}}
		}, 0, "cardId", ErrWrongCard, 0, nil},
		{"remove a missing property", "work/employs", set("a", "1"), func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordPropertyChange, 1, nil, "b")}
		}, 0, "remove", nil, 0, nil},
		{"too many properties", "work/employs", func() map[string]string {
			m := map[string]string{}
			for i := range MaxProperties {
				m[string(rune('a'+i))] = "v"
			}
			return m
		}(), func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordPropertyChange, 1, set("a", "w")), sign(p.issuer, iss, RecordPropertyChange, 2, set("z", "v"))}
		}, 1, "set", nil, 0, nil},
		{"malformed record", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{func(sc *SignedCard) SignedRecord {
				raw := []byte{0x08, 0x00}
				return SignedRecord{Raw: raw, Signature: p.issuer.Sign(DomainEdgeRecord, raw)}
			}}
		}, 0, "kind", nil, 0, nil},
		{"revocation with properties", "work/employs", nil, func(p edgeParties) []rec {
			return []rec{sign(p.issuer, iss, RecordRevocation, 1, set("a", "b"))}
		}, 0, "set", nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, acc := p.edge(t, tt.typ, tt.props)
			var recs []SignedRecord
			for _, r := range tt.records(p) {
				recs = append(recs, r(sc))
			}
			e, err := NewEdge(sc, acc)
			if err != nil {
				t.Fatal(err)
			}
			st, err := Derive(e, recs, edgeT)
			if tt.index >= 0 {
				var re *RecordError
				if !errors.As(err, &re) || re.Index != tt.index {
					t.Fatalf("Derive = %v, want a RecordError for record %d", err, tt.index)
				}
				wantErr(t, "Derive", err, tt.field, tt.sentinel)
				if !strings.HasPrefix(err.Error(), "record ") {
					t.Errorf("Derive error %q does not name the record", err)
				}
				// Open the same records through a proof: the same rejection.
				blob, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc, Records: recs})
				if err != nil {
					t.Fatal(err)
				}
				_, err = OpenProof(blob, edgeT)
				wantErr(t, "OpenProof", err, tt.field, tt.sentinel)
				return
			}
			if err != nil {
				t.Fatalf("Derive = %v", err)
			}
			if st.Status != tt.status || !maps.Equal(st.Properties, tt.want) {
				t.Errorf("Derive = status %v, properties %v; want %v, %v", st.Status, st.Properties, tt.status, tt.want)
			}
			if tt.status == EdgeRevoked {
				wantErr(t, "Err", st.Err(), "revocation", ErrRevoked)
				if !st.Revoked || st.RevokedAt.IsZero() {
					t.Errorf("revoked state = %+v", st)
				}
			}
		})
	}
}

// TestApplyKeepsStateOnError checks that a rejected record changes nothing,
// so that a store can apply records one at a time.
func TestApplyKeepsStateOnError(t *testing.T) {
	p := newEdgeParties(t)
	sc, acc := p.edge(t, "work/employs", map[string]string{"a": "1"})
	e, err := NewEdge(sc, acc)
	if err != nil {
		t.Fatal(err)
	}
	st := NewState(e, edgeT)
	r2, err := SignPropertyChange(p.issuer, sc, 2, edgeT, map[string]string{"a": "2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(r2); err != nil {
		t.Fatal(err)
	}
	r1, err := SignPropertyChange(p.issuer, sc, 1, edgeT, map[string]string{"a": "old"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Apply(older record)", st.Apply(r1), "sequence", ErrReplay)
	bad, err := SignPropertyChange(p.issuer, sc, 3, edgeT, map[string]string{"b": "x"}, []string{"zzz"})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Apply(remove missing)", st.Apply(bad), "remove", nil)
	if st.Sequence != 2 || st.Properties["a"] != "2" || len(st.Properties) != 1 || len(st.Records) != 1 {
		t.Errorf("state after rejected records = seq %d, %v, %d records", st.Sequence, st.Properties, len(st.Records))
	}
	if sc.Card.Properties["a"] != "1" {
		t.Error("Apply changed the card's properties")
	}
}

func TestSignRecordRules(t *testing.T) {
	p := newEdgeParties(t)
	sc, _ := p.edge(t, "shop/customer", nil)
	_, err := SignRevocation(p.recipient, sc, 1, edgeT)
	wantErr(t, "SignRevocation by the recipient of a default type", err, "signer", ErrNotAllowed)
	_, err = SignRevocation(p.other, sc, 1, edgeT)
	wantErr(t, "SignRevocation by an outsider", err, "signer", ErrNotAllowed)
	_, err = SignPropertyChange(p.recipient, sc, 1, edgeT, map[string]string{"x": "y"}, nil)
	wantErr(t, "SignPropertyChange by the recipient of a default type", err, "set", ErrNotAllowed)
	r, err := SignRevocation(p.issuer, sc, 1, time.Time{})
	if err != nil || r.Record.Time.IsZero() || r.Record.Signer != PartyIssuer || r.Record.CardID != sc.ID() {
		t.Errorf("SignRevocation by the issuer = %+v, %v", r, err)
	}
}

// TestRecordValidate checks that every limit of a record names its field.
func TestRecordValidate(t *testing.T) {
	many := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[string(rune('a'+i))] = "v"
		}
		return m
	}
	keys := func(n int) []string {
		var s []string
		for i := range n {
			s = append(s, string(rune('a'+i)))
		}
		return s
	}
	tests := []struct {
		field  string
		change func(r *Record)
	}{
		{"kind", func(r *Record) { r.Kind = 0 }},
		{"kind", func(r *Record) { r.Kind = 3 }},
		{"cardId", func(r *Record) { r.CardID = CardID{} }},
		{"sequence", func(r *Record) { r.Sequence = 0 }},
		{"time", func(r *Record) { r.Time = time.UnixMilli(0) }},
		{"time", func(r *Record) { r.Time = NoExpiry.Add(time.Millisecond) }},
		{"signer", func(r *Record) { r.Signer = 2 }},
		{"set", func(r *Record) { r.Set, r.Remove = nil, nil }},
		{"set", func(r *Record) { r.Set = many(MaxProperties + 1) }},
		{"set", func(r *Record) { r.Set = map[string]string{"k": strings.Repeat("v", MaxPropertyValueLen+1)} }},
		{"remove", func(r *Record) { r.Remove = keys(MaxProperties + 1) }},
		{"remove", func(r *Record) { r.Remove = []string{"q", "q"} }},
		{"remove", func(r *Record) { r.Remove = []string{"a"} }},
		{"remove", func(r *Record) { r.Remove = []string{"no space"} }},
		{"set", func(r *Record) { r.Kind = RecordRevocation }},
	}
	valid := func() Record {
		return Record{Kind: RecordPropertyChange, CardID: CardID{1}, Sequence: 1, Time: edgeT, Set: map[string]string{"a": "1"}, Remove: []string{"b"}}
	}
	for _, tt := range tests {
		r := valid()
		tt.change(&r)
		var fe *FieldError
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Validate after changing %s = %v, want a %q field error", tt.field, err, tt.field)
		}
	}
	r := valid()
	r.Set, r.Remove = many(MaxProperties), []string{"x", "y"}
	raw := r.encode()
	got, err := decodeRecord(raw)
	if err != nil || !maps.Equal(got.Set, r.Set) || !slices.Equal(got.Remove, r.Remove) || !bytes.Equal(got.encode(), raw) {
		t.Errorf("decodeRecord(encode(r)) = %+v, %v", got, err)
	}
	vr := valid()
	venc := vr.encode() // ends with the remove field 0x3a 1 'b'
	malformed := []struct {
		name  string
		raw   []byte
		field string
	}{
		{"remove out of order", append(venc[:len(venc)-3:len(venc)-3], 0x3a, 1, 'z', 0x3a, 1, 'b'), "remove"},
		{"remove repeated", append(bytes.Clone(venc), 0x3a, 1, 'b'), "remove"},
		{"signer unknown", []byte{0x08, 1, 0x12, 32, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0x18, 1, 0x20, 1, 0x28, 5}, "signer"},
		{"kind unknown", []byte{0x08, 9}, "kind"},
		{"short card ID", []byte{0x08, 1, 0x12, 1, 1}, "cardId"},
		{"too large", make([]byte, MaxRecordSize+1), "record"},
		{"time after year 9999", protowire.AppendVarint([]byte{0x08, 1, 0x20}, maxMillis+1), "time"},
		{"unknown field", []byte{0x08, 1, 0x40, 1}, "record"},
	}
	for _, tt := range malformed {
		_, err := decodeRecord(tt.raw)
		wantErr(t, "decodeRecord("+tt.name+")", err, tt.field, nil)
	}
}

func TestEdgeStatus(t *testing.T) {
	p := newEdgeParties(t)
	c := p.card("work/employs", nil)
	sc, err := SignCard(p.issuer, c)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := Accept(p.recipient, sc, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		now      time.Time
		status   EdgeStatus
		field    string
		sentinel error
	}{
		{"valid", edgeT, EdgeValid, "", nil},
		{"first millisecond", c.ValidFrom, EdgeValid, "", nil},
		{"last millisecond", c.ValidTo.Add(999 * time.Microsecond), EdgeValid, "", nil},
		{"not yet valid", c.ValidFrom.Add(-time.Millisecond), EdgeNotYetValid, "validFrom", ErrNotYetValid},
		{"expired", c.ValidTo.Add(time.Millisecond), EdgeExpired, "validTo", ErrExpired},
	}
	for _, tt := range tests {
		st, err := OpenProof(blob, tt.now)
		if err != nil {
			t.Fatalf("%s: OpenProof = %v", tt.name, err)
		}
		if st.Status != tt.status {
			t.Errorf("%s: status %v, want %v", tt.name, st.Status, tt.status)
		}
		if tt.sentinel == nil {
			if st.Err() != nil {
				t.Errorf("%s: Err() = %v", tt.name, st.Err())
			}
			continue
		}
		wantErr(t, tt.name, st.Err(), tt.field, tt.sentinel)
	}
	// A revocation wins over expiry.
	rev, err := SignRevocation(p.issuer, sc, 1, edgeT)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewEdge(sc, acc)
	st, err := Derive(e, []SignedRecord{*rev}, c.ValidTo.Add(time.Hour))
	if err != nil || st.Status != EdgeRevoked || st.StatusAt(edgeT) != EdgeRevoked || st.RevokedBy != PartyIssuer {
		t.Errorf("Derive(revoked, expired) = %+v, %v", st, err)
	}
	if err := (&EdgeState{Edge: e}).Err(); err == nil {
		t.Error("Err() of a state without status = nil")
	}
}

func TestOpenProofRejects(t *testing.T) {
	p := newEdgeParties(t)
	sc, acc := p.edge(t, "work/employs", nil)
	rec, err := SignRevocation(p.issuer, sc, 1, edgeT)
	if err != nil {
		t.Fatal(err)
	}
	good, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc, Records: []SignedRecord{*rec}})
	if err != nil {
		t.Fatal(err)
	}
	fields := splitFields(t, good)
	join := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	forgedCard := &SignedCard{Raw: sc.Raw, Signature: byteFlip(sc.Signature)}
	noAcc, err := EncodeProof(&EdgeProof{Card: sc})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := EncodeProof(&EdgeProof{Card: forgedCard, Acceptance: acc})
	if err != nil {
		t.Fatal(err)
	}
	_, acc2 := p.edge(t, "work/employs", nil)
	otherAcc, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc2})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		blob     []byte
		field    string
		sentinel error
	}{
		{"empty", nil, "card", nil},
		{"garbage", []byte("not a proof"), "proof", nil},
		{"trailing byte", append(bytes.Clone(good), 0), "proof", nil},
		{"unknown field", append(bytes.Clone(good), 0x32, 0), "proof", nil},
		{"fields out of order", join(fields[1], fields[0], join(fields[2:]...)), "card", nil},
		{"record with unknown field", join(join(fields[:4]...), []byte{0x2a, 2, 0x18, 1}), "records", nil},
		{"too large", make([]byte, MaxProofSize+1), "proof", nil},
		{"forged card", forged, "issuerSignature", ErrInvalidSignature},
		{"missing acceptance", noAcc, "acceptance", ErrNotAccepted},
		{"acceptance for another card", otherAcc, "cardId", ErrWrongCard},
		{"missing card signature", join(fields[0], join(fields[2:]...)), "issuerSignature", ErrInvalidSignature},
		{"missing acceptance signature", join(join(fields[:3]...), fields[4]), "recipientSignature", ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenProof(tt.blob, edgeT)
			wantErr(t, "OpenProof", err, tt.field, tt.sentinel)
		})
	}
	many := make([]SignedRecord, MaxProofRecords+1)
	_, err = EncodeProof(&EdgeProof{Card: sc, Acceptance: acc, Records: many})
	wantErr(t, "EncodeProof(too many records)", err, "records", nil)
	_, err = EncodeProof(&EdgeProof{})
	wantErr(t, "EncodeProof(no card)", err, "card", nil)
	big := bytes.Repeat(join(fields[4]), MaxProofRecords+1)
	_, err = OpenProof(join(join(fields[:4]...), big), edgeT)
	wantErr(t, "OpenProof(too many records)", err, "records", nil)
}

func TestVerifyProofs(t *testing.T) {
	p := newEdgeParties(t)
	var proofs [][]byte
	for i := range 9 {
		sc, acc := p.edge(t, "social/friend", nil)
		blob, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 {
			blob[len(blob)-1] ^= 1 // break the acceptance signature
		}
		proofs = append(proofs, blob)
	}
	for _, workers := range []int{0, 1, 2, 5, 100} {
		states, errs := VerifyProofs(proofs, edgeT, workers)
		for i := range proofs {
			if i%3 == 2 {
				if !errors.Is(errs[i], ErrInvalidSignature) || states[i] != nil {
					t.Errorf("workers %d, proof %d: %v, %v; want an invalid signature", workers, i, states[i], errs[i])
				}
			} else if errs[i] != nil || states[i].Status != EdgeValid {
				t.Errorf("workers %d, proof %d: %v", workers, i, errs[i])
			}
		}
	}
	if states, errs := VerifyProofs(nil, edgeT, 2); len(states) != 0 || len(errs) != 0 {
		t.Error("VerifyProofs(nil) returned results")
	}
}

func TestEdgeDomainsDistinct(t *testing.T) {
	seen := map[identity.Domain]bool{}
	for _, d := range []identity.Domain{DomainEdgeCard, DomainEdgeAccept, DomainEdgeRecord, identity.DomainProfile,
		identity.DomainHostingContract, identity.DomainChallenge, identity.DomainServerChallenge, identity.DomainRequest} {
		if seen[d] {
			t.Errorf("domain %q used twice", d)
		}
		seen[d] = true
	}
}

// edgeDescriptors builds the protobuf descriptors given in the comments of
// the encoders (enums as uint32, the same varint on the wire).
func edgeDescriptors(t *testing.T) protoreflect.MessageDescriptors {
	t.Helper()
	type fd struct {
		name     string
		typ      descriptorpb.FieldDescriptorProto_Type
		msg      string
		repeated bool
	}
	const (
		bytesT  = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		stringT = descriptorpb.FieldDescriptorProto_TYPE_STRING
		int64T  = descriptorpb.FieldDescriptorProto_TYPE_INT64
		uint64T = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		enumT   = descriptorpb.FieldDescriptorProto_TYPE_UINT32
		msgT    = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	msgs := []struct {
		name   string
		fields []fd
	}{
		{"Property", []fd{{"key", stringT, "", false}, {"value", stringT, "", false}}},
		{"EdgeCard", []fd{{"card_id", bytesT, "", false}, {"version", bytesT, "", false}, {"type", stringT, "", false},
			{"issuer_public_key", bytesT, "", false}, {"recipient_public_key", bytesT, "", false}, {"valid_from", int64T, "", false},
			{"valid_to", int64T, "", false}, {"created", int64T, "", false}, {"nonce", bytesT, "", false},
			{"visibility", enumT, "", false}, {"properties", msgT, ".t.Property", true}}},
		{"EdgeAcceptance", []fd{{"card_id", bytesT, "", false}, {"application_id", bytesT, "", false}}},
		{"EdgeRecord", []fd{{"kind", enumT, "", false}, {"card_id", bytesT, "", false}, {"sequence", uint64T, "", false},
			{"time", int64T, "", false}, {"signer", enumT, "", false}, {"set", msgT, ".t.Property", true}, {"remove", stringT, "", true}}},
		{"SignedRecord", []fd{{"record", bytesT, "", false}, {"signature", bytesT, "", false}}},
		{"EdgeProof", []fd{{"card", bytesT, "", false}, {"card_signature", bytesT, "", false}, {"acceptance", bytesT, "", false},
			{"acceptance_signature", bytesT, "", false}, {"records", msgT, ".t.SignedRecord", true}}},
	}
	file := &descriptorpb.FileDescriptorProto{Name: proto.String("edge_test.proto"), Package: proto.String("t"), Syntax: proto.String("proto3")}
	for _, m := range msgs {
		dp := &descriptorpb.DescriptorProto{Name: proto.String(m.name)}
		for i, f := range m.fields {
			label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
			if f.repeated {
				label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
			}
			fp := &descriptorpb.FieldDescriptorProto{Name: proto.String(f.name), Number: proto.Int32(int32(i + 1)), Type: f.typ.Enum(), Label: label.Enum()}
			if f.msg != "" {
				fp.TypeName = proto.String(f.msg)
			}
			dp.Field = append(dp.Field, fp)
		}
		file.MessageType = append(file.MessageType, dp)
	}
	fdesc, err := protodesc.NewFile(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fdesc.Messages()
}

// TestEdgeEncodingIsProtobuf checks that every record is the deterministic
// protobuf encoding of the message its encoder documents.
func TestEdgeEncodingIsProtobuf(t *testing.T) {
	p := newEdgeParties(t)
	c := p.card("social/friend", map[string]string{"b": "2", "a": "", "c": "ü"})
	c.Visibility = VisibilityPrivate
	sc, err := SignCard(p.issuer, c)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := Accept(p.recipient, sc, []byte("app"))
	if err != nil {
		t.Fatal(err)
	}
	r1, err := SignPropertyChange(p.recipient, sc, 1, edgeT, map[string]string{"z": "1", "d": ""}, []string{"c", "a"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := SignRevocation(p.issuer, sc, 2, edgeT)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc, Records: []SignedRecord{*r1, *r2}})
	if err != nil {
		t.Fatal(err)
	}
	mds := edgeDescriptors(t)
	for _, tt := range []struct {
		msg string
		raw []byte
	}{{"EdgeCard", sc.Raw}, {"EdgeAcceptance", acc.Raw}, {"EdgeRecord", r1.Raw}, {"EdgeRecord", r2.Raw}, {"EdgeProof", blob}} {
		m := dynamicpb.NewMessage(mds.ByName(protoreflect.Name(tt.msg)))
		if err := proto.Unmarshal(tt.raw, m); err != nil {
			t.Fatalf("%s: proto.Unmarshal = %v", tt.msg, err)
		}
		if len(m.GetUnknown()) != 0 {
			t.Errorf("%s: unknown fields %x", tt.msg, m.GetUnknown())
		}
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil || !bytes.Equal(again, tt.raw) {
			t.Errorf("%s: protobuf re-encoding differs:\n got %x\nwant %x", tt.msg, again, tt.raw)
		}
	}
}
