package consensus_test

import (
	"fmt"
	"testing"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// BenchmarkConnect2000 connects a block of 2000 single-input transactions
// to the state (UTXO checks, payloads, signatures on 1 or 2 workers);
// the disconnect between iterations is not timed.
func BenchmarkConnect2000(b *testing.B) {
	g := chaintest.New(b, nil)
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	b1 := g.Next(g.Genesis.Hash(), chaintest.Spec{})
	total := b1.Txs[0].Outputs[0].Value
	b1.Txs[0].Outputs = nil
	for range 2000 {
		b1.Txs[0].Outputs = append(b1.Txs[0].Outputs, types.TxOut{Value: total / 2000, Address: a0})
	}
	g.Finish(b1, m0)
	cbID := b1.Txs[0].ID()
	tip := b1
	for range 3 {
		tip = g.Next(tip.Hash(), chaintest.Spec{})
	}
	var txs []*types.Tx
	for i := range 2000 {
		txs = append(txs, g.Tx(m0, []types.OutPoint{{Tx: cbID, Index: uint32(i)}}, []types.TxOut{{Value: total/2000 - 100, Address: a0}}, nil))
	}
	big := g.Next(tip.Hash(), chaintest.Spec{Txs: txs})
	st := g.StateAt(tip.Hash())
	if err := consensus.CheckBlockSanity(g.P, g.Engine, big); err != nil {
		b.Fatal(err)
	}
	b.Logf("block of %d transactions, %d bytes", len(big.Txs), len(big.Encode()))
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			st.SigWorkers = w
			b.ReportAllocs()
			for b.Loop() {
				u, err := st.Connect(g.Engine, big)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := st.Disconnect(u); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
	b.Run("sanity", func(b *testing.B) {
		for b.Loop() {
			if err := consensus.CheckBlockSanity(g.P, g.Engine, big); err != nil {
				b.Fatal(err)
			}
		}
	})
}
