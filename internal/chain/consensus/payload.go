package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/iop-go/iop/internal/chain/types"
)

// Payload kinds: the first byte of a transaction's payload.
const (
	KindAdmin    byte = 0x01
	KindProposal byte = 0x02
	KindVote     byte = 0x03
)

// Admin operations.
const (
	AdminAddLicence    byte = 1
	AdminRemoveLicence byte = 2
	AdminEnableCap     byte = 3
	AdminDisableCap    byte = 4
)

// MaxBeneficiaries bounds a proposal's beneficiary list.
const MaxBeneficiaries = 8

// Admin is an administrator operation.
type Admin struct {
	Op     byte
	Key    [32]byte // the miner's address (network ID of its key) for AdminAddLicence / AdminRemoveLicence
	Factor uint8    // cap factor for AdminEnableCap (1..255)
}

// Beneficiary is paid Amount base units per block of a contract.
type Beneficiary struct {
	Address types.Address
	Amount  uint64
}

// Proposal is a contribution-contract proposal. Its deposit is output 0 of
// the proposing transaction and its ID is that transaction's ID.
type Proposal struct {
	Reward        uint64 // base units per block, the sum of the beneficiaries' amounts
	Duration      uint64 // blocks of execution
	Beneficiaries []Beneficiary
}

// Vote is a yes/no vote on a contract; its weight is output 0 of the voting
// transaction.
type Vote struct {
	Contract types.Hash
	Yes      bool
}

// Payload is a decoded transaction payload: exactly one of the fields is
// set, or none for an empty payload.
type Payload struct {
	Admin    *Admin
	Proposal *Proposal
	Vote     *Vote
}

// ErrPayload reports a payload that is not canonical.
var ErrPayload = errors.New("bad payload")

// Encode returns the canonical encoding of the payload (nil when empty).
func (p *Payload) Encode() []byte {
	switch {
	case p.Admin != nil:
		a := p.Admin
		b := []byte{KindAdmin, a.Op}
		switch a.Op {
		case AdminAddLicence, AdminRemoveLicence:
			b = append(b, a.Key[:]...)
		case AdminEnableCap:
			b = append(b, a.Factor)
		}
		return b
	case p.Proposal != nil:
		pr := p.Proposal
		b := []byte{KindProposal}
		b = binary.AppendUvarint(b, pr.Reward)
		b = binary.AppendUvarint(b, pr.Duration)
		b = binary.AppendUvarint(b, uint64(len(pr.Beneficiaries)))
		for _, be := range pr.Beneficiaries {
			b = append(b, be.Address[:]...)
			b = binary.AppendUvarint(b, be.Amount)
		}
		return b
	case p.Vote != nil:
		b := append([]byte{KindVote}, p.Vote.Contract[:]...)
		if p.Vote.Yes {
			return append(b, 1)
		}
		return append(b, 0)
	}
	return nil
}

type payloadReader struct {
	b   []byte
	err error
}

func (r *payloadReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrPayload, fmt.Sprintf(format, args...))
	}
}

func (r *payloadReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("%s: bad varint", what)
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		r.fail("%s: non-minimal varint", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// DecodePayload decodes a transaction payload strictly: known kind and
// operation, exact length, minimal varints, no trailing bytes. An empty
// payload decodes to the empty Payload. Semantic checks (beneficiary sums,
// bounds from the network parameters) are consensus rules applied later.
func DecodePayload(b []byte) (Payload, error) {
	var p Payload
	if len(b) == 0 {
		return p, nil
	}
	if len(b) > types.MaxPayload {
		return p, fmt.Errorf("%w: %d bytes exceed %d", ErrPayload, len(b), types.MaxPayload)
	}
	r := &payloadReader{b: b[1:]}
	switch b[0] {
	case KindAdmin:
		a := &Admin{}
		op := r.take(1, "admin op")
		if r.err == nil {
			a.Op = op[0]
			switch a.Op {
			case AdminAddLicence, AdminRemoveLicence:
				copy(a.Key[:], r.take(32, "admin key"))
			case AdminEnableCap:
				if f := r.take(1, "cap factor"); f != nil {
					a.Factor = f[0]
					if a.Factor == 0 {
						r.fail("cap factor 0")
					}
				}
			case AdminDisableCap:
			default:
				r.fail("unknown admin op %d", a.Op)
			}
		}
		p.Admin = a
	case KindProposal:
		pr := &Proposal{Reward: r.uvarint("reward"), Duration: r.uvarint("duration")}
		n := r.uvarint("beneficiary count")
		if r.err == nil && (n == 0 || n > MaxBeneficiaries) {
			r.fail("%d beneficiaries, want 1..%d", n, MaxBeneficiaries)
		}
		for i := 0; i < int(n) && r.err == nil; i++ {
			var be Beneficiary
			copy(be.Address[:], r.take(32, "beneficiary address"))
			be.Amount = r.uvarint("beneficiary amount")
			pr.Beneficiaries = append(pr.Beneficiaries, be)
		}
		p.Proposal = pr
	case KindVote:
		v := &Vote{}
		copy(v.Contract[:], r.take(32, "vote contract"))
		if y := r.take(1, "vote choice"); y != nil {
			switch y[0] {
			case 0:
			case 1:
				v.Yes = true
			default:
				r.fail("vote choice %d, want 0 or 1", y[0])
			}
		}
		p.Vote = v
	default:
		return Payload{}, fmt.Errorf("%w: unknown kind 0x%02x", ErrPayload, b[0])
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return Payload{}, r.err
	}
	return p, nil
}
