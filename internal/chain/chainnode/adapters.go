package chainnode

import (
	"errors"

	"github.com/iop-go/iop/internal/chain/blockchain"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// checkPayload is the mempool's payload check: a typed payload must
// decode, and an administrator operation must be signed by an
// administrator key (consensus checks it again when the block connects;
// the mempool must not hand the miner transactions that would make its
// block invalid).
func (n *Node) checkPayload(tx *types.Tx) error {
	if len(tx.Payload) == 0 {
		return nil
	}
	pl, err := consensus.DecodePayload(tx.Payload)
	if err != nil {
		return err
	}
	// Payload rules that depend on the chain (a contract to vote on, its
	// voting window, a licence to remove) are checked against the tip when
	// the inputs are confirmed.
	if _, err := n.chain.CheckTx(tx); err != nil && consensus.CodeOf(err) != consensus.ErrMissingTxOut {
		return err
	}
	if pl.Admin != nil {
		for _, in := range tx.Inputs {
			for _, k := range n.p.AdminKeys {
				if string(k) == string(in.PubKey[:]) {
					return nil
				}
			}
		}
		return errors.New("administrator transaction not signed by an administrator key")
	}
	return nil
}

// utxoSource is the chain as the mempool sees it.
type utxoSource struct{ c *blockchain.Chain }

func (u utxoSource) UTXO(op types.OutPoint) (types.TxOut, int64, bool, bool) {
	c, ok := u.c.UTXO(op)
	return types.TxOut{Value: c.Value, Address: c.Address}, c.Height, c.Coinbase, ok
}

func (u utxoSource) TipHeight() int64 { return u.c.Tip().Height }

// syncChain is the chain as block sync sees it.
type syncChain struct{ c *blockchain.Chain }

func (s syncChain) ProcessBlock(b *types.Block) (bool, bool, error) {
	r, err := s.c.ProcessBlock(b)
	if consensus.CodeOf(err) == consensus.ErrDuplicateBlock {
		// Gossip and catch-up may both deliver a block: not the sender's
		// fault.
		return false, false, nil
	}
	return r.MainChain, r.Orphan, err
}

func (s syncChain) Tip() (types.Hash, int64) {
	t := s.c.Tip()
	return t.Hash, t.Height
}

// Locator lists main-chain hashes from the tip back, doubling the step
// after ten, ending with genesis.
func (s syncChain) Locator() []types.Hash {
	tip := s.c.Tip().Height
	var out []types.Hash
	step := int64(1)
	for h := tip; h > 0; h -= step {
		if hdr, ok := s.c.HeaderByHeight(h); ok {
			out = append(out, hdr.Hash())
		}
		if len(out) >= 10 {
			step *= 2
		}
	}
	if g, ok := s.c.HeaderByHeight(0); ok {
		out = append(out, g.Hash())
	}
	return out
}

// heightOnMain is the height of hash when it is on the main chain.
func (s syncChain) heightOnMain(hash types.Hash) (int64, bool) {
	b, err := s.c.BlockByHash(hash)
	if err != nil || len(b.Txs) == 0 || b.Txs[0].Coinbase == nil {
		if err == nil {
			// Genesis may have no coinbase height: it is height 0.
			if g, ok := s.c.HeaderByHeight(0); ok && g.Hash() == hash {
				return 0, true
			}
		}
		return 0, false
	}
	h := b.Txs[0].Coinbase.Height
	hdr, ok := s.c.HeaderByHeight(h)
	return h, ok && hdr.Hash() == hash
}

func (s syncChain) HeadersAfter(locator []types.Hash, max int) []types.Header {
	from := int64(0)
	for _, h := range locator {
		if height, ok := s.heightOnMain(h); ok {
			from = height
			break
		}
	}
	var out []types.Header
	for h := from + 1; len(out) < max; h++ {
		hdr, ok := s.c.HeaderByHeight(h)
		if !ok {
			break
		}
		out = append(out, hdr)
	}
	return out
}

func (s syncChain) BlockByHash(h types.Hash) (*types.Block, bool) {
	b, err := s.c.BlockByHash(h)
	return b, err == nil
}

func (s syncChain) HaveBlock(h types.Hash) bool {
	_, err := s.c.BlockByHash(h)
	return err == nil
}

// backend is the node as the wallet API sees it.
type backend struct{ n *Node }

func (b backend) AddressPrefix() string { return b.n.p.AddressPrefix }

func (b backend) Status() chainapi.Status {
	st := b.n.chain.Status()
	out := chainapi.Status{Network: st.Network, Height: st.Height, Tip: st.Tip, Bits: st.Bits, Difficulty: st.Difficulty,
		Supply: st.Issued, CapEnabled: st.CapEnabled, CapFactor: int64(st.CapFactor),
		MempoolTxs: b.n.pool.Len(), MempoolBytes: b.n.pool.Bytes()}
	if hdr, ok := b.n.chain.HeaderByHeight(st.Height); ok {
		out.Time = hdr.Time
	}
	for _, k := range st.Licences {
		out.Licences = append(out.Licences, types.Address(k).Encode(b.n.p.AddressPrefix))
	}
	b.n.mu.Lock()
	out.Syncing = b.n.syncing
	b.n.mu.Unlock()
	return out
}

func (b backend) UTXOs(a types.Address) ([]chainapi.UTXO, error) { return b.n.utxos(a), nil }

func (b backend) Submit(tx *types.Tx) error { return b.n.Submit(tx) }

func (b backend) TxStatus(id types.Hash) chainapi.TxStatus {
	b.n.mu.Lock()
	h, ok := b.n.txAt[id]
	b.n.mu.Unlock()
	if ok {
		return chainapi.TxStatus{State: "confirmed", Height: h, Confirmations: b.n.chain.Tip().Height - h + 1}
	}
	if b.n.pool.Has(id) {
		return chainapi.TxStatus{State: "mempool"}
	}
	return chainapi.TxStatus{State: "unknown"}
}

func (b backend) Contracts() []chainapi.Contract {
	var out []chainapi.Contract
	for _, c := range b.n.chain.Contracts() {
		out = append(out, contractView(b.n.p.AddressPrefix, c))
	}
	return out
}

func (b backend) Faucet(a types.Address, amount uint64) (types.Hash, error) {
	return b.n.faucet(a, amount)
}

func contractView(prefix string, c consensus.Contract) chainapi.Contract {
	v := chainapi.Contract{ID: c.ID, State: c.State.String(), RewardPerBlock: c.Reward, Duration: int64(c.Duration),
		Deposit: c.DepositValue, Yes: c.Yes, No: c.No, Proposed: c.Submitted, VotingEnds: c.VotingEnd, Starts: c.Start, Ends: c.Ended}
	for _, b := range c.Beneficiaries {
		v.Beneficiaries = append(v.Beneficiaries, chainapi.Payment{Address: b.Address.Encode(prefix), Amount: b.Amount})
	}
	return v
}
