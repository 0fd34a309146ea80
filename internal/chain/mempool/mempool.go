// Package mempool holds the IoP token chain's unconfirmed transactions: it
// checks every transaction as far as it can be checked without a block
// (structure, inputs, maturity, ownership, signatures, value, fee rate,
// lock time and an optional consensus payload hook), keeps the pool within
// count and byte limits by evicting the lowest fee-rate packages, follows
// the chain as blocks are connected and disconnected, and hands the miner a
// block template ordered by ancestor-package fee rate.
//
// # Model
//
// Transactions may spend outputs of other pool transactions (chains of
// unconfirmed transactions), up to MaxAncestors ancestors and
// MaxDescendants descendants per transaction, like Bitcoin Core. Every
// output is spent by at most one pool transaction: a second spender is
// refused with ErrConflict (there is no replacement by fee).
//
// Fee rates are base units per byte of the canonical encoding and are
// compared exactly as fractions, never rounded.
//
// # Concurrency
//
// A Pool is safe for concurrent use. Signatures are verified before the
// pool's lock is taken, so concurrent Accept calls verify in parallel.
// The pool calls its UTXOSource while holding its own lock; the chain must
// therefore call BlockConnected and BlockDisconnected after it has applied
// the block and released any lock that its UTXOSource methods take.
package mempool

import (
	"container/heap"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/iop-go/iop/internal/chain/types"
)

// Limits on chains of unconfirmed transactions.
const (
	MaxAncestors   = 25 // in-pool ancestors of a transaction, itself included
	MaxDescendants = 25 // in-pool descendants of a transaction, itself included
)

// Defaults used for zero Config fields.
const (
	DefaultMaxTxs   = 50_000
	DefaultMaxBytes = 64 << 20
)

// Rejection reasons. Accept's errors wrap exactly one of them, with the
// details of what failed.
var (
	// ErrDuplicate: the transaction is already in the pool.
	ErrDuplicate = errors.New("transaction already in the mempool")
	// ErrMalformed: the transaction breaks a structural rule (size, counts,
	// coinbase, no inputs or outputs, duplicate inputs, payload length).
	ErrMalformed = errors.New("malformed transaction")
	// ErrMissingInput: an input names an output that is neither a confirmed
	// unspent output nor an output of a pool transaction.
	ErrMissingInput = errors.New("input spends an unknown or already spent output")
	// ErrConflict: an input is already spent by another pool transaction.
	ErrConflict = errors.New("input already spent by a mempool transaction")
	// ErrImmature: an input spends a coinbase output before it matures.
	ErrImmature = errors.New("input spends an immature coinbase output")
	// ErrWrongKey: an input's public key does not own the output it spends.
	ErrWrongKey = errors.New("input key does not own the spent output")
	// ErrBadSignature: an input's signature does not verify.
	ErrBadSignature = errors.New("invalid input signature")
	// ErrValue: outputs exceed inputs, or a sum overflows.
	ErrValue = errors.New("invalid transaction value")
	// ErrFeeTooLow: the fee rate is below the pool's minimum.
	ErrFeeTooLow = errors.New("fee rate too low")
	// ErrLockTime: the transaction cannot be mined in the next block.
	ErrLockTime = errors.New("transaction lock time not reached")
	// ErrPayload: the consensus payload check refused the transaction.
	ErrPayload = errors.New("invalid transaction payload")
	// ErrChainTooLong: too many unconfirmed ancestors or descendants.
	ErrChainTooLong = errors.New("too long a chain of unconfirmed transactions")
	// ErrPoolFull: the pool is full and the transaction pays no more than
	// what would have to be evicted for it.
	ErrPoolFull = errors.New("mempool full")
)

// Invalid reports whether err means the transaction is invalid in itself,
// whatever the chain's or the pool's state: a peer that relays it
// misbehaves. Other rejections (duplicates, conflicts, missing or immature
// inputs, fee and lock time, a full pool) depend on the receiver's state.
func Invalid(err error) bool {
	for _, e := range []error{ErrMalformed, ErrWrongKey, ErrBadSignature, ErrValue, ErrPayload} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// UTXOSource is the confirmed chain state the pool checks inputs against.
type UTXOSource interface {
	// UTXO returns a confirmed unspent output, the height it was created at
	// and whether it came from a coinbase.
	UTXO(op types.OutPoint) (out types.TxOut, height int64, coinbase bool, ok bool)
	// TipHeight is the height of the best chain's tip.
	TipHeight() int64
}

// Config configures a Pool.
type Config struct {
	Magic            [4]byte // network magic: signatures cover it
	CoinbaseMaturity int64   // confirmations before a coinbase output may be spent
	Source           UTXOSource
	// CheckPayload is the optional consensus check of a transaction's typed
	// payload (administrator and contract transactions).
	CheckPayload func(*types.Tx) error
	MinFeeRate   uint64           // base units per byte
	MaxTxs       int              // transactions; DefaultMaxTxs if 0
	MaxBytes     int              // bytes of encoded transactions; DefaultMaxBytes if 0
	Now          func() time.Time // clock; time.Now if nil
}

type entry struct {
	tx       *types.Tx
	id       types.Hash
	size     int
	fee      uint64
	added    time.Time
	seq      uint64
	parents  map[types.Hash]*entry
	children map[types.Hash]*entry
	// Totals over the entry and all its in-pool descendants.
	descFee   uint64
	descSize  int
	descCount int
}

// Pool is the mempool.
type Pool struct {
	cfg Config

	mu      sync.RWMutex
	entries map[types.Hash]*entry
	spent   map[types.OutPoint]*entry // output → the pool transaction spending it
	bytes   int
	seq     uint64
}

// New returns an empty pool.
func New(cfg Config) (*Pool, error) {
	if cfg.Source == nil {
		return nil, errors.New("mempool: Config.Source is nil: pass the chain's UTXO view")
	}
	if cfg.MaxTxs < 0 || cfg.MaxBytes < 0 || cfg.CoinbaseMaturity < 0 {
		return nil, fmt.Errorf("mempool: negative limit in config (MaxTxs %d, MaxBytes %d, CoinbaseMaturity %d)",
			cfg.MaxTxs, cfg.MaxBytes, cfg.CoinbaseMaturity)
	}
	if cfg.MaxTxs == 0 {
		cfg.MaxTxs = DefaultMaxTxs
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pool{cfg: cfg, entries: map[types.Hash]*entry{}, spent: map[types.OutPoint]*entry{}}, nil
}

// checkStructure checks what needs no state at all.
func checkStructure(tx *types.Tx, size int) error {
	switch {
	case tx == nil:
		return fmt.Errorf("%w: nil transaction", ErrMalformed)
	case size > types.MaxTxSize:
		return fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrMalformed, size, types.MaxTxSize)
	case tx.IsCoinbase():
		return fmt.Errorf("%w: a coinbase is only valid as a block's first transaction", ErrMalformed)
	case len(tx.Inputs) == 0:
		return fmt.Errorf("%w: no inputs", ErrMalformed)
	case len(tx.Outputs) == 0:
		return fmt.Errorf("%w: no outputs", ErrMalformed)
	case len(tx.Inputs) > types.MaxTxInputs:
		return fmt.Errorf("%w: %d inputs exceed %d", ErrMalformed, len(tx.Inputs), types.MaxTxInputs)
	case len(tx.Outputs) > types.MaxTxOutputs:
		return fmt.Errorf("%w: %d outputs exceed %d", ErrMalformed, len(tx.Outputs), types.MaxTxOutputs)
	case len(tx.Payload) > types.MaxPayload:
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrMalformed, len(tx.Payload), types.MaxPayload)
	case tx.LockTime < 0:
		return fmt.Errorf("%w: negative lock time %d", ErrMalformed, tx.LockTime)
	}
	seen := make(map[types.OutPoint]struct{}, len(tx.Inputs))
	for i, in := range tx.Inputs {
		if _, dup := seen[in.Prev]; dup {
			return fmt.Errorf("%w: input %d spends %s twice", ErrMalformed, i, in.Prev)
		}
		seen[in.Prev] = struct{}{}
	}
	return nil
}

func (p *Pool) verifySignatures(tx *types.Tx) error {
	msg := tx.SigHash(p.cfg.Magic)
	for i := range tx.Inputs {
		if err := tx.VerifyInput(p.cfg.Magic, i, msg); err != nil {
			return fmt.Errorf("%w: %v (sign the transaction's SigHash for this network)", ErrBadSignature, err)
		}
	}
	return nil
}

// Accept checks tx and adds it to the pool. A refused transaction changes
// nothing; the error wraps one of the Err values of this package.
func (p *Pool) Accept(tx *types.Tx) error {
	if tx == nil {
		return fmt.Errorf("mempool: %w: nil transaction", ErrMalformed)
	}
	enc := tx.Encode()
	id := types.DoubleSHA256(enc)
	if err := p.accept(tx, id, len(enc)); err != nil {
		return fmt.Errorf("mempool: transaction %s: %w", id, err)
	}
	return nil
}

func (p *Pool) accept(tx *types.Tx, id types.Hash, size int) error {
	if err := checkStructure(tx, size); err != nil {
		return err
	}
	p.mu.RLock()
	_, dup := p.entries[id]
	p.mu.RUnlock()
	if dup {
		return ErrDuplicate
	}
	// Signatures need no pool state: they are checked without the lock.
	if err := p.verifySignatures(tx); err != nil {
		return err
	}
	if p.cfg.CheckPayload != nil {
		if err := p.cfg.CheckPayload(tx); err != nil {
			return fmt.Errorf("%w: %v", ErrPayload, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acceptLocked(tx, id, size)
}

func (p *Pool) acceptLocked(tx *types.Tx, id types.Hash, size int) error {
	if _, dup := p.entries[id]; dup {
		return ErrDuplicate
	}
	tip := p.cfg.Source.TipHeight()
	if tx.LockTime > tip+1 {
		return fmt.Errorf("%w: lock time %d, next block is %d: resend after height %d", ErrLockTime, tx.LockTime, tip+1, tx.LockTime-1)
	}
	var in uint64
	parents := map[types.Hash]*entry{}
	for i, txin := range tx.Inputs {
		if other := p.spent[txin.Prev]; other != nil {
			return fmt.Errorf("%w: input %d spends %s, already spent by %s (no replacement: wait until that one confirms or leaves the pool)",
				ErrConflict, i, txin.Prev, other.id)
		}
		var out types.TxOut
		if parent := p.entries[txin.Prev.Tx]; parent != nil {
			if int(txin.Prev.Index) >= len(parent.tx.Outputs) {
				return fmt.Errorf("%w: input %d spends %s, but %s has %d outputs", ErrMissingInput, i, txin.Prev, parent.id, len(parent.tx.Outputs))
			}
			out = parent.tx.Outputs[txin.Prev.Index]
			parents[parent.id] = parent
		} else {
			o, height, coinbase, ok := p.cfg.Source.UTXO(txin.Prev)
			if !ok {
				return fmt.Errorf("%w: input %d spends %s (send its parent transaction first, or refresh the wallet's outputs)",
					ErrMissingInput, i, txin.Prev)
			}
			if coinbase && tip+1-height < p.cfg.CoinbaseMaturity {
				return fmt.Errorf("%w: input %d spends the coinbase output %s of height %d, spendable from height %d (tip %d)",
					ErrImmature, i, txin.Prev, height, height+p.cfg.CoinbaseMaturity, tip)
			}
			out = o
		}
		if got := types.AddressOf(txin.PubKey[:]); got != out.Address {
			return fmt.Errorf("%w: input %d spends %s of address %x with a key of address %x: sign with the owner's key",
				ErrWrongKey, i, txin.Prev, out.Address[:8], got[:8])
		}
		var carry uint64
		in, carry = bits.Add64(in, out.Value, 0)
		if carry != 0 {
			return fmt.Errorf("%w: input values overflow", ErrValue)
		}
	}
	var outSum uint64
	for i, o := range tx.Outputs {
		var carry uint64
		outSum, carry = bits.Add64(outSum, o.Value, 0)
		if carry != 0 {
			return fmt.Errorf("%w: output values overflow at output %d", ErrValue, i)
		}
	}
	if outSum > in {
		return fmt.Errorf("%w: outputs %d exceed inputs %d", ErrValue, outSum, in)
	}
	fee := in - outSum
	if lessRate(fee, size, p.cfg.MinFeeRate, 1) {
		return fmt.Errorf("%w: fee %d for %d bytes is below the minimum %d per byte: raise the fee to at least %d",
			ErrFeeTooLow, fee, size, p.cfg.MinFeeRate, p.cfg.MinFeeRate*uint64(size))
	}
	e := &entry{tx: tx, id: id, size: size, fee: fee, parents: parents}
	anc := ancestors(e)
	if len(anc)+1 > MaxAncestors {
		return fmt.Errorf("%w: %d unconfirmed ancestors, limit %d: wait for confirmations", ErrChainTooLong, len(anc), MaxAncestors-1)
	}
	for _, a := range anc {
		if a.descCount+1 > MaxDescendants {
			return fmt.Errorf("%w: ancestor %s already has %d descendants, limit %d: wait for confirmations",
				ErrChainTooLong, a.id, a.descCount-1, MaxDescendants-1)
		}
	}
	if err := p.makeRoom(e, anc); err != nil {
		return err
	}
	p.insert(e, anc)
	return nil
}

// lessRate reports whether feeA/sizeA < feeB/sizeB, exactly.
func lessRate(feeA uint64, sizeA int, feeB uint64, sizeB int) bool {
	ah, al := bits.Mul64(feeA, uint64(sizeB))
	bh, bl := bits.Mul64(feeB, uint64(sizeA))
	return ah < bh || (ah == bh && al < bl)
}

// ancestors returns e's in-pool ancestors, parents before children.
func ancestors(e *entry) []*entry {
	var out []*entry
	seen := map[types.Hash]bool{}
	var visit func(x *entry)
	visit = func(x *entry) {
		for _, par := range sortedEntries(x.parents) {
			if !seen[par.id] {
				seen[par.id] = true
				visit(par)
				out = append(out, par)
			}
		}
	}
	visit(e)
	return out
}

// descendants returns e and its in-pool descendants.
func descendants(e *entry, into map[types.Hash]*entry) {
	if _, ok := into[e.id]; ok {
		return
	}
	into[e.id] = e
	for _, c := range e.children {
		descendants(c, into)
	}
}

func sortedEntries(m map[types.Hash]*entry) []*entry {
	out := make([]*entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int {
		if a.seq != b.seq {
			if a.seq < b.seq {
				return -1
			}
			return 1
		}
		return compareHash(a.id, b.id)
	})
	return out
}

func compareHash(a, b types.Hash) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// evictionScore is Bitcoin Core's: the better of the entry's own fee rate
// and that of the entry with its descendants, so a parent paid for by its
// child (CPFP) is not evicted first.
func evictionScore(e *entry) (fee uint64, size int) {
	if lessRate(e.fee, e.size, e.descFee, e.descSize) {
		return e.descFee, e.descSize
	}
	return e.fee, e.size
}

// makeRoom evicts the lowest-scoring packages until e fits, if every one of
// them pays a lower fee rate than e. Nothing changes when it fails.
func (p *Pool) makeRoom(e *entry, anc []*entry) error {
	if e.size > p.cfg.MaxBytes {
		return fmt.Errorf("%w: %d bytes exceed the pool's limit of %d", ErrPoolFull, e.size, p.cfg.MaxBytes)
	}
	if len(p.entries)+1 <= p.cfg.MaxTxs && p.bytes+e.size <= p.cfg.MaxBytes {
		return nil
	}
	protected := map[types.Hash]bool{}
	for _, a := range anc {
		protected[a.id] = true
	}
	evict := map[types.Hash]*entry{}
	count, size := len(p.entries), p.bytes
	for count+1 > p.cfg.MaxTxs || size+e.size > p.cfg.MaxBytes {
		var worst *entry
		var wf uint64
		var ws int
		for _, c := range p.entries {
			if protected[c.id] || evict[c.id] != nil {
				continue
			}
			f, s := evictionScore(c)
			if worst == nil || lessRate(f, s, wf, ws) || (!lessRate(wf, ws, f, s) && c.seq > worst.seq) {
				worst, wf, ws = c, f, s
			}
		}
		if worst == nil || !lessRate(wf, ws, e.fee, e.size) {
			return fmt.Errorf("%w (%d transactions, %d bytes): fee rate %d/%d bytes does not beat the lowest in the pool; raise the fee",
				ErrPoolFull, len(p.entries), p.bytes, e.fee, e.size)
		}
		pkg := map[types.Hash]*entry{}
		descendants(worst, pkg)
		for id, d := range pkg {
			if protected[id] {
				// An ancestor of the new transaction descends from the
				// victim: the new transaction would lose its input.
				return fmt.Errorf("%w: making room would evict an ancestor of the transaction; raise the fee", ErrPoolFull)
			}
			if evict[id] == nil {
				evict[id] = d
				count--
				size -= d.size
			}
		}
	}
	p.removeSet(evict)
	return nil
}

func (p *Pool) insert(e *entry, anc []*entry) {
	p.seq++
	e.seq = p.seq
	e.added = p.cfg.Now()
	e.children = map[types.Hash]*entry{}
	e.descFee, e.descSize, e.descCount = e.fee, e.size, 1
	for _, par := range e.parents {
		par.children[e.id] = e
	}
	for _, a := range anc {
		a.descFee += e.fee
		a.descSize += e.size
		a.descCount++
	}
	for _, in := range e.tx.Inputs {
		p.spent[in.Prev] = e
	}
	p.entries[e.id] = e
	p.bytes += e.size
}

// removeSet removes a set of entries; survivors' descendant totals and
// links are updated.
func (p *Pool) removeSet(set map[types.Hash]*entry) {
	for _, e := range set {
		for _, a := range ancestors(e) {
			if set[a.id] == nil {
				a.descFee -= e.fee
				a.descSize -= e.size
				a.descCount--
			}
		}
	}
	for _, e := range set {
		for _, par := range e.parents {
			delete(par.children, e.id)
		}
		for _, c := range e.children {
			delete(c.parents, e.id)
		}
		for _, in := range e.tx.Inputs {
			if p.spent[in.Prev] == e {
				delete(p.spent, in.Prev)
			}
		}
		delete(p.entries, e.id)
		p.bytes -= e.size
	}
}

// BlockConnected removes the block's transactions from the pool, and every
// pool transaction that spends an output the block spent (a double spend
// that lost) together with its descendants.
func (p *Pool) BlockConnected(b *types.Block) {
	p.mu.Lock()
	defer p.mu.Unlock()
	confirmed := map[types.Hash]*entry{}
	conflicts := map[types.Hash]*entry{}
	for _, tx := range b.Txs {
		if e := p.entries[tx.ID()]; e != nil {
			confirmed[e.id] = e
		}
	}
	for _, tx := range b.Txs {
		for _, in := range tx.Inputs {
			if e := p.spent[in.Prev]; e != nil && confirmed[e.id] == nil {
				descendants(e, conflicts)
			}
		}
	}
	// Confirmed transactions leave one by one so that their descendants
	// stay; their ancestors are confirmed too in a valid block.
	for _, e := range sortedEntries(confirmed) {
		if conflicts[e.id] == nil {
			p.removeSet(map[types.Hash]*entry{e.id: e})
		}
	}
	p.removeSet(conflicts)
}

// BlockDisconnected returns the block's non-coinbase transactions to the
// pool after a reorg, as far as they are still valid, ahead of the pool's
// own transactions, which are then re-checked against the new tip. Call
// it after the chain has removed the block.
func (p *Pool) BlockDisconnected(b *types.Block) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := sortedEntries(p.entries)
	p.entries = map[types.Hash]*entry{}
	p.spent = map[types.OutPoint]*entry{}
	p.bytes = 0
	for _, tx := range b.Txs {
		if tx.IsCoinbase() {
			continue
		}
		enc := tx.Encode()
		size := len(enc)
		if checkStructure(tx, size) != nil || p.verifySignatures(tx) != nil {
			continue
		}
		if p.cfg.CheckPayload != nil && p.cfg.CheckPayload(tx) != nil {
			continue
		}
		_ = p.acceptLocked(tx, types.DoubleSHA256(enc), size) // best effort
	}
	for _, e := range old {
		// Signatures and payload were checked when e entered the pool.
		_ = p.acceptLocked(e.tx, e.id, e.size) // best effort
	}
}

// Has reports whether the pool holds the transaction with ID id.
func (p *Pool) Has(id types.Hash) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.entries[id] != nil
}

// Get returns the pool transaction with ID id. It must not be modified.
func (p *Pool) Get(id types.Hash) (*types.Tx, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e := p.entries[id]; e != nil {
		return e.tx, true
	}
	return nil, false
}

// Len is the number of transactions in the pool.
func (p *Pool) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.entries)
}

// Bytes is the total encoded size of the pool's transactions.
func (p *Pool) Bytes() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.bytes
}

// Txs returns the pool's transactions in arrival order (parents before
// children). They must not be modified.
func (p *Pool) Txs() []*types.Tx {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*types.Tx, 0, len(p.entries))
	for _, e := range sortedEntries(p.entries) {
		out = append(out, e.tx)
	}
	return out
}

// SpentBy returns the ID of the pool transaction spending op, if any.
func (p *Pool) SpentBy(op types.OutPoint) (types.Hash, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e := p.spent[op]; e != nil {
		return e.id, true
	}
	return types.Hash{}, false
}

// Expire removes the transactions that entered the pool more than maxAge
// ago (by Config.Now), with their descendants, and returns how many left.
func (p *Pool) Expire(maxAge time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := p.cfg.Now().Add(-maxAge)
	set := map[types.Hash]*entry{}
	for _, e := range p.entries {
		if e.added.Before(cutoff) {
			descendants(e, set)
		}
	}
	p.removeSet(set)
	return len(set)
}

// candidate is a transaction with its not yet selected ancestors.
type candidate struct {
	e    *entry
	fee  uint64
	size int
	gen  int
}

type candHeap []*candidate

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if lessRate(b.fee, b.size, a.fee, a.size) {
		return true
	}
	if lessRate(a.fee, a.size, b.fee, b.size) {
		return false
	}
	return a.e.seq < b.e.seq
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(*candidate)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Select returns a block template of at most maxBytes bytes of encoded
// transactions (and at most types.MaxBlockTxs-1, leaving room for the
// coinbase): packages of a transaction with its unselected ancestors are
// taken by highest package fee rate first, the way Bitcoin Core's miner
// does, and every transaction comes after its ancestors.
func (p *Pool) Select(maxBytes int) []*types.Tx {
	p.mu.RLock()
	defer p.mu.RUnlock()
	selected := map[types.Hash]bool{}
	failed := map[types.Hash]bool{}
	gen := map[types.Hash]int{}
	pending := func(e *entry) []*entry {
		var out []*entry
		for _, a := range ancestors(e) {
			if !selected[a.id] {
				out = append(out, a)
			}
		}
		return out
	}
	mk := func(e *entry) *candidate {
		c := &candidate{e: e, fee: e.fee, size: e.size, gen: gen[e.id]}
		for _, a := range pending(e) {
			c.fee += a.fee
			c.size += a.size
		}
		return c
	}
	h := make(candHeap, 0, len(p.entries))
	for _, e := range p.entries {
		h = append(h, mk(e))
	}
	heap.Init(&h)
	var out []*types.Tx
	used := 0
	for h.Len() > 0 && len(out) < types.MaxBlockTxs-1 {
		c := heap.Pop(&h).(*candidate)
		if selected[c.e.id] || failed[c.e.id] || c.gen != gen[c.e.id] {
			continue
		}
		pkg := append(pending(c.e), c.e)
		if used+c.size > maxBytes || len(out)+len(pkg) > types.MaxBlockTxs-1 {
			failed[c.e.id] = true
			continue
		}
		used += c.size
		touched := map[types.Hash]*entry{}
		for _, x := range pkg {
			selected[x.id] = true
			out = append(out, x.tx)
			descendants(x, touched)
		}
		for _, d := range sortedEntries(touched) {
			if !selected[d.id] && !failed[d.id] {
				gen[d.id]++
				heap.Push(&h, mk(d))
			}
		}
	}
	return out
}
