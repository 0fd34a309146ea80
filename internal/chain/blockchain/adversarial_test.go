package blockchain

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

// The time/difficulty, signature, governance and orphan cases of chain.md
// §7b that TestLedgerBlocks, TestContractBlocks and TestLicenceBlocks do
// not cover.

// retargetParams: the test parameters with a retarget every 8 blocks at a
// 40 s spacing, starting at genesis bits 0x20100000 (a target of 2^252,
// 1/8 of the limit, about 16 hashes a block) so that the target can move
// both ways.
func retargetParams() *chaincfg.Params {
	p := chaintest.Params()
	p.NoRetarget = false
	p.RetargetInterval = 8
	p.TargetSpacing = 40 * time.Second
	p.TargetTimespan = 8 * p.TargetSpacing
	p.Genesis.Bits = 0x20100000
	return p
}

// withBits rebuilds b with other bits and mines it again.
func withBits(g *chaintest.Builder, b *types.Block, bits uint32) *types.Block {
	b.Header.Bits = bits
	g.Mine(b)
	return b
}

// at is a spec for a block at time t.
func at(t int64) chaintest.Spec { return chaintest.Spec{Time: t} }

// TestDifficultyRules covers min-difficulty abuse and other bits than the
// required ones (easier, harder, the same target encoded another way, no
// testnet-style minimum-difficulty exception after a long gap, negative
// and zero targets), and the difficulty at a period boundary across
// reorganisations: each branch retargets over its own timestamps, a
// block carrying the other branch's bits is rejected on both sides, and
// the bits survive a restart.
func TestDifficultyRules(t *testing.T) {
	p := retargetParams()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, p)
	g := h.g
	span := int64(p.TargetTimespan / time.Second)
	common := h.chain(g.Genesis, 4, chaintest.Spec{}) // heights 1..4, 10 s apart
	b4 := common[3]

	// Mid-period: the parent's bits, exactly.
	next := func(parent *types.Block, spec chaintest.Spec) *types.Block { return g.Next(parent.Hash(), spec) }
	h.reject("min-difficulty bits (the limit) mid-period", withBits(g, next(b4, chaintest.Spec{}), p.PowLimitBits), consensus.ErrUnexpectedDifficulty)
	h.reject("min-difficulty bits after a gap of 90 spacings (no testnet exception)", withBits(g, next(b4, at(b4.Header.Time+3600)), p.PowLimitBits), consensus.ErrUnexpectedDifficulty)
	h.reject("easier bits, below the limit", withBits(g, next(b4, chaintest.Spec{}), 0x20200000), consensus.ErrUnexpectedDifficulty)
	h.reject("harder bits than required", withBits(g, next(b4, chaintest.Spec{}), 0x20080000), consensus.ErrUnexpectedDifficulty)
	if pow.CompactToBig(0x21001000).Cmp(pow.CompactToBig(p.Genesis.Bits)) != 0 {
		t.Fatal("0x21001000 does not encode the genesis target")
	}
	h.reject("the required target, non-canonical encoding", withBits(g, next(b4, chaintest.Spec{}), 0x21001000), consensus.ErrUnexpectedDifficulty)
	h.reject("negative target", withBits(g, next(b4, chaintest.Spec{}), 0x20900000), consensus.ErrBadBits)
	h.reject("zero target", withBits(g, next(b4, chaintest.Spec{}), 0), consensus.ErrBadBits)

	// Main branch: slow blocks 5..7 (200 s apart), so at height 8 the
	// target doubles (timespan 640 s over a 320 s target).
	m := []*types.Block{b4}
	for range 3 {
		m = append(m, h.accept("slow main block", next(m[len(m)-1], at(m[len(m)-1].Header.Time+200))))
	}
	m7 := m[3]
	wantMain := pow.Retarget(m7.Header.Bits, m7.Header.Time-g.Genesis.Header.Time, span, p.PowLimit)
	if pow.CompactToBig(wantMain).Cmp(new(big.Int).Lsh(big.NewInt(1), 253)) != 0 {
		t.Fatalf("main retarget %08x, want a target of 2^253", wantMain)
	}
	h.reject("min-difficulty bits at the boundary", withBits(g, next(m7, chaintest.Spec{}), p.PowLimitBits), consensus.ErrUnexpectedDifficulty)
	h.reject("the old bits at the boundary", withBits(g, next(m7, chaintest.Spec{}), m7.Header.Bits), consensus.ErrUnexpectedDifficulty)
	m8 := h.accept("m8 retargeted", next(m7, chaintest.Spec{}))
	if m8.Header.Bits != wantMain {
		t.Fatalf("m8 bits %08x, want %08x", m8.Header.Bits, wantMain)
	}
	m9 := h.accept("m9", next(m8, chaintest.Spec{}))

	// Side branch from b4: fast blocks, so at height 8 the target drops by
	// the clamp factor 4 (harder): s8 outweighs m8 and m9.
	s7 := b4
	for range 3 {
		s7 = h.side("fast side block", next(s7, chaintest.Spec{}))
	}
	wantSide := pow.Retarget(s7.Header.Bits, s7.Header.Time-g.Genesis.Header.Time, span, p.PowLimit)
	if pow.CompactToBig(wantSide).Cmp(new(big.Int).Lsh(big.NewInt(1), 250)) != 0 {
		t.Fatalf("side retarget %08x, want a target of 2^250", wantSide)
	}
	h.reject("side boundary block with the main branch's bits", withBits(g, next(s7, chaintest.Spec{}), wantMain), consensus.ErrUnexpectedDifficulty)
	s8 := next(s7, chaintest.Spec{})
	h.reorg("s8 retargeted on its own branch", s8, 5)
	if s8.Header.Bits != wantSide || h.c.Status().Bits != wantSide {
		t.Fatalf("s8 bits %08x, next bits %08x, want %08x", s8.Header.Bits, h.c.Status().Bits, wantSide)
	}
	h.reject("s9 with the main branch's bits", withBits(g, next(s8, chaintest.Spec{}), wantMain), consensus.ErrUnexpectedDifficulty)

	// The first branch comes back: its blocks keep its own bits (m10 with
	// the side's bits is rejected), at height 16 it retargets over its
	// heights 8..15 and outweighs the side.
	mt := m9
	for range 6 {
		mt = h.side("main branch block on the side", next(mt, chaintest.Spec{}))
	}
	m15 := mt
	h.reject("m16 with the side's bits", withBits(g, next(m15, chaintest.Spec{}), wantSide), consensus.ErrUnexpectedDifficulty)
	m16 := next(m15, chaintest.Spec{})
	h.reorg("m16 retargets and reorganises back", m16, 4)
	if want := pow.Retarget(m15.Header.Bits, m15.Header.Time-m8.Header.Time, span, p.PowLimit); m16.Header.Bits != want {
		t.Fatalf("m16 bits %08x, want Retarget over heights 8..15 = %08x", m16.Header.Bits, want)
	}
	bits := h.c.Status().Bits
	if tp := h.c.Template(); tp.Bits != bits || tp.Bits != m16.Header.Bits || tp.MedianTimePast != g.MedianTimePast(m16.Hash()) {
		t.Fatalf("template after the reorganisations: bits %08x, median time past %d; want %08x, %d", tp.Bits, tp.MedianTimePast, m16.Header.Bits, g.MedianTimePast(m16.Hash()))
	}
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state after the reorganisations differs from a replay")
	}
	h.reopen()
	h.tipIs(m16)
	if got := h.c.Status().Bits; got != bits {
		t.Fatalf("next bits after a restart %08x, want %08x", got, bits)
	}
}

// TestTimeWarpRefused: the time-warp attack backdates the first block of
// every retarget period far before its parent (only the median time past
// bounded it), so that every period measures a long timespan and the
// target rises by the clamp at every boundary while the median time past
// barely moves. Consensus closes it with BIP54's two rules: the first
// block of a period at most MaxTimeWarp (2 h) before its parent, and the
// last block of a period not before the period's first block. The attack's
// blocks are refused, the boundaries of both rules are accepted, and the
// miner's template (MinTime) respects them.
func TestTimeWarpRefused(t *testing.T) {
	p := retargetParams()
	p.Genesis.Bits = 0x1f100000
	h := newHarness(t, p)
	g := h.g
	const n = 8
	limit := g.Now.Add(p.MaxTimeOffset).Unix()
	warp := int64(consensus.MaxTimeWarp / time.Second)
	tip := g.Genesis
	// Period 1: blocks just above the median time past, the last one at
	// now + 2 h (the attack's set-up is legal).
	for height := int64(1); height < n; height++ {
		ts := g.MedianTimePast(tip.Hash()) + 1
		if height == n-1 {
			ts = limit
		}
		tip = h.accept("period 1", g.Next(tip.Hash(), at(ts)))
	}
	// The first block of period 2 far before its parent: refused.
	h.reject("first block of a period 1000 h before its parent", g.Next(tip.Hash(), at(tip.Header.Time-1000*3600)), consensus.ErrTimeWarp)
	h.reject("first block of a period 2 h + 1 s before its parent", g.Next(tip.Hash(), at(tip.Header.Time-warp-1)), consensus.ErrTimeWarp)
	if got, want := h.c.Template().MinTime, tip.Header.Time-warp; got != want {
		t.Fatalf("template MinTime at a period start = %d, want parent - 2 h = %d", got, want)
	}
	first := h.accept("first block of a period exactly 2 h before its parent", g.Next(tip.Hash(), at(tip.Header.Time-warp)))
	tip = first
	for height := int64(n + 1); height < 2*n-1; height++ {
		tip = h.accept("period 2", g.Next(tip.Hash(), at(g.MedianTimePast(tip.Hash())+1)))
	}
	// The last block of period 2 before the period's first block: refused;
	// at exactly its time: accepted (a zero timespan, clamped).
	if mtp := g.MedianTimePast(tip.Hash()); mtp+1 < first.Header.Time {
		h.reject("last block of a period before the period's first block", g.Next(tip.Hash(), at(first.Header.Time-1)), consensus.ErrTimeWarp)
	}
	if got := h.c.Template().MinTime; got < first.Header.Time {
		t.Fatalf("template MinTime for a period's last block = %d, before the period's first block %d", got, first.Header.Time)
	}
	h.accept("last block of a period at the first block's time", g.Next(tip.Hash(), at(max(first.Header.Time, g.MedianTimePast(tip.Hash())+1))))
}

// TestTimestampsAgainstNow: a block dated beyond now + MaxTimeOffset is
// rejected but not remembered as invalid (it is accepted once the clock
// has caught up, and its child waits as an orphan meanwhile), a block at
// exactly the limit is accepted, and a block older than its parent but
// after the median time past is fine.
func TestTimestampsAgainstNow(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	bs := h.chain(g.Genesis, 11, chaintest.Spec{})
	tip := bs[10]
	mtp := g.MedianTimePast(tip.Hash())
	h.reject("time = median time past", g.Next(tip.Hash(), at(mtp)), consensus.ErrTimeTooOld)
	older := h.accept("before its parent, after the median time past", g.Next(tip.Hash(), at(mtp+1)))
	if older.Header.Time >= tip.Header.Time {
		t.Fatal("test block is not older than its parent")
	}
	limit := g.Now.Add(g.P.MaxTimeOffset).Unix()
	early := g.Next(older.Hash(), at(limit+1))
	h.reject("one second beyond now + MaxTimeOffset", early, consensus.ErrTimeTooNew)
	child := g.Next(early.Hash(), chaintest.Spec{})
	h.orphan("child of the too-new block (parent not stored)", child)
	g.Now = g.Now.Add(time.Minute)
	if _, err := h.c.ProcessBlock(early); err != nil {
		t.Fatalf("too-new block after the clock moved: %v", err)
	}
	h.count["accepted"]++
	h.tipIs(child)
	limit = g.Now.Add(g.P.MaxTimeOffset).Unix()
	tip = h.accept("exactly now + MaxTimeOffset", g.Next(child.Hash(), at(limit)))

	// MTP pushed to the limit: with 6 of the last 11 blocks at now + 2 h
	// the median time past is the limit itself, so no block is valid
	// until the clock moves on (the push is bounded by MaxTimeOffset).
	for range 5 {
		tip = h.accept("pushing the median time past", g.Next(tip.Hash(), at(limit)))
	}
	if mtp := g.MedianTimePast(tip.Hash()); mtp != limit {
		t.Fatalf("median time past %d, want the limit %d", mtp, limit)
	}
	h.reject("at the pushed median time past", g.Next(tip.Hash(), at(limit)), consensus.ErrTimeTooOld)
	h.reject("just after it, beyond now + MaxTimeOffset", g.Next(tip.Hash(), at(limit+1)), consensus.ErrTimeTooNew)
	g.Now = g.Now.Add(time.Second)
	h.accept("after the clock moved one second", g.Next(tip.Hash(), at(limit+1)))
}

// TestSpendFromFailedBlock: outputs of a block that failed to connect
// (at the tip, or in the middle of a reorganisation) do not exist, its
// descendants are refused, and its valid transactions can still be mined
// in another block.
func TestSpendFromFailedBlock(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	bs := h.chain(g.Genesis, 6, chaintest.Spec{})
	tip := bs[5]
	val := chaintest.MinerValue

	// At the tip: a valid transaction in a block with a bad coinbase.
	tx := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: val(bs[0]) - 10, Address: a0}}, nil)
	bad := g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}})
	bad.Txs[0].Outputs[0].Value += 11
	g.Finish(bad, m0)
	h.reject("block with a valid tx and a bad coinbase", bad, consensus.ErrBadCoinbaseValue)
	spend := g.Tx(m0, []types.OutPoint{chaintest.Out(tx, 0)}, []types.TxOut{{Value: 5, Address: a0}}, nil)
	h.reject("spend of an output of the failed block", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{spend}}), consensus.ErrMissingTxOut)
	h.reject("child of the failed block", g.Next(bad.Hash(), chaintest.Spec{Txs: []*types.Tx{spend}}), consensus.ErrInvalidAncestor)
	if _, ok := h.c.UTXO(chaintest.Out(tx, 0)); ok {
		t.Fatal("output of the failed block exists")
	}
	b7 := h.accept("the same tx in a valid block", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}}))
	b8 := h.accept("its output spent", g.Next(b7.Hash(), chaintest.Spec{Txs: []*types.Tx{spend}}))

	// In a reorganisation: s8 (stored on a side branch without being
	// connected) creates tx2 but pays its miner too much; s9 spends tx2's
	// output and would win.
	digest := h.c.StateDigest()
	tx2 := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[1])}, []types.TxOut{{Value: val(bs[1]) - 10, Address: a0}}, nil)
	s7 := h.side("s7", g.Next(tip.Hash(), chaintest.Spec{Miner: g.Miners[1]}))
	s8 := g.Next(s7.Hash(), chaintest.Spec{Miner: g.Miners[1], Txs: []*types.Tx{tx2}})
	s8.Txs[0].Outputs[0].Value++
	g.Finish(s8, g.Miners[1])
	h.side("s8 (invalid, not yet connected)", s8)
	s9 := g.Next(s8.Hash(), chaintest.Spec{Miner: g.Miners[1], Txs: []*types.Tx{g.Tx(m0, []types.OutPoint{chaintest.Out(tx2, 0)}, []types.TxOut{{Value: 5, Address: a0}}, nil)}})
	h.reject("reorganisation through the failing block", s9, consensus.ErrBadCoinbaseValue)
	h.tipIs(b8)
	if h.c.StateDigest() != digest {
		t.Fatal("failed reorganisation changed the state")
	}
	if _, ok := h.c.UTXO(chaintest.Out(tx2, 0)); ok {
		t.Fatal("output of the block that failed to connect exists")
	}
	h.reject("child of the branch that failed", g.Next(s9.Hash(), chaintest.Spec{Miner: g.Miners[1]}), consensus.ErrInvalidAncestor)
	h.accept("tx2 in a valid block on the main chain", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{tx2}}))
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state differs from a replay of the main chain")
	}
}

// ed25519L is the order of the Ed25519 base point.
var ed25519L, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// plusL returns the signature with S replaced by S + L: the verification
// equation still holds, but the encoding of S is not canonical.
func plusL(sig [64]byte) [64]byte {
	var be [32]byte
	for i := range 32 {
		be[i] = sig[63-i]
	}
	s := new(big.Int).Add(new(big.Int).SetBytes(be[:]), ed25519L)
	s.FillBytes(be[:])
	for i := range 32 {
		sig[32+i] = be[31-i]
	}
	return sig
}

// TestMalleatedSignatureBlocks: S + L signatures (inputs, coinbase) are
// rejected by the mempool check and in blocks, also when the original
// transaction sits in the signature cache; the original is accepted after
// its malleated twin.
func TestMalleatedSignatureBlocks(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	cache := consensus.NewSigCache(16)
	h.c.state.Sigs = cache
	bs := h.chain(g.Genesis, 4, chaintest.Spec{})
	tip := bs[3]
	tx := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: 5, Address: chaintest.Addr(m0)}}, nil)
	cache.Add(tx.ID())
	mal := *tx
	mal.Inputs = append([]types.TxIn(nil), tx.Inputs...)
	mal.Inputs[0].Sig = plusL(tx.Inputs[0].Sig)
	if mal.ID() == tx.ID() {
		t.Fatal("malleated transaction has the original's ID")
	}
	if _, err := h.c.CheckTx(&mal); consensus.CodeOf(err) != consensus.ErrBadSignature {
		t.Fatalf("CheckTx(S + L) = %v, want %v", err, consensus.ErrBadSignature)
	}
	h.reject("input signature S + L", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{&mal}}), consensus.ErrBadSignature)
	cb := g.Next(tip.Hash(), chaintest.Spec{})
	cb.Txs[0].Coinbase.Sig = plusL(cb.Txs[0].Coinbase.Sig)
	cb.Header.Merkle, _ = types.MerkleRoot(cb.TxIDs())
	g.Mine(cb)
	h.reject("coinbase signature S + L", cb, consensus.ErrBadCoinbaseSig)
	h.accept("the original transaction", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}}))
}

// TestCrossNetworkSignature runs a test-network chain (with easy proof of
// work): a transaction or coinbase signed for the devnet's magic is
// rejected, the same one signed for the test network accepted, and the
// test network's database does not open as a devnet chain.
func TestCrossNetworkSignature(t *testing.T) {
	p := chaincfg.TestNet()
	easy := chaintest.Params()
	p.PowLimit, p.PowLimitBits, p.Genesis.Bits = easy.PowLimit, easy.PowLimitBits, easy.PowLimitBits
	p.CoinbaseMaturity = 3
	h := newHarness(t, p)
	g := h.g
	dev := chaincfg.DevNet().Magic
	if dev == p.Magic {
		t.Fatal("devnet and test network share the magic")
	}
	m0 := g.Miners[0]
	bs := h.chain(g.Genesis, 4, chaintest.Spec{}) // below LicenceActivationHeight: anyone mines
	tip := bs[3]

	tx := &types.Tx{Version: 1, Inputs: []types.TxIn{{Prev: chaintest.MinerOut(bs[0])}}, Outputs: []types.TxOut{{Value: 5, Address: chaintest.Addr(m0)}}}
	tx.SignInputs(dev, func(int) *identity.Key { return m0 })
	if _, err := h.c.CheckTx(tx); consensus.CodeOf(err) != consensus.ErrBadSignature {
		t.Fatalf("CheckTx(devnet signature) = %v, want %v", err, consensus.ErrBadSignature)
	}
	h.reject("transaction signed for the devnet", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}}), consensus.ErrBadSignature)
	cb := g.Next(tip.Hash(), chaintest.Spec{})
	cb.Txs[0].SignCoinbase(dev, m0)
	cb.Header.Merkle, _ = types.MerkleRoot(cb.TxIDs())
	g.Mine(cb)
	h.reject("coinbase signed for the devnet", cb, consensus.ErrBadCoinbaseSig)

	tx.SignInputs(p.Magic, func(int) *identity.Key { return m0 })
	h.accept("the same transaction signed for the test network", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}}))
	if _, err := New(Config{Params: chaintest.Params(), DB: h.db}); err == nil {
		t.Fatal("test-network database opened as a devnet chain")
	}
}

// TestVoteWindowBounds: a proposal at height 9 with a 4-block voting
// period counts votes at heights 10..13 exactly; a vote before the
// proposal in its own block names an unknown contract.
func TestVoteWindowBounds(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	cb := h.chain(g.Genesis, 8, chaintest.Spec{})
	prop := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[0])}, []types.TxOut{{Value: 1000, Address: a0}, {Value: 500, Address: a0}}, proposal(10, 2, consensus.Beneficiary{Address: a0, Amount: 10}))
	coins := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[1])}, []types.TxOut{{Value: 100, Address: a0}, {Value: 200, Address: a0}, {Value: 300, Address: a0}, {Value: 400, Address: a0}}, nil)
	voteTx := func(k uint32, v uint64) *types.Tx {
		return g.Tx(m0, []types.OutPoint{chaintest.Out(coins, k)}, []types.TxOut{{Value: v, Address: a0}}, vote(prop.ID(), true))
	}
	h.reject("vote before the proposal in its block", g.Next(cb[7].Hash(), chaintest.Spec{Txs: []*types.Tx{coins, voteTx(0, 100), prop}}), consensus.ErrCCUnknownContract)
	h.reject("vote after the proposal in its block", g.Next(cb[7].Hash(), chaintest.Spec{Txs: []*types.Tx{coins, prop, voteTx(0, 100)}}), consensus.ErrCCVoteWindow)
	b9 := h.accept("proposal", g.Next(cb[7].Hash(), chaintest.Spec{Txs: []*types.Tx{prop, coins}}))
	if c := h.contract(prop.ID()); c.Submitted != 9 || c.VotingEnd != 13 {
		t.Fatalf("contract submitted %d, voting end %d, want 9, 13", c.Submitted, c.VotingEnd)
	}
	b10 := h.accept("vote at the first height of the window", g.Next(b9.Hash(), chaintest.Spec{Txs: []*types.Tx{voteTx(0, 100)}}))
	b11 := h.accept("b11", g.Next(b10.Hash(), chaintest.Spec{}))
	b12 := h.accept("b12", g.Next(b11.Hash(), chaintest.Spec{}))
	b13 := h.accept("vote at the last height of the window", g.Next(b12.Hash(), chaintest.Spec{Txs: []*types.Tx{voteTx(1, 200)}}))
	if c := h.contract(prop.ID()); c.Yes != 300 || c.State != consensus.CCSubmitted {
		t.Fatalf("contract %v with yes %d, want submitted with 300", c.State, c.Yes)
	}
	h.reject("vote one height after the window", g.Next(b13.Hash(), chaintest.Spec{Txs: []*types.Tx{voteTx(2, 300)}}), consensus.ErrCCVoteWindow)
	b14 := h.accept("decision", g.Next(b13.Hash(), chaintest.Spec{}))
	if c := h.contract(prop.ID()); c.State != consensus.CCApproved || c.Yes != 300 {
		t.Fatalf("contract %v with yes %d, want approved with 300", c.State, c.Yes)
	}
	b15 := h.accept("b15", g.Next(b14.Hash(), chaintest.Spec{}))
	h.reject("vote on an executing contract", g.Next(b15.Hash(), chaintest.Spec{Txs: []*types.Tx{voteTx(3, 400)}}), consensus.ErrCCVoteWindow)
}

// TestSybilVoteOutcome: the same yes and no weights, each in one coin or
// split over many vote coins, give the same tallies and the same outcome,
// on both sides of the approval threshold (yes > 5 x no): 5000 against
// 1000 is rejected, 5001 against 1000 approved. All four branches are
// run through the chain with reorganisations.
func TestSybilVoteOutcome(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	cb := h.chain(g.Genesis, 8, chaintest.Spec{})
	prop := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[0])}, []types.TxOut{{Value: 1000, Address: a0}}, proposal(10, 2, consensus.Beneficiary{Address: a0, Amount: 10}))
	// Coins: 0..59 of 100, 60 of 101, 61 of 5000, 62 of 5001, 63 of 1000.
	var outs []types.TxOut
	for range 60 {
		outs = append(outs, types.TxOut{Value: 100, Address: a0})
	}
	outs = append(outs, types.TxOut{Value: 101, Address: a0}, types.TxOut{Value: 5000, Address: a0}, types.TxOut{Value: 5001, Address: a0}, types.TxOut{Value: 1000, Address: a0})
	coins := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[1])}, outs, nil)
	b9 := h.accept("proposal and coins", g.Next(cb[7].Hash(), chaintest.Spec{Txs: []*types.Tx{prop, coins}}))
	voteWith := func(yes bool, ks ...uint32) []*types.Tx {
		var txs []*types.Tx
		for _, k := range ks {
			txs = append(txs, g.Tx(m0, []types.OutPoint{chaintest.Out(coins, k)}, []types.TxOut{outs[k]}, vote(prop.ID(), yes)))
		}
		return txs
	}
	span := func(lo, hi uint32) []uint32 {
		var ks []uint32
		for k := lo; k < hi; k++ {
			ks = append(ks, k)
		}
		return ks
	}
	branches := []struct {
		name     string
		votes    []*types.Tx
		yes, no  uint64
		approved bool
	}{
		{"5000 vs 1000, one coin each", append(voteWith(true, 61), voteWith(false, 63)...), 5000, 1000, false},
		{"5000 vs 1000, split over 60 coins", append(voteWith(true, span(0, 50)...), voteWith(false, span(50, 60)...)...), 5000, 1000, false},
		{"5001 vs 1000, one coin each", append(voteWith(true, 62), voteWith(false, 63)...), 5001, 1000, true},
		{"5001 vs 1000, split over 60 coins", append(voteWith(true, append(span(0, 49), 60)...), voteWith(false, span(50, 60)...)...), 5001, 1000, true},
	}
	var payments [][]types.TxOut
	for i, br := range branches {
		// Branch i: votes at 10, blocks up to 14 (the decision) and 15
		// (the first payment when approved), then i more so that it
		// outweighs the branches before it.
		tip := g.Next(b9.Hash(), chaintest.Spec{Txs: br.votes, Extra: []byte{byte(i)}})
		blocks := []*types.Block{tip}
		for len(blocks) < 6+i {
			tip = g.Next(tip.Hash(), chaintest.Spec{Extra: []byte{byte(i)}})
			blocks = append(blocks, tip)
		}
		for j, b := range blocks {
			switch {
			case i == 0:
				h.accept(br.name, b)
			case j < len(blocks)-1:
				h.side(br.name, b)
			default:
				h.reorg(br.name, b, 5+i)
			}
		}
		c := h.contract(prop.ID())
		if c.Yes != br.yes || c.No != br.no || (c.State != consensus.CCNotApproved) != br.approved || c.Decided != 14 {
			t.Fatalf("%s: contract %v (decided %d) yes %d no %d, want yes %d no %d approved %v", br.name, c.State, c.Decided, c.Yes, c.No, br.yes, br.no, br.approved)
		}
		payments = append(payments, blocks[5].Txs[0].Outputs[:len(blocks[5].Txs[0].Outputs)-1])
	}
	for i := 0; i < len(branches); i += 2 {
		if len(payments[i]) != len(payments[i+1]) || (len(payments[i]) > 0 && payments[i][0] != payments[i+1][0]) {
			t.Fatalf("payments at height 15: %v with one coin, %v split", payments[i], payments[i+1])
		}
	}
	if len(payments[0]) != 0 || len(payments[2]) != 1 {
		t.Fatalf("payments at 15: rejected %v, approved %v", payments[0], payments[2])
	}
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state differs from a replay of the main chain")
	}
}

// TestQueueAfterReorg: rewards over the ceiling queue and start later in
// (decision height, ID) order, also after reorganisations. A and E (60
// each, 3 blocks) are decided at 14, B (60) at 15 with an ID below both;
// the ceiling is 100. At 15 the lower of A and E (X) starts, the other
// (Y) queues; at 16 B queues behind Y although its ID is lower; at 18 X
// ends and Y starts, B still waits; at 21 B starts. A side branch from 15
// cancels Y (its deposit is spent at 16), so B starts at 18 there; the
// first branch comes back with everything as before.
func TestQueueAfterReorg(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	ben := chaintest.Addr(chaintest.NewKey(t))
	cb := h.chain(g.Genesis, 8, chaintest.Spec{})
	v := chaintest.MinerValue
	propose := func(coin *types.Block, deposit uint64) *types.Tx {
		return g.Tx(m0, []types.OutPoint{chaintest.MinerOut(coin)}, []types.TxOut{{Value: deposit, Address: a0}, {Value: v(coin) - deposit - 10, Address: a0}},
			proposal(60, 3, consensus.Beneficiary{Address: ben, Amount: 60}))
	}
	less := func(a, b types.Hash) bool { return bytes.Compare(a[:], b[:]) < 0 }
	pa, pe := propose(cb[0], 1000), propose(cb[1], 1000)
	var pb *types.Tx
	for dep := uint64(1000); ; dep++ {
		if pb = propose(cb[2], dep); less(pb.ID(), pa.ID()) && less(pb.ID(), pe.ID()) {
			break
		}
	}
	x, y := pa, pe
	if less(pe.ID(), pa.ID()) {
		x, y = pe, pa
	}
	split := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[3])}, []types.TxOut{{Value: 100, Address: a0}, {Value: 100, Address: a0}, {Value: 100, Address: a0}}, nil)
	yesWith := func(k uint32, id types.Hash) *types.Tx {
		return g.Tx(m0, []types.OutPoint{chaintest.Out(split, k)}, []types.TxOut{{Value: 100, Address: a0}}, vote(id, true))
	}
	b9 := h.accept("A and E proposed", g.Next(cb[7].Hash(), chaintest.Spec{Txs: []*types.Tx{pa, pe, split}}))
	b10 := h.accept("B proposed, A and E voted", g.Next(b9.Hash(), chaintest.Spec{Txs: []*types.Tx{pb, yesWith(0, pa.ID()), yesWith(1, pe.ID())}}))
	tip := h.accept("B voted", g.Next(b10.Hash(), chaintest.Spec{Txs: []*types.Tx{yesWith(2, pb.ID())}}))
	type want struct {
		st    consensus.ContractState
		start int64
	}
	check := func(at string, ws map[*types.Tx]want) {
		t.Helper()
		for tx, w := range ws {
			c := h.contract(tx.ID())
			if c.State != w.st || (w.start != 0 && c.Start != w.start) {
				t.Fatalf("%s: contract %s is %v from %d, want %v from %d", at, tx.ID(), c.State, c.Start, w.st, w.start)
			}
		}
	}
	var b15 *types.Block
	for height := 12; height <= 18; height++ {
		tip = h.accept("run", g.Next(tip.Hash(), chaintest.Spec{}))
		switch height {
		case 15:
			b15 = tip
			check("15", map[*types.Tx]want{x: {consensus.CCExecuting, 15}, y: {consensus.CCQueued, 0}, pb: {consensus.CCApproved, 16}})
		case 16:
			check("16", map[*types.Tx]want{x: {consensus.CCExecuting, 15}, y: {consensus.CCQueued, 0}, pb: {consensus.CCQueued, 0}})
		case 18:
			check("18", map[*types.Tx]want{x: {consensus.CCExecuted, 15}, y: {consensus.CCExecuting, 18}, pb: {consensus.CCQueued, 0}})
		}
	}
	m18 := tip

	// Side branch from 15: Y's deposit is spent at 16.
	cancel := g.Tx(m0, []types.OutPoint{chaintest.Out(y, 0)}, []types.TxOut{{Value: 900, Address: a0}}, nil)
	s := h.side("s16 cancels Y", g.Next(b15.Hash(), chaintest.Spec{Miner: g.Miners[1], Txs: []*types.Tx{cancel}}))
	s = h.side("s17", g.Next(s.Hash(), chaintest.Spec{Miner: g.Miners[1]}))
	s = h.side("s18", g.Next(s.Hash(), chaintest.Spec{Miner: g.Miners[1]}))
	s19 := g.Next(s.Hash(), chaintest.Spec{Miner: g.Miners[1]})
	h.reorg("s19: the branch without Y", s19, 3)
	check("side 19", map[*types.Tx]want{x: {consensus.CCExecuted, 15}, y: {consensus.CCCancelled, 0}, pb: {consensus.CCExecuting, 18}})

	// Back to the first branch.
	m19 := h.side("m19", g.Next(m18.Hash(), chaintest.Spec{}))
	m20 := g.Next(m19.Hash(), chaintest.Spec{})
	h.reorg("m20: Y's branch again", m20, 4)
	check("20", map[*types.Tx]want{x: {consensus.CCExecuted, 15}, y: {consensus.CCExecuting, 18}, pb: {consensus.CCQueued, 0}})
	m21 := h.accept("m21", g.Next(m20.Hash(), chaintest.Spec{}))
	check("21", map[*types.Tx]want{y: {consensus.CCExecuted, 18}, pb: {consensus.CCExecuting, 21}})
	if pay := m21.Txs[0].Outputs[0]; pay.Address != ben || pay.Value != 60 {
		t.Fatalf("m21 pays %d to %x, want B's 60", pay.Value, pay.Address[:4])
	}
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state differs from a replay of the main chain")
	}
}

// TestOrphanFlood sends more orphans than the pool holds: the pool and
// its indexes stay at the bound, the earliest orphans are evicted (not
// the latest), a duplicate is refused, junk without proof of work never
// enters, and when the missing blocks arrive the kept orphans connect.
func TestOrphanFlood(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	const bound, flood = DefaultMaxOrphans, DefaultMaxOrphans + 50
	bs := []*types.Block{g.Genesis}
	for range flood + 1 {
		bs = append(bs, g.Next(bs[len(bs)-1].Hash(), chaintest.Spec{}))
	}
	pool := func() (orphans, prevs, fifo int) {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		for _, l := range h.c.byPrev {
			prevs += len(l)
		}
		return len(h.c.orphans), prevs, len(h.c.orpFIFO)
	}
	// bs[1] is withheld: bs[2..] are orphans.
	for i := 2; i < len(bs); i++ {
		h.orphan("flood", bs[i])
		o, p, f := pool()
		if o > bound || p != o || f != o {
			t.Fatalf("after %d orphans: pool %d, by-parent index %d, FIFO %d (bound %d)", i-1, o, p, f, bound)
		}
	}
	firstKept := len(bs) - bound
	for i := 2; i < len(bs); i++ {
		h.c.mu.Lock()
		_, kept := h.c.orphans[bs[i].Hash()]
		h.c.mu.Unlock()
		if kept != (i >= firstKept) {
			t.Fatalf("orphan %d kept = %v, want %v (the %d earliest are evicted)", i, kept, !kept, flood-bound)
		}
	}
	h.reject("duplicate orphan", bs[len(bs)-1], consensus.ErrDuplicateBlock)
	junk := g.Next(bs[5].Hash(), chaintest.Spec{Extra: []byte("junk")})
	junk.Header.Prev = types.Hash{0xff}
	g.MineBad(junk)
	h.reject("orphan without proof of work", junk, consensus.ErrHighHash)
	if o, _, _ := pool(); o != bound {
		t.Fatalf("pool %d after junk, want %d", o, bound)
	}

	// The withheld parent connects alone (its child was evicted); the
	// evicted blocks arrive again and the kept orphans follow the last one.
	h.accept("withheld parent", bs[1])
	if o, _, _ := pool(); o != bound {
		t.Fatalf("pool %d, want %d", o, bound)
	}
	for i := 2; i < firstKept-1; i++ {
		h.accept("evicted block again", bs[i])
	}
	if _, err := h.c.ProcessBlock(bs[firstKept-1]); err != nil {
		t.Fatal(err)
	}
	h.count["accepted"]++
	h.tipIs(bs[len(bs)-1])
	if o, p, f := pool(); o != 0 || p != 0 || f != 0 {
		t.Fatalf("pool %d, by-parent %d, FIFO %d after connecting, want empty", o, p, f)
	}
}
