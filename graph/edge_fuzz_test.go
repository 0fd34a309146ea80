package graph

import (
	"bytes"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
)

// fuzzEdge returns a signed card with properties, its acceptance and two
// records, for fuzz seeds.
func fuzzEdge(f *testing.F) (edgeParties, *SignedCard, *SignedAcceptance, []SignedRecord) {
	p := newEdgeParties(f)
	sc, acc := p.edge(f, "work/employs", map[string]string{"role": "dev", "x": ""})
	r1, err := SignPropertyChange(p.issuer, sc, 1, edgeT, map[string]string{"role": "lead"}, []string{"x"})
	if err != nil {
		f.Fatal(err)
	}
	r2, err := SignRevocation(p.recipient, sc, 2, edgeT)
	if err != nil {
		f.Fatal(err)
	}
	return p, sc, acc, []SignedRecord{*r1, *r2}
}

// FuzzOpenCard checks that the card decoder accepts only canonical
// encodings of valid cards, whose ID matches, and that OpenCard accepts only
// correctly signed ones.
func FuzzOpenCard(f *testing.F) {
	_, sc, _, _ := fuzzEdge(f)
	f.Add(sc.Raw, sc.Signature)
	f.Add(sc.Raw[:len(sc.Raw)-1], sc.Signature)
	f.Add([]byte{0x0a, 0x20}, []byte{})
	f.Fuzz(func(t *testing.T, raw, sig []byte) {
		c, id, err := decodeCard(raw)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("decodeCard accepted an invalid card: %v", err)
			}
			enc := c.encode()
			copy(enc[cardIDOffset:], id[:])
			if !bytes.Equal(enc, raw) {
				t.Fatalf("decodeCard accepted a non-canonical encoding:\n got %x\nwant %x", raw, enc)
			}
		}
		got, err := OpenCard(raw, sig, nil)
		if err != nil {
			return
		}
		gid := got.ID()
		if identity.Verify(got.Card.Issuer, DomainEdgeCard, gid[:], sig) != nil {
			t.Fatal("OpenCard accepted a bad signature")
		}
	})
}

// FuzzOpenAcceptance checks the acceptance decoder the same way.
func FuzzOpenAcceptance(f *testing.F) {
	p, sc, acc, _ := fuzzEdge(f)
	f.Add(acc.Raw)
	f.Add([]byte{0x0a, 0x20})
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := decodeAcceptance(raw)
		if err == nil {
			if !bytes.Equal(a.encode(), raw) {
				t.Fatalf("decodeAcceptance accepted a non-canonical encoding %x", raw)
			}
		}
		// Signed by the recipient, so that OpenAcceptance decodes it.
		got, err := OpenAcceptance(raw, p.recipient.Sign(DomainEdgeAccept, raw), sc, nil)
		if err == nil && got.Acceptance.CardID != sc.ID() {
			t.Fatal("OpenAcceptance accepted an acceptance of another card")
		}
	})
}

// FuzzOpenRecord checks the record decoder, and that applying a record
// signed by the issuer never breaks the state's invariants.
func FuzzOpenRecord(f *testing.F) {
	p, sc, acc, recs := fuzzEdge(f)
	for _, r := range recs {
		f.Add(r.Raw)
	}
	f.Add([]byte{0x08, 0x01})
	e, err := NewEdge(sc, acc)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := decodeRecord(raw)
		if err == nil {
			if err := r.Validate(); err != nil {
				t.Fatalf("decodeRecord accepted an invalid record: %v", err)
			}
			if !bytes.Equal(r.encode(), raw) {
				t.Fatalf("decodeRecord accepted a non-canonical encoding %x", raw)
			}
		}
		st := NewState(e, edgeT)
		rec := SignedRecord{Raw: raw, Signature: p.issuer.Sign(DomainEdgeRecord, raw)}
		if err := st.Apply(&rec); err != nil {
			if st.Sequence != 0 || len(st.Records) != 0 || st.Revoked {
				t.Fatalf("a rejected record changed the state: %+v", st)
			}
			return
		}
		if st.Sequence == 0 || len(st.Properties) > MaxProperties || st.Records[0].Record.Signer != PartyIssuer {
			t.Fatalf("Apply accepted a record into a bad state: %+v", st)
		}
		if err := validateProperties("properties", st.Properties); err != nil {
			t.Fatalf("Apply produced invalid properties: %v", err)
		}
	})
}

// FuzzOpenProof checks that OpenProof accepts only proofs that re-encode
// to the same bytes and whose parts all verify.
func FuzzOpenProof(f *testing.F) {
	_, sc, acc, recs := fuzzEdge(f)
	blob, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc, Records: recs})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add(blob[:len(blob)-10])
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodeProof(b); err == nil {
			again, err := EncodeProof(&EdgeProof{Card: &SignedCard{Raw: p.card, Signature: p.cardSig},
				Acceptance: acceptanceOrNil(p.acc, p.accSig), Records: p.records})
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("decodeProof accepted a non-canonical encoding %x (%v)", b, err)
			}
		}
		st, err := OpenProof(b, edgeT)
		if err != nil {
			return
		}
		if st.Edge.Acceptance == nil && !st.Rules.IssuerOnly {
			t.Fatal("OpenProof accepted an edge without acceptance")
		}
		again, err := EncodeProof(st.Proof())
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("OpenProof result re-encodes differently (%v)", err)
		}
		if _, err := OpenProof(again, time.Time{}); err != nil {
			t.Fatalf("a proof OpenProof accepted fails to open again: %v", err)
		}
	})
}

// acceptanceOrNil returns the acceptance with raw and sig, or nil if both
// are empty.
func acceptanceOrNil(raw, sig []byte) *SignedAcceptance {
	if len(raw) == 0 && len(sig) == 0 {
		return nil
	}
	return &SignedAcceptance{Raw: raw, Signature: sig}
}
