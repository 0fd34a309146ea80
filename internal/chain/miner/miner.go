// Package miner assembles and solves blocks: a coinbase paying the
// contribution contracts due and the miner (subsidy plus fees), signed with
// the miner's licence key and bound to the previous block; the chosen
// transactions; the Merkle root; and a nonce search over SHA-256d headers
// that gives up when its context ends or the tip moves.
package miner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

// Template is everything the next block needs.
type Template struct {
	Magic    [4]byte
	Version  uint32
	Height   int64
	Prev     types.Hash
	Bits     uint32
	Time     int64          // the header time: above the median time past, not ahead of the clock
	Payments []types.TxOut  // contract payments due at Height, in consensus order
	Subsidy  uint64         // the block subsidy at Height
	Txs      []*types.Tx    // transactions to include, parents before children
	Fees     uint64         // the fees of Txs
	Miner    *identity.Key  // the licensed key that signs the coinbase
	Payout   *types.Address // who gets subsidy and fees; default the miner's address
}

// Build assembles the block of t with nonce 0 and extra nonce extra.
func Build(t Template, extra uint64) (*types.Block, error) {
	if t.Miner == nil {
		return nil, errors.New("miner: no licence key")
	}
	reward := t.Subsidy + t.Fees
	if reward < t.Subsidy {
		return nil, errors.New("miner: subsidy plus fees overflow")
	}
	payout := types.AddressOf(t.Miner.Public())
	if t.Payout != nil {
		payout = *t.Payout
	}
	outs := append([]types.TxOut(nil), t.Payments...)
	if reward > 0 {
		outs = append(outs, types.TxOut{Value: reward, Address: payout})
	}
	cb := &types.Tx{Version: 1, Coinbase: &types.Coinbase{
		Height: t.Height, Prev: t.Prev, Extra: binary.LittleEndian.AppendUint64(nil, extra),
	}, Outputs: outs}
	cb.SignCoinbase(t.Magic, t.Miner)
	b := &types.Block{Header: types.Header{Version: t.Version, Prev: t.Prev, Time: t.Time, Bits: t.Bits},
		Txs: append([]*types.Tx{cb}, t.Txs...)}
	root, mutated := types.MerkleRoot(b.TxIDs())
	if mutated {
		return nil, errors.New("miner: duplicate transactions in the template")
	}
	b.Header.Merkle = root
	return b, nil
}

// ErrStale reports a search abandoned because the template went stale.
var ErrStale = errors.New("miner: template went stale")

// Solve searches nonces for a header of b meeting its bits, on workers
// goroutines (0: GOMAXPROCS). When the 64-bit nonce space runs out it
// rebuilds the block with the next extra nonce. stale, when not nil, is
// polled between batches; it returns ErrStale once stale reports true.
// hashes, when not nil, counts the hashes tried.
func Solve(ctx context.Context, t Template, workers int, stale func() bool, hashes *atomic.Uint64) (*types.Block, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	target := pow.CompactToBig(t.Bits)
	if target.Sign() <= 0 {
		return nil, fmt.Errorf("miner: bits %08x give no target", t.Bits)
	}
	// The target as big-endian bytes; a hash is a little-endian number, so
	// it meets the target when its reversed bytes compare lower or equal.
	var tb [32]byte
	if target.BitLen() > 256 {
		return nil, fmt.Errorf("miner: bits %08x give a target above 2^256", t.Bits)
	}
	target.FillBytes(tb[:])
	meets := func(h types.Hash) bool {
		for i := range 32 {
			if a, b := h[31-i], tb[i]; a != b {
				return a < b
			}
		}
		return true
	}
	const batch = 1 << 14
	for extra := uint64(0); ; extra++ {
		b, err := Build(t, extra)
		if err != nil {
			return nil, err
		}
		var (
			found   atomic.Bool
			winner  uint64
			mu      sync.Mutex
			wg      sync.WaitGroup
			stopped atomic.Value
		)
		for w := range workers {
			wg.Add(1)
			go func(start uint64) {
				defer wg.Done()
				h := b.Header
				enc := h.Encode()
				for n := start; !found.Load(); {
					for i := 0; i < batch; i++ {
						binary.LittleEndian.PutUint64(enc[80:], n)
						hash := types.DoubleSHA256(enc)
						if meets(hash) {
							mu.Lock()
							if !found.Load() {
								winner = n
								found.Store(true)
							}
							mu.Unlock()
							if hashes != nil {
								hashes.Add(uint64(i + 1))
							}
							return
						}
						n += uint64(workers)
						if n < uint64(workers) { // wrapped: this extra nonce is used up
							if hashes != nil {
								hashes.Add(uint64(i + 1))
							}
							return
						}
					}
					if hashes != nil {
						hashes.Add(batch)
					}
					if ctx.Err() != nil {
						stopped.Store(ctx.Err())
						found.Store(true)
						return
					}
					if stale != nil && stale() {
						stopped.Store(ErrStale)
						found.Store(true)
						return
					}
				}
			}(uint64(w))
		}
		wg.Wait()
		if err, _ := stopped.Load().(error); err != nil {
			return nil, err
		}
		if found.Load() {
			b.Header.Nonce = winner
			return b, nil
		}
	}
}
