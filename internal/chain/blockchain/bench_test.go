package blockchain

import (
	"flag"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

func benchChain(b *testing.B, g *chaintest.Builder, noSync bool) *Chain {
	b.Helper()
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "chain.db"), 0o600, &bbolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	c, err := New(Config{Params: g.P, DB: db, Now: func() time.Time { return g.Now }})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// branch builds n blocks on parent, each with a spend of a mature coin of
// the branch, a vote or admin change every few blocks, rotating miners.
func branch(g *chaintest.Builder, parent *types.Block, n int, tag string) []*types.Block {
	var out []*types.Block
	for i := range n {
		spec := chaintest.Spec{Miner: g.Miners[i%4], Extra: []byte(tag)}
		if i >= 4 && chaintest.MinerValue(out[i-4]) > 200 {
			old := out[i-4]
			spec.Txs = append(spec.Txs, g.Tx(g.Miners[(i-4)%4], []types.OutPoint{chaintest.MinerOut(old)},
				[]types.TxOut{{Value: 1, Address: chaintest.Addr(g.Miners[0])}, {Value: chaintest.MinerValue(old) - 100, Address: chaintest.Addr(g.Miners[1])}}, nil))
		}
		parent = g.Next(parent.Hash(), spec)
		out = append(out, parent)
	}
	return out
}

// BenchmarkReorg100 measures reorganisations of 100 blocks (disconnect
// 100, connect 101, all state written to bbolt and restored): two
// branches from a common block leapfrog each other.
func BenchmarkReorg100(b *testing.B) {
	g := chaintest.New(b, nil)
	c := benchChain(b, g, false)
	base := g.Genesis
	x := branch(g, base, 100, "x")
	y := branch(g, base, 101, "y")
	for _, blk := range x {
		if _, err := c.ProcessBlock(blk); err != nil {
			b.Fatal(err)
		}
	}
	for _, blk := range y[:100] {
		if _, err := c.ProcessBlock(blk); err != nil {
			b.Fatal(err)
		}
	}
	next := y[100]
	tips := [2]*types.Block{x[99], y[100]}
	turn := 0
	for b.Loop() {
		res, err := c.ProcessBlock(next)
		if err != nil || res.Reorged < 100 {
			b.Fatalf("ProcessBlock = %+v, %v", res, err)
		}
		b.StopTimer()
		// The other branch gets two blocks: the first ties, the second wins.
		loser := tips[turn]
		ext := branch2(g, loser)
		if _, err := c.ProcessBlock(ext[0]); err != nil {
			b.Fatal(err)
		}
		tips[turn] = ext[1]
		next = ext[1]
		turn = 1 - turn
		b.StartTimer()
	}
}

func branch2(g *chaintest.Builder, parent *types.Block) []*types.Block {
	first := g.Next(parent.Hash(), chaintest.Spec{Miner: g.Miners[1], Extra: []byte("a")})
	return []*types.Block{first, g.Next(first.Hash(), chaintest.Spec{Miner: g.Miners[2], Extra: []byte("b")})}
}

// BenchmarkProcessBlock2000 measures ProcessBlock of a block of 2000
// single-input transactions including its bbolt commit (fsync on).
func BenchmarkProcessBlock2000(b *testing.B) {
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
	pre := []*types.Block{b1}
	for range 3 {
		tip = g.Next(tip.Hash(), chaintest.Spec{})
		pre = append(pre, tip)
	}
	var txs []*types.Tx
	for i := range 2000 {
		txs = append(txs, g.Tx(m0, []types.OutPoint{{Tx: cbID, Index: uint32(i)}}, []types.TxOut{{Value: total/2000 - 100, Address: a0}}, nil))
	}
	// A fresh chain per iteration (untimed) receives the big block: cold,
	// or with every transaction's signatures verified before (as the
	// mempool does), through the signature cache.
	big := g.Next(tip.Hash(), chaintest.Spec{Txs: txs})
	for _, warm := range []bool{false, true} {
		name := "cold"
		if warm {
			name = "mempool-verified"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				c := benchChain(b, g, false)
				for _, blk := range pre {
					if _, err := c.ProcessBlock(blk); err != nil {
						b.Fatal(err)
					}
				}
				if warm {
					cache := consensus.NewSigCache(4096)
					for _, tx := range txs {
						cache.Add(tx.ID())
					}
					c.state.Sigs = cache
				}
				b.StartTimer()
				if res, err := c.ProcessBlock(big); err != nil || !res.MainChain {
					b.Fatalf("ProcessBlock = %+v, %v", res, err)
				}
			}
		})
	}
}

var replayBlocks = flag.Int("replay-blocks", 1000, "length of the chain BenchmarkReplay connects")

// BenchmarkReplay measures connecting a devnet-like chain of
// -replay-blocks blocks (one spend per block) into a fresh chain from
// scratch; blocks/s is reported.
func BenchmarkReplay(b *testing.B) {
	p := chaintest.Params()
	p.HalvingInterval = 210_000 // the subsidy lasts the whole chain
	g := chaintest.New(b, p)
	blocks := branch(g, g.Genesis, *replayBlocks, "r")
	for _, noSync := range []bool{false, true} {
		name := "fsync"
		if noSync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				c := benchChain(b, g, noSync)
				b.StartTimer()
				for _, blk := range blocks {
					if _, err := c.ProcessBlock(blk); err != nil {
						b.Fatal(consensus.CodeOf(err), err)
					}
				}
			}
			b.ReportMetric(float64(len(blocks)*b.N)/b.Elapsed().Seconds(), "blocks/s")
		})
	}
}
