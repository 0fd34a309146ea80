package miner

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

func template(t testing.TB, bits uint32) Template {
	t.Helper()
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := chaincfg.DevNet()
	return Template{Magic: p.Magic, Version: 1, Height: 5, Prev: types.Hash{7}, Bits: bits, Time: 1_800_000_000,
		Payments: []types.TxOut{{Value: 3, Address: types.Address{9}}}, Subsidy: p.Subsidy(5), Fees: 11, Miner: key}
}

func TestSolveDevnet(t *testing.T) {
	p := chaincfg.DevNet()
	tm := template(t, p.PowLimitBits)
	var hashes atomic.Uint64
	b, err := Solve(context.Background(), tm, 2, nil, &hashes)
	if err != nil {
		t.Fatal(err)
	}
	h := b.Hash()
	if err := pow.CheckProof(h, b.Header.Bits, p.PowLimit); err != nil {
		t.Fatalf("solved block fails its proof: %v", err)
	}
	cb := b.Txs[0]
	if err := cb.VerifyCoinbase(p.Magic); err != nil {
		t.Fatal(err)
	}
	if cb.Coinbase.Height != 5 || cb.Coinbase.Prev != tm.Prev {
		t.Errorf("coinbase binds height %d prev %s", cb.Coinbase.Height, cb.Coinbase.Prev)
	}
	if len(cb.Outputs) != 2 || cb.Outputs[0] != tm.Payments[0] || cb.Outputs[1].Value != tm.Subsidy+tm.Fees {
		t.Errorf("coinbase outputs = %+v", cb.Outputs)
	}
	if root, _ := types.MerkleRoot(b.TxIDs()); root != b.Header.Merkle {
		t.Error("Merkle root mismatch")
	}
	if hashes.Load() == 0 {
		t.Error("no hashes counted")
	}
}

func TestSolveStops(t *testing.T) {
	hard := uint32(0x03000001) // a target of 1: never met
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Solve(ctx, template(t, hard), 2, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Solve past its deadline = %v", err)
	}
	var polls atomic.Int32
	stale := func() bool { return polls.Add(1) > 3 }
	if _, err := Solve(context.Background(), template(t, hard), 1, stale, nil); !errors.Is(err, ErrStale) {
		t.Errorf("Solve on a stale template = %v", err)
	}
}

func BenchmarkHashrate(b *testing.B) {
	tm := template(b, 0x03000001)
	var hashes atomic.Uint64
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	Solve(ctx, tm, 0, nil, &hashes)
	b.ReportMetric(float64(hashes.Load())/time.Since(start).Seconds()/1e6, "MH/s")
}
