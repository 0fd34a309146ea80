package blockchain

import (
	"testing"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// TestTipChanges checks the tip-change callback through extension and a
// reorganisation.
func TestTipChanges(t *testing.T) {
	h := newHarness(t, nil)
	var events []TipChange
	h.c.onTip = func(ev TipChange) { events = append(events, ev) }
	g := h.g
	a := h.accept("a1", g.Next(g.Genesis.Hash(), chaintest.Spec{}))
	s1 := h.side("s1", g.Next(g.Genesis.Hash(), chaintest.Spec{Miner: g.Miners[1]}))
	s2 := g.Next(s1.Hash(), chaintest.Spec{Miner: g.Miners[1]})
	h.reorg("s2", s2, 1)
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	if ev := events[0]; ev.New.Hash != a.Hash() || len(ev.Connected) != 1 || len(ev.Disconnected) != 0 {
		t.Fatalf("event 0 = %+v", ev)
	}
	ev := events[1]
	if ev.Old.Hash != a.Hash() || ev.New.Hash != s2.Hash() || len(ev.Disconnected) != 1 || ev.Disconnected[0].Hash() != a.Hash() ||
		len(ev.Connected) != 2 || ev.Connected[0].Hash() != s1.Hash() {
		t.Fatalf("event 1 = %+v", ev)
	}
}

// TestOrphanPoolBound checks that the orphan pool keeps at most
// MaxOrphans blocks, dropping the oldest.
func TestOrphanPoolBound(t *testing.T) {
	h := newHarness(t, nil)
	h.c.maxOrp = 3
	g := h.g
	b1 := g.Next(g.Genesis.Hash(), chaintest.Spec{})
	var kids []*types.Block
	for i := range 5 {
		k := g.Next(b1.Hash(), chaintest.Spec{Extra: []byte{byte(i)}})
		h.orphan("orphan", k)
		kids = append(kids, k)
	}
	if n := h.c.Status().Orphans; n != 3 {
		t.Fatalf("%d orphans, want 3", n)
	}
	if res, err := h.c.ProcessBlock(b1); err != nil || !res.MainChain {
		t.Fatalf("ProcessBlock(b1) = %+v, %v", res, err)
	}
	// The two oldest were dropped; the others were processed as side blocks
	// or the tip.
	if _, err := h.c.BlockByHash(kids[0].Hash()); err == nil {
		t.Fatal("oldest orphan was kept")
	}
	for _, k := range kids[2:] {
		if _, err := h.c.BlockByHash(k.Hash()); err != nil {
			t.Fatalf("orphan %s not processed: %v", k.Hash(), err)
		}
	}
}

// TestCoinbaseAndSignatureBinding covers the coinbase signature over the
// wrong preimage, a substituted miner key, and a transaction signed for
// another network.
func TestCoinbaseAndSignatureBinding(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0, m1 := g.Miners[0], g.Miners[1]
	bs := h.chain(g.Genesis, 4, chaintest.Spec{})
	tip := bs[3]

	subst := g.Next(tip.Hash(), chaintest.Spec{})
	subst.Txs[0].Coinbase.Miner = [32]byte(m1.Public()) // licensed, but did not sign
	subst.Header.Merkle, _ = types.MerkleRoot(subst.TxIDs())
	g.Mine(subst)
	h.reject("miner key substituted", subst, consensus.ErrBadCoinbaseSig)

	wrong := g.Next(tip.Hash(), chaintest.Spec{})
	cb := wrong.Txs[0]
	copy(cb.Coinbase.Sig[:], m0.Sign(types.DomainCoinbase, cb.Encode())) // not the SigHash
	wrong.Header.Merkle, _ = types.MerkleRoot(wrong.TxIDs())
	g.Mine(wrong)
	h.reject("coinbase signed over the wrong preimage", wrong, consensus.ErrBadCoinbaseSig)

	before := h.c.StateDigest()
	other := [4]byte{'o', 't', 'h', 'r'}
	tx := &types.Tx{Version: 1, Inputs: []types.TxIn{{Prev: chaintest.MinerOut(bs[0])}}, Outputs: []types.TxOut{{Value: 5, Address: chaintest.Addr(m0)}}}
	tx.SignInputs(other, func(int) *identity.Key { return m0 })
	if _, err := h.c.CheckTx(tx); consensus.CodeOf(err) != consensus.ErrBadSignature {
		t.Fatalf("CheckTx(other network) = %v", err)
	}
	h.reject("signature made for another network", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}}), consensus.ErrBadSignature)

	tx.SignInputs(g.P.Magic, func(int) *identity.Key { return m0 })
	fee, err := h.c.CheckTx(tx)
	if err != nil || fee != chaintest.MinerValue(bs[0])-5 {
		t.Fatalf("CheckTx = %d, %v", fee, err)
	}
	if h.c.StateDigest() != before {
		t.Fatal("CheckTx changed the state")
	}
	h.accept("the same transaction signed for this network", g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}}))
}

// TestRetarget runs the difficulty adjustment with a 10-block interval:
// blocks come 4x faster than the target spacing, so the target shrinks
// by the clamp factor 4 at height 10, and a block keeping the old bits is
// rejected.
func TestRetarget(t *testing.T) {
	p := chaintest.Params()
	p.NoRetarget = false
	p.RetargetInterval = 10
	p.TargetSpacing = 40 * 1e9
	p.TargetTimespan = 10 * p.TargetSpacing
	h := newHarness(t, p)
	g := h.g
	bs := h.chain(g.Genesis, 9, chaintest.Spec{}) // 10 s apart
	old := g.Next(bs[8].Hash(), chaintest.Spec{})
	old.Header.Bits = bs[8].Header.Bits
	g.Mine(old)
	want := g.Engine.NextBits(g.P, headerChainAt(h, bs[8]))
	if want == bs[8].Header.Bits {
		t.Fatalf("no retarget at height 10: bits %08x", want)
	}
	h.reject("old bits at the retarget height", old, consensus.ErrUnexpectedDifficulty)
	b10 := h.accept("retargeted block", g.Next(bs[8].Hash(), chaintest.Spec{}))
	if b10.Header.Bits != want || h.c.Status().Bits != want {
		t.Fatalf("bits %08x, want %08x", b10.Header.Bits, want)
	}
}

func headerChainAt(h *harness, tip *types.Block) consensus.HeaderChain {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return chainView{h.c, h.c.index[tip.Hash()]}
}

// TestMalformedBlocks covers the structural rules: limits at max+1,
// malformed transactions and coinbases.
func TestMalformedBlocks(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	bs := h.chain(g.Genesis, 4, chaintest.Spec{})
	tip := bs[3]
	coin := chaintest.MinerOut(bs[0])
	withTxs := func(txs ...*types.Tx) *types.Block {
		b := g.Next(tip.Hash(), chaintest.Spec{})
		b.Txs = append(b.Txs, txs...)
		g.Finish(b, m0)
		return b
	}

	dupIn := g.Tx(m0, []types.OutPoint{coin, coin}, []types.TxOut{{Value: 1, Address: a0}}, nil)
	h.reject("input spent twice in a transaction", withTxs(dupIn), consensus.ErrDuplicateInput)
	zero := g.Tx(m0, []types.OutPoint{coin}, []types.TxOut{{Value: 0, Address: a0}}, nil)
	h.reject("zero-value output", withTxs(zero), consensus.ErrBadTxOutValue)
	noIn := &types.Tx{Version: 1, Outputs: []types.TxOut{{Value: 1, Address: a0}}}
	h.reject("no inputs", withTxs(noIn), consensus.ErrBadTx)
	noOut := g.Tx(m0, []types.OutPoint{coin}, nil, nil)
	h.reject("no outputs", withTxs(noOut), consensus.ErrBadTx)
	badPayload := g.Tx(m0, []types.OutPoint{coin}, []types.TxOut{{Value: 1, Address: a0}}, []byte{0x7f})
	h.reject("unknown payload kind", withTxs(badPayload), consensus.ErrBadPayload)

	cbPayload := g.Next(tip.Hash(), chaintest.Spec{})
	cbPayload.Txs[0].Payload = []byte{consensus.KindAdmin, consensus.AdminDisableCap}
	g.Finish(cbPayload, m0)
	h.reject("coinbase with a payload", cbPayload, consensus.ErrBadCoinbasePayload)
	cbPrev := g.Next(tip.Hash(), chaintest.Spec{})
	cbPrev.Txs[0].Coinbase.Prev = bs[2].Hash()
	g.Finish(cbPrev, m0)
	h.reject("coinbase bound to another parent", cbPrev, consensus.ErrBadCoinbasePrev)
	cbIn := g.Next(tip.Hash(), chaintest.Spec{})
	cbIn.Txs[0].Inputs = []types.TxIn{{Prev: coin}}
	g.Finish(cbIn, m0)
	h.reject("coinbase with inputs", cbIn, consensus.ErrBadTx)

	// One transaction over types.MaxBlockTxs.
	many := g.Next(tip.Hash(), chaintest.Spec{})
	for i := range types.MaxBlockTxs {
		many.Txs = append(many.Txs, &types.Tx{Version: uint32(i)})
	}
	g.Mine(many)
	h.reject("too many transactions", many, consensus.ErrTooManyTxs)
	// Just over types.MaxBlockSize with transactions of 2000 outputs.
	huge := g.Next(tip.Hash(), chaintest.Spec{})
	fat := &types.Tx{Version: 1, Outputs: make([]types.TxOut, types.MaxTxOutputs)}
	for size := 0; size <= types.MaxBlockSize; size += fat.Size() {
		huge.Txs = append(huge.Txs, fat)
	}
	g.Mine(huge)
	h.reject("block too big", huge, consensus.ErrBlockTooBig)
	h.tipIs(tip)
}
