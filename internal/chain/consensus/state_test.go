package consensus_test

import (
	"bytes"
	"testing"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// TestUndoRoundTrip connects blocks that change every kind of state
// (coins, licences, cap, window, contracts, votes, deposits) and checks
// that disconnecting each with its encoded-and-decoded undo record gives
// back the state byte for byte (Digest), and that reconnecting gives the
// same state again.
func TestUndoRoundTrip(t *testing.T) {
	g := chaintest.New(t, nil)
	m0, admin := g.Miners[0], g.Admins[0]
	a0, adminAddr := chaintest.Addr(m0), chaintest.Addr(admin)
	var blocks []*types.Block
	tip := g.Genesis
	next := func(spec chaintest.Spec) *types.Block {
		tip = g.Next(tip.Hash(), spec)
		blocks = append(blocks, tip)
		return tip
	}
	for range 4 {
		next(chaintest.Spec{PayTo: &adminAddr})
	}
	for range 4 {
		next(chaintest.Spec{})
	}
	k := chaintest.NewKey(t)
	add := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(blocks[0])}, []types.TxOut{{Value: 100, Address: adminAddr}},
		(&consensus.Payload{Admin: &consensus.Admin{Op: consensus.AdminAddLicence, Key: [32]byte(types.AddressOf(k.Public()))}}).Encode())
	enable := g.Tx(admin, []types.OutPoint{chaintest.MinerOut(blocks[1])}, []types.TxOut{{Value: 100, Address: adminAddr}},
		(&consensus.Payload{Admin: &consensus.Admin{Op: consensus.AdminEnableCap, Factor: 3}}).Encode())
	prop := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(blocks[4])}, []types.TxOut{{Value: 1000, Address: a0}, {Value: 5000, Address: a0}},
		(&consensus.Payload{Proposal: &consensus.Proposal{Reward: 50, Duration: 3, Beneficiaries: []consensus.Beneficiary{{Address: a0, Amount: 50}}}}).Encode())
	next(chaintest.Spec{Txs: []*types.Tx{add, enable, prop}})
	yes := g.Tx(m0, []types.OutPoint{chaintest.Out(prop, 1)}, []types.TxOut{{Value: 4000, Address: a0}},
		(&consensus.Payload{Vote: &consensus.Vote{Contract: prop.ID(), Yes: true}}).Encode())
	next(chaintest.Spec{Txs: []*types.Tx{yes}, Miner: k})
	for i := range 12 {
		next(chaintest.Spec{Miner: g.Miners[1+i%3]})
	}

	st := consensus.NewState(g.P)
	if _, err := st.ConnectGenesis(g.Genesis); err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		before := st.Digest()
		u, err := st.Connect(g.Engine, b)
		if err != nil {
			t.Fatalf("block %d: %v", i+1, err)
		}
		after := st.Digest()
		u2, err := consensus.DecodeUndo(u.Encode())
		if err != nil || !bytes.Equal(u2.Encode(), u.Encode()) {
			t.Fatalf("block %d: undo round trip: %v", i+1, err)
		}
		if err := st.Disconnect(u2); err != nil {
			t.Fatal(err)
		}
		if st.Digest() != before {
			t.Fatalf("block %d: disconnect did not restore the state", i+1)
		}
		if _, err := st.Connect(g.Engine, b); err != nil {
			t.Fatalf("block %d reconnect: %v", i+1, err)
		}
		if st.Digest() != after {
			t.Fatalf("block %d: reconnect gave another state", i+1)
		}
	}
	c, ok := st.Contract(prop.ID())
	if !ok || c.State != consensus.CCExecuted {
		t.Fatalf("contract = %+v, want executed", c)
	}
	// A state loaded from its records is the same state.
	var recs [][3][]byte
	st.Records(func(b string, k, v []byte) { recs = append(recs, [3][]byte{[]byte(b), k, v}) })
	st2, err := consensus.LoadState(g.P, func(fn func(string, []byte, []byte) error) error {
		for _, r := range recs {
			if err := fn(string(r[0]), r[1], r[2]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || st2.Digest() != st.Digest() {
		t.Fatalf("LoadState: %v", err)
	}
	// A failed connect leaves the state as it was.
	before := st.Digest()
	bad := g.Next(tip.Hash(), chaintest.Spec{})
	bad.Txs[0].Outputs[0].Value++
	g.Finish(bad, m0)
	if _, err := st.Connect(g.Engine, bad); consensus.CodeOf(err) != consensus.ErrBadCoinbaseValue {
		t.Fatalf("Connect(bad) = %v", err)
	}
	if st.Digest() != before {
		t.Fatal("failed connect changed the state")
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, p := range []consensus.Payload{
		{Admin: &consensus.Admin{Op: consensus.AdminAddLicence, Key: [32]byte{1}}},
		{Admin: &consensus.Admin{Op: consensus.AdminRemoveLicence, Key: [32]byte{2}}},
		{Admin: &consensus.Admin{Op: consensus.AdminEnableCap, Factor: 3}},
		{Admin: &consensus.Admin{Op: consensus.AdminDisableCap}},
		{Proposal: &consensus.Proposal{Reward: 300, Duration: 1000, Beneficiaries: []consensus.Beneficiary{{Address: types.Address{3}, Amount: 300}}}},
		{Vote: &consensus.Vote{Contract: types.Hash{4}, Yes: true}},
		{Vote: &consensus.Vote{Contract: types.Hash{4}}},
	} {
		enc := p.Encode()
		got, err := consensus.DecodePayload(enc)
		if err != nil || !bytes.Equal(got.Encode(), enc) {
			t.Fatalf("DecodePayload(%x) = %+v, %v", enc, got, err)
		}
	}
	for name, b := range map[string][]byte{
		"unknown kind":   {9},
		"unknown op":     {1, 9},
		"short key":      {1, 1, 0},
		"factor 0":       {1, 3, 0},
		"trailing":       {1, 4, 0},
		"no choice":      append([]byte{3}, make([]byte, 32)...),
		"choice 2":       append(append([]byte{3}, make([]byte, 32)...), 2),
		"no beneficiary": {2, 1, 1, 0},
		"non-minimal":    {2, 0x81, 0x00, 1, 0},
		"too many":       {2, 1, 1, 9},
	} {
		if _, err := consensus.DecodePayload(b); err == nil {
			t.Errorf("DecodePayload(%s) accepted %x", name, b)
		}
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte{1, 3, 5})
	f.Add(append([]byte{3}, make([]byte, 33)...))
	f.Add((&consensus.Payload{Proposal: &consensus.Proposal{Reward: 5, Duration: 7, Beneficiaries: []consensus.Beneficiary{{Amount: 5}}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := consensus.DecodePayload(b)
		if err != nil {
			return
		}
		if enc := p.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("DecodePayload(%x) re-encodes as %x", b, enc)
		}
	})
}

func FuzzDecodeUndo(f *testing.F) {
	f.Add((&consensus.Undo{Changes: []consensus.Change{{Bucket: consensus.BucketUTXO, Key: make([]byte, 36), Prev: []byte{1, 2}}, {Bucket: consensus.BucketMeta, Key: []byte("tip")}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := consensus.DecodeUndo(b)
		if err != nil {
			return
		}
		if enc := u.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("DecodeUndo(%x) re-encodes as %x", b, enc)
		}
	})
}

// FuzzBlockSanity feeds decoded blocks to the context-free checks (which
// must not panic on any structure the decoder accepts).
func FuzzBlockSanity(f *testing.F) {
	g := chaintest.New(f, nil)
	f.Add(g.Next(g.Genesis.Hash(), chaintest.Spec{}).Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := types.DecodeBlock(data)
		if err != nil {
			return
		}
		_ = consensus.CheckBlockSanity(g.P, g.Engine, b)
	})
}

// TestVoteSplitting checks that splitting a vote's weight over many coins
// (a Sybil) gives exactly the tally of one coin of the same weight.
func TestVoteSplitting(t *testing.T) {
	g := chaintest.New(t, nil)
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	tip := g.Genesis
	var cbs []*types.Block
	for range 4 {
		tip = g.Next(tip.Hash(), chaintest.Spec{})
		cbs = append(cbs, tip)
	}
	prop := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(cbs[0])}, []types.TxOut{{Value: 1000, Address: a0}, {Value: 100000, Address: a0}},
		(&consensus.Payload{Proposal: &consensus.Proposal{Reward: 10, Duration: 2, Beneficiaries: []consensus.Beneficiary{{Address: a0, Amount: 10}}}}).Encode())
	base := g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{prop}})
	yes := (&consensus.Payload{Vote: &consensus.Vote{Contract: prop.ID(), Yes: true}}).Encode()
	one := g.Tx(m0, []types.OutPoint{chaintest.Out(prop, 1)}, []types.TxOut{{Value: 9000, Address: a0}}, yes)
	var split []*types.Tx
	splitter := g.Tx(m0, []types.OutPoint{chaintest.Out(prop, 1)}, []types.TxOut{{Value: 3000, Address: a0}, {Value: 3000, Address: a0}, {Value: 3000, Address: a0}}, nil)
	split = append(split, splitter)
	for i := range 3 {
		split = append(split, g.Tx(m0, []types.OutPoint{chaintest.Out(splitter, uint32(i))}, []types.TxOut{{Value: 3000, Address: a0}}, yes))
	}
	whole := g.Next(base.Hash(), chaintest.Spec{Txs: []*types.Tx{one}})
	parts := g.Next(base.Hash(), chaintest.Spec{Txs: split})
	cw, _ := g.StateAt(whole.Hash()).Contract(prop.ID())
	cp, _ := g.StateAt(parts.Hash()).Contract(prop.ID())
	if cw.Yes != 9000 || cp.Yes != cw.Yes {
		t.Fatalf("tally of one coin %d, of three %d, want 9000 both", cw.Yes, cp.Yes)
	}
}
