package blockchain

import (
	"testing"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// TestSigCache: a cached transaction connects without its signatures being
// verified again, and the cache covers nothing else: a copy with another
// signature has another ID and is verified (and refused).
func TestSigCache(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	cache := consensus.NewSigCache(16)
	h.c.state.Sigs = cache
	bs := h.chain(g.Genesis, 5, chaintest.Spec{})
	good := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: 1000, Address: chaintest.Addr(m0)}}, nil)
	cache.Add(good.ID())

	forged := *good
	forged.Inputs = append([]types.TxIn(nil), good.Inputs...)
	forged.Inputs[0].Sig[0] ^= 1
	h.reject("forged signature of a cached transaction", g.Next(bs[4].Hash(), chaintest.Spec{Txs: []*types.Tx{&forged}}), consensus.ErrBadSignature)
	h.accept("cached transaction", g.Next(bs[4].Hash(), chaintest.Spec{Txs: []*types.Tx{good}}))
	if cache.Len() != 1 {
		t.Errorf("cache holds %d transactions, want 1", cache.Len())
	}
}
