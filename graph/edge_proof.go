package graph

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Limits of edge proofs.
const (
	MaxProofRecords = 256     // change records in one proof
	MaxProofSize    = 1 << 20 // bytes
)

// EdgeProof is everything needed to check an edge offline: the signed card,
// the acceptance (nil for a one-sided type) and the change records in
// sequence order.
type EdgeProof struct {
	Card       *SignedCard
	Acceptance *SignedAcceptance
	Records    []SignedRecord
}

// Proof returns the proof of the state s: its card, acceptance and the
// records applied.
func (s *EdgeState) Proof() *EdgeProof {
	return &EdgeProof{Card: s.Edge.Card, Acceptance: s.Edge.Acceptance, Records: s.Records}
}

// EncodeProof encodes p as one blob, from the exact signed bytes of its
// parts:
//
//	message EdgeProof {
//	  bytes card = 1;
//	  bytes card_signature = 2;
//	  bytes acceptance = 3;           // absent for a one-sided edge
//	  bytes acceptance_signature = 4; // absent for a one-sided edge
//	  repeated SignedRecord records = 5;
//	}
//	message SignedRecord { bytes record = 1; bytes signature = 2; }
//
// It checks sizes and counts only; OpenProof verifies.
func EncodeProof(p *EdgeProof) ([]byte, error) {
	if p == nil || p.Card == nil || len(p.Card.Raw) == 0 {
		return nil, fieldErr("card", "missing")
	}
	if len(p.Records) > MaxProofRecords {
		return nil, fieldErr("records", "%d records, limit %d", len(p.Records), MaxProofRecords)
	}
	size := protowire.SizeBytes(len(p.Card.Raw)) + protowire.SizeBytes(len(p.Card.Signature)) + 2
	if p.Acceptance != nil {
		size += protowire.SizeBytes(len(p.Acceptance.Raw)) + protowire.SizeBytes(len(p.Acceptance.Signature)) + 2
	}
	for i := range p.Records {
		size += 1 + protowire.SizeBytes(signedRecordSize(&p.Records[i]))
	}
	if size > MaxProofSize {
		return nil, fieldErr("proof", "%d bytes, limit %d", size, MaxProofSize)
	}
	b := make([]byte, 0, size)
	b = appendBytesField(b, 1, p.Card.Raw)
	b = appendBytesField(b, 2, p.Card.Signature)
	if p.Acceptance != nil {
		b = appendBytesField(b, 3, p.Acceptance.Raw)
		b = appendBytesField(b, 4, p.Acceptance.Signature)
	}
	for i := range p.Records {
		r := &p.Records[i]
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(signedRecordSize(r)))
		b = appendBytesField(b, 1, r.Raw)
		b = appendBytesField(b, 2, r.Signature)
	}
	return b, nil
}

// signedRecordSize is the size of the SignedRecord message of r.
func signedRecordSize(r *SignedRecord) int {
	n := 0
	if len(r.Raw) > 0 {
		n += 1 + protowire.SizeBytes(len(r.Raw))
	}
	if len(r.Signature) > 0 {
		n += 1 + protowire.SizeBytes(len(r.Signature))
	}
	return n
}

var (
	proofSpecs = []fieldSpec{
		{name: "card", typ: protowire.BytesType},
		{name: "cardSignature", typ: protowire.BytesType},
		{name: "acceptance", typ: protowire.BytesType},
		{name: "acceptanceSignature", typ: protowire.BytesType},
		{name: "records", typ: protowire.BytesType, repeated: true},
	}
	signedRecordSpecs = []fieldSpec{
		{name: "record", typ: protowire.BytesType},
		{name: "signature", typ: protowire.BytesType},
	}
)

// rawProof is the undecoded parts of a proof.
type rawProof struct {
	card, cardSig, acc, accSig []byte
	records                    []SignedRecord
}

// decodeProof splits a proof into its parts without verifying them.
func decodeProof(b []byte) (rawProof, error) {
	var p rawProof
	if len(b) > MaxProofSize {
		return p, fieldErr("proof", "%d bytes, limit %d", len(b), MaxProofSize)
	}
	err := decodeFields(b, "proof", proofSpecs, func(num int, _ uint64, s []byte) error {
		switch num {
		case 1:
			p.card = s
		case 2:
			p.cardSig = s
		case 3:
			p.acc = s
		case 4:
			p.accSig = s
		case 5:
			if len(p.records) >= MaxProofRecords {
				return fieldErr("records", "more than %d records", MaxProofRecords)
			}
			var r SignedRecord
			err := decodeFields(s, "records", signedRecordSpecs, func(num int, _ uint64, s []byte) error {
				if num == 1 {
					r.Raw = s
				} else {
					r.Signature = s
				}
				return nil
			})
			if err != nil {
				return fieldErr("records", "record %d: %v", len(p.records), err)
			}
			p.records = append(p.records, r)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	if len(p.card) == 0 {
		return p, fieldErr("card", "missing")
	}
	return p, nil
}

// OpenProof decodes an edge proof made by EncodeProof, verifies the card,
// the acceptance and every record, and returns the edge's state at time now.
// An authentic proof of an expired, not yet valid or revoked edge is not an
// error: check the state's Status, or Err. The state refers to b; do not
// modify it afterwards.
func OpenProof(b []byte, now time.Time) (*EdgeState, error) {
	p, err := decodeProof(b)
	if err != nil {
		return nil, err
	}
	e, err := OpenEdge(p.card, p.cardSig, p.acc, p.accSig)
	if err != nil {
		return nil, err
	}
	return Derive(e, p.records, now)
}

// VerifyProofs opens every proof with OpenProof at time now, using up to
// workers goroutines (GOMAXPROCS if workers < 1), and returns the states and
// errors by index.
func VerifyProofs(proofs [][]byte, now time.Time, workers int) ([]*EdgeState, []error) {
	states := make([]*EdgeState, len(proofs))
	errs := make([]error, len(proofs))
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(proofs))
	if workers <= 1 {
		for i, b := range proofs {
			states[i], errs[i] = OpenProof(b, now)
		}
		return states, errs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(proofs) {
					return
				}
				states[i], errs[i] = OpenProof(proofs[i], now)
			}
		})
	}
	wg.Wait()
	return states, errs
}
