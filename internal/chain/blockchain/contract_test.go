package blockchain

import (
	"bytes"
	"slices"
	"testing"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

func proposal(reward, duration uint64, bens ...consensus.Beneficiary) []byte {
	return (&consensus.Payload{Proposal: &consensus.Proposal{Reward: reward, Duration: duration, Beneficiaries: bens}}).Encode()
}

func vote(id types.Hash, yes bool) []byte {
	return (&consensus.Payload{Vote: &consensus.Vote{Contract: id, Yes: yes}}).Encode()
}

func (h *harness) contract(id types.Hash) consensus.Contract {
	h.t.Helper()
	for _, c := range h.c.Contracts() {
		if c.ID == id {
			return c
		}
	}
	h.t.Fatalf("contract %s not found", id)
	return consensus.Contract{}
}

// TestContractBlocks covers contribution contracts: bad proposals, votes
// outside the window, double votes, vote coins spent, a reorganisation
// removing votes, the ceiling and the queue in deterministic order, a
// spent deposit cancelling, payments enforced in the coinbase.
func TestContractBlocks(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	ben1, ben2, ben3 := chaintest.Addr(chaintest.NewKey(t)), chaintest.Addr(chaintest.NewKey(t)), chaintest.Addr(chaintest.NewKey(t))
	cb := h.chain(g.Genesis, 8, chaintest.Spec{}) // coins of m0, cb[i] at height i+1
	b8 := cb[7]
	v := func(i int) uint64 { return chaintest.MinerValue(cb[i]) }

	// Height 9: three proposals and a splitter making vote coins.
	p1 := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[0])}, []types.TxOut{{Value: 1000, Address: a0}, {Value: v(0) - 1100, Address: a0}},
		proposal(60, 5, consensus.Beneficiary{Address: ben1, Amount: 40}, consensus.Beneficiary{Address: ben2, Amount: 20}))
	p2 := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[1])}, []types.TxOut{{Value: 1000, Address: a0}, {Value: v(1) - 1100, Address: a0}},
		proposal(60, 3, consensus.Beneficiary{Address: ben2, Amount: 60}))
	p3 := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[2])}, []types.TxOut{{Value: 2000, Address: a0}, {Value: v(2) - 2100, Address: a0}},
		proposal(30, 2, consensus.Beneficiary{Address: ben3, Amount: 30}))
	split := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[3])}, []types.TxOut{
		{Value: 10000, Address: a0}, {Value: 3000, Address: a0}, {Value: 20000, Address: a0}, {Value: 500, Address: a0}, {Value: 777, Address: a0},
		{Value: v(3) - 40000, Address: a0}}, nil)

	badSum := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[4])}, []types.TxOut{{Value: 1000, Address: a0}},
		proposal(60, 5, consensus.Beneficiary{Address: ben1, Amount: 40}, consensus.Beneficiary{Address: ben2, Amount: 19}))
	h.reject("beneficiaries sum != reward", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{badSum}}), consensus.ErrCCBeneficiarySum)
	small := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[4])}, []types.TxOut{{Value: 999, Address: a0}}, proposal(60, 5, consensus.Beneficiary{Address: ben1, Amount: 60}))
	h.reject("deposit below the minimum", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{small}}), consensus.ErrCCDepositTooSmall)
	tooMuch := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cb[4])}, []types.TxOut{{Value: 1000, Address: a0}}, proposal(61, 5, consensus.Beneficiary{Address: ben1, Amount: 61}))
	h.reject("reward above the per-contract maximum", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{tooMuch}}), consensus.ErrCCBadProposal)
	early := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 0)}, []types.TxOut{{Value: 10000, Address: a0}}, vote(p1.ID(), true))
	h.reject("vote in the proposal's block", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{p1, split, early}}), consensus.ErrCCVoteWindow)
	unknown := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 0)}, []types.TxOut{{Value: 10000, Address: a0}}, vote(types.Hash{1}, true))
	h.reject("vote for an unknown contract", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{split, unknown}}), consensus.ErrCCUnknownContract)
	b9 := h.accept("b9 proposals", g.Next(b8.Hash(), chaintest.Spec{Txs: []*types.Tx{p1, p2, p3, split}}))
	if c := h.contract(p1.ID()); c.State != consensus.CCSubmitted || c.VotingEnd != 13 {
		t.Fatalf("p1 = %+v, want submitted, voting to 13", c)
	}

	// Height 10: votes.
	v1 := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 0)}, []types.TxOut{{Value: 10000, Address: a0}}, vote(p1.ID(), true))
	v2 := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 1)}, []types.TxOut{{Value: 3000, Address: a0}}, vote(p2.ID(), false))
	v3 := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 2)}, []types.TxOut{{Value: 20000, Address: a0}}, vote(p2.ID(), true))
	v4 := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 3)}, []types.TxOut{{Value: 500, Address: a0}}, vote(p3.ID(), true))
	v5 := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 4)}, []types.TxOut{{Value: 777, Address: a0}}, vote(p1.ID(), true))
	h.reject("the same vote twice", g.Next(b9.Hash(), chaintest.Spec{Txs: []*types.Tx{v1, v1}}), consensus.ErrDuplicateTx)
	b10 := h.accept("b10 votes", g.Next(b9.Hash(), chaintest.Spec{Txs: []*types.Tx{v1, v2, v3, v4, v5}}))
	if c := h.contract(p1.ID()); c.Yes != 10777 || c.No != 0 {
		t.Fatalf("p1 tally %d/%d, want 10777/0", c.Yes, c.No)
	}
	if c := h.contract(p2.ID()); c.Yes != 20000 || c.No != 3000 {
		t.Fatalf("p2 tally %d/%d, want 20000/3000", c.Yes, c.No)
	}
	again := g.Tx(m0, []types.OutPoint{chaintest.Out(split, 0)}, []types.TxOut{{Value: 10000, Address: a0}}, vote(p1.ID(), true))
	h.reject("a vote coin voting twice", g.Next(b10.Hash(), chaintest.Spec{Txs: []*types.Tx{again}}), consensus.ErrMissingTxOut)

	// A side branch without the votes wins: the tallies drop.
	s10 := h.side("s10", g.Next(b9.Hash(), chaintest.Spec{Miner: g.Miners[1]}))
	s11 := g.Next(s10.Hash(), chaintest.Spec{Miner: g.Miners[1]})
	h.reorg("reorg removing the votes", s11, 1)
	if c := h.contract(p1.ID()); c.Yes != 0 {
		t.Fatalf("p1 yes after the reorg = %d, want 0", c.Yes)
	}

	// Height 11 on the voting branch: v5's coin is spent (its vote drops),
	// v1's coin votes again (counted once).
	spend5 := g.Tx(m0, []types.OutPoint{chaintest.Out(v5, 0)}, []types.TxOut{{Value: 700, Address: a0}}, nil)
	revote := g.Tx(m0, []types.OutPoint{chaintest.Out(v1, 0)}, []types.TxOut{{Value: 10000, Address: a0}}, vote(p1.ID(), true))
	b11 := h.side("b11", g.Next(b10.Hash(), chaintest.Spec{Txs: []*types.Tx{spend5, revote}}))
	b12 := g.Next(b11.Hash(), chaintest.Spec{})
	h.reorg("the votes come back", b12, 2)
	if c := h.contract(p1.ID()); c.Yes != 10000 {
		t.Fatalf("p1 yes = %d, want 10000 (v5 withdrawn, v1 once)", c.Yes)
	}
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state differs from a replay after reorganising the votes")
	}
	b13 := h.accept("b13", g.Next(b12.Hash(), chaintest.Spec{}))

	// Height 14: voting is over.
	late := g.Tx(m0, []types.OutPoint{chaintest.Out(v2, 0)}, []types.TxOut{{Value: 3000, Address: a0}}, vote(p2.ID(), false))
	h.reject("vote after the window", g.Next(b13.Hash(), chaintest.Spec{Txs: []*types.Tx{late}}), consensus.ErrCCVoteWindow)
	b14 := h.accept("b14 decides", g.Next(b13.Hash(), chaintest.Spec{}))
	for _, id := range []types.Hash{p1.ID(), p2.ID(), p3.ID()} {
		if c := h.contract(id); c.State != consensus.CCApproved || c.Start != 15 {
			t.Fatalf("contract %s = %v start %d, want approved, start 15", id, c.State, c.Start)
		}
	}

	// Height 15: FIFO by (decision height, ID) under the ceiling of 100:
	// the first executes, the rest queue behind the one that does not fit.
	order := []*types.Tx{p1, p2, p3}
	slices.SortFunc(order, func(a, b *types.Tx) int { id1, id2 := a.ID(), b.ID(); return bytes.Compare(id1[:], id2[:]) })
	noPay := g.Next(b14.Hash(), chaintest.Spec{})
	noPay.Txs[0].Outputs = noPay.Txs[0].Outputs[len(noPay.Txs[0].Outputs)-1:]
	g.Finish(noPay, m0)
	h.reject("coinbase without the contract payments", noPay, consensus.ErrBadContractPayments)
	b15 := h.accept("b15 starts the first", g.Next(b14.Hash(), chaintest.Spec{}))
	running := map[types.Hash]bool{}
	var sum uint64
	blocked := false
	for _, tx := range order {
		c := h.contract(tx.ID())
		fits := !blocked && sum+c.Reward <= 100
		if fits {
			sum += c.Reward
			running[c.ID] = true
		} else {
			blocked = true
		}
		if want := map[bool]consensus.ContractState{true: consensus.CCExecuting, false: consensus.CCQueued}[fits]; c.State != want {
			t.Fatalf("contract %s (reward %d) is %v, want %v", c.ID, c.Reward, c.State, want)
		}
	}
	if n := len(b15.Txs[0].Outputs); n < 2 {
		t.Fatalf("b15 coinbase has %d outputs, want the payments and the miner", n)
	}

	// The deposit of the last queued contract is spent: it is cancelled.
	last := order[2]
	if running[last.ID()] {
		t.Fatal("test assumes the last contract queued")
	}
	cancel := g.Tx(m0, []types.OutPoint{chaintest.Out(last, 0)}, []types.TxOut{{Value: 900, Address: a0}}, nil)
	tip := h.accept("b16 spends a deposit", g.Next(b15.Hash(), chaintest.Spec{Txs: []*types.Tx{cancel}}))
	if c := h.contract(last.ID()); c.State != consensus.CCCancelled {
		t.Fatalf("contract with spent deposit is %v, want cancelled", c.State)
	}
	// Run to the end: everything not cancelled executes.
	for range 12 {
		tip = h.accept("run", g.Next(tip.Hash(), chaintest.Spec{}))
	}
	for _, tx := range order[:2] {
		if c := h.contract(tx.ID()); c.State != consensus.CCExecuted || c.Ended-c.Start != int64(c.Duration) {
			t.Fatalf("contract %s = %v, start %d, ended %d, duration %d", c.ID, c.State, c.Start, c.Ended, c.Duration)
		}
	}
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("state differs from a replay of the main chain")
	}
}
