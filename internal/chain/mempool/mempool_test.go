package mempool

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/types"
)

var testMagic = [4]byte{'t', 'e', 's', 't'}

// utxoSet is an in-memory confirmed UTXO set: a data fixture.
type utxoSet struct {
	mu   sync.Mutex
	outs map[types.OutPoint]utxo
	tip  int64
}

type utxo struct {
	out      types.TxOut
	height   int64
	coinbase bool
}

func newUTXOSet(tip int64) *utxoSet {
	return &utxoSet{outs: map[types.OutPoint]utxo{}, tip: tip}
}

func (s *utxoSet) UTXO(op types.OutPoint) (types.TxOut, int64, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.outs[op]
	return u.out, u.height, u.coinbase, ok
}

func (s *utxoSet) TipHeight() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tip
}

func (s *utxoSet) add(op types.OutPoint, out types.TxOut, height int64, coinbase bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outs[op] = utxo{out, height, coinbase}
}

// apply connects a block's transactions to the set.
func (s *utxoSet) apply(b *types.Block, height int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tx := range b.Txs {
		for _, in := range tx.Inputs {
			delete(s.outs, in.Prev)
		}
		id := tx.ID()
		for i, o := range tx.Outputs {
			s.outs[types.OutPoint{Tx: id, Index: uint32(i)}] = utxo{o, height, tx.IsCoinbase()}
		}
	}
	s.tip = height
}

// fixture is a pool over a UTXO set with funded keys.
type fixture struct {
	t    testing.TB
	set  *utxoSet
	pool *Pool
	keys []*identity.Key
	n    uint32
}

func keyFromSeed(t testing.TB, i int) *identity.Key {
	seed := sha256.Sum256(binary.AppendUvarint([]byte("mempool test key"), uint64(i)))
	k, err := identity.NewKeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFixture(t testing.TB, cfg Config) *fixture {
	f := &fixture{t: t, set: newUTXOSet(1000)}
	for i := range 4 {
		f.keys = append(f.keys, keyFromSeed(t, i))
	}
	cfg.Magic = testMagic
	if cfg.CoinbaseMaturity == 0 {
		cfg.CoinbaseMaturity = 100
	}
	cfg.Source = f.set
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.pool = p
	return f
}

func addr(k *identity.Key) types.Address { return types.AddressOf(k.Public()) }

// fund creates a confirmed output of value owned by k.
func (f *fixture) fund(k *identity.Key, value uint64) types.OutPoint {
	f.n++
	op := types.OutPoint{Tx: types.DoubleSHA256(binary.AppendUvarint([]byte("funding"), uint64(f.n))), Index: f.n % 3}
	f.set.add(op, types.TxOut{Value: value, Address: addr(k)}, 10, false)
	return op
}

// spend builds a signed transaction spending ops (all owned by k) to outs.
func spend(k *identity.Key, ops []types.OutPoint, outs ...types.TxOut) *types.Tx {
	tx := &types.Tx{Version: 1, Outputs: outs}
	for _, op := range ops {
		tx.Inputs = append(tx.Inputs, types.TxIn{Prev: op})
	}
	tx.SignInputs(testMagic, func(int) *identity.Key { return k })
	return tx
}

func out(k *identity.Key, v uint64) types.TxOut { return types.TxOut{Value: v, Address: addr(k)} }

func op(tx *types.Tx, i uint32) types.OutPoint { return types.OutPoint{Tx: tx.ID(), Index: i} }

func mustAccept(t testing.TB, p *Pool, tx *types.Tx) {
	t.Helper()
	if err := p.Accept(tx); err != nil {
		t.Fatalf("Accept: %v", err)
	}
}

func TestAcceptValid(t *testing.T) {
	f := newFixture(t, Config{MinFeeRate: 1})
	a, b := f.keys[0], f.keys[1]
	tx := spend(a, []types.OutPoint{f.fund(a, 10_000)}, out(b, 5000), out(a, 4000))
	mustAccept(t, f.pool, tx)
	if !f.pool.Has(tx.ID()) || f.pool.Len() != 1 || f.pool.Bytes() != tx.Size() {
		t.Fatalf("pool after accept: has %v len %d bytes %d", f.pool.Has(tx.ID()), f.pool.Len(), f.pool.Bytes())
	}
	if got, ok := f.pool.Get(tx.ID()); !ok || !types.Equal(got, tx) {
		t.Fatal("Get does not return the accepted transaction")
	}
	if id, ok := f.pool.SpentBy(tx.Inputs[0].Prev); !ok || id != tx.ID() {
		t.Fatal("SpentBy does not name the spender")
	}
	if err := f.pool.Accept(tx); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second Accept: %v, want ErrDuplicate", err)
	}
}

func TestRejections(t *testing.T) {
	cfg := Config{MinFeeRate: 2, CoinbaseMaturity: 100}
	cases := []struct {
		name string
		cfg  func(*Config)
		tx   func(f *fixture) *types.Tx
		want error
	}{
		{"nil", nil, func(f *fixture) *types.Tx { return nil }, ErrMalformed},
		{"coinbase", nil, func(f *fixture) *types.Tx {
			return &types.Tx{Coinbase: &types.Coinbase{Height: 5}, Outputs: []types.TxOut{out(f.keys[0], 1)}}
		}, ErrMalformed},
		{"no inputs", nil, func(f *fixture) *types.Tx {
			return &types.Tx{Outputs: []types.TxOut{out(f.keys[0], 1)}}
		}, ErrMalformed},
		{"no outputs", nil, func(f *fixture) *types.Tx {
			return spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 1000)})
		}, ErrMalformed},
		{"duplicate inputs", nil, func(f *fixture) *types.Tx {
			o := f.fund(f.keys[0], 1000)
			return spend(f.keys[0], []types.OutPoint{o, o}, out(f.keys[1], 10))
		}, ErrMalformed},
		{"too many outputs", nil, func(f *fixture) *types.Tx {
			outs := make([]types.TxOut, types.MaxTxOutputs+1)
			return spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 1000)}, outs...)
		}, ErrMalformed},
		{"oversized", nil, func(f *fixture) *types.Tx {
			outs := make([]types.TxOut, 2000)
			ops := make([]types.OutPoint, 0, 600)
			for range 600 {
				ops = append(ops, f.fund(f.keys[0], 1000))
			}
			return spend(f.keys[0], ops, outs...)
		}, ErrMalformed},
		{"payload too long", nil, func(f *fixture) *types.Tx {
			tx := &types.Tx{Inputs: []types.TxIn{{Prev: f.fund(f.keys[0], 1000)}}, Outputs: []types.TxOut{out(f.keys[1], 1)},
				Payload: make([]byte, types.MaxPayload+1)}
			tx.SignInputs(testMagic, func(int) *identity.Key { return f.keys[0] })
			return tx
		}, ErrMalformed},
		{"missing input", nil, func(f *fixture) *types.Tx {
			return spend(f.keys[0], []types.OutPoint{{Index: 7}}, out(f.keys[1], 10))
		}, ErrMissingInput},
		{"missing output index of pool parent", nil, func(f *fixture) *types.Tx {
			parent := spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 10_000)}, out(f.keys[0], 9000))
			mustAccept(f.t, f.pool, parent)
			return spend(f.keys[0], []types.OutPoint{op(parent, 1)}, out(f.keys[1], 10))
		}, ErrMissingInput},
		{"immature coinbase", nil, func(f *fixture) *types.Tx {
			o := types.OutPoint{Tx: types.Hash{9}}
			f.set.add(o, out(f.keys[0], 10_000), f.set.tip-50, true)
			return spend(f.keys[0], []types.OutPoint{o}, out(f.keys[1], 5000))
		}, ErrImmature},
		{"wrong key", nil, func(f *fixture) *types.Tx {
			return spend(f.keys[1], []types.OutPoint{f.fund(f.keys[0], 10_000)}, out(f.keys[1], 5000))
		}, ErrWrongKey},
		{"bad signature", nil, func(f *fixture) *types.Tx {
			tx := spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 10_000)}, out(f.keys[1], 5000))
			tx.Inputs[0].Sig[3] ^= 1
			return tx
		}, ErrBadSignature},
		{"signed for another network", nil, func(f *fixture) *types.Tx {
			tx := &types.Tx{Inputs: []types.TxIn{{Prev: f.fund(f.keys[0], 10_000)}}, Outputs: []types.TxOut{out(f.keys[1], 5000)}}
			tx.SignInputs([4]byte{'m', 'a', 'i', 'n'}, func(int) *identity.Key { return f.keys[0] })
			return tx
		}, ErrBadSignature},
		{"modified after signing", nil, func(f *fixture) *types.Tx {
			tx := spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 10_000)}, out(f.keys[1], 5000))
			tx.Outputs[0].Value = 6000
			return tx
		}, ErrBadSignature},
		{"outputs exceed inputs", nil, func(f *fixture) *types.Tx {
			return spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 1000)}, out(f.keys[1], 1001))
		}, ErrValue},
		{"output overflow", nil, func(f *fixture) *types.Tx {
			return spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 1000)}, out(f.keys[1], math.MaxUint64), out(f.keys[1], 2))
		}, ErrValue},
		{"input overflow", nil, func(f *fixture) *types.Tx {
			return spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], math.MaxUint64), f.fund(f.keys[0], 2)}, out(f.keys[1], 1))
		}, ErrValue},
		{"fee too low", nil, func(f *fixture) *types.Tx {
			return spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 10_000)}, out(f.keys[1], 10_000-100))
		}, ErrFeeTooLow},
		{"lock time", nil, func(f *fixture) *types.Tx {
			tx := &types.Tx{Inputs: []types.TxIn{{Prev: f.fund(f.keys[0], 10_000)}}, Outputs: []types.TxOut{out(f.keys[1], 5000)},
				LockTime: f.set.tip + 2}
			tx.SignInputs(testMagic, func(int) *identity.Key { return f.keys[0] })
			return tx
		}, ErrLockTime},
		{"payload hook", func(c *Config) {
			c.CheckPayload = func(tx *types.Tx) error {
				if len(tx.Payload) > 0 {
					return errors.New("unknown payload type")
				}
				return nil
			}
		}, func(f *fixture) *types.Tx {
			tx := &types.Tx{Inputs: []types.TxIn{{Prev: f.fund(f.keys[0], 10_000)}}, Outputs: []types.TxOut{out(f.keys[1], 5000)},
				Payload: []byte{0xff}}
			tx.SignInputs(testMagic, func(int) *identity.Key { return f.keys[0] })
			return tx
		}, ErrPayload},
		{"conflict", nil, func(f *fixture) *types.Tx {
			o := f.fund(f.keys[0], 10_000)
			mustAccept(f.t, f.pool, spend(f.keys[0], []types.OutPoint{o}, out(f.keys[1], 5000)))
			return spend(f.keys[0], []types.OutPoint{o}, out(f.keys[2], 1000))
		}, ErrConflict},
		{"single tx larger than the pool", func(c *Config) { c.MaxBytes = 100 }, func(f *fixture) *types.Tx {
			return spend(f.keys[0], []types.OutPoint{f.fund(f.keys[0], 10_000)}, out(f.keys[1], 5000))
		}, ErrPoolFull},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			f := newFixture(t, c)
			tx := tc.tx(f)
			beforeLen, beforeBytes, beforeTxs := f.pool.Len(), f.pool.Bytes(), f.pool.Txs()
			err := f.pool.Accept(tx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Accept: %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "mempool: ") {
				t.Errorf("error %q does not say it comes from the mempool", err)
			}
			if f.pool.Len() != beforeLen || f.pool.Bytes() != beforeBytes || len(f.pool.Txs()) != len(beforeTxs) {
				t.Fatalf("a refused transaction changed the pool: len %d→%d bytes %d→%d", beforeLen, f.pool.Len(), beforeBytes, f.pool.Bytes())
			}
			if tx != nil {
				for _, in := range tx.Inputs {
					if id, ok := f.pool.SpentBy(in.Prev); ok && (tc.want != ErrConflict || id == tx.ID()) {
						t.Fatalf("refused transaction left input %s marked spent by %s", in.Prev, id)
					}
				}
			}
		})
	}
}

func TestMatureCoinbase(t *testing.T) {
	f := newFixture(t, Config{CoinbaseMaturity: 100})
	o := types.OutPoint{Tx: types.Hash{1}}
	// Created at tip-98: the next block is tip+1, 99 blocks later: immature.
	f.set.add(o, out(f.keys[0], 10_000), f.set.tip-98, true)
	tx := spend(f.keys[0], []types.OutPoint{o}, out(f.keys[1], 5000))
	if err := f.pool.Accept(tx); !errors.Is(err, ErrImmature) {
		t.Fatalf("Accept at 99 confirmations: %v, want ErrImmature", err)
	}
	f.set.mu.Lock()
	f.set.tip++
	f.set.mu.Unlock()
	mustAccept(t, f.pool, tx)
}

func TestInvalidClassification(t *testing.T) {
	for _, e := range []error{ErrMalformed, ErrWrongKey, ErrBadSignature, ErrValue, ErrPayload} {
		if !Invalid(e) {
			t.Errorf("Invalid(%v) = false", e)
		}
	}
	for _, e := range []error{ErrDuplicate, ErrMissingInput, ErrConflict, ErrImmature, ErrFeeTooLow, ErrLockTime, ErrChainTooLong, ErrPoolFull} {
		if Invalid(e) {
			t.Errorf("Invalid(%v) = true", e)
		}
	}
}

func TestUnconfirmedChain(t *testing.T) {
	f := newFixture(t, Config{MinFeeRate: 1})
	a, b := f.keys[0], f.keys[1]
	t1 := spend(a, []types.OutPoint{f.fund(a, 100_000)}, out(b, 50_000), out(a, 49_000))
	t2 := spend(b, []types.OutPoint{op(t1, 0)}, out(a, 49_000))
	t3 := spend(a, []types.OutPoint{op(t1, 1), op(t2, 0)}, out(b, 97_000))
	if err := f.pool.Accept(t2); !errors.Is(err, ErrMissingInput) {
		t.Fatalf("child before parent: %v, want ErrMissingInput", err)
	}
	for _, tx := range []*types.Tx{t1, t2, t3} {
		mustAccept(t, f.pool, tx)
	}
	// A pool output is spent once.
	if err := f.pool.Accept(spend(b, []types.OutPoint{op(t1, 0)}, out(b, 1000))); !errors.Is(err, ErrConflict) {
		t.Fatalf("double spend of a pool output: %v, want ErrConflict", err)
	}
	// The wrong key for a pool output.
	if err := f.pool.Accept(spend(a, []types.OutPoint{op(t3, 0)}, out(a, 1000))); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key on a pool output: %v, want ErrWrongKey", err)
	}
	txs := f.pool.Txs()
	if len(txs) != 3 || txs[0].ID() != t1.ID() || txs[2].ID() != t3.ID() {
		t.Fatal("Txs is not in arrival order")
	}
}

func TestChainLimit(t *testing.T) {
	f := newFixture(t, Config{})
	a := f.keys[0]
	prev := f.fund(a, 1_000_000)
	v := uint64(1_000_000)
	for i := range MaxAncestors + 1 {
		v -= 1000
		tx := spend(a, []types.OutPoint{prev}, out(a, v))
		err := f.pool.Accept(tx)
		if i < MaxAncestors {
			if err != nil {
				t.Fatalf("chain link %d: %v", i, err)
			}
		} else if !errors.Is(err, ErrChainTooLong) {
			t.Fatalf("link %d: %v, want ErrChainTooLong", i, err)
		}
		prev = op(tx, 0)
	}
}

func TestEviction(t *testing.T) {
	f := newFixture(t, Config{MaxTxs: 3})
	a, b := f.keys[0], f.keys[1]
	size := spend(a, []types.OutPoint{f.fund(a, 1)}, out(b, 1)).Size()
	// Fee rates 10, 20, 30 per byte; the 10 has a child paying 40 per byte
	// of its own but the pool counts the pair: (10+40)/2 = 25 per byte.
	mk := func(rate uint64) *types.Tx {
		return spend(a, []types.OutPoint{f.fund(a, 1_000_000)}, out(a, 1_000_000-rate*uint64(size)))
	}
	t10, t20, t30 := mk(10), mk(20), mk(30)
	for _, tx := range []*types.Tx{t10, t20, t30} {
		mustAccept(t, f.pool, tx)
	}
	// A transaction paying 15 per byte beats only t10.
	t15 := mk(15)
	mustAccept(t, f.pool, t15)
	if f.pool.Has(t10.ID()) || f.pool.Len() != 3 {
		t.Fatalf("t10 not evicted: has %v, len %d", f.pool.Has(t10.ID()), f.pool.Len())
	}
	// 12 per byte beats nothing now (lowest is 15): refused, nothing changes.
	if err := f.pool.Accept(mk(12)); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("low fee into a full pool: %v, want ErrPoolFull", err)
	}
	if !f.pool.Has(t15.ID()) || !f.pool.Has(t20.ID()) || !f.pool.Has(t30.ID()) {
		t.Fatal("a refused transaction evicted something")
	}
	// A child of t15 needs room: it cannot evict its own parent, but it
	// can evict t20 if it pays more.
	child := spend(a, []types.OutPoint{op(t15, 0)}, out(a, t15.Outputs[0].Value-50*uint64(size)))
	mustAccept(t, f.pool, child)
	if f.pool.Has(t20.ID()) || !f.pool.Has(t15.ID()) {
		t.Fatal("child did not evict t20 (or evicted its own parent)")
	}
	// The t15 package now scores max(15, (15+50)/2) = 32.5 per byte, above
	// t30: a 33 evicts t30 ...
	t33 := mk(33)
	mustAccept(t, f.pool, t33)
	if f.pool.Has(t30.ID()) || !f.pool.Has(t15.ID()) {
		t.Fatal("t33 did not evict t30 (or evicted the CPFP package)")
	}
	// ... and a 34 evicts the package, parent with child.
	t34 := mk(34)
	mustAccept(t, f.pool, t34)
	if f.pool.Has(t15.ID()) || f.pool.Has(child.ID()) {
		t.Fatal("t15 and its child not evicted together")
	}
	if f.pool.Len() != 2 {
		t.Fatalf("len %d, want 2 (t33, t34)", f.pool.Len())
	}
	if _, ok := f.pool.SpentBy(t15.Inputs[0].Prev); ok {
		t.Fatal("evicted transaction's input still marked spent")
	}
}

func TestEvictionByBytes(t *testing.T) {
	f := newFixture(t, Config{MaxBytes: 500})
	a := f.keys[0]
	var txs []*types.Tx
	for i := range 10 {
		tx := spend(a, []types.OutPoint{f.fund(a, 1_000_000)}, out(a, 1_000_000-uint64(1000*(i+1))))
		if err := f.pool.Accept(tx); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		txs = append(txs, tx)
		if f.pool.Bytes() > 500 {
			t.Fatalf("pool holds %d bytes, limit 500", f.pool.Bytes())
		}
	}
	// Each later transaction paid more: the pool keeps the last ones.
	if !f.pool.Has(txs[9].ID()) || f.pool.Has(txs[0].ID()) {
		t.Fatal("eviction did not keep the highest fee rates")
	}
}

func TestBlockConnected(t *testing.T) {
	f := newFixture(t, Config{})
	a, b, c := f.keys[0], f.keys[1], f.keys[2]
	o1, o2 := f.fund(a, 100_000), f.fund(a, 100_000)
	t1 := spend(a, []types.OutPoint{o1}, out(b, 90_000))
	t1child := spend(b, []types.OutPoint{op(t1, 0)}, out(c, 80_000))
	t2 := spend(a, []types.OutPoint{o2}, out(b, 90_000))
	t2child := spend(b, []types.OutPoint{op(t2, 0)}, out(c, 80_000))
	for _, tx := range []*types.Tx{t1, t1child, t2, t2child} {
		mustAccept(t, f.pool, tx)
	}
	// The block confirms t1 and a double spend of o2 that is not in the pool.
	ds := spend(a, []types.OutPoint{o2}, out(c, 99_000))
	blk := &types.Block{Txs: []*types.Tx{{Coinbase: &types.Coinbase{Height: 1001}, Outputs: []types.TxOut{out(a, 50)}}, t1, ds}}
	f.set.apply(blk, 1001)
	f.pool.BlockConnected(blk)
	if f.pool.Has(t1.ID()) || f.pool.Has(t2.ID()) || f.pool.Has(t2child.ID()) {
		t.Fatal("confirmed or conflicting transactions remain")
	}
	if !f.pool.Has(t1child.ID()) || f.pool.Len() != 1 || f.pool.Bytes() != t1child.Size() {
		t.Fatalf("t1child should remain alone: has %v len %d", f.pool.Has(t1child.ID()), f.pool.Len())
	}
	// Its parent is confirmed now: the whole pool is one package.
	if sel := f.pool.Select(1 << 20); len(sel) != 1 || sel[0].ID() != t1child.ID() {
		t.Fatalf("Select after connect: %d txs", len(sel))
	}
	// Disconnecting the block puts t1 back ahead of its child, and drops
	// nothing valid.
	f.set.mu.Lock()
	delete(f.set.outs, op(t1, 0))
	delete(f.set.outs, op(ds, 0))
	f.set.outs[o1] = utxo{out(a, 100_000), 10, false}
	f.set.outs[o2] = utxo{out(a, 100_000), 10, false}
	f.set.tip = 1000
	f.set.mu.Unlock()
	f.pool.BlockDisconnected(blk)
	if !f.pool.Has(t1.ID()) || !f.pool.Has(ds.ID()) || !f.pool.Has(t1child.ID()) || f.pool.Len() != 3 {
		t.Fatalf("after disconnect: len %d", f.pool.Len())
	}
	sel := f.pool.Select(1 << 20)
	checkTopological(t, sel)
}

func checkTopological(t *testing.T, txs []*types.Tx) {
	t.Helper()
	pos := map[types.Hash]int{}
	for i, tx := range txs {
		pos[tx.ID()] = i
	}
	for i, tx := range txs {
		for _, in := range tx.Inputs {
			if j, ok := pos[in.Prev.Tx]; ok && j >= i {
				t.Fatalf("tx %d spends tx %d that comes after it", i, j)
			}
		}
	}
}

func TestSelectOrdering(t *testing.T) {
	f := newFixture(t, Config{})
	a := f.keys[0]
	size := uint64(spend(a, []types.OutPoint{f.fund(a, 1)}, out(a, 1)).Size())
	mk := func(rate uint64) *types.Tx {
		return spend(a, []types.OutPoint{f.fund(a, 1_000_000)}, out(a, 1_000_000-rate*size))
	}
	low := mk(1)                                                                          // a parent paying 1/byte ...
	child := spend(a, []types.OutPoint{op(low, 0)}, out(a, low.Outputs[0].Value-99*size)) // ... with a child paying 99: package 50
	mid := mk(40)
	high := mk(60)
	lone := mk(2)
	for _, tx := range []*types.Tx{low, child, mid, high, lone} {
		mustAccept(t, f.pool, tx)
	}
	sel := f.pool.Select(1 << 20)
	want := []*types.Tx{high, low, child, mid, lone}
	if len(sel) != len(want) {
		t.Fatalf("Select returned %d txs, want %d", len(sel), len(want))
	}
	for i := range want {
		if sel[i].ID() != want[i].ID() {
			t.Fatalf("position %d: got fee rate order %v", i, rates(f, sel))
		}
	}
	// Only room for two transactions: high, then mid (the low+child
	// package does not fit in the rest), never the child alone.
	sel = f.pool.Select(int(2 * size))
	if len(sel) != 2 || sel[0].ID() != high.ID() || sel[1].ID() != mid.ID() {
		t.Fatalf("Select(2 txs): %v", rates(f, sel))
	}
}

func rates(f *fixture, txs []*types.Tx) []string {
	var out []string
	for _, tx := range txs {
		e := f.pool.entries[tx.ID()]
		out = append(out, fmt.Sprintf("%s:%d/B", tx.ID().String()[:8], e.fee/uint64(e.size)))
	}
	return out
}

func TestSelectRandomTopological(t *testing.T) {
	f := newFixture(t, Config{})
	a := f.keys[0]
	rng := rand.New(rand.NewPCG(1, 2))
	var outs []types.OutPoint
	vals := map[types.OutPoint]uint64{}
	for range 20 {
		o := f.fund(a, 10_000_000)
		outs = append(outs, o)
		vals[o] = 10_000_000
	}
	for range 150 {
		n := 1 + rng.IntN(2)
		if n > len(outs) {
			break
		}
		rng.Shuffle(len(outs), func(i, j int) { outs[i], outs[j] = outs[j], outs[i] })
		ins := outs[:n]
		var total uint64
		for _, o := range ins {
			total += vals[o]
		}
		fee := uint64(200 + rng.IntN(20_000))
		tx := spend(a, ins, out(a, (total-fee)/2), out(a, total-fee-(total-fee)/2))
		if err := f.pool.Accept(tx); err != nil {
			continue
		}
		outs = outs[n:]
		for i, o := range tx.Outputs {
			p := op(tx, uint32(i))
			outs = append(outs, p)
			vals[p] = o.Value
		}
	}
	all := f.pool.Select(1 << 30)
	if len(all) != f.pool.Len() {
		t.Fatalf("Select with room for all returned %d of %d", len(all), f.pool.Len())
	}
	checkTopological(t, all)
	part := f.pool.Select(f.pool.Bytes() / 3)
	checkTopological(t, part)
	total := 0
	for _, tx := range part {
		total += tx.Size()
	}
	if total > f.pool.Bytes()/3 {
		t.Fatalf("Select exceeded maxBytes: %d > %d", total, f.pool.Bytes()/3)
	}
}

// TestRandomNoDoubleSpend throws random spends, double spends, chains,
// blocks and evictions at a small pool, concurrently, and checks the
// invariants after each step: one spender per output, consistent byte
// and descendant totals, limits kept.
func TestRandomNoDoubleSpend(t *testing.T) {
	f := newFixture(t, Config{MaxTxs: 40, MaxBytes: 40 * 200})
	rng := rand.New(rand.NewPCG(7, 9))
	var known []types.OutPoint // confirmed and pool outputs, some already spent
	owner := map[types.OutPoint]*identity.Key{}
	val := map[types.OutPoint]uint64{}
	for range 60 {
		k := f.keys[rng.IntN(len(f.keys))]
		o := f.fund(k, uint64(100_000+rng.IntN(100_000)))
		known = append(known, o)
		owner[o], val[o] = k, f.set.outs[o].out.Value
	}
	height := f.set.tip
	var accepted atomic.Int64
	blocks := 0
	for step := range 600 {
		if rng.IntN(25) == 0 && f.pool.Len() > 0 {
			// Mine a block of some pool transactions plus a double spend.
			sel := f.pool.Select(rng.IntN(2000) + 200)
			blk := &types.Block{Txs: append([]*types.Tx{{Coinbase: &types.Coinbase{Height: height + 1}, Outputs: []types.TxOut{out(f.keys[0], 1)}}}, sel...)}
			height++
			f.set.apply(blk, height)
			f.pool.BlockConnected(blk)
			blocks++
		} else {
			var batch []*types.Tx
			for range 1 + rng.IntN(4) {
				k := f.keys[rng.IntN(len(f.keys))]
				var ins []types.OutPoint
				var total uint64
				for range 1 + rng.IntN(2) {
					o := known[rng.IntN(len(known))]
					if owner[o] == k {
						ins = append(ins, o)
						total += val[o]
					}
				}
				if len(ins) == 0 || (len(ins) == 2 && ins[0] == ins[1]) {
					continue
				}
				fee := uint64(100 + rng.IntN(30_000))
				if fee >= total {
					continue
				}
				to := f.keys[rng.IntN(len(f.keys))]
				tx := spend(k, ins, out(to, total-fee))
				batch = append(batch, tx)
				p := op(tx, 0)
				known = append(known, p)
				owner[p], val[p] = to, total-fee
			}
			var wg sync.WaitGroup
			for _, tx := range batch {
				wg.Go(func() {
					if f.pool.Accept(tx) == nil {
						accepted.Add(1)
					}
				})
			}
			wg.Wait()
		}
		checkInvariants(t, f, step)
	}
	if accepted.Load() < 100 || blocks < 10 {
		t.Fatalf("the random run accepted only %d transactions and mined %d blocks: it tests too little", accepted.Load(), blocks)
	}
	t.Logf("accepted %d transactions, mined %d blocks", accepted.Load(), blocks)
}

func checkInvariants(t *testing.T, f *fixture, step int) {
	t.Helper()
	p := f.pool
	p.mu.RLock()
	defer p.mu.RUnlock()
	spenders := map[types.OutPoint]types.Hash{}
	bytes := 0
	for id, e := range p.entries {
		bytes += e.size
		for _, in := range e.tx.Inputs {
			if other, ok := spenders[in.Prev]; ok {
				t.Fatalf("step %d: %s spent by both %s and %s", step, in.Prev, other, id)
			}
			spenders[in.Prev] = id
			if p.spent[in.Prev] != e {
				t.Fatalf("step %d: spent index wrong for %s", step, in.Prev)
			}
			if _, inPool := p.entries[in.Prev.Tx]; !inPool {
				if _, _, _, ok := f.set.UTXO(in.Prev); !ok {
					t.Fatalf("step %d: %s spends %s, neither confirmed nor in the pool", step, id, in.Prev)
				}
			}
		}
		set := map[types.Hash]*entry{}
		descendants(e, set)
		var fee uint64
		size := 0
		for _, d := range set {
			fee += d.fee
			size += d.size
		}
		if e.descFee != fee || e.descSize != size || e.descCount != len(set) {
			t.Fatalf("step %d: descendant totals of %s: %d/%d/%d, want %d/%d/%d", step, id, e.descFee, e.descSize, e.descCount, fee, size, len(set))
		}
	}
	if len(spenders) != len(p.spent) {
		t.Fatalf("step %d: spent index has %d entries, want %d", step, len(p.spent), len(spenders))
	}
	if bytes != p.bytes || bytes > p.cfg.MaxBytes || len(p.entries) > p.cfg.MaxTxs {
		t.Fatalf("step %d: bytes %d (tracked %d, limit %d), txs %d (limit %d)", step, bytes, p.bytes, p.cfg.MaxBytes, len(p.entries), p.cfg.MaxTxs)
	}
}

func TestExpire(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	f := newFixture(t, Config{Now: func() time.Time { return now }})
	a := f.keys[0]
	old := spend(a, []types.OutPoint{f.fund(a, 10_000)}, out(a, 9000))
	mustAccept(t, f.pool, old)
	child := spend(a, []types.OutPoint{op(old, 0)}, out(a, 8000))
	now = now.Add(time.Hour)
	mustAccept(t, f.pool, child)
	fresh := spend(a, []types.OutPoint{f.fund(a, 10_000)}, out(a, 9000))
	mustAccept(t, f.pool, fresh)
	if n := f.pool.Expire(30 * time.Minute); n != 2 || f.pool.Len() != 1 || !f.pool.Has(fresh.ID()) {
		t.Fatalf("Expire removed %d, pool len %d", n, f.pool.Len())
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Source succeeded")
	}
	if _, err := New(Config{Source: newUTXOSet(0), MaxTxs: -1}); err == nil {
		t.Fatal("New with a negative limit succeeded")
	}
}
