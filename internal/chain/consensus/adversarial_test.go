package consensus_test

import (
	"crypto/ed25519"
	"math/big"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

// headers is a HeaderChain over a slice (headers[i] at height i).
type headers []types.Header

func (hs headers) Height() int64                  { return int64(len(hs)) - 1 }
func (hs headers) HeaderAt(h int64) *types.Header { return &hs[h] }

// retargetParams turns on the retarget every 8 blocks with a 40 s spacing.
func retargetParams() *chaincfg.Params {
	p := chaintest.Params()
	p.NoRetarget = false
	p.RetargetInterval = 8
	p.TargetSpacing = 40 * time.Second
	p.TargetTimespan = 8 * p.TargetSpacing
	p.Genesis.Bits = 0x20100000 // 2^252: 8x below the limit, so the target can rise
	return p
}

// TestNextBitsWindow pins the retarget window: at every tip whose next
// height is a multiple of the interval, NextBits is pow.Retarget over the
// timestamps of the first and the last block of the finishing period
// (bitcoin's window: interval-1 block gaps); the last block of the
// period before is outside it, so its timestamp has no effect (the
// off-by-one behind bitcoin's time-warp, see TestTimeWarpInherited in
// package blockchain). Between boundaries the bits do not change.
func TestNextBitsWindow(t *testing.T) {
	p := retargetParams()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	const n = 8
	span := int64(p.TargetTimespan / time.Second)
	e := consensus.LicensedPoW{}
	// Irregular gaps so that every window has another timespan.
	hs := headers{{Time: 1000, Bits: p.Genesis.Bits}}
	for h := int64(1); h <= 4*n; h++ {
		prev := hs[h-1]
		bits := e.NextBits(p, hs)
		hs = append(hs, types.Header{Time: prev.Time + 5 + (h*37)%97, Bits: bits})
		if h%n != 0 {
			if bits != prev.Bits {
				t.Fatalf("NextBits at height %d = %08x, want the parent's %08x (no boundary)", h, bits, prev.Bits)
			}
			continue
		}
		first, last := hs[h-n], hs[h-1]
		if want := pow.Retarget(last.Bits, last.Time-first.Time, span, p.PowLimit); bits != want {
			t.Fatalf("NextBits at height %d = %08x, want Retarget over heights %d..%d = %08x", h, bits, h-n, h-1, want)
		}
	}
	// At the boundary of height 2n: moving the first block of the period
	// (height n) changes the bits, moving the last block of the previous
	// period (height n-1) does not.
	tip := hs[:2*n]
	want := e.NextBits(p, tip)
	moved := append(headers(nil), tip...)
	moved[n-1].Time -= 200
	if got := e.NextBits(p, moved); got != want {
		t.Fatalf("moving the previous period's last block changed NextBits: %08x, want %08x", got, want)
	}
	moved = append(headers(nil), tip...)
	moved[n].Time -= 200
	if got := e.NextBits(p, moved); got == want {
		t.Fatalf("moving the period's first block left NextBits at %08x", got)
	}
	// NoRetarget keeps the parent's bits at a boundary too.
	q := *p
	q.NoRetarget = true
	if got := e.NextBits(&q, tip); got != tip[len(tip)-1].Bits {
		t.Fatalf("NextBits with NoRetarget = %08x, want %08x", got, tip[len(tip)-1].Bits)
	}
}

// TestRetargetClamp: whatever the timestamps (negative, zero, huge), one
// retarget moves the target by at most the factor pow.RetargetFactor and
// never above the proof-of-work limit.
func TestRetargetClamp(t *testing.T) {
	p := retargetParams()
	p.Genesis.Bits = 0x1f100000 // 2^244, far below the limit
	e := consensus.LicensedPoW{}
	const n = 8
	for _, last := range []int64{-1 << 40, -1, 0, 1, 79, 80, 320, 1280, 1281, 1 << 40} {
		hs := headers{}
		for h := range n {
			hs = append(hs, types.Header{Time: 1 << 41, Bits: p.Genesis.Bits})
			if h == n-1 {
				hs[h].Time += last
			}
		}
		bits := e.NextBits(p, hs)
		old, got := pow.CompactToBig(p.Genesis.Bits), pow.CompactToBig(bits)
		lo := new(big.Int).Div(old, big.NewInt(pow.RetargetFactor))
		hi := new(big.Int).Mul(old, big.NewInt(pow.RetargetFactor))
		if got.Cmp(lo) < 0 || got.Cmp(hi) > 0 {
			t.Errorf("timespan %d: target %x outside [%x, %x]", last, got, lo, hi)
		}
		if got.Cmp(p.PowLimit) > 0 {
			t.Errorf("timespan %d: target %x above the limit", last, got)
		}
	}
	// Near the limit the target stops at PowLimit.
	hs := headers{{Time: 0, Bits: p.PowLimitBits}}
	for h := int64(1); h < n; h++ {
		hs = append(hs, types.Header{Time: h * 1000, Bits: p.PowLimitBits})
	}
	if got := e.NextBits(p, hs); got != p.PowLimitBits {
		t.Fatalf("slow period at the limit: NextBits = %08x, want %08x", got, p.PowLimitBits)
	}
}

// TestCheckTimeBounds: the timestamp must exceed the median of the last
// MedianTimeBlocks blocks (exactly the median is rejected, +1 accepted),
// the median is of the sorted times (a single block far in the future
// does not move it), and it may be at most MaxTimeOffset after the
// injected now (exactly the offset is accepted, +1 second rejected).
func TestCheckTimeBounds(t *testing.T) {
	p := chaintest.Params()
	now := time.Unix(1_800_000_000, 0)
	// 11 blocks, out of order, one far ahead, the parent at 1009: sorted,
	// the median is 1005.
	times := []int64{1000, 1005, 1001, 1008, 1002, 1_799_990_000, 1003, 1007, 1004, 1006, 1009}
	var hs headers
	for _, tm := range times {
		hs = append(hs, types.Header{Time: tm})
	}
	if mtp := consensus.MedianTimePast(p, hs); mtp != 1005 {
		t.Fatalf("MedianTimePast = %d, want 1005", mtp)
	}
	limit := now.Add(p.MaxTimeOffset).Unix()
	for _, c := range []struct {
		name string
		time int64
		want consensus.ErrorCode
	}{
		{"far before the median", 1, consensus.ErrTimeTooOld},
		{"exactly the median", 1005, consensus.ErrTimeTooOld},
		{"median + 1", 1006, 0},
		{"below the parent, above the median", 1006, 0},
		{"exactly now + MaxTimeOffset", limit, 0},
		{"now + MaxTimeOffset + 1", limit + 1, consensus.ErrTimeTooNew},
	} {
		err := consensus.CheckTime(p, &types.Header{Time: c.time}, hs, now)
		if got := consensus.CodeOf(err); got != c.want || (c.want == 0 && err != nil) {
			t.Errorf("%s: CheckTime(%d) = %v, want %v", c.name, c.time, err, c.want)
		}
	}
	// With fewer blocks than MedianTimeBlocks the median is over those.
	short := hs[:4] // 1000 1005 1001 1008 -> sorted, index 2: 1005
	if mtp := consensus.MedianTimePast(p, short); mtp != 1005 {
		t.Fatalf("MedianTimePast of 4 blocks = %d, want 1005", mtp)
	}
}

// TestOverwriteTx reaches ErrOverwriteTx, which no chain of valid blocks
// can: a transaction ID commits to the inputs it spends (each spent once)
// and a coinbase ID to its height and parent, so an output can only exist
// twice through a hash collision. A state loaded with a forged coin at the
// outpoint a block is about to create stands in for the collision; the
// block is rejected, for a transaction output and for a coinbase output,
// and the state is left as it was.
func TestOverwriteTx(t *testing.T) {
	g := chaintest.New(t, nil)
	m0 := g.Miners[0]
	a0 := chaintest.Addr(m0)
	tip := g.Genesis
	var bs []*types.Block
	for range 4 {
		tip = g.Next(tip.Hash(), chaintest.Spec{})
		bs = append(bs, tip)
	}
	tx := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: 10, Address: a0}, {Value: 20, Address: a0}}, nil)
	withTx := g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{tx}})
	plain := g.Next(tip.Hash(), chaintest.Spec{Extra: []byte("plain")})
	for _, c := range []struct {
		name   string
		b      *types.Block
		forged types.OutPoint
	}{
		{"transaction output exists", withTx, chaintest.Out(tx, 1)},
		{"coinbase output exists", plain, chaintest.MinerOut(plain)},
	} {
		st := stateWithCoin(t, g, tip.Hash(), c.forged, consensus.Coin{Value: 1, Address: a0, Height: 1})
		before := st.Digest()
		if _, err := st.Connect(g.Engine, c.b); consensus.CodeOf(err) != consensus.ErrOverwriteTx {
			t.Fatalf("%s: Connect = %v, want %v", c.name, err, consensus.ErrOverwriteTx)
		}
		if st.Digest() != before {
			t.Fatalf("%s: rejected block changed the state", c.name)
		}
		// Without the forged coin the same block connects.
		clean := g.StateAt(tip.Hash())
		if _, err := clean.Connect(g.Engine, c.b); err != nil {
			t.Fatalf("%s: Connect on the real state = %v", c.name, err)
		}
	}
}

// stateWithCoin is the builder's state after block hash, reloaded from its
// records plus a coin at op.
func stateWithCoin(t *testing.T, g *chaintest.Builder, hash types.Hash, op types.OutPoint, coin consensus.Coin) *consensus.State {
	t.Helper()
	// The coin's record, taken from a scratch state that holds only it.
	scratch := consensus.NewState(g.P)
	blk := &types.Block{Txs: []*types.Tx{{Version: 1, Coinbase: &types.Coinbase{}, Outputs: []types.TxOut{{Value: coin.Value, Address: coin.Address}}}}}
	if _, err := scratch.ConnectGenesis(blk); err != nil {
		t.Fatal(err)
	}
	var coinVal []byte
	scratch.Records(func(b string, _, v []byte) {
		if b == consensus.BucketUTXO {
			coinVal = v
		}
	})
	key := make([]byte, 36)
	copy(key, op.Tx[:])
	key[32], key[33], key[34], key[35] = byte(op.Index>>24), byte(op.Index>>16), byte(op.Index>>8), byte(op.Index)
	type rec struct {
		b    string
		k, v []byte
	}
	var recs []rec
	g.StateAt(hash).Records(func(b string, k, v []byte) { recs = append(recs, rec{b, k, v}) })
	recs = append(recs, rec{consensus.BucketUTXO, key, coinVal})
	st, err := consensus.LoadState(g.P, func(fn func(string, []byte, []byte) error) error {
		for _, r := range recs {
			if err := fn(r.b, r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Coin(op); !ok {
		t.Fatal("forged coin not loaded")
	}
	return st
}

// ed25519Order is L, the order of the Ed25519 base point.
var ed25519Order, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// malleateS returns sig with S replaced by S + L (the same point equation
// holds, the encoding is not canonical).
func malleateS(sig []byte) []byte {
	le := func(b []byte) *big.Int {
		be := make([]byte, len(b))
		for i := range b {
			be[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(be)
	}
	s := le(sig[32:])
	s.Add(s, ed25519Order)
	be := s.FillBytes(make([]byte, 32)) // S < L < 2^253: S + L fits
	out := append([]byte(nil), sig...)
	for i := range 32 {
		out[32+i] = be[31-i]
	}
	return out
}

// TestMalleatedSignature: a signature with S replaced by S + L must not
// verify (crypto/ed25519 requires a canonical S < L): not by the
// identity layer, not for an input, not for the coinbase.
func TestMalleatedSignature(t *testing.T) {
	g := chaintest.New(t, nil)
	m0 := g.Miners[0]
	msg := []byte("message")
	sig := m0.Sign(types.DomainTx, msg)
	if err := identity.Verify(m0.Public(), types.DomainTx, msg, sig); err != nil {
		t.Fatal(err)
	}
	bad := malleateS(sig)
	if err := identity.Verify(m0.Public(), types.DomainTx, msg, bad); err == nil {
		t.Fatal("identity.Verify accepted S + L")
	}
	// The plain Ed25519 check of the standard library agrees.
	if ed25519.VerifyWithOptions(m0.Public(), msg, bad, &ed25519.Options{Context: string(types.DomainTx)}) == nil {
		t.Fatal("crypto/ed25519 accepted S + L")
	}

	tip := g.Genesis
	var bs []*types.Block
	for range 4 {
		tip = g.Next(tip.Hash(), chaintest.Spec{})
		bs = append(bs, tip)
	}
	tx := g.Tx(m0, []types.OutPoint{chaintest.MinerOut(bs[0])}, []types.TxOut{{Value: 5, Address: chaintest.Addr(m0)}}, nil)
	mal := *tx
	mal.Inputs = append([]types.TxIn(nil), tx.Inputs...)
	copy(mal.Inputs[0].Sig[:], malleateS(tx.Inputs[0].Sig[:]))
	st := g.StateAt(tip.Hash())
	if _, err := st.CheckTx(&mal); consensus.CodeOf(err) != consensus.ErrBadSignature {
		t.Fatalf("CheckTx(S + L) = %v, want %v", err, consensus.ErrBadSignature)
	}
	b := g.Next(tip.Hash(), chaintest.Spec{Txs: []*types.Tx{&mal}})
	if _, err := g.StateAt(tip.Hash()).Connect(g.Engine, b); consensus.CodeOf(err) != consensus.ErrBadSignature {
		t.Fatalf("Connect(input S + L) = %v, want %v", err, consensus.ErrBadSignature)
	}
	cb := g.Next(tip.Hash(), chaintest.Spec{})
	copy(cb.Txs[0].Coinbase.Sig[:], malleateS(cb.Txs[0].Coinbase.Sig[:]))
	cb.Header.Merkle, _ = types.MerkleRoot(cb.TxIDs())
	g.Mine(cb)
	if _, err := g.StateAt(tip.Hash()).Connect(g.Engine, cb); consensus.CodeOf(err) != consensus.ErrBadCoinbaseSig {
		t.Fatalf("Connect(coinbase S + L) = %v, want %v", err, consensus.ErrBadCoinbaseSig)
	}
	if _, err := g.StateAt(tip.Hash()).CheckTx(tx); err != nil {
		t.Fatalf("CheckTx(original) = %v", err)
	}
}
