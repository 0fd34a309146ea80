package blockchain

import (
	"testing"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// TestSupply mines through three halvings with contracts executing at the
// ceiling and checks at every height that the issued supply equals what
// the coinbases created, stays within the cumulative MaxIssuance and
// within MaxSupply, and that contract payments never exceed the
// (halving) ceiling.
func TestSupply(t *testing.T) {
	p := chaintest.Params()
	p.HalvingInterval = 40
	p.CCMaxDuration = 200
	h := newHarness(t, p)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	cb := h.chain(g.Genesis, 4, chaintest.Spec{})
	ben := chaintest.Addr(chaintest.NewKey(t))
	var props []*types.Tx
	for i, r := range []uint64{60, 40} {
		props = append(props, g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[i])}, []types.TxOut{{Value: 1000, Address: a0}, {Value: chaintest.MinerValue(cb[i]) - 2000, Address: a0}},
			proposal(r, 200, consensus.Beneficiary{Address: ben, Amount: r})))
	}
	tip := h.accept("proposals", g.Next(cb[3].Hash(), chaintest.Spec{Txs: props}))
	var votes []*types.Tx
	for _, pr := range props {
		votes = append(votes, g.Tx(m0, []types.OutPoint{chaintest.Out(pr, 1)}, []types.TxOut{{Value: 5000, Address: a0}}, vote(pr.ID(), true)))
	}
	tip = h.accept("votes", g.Next(tip.Hash(), chaintest.Spec{Txs: votes}))

	var cumMax uint64
	for height := int64(0); height <= 6; height++ {
		cumMax += p.MaxIssuance(height)
	}
	issued := h.c.Status().Issued
	if issued > cumMax {
		t.Fatalf("issued %d above cumulative MaxIssuance %d at height 6", issued, cumMax)
	}
	paidAt := map[int64]uint64{}
	for height := int64(7); height <= 130; height++ {
		tip = h.accept("run", g.Next(tip.Hash(), chaintest.Spec{}))
		cumMax += p.MaxIssuance(height)
		var payments, miner uint64
		outs := tip.Txs[0].Outputs
		for _, o := range outs[:len(outs)-1] {
			payments += o.Value
		}
		miner = outs[len(outs)-1].Value
		paidAt[height] = payments
		if payments > p.CCCeiling(height) {
			t.Fatalf("height %d: contracts paid %d above the ceiling %d", height, payments, p.CCCeiling(height))
		}
		st := h.c.Status()
		issued += payments + miner
		if st.Issued != issued {
			t.Fatalf("height %d: issued %d, coinbases created %d", height, st.Issued, issued)
		}
		if st.Issued > cumMax || st.Issued > chaincfg.MaxSupply {
			t.Fatalf("height %d: issued %d above cumulative MaxIssuance %d", height, st.Issued, cumMax)
		}
	}
	// Both run before the first halving (100 per block), only the 40 fits
	// the ceiling of 50 after it, none fits 25.
	for _, c := range []struct {
		height int64
		want   uint64
	}{{20, 100}, {39, 100}, {40, 40}, {79, 40}, {80, 0}, {130, 0}} {
		if got := paidAt[c.height]; got != c.want {
			t.Errorf("contracts paid %d at height %d, want %d", got, c.height, c.want)
		}
	}
}

// TestSupplySchedule checks the schedule the consensus rules rely on: the
// miner subsidy plus the contract ceiling, summed over every height,
// stays within MaxSupply for every network.
func TestSupplySchedule(t *testing.T) {
	for _, p := range []*chaincfg.Params{chaincfg.MainNet(), chaincfg.TestNet(), chaincfg.DevNet()} {
		var cum uint64
		for height := int64(0); ; height++ {
			m := p.MaxIssuance(height)
			if m == 0 && height > 0 {
				break
			}
			cum += m
			if cum > chaincfg.MaxSupply {
				t.Fatalf("%s: cumulative issuance %d above MaxSupply at height %d", p.Name, cum, height)
			}
		}
	}
}
