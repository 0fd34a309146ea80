// Package chaintest builds valid IoP token-chain blocks on any parent for
// tests, in the spirit of btcd's fullblocktests: a Builder keeps a shadow
// consensus state so the coinbase carries exactly the contract
// payments due and the miner's subsidy plus fees, signs the coinbase with a
// licensed key and mines the nonce against trivial test parameters. Tests
// then break one rule by changing the block and calling Finish or Mine.
// The shadow state follows the last branch built on (reconnected from
// genesis when a test switches branches).
package chaintest

import (
	"crypto/ed25519"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

// Params returns devnet-like parameters for tests: a proof-of-work limit
// of 2^255-1 (about two hashes per block), coinbase maturity 3, a cap
// window of 10 blocks (cap disabled), and short contract periods (voting 4
// blocks, activation delay 2, ceiling 100 units, at most 60 per contract,
// deposit at least 1000 units, at most 20 blocks of execution).
func Params() *chaincfg.Params {
	p := chaincfg.DevNet()
	p.PowLimit = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))
	p.PowLimitBits = 0x207fffff
	p.Genesis.Bits = 0x207fffff
	p.CoinbaseMaturity = 3
	p.CapWindow = 10
	p.CCDepositMin = 1000
	p.CCRewardCeiling = 100
	p.CCMaxRewardPerContract = 60
	p.CCVotingPeriod = 4
	p.CCActivationDelay = 2
	p.CCMaxDuration = 20
	return p
}

// Key converts a chaincfg key to an identity key.
func Key(tb testing.TB, k ed25519.PrivateKey) *identity.Key {
	tb.Helper()
	key, err := identity.NewKeyFromSeed(k.Seed())
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// NewKey returns a fresh random key.
func NewKey(tb testing.TB) *identity.Key {
	tb.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Addr is the address of k.
func Addr(k *identity.Key) types.Address { return types.AddressOf(k.Public()) }

// Builder makes blocks.
type Builder struct {
	TB      testing.TB
	P       *chaincfg.Params
	Engine  consensus.Engine
	Miners  []*identity.Key // the devnet miner keys (initially licensed)
	Admins  []*identity.Key // the devnet admin keys
	Genesis *types.Block
	Now     time.Time // a fixed "now" for the chain under test

	blocks map[types.Hash]*types.Block
	height map[types.Hash]int64
	cache  *consensus.State
}

// New returns a builder for p (Params() when nil).
func New(tb testing.TB, p *chaincfg.Params) *Builder {
	if p == nil {
		p = Params()
	}
	g := &Builder{TB: tb, P: p, Engine: consensus.LicensedPoW{}, Genesis: consensus.GenesisBlock(p), blocks: map[types.Hash]*types.Block{}, height: map[types.Hash]int64{}}
	for i := range chaincfg.DevnetMinerCount {
		g.Miners = append(g.Miners, Key(tb, chaincfg.DevnetMinerKey(i)))
	}
	for i := range chaincfg.AdminKeyCount {
		g.Admins = append(g.Admins, Key(tb, chaincfg.DevnetAdminKey(i)))
	}
	g.remember(g.Genesis)
	g.Now = time.Unix(p.Genesis.Timestamp, 0).Add(1000 * time.Hour)
	return g
}

// Spec describes a block to build. Zero values take defaults.
type Spec struct {
	Miner *identity.Key  // coinbase signer; Miners[0]
	PayTo *types.Address // miner output address; the miner's address
	Txs   []*types.Tx
	Time  int64 // parent's time + 10
	Extra []byte
}

// Height returns the height of a block the builder made.
func (g *Builder) Height(hash types.Hash) int64 { return g.height[hash] }

// remember records a block and its height.
func (g *Builder) remember(b *types.Block) {
	hash := b.Hash()
	g.blocks[hash] = b
	if b != g.Genesis {
		g.height[hash] = g.height[b.Header.Prev] + 1
	}
}

// StateAt returns the shadow state after block hash (connecting the
// branch as far as it is valid).
func (g *Builder) StateAt(hash types.Hash) *consensus.State {
	if g.cache != nil && g.cache.Tip() == hash {
		return g.cache
	}
	if b := g.blocks[hash]; g.cache != nil && b != nil && b.Header.Prev == g.cache.Tip() {
		if _, err := g.cache.Connect(g.Engine, b); err == nil {
			return g.cache
		}
	}
	var path []*types.Block
	for b := g.blocks[hash]; b != nil && b != g.Genesis; b = g.blocks[b.Header.Prev] {
		path = append(path, b)
	}
	st := consensus.NewState(g.P)
	if _, err := st.ConnectGenesis(g.Genesis); err != nil {
		g.TB.Fatal(err)
	}
	for i := len(path) - 1; i >= 0; i-- {
		if _, err := st.Connect(g.Engine, path[i]); err != nil {
			break
		}
	}
	g.cache = st
	return st
}

// Next builds a valid block on parent from spec.
func (g *Builder) Next(parent types.Hash, spec Spec) *types.Block {
	g.TB.Helper()
	pb := g.blocks[parent]
	if pb == nil {
		g.TB.Fatalf("chaintest: unknown parent %s", parent)
	}
	st := g.StateAt(parent)
	miner := spec.Miner
	if miner == nil {
		miner = g.Miners[0]
	}
	payTo := Addr(miner)
	if spec.PayTo != nil {
		payTo = *spec.PayTo
	}
	payments, subsidy := st.NextCoinbase()
	fees := g.fees(st, spec.Txs)
	cb := &types.Tx{Version: 1, Coinbase: &types.Coinbase{Height: g.Height(parent) + 1, Prev: parent, Extra: spec.Extra}}
	cb.Outputs = append(cb.Outputs, payments...)
	if v := subsidy + fees; v > 0 {
		cb.Outputs = append(cb.Outputs, types.TxOut{Value: v, Address: payTo})
	}
	t := spec.Time
	if t == 0 {
		t = pb.Header.Time + 10
	}
	bits := g.Engine.NextBits(g.P, g.view(parent))
	b := &types.Block{Header: types.Header{Version: 1, Prev: parent, Time: t, Bits: bits}, Txs: append([]*types.Tx{cb}, spec.Txs...)}
	g.Finish(b, miner)
	return b
}

// fees sums inputs minus outputs of txs whose inputs the state or earlier
// transactions of the list provide.
func (g *Builder) fees(st *consensus.State, txs []*types.Tx) uint64 {
	local := map[types.OutPoint]uint64{}
	var fees uint64
	for _, tx := range txs {
		var in, out uint64
		for _, txin := range tx.Inputs {
			if c, ok := st.Coin(txin.Prev); ok {
				in += c.Value
			} else {
				in += local[txin.Prev]
			}
		}
		id := tx.ID()
		for k, o := range tx.Outputs {
			out += o.Value
			local[types.OutPoint{Tx: id, Index: uint32(k)}] = o.Value
		}
		if in > out {
			fees += in - out
		}
	}
	return fees
}

// Finish re-signs the coinbase with miner, recomputes the Merkle root and
// mines the block; the builder remembers it.
func (g *Builder) Finish(b *types.Block, miner *identity.Key) {
	if len(b.Txs) > 0 && b.Txs[0].Coinbase != nil {
		b.Txs[0].SignCoinbase(g.P.Magic, miner)
	}
	b.Header.Merkle, _ = types.MerkleRoot(b.TxIDs())
	g.Mine(b)
}

// Mine searches a nonce that meets the block's bits and remembers the
// block.
func (g *Builder) Mine(b *types.Block) {
	for b.Header.Nonce = 0; ; b.Header.Nonce++ {
		err := pow.CheckProof(b.Header.Hash(), b.Header.Bits, g.P.PowLimit)
		if err == nil || !errors.Is(err, pow.ErrHashAboveTarget) {
			break
		}
	}
	g.remember(b)
}

// MineBad searches a nonce whose hash does not meet the block's bits.
func (g *Builder) MineBad(b *types.Block) {
	for b.Header.Nonce = 0; ; b.Header.Nonce++ {
		if errors.Is(pow.CheckProof(b.Header.Hash(), b.Header.Bits, g.P.PowLimit), pow.ErrHashAboveTarget) {
			break
		}
	}
	g.remember(b)
}

// Remember registers a block built by hand.
func (g *Builder) Remember(b *types.Block) { g.remember(b) }

// MedianTimePast is the median time past of the branch ending at hash.
func (g *Builder) MedianTimePast(hash types.Hash) int64 {
	return consensus.MedianTimePast(g.P, g.view(hash))
}

// view is the branch ending at a builder block; HeaderAt walks back from
// the tip, so it costs the distance from the tip.
type view struct {
	g   *Builder
	tip types.Hash
}

func (v view) Height() int64 { return v.g.height[v.tip] }

func (v view) HeaderAt(h int64) *types.Header {
	b := v.g.blocks[v.tip]
	for n := v.Height() - h; n > 0; n-- {
		b = v.g.blocks[b.Header.Prev]
	}
	return &b.Header
}

func (g *Builder) view(hash types.Hash) view { return view{g, hash} }

// Tx builds a transaction spending ins (all owned by key) to outs with an
// optional payload, signed.
func (g *Builder) Tx(key *identity.Key, ins []types.OutPoint, outs []types.TxOut, payload []byte) *types.Tx {
	tx := &types.Tx{Version: 1, Outputs: outs, Payload: payload}
	for _, op := range ins {
		tx.Inputs = append(tx.Inputs, types.TxIn{Prev: op})
	}
	tx.SignInputs(g.P.Magic, func(int) *identity.Key { return key })
	return tx
}

// CoinbaseOut is output i of block b's coinbase.
func CoinbaseOut(b *types.Block, i uint32) types.OutPoint {
	return types.OutPoint{Tx: b.Txs[0].ID(), Index: i}
}

// Out is output i of tx.
func Out(tx *types.Tx, i uint32) types.OutPoint { return types.OutPoint{Tx: tx.ID(), Index: i} }

// MinerOut is the miner's output of block b (the last coinbase output).
func MinerOut(b *types.Block) types.OutPoint {
	return CoinbaseOut(b, uint32(len(b.Txs[0].Outputs)-1))
}

// MinerValue is the value of the miner's output of block b (0 when the
// coinbase has no outputs).
func MinerValue(b *types.Block) uint64 {
	o := b.Txs[0].Outputs
	if len(o) == 0 {
		return 0
	}
	return o[len(o)-1].Value
}
