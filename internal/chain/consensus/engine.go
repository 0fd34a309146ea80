package consensus

import (
	"errors"
	"time"

	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

// HeaderChain is a chain of headers ending at some block: the main chain or
// a side chain that branches off it.
type HeaderChain interface {
	// Height is the height of the chain's last block.
	Height() int64
	// HeaderAt returns the header at height (0 <= height <= Height()).
	HeaderAt(height int64) *types.Header
}

// Engine decides who may produce a block and how its work is proven. The
// ledger and contract rules do not depend on it.
type Engine interface {
	// NextBits is the difficulty the block after tip must carry.
	NextBits(p *chaincfg.Params, tip HeaderChain) uint32
	// CheckProof checks h's proof of work on its own (no chain context):
	// enough to drop junk before a block's parent is known.
	CheckProof(p *chaincfg.Params, h *types.Header) error
	// CheckHeader checks proof and difficulty of h on top of its parent
	// chain (context-free of UTXO state).
	CheckHeader(p *chaincfg.Params, h *types.Header, parent HeaderChain) error
	// CheckProducer checks who produced b given the state before it.
	CheckProducer(p *chaincfg.Params, b *types.Block, st *State) error
}

// LicensedPoW is the engine of the 2017 IoP chain: SHA-256d proof of work
// with bitcoin's retarget, mined only by licensed keys, each capped in the
// rolling window.
type LicensedPoW struct{}

var _ Engine = LicensedPoW{}

// NextBits implements bitcoin's retarget every RetargetInterval blocks (or
// none when NoRetarget is set).
func (LicensedPoW) NextBits(p *chaincfg.Params, tip HeaderChain) uint32 {
	th := tip.Height()
	last := tip.HeaderAt(th)
	if p.NoRetarget || p.RetargetInterval <= 0 || (th+1)%p.RetargetInterval != 0 {
		return last.Bits
	}
	first := tip.HeaderAt(th - (p.RetargetInterval - 1))
	timespan := int64(p.TargetTimespan / time.Second)
	return pow.Retarget(last.Bits, last.Time-first.Time, timespan, p.PowLimit)
}

// CheckProof checks the hash against the target claimed by bits.
func (LicensedPoW) CheckProof(p *chaincfg.Params, h *types.Header) error {
	err := pow.CheckProof(h.Hash(), h.Bits, p.PowLimit)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pow.ErrHashAboveTarget):
		return ruleErr(ErrHighHash, "%v", err)
	default:
		return ruleErr(ErrBadBits, "%v", err)
	}
}

// CheckHeader checks bits against NextBits and the proof of work.
func (e LicensedPoW) CheckHeader(p *chaincfg.Params, h *types.Header, parent HeaderChain) error {
	if want := e.NextBits(p, parent); h.Bits != want {
		return ruleErr(ErrUnexpectedDifficulty, "block at height %d has bits %08x, want %08x", parent.Height()+1, h.Bits, want)
	}
	return e.CheckProof(p, h)
}

// CheckProducer applies the licence and cap rules from
// LicenceActivationHeight on: the address of the coinbase's miner key must hold a licence
// in the state before the block, and when the cap is enabled it must have
// mined fewer than Cap blocks of the last CapWindow. No key is exempt.
func (LicensedPoW) CheckProducer(p *chaincfg.Params, b *types.Block, st *State) error {
	height := st.Height() + 1
	if height < p.LicenceActivationHeight {
		return nil
	}
	// Licences name addresses (the network ID of the miner's key), as the
	// 2017 chain licensed addresses; the coinbase proves the key.
	miner := [32]byte(types.AddressOf(b.Txs[0].Coinbase.Miner[:]))
	if !st.Licensed(miner) {
		return ruleErr(ErrUnlicensedMiner, "block %d: miner address %x holds no licence", height, miner[:8])
	}
	if c := Cap(p, st); c > 0 {
		if n := st.WindowCount(miner); uint64(n) >= c {
			return ruleErr(ErrMinerCapped, "block %d: miner %x mined %d of the last %d blocks, cap %d", height, miner[:8], n, p.CapWindow, c)
		}
	}
	return nil
}

// Cap is the most blocks a licensed miner may have among the last
// CapWindow: factor × CapWindow / licences rounded up, or 0 when the cap is
// disabled or nobody is licensed. Rounding up (the 2017 chain rounded
// down) keeps the chain live: licences × cap >= CapWindow for every factor
// >= 1, so the licensed miners together can always fill a window.
func Cap(p *chaincfg.Params, st *State) uint64 {
	f, n := uint64(st.CapFactor()), uint64(st.LicenceCount())
	if f == 0 || n == 0 || p.CapWindow <= 0 {
		return 0
	}
	return (f*uint64(p.CapWindow) + n - 1) / n
}

// MaxTimeWarp is how far before its parent the first block of a retarget
// period may be dated.
const MaxTimeWarp = 2 * time.Hour

// CheckTime checks h's timestamp: after the median time of the last
// MedianTimeBlocks blocks of parent and at most MaxTimeOffset after now.
//
// On retargeting networks it also closes the time-warp attack (a period's
// first block backdated far before its parent, so that every period
// measures a long timespan and difficulty falls without bound while the
// median time past barely moves), with the two rules BIP54 proposes for
// bitcoin: the first block of a period may be at most MaxTimeWarp before
// its parent, and the last block of a period may not be earlier than the
// period's first block (no negative timespans).
func CheckTime(p *chaincfg.Params, h *types.Header, parent HeaderChain, now time.Time) error {
	mtp := MedianTimePast(p, parent)
	if h.Time <= mtp {
		return ruleErr(ErrTimeTooOld, "timestamp %d not after median time past %d", h.Time, mtp)
	}
	if limit := now.Add(p.MaxTimeOffset).Unix(); h.Time > limit {
		return ruleErr(ErrTimeTooNew, "timestamp %d beyond now+%v (%d)", h.Time, p.MaxTimeOffset, limit)
	}
	if p.NoRetarget || p.RetargetInterval <= 1 {
		return nil
	}
	height := parent.Height() + 1
	if height%p.RetargetInterval == 0 {
		prev := parent.HeaderAt(parent.Height()).Time
		if min := prev - int64(MaxTimeWarp/time.Second); h.Time < min {
			return ruleErr(ErrTimeWarp, "first block of a retarget period dated %d, more than %v before its parent (%d)", h.Time, MaxTimeWarp, prev)
		}
	}
	if (height+1)%p.RetargetInterval == 0 {
		first := parent.HeaderAt(height - (p.RetargetInterval - 1)).Time
		if h.Time < first {
			return ruleErr(ErrTimeWarp, "last block of a retarget period dated %d, before the period's first block (%d)", h.Time, first)
		}
	}
	return nil
}

// MinTime is the earliest timestamp the block after parent may carry.
func MinTime(p *chaincfg.Params, parent HeaderChain) int64 {
	t := MedianTimePast(p, parent) + 1
	if p.NoRetarget || p.RetargetInterval <= 1 {
		return t
	}
	height := parent.Height() + 1
	if height%p.RetargetInterval == 0 {
		t = max(t, parent.HeaderAt(parent.Height()).Time-int64(MaxTimeWarp/time.Second))
	}
	if (height+1)%p.RetargetInterval == 0 {
		t = max(t, parent.HeaderAt(height-(p.RetargetInterval-1)).Time)
	}
	return t
}

// MedianTimePast is the median timestamp of the last MedianTimeBlocks
// blocks of chain.
func MedianTimePast(p *chaincfg.Params, chain HeaderChain) int64 {
	n := int64(p.MedianTimeBlocks)
	top := chain.Height()
	ts := make([]int64, 0, n)
	for h := top; h >= 0 && h > top-n; h-- {
		ts = append(ts, chain.HeaderAt(h).Time)
	}
	return pow.MedianTime(ts)
}
