package blockchain

import (
	"math/big"

	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

// Tip returns the main chain's last block.
func (c *Chain) Tip() Tip {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.tipNode()
	return Tip{Hash: n.hash, Height: n.height}
}

// HeaderByHeight returns the main-chain header at height.
func (c *Chain) HeaderByHeight(height int64) (types.Header, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if height < 0 || height >= int64(len(c.main)) {
		return types.Header{}, false
	}
	return c.main[height].header, true
}

// BlockByHash returns a stored block (main chain or side branch).
func (c *Chain) BlockByHash(hash types.Hash) (*types.Block, error) {
	return c.readBlock(hash)
}

// UTXO returns the unspent output op of the main chain's state.
func (c *Chain) UTXO(op types.OutPoint) (consensus.Coin, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Coin(op)
}

// Contracts returns the contribution contracts with their states and
// tallies, ordered by ID.
func (c *Chain) Contracts() []consensus.Contract {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Contracts()
}

// StateDigest is the digest of the main chain's state (consensus.State.Digest).
func (c *Chain) StateDigest() types.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Digest()
}

// Status summarises the main chain.
type Status struct {
	Network    string
	Height     int64
	Tip        types.Hash
	Bits       uint32  // bits of the next block
	Difficulty float64 // proof-of-work limit / next target
	Licences   [][32]byte
	CapEnabled bool
	CapFactor  uint8
	Cap        uint64 // blocks per licence per window, 0 when disabled
	CapWindow  int64
	Issued     uint64 // units issued so far (subsidies + contract payments)
	UTXOs      int
	Contracts  int
	Orphans    int
}

// Status returns the main chain's summary.
func (c *Chain) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	tip := c.tipNode()
	bits := c.e.NextBits(c.p, chainView{c, tip})
	diff, _ := new(big.Float).Quo(new(big.Float).SetInt(c.p.PowLimit), new(big.Float).SetInt(pow.CompactToBig(bits))).Float64()
	st := c.state
	return Status{Network: c.p.Name, Height: tip.height, Tip: tip.hash, Bits: bits, Difficulty: diff,
		Licences: st.Licences(), CapEnabled: st.CapFactor() > 0, CapFactor: st.CapFactor(), Cap: consensus.Cap(c.p, st),
		CapWindow: c.p.CapWindow, Issued: st.Issued(), UTXOs: st.UTXOCount(), Contracts: len(st.Contracts()), Orphans: len(c.orphans)}
}

// Template is what a miner needs to build the next block.
type Template struct {
	Prev           types.Hash
	Height         int64
	Bits           uint32
	MedianTimePast int64         // the block's time must be after it
	MinTime        int64         // the earliest valid timestamp (median time past, time-warp rules)
	Payments       []types.TxOut // the coinbase's first outputs, exactly
	Subsidy        uint64        // the most the miner outputs may claim besides fees
}

// Template returns the template of the block after the tip.
func (c *Chain) Template() Template {
	c.mu.Lock()
	defer c.mu.Unlock()
	tip := c.tipNode()
	view := chainView{c, tip}
	pay, sub := c.state.NextCoinbase()
	return Template{Prev: tip.hash, Height: tip.height + 1, Bits: c.e.NextBits(c.p, view),
		MedianTimePast: consensus.MedianTimePast(c.p, view), MinTime: consensus.MinTime(c.p, view), Payments: pay, Subsidy: sub}
}

// MinerWindowCount is the number of blocks key mined among the last
// CapWindow main-chain blocks.
func (c *Chain) MinerWindowCount(key [32]byte) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.WindowCount(key)
}

// CheckTx checks tx against the main chain's state as the only
// transaction of the next block and returns its fee (consensus.State.CheckTx).
func (c *Chain) CheckTx(tx *types.Tx) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.CheckTx(tx)
}
