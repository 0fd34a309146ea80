package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

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
	r := types.NewReader(b[1:], ErrPayload)
	switch b[0] {
	case KindAdmin:
		a := &Admin{}
		op := r.Bytes(1, "admin op")
		if r.Err() == nil {
			a.Op = op[0]
			switch a.Op {
			case AdminAddLicence, AdminRemoveLicence:
				copy(a.Key[:], r.Bytes(32, "admin key"))
			case AdminEnableCap:
				if f := r.Bytes(1, "cap factor"); f != nil {
					a.Factor = f[0]
					if a.Factor == 0 {
						r.Fail("cap factor 0")
					}
				}
			case AdminDisableCap:
			default:
				r.Fail("unknown admin op %d", a.Op)
			}
		}
		p.Admin = a
	case KindProposal:
		pr := &Proposal{Reward: r.Uvarint("reward", math.MaxUint64), Duration: r.Uvarint("duration", math.MaxUint64)}
		n := r.Uvarint("beneficiary count", math.MaxUint64)
		if r.Err() == nil && (n == 0 || n > MaxBeneficiaries) {
			r.Fail("%d beneficiaries, want 1..%d", n, MaxBeneficiaries)
		}
		for i := 0; i < int(n) && r.Err() == nil; i++ {
			var be Beneficiary
			copy(be.Address[:], r.Bytes(32, "beneficiary address"))
			be.Amount = r.Uvarint("beneficiary amount", math.MaxUint64)
			pr.Beneficiaries = append(pr.Beneficiaries, be)
		}
		p.Proposal = pr
	case KindVote:
		v := &Vote{}
		copy(v.Contract[:], r.Bytes(32, "vote contract"))
		if y := r.Bytes(1, "vote choice"); y != nil {
			switch y[0] {
			case 0:
			case 1:
				v.Yes = true
			default:
				r.Fail("vote choice %d, want 0 or 1", y[0])
			}
		}
		p.Vote = v
	default:
		return Payload{}, fmt.Errorf("%w: unknown kind 0x%02x", ErrPayload, b[0])
	}
	if r.Err() == nil && len(r.Rest()) > 0 {
		r.Fail("%d trailing bytes", len(r.Rest()))
	}
	if r.Err() != nil {
		return Payload{}, r.Err()
	}
	return p, nil
}
