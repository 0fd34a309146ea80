package blockchain

import (
	"testing"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// TestLedgerBlocks runs the bitcoin-inherited cases of chain.md §7b.
func TestLedgerBlocks(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	other := chaintest.NewKey(t)
	spec := chaintest.Spec{}

	bs := h.chain(g.Genesis, 5, spec) // heights 1..5
	b5 := bs[4]
	val := func(b *types.Block) uint64 { return chaintest.MinerValue(b) }

	// Height 6: spend cb1 (mature: 6-1 >= 3) into two outputs, fee 1000.
	tx1 := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: 1000, Address: chaintest.Addr(other)}, {Value: val(bs[0]) - 2000, Address: a0}}, nil)
	b6 := h.accept("b6 spends cb1", g.Next(b5.Hash(), chaintest.Spec{Txs: []*types.Tx{tx1}}))
	if c, ok := h.c.UTXO(chaintest.Out(tx1, 0)); !ok || c.Value != 1000 {
		t.Fatalf("UTXO(tx1:0) = %+v, %v", c, ok)
	}
	if chaintest.MinerValue(b6) != g.P.Subsidy(6)+1000 {
		t.Fatalf("b6 miner value %d, want subsidy + fee", chaintest.MinerValue(b6))
	}

	// Double spend inside one block.
	ds1 := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[1])}, []types.TxOut{{Value: 5, Address: a0}}, nil)
	ds2 := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[1])}, []types.TxOut{{Value: 6, Address: a0}}, nil)
	h.reject("double spend in a block", g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{ds1, ds2}}), consensus.ErrMissingTxOut)

	// Spending tx1's output again (already spent in b6).
	again := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: 5, Address: a0}}, nil)
	h.reject("spend of a spent output", g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{again}}), consensus.ErrMissingTxOut)

	// Bad Merkle root.
	bad := g.Next(b6.Hash(), spec)
	bad.Header.Merkle[0] ^= 1
	g.Mine(bad)
	h.reject("bad merkle root", bad, consensus.ErrBadMerkleRoot)

	// CVE-2012-2459: a mutated copy of a valid block has the same hash and
	// must not poison it.
	t2a := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[1])}, []types.TxOut{{Value: val(bs[1]) - 10, Address: a0}}, nil)
	t2b := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[2])}, []types.TxOut{{Value: val(bs[2]) - 10, Address: a0}}, nil)
	b7 := g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{t2a, t2b}})
	mutated := &types.Block{Header: b7.Header, Txs: append(append([]*types.Tx{}, b7.Txs...), t2b)}
	if mutated.Hash() != b7.Hash() {
		t.Fatal("mutated block has another hash")
	}
	h.reject("mutated merkle (duplicate leaf)", mutated, consensus.ErrMutatedMerkle)
	h.accept("b7 after its mutated twin", b7)

	// Duplicate transaction (odd count, not a Merkle mutation).
	dupTx := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[3])}, []types.TxOut{{Value: 7, Address: a0}}, nil)
	h.reject("duplicate tx", g.Next(b7.Hash(), chaintest.Spec{Txs: []*types.Tx{dupTx, dupTx}}), consensus.ErrDuplicateTx)

	// Proof of work and difficulty.
	hi := g.Next(b7.Hash(), spec)
	g.MineBad(hi)
	h.reject("high hash", hi, consensus.ErrHighHash)
	wrongBits := g.Next(b7.Hash(), spec)
	wrongBits.Header.Bits = 0x1f7fffff
	g.Mine(wrongBits)
	h.reject("unexpected difficulty", wrongBits, consensus.ErrUnexpectedDifficulty)
	aboveLimit := g.Next(b7.Hash(), spec)
	aboveLimit.Header.Bits = 0x2100ffff
	g.Mine(aboveLimit)
	h.reject("bits above the limit", aboveLimit, consensus.ErrBadBits)

	// Timestamps.
	mtp := g.MedianTimePast(b7.Hash())
	h.reject("time = median time past", g.Next(b7.Hash(), chaintest.Spec{Time: mtp}), consensus.ErrTimeTooOld)
	h.reject("time too new", g.Next(b7.Hash(), chaintest.Spec{Time: g.Now.Add(g.P.MaxTimeOffset).Unix() + 1}), consensus.ErrTimeTooNew)
	h.accept("time = median time past + 1", g.Next(b7.Hash(), chaintest.Spec{Time: mtp + 1}))
	b8 := h.tipBlock()

	// Immature coinbase: the next block is at height 9; cb7 matures at 10.
	imm := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(b7)}, []types.TxOut{{Value: 1, Address: a0}}, nil)
	h.reject("immature coinbase spend", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{imm}}), consensus.ErrImmatureSpend)

	// Coinbase too large.
	big := g.Next(b8.Hash(), spec)
	big.Txs[0].Outputs[0].Value++
	g.Finish(big, m0)
	h.reject("coinbase too large", big, consensus.ErrBadCoinbaseValue)

	// Outputs earlier in the block may be spent, later ones may not.
	first := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[3])}, []types.TxOut{{Value: val(bs[3]) - 10, Address: a0}}, nil)
	second := g.Tx(m0, []types.OutPoint{chaintest.Out(first, 0)}, []types.TxOut{{Value: val(bs[3]) - 20, Address: a0}}, nil)
	h.reject("spend of a later output in the block", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{second, first}}), consensus.ErrMissingTxOut)

	// Non-final transaction.
	lock := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[4])}, []types.TxOut{{Value: 1, Address: a0}}, nil)
	lock.LockTime = 10
	lock.SignInputs(g.P.Magic, func(int) *identity.Key { return m0 })
	h.reject("non-final tx", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{lock}}), consensus.ErrUnfinalizedTx)

	// Coinbase placement.
	two := g.Next(b8.Hash(), spec)
	cb2 := *two.Txs[0]
	cb2.Coinbase = &types.Coinbase{Height: 9, Prev: b8.Hash(), Extra: []byte("2")}
	cb2.SignCoinbase(g.P.Magic, m0)
	two.Txs = append(two.Txs, &cb2)
	g.Finish(two, m0)
	h.reject("multiple coinbases", two, consensus.ErrMultipleCoinbases)
	notCB := g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{first}})
	notCB.Txs = notCB.Txs[1:]
	g.Finish(notCB, m0)
	h.reject("first tx not coinbase", notCB, consensus.ErrFirstTxNotCoinbase)
	empty := g.Next(b8.Hash(), spec)
	empty.Txs = nil
	g.Finish(empty, m0)
	h.reject("no transactions", empty, consensus.ErrNoTransactions)
	badHeight := g.Next(b8.Hash(), spec)
	badHeight.Txs[0].Coinbase.Height = 8
	g.Finish(badHeight, m0)
	h.reject("coinbase height", badHeight, consensus.ErrBadCoinbaseHeight)
	badSig := g.Next(b8.Hash(), spec)
	badSig.Txs[0].Coinbase.Sig[3] ^= 1
	badSig.Header.Merkle, _ = types.MerkleRoot(badSig.TxIDs())
	g.Mine(badSig)
	h.reject("coinbase signature", badSig, consensus.ErrBadCoinbaseSig)

	// Signatures and ownership.
	forged := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[4])}, []types.TxOut{{Value: 1, Address: a0}}, nil)
	forged.Inputs[0].Sig[10] ^= 1
	h.reject("bad input signature", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{forged}}), consensus.ErrBadSignature)
	stolen := g.Tx(other, []types.OutPoint{chaintest.MinerOut(bs[4])}, []types.TxOut{{Value: 1, Address: a0}}, nil)
	h.reject("spend with the wrong key", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{stolen}}), consensus.ErrWrongOwner)
	tooHigh := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[4])}, []types.TxOut{{Value: val(bs[4]) + 1, Address: a0}}, nil)
	h.reject("outputs above inputs", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{tooHigh}}), consensus.ErrSpendTooHigh)

	// Chained spends in order and a final lock time are fine.
	lockOK := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[4])}, []types.TxOut{{Value: 1, Address: a0}}, nil)
	lockOK.LockTime = 9
	lockOK.SignInputs(g.P.Magic, func(int) *identity.Key { return m0 })
	b9 := h.accept("chained spends, final lock time", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{first, second, lockOK}}))

	// Orphans: b11 before b10.
	b10 := g.Next(b9.Hash(), spec)
	b11 := g.Next(b10.Hash(), spec)
	h.orphan("b11 before its parent", b11)
	if res, err := h.c.ProcessBlock(b10); err != nil || !res.MainChain {
		t.Fatalf("b10: ProcessBlock = %+v, %v", res, err)
	}
	h.count["accepted"]++
	h.tipIs(b11)

	// Reorg: side branch from b9, spending tx1's first output differently.
	spentOnMain := chaintest.Out(tx1, 0)
	s10 := h.side("s10", g.Next(b9.Hash(), chaintest.Spec{Miner: g.Miners[1]}))
	s11 := h.side("s11", g.Next(s10.Hash(), chaintest.Spec{Miner: g.Miners[1], Txs: []*types.Tx{g.Tx(other, []types.OutPoint{spentOnMain}, []types.TxOut{{Value: 900, Address: a0}}, nil)}}))
	if _, ok := h.c.UTXO(spentOnMain); !ok {
		t.Fatal("side block changed the main UTXO set")
	}
	s12 := g.Next(s11.Hash(), chaintest.Spec{Miner: g.Miners[1]})
	h.reorg("s12 reorganises", s12, 2)
	if _, ok := h.c.UTXO(spentOnMain); ok {
		t.Fatal("reorg did not spend tx1:0")
	}
	if _, ok := h.c.UTXO(chaintest.MinerOut(b10)); ok {
		t.Fatal("disconnected coinbase still unspent")
	}
	// The first branch grows back: m12 ties, m13 (spending tx1:0 on its
	// own branch, where it is unspent) wins.
	m12 := h.side("m12", g.Next(b11.Hash(), spec))
	m13 := g.Next(m12.Hash(), chaintest.Spec{Txs: []*types.Tx{g.Tx(other, []types.OutPoint{spentOnMain}, []types.TxOut{{Value: 800, Address: a0}}, nil)}})
	h.reorg("back to the first branch", m13, 3)
	if _, ok := h.c.UTXO(chaintest.MinerOut(b10)); !ok {
		t.Fatal("reconnected coinbase missing")
	}
	// Double spend across forks: s14 spends cb1, spent at height 6 before
	// the fork; the reorganisation it would cause fails and the old branch
	// comes back.
	digest := h.c.StateDigest()
	s13 := h.side("s13", g.Next(s12.Hash(), chaintest.Spec{Miner: g.Miners[1]}))
	s14 := g.Next(s13.Hash(), chaintest.Spec{Miner: g.Miners[1], Txs: []*types.Tx{g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: 700, Address: a0}}, nil)}})
	h.reject("double spend across forks", s14, consensus.ErrMissingTxOut)
	h.tipIs(m13)
	if h.c.StateDigest() != digest {
		t.Fatal("failed reorganisation changed the state")
	}
	h.reject("child of an invalid block", g.Next(s14.Hash(), chaintest.Spec{Miner: g.Miners[1]}), consensus.ErrInvalidAncestor)
	m14 := h.accept("m14", g.Next(m13.Hash(), spec))
	h.reject("duplicate block", m14, consensus.ErrDuplicateBlock)

	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatalf("state after reorgs %s, replay of the main chain %s", got, want)
	}
	// Restart on the same database.
	before := h.c.StateDigest()
	h.reopen()
	h.tipIs(m14)
	if h.c.StateDigest() != before {
		t.Fatal("state changed across a restart")
	}
}
