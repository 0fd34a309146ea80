package consensus

import (
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/types"
)

// GenesisBlock builds the network's genesis block from p.Genesis: a
// coinbase at height 0 with the network's message as its extra data, no
// miner and no signature (genesis is never validated), paying
// CoinbaseValue to CoinbaseKey when both are set and nothing otherwise.
func GenesisBlock(p *chaincfg.Params) *types.Block {
	g := p.Genesis
	extra := []byte(g.CoinbaseMessage)
	if len(extra) > types.MaxCoinbaseEx {
		extra = extra[:types.MaxCoinbaseEx]
	}
	cb := &types.Tx{Version: 1, Coinbase: &types.Coinbase{Extra: extra}}
	if g.CoinbaseValue > 0 && len(g.CoinbaseKey) == 32 {
		cb.Outputs = []types.TxOut{{Value: g.CoinbaseValue, Address: types.AddressOf(g.CoinbaseKey)}}
	}
	b := &types.Block{
		Header: types.Header{Version: uint32(g.Version), Time: g.Timestamp, Bits: g.Bits, Nonce: uint64(g.Nonce)},
		Txs:    []*types.Tx{cb},
	}
	b.Header.Merkle, _ = types.MerkleRoot(b.TxIDs())
	return b
}
