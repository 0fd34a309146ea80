// Package chainnode runs the token chain inside a full node: the block
// chain (package blockchain) in its own bbolt file, the mempool, block and
// transaction gossip with headers-first catch-up (package netsync), the
// wallet API (package chainapi) with an index of unspent outputs by
// address, a miner that works while the node's key holds a licence and is
// under the cap, and on devnets a faucet.
//
// The address and transaction indexes live in memory: they are rebuilt at
// start-up by replaying the main chain and kept current from the chain's
// tip changes (connected and disconnected blocks), so a reorganisation
// moves them exactly with the chain.
package chainnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/blockchain"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/mempool"
	"github.com/iop-go/iop/internal/chain/miner"
	"github.com/iop-go/iop/internal/chain/netsync"
	"github.com/iop-go/iop/internal/chain/types"
)

// Config configures a chain node.
type Config struct {
	Params *chaincfg.Params
	DB     *bbolt.DB // the chain's own database
	Host   host.Host
	// MinerKey mines when licensed; nil runs no miner.
	MinerKey *identity.Key
	// Faucet pays devnet faucet requests from its outputs; nil (and always
	// off devnets) offers none.
	Faucet *identity.Key
	Logger *slog.Logger
}

// Node is the chain part of a full node.
type Node struct {
	cfg   Config
	p     *chaincfg.Params
	log   *slog.Logger
	chain *blockchain.Chain
	pool  *mempool.Pool
	sync  *netsync.Sync
	api   *chainapi.Server
	sigs  *consensus.SigCache
	tips  chan struct{} // a token per tip change, for the miner

	mu      sync.Mutex                                          // guards the indexes
	byAddr  map[types.Address]map[types.OutPoint]consensus.Coin // unspent outputs by owner
	txAt    map[types.Hash]int64                                // main-chain transactions and their heights
	frozen  map[types.OutPoint]frozenCoin                       // deposits and vote coins
	tipSeen time.Time                                           // when the tip last changed
	syncing bool

	faucetMu sync.Mutex // one faucet payment at a time
}

// New opens the chain and starts gossip, sync and the API. Call Run for
// the miner.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Params == nil || cfg.DB == nil || cfg.Host == nil {
		return nil, errors.New("chainnode: Config needs Params, DB and Host")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, p: cfg.Params, log: cfg.Logger, tips: make(chan struct{}, 1),
		byAddr: make(map[types.Address]map[types.OutPoint]consensus.Coin), txAt: make(map[types.Hash]int64),
		frozen: make(map[types.OutPoint]frozenCoin)}
	// Transactions the mempool verified are not verified again in blocks.
	n.sigs = consensus.NewSigCache(sigCacheSize)
	ch, err := blockchain.New(blockchain.Config{Params: cfg.Params, DB: cfg.DB, Logger: cfg.Logger, OnTipChange: n.onTip, SigCache: n.sigs})
	if err != nil {
		return nil, err
	}
	n.chain = ch
	if err := n.rebuildIndex(); err != nil {
		return nil, err
	}
	n.pool, err = mempool.New(mempool.Config{Magic: cfg.Params.Magic, CoinbaseMaturity: cfg.Params.CoinbaseMaturity,
		Source: utxoSource{ch}, CheckPayload: n.checkPayload, MinFeeRate: 1})
	if err != nil {
		return nil, err
	}
	n.sync, err = netsync.New(ctx, netsync.Config{Host: cfg.Host, Network: cfg.Params.Name, Chain: syncChain{ch}, Mempool: verifiedPool{n},
		Logger: cfg.Logger, Progress: n.progress})
	if err != nil {
		return nil, err
	}
	n.api, err = chainapi.New(chainapi.Config{Host: cfg.Host, Backend: backend{n}, Logger: cfg.Logger})
	if err != nil {
		n.sync.Close()
		return nil, err
	}
	tip := ch.Tip()
	n.log.Info("chain loaded", "network", cfg.Params.Name, "height", tip.Height, "tip", tip.Hash)
	return n, nil
}

// sigCacheSize bounds the signature cache: more than a full mempool's
// worth of typical transactions.
const sigCacheSize = 100_000

// verifiedPool is the mempool whose accepted transactions enter the
// signature cache (Accept verified every signature).
type verifiedPool struct{ n *Node }

func (v verifiedPool) Accept(tx *types.Tx) error {
	if err := v.n.pool.Accept(tx); err != nil {
		return err
	}
	v.n.sigs.Add(tx.ID())
	return nil
}

// Chain is the node's block chain.
func (n *Node) Chain() *blockchain.Chain { return n.chain }

// Close stops gossip and the API.
func (n *Node) Close() {
	n.api.Close()
	n.sync.Close()
}

func (n *Node) progress(have, want int64) {
	n.mu.Lock()
	n.syncing = have < want
	n.mu.Unlock()
	n.log.Info("chain sync", "height", have, "peer_height", want, "progress", fmt.Sprintf("%.1f%%", 100*float64(have)/float64(max(want, 1))))
}

// onTip moves the indexes and the mempool with the chain.
func (n *Node) onTip(tc blockchain.TipChange) {
	n.mu.Lock()
	n.tipSeen = time.Now()
	for _, b := range tc.Disconnected {
		n.unindexLocked(b)
	}
	for i, b := range tc.Connected {
		n.indexLocked(b, tc.New.Height-int64(len(tc.Connected)-1-i))
	}
	n.mu.Unlock()
	if n.pool != nil {
		for _, b := range tc.Disconnected {
			n.pool.BlockDisconnected(b)
		}
		for _, b := range tc.Connected {
			n.pool.BlockConnected(b)
		}
	}
	select {
	case n.tips <- struct{}{}:
	default:
	}
}

func (n *Node) addCoinLocked(op types.OutPoint, c consensus.Coin) {
	m := n.byAddr[c.Address]
	if m == nil {
		m = make(map[types.OutPoint]consensus.Coin)
		n.byAddr[c.Address] = m
	}
	m[op] = c
}

func (n *Node) delCoinLocked(addr types.Address, op types.OutPoint) {
	if m := n.byAddr[addr]; m != nil {
		delete(m, op)
		if len(m) == 0 {
			delete(n.byAddr, addr)
		}
	}
}

// frozenCoin is output 0 of a proposal (the deposit) or of a vote.
type frozenCoin struct {
	contract types.Hash
	vote     bool
}

func (n *Node) indexLocked(b *types.Block, height int64) {
	for _, tx := range b.Txs {
		id := tx.ID()
		if len(tx.Payload) > 0 && len(tx.Outputs) > 0 {
			if pl, err := consensus.DecodePayload(tx.Payload); err == nil {
				switch {
				case pl.Proposal != nil:
					n.frozen[types.OutPoint{Tx: id}] = frozenCoin{contract: id}
				case pl.Vote != nil:
					n.frozen[types.OutPoint{Tx: id}] = frozenCoin{contract: pl.Vote.Contract, vote: true}
				}
			}
		}
		for _, in := range tx.Inputs {
			n.delCoinLocked(types.AddressOf(in.PubKey[:]), in.Prev)
		}
		for i, o := range tx.Outputs {
			n.addCoinLocked(types.OutPoint{Tx: id, Index: uint32(i)}, consensus.Coin{Value: o.Value, Address: o.Address, Height: height, Coinbase: tx.IsCoinbase()})
		}
		n.txAt[id] = height
	}
}

func (n *Node) unindexLocked(b *types.Block) {
	for _, tx := range slices.Backward(b.Txs) {
		id := tx.ID()
		for i, o := range tx.Outputs {
			n.delCoinLocked(o.Address, types.OutPoint{Tx: id, Index: uint32(i)})
		}
		delete(n.frozen, types.OutPoint{Tx: id})
		for _, in := range tx.Inputs {
			// The chain has restored the spent output.
			if c, ok := n.chain.UTXO(in.Prev); ok {
				n.addCoinLocked(in.Prev, c)
			}
		}
		delete(n.txAt, id)
	}
}

// rebuildIndex replays the main chain into the indexes.
func (n *Node) rebuildIndex() error {
	tip := n.chain.Tip()
	n.mu.Lock()
	defer n.mu.Unlock()
	for h := int64(0); h <= tip.Height; h++ {
		hdr, ok := n.chain.HeaderByHeight(h)
		if !ok {
			return fmt.Errorf("chainnode: no main-chain header at height %d", h)
		}
		b, err := n.chain.BlockByHash(hdr.Hash())
		if err != nil {
			return fmt.Errorf("chainnode: block at height %d: %w", h, err)
		}
		n.indexLocked(b, h)
	}
	return nil
}

// utxos lists an address's unspent outputs.
func (n *Node) utxos(a types.Address) []chainapi.UTXO {
	tip := n.chain.Tip().Height
	contracts := map[types.Hash]consensus.Contract{}
	for _, c := range n.chain.Contracts() {
		contracts[c.ID] = c
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]chainapi.UTXO, 0, len(n.byAddr[a]))
	for op, c := range n.byAddr[a] {
		mature := !c.Coinbase || tip+1-c.Height >= n.p.CoinbaseMaturity
		u := chainapi.UTXO{OutPoint: op, Value: c.Value, Height: c.Height, Coinbase: c.Coinbase, Mature: mature}
		if f, ok := n.frozen[op]; ok {
			if ct, ok := contracts[f.contract]; ok {
				switch {
				case f.vote && ct.State == consensus.CCSubmitted && tip < ct.VotingEnd:
					u.Frozen = "vote"
				case !f.vote && ct.State != consensus.CCNotApproved && ct.State != consensus.CCCancelled && ct.State != consensus.CCExecuted:
					u.Frozen = "deposit"
				}
			}
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(x, y chainapi.UTXO) int { return int(x.Height - y.Height) })
	return out
}

// Submit checks tx into the mempool and gossips it.
func (n *Node) Submit(tx *types.Tx) error {
	if err := (verifiedPool{n}).Accept(tx); err != nil {
		return err
	}
	if err := n.sync.PublishTx(tx); err != nil {
		n.log.Warn("gossip transaction", "tx", tx.ID(), "err", err)
	}
	return nil
}

// Run mines while ctx lasts, when the node has a miner key.
func (n *Node) Run(ctx context.Context) error {
	if n.cfg.MinerKey == nil {
		<-ctx.Done()
		return nil
	}
	key := [32]byte(types.AddressOf(n.cfg.MinerKey.Public())) // licences name addresses
	waiting := ""
	for ctx.Err() == nil {
		if why := n.cannotMine(key); why != "" {
			if why != waiting {
				n.log.Info("miner waiting", "reason", why)
				waiting = why
			}
			select {
			case <-ctx.Done():
			case <-n.tips:
			case <-time.After(time.Second):
			}
			continue
		}
		waiting = ""
		if err := n.mineOne(ctx); err != nil && !errors.Is(err, miner.ErrStale) && ctx.Err() == nil {
			n.log.Warn("mining", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// cannotMine tells why the key may not mine the next block, or "".
func (n *Node) cannotMine(key [32]byte) string {
	st := n.chain.Status()
	if st.Height+1 >= n.p.LicenceActivationHeight && !slices.Contains(st.Licences, key) {
		return "no licence for this node's key"
	}
	if st.Cap > 0 && uint64(n.chain.MinerWindowCount(key)) >= st.Cap {
		return fmt.Sprintf("capped: mined %d of the last %d blocks", st.Cap, st.CapWindow)
	}
	n.mu.Lock()
	syncing := n.syncing
	n.mu.Unlock()
	if syncing {
		return "catching up with peers"
	}
	return ""
}

func (n *Node) mineOne(ctx context.Context) error {
	t := n.chain.Template()
	now := time.Now().Unix()
	if n.p.NoRetarget {
		// Fixed difficulty (devnet): pace blocks at the target spacing,
		// counted from when this node saw the tip arrive.
		n.mu.Lock()
		due := n.tipSeen.Add(n.p.TargetSpacing)
		n.mu.Unlock()
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-n.tips:
				return miner.ErrStale
			case <-time.After(wait):
			}
			now = time.Now().Unix()
		}
	}
	txs := n.pool.Select(types.MaxBlockSize / 2)
	txs, fees := n.withFees(txs)
	tm := miner.Template{Magic: n.p.Magic, Version: 1, Height: t.Height, Prev: t.Prev, Bits: t.Bits,
		Time: max(now, t.MinTime), Payments: t.Payments, Subsidy: t.Subsidy, Txs: txs, Fees: fees, Miner: n.cfg.MinerKey}
	b, err := miner.Solve(ctx, tm, 1, func() bool { return n.chain.Tip().Hash != t.Prev }, nil)
	if err != nil {
		return err
	}
	res, err := n.chain.ProcessBlock(b)
	if err != nil {
		return fmt.Errorf("own block refused: %w", err)
	}
	if res.MainChain {
		n.log.Debug("mined", "height", t.Height, "hash", b.Hash(), "txs", len(b.Txs))
		if err := n.sync.PublishBlock(b); err != nil {
			n.log.Warn("gossip block", "err", err)
		}
	}
	return nil
}

// withFees keeps the transactions whose inputs it can value (confirmed or
// earlier in the list) and sums their fees.
func (n *Node) withFees(txs []*types.Tx) ([]*types.Tx, uint64) {
	created := map[types.OutPoint]uint64{}
	var kept []*types.Tx
	var fees uint64
	for _, tx := range txs {
		var in uint64
		ok := true
		for _, i := range tx.Inputs {
			if v, found := created[i.Prev]; found {
				in += v
			} else if c, found := n.chain.UTXO(i.Prev); found {
				in += c.Value
			} else {
				ok = false
				break
			}
		}
		var out uint64
		for _, o := range tx.Outputs {
			out += o.Value
		}
		if !ok || out > in {
			continue
		}
		id := tx.ID()
		for i, o := range tx.Outputs {
			created[types.OutPoint{Tx: id, Index: uint32(i)}] = o.Value
		}
		kept = append(kept, tx)
		fees += in - out
	}
	return kept, fees
}

// faucet pays amount to addr from the faucet key's mature outputs.
func (n *Node) faucet(addr types.Address, amount uint64) (types.Hash, error) {
	if n.cfg.Faucet == nil || n.p.Name != "devnet" {
		return types.Hash{}, fmt.Errorf("faucet: %w (devnet nodes with a faucet key only)", chainapi.ErrUnavailable)
	}
	const maxFaucet = 1000 * chaincfg.Units
	if amount == 0 || amount > maxFaucet {
		return types.Hash{}, fmt.Errorf("faucet: amount must be between 1 unit and 1000 tokens")
	}
	n.faucetMu.Lock()
	defer n.faucetMu.Unlock()
	from := types.AddressOf(n.cfg.Faucet.Public())
	var inputs []chainapi.UTXO
	var have uint64
	for _, u := range n.utxos(from) {
		if !u.Mature {
			continue
		}
		if _, spent := n.pool.SpentBy(u.OutPoint); spent {
			continue
		}
		inputs = append(inputs, u)
		have += u.Value
		if have >= amount+chaincfg.Units/100 {
			break
		}
	}
	const fee = chaincfg.Units / 1000
	if have < amount+fee {
		return types.Hash{}, fmt.Errorf("faucet is dry for now (%d spendable units): wait for more blocks", have)
	}
	tx := &types.Tx{Version: 1, Outputs: []types.TxOut{{Value: amount, Address: addr}}}
	for _, u := range inputs {
		tx.Inputs = append(tx.Inputs, types.TxIn{Prev: u.OutPoint})
	}
	if rest := have - amount - fee; rest > 0 {
		tx.Outputs = append(tx.Outputs, types.TxOut{Value: rest, Address: from})
	}
	tx.SignInputs(n.p.Magic, func(int) *identity.Key { return n.cfg.Faucet })
	if err := n.Submit(tx); err != nil {
		return types.Hash{}, fmt.Errorf("faucet: %w", err)
	}
	return tx.ID(), nil
}
