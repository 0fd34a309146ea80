package blockchain

import (
	"testing"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

func adminPayload(op byte, key *identity.Key, factor uint8) []byte {
	a := &consensus.Admin{Op: op, Factor: factor}
	if key != nil {
		a.Key = [32]byte(types.AddressOf(key.Public()))
	}
	return (&consensus.Payload{Admin: a}).Encode()
}

// TestLicenceBlocks covers licences: unlicensed miners, a licence granted
// in a block counts from the next one (never from the same block or a
// side branch), non-admin keys, add/remove/add in one block, revocation
// in the middle of a window.
func TestLicenceBlocks(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	admin := g.Admins[0]
	adminAddr := chaintest.Addr(admin)
	m0, m1 := g.Miners[0], g.Miners[1]
	k := chaintest.NewKey(t) // to be licensed
	l := chaintest.NewKey(t)
	toAdmin := chaintest.Spec{PayTo: &adminAddr}

	b1 := h.accept("b1", g.Next(g.Genesis.Hash(), toAdmin))
	b2 := h.accept("b2", g.Next(b1.Hash(), toAdmin))
	b3 := h.accept("b3 (m1 pays itself)", g.Next(b2.Hash(), chaintest.Spec{Miner: m1}))
	b4 := h.accept("b4", g.Next(b3.Hash(), toAdmin))

	h.reject("unlicensed miner", g.Next(b4.Hash(), chaintest.Spec{Miner: k}), consensus.ErrUnlicensedMiner)

	v1 := chaintest.MinerValue(b1)
	addK := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b1)}, []types.TxOut{{Value: v1 - 100, Address: adminAddr}}, adminPayload(consensus.AdminAddLicence, k, 0))
	h.reject("licence granted in the same block", g.Next(b4.Hash(), chaintest.Spec{Miner: k, Txs: []*types.Tx{addK}}), consensus.ErrUnlicensedMiner)

	// A licence granted on a side branch does not count on the main chain.
	h.side("licence on a side branch", g.Next(b3.Hash(), chaintest.Spec{Txs: []*types.Tx{addK}}))
	h.reject("licence from a side branch", g.Next(b4.Hash(), chaintest.Spec{Miner: k, Extra: []byte("again")}), consensus.ErrUnlicensedMiner)

	b5 := h.accept("b5 grants k", g.Next(b4.Hash(), chaintest.Spec{Txs: []*types.Tx{addK}}))
	b6 := h.accept("b6 mined by k", g.Next(b5.Hash(), chaintest.Spec{Miner: k}))
	if st := h.c.Status(); len(st.Licences) != 5 {
		t.Fatalf("Status().Licences has %d keys, want 5", len(st.Licences))
	}

	// Admin payloads signed by other keys.
	notAdmin := g.Tx(m1, []types.OutPoint{chaintest.MinerOut(b3)}, []types.TxOut{{Value: 10, Address: chaintest.Addr(m1)}}, adminPayload(consensus.AdminAddLicence, l, 0))
	h.reject("admin tx with a non-admin key", g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{notAdmin}}), consensus.ErrNotAdmin)
	v2 := chaintest.MinerValue(b2)
	addAgain := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b2)}, []types.TxOut{{Value: v2 - 100, Address: adminAddr}}, adminPayload(consensus.AdminAddLicence, k, 0))
	h.reject("add of a licensed key", g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{addAgain}}), consensus.ErrLicenceExists)
	remMissing := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b2)}, []types.TxOut{{Value: v2 - 100, Address: adminAddr}}, adminPayload(consensus.AdminRemoveLicence, l, 0))
	h.reject("remove of an unlicensed key", g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{remMissing}}), consensus.ErrLicenceMissing)
	badFactor := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b2)}, []types.TxOut{{Value: v2 - 100, Address: adminAddr}}, []byte{consensus.KindAdmin, consensus.AdminEnableCap, 0})
	h.reject("cap factor 0", g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{badFactor}}), consensus.ErrBadPayload)

	// add, remove, add of l in one block (each spending the previous change).
	a1 := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b2)}, []types.TxOut{{Value: v2 - 100, Address: adminAddr}}, adminPayload(consensus.AdminAddLicence, l, 0))
	a2 := g.Tx(admin, []types.OutPoint{chaintest.Out(a1, 0)}, []types.TxOut{{Value: v2 - 200, Address: adminAddr}}, adminPayload(consensus.AdminRemoveLicence, l, 0))
	a3 := g.Tx(admin, []types.OutPoint{chaintest.Out(a2, 0)}, []types.TxOut{{Value: v2 - 300, Address: adminAddr}}, adminPayload(consensus.AdminAddLicence, l, 0))
	b7 := h.accept("add/remove/add in one block", g.Next(b6.Hash(), chaintest.Spec{Txs: []*types.Tx{a1, a2, a3}}))
	b8 := h.accept("l mines", g.Next(b7.Hash(), chaintest.Spec{Miner: l}))

	// Revoke k in the middle of the window: k's block stays counted, k may
	// not mine any more.
	rem := g.Tx(admin, []types.OutPoint{chaintest.Out(a3, 0)}, []types.TxOut{{Value: v2 - 400, Address: adminAddr}}, adminPayload(consensus.AdminRemoveLicence, k, 0))
	b9 := h.accept("revoke k", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{rem}}))
	h.reject("revoked miner", g.Next(b9.Hash(), chaintest.Spec{Miner: k}), consensus.ErrUnlicensedMiner)
	if n := h.c.MinerWindowCount([32]byte(types.AddressOf(k.Public()))); n != 1 {
		t.Fatalf("window count of k = %d, want 1", n)
	}
	h.accept("m0 continues", g.Next(b9.Hash(), chaintest.Spec{Miner: m0}))
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state differs from a replay of the main chain")
	}
}

// TestCapBlocks covers the cap: at the cap then cap+1, exactly at the
// window boundary, a reorganisation across the boundary, a factor change
// in the middle of the window.
func TestCapBlocks(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	admin := g.Admins[0]
	adminAddr := chaintest.Addr(admin)
	m0, m1, m2, m3 := g.Miners[0], g.Miners[1], g.Miners[2], g.Miners[3]
	by := func(m *identity.Key) chaintest.Spec { return chaintest.Spec{Miner: m} }

	b := h.chain(g.Genesis, 4, chaintest.Spec{Miner: m1, PayTo: &adminAddr}) // 1..4 by m1
	enable := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b[0])}, []types.TxOut{{Value: 100, Address: adminAddr}}, adminPayload(consensus.AdminEnableCap, nil, 2))
	b5 := h.accept("b5 enables the cap (factor 2)", g.Next(b[3].Hash(), chaintest.Spec{Miner: m1, Txs: []*types.Tx{enable}}))
	// cap = 2 × 10 / 4 = 5; m1 mined 1..5.
	if st := h.c.Status(); !st.CapEnabled || st.Cap != 5 {
		t.Fatalf("Status() cap %v %d, want enabled 5", st.CapEnabled, st.Cap)
	}
	h.reject("cap+1", g.Next(b5.Hash(), by(m1)), consensus.ErrMinerCapped)
	tip := b5
	for _, m := range []*identity.Key{m2, m3, m2, m3, m2} { // 6..10
		tip = h.accept("others mine", g.Next(tip.Hash(), by(m)))
	}
	b10 := tip
	h.reject("m1 one block before the boundary (window 1..10)", g.Next(b10.Hash(), by(m1)), consensus.ErrMinerCapped)
	b11 := h.accept("b11", g.Next(b10.Hash(), by(m3)))
	b12 := h.accept("m1 exactly at the boundary (window 2..11)", g.Next(b11.Hash(), by(m1)))

	// Reorganise across the boundary and back; counters follow.
	s11 := h.side("s11", g.Next(b10.Hash(), by(m0)))
	s12 := h.side("s12", g.Next(s11.Hash(), by(m0)))
	s13 := g.Next(s12.Hash(), by(m3))
	h.reorg("side branch wins", s13, 2)
	if n := h.c.MinerWindowCount([32]byte(types.AddressOf(m1.Public()))); n != 2 { // window 4..13: 4, 5
		t.Fatalf("m1 window count on the side branch = %d, want 2", n)
	}
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state after the reorganisation differs from a replay")
	}
	b13 := h.side("b13", g.Next(b12.Hash(), by(m0)))
	b14 := g.Next(b13.Hash(), by(m2))
	h.reorg("main branch wins back", b14, 3)
	if n := h.c.MinerWindowCount([32]byte(types.AddressOf(m1.Public()))); n != 2 { // window 5..14: 5, 12
		t.Fatalf("m1 window count = %d, want 2", n)
	}
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state after reorganising back differs from a replay")
	}

	// Factor 1 in the middle of the window: cap = ceil(1 × 10 / 4) = 3.
	factor1 := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b[1])}, []types.TxOut{{Value: 100, Address: adminAddr}}, adminPayload(consensus.AdminEnableCap, nil, 1))
	b15 := h.accept("factor 1", g.Next(b14.Hash(), chaintest.Spec{Miner: m0, Txs: []*types.Tx{factor1}}))
	if st := h.c.Status(); st.Cap != 3 {
		t.Fatalf("cap after factor 1 = %d, want 3", st.Cap)
	}
	b16 := h.accept("m1 below the new cap", g.Next(b15.Hash(), by(m1)))
	b17 := h.accept("m1 at the new cap", g.Next(b16.Hash(), by(m1)))
	h.reject("m1 over the new cap (12, 16, 17 in 8..17)", g.Next(b17.Hash(), by(m1)), consensus.ErrMinerCapped)
	disable := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(b[2])}, []types.TxOut{{Value: 100, Address: adminAddr}}, adminPayload(consensus.AdminDisableCap, nil, 0))
	h.reject("m2 capped too (8, 10, 14)", g.Next(b17.Hash(), chaintest.Spec{Miner: m2, Txs: []*types.Tx{disable}}), consensus.ErrMinerCapped)
	b18 := h.accept("m3 disables the cap", g.Next(b17.Hash(), chaintest.Spec{Miner: m3, Txs: []*types.Tx{disable}}))
	h.accept("m1 free again", g.Next(b18.Hash(), by(m1)))
}
