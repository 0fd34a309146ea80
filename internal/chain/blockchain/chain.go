package blockchain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/pow"
	"github.com/iop-go/iop/internal/chain/types"
)

// Database buckets besides the state's (which are "s/" + consensus bucket).
var (
	bucketBlocks = []byte("blocks") // hash -> encoded block
	bucketIndex  = []byte("index")  // hash -> header (88) | height (8 BE) | status (1)
	bucketUndo   = []byte("undo")   // hash -> undo record of a main-chain block
	bucketChain  = []byte("chain")  // "tip" -> hash; "network" -> magic
	keyTip       = []byte("tip")
	keyNetwork   = []byte("network")
)

func stateBucket(name string) []byte { return []byte("s/" + name) }

// Block status bits.
const (
	statusInvalid uint8 = 1 << iota // broke a rule, or descends from a block that did
)

// DefaultMaxOrphans bounds the orphan pool when Config.MaxOrphans is 0.
const DefaultMaxOrphans = 100

// Config configures a Chain.
type Config struct {
	Params *chaincfg.Params
	DB     *bbolt.DB
	Engine consensus.Engine // nil: consensus.LicensedPoW
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: discard
	// MaxOrphans bounds the orphan pool (0: DefaultMaxOrphans).
	MaxOrphans int
	// OnTipChange, when set, is called after every ProcessBlock that
	// changed the tip, outside the chain's lock, in order.
	OnTipChange func(TipChange)
	// SigWorkers is the number of goroutines verifying signatures (0:
	// GOMAXPROCS).
	SigWorkers int
	// SigCache, when set, skips verifying the signatures of transactions
	// the mempool already verified (see consensus.SigCache).
	SigCache *consensus.SigCache
}

// Tip names a block of the main chain.
type Tip struct {
	Hash   types.Hash
	Height int64
}

// TipChange describes a tip change: blocks disconnected (tip first) and
// connected (oldest first).
type TipChange struct {
	Old, New     Tip
	Disconnected []*types.Block
	Connected    []*types.Block
}

// Result is what ProcessBlock did with a valid block.
type Result struct {
	MainChain bool // the block is on the main chain now
	Orphan    bool // its parent is unknown; it waits in the orphan pool
	Reorged   int  // main-chain blocks disconnected by a reorganisation
}

type node struct {
	hash   types.Hash
	header types.Header
	parent *node
	height int64
	work   *big.Int
	status uint8
}

// Chain is a block chain stored in bbolt. It is safe for concurrent use.
type Chain struct {
	p      *chaincfg.Params
	e      consensus.Engine
	db     *bbolt.DB
	now    func() time.Time
	log    *slog.Logger
	maxOrp int
	onTip  func(TipChange)

	mu      sync.Mutex // guards the fields below
	index   map[types.Hash]*node
	main    []*node // main[h] is the main-chain block at height h
	state   *consensus.State
	orphans map[types.Hash]*types.Block
	byPrev  map[types.Hash][]types.Hash
	orpFIFO []types.Hash
	events  []TipChange
}

// New opens the chain stored in cfg.DB, creating it with the genesis block
// of cfg.Params when the database is empty.
func New(cfg Config) (*Chain, error) {
	if cfg.Params == nil || cfg.DB == nil {
		return nil, errors.New("blockchain: Config needs Params and DB")
	}
	c := &Chain{p: cfg.Params, e: cfg.Engine, db: cfg.DB, now: cfg.Now, log: cfg.Logger, maxOrp: cfg.MaxOrphans, onTip: cfg.OnTipChange,
		index: make(map[types.Hash]*node), orphans: make(map[types.Hash]*types.Block), byPrev: make(map[types.Hash][]types.Hash)}
	if c.e == nil {
		c.e = consensus.LicensedPoW{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.maxOrp <= 0 {
		c.maxOrp = DefaultMaxOrphans
	}
	err := c.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketBlocks, bucketIndex, bucketUndo, bucketChain} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		for _, name := range consensus.Buckets {
			if _, err := tx.CreateBucketIfNotExists(stateBucket(name)); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketChain)
		if net := meta.Get(keyNetwork); net != nil && [4]byte(net) != c.p.Magic {
			return fmt.Errorf("database belongs to network magic %x, not %s (%x)", net, c.p.Name, c.p.Magic)
		}
		if meta.Get(keyTip) != nil {
			return nil
		}
		g := consensus.GenesisBlock(c.p)
		st := consensus.NewState(c.p)
		if _, err := st.ConnectGenesis(g); err != nil {
			return err
		}
		hash := g.Hash()
		if err := putBlock(tx, g, 0, 0); err != nil {
			return err
		}
		var werr error
		st.Records(func(bucket string, key, val []byte) {
			if werr == nil {
				werr = tx.Bucket(stateBucket(bucket)).Put(key, val)
			}
		})
		if werr != nil {
			return werr
		}
		if err := meta.Put(keyNetwork, c.p.Magic[:]); err != nil {
			return err
		}
		return meta.Put(keyTip, hash[:])
	})
	if err != nil {
		return nil, fmt.Errorf("blockchain: init: %w", err)
	}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("blockchain: load: %w", err)
	}
	c.state.SigWorkers = cfg.SigWorkers
	c.state.Sigs = cfg.SigCache
	c.resumeBestChain()
	c.events = nil
	return c, nil
}

// resumeBestChain switches to the stored branch with the most work when it
// is not the tip: after a crash in the middle of a reorganisation.
func (c *Chain) resumeBestChain() {
	best := c.tipNode()
	for _, n := range c.index {
		if n.status&statusInvalid == 0 && n.work.Cmp(best.work) > 0 {
			best = n
		}
	}
	if best == c.tipNode() {
		return
	}
	b, err := c.readBlock(best.hash)
	if err != nil {
		c.log.Error("cannot resume the best chain", "block", best.hash, "err", err)
		return
	}
	if _, err := c.reorgLocked(best, b); err != nil {
		c.log.Warn("stored branch with more work is invalid", "block", best.hash, "err", err)
	}
}

func encodeIndex(h *types.Header, height int64, status uint8) []byte {
	v := h.Encode()
	v = binary.BigEndian.AppendUint64(v, uint64(height))
	return append(v, status)
}

func putBlock(tx *bbolt.Tx, b *types.Block, height int64, status uint8) error {
	hash := b.Hash()
	if err := tx.Bucket(bucketBlocks).Put(hash[:], b.Encode()); err != nil {
		return err
	}
	return tx.Bucket(bucketIndex).Put(hash[:], encodeIndex(&b.Header, height, status))
}

// load reads the block index and the state.
func (c *Chain) load() error {
	return c.db.View(func(tx *bbolt.Tx) error {
		type entry struct {
			hash   types.Hash
			header types.Header
			height int64
			status uint8
		}
		byHeight := map[int64][]entry{}
		maxH := int64(0)
		err := tx.Bucket(bucketIndex).ForEach(func(k, v []byte) error {
			if len(k) != 32 || len(v) != types.HeaderSize+9 {
				return fmt.Errorf("index entry %x malformed", k)
			}
			h, _ := types.DecodeHeader(v[:types.HeaderSize])
			e := entry{hash: types.Hash(k), header: h, height: int64(binary.BigEndian.Uint64(v[types.HeaderSize:])), status: v[len(v)-1]}
			byHeight[e.height] = append(byHeight[e.height], e)
			maxH = max(maxH, e.height)
			return nil
		})
		if err != nil {
			return err
		}
		for h := int64(0); h <= maxH; h++ {
			for _, e := range byHeight[h] {
				n := &node{hash: e.hash, header: e.header, height: e.height, status: e.status}
				work := pow.CalcWork(e.header.Bits)
				if h > 0 {
					parent := c.index[e.header.Prev]
					if parent == nil {
						return fmt.Errorf("block %s at height %d has no stored parent", e.hash, h)
					}
					n.parent = parent
					work.Add(work, parent.work)
				}
				n.work = work
				c.index[e.hash] = n
			}
		}
		tipHash := types.Hash(tx.Bucket(bucketChain).Get(keyTip))
		tip := c.index[tipHash]
		if tip == nil {
			return fmt.Errorf("tip %s not in the index", tipHash)
		}
		c.main = make([]*node, tip.height+1)
		for n := tip; n != nil; n = n.parent {
			c.main[n.height] = n
		}
		if g := consensus.GenesisBlock(c.p).Hash(); c.main[0].hash != g {
			return fmt.Errorf("stored genesis %s is not %s's genesis %s", c.main[0].hash, c.p.Name, g)
		}
		st, err := consensus.LoadState(c.p, func(fn func(bucket string, key, val []byte) error) error {
			for _, name := range consensus.Buckets {
				if err := tx.Bucket(stateBucket(name)).ForEach(func(k, v []byte) error {
					return fn(name, k, append([]byte{}, v...))
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if st.Tip() != tipHash || st.Height() != tip.height {
			return fmt.Errorf("state is at %s (%d), tip is %s (%d)", st.Tip(), st.Height(), tipHash, tip.height)
		}
		c.state = st
		return nil
	})
}

// chainView is the header chain ending at tip.
type chainView struct {
	c   *Chain
	tip *node
}

func (v chainView) Height() int64                       { return v.tip.height }
func (v chainView) HeaderAt(height int64) *types.Header { return &v.c.ancestor(v.tip, height).header }

func (c *Chain) onMain(n *node) bool { return n.height < int64(len(c.main)) && c.main[n.height] == n }

// ancestor returns n's ancestor at height (n itself at its own height).
func (c *Chain) ancestor(n *node, height int64) *node {
	for n != nil && n.height > height {
		if c.onMain(n) {
			return c.main[height]
		}
		n = n.parent
	}
	return n
}

func (c *Chain) tipNode() *node { return c.main[len(c.main)-1] }

// ProcessBlock validates b and adds it to the chain (or the orphan pool).
// A block that breaks a rule returns a *consensus.RuleError.
func (c *Chain) ProcessBlock(b *types.Block) (Result, error) {
	c.mu.Lock()
	res, err := c.processLocked(b)
	events := c.events
	c.events = nil
	c.mu.Unlock()
	if c.onTip != nil {
		for _, ev := range events {
			c.onTip(ev)
		}
	}
	return res, err
}

func (c *Chain) processLocked(b *types.Block) (Result, error) {
	hash := b.Hash()
	if _, ok := c.index[hash]; ok {
		return Result{}, &consensus.RuleError{Code: consensus.ErrDuplicateBlock, Reason: fmt.Sprintf("block %s already known", hash)}
	}
	if _, ok := c.orphans[hash]; ok {
		return Result{}, &consensus.RuleError{Code: consensus.ErrDuplicateBlock, Reason: fmt.Sprintf("block %s already in the orphan pool", hash)}
	}
	if err := consensus.CheckBlockSanity(c.p, c.e, b); err != nil {
		return Result{}, err
	}
	parent := c.index[b.Header.Prev]
	if parent == nil {
		c.addOrphan(hash, b)
		return Result{Orphan: true}, nil
	}
	res, err := c.acceptLocked(hash, b, parent)
	if err != nil {
		return res, err
	}
	// Orphans waiting for this block (and, in turn, for theirs).
	queue := []types.Hash{hash}
	for len(queue) > 0 {
		prev := queue[0]
		queue = queue[1:]
		for _, oh := range c.byPrev[prev] {
			ob := c.orphans[oh]
			c.removeOrphan(oh)
			if ob == nil {
				continue
			}
			if _, err := c.acceptLocked(oh, ob, c.index[prev]); err != nil {
				c.log.Info("orphan rejected", "block", oh, "err", err)
				continue
			}
			queue = append(queue, oh)
		}
		delete(c.byPrev, prev)
	}
	if n := c.index[hash]; n != nil {
		res.MainChain = c.onMain(n)
	}
	return res, nil
}

func (c *Chain) addOrphan(hash types.Hash, b *types.Block) {
	for len(c.orphans) >= c.maxOrp && len(c.orpFIFO) > 0 {
		c.removeOrphan(c.orpFIFO[0])
	}
	c.orphans[hash] = b
	c.byPrev[b.Header.Prev] = append(c.byPrev[b.Header.Prev], hash)
	c.orpFIFO = append(c.orpFIFO, hash)
}

func (c *Chain) removeOrphan(hash types.Hash) {
	b := c.orphans[hash]
	if b == nil {
		return
	}
	delete(c.orphans, hash)
	list := c.byPrev[b.Header.Prev]
	for i, h := range list {
		if h == hash {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.byPrev, b.Header.Prev)
	} else {
		c.byPrev[b.Header.Prev] = list
	}
	for i, h := range c.orpFIFO {
		if h == hash {
			c.orpFIFO = append(c.orpFIFO[:i:i], c.orpFIFO[i+1:]...)
			break
		}
	}
}

// acceptLocked checks b's header in its branch, stores it and runs the
// fork choice.
func (c *Chain) acceptLocked(hash types.Hash, b *types.Block, parent *node) (Result, error) {
	if parent.status&statusInvalid != 0 {
		return Result{}, &consensus.RuleError{Code: consensus.ErrInvalidAncestor, Reason: fmt.Sprintf("parent %s is invalid", parent.hash)}
	}
	view := chainView{c, parent}
	if err := c.e.CheckHeader(c.p, &b.Header, view); err != nil {
		return Result{}, err
	}
	if err := consensus.CheckTime(c.p, &b.Header, view, c.now()); err != nil {
		return Result{}, err
	}
	n := &node{hash: hash, header: b.Header, parent: parent, height: parent.height + 1}
	n.work = new(big.Int).Add(parent.work, pow.CalcWork(b.Header.Bits))
	tip := c.tipNode()
	if parent == tip {
		c.index[hash] = n
		if err := c.connectLocked(n, b, true); err != nil {
			if consensus.CodeOf(err) == 0 { // not the block's fault (storage)
				delete(c.index, hash)
				return Result{}, err
			}
			c.markInvalid(n, false) // connectLocked stored it as invalid
			return Result{}, err
		}
		c.events = append(c.events, TipChange{Old: Tip{tip.hash, tip.height}, New: Tip{hash, n.height}, Connected: []*types.Block{b}})
		return Result{MainChain: true}, nil
	}
	if err := c.db.Update(func(tx *bbolt.Tx) error { return putBlock(tx, b, n.height, 0) }); err != nil {
		return Result{}, fmt.Errorf("blockchain: store block %s: %w", hash, err)
	}
	c.index[hash] = n
	if n.work.Cmp(tip.work) <= 0 {
		return Result{}, nil
	}
	return c.reorgLocked(n, b)
}

// markInvalid flags n invalid in memory and, if it is stored, on disk.
func (c *Chain) markInvalid(n *node, store bool) {
	n.status |= statusInvalid
	if !store {
		return
	}
	if err := c.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketIndex).Put(n.hash[:], encodeIndex(&n.header, n.height, n.status))
	}); err != nil {
		c.log.Error("cannot record invalid block", "block", n.hash, "err", err)
	}
}

// connectLocked connects n (whose parent is the tip) in one bbolt
// transaction; storeBody also stores the block itself.
func (c *Chain) connectLocked(n *node, b *types.Block, storeBody bool) error {
	u, err := c.state.Connect(c.e, b)
	if err != nil {
		if storeBody && consensus.CodeOf(err) != 0 {
			// Remember the invalid block so that its descendants are refused.
			if serr := c.db.Update(func(tx *bbolt.Tx) error { return putBlock(tx, b, n.height, statusInvalid) }); serr != nil {
				c.log.Error("cannot store invalid block", "block", n.hash, "err", serr)
			}
		}
		return err
	}
	err = c.db.Update(func(tx *bbolt.Tx) error {
		if storeBody {
			if err := putBlock(tx, b, n.height, n.status); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketUndo).Put(n.hash[:], u.Encode()); err != nil {
			return err
		}
		if err := c.writeChanges(tx, u); err != nil {
			return err
		}
		return tx.Bucket(bucketChain).Put(keyTip, n.hash[:])
	})
	if err != nil {
		if derr := c.state.Disconnect(u); derr != nil {
			panic(fmt.Sprintf("blockchain: state rollback after a failed write: %v", derr))
		}
		return fmt.Errorf("blockchain: store connected block %s: %w", n.hash, err)
	}
	c.main = append(c.main, n)
	return nil
}

func (c *Chain) writeChanges(tx *bbolt.Tx, u *consensus.Undo) error {
	return c.state.ChangedRecords(u, func(bucket string, key, val []byte) error {
		b := tx.Bucket(stateBucket(bucket))
		if val == nil {
			return b.Delete(key)
		}
		return b.Put(key, val)
	})
}

// disconnectLocked disconnects the tip and returns its block.
func (c *Chain) disconnectLocked() (*types.Block, error) {
	n := c.tipNode()
	if n.parent == nil {
		return nil, errors.New("blockchain: cannot disconnect genesis")
	}
	var b *types.Block
	var u *consensus.Undo
	err := c.db.View(func(tx *bbolt.Tx) error {
		var err error
		if b, err = types.DecodeBlock(tx.Bucket(bucketBlocks).Get(n.hash[:])); err != nil {
			return err
		}
		u, err = consensus.DecodeUndo(tx.Bucket(bucketUndo).Get(n.hash[:]))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("blockchain: read block %s to disconnect: %w", n.hash, err)
	}
	if err := c.state.Disconnect(u); err != nil {
		return nil, fmt.Errorf("blockchain: disconnect %s: %w", n.hash, err)
	}
	err = c.db.Update(func(tx *bbolt.Tx) error {
		if err := c.writeChanges(tx, u); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUndo).Delete(n.hash[:]); err != nil {
			return err
		}
		return tx.Bucket(bucketChain).Put(keyTip, n.parent.hash[:])
	})
	if err != nil {
		return nil, fmt.Errorf("blockchain: store disconnect of %s: %w", n.hash, err)
	}
	c.main = c.main[:len(c.main)-1]
	return b, nil
}

func (c *Chain) readBlock(hash types.Hash) (*types.Block, error) {
	var b *types.Block
	err := c.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketBlocks).Get(hash[:])
		if v == nil {
			return fmt.Errorf("block %s not stored", hash)
		}
		var err error
		b, err = types.DecodeBlock(v)
		return err
	})
	return b, err
}

// reorgLocked makes the branch ending at n (b) the main chain.
func (c *Chain) reorgLocked(n *node, b *types.Block) (Result, error) {
	var attach []*node
	fork := n
	for !c.onMain(fork) {
		if fork.status&statusInvalid != 0 {
			c.markInvalid(n, true)
			return Result{}, &consensus.RuleError{Code: consensus.ErrInvalidAncestor, Reason: fmt.Sprintf("branch contains invalid block %s", fork.hash)}
		}
		attach = append(attach, fork)
		fork = fork.parent
	}
	for i, j := 0, len(attach)-1; i < j; i, j = i+1, j-1 {
		attach[i], attach[j] = attach[j], attach[i]
	}
	oldTip := c.tipNode()
	var detached []*types.Block
	var oldNodes []*node
	for c.tipNode() != fork {
		oldNodes = append(oldNodes, c.tipNode())
		db, err := c.disconnectLocked()
		if err != nil {
			return Result{}, err
		}
		detached = append(detached, db)
	}
	var connected []*types.Block
	for i, an := range attach {
		ab := b
		if an != n {
			var err error
			if ab, err = c.readBlock(an.hash); err != nil {
				return Result{}, err
			}
		}
		if err := c.connectLocked(an, ab, false); err != nil {
			if consensus.CodeOf(err) != 0 {
				for _, bad := range attach[i:] {
					c.markInvalid(bad, true)
				}
			}
			// Back to the old main chain.
			for c.tipNode() != fork {
				if _, derr := c.disconnectLocked(); derr != nil {
					return Result{}, derr
				}
			}
			for k := len(oldNodes) - 1; k >= 0; k-- {
				if rerr := c.connectLocked(oldNodes[k], detached[k], false); rerr != nil {
					return Result{}, fmt.Errorf("blockchain: reconnect old main chain: %w", rerr)
				}
			}
			c.log.Warn("reorganisation failed", "block", an.hash, "err", err)
			return Result{}, err
		}
		connected = append(connected, ab)
	}
	c.log.Info("reorganised", "fork", fork.height, "disconnected", len(detached), "connected", len(connected), "tip", n.hash)
	c.events = append(c.events, TipChange{Old: Tip{oldTip.hash, oldTip.height}, New: Tip{n.hash, n.height}, Disconnected: detached, Connected: connected})
	return Result{MainChain: true, Reorged: len(detached)}, nil
}
