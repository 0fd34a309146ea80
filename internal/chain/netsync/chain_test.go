package netsync

import (
	"errors"
	"fmt"
	"sync"

	"github.com/iop-go/iop/internal/chain/types"
)

// memChain is an in-memory chain fixture: blocks in a map, the best chain
// being the highest. A block is invalid when its Merkle root is wrong.
type memChain struct {
	mu     sync.Mutex
	blocks map[types.Hash]*types.Block
	height map[types.Hash]int64
	main   []types.Hash // main[h] is the best chain's block at height h
	// onConnect, if set, sees every block that joins the best chain.
	onConnect func(*types.Block)
}

var testGenesis = makeBlock(types.Hash{}, 0, 0)

func newMemChain() *memChain {
	g := testGenesis.Hash()
	return &memChain{
		blocks: map[types.Hash]*types.Block{g: testGenesis},
		height: map[types.Hash]int64{g: 0},
		main:   []types.Hash{g},
	}
}

// makeBlock builds a block with a coinbase at height on top of prev; salt
// makes forks differ.
func makeBlock(prev types.Hash, height int64, salt uint64) *types.Block {
	cb := &types.Tx{Version: 1, Coinbase: &types.Coinbase{Height: height, Prev: prev},
		Outputs: []types.TxOut{{Value: 50, Address: types.Address{byte(salt)}}}}
	b := &types.Block{Header: types.Header{Version: 1, Prev: prev, Time: 1_700_000_000 + height, Nonce: salt}, Txs: []*types.Tx{cb}}
	b.Header.Merkle, _ = types.MerkleRoot(b.TxIDs())
	return b
}

// extend builds n blocks on the chain's tip and processes them.
func (c *memChain) extend(n int, salt uint64) []*types.Block {
	var out []*types.Block
	for range n {
		tip, h := c.Tip()
		b := makeBlock(tip, h+1, salt)
		if _, _, err := c.ProcessBlock(b); err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

func (c *memChain) ProcessBlock(b *types.Block) (bool, bool, error) {
	hash := b.Hash()
	c.mu.Lock()
	if _, ok := c.blocks[hash]; ok {
		h := c.height[hash]
		onMain := c.main[h] == hash
		c.mu.Unlock()
		return onMain, false, nil
	}
	if len(b.Txs) == 0 {
		c.mu.Unlock()
		return false, false, errors.New("block without transactions")
	}
	if root, _ := types.MerkleRoot(b.TxIDs()); root != b.Header.Merkle {
		c.mu.Unlock()
		return false, false, fmt.Errorf("block %s: bad Merkle root", hash)
	}
	ph, ok := c.height[b.Header.Prev]
	if !ok {
		c.mu.Unlock()
		return false, true, nil
	}
	h := ph + 1
	c.blocks[hash] = b
	c.height[hash] = h
	var connected []*types.Block
	if h >= int64(len(c.main)) {
		// Reorganise: walk back to the best chain.
		var branch []types.Hash
		for x := hash; ; x = c.blocks[x].Header.Prev {
			xh := c.height[x]
			if xh < int64(len(c.main)) && c.main[xh] == x {
				break
			}
			branch = append(branch, x)
		}
		fork := h - int64(len(branch))
		c.main = c.main[:fork+1]
		for i := len(branch) - 1; i >= 0; i-- {
			c.main = append(c.main, branch[i])
			connected = append(connected, c.blocks[branch[i]])
		}
	}
	on := c.onConnect
	c.mu.Unlock()
	if on != nil {
		for _, cb := range connected {
			on(cb)
		}
	}
	return len(connected) > 0, false, nil
}

func (c *memChain) Tip() (types.Hash, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.main[len(c.main)-1], int64(len(c.main) - 1)
}

func (c *memChain) Locator() []types.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	var loc []types.Hash
	step := 1
	for h := len(c.main) - 1; h > 0; h -= step {
		loc = append(loc, c.main[h])
		if len(loc) >= 10 {
			step *= 2
		}
	}
	return append(loc, c.main[0])
}

func (c *memChain) HeadersAfter(locator []types.Hash, max int) []types.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := 1
	for _, x := range locator {
		if h, ok := c.height[x]; ok && c.main[h] == x {
			start = int(h) + 1
			break
		}
	}
	var out []types.Header
	for h := start; h < len(c.main) && len(out) < max; h++ {
		out = append(out, c.blocks[c.main[h]].Header)
	}
	return out
}

func (c *memChain) BlockByHash(h types.Hash) (*types.Block, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[h]
	return b, ok
}

func (c *memChain) HaveBlock(h types.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.blocks[h]
	return ok
}
