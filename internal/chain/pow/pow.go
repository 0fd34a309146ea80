// Package pow implements the proof-of-work arithmetic of the IoP token
// chain. It is bitcoin-compatible: targets are carried in block headers in
// bitcoin's compact "nBits" encoding, block hashes are double-SHA-256 digests
// interpreted as little-endian 256-bit integers, the work of a block is
// 2^256/(target+1), difficulty is retargeted with bitcoin's clamped
// proportional rule, and the past median time is the middle element of the
// sorted timestamps of the previous blocks. The behaviour matches btcd's
// blockchain package (difficulty.go, mediantime.go) value for value.
//
// The package is pure arithmetic: it knows nothing about block or header
// types, and network parameters (the proof-of-work limit, the target
// timespan) are passed in by the caller.
package pow

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
)

var (
	bigOne = big.NewInt(1)
	// oneLsh256 is 2^256, the numerator of the work formula.
	oneLsh256 = new(big.Int).Lsh(bigOne, 256)
)

// CompactToBig decodes bitcoin's compact target representation.
//
// The compact form is a 32-bit floating-point-like number: the high byte is
// an exponent E (the length of the value in bytes), bit 23 (0x00800000) is a
// sign bit and the low 23 bits are the mantissa M. The value is
// M * 256^(E-3) (for E < 3 the mantissa is shifted right, dropping its low
// bytes), negated when the sign bit is set.
//
// Like btcd (and unlike Bitcoin Core's SetCompact) there is no separate
// overflow flag: exponents beyond 32 simply produce values of 2^256 or more,
// which callers reject by comparing against the proof-of-work limit (see
// CheckProof). A set sign bit with a zero mantissa ("negative zero") decodes
// to 0.
func CompactToBig(bits uint32) *big.Int {
	mantissa := int64(bits & 0x007fffff)
	negative := bits&0x00800000 != 0
	exponent := uint(bits >> 24)

	var n *big.Int
	if exponent <= 3 {
		n = big.NewInt(mantissa >> (8 * (3 - exponent)))
	} else {
		n = big.NewInt(mantissa)
		n.Lsh(n, 8*(exponent-3))
	}
	if negative {
		n.Neg(n)
	}
	return n
}

// BigToCompact encodes n in bitcoin's compact representation (see
// CompactToBig). Only the three most significant bytes of |n| are kept, so the
// encoding is lossy for values with more significant bits. When the top
// mantissa byte would have its high bit set (which would read as the sign
// bit) the mantissa is shifted right by one byte and the exponent increased.
// Negative values set the sign bit; zero encodes as 0.
//
// Exactly like btcd, values of 256^255 or more cannot be represented: their
// byte length does not fit the 8-bit exponent and the result is the exponent
// truncated to 8 bits. Such values never arise from CompactToBig or from a
// target capped at a proof-of-work limit below 2^256.
func BigToCompact(n *big.Int) uint32 {
	if n.Sign() == 0 {
		return 0
	}
	abs := new(big.Int).Abs(n)
	exponent := uint((abs.BitLen() + 7) / 8)
	var mantissa uint32
	if exponent <= 3 {
		mantissa = uint32(abs.Uint64()) << (8 * (3 - exponent))
	} else {
		mantissa = uint32(abs.Rsh(abs, 8*(exponent-3)).Uint64())
	}
	if mantissa&0x00800000 != 0 {
		mantissa >>= 8
		exponent++
	}
	compact := uint32(exponent<<24) | mantissa
	if n.Sign() < 0 {
		compact |= 0x00800000
	}
	return compact
}

// CalcWork returns the expected number of hashes needed to find a block
// whose hash is at most the target encoded by bits: 2^256 / (target+1).
// A zero or negative target yields zero work. The sum of CalcWork over a
// chain is its cumulative work, used to choose the best chain.
func CalcWork(bits uint32) *big.Int {
	target := CompactToBig(bits)
	if target.Sign() <= 0 {
		return new(big.Int)
	}
	denominator := target.Add(target, bigOne)
	return denominator.Div(oneLsh256, denominator)
}

// HashToBig interprets a 32-byte hash the way bitcoin does: as a 256-bit
// unsigned little-endian integer (hash[0] is the least significant byte).
func HashToBig(hash [32]byte) *big.Int {
	var be [32]byte
	for i := range hash {
		be[31-i] = hash[i]
	}
	return new(big.Int).SetBytes(be[:])
}

// Errors returned (wrapped) by CheckProof. Use errors.Is to tell them apart.
var (
	// ErrTargetNotPositive: the compact bits decode to zero or a negative
	// target.
	ErrTargetNotPositive = errors.New("pow: target is not positive")
	// ErrTargetAboveLimit: the target is easier than the network's
	// proof-of-work limit.
	ErrTargetAboveLimit = errors.New("pow: target above proof-of-work limit")
	// ErrHashAboveTarget: the block hash does not meet the target ("high
	// hash").
	ErrHashAboveTarget = errors.New("pow: hash above target")
)

// CheckProof checks that hash satisfies the proof of work claimed by bits on
// a network whose easiest allowed target is powLimit. The target must lie in
// (0, powLimit] and the hash, read as HashToBig does, must be at most the
// target. The returned error wraps ErrTargetNotPositive,
// ErrTargetAboveLimit or ErrHashAboveTarget. CheckProof does not check that
// bits is the difficulty the chain requires at this height; that is the
// caller's job (see Retarget).
func CheckProof(hash [32]byte, bits uint32, powLimit *big.Int) error {
	target := CompactToBig(bits)
	if target.Sign() <= 0 {
		return fmt.Errorf("%w: bits %08x decode to %x", ErrTargetNotPositive, bits, target)
	}
	if target.Cmp(powLimit) > 0 {
		return fmt.Errorf("%w: target %064x (bits %08x) exceeds limit %064x",
			ErrTargetAboveLimit, target, bits, powLimit)
	}
	if h := HashToBig(hash); h.Cmp(target) > 0 {
		return fmt.Errorf("%w: hash %064x exceeds target %064x (bits %08x)",
			ErrHashAboveTarget, h, target, bits)
	}
	return nil
}

// RetargetFactor bounds a single difficulty adjustment: the measured timespan
// is clamped to [target/RetargetFactor, target*RetargetFactor], so the target
// moves by at most this factor in either direction per retarget period.
const RetargetFactor = 4

// Retarget computes the compact target of the first block of a new retarget
// period with bitcoin's rule. prevBits is the target of the last block of the
// finished period, actualTimespan the time it took in seconds (timestamp of
// its last block minus timestamp of its first block, as bitcoin and btcd
// measure it) and targetTimespan the intended duration in seconds.
//
// The actual timespan is clamped to [targetTimespan/4, targetTimespan*4]
// (integer division), the new target is old*clamped/targetTimespan
// (Euclidean integer division of the decoded old target, as btcd does),
// capped at powLimit and re-encoded with BigToCompact. targetTimespan must be positive; Retarget panics
// otherwise (network parameters are validated at start-up).
func Retarget(prevBits uint32, actualTimespan, targetTimespan int64, powLimit *big.Int) uint32 {
	if targetTimespan <= 0 {
		panic(fmt.Sprintf("pow: Retarget with non-positive target timespan %d", targetTimespan))
	}
	minTimespan := targetTimespan / RetargetFactor
	maxTimespan := targetTimespan * RetargetFactor
	adjusted := min(max(actualTimespan, minTimespan), maxTimespan)

	target := CompactToBig(prevBits)
	target.Mul(target, big.NewInt(adjusted))
	target.Div(target, big.NewInt(targetTimespan))
	if target.Cmp(powLimit) > 0 {
		target.Set(powLimit)
	}
	return BigToCompact(target)
}

// MedianTime returns the median of the given block timestamps, which the
// caller takes from the up to MedianTimeBlocks (11) most recent blocks. As
// in btcd, the timestamps are sorted and the element at index len/2 is
// returned, so for an even count the upper of the two middle values is the
// median. The input slice is not modified. An empty slice yields 0.
func MedianTime(timestamps []int64) int64 {
	if len(timestamps) == 0 {
		return 0
	}
	sorted := slices.Clone(timestamps)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}
