package blockchain

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// harness runs block-test instances against a fresh Chain: each block is
// tagged accepted (main chain or side), rejected with a code, orphan, and
// the expected tip is checked after it.
type harness struct {
	t     *testing.T
	g     *chaintest.Builder
	c     *Chain
	db    *bbolt.DB
	path  string
	count map[string]int
}

func openDB(t testing.TB, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newHarness(t *testing.T, p *chaincfg.Params) *harness {
	t.Helper()
	g := chaintest.New(t, p)
	path := filepath.Join(t.TempDir(), "chain.db")
	db := openDB(t, path)
	h := &harness{t: t, g: g, db: db, path: path, count: map[string]int{}}
	h.c = h.open()
	t.Cleanup(func() {
		h.db.Close()
		var total int
		for _, n := range h.count {
			total += n
		}
		t.Logf("instances: %v (total %d)", h.count, total)
	})
	return h
}

func (h *harness) open() *Chain {
	h.t.Helper()
	c, err := New(Config{Params: h.g.P, DB: h.db, Now: func() time.Time { return h.g.Now }})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// reopen closes and reopens the database and the chain.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.db.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.db = openDB(h.t, h.path)
	h.c = h.open()
}

func (h *harness) tipIs(b *types.Block) {
	h.t.Helper()
	h.count["expected-tip"]++
	if tip := h.c.Tip(); tip.Hash != b.Hash() {
		h.t.Fatalf("tip = %s (height %d), want %s (height %d)", tip.Hash, tip.Height, b.Hash(), h.g.Height(b.Hash()))
	}
}

func (h *harness) tipBlock() *types.Block {
	h.t.Helper()
	b, err := h.c.BlockByHash(h.c.Tip().Hash)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// accept expects b to be accepted onto the main chain and become the tip.
func (h *harness) accept(name string, b *types.Block) *types.Block {
	h.t.Helper()
	h.count["accepted"]++
	res, err := h.c.ProcessBlock(b)
	if err != nil || res.Orphan || !res.MainChain {
		h.t.Fatalf("%s: ProcessBlock = %+v, %v; want accepted on the main chain", name, res, err)
	}
	h.tipIs(b)
	return b
}

// side expects b to be stored on a side branch (not the tip).
func (h *harness) side(name string, b *types.Block) *types.Block {
	h.t.Helper()
	h.count["accepted-side"]++
	tip := h.c.Tip()
	res, err := h.c.ProcessBlock(b)
	if err != nil || res.Orphan || res.MainChain {
		h.t.Fatalf("%s: ProcessBlock = %+v, %v; want accepted on a side branch", name, res, err)
	}
	if h.c.Tip() != tip {
		h.t.Fatalf("%s: tip moved", name)
	}
	return b
}

// reject expects b to be rejected with code and the tip to stay.
func (h *harness) reject(name string, b *types.Block, code consensus.ErrorCode) {
	h.t.Helper()
	h.count["rejected"]++
	tip := h.c.Tip()
	res, err := h.c.ProcessBlock(b)
	if got := consensus.CodeOf(err); got != code {
		h.t.Fatalf("%s: ProcessBlock = %+v, %v; want %v", name, res, err, code)
	}
	if h.c.Tip() != tip {
		h.t.Fatalf("%s: rejected block moved the tip", name)
	}
}

// orphan expects b to wait in the orphan pool.
func (h *harness) orphan(name string, b *types.Block) {
	h.t.Helper()
	h.count["orphan"]++
	res, err := h.c.ProcessBlock(b)
	if err != nil || !res.Orphan {
		h.t.Fatalf("%s: ProcessBlock = %+v, %v; want orphan", name, res, err)
	}
}

// reorg expects b to make its branch the main chain, disconnecting n blocks.
func (h *harness) reorg(name string, b *types.Block, n int) {
	h.t.Helper()
	h.count["accepted-reorg"]++
	res, err := h.c.ProcessBlock(b)
	if err != nil || !res.MainChain || res.Reorged != n {
		h.t.Fatalf("%s: ProcessBlock = %+v, %v; want a reorganisation of %d", name, res, err, n)
	}
	h.tipIs(b)
}

// chain builds and accepts n blocks on parent with spec.
func (h *harness) chain(parent *types.Block, n int, spec chaintest.Spec) []*types.Block {
	h.t.Helper()
	var out []*types.Block
	for range n {
		b := h.g.Next(parent.Hash(), spec)
		h.accept("chain", b)
		out = append(out, b)
		parent = b
	}
	return out
}

// replayDigest connects the main chain of h into a fresh chain and returns
// its state digest: the state that only ever saw these blocks.
func (h *harness) replayDigest() types.Hash {
	h.t.Helper()
	db := openDB(h.t, filepath.Join(h.t.TempDir(), "replay.db"))
	defer db.Close()
	c, err := New(Config{Params: h.g.P, DB: db, Now: func() time.Time { return h.g.Now }})
	if err != nil {
		h.t.Fatal(err)
	}
	tip := h.c.Tip()
	for height := int64(1); height <= tip.Height; height++ {
		hd, _ := h.c.HeaderByHeight(height)
		b, err := h.c.BlockByHash(hd.Hash())
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := c.ProcessBlock(b); err != nil {
			h.t.Fatalf("replay of height %d: %v", height, err)
		}
	}
	return c.StateDigest()
}
