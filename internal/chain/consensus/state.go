package consensus

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/types"
)

// Coin is an unspent output.
type Coin struct {
	Value    uint64
	Address  types.Address
	Height   int64 // height of the block that created it
	Coinbase bool  // created by a coinbase (subject to CoinbaseMaturity)
}

// ContractState is a contribution contract's place in its life cycle.
type ContractState uint8

// Contract states (see the package documentation for the transitions).
const (
	CCSubmitted ContractState = iota + 1
	CCApproved
	CCNotApproved
	CCQueued
	CCExecuting
	CCCancelled
	CCExecuted
)

func (s ContractState) String() string {
	switch s {
	case CCSubmitted:
		return "submitted"
	case CCApproved:
		return "approved"
	case CCNotApproved:
		return "not-approved"
	case CCQueued:
		return "queued"
	case CCExecuting:
		return "executing"
	case CCCancelled:
		return "cancelled"
	case CCExecuted:
		return "executed"
	}
	return fmt.Sprintf("ContractState(%d)", uint8(s))
}

// terminal reports whether no further transition happens.
func (s ContractState) terminal() bool {
	return s == CCNotApproved || s == CCCancelled || s == CCExecuted
}

// Contract is a contribution contract with its tallies.
type Contract struct {
	ID            types.Hash // the proposing transaction's ID; the deposit is output 0
	DepositValue  uint64
	Reward        uint64 // base units per block
	Duration      uint64 // blocks of execution
	Beneficiaries []Beneficiary
	Submitted     int64 // height of the proposal
	VotingEnd     int64 // last height whose votes count
	Yes, No       uint64
	State         ContractState
	Decided       int64 // height at which the vote was decided (VotingEnd+1), 0 before
	Start         int64 // first height paid (scheduled start while approved)
	Ended         int64 // height of the transition to a terminal state
}

// Deposit is the contract's frozen deposit output.
func (c *Contract) Deposit() types.OutPoint { return types.OutPoint{Tx: c.ID, Index: 0} }

// VoteRecord is a counted vote: the vote coin's contract, choice and weight.
type VoteRecord struct {
	Contract types.Hash
	Yes      bool
	Weight   uint64
}

// Record buckets: the state is a set of (bucket, key, value) records; the
// store mirrors them one to one and Digest hashes them.
const (
	BucketMeta      = "meta" // height, tip, cap factor, issued
	BucketUTXO      = "utxo" // outpoint (36 bytes) -> coin
	BucketLicences  = "lic"  // miner key -> empty
	BucketRing      = "ring" // window slot (8 bytes BE) -> miner key
	BucketCounts    = "cnt"  // miner key -> blocks in the window (4 bytes BE)
	BucketContracts = "cc"   // contract ID -> contract
	BucketVotes     = "vote" // vote coin outpoint -> vote record
	BucketDeposits  = "dep"  // deposit outpoint -> contract ID
	bucketCount     = 8
	metaHeight      = "height"
	metaTip         = "tip"
	metaCapFactor   = "capfactor"
	metaIssued      = "issued"
)

// Buckets lists the record buckets in digest order.
var Buckets = []string{BucketMeta, BucketUTXO, BucketLicences, BucketRing, BucketCounts, BucketContracts, BucketVotes, BucketDeposits}

// State is the ledger state after a block: the UTXO set and the side state
// of licences, cap and contracts. It is not safe for concurrent use.
type State struct {
	p         *chaincfg.Params
	height    int64
	tip       types.Hash
	capFactor uint8
	issued    uint64
	utxo      map[types.OutPoint]Coin
	licences  map[[32]byte]struct{}
	ring      map[int64][32]byte
	counts    map[[32]byte]uint32
	contracts map[types.Hash]*Contract
	votes     map[types.OutPoint]VoteRecord
	deposits  map[types.OutPoint]types.Hash

	j *Undo // journal of the block being connected, nil otherwise

	// SigWorkers is the number of goroutines verifying a block's
	// signatures; 0 means GOMAXPROCS.
	SigWorkers int
	// Sigs, when set, holds transactions whose signatures verified before
	// (in the mempool); their signatures are not verified again.
	Sigs *SigCache
}

// NewState returns the empty state before genesis (height -1).
func NewState(p *chaincfg.Params) *State {
	return &State{
		p:         p,
		height:    -1,
		utxo:      make(map[types.OutPoint]Coin),
		licences:  make(map[[32]byte]struct{}),
		ring:      make(map[int64][32]byte),
		counts:    make(map[[32]byte]uint32),
		contracts: make(map[types.Hash]*Contract),
		votes:     make(map[types.OutPoint]VoteRecord),
		deposits:  make(map[types.OutPoint]types.Hash),
	}
}

// Height is the height of the last connected block (-1 before genesis).
func (s *State) Height() int64 { return s.height }

// Tip is the hash of the last connected block.
func (s *State) Tip() types.Hash { return s.tip }

// CapFactor is the cap factor, 0 when the cap is disabled.
func (s *State) CapFactor() uint8 { return s.capFactor }

// Issued is the total issued so far: subsidies claimed plus contract payments.
func (s *State) Issued() uint64 { return s.issued }

// Coin returns the unspent output op.
func (s *State) Coin(op types.OutPoint) (Coin, bool) {
	c, ok := s.utxo[op]
	return c, ok
}

// UTXOCount is the size of the UTXO set.
func (s *State) UTXOCount() int { return len(s.utxo) }

// Licensed reports whether key holds a mining licence.
func (s *State) Licensed(key [32]byte) bool {
	_, ok := s.licences[key]
	return ok
}

// Licences returns the licensed keys in ascending order.
func (s *State) Licences() [][32]byte {
	out := make([][32]byte, 0, len(s.licences))
	for k := range s.licences {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// LicenceCount is the number of licensed keys.
func (s *State) LicenceCount() int { return len(s.licences) }

// WindowCount is the number of blocks mined by key among the last
// CapWindow blocks (the window ending at the tip).
func (s *State) WindowCount(key [32]byte) uint32 { return s.counts[key] }

// Contract returns a copy of contract id.
func (s *State) Contract(id types.Hash) (Contract, bool) {
	c, ok := s.contracts[id]
	if !ok {
		return Contract{}, false
	}
	return cloneContract(c), true
}

// Contracts returns copies of all contracts ordered by ID.
func (s *State) Contracts() []Contract {
	out := make([]Contract, 0, len(s.contracts))
	for _, c := range s.contracts {
		out = append(out, cloneContract(c))
	}
	slices.SortFunc(out, func(a, b Contract) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

func cloneContract(c *Contract) Contract {
	x := *c
	x.Beneficiaries = slices.Clone(c.Beneficiaries)
	return x
}

// ---- records -------------------------------------------------------------

func opKey(op types.OutPoint) []byte {
	k := make([]byte, 36)
	copy(k, op.Tx[:])
	binary.BigEndian.PutUint32(k[32:], op.Index)
	return k
}

func parseOpKey(k []byte) (types.OutPoint, error) {
	var op types.OutPoint
	if len(k) != 36 {
		return op, fmt.Errorf("outpoint key of %d bytes", len(k))
	}
	copy(op.Tx[:], k)
	op.Index = binary.BigEndian.Uint32(k[32:])
	return op, nil
}

func slotKey(slot int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(slot)) }

func encodeCoin(c Coin) []byte {
	b := make([]byte, 0, 52)
	b = binary.AppendUvarint(b, c.Value)
	b = append(b, c.Address[:]...)
	b = binary.AppendUvarint(b, uint64(c.Height))
	if c.Coinbase {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeCoin(b []byte) (Coin, error) {
	var c Coin
	r := types.NewReader(b, ErrPayload)
	c.Value = r.Uvarint("coin value", math.MaxUint64)
	copy(c.Address[:], r.Bytes(32, "coin address"))
	c.Height = int64(r.Uvarint("coin height", math.MaxUint64))
	if f := r.Bytes(1, "coin flag"); f != nil {
		c.Coinbase = f[0] == 1
	}
	if r.Err() == nil && len(r.Rest()) > 0 {
		r.Fail("trailing bytes")
	}
	return c, r.Err()
}

func encodeContract(c *Contract) []byte {
	b := append([]byte(nil), c.ID[:]...)
	for _, v := range []uint64{c.DepositValue, c.Reward, c.Duration, uint64(c.Submitted), uint64(c.VotingEnd),
		c.Yes, c.No, uint64(c.State), uint64(c.Decided), uint64(c.Start), uint64(c.Ended), uint64(len(c.Beneficiaries))} {
		b = binary.AppendUvarint(b, v)
	}
	for _, be := range c.Beneficiaries {
		b = append(b, be.Address[:]...)
		b = binary.AppendUvarint(b, be.Amount)
	}
	return b
}

func decodeContract(b []byte) (*Contract, error) {
	r := types.NewReader(b, ErrPayload)
	c := &Contract{}
	copy(c.ID[:], r.Bytes(32, "contract id"))
	var v [12]uint64
	for i := range v {
		v[i] = r.Uvarint("contract field", math.MaxUint64)
	}
	c.DepositValue, c.Reward, c.Duration = v[0], v[1], v[2]
	c.Submitted, c.VotingEnd = int64(v[3]), int64(v[4])
	c.Yes, c.No, c.State = v[5], v[6], ContractState(v[7])
	c.Decided, c.Start, c.Ended = int64(v[8]), int64(v[9]), int64(v[10])
	if v[11] > MaxBeneficiaries {
		r.Fail("%d beneficiaries", v[11])
	}
	for i := 0; i < int(v[11]) && r.Err() == nil; i++ {
		var be Beneficiary
		copy(be.Address[:], r.Bytes(32, "beneficiary"))
		be.Amount = r.Uvarint("amount", math.MaxUint64)
		c.Beneficiaries = append(c.Beneficiaries, be)
	}
	if r.Err() == nil && len(r.Rest()) > 0 {
		r.Fail("trailing bytes")
	}
	return c, r.Err()
}

func encodeVote(v VoteRecord) []byte {
	b := append([]byte(nil), v.Contract[:]...)
	if v.Yes {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return binary.AppendUvarint(b, v.Weight)
}

func decodeVote(b []byte) (VoteRecord, error) {
	var v VoteRecord
	r := types.NewReader(b, ErrPayload)
	copy(v.Contract[:], r.Bytes(32, "vote contract"))
	if y := r.Bytes(1, "vote choice"); y != nil {
		v.Yes = y[0] == 1
	}
	v.Weight = r.Uvarint("vote weight", math.MaxUint64)
	if r.Err() == nil && len(r.Rest()) > 0 {
		r.Fail("trailing bytes")
	}
	return v, r.Err()
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// get returns the current value of a record, nil when absent.
func (s *State) get(bucket string, key []byte) []byte {
	switch bucket {
	case BucketMeta:
		switch string(key) {
		case metaHeight:
			return u64(uint64(s.height))
		case metaTip:
			return append([]byte(nil), s.tip[:]...)
		case metaCapFactor:
			return []byte{s.capFactor}
		case metaIssued:
			return u64(s.issued)
		}
	case BucketUTXO:
		op, _ := parseOpKey(key)
		if c, ok := s.utxo[op]; ok {
			return encodeCoin(c)
		}
	case BucketLicences:
		if _, ok := s.licences[[32]byte(key)]; ok {
			return []byte{}
		}
	case BucketRing:
		if m, ok := s.ring[int64(binary.BigEndian.Uint64(key))]; ok {
			return append([]byte(nil), m[:]...)
		}
	case BucketCounts:
		if n, ok := s.counts[[32]byte(key)]; ok {
			return binary.BigEndian.AppendUint32(nil, n)
		}
	case BucketContracts:
		if c, ok := s.contracts[types.Hash(key)]; ok {
			return encodeContract(c)
		}
	case BucketVotes:
		op, _ := parseOpKey(key)
		if v, ok := s.votes[op]; ok {
			return encodeVote(v)
		}
	case BucketDeposits:
		op, _ := parseOpKey(key)
		if id, ok := s.deposits[op]; ok {
			return append([]byte(nil), id[:]...)
		}
	}
	return nil
}

// put sets a record from its encoding; val nil deletes it.
func (s *State) put(bucket string, key, val []byte) error {
	bad := func(err error) error { return fmt.Errorf("state record %s/%x: %w", bucket, key, err) }
	fixed := func(n int) error {
		if len(key) != n {
			return bad(fmt.Errorf("key of %d bytes, want %d", len(key), n))
		}
		return nil
	}
	switch bucket {
	case BucketMeta:
		if val == nil {
			return bad(fmt.Errorf("meta records cannot be deleted"))
		}
		switch string(key) {
		case metaHeight:
			if len(val) != 8 {
				return bad(fmt.Errorf("bad height"))
			}
			s.height = int64(binary.BigEndian.Uint64(val))
		case metaTip:
			if len(val) != 32 {
				return bad(fmt.Errorf("bad tip"))
			}
			s.tip = types.Hash(val)
		case metaCapFactor:
			if len(val) != 1 {
				return bad(fmt.Errorf("bad cap factor"))
			}
			s.capFactor = val[0]
		case metaIssued:
			if len(val) != 8 {
				return bad(fmt.Errorf("bad issued"))
			}
			s.issued = binary.BigEndian.Uint64(val)
		default:
			return bad(fmt.Errorf("unknown meta key"))
		}
	case BucketUTXO:
		op, err := parseOpKey(key)
		if err != nil {
			return bad(err)
		}
		if val == nil {
			delete(s.utxo, op)
			return nil
		}
		c, err := decodeCoin(val)
		if err != nil {
			return bad(err)
		}
		s.utxo[op] = c
	case BucketLicences:
		if err := fixed(32); err != nil {
			return err
		}
		if val == nil {
			delete(s.licences, [32]byte(key))
		} else {
			s.licences[[32]byte(key)] = struct{}{}
		}
	case BucketRing:
		if err := fixed(8); err != nil {
			return err
		}
		slot := int64(binary.BigEndian.Uint64(key))
		if val == nil {
			delete(s.ring, slot)
		} else if len(val) != 32 {
			return bad(fmt.Errorf("bad miner"))
		} else {
			s.ring[slot] = [32]byte(val)
		}
	case BucketCounts:
		if err := fixed(32); err != nil {
			return err
		}
		if val == nil {
			delete(s.counts, [32]byte(key))
		} else if len(val) != 4 {
			return bad(fmt.Errorf("bad count"))
		} else {
			s.counts[[32]byte(key)] = binary.BigEndian.Uint32(val)
		}
	case BucketContracts:
		if err := fixed(32); err != nil {
			return err
		}
		if val == nil {
			delete(s.contracts, types.Hash(key))
			return nil
		}
		c, err := decodeContract(val)
		if err != nil {
			return bad(err)
		}
		s.contracts[types.Hash(key)] = c
	case BucketVotes:
		op, err := parseOpKey(key)
		if err != nil {
			return bad(err)
		}
		if val == nil {
			delete(s.votes, op)
			return nil
		}
		v, err := decodeVote(val)
		if err != nil {
			return bad(err)
		}
		s.votes[op] = v
	case BucketDeposits:
		op, err := parseOpKey(key)
		if err != nil {
			return bad(err)
		}
		if val == nil {
			delete(s.deposits, op)
		} else if len(val) != 32 {
			return bad(fmt.Errorf("bad contract id"))
		} else {
			s.deposits[op] = types.Hash(val)
		}
	default:
		return bad(fmt.Errorf("unknown bucket"))
	}
	return nil
}

// Records calls fn for every record of the state, buckets in Buckets order
// and keys ascending.
func (s *State) Records(fn func(bucket string, key, val []byte)) {
	for _, b := range Buckets {
		var keys [][]byte
		switch b {
		case BucketMeta:
			keys = [][]byte{[]byte(metaCapFactor), []byte(metaHeight), []byte(metaIssued), []byte(metaTip)}
		case BucketUTXO:
			for op := range s.utxo {
				keys = append(keys, opKey(op))
			}
		case BucketLicences:
			for k := range s.licences {
				keys = append(keys, append([]byte(nil), k[:]...))
			}
		case BucketRing:
			for slot := range s.ring {
				keys = append(keys, slotKey(slot))
			}
		case BucketCounts:
			for k := range s.counts {
				keys = append(keys, append([]byte(nil), k[:]...))
			}
		case BucketContracts:
			for k := range s.contracts {
				keys = append(keys, append([]byte(nil), k[:]...))
			}
		case BucketVotes:
			for op := range s.votes {
				keys = append(keys, opKey(op))
			}
		case BucketDeposits:
			for op := range s.deposits {
				keys = append(keys, opKey(op))
			}
		}
		sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
		for _, k := range keys {
			fn(b, k, s.get(b, k))
		}
	}
}

// Digest is the SHA-256 of all records in Records order: two states are
// equal exactly when their digests are.
func (s *State) Digest() types.Hash {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	s.Records(func(bucket string, key, val []byte) {
		for _, f := range [][]byte{[]byte(bucket), key, val} {
			h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
			h.Write(f)
		}
	})
	return types.Hash(h.Sum(nil))
}

// LoadState rebuilds a state from its records (as written by Records and
// ChangedRecords).
func LoadState(p *chaincfg.Params, records func(fn func(bucket string, key, val []byte) error) error) (*State, error) {
	s := NewState(p)
	if err := records(s.put); err != nil {
		return nil, err
	}
	return s, nil
}

// ---- journal -------------------------------------------------------------

// Undo is what disconnecting a block needs: the previous value of every
// record connecting it changed, in the order they changed.
type Undo struct {
	Changes []Change
}

// Change is one record's value before a change (Prev nil: it was absent).
type Change struct {
	Bucket string
	Key    []byte
	Prev   []byte
}

// touch journals the current value of a record before it changes.
func (s *State) touch(bucket string, key []byte) {
	if s.j != nil {
		s.j.Changes = append(s.j.Changes, Change{Bucket: bucket, Key: key, Prev: s.get(bucket, key)})
	}
}

// rollback restores the records of u in reverse order.
func (s *State) rollback(u *Undo) error {
	for i := len(u.Changes) - 1; i >= 0; i-- {
		c := u.Changes[i]
		if err := s.put(c.Bucket, c.Key, c.Prev); err != nil {
			return err
		}
	}
	return nil
}

// Disconnect undoes the tip block with its undo record.
func (s *State) Disconnect(u *Undo) error {
	if s.j != nil {
		return fmt.Errorf("disconnect during connect")
	}
	return s.rollback(u)
}

// ChangedRecords calls fn with the current value (nil: deleted) of every
// record u touched, each once: after connecting or disconnecting the block
// of u these are the writes that bring a stored copy up to date.
func (s *State) ChangedRecords(u *Undo, fn func(bucket string, key, val []byte) error) error {
	seen := make(map[string]struct{}, len(u.Changes))
	for _, c := range u.Changes {
		id := c.Bucket + "/" + string(c.Key)
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		if err := fn(c.Bucket, c.Key, s.get(c.Bucket, c.Key)); err != nil {
			return err
		}
	}
	return nil
}

// Encode serializes the undo record.
func (u *Undo) Encode() []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(u.Changes)))
	for _, c := range u.Changes {
		b = binary.AppendUvarint(b, uint64(slices.Index(Buckets, c.Bucket)))
		b = binary.AppendUvarint(b, uint64(len(c.Key)))
		b = append(b, c.Key...)
		if c.Prev == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(c.Prev)))
		b = append(b, c.Prev...)
	}
	return b
}

// DecodeUndo decodes an undo record.
func DecodeUndo(b []byte) (*Undo, error) {
	r := types.NewReader(b, ErrPayload)
	n := r.Uvarint("change count", math.MaxUint64)
	if r.Err() == nil && n > uint64(len(b)) {
		r.Fail("change count %d", n)
	}
	u := &Undo{}
	for i := 0; i < int(n) && r.Err() == nil; i++ {
		var c Change
		bi := r.Uvarint("bucket", math.MaxUint64)
		if bi >= bucketCount {
			r.Fail("bucket %d", bi)
			break
		}
		c.Bucket = Buckets[bi]
		kl := r.Uvarint("key length", math.MaxUint64)
		if kl > 64 {
			r.Fail("key length %d", kl)
			break
		}
		c.Key = append([]byte{}, r.Bytes(int(kl), "key")...)
		if f := r.Bytes(1, "presence"); f != nil && f[0] == 1 {
			vl := r.Uvarint("value length", math.MaxUint64)
			if vl > uint64(len(r.Rest())) {
				r.Fail("value length %d", vl)
				break
			}
			c.Prev = append([]byte{}, r.Bytes(int(vl), "value")...)
		} else if f != nil && f[0] != 0 {
			r.Fail("presence %d", f[0])
		}
		u.Changes = append(u.Changes, c)
	}
	if r.Err() == nil && len(r.Rest()) > 0 {
		r.Fail("trailing bytes")
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("undo record: %w", r.Err())
	}
	return u, nil
}

// ---- journaled mutations -------------------------------------------------

func (s *State) addCoin(op types.OutPoint, c Coin) {
	if s.j != nil {
		s.j.Changes = append(s.j.Changes, Change{Bucket: BucketUTXO, Key: opKey(op)})
	}
	s.utxo[op] = c
}

func (s *State) spendCoin(op types.OutPoint, c Coin) {
	if s.j != nil {
		s.j.Changes = append(s.j.Changes, Change{Bucket: BucketUTXO, Key: opKey(op), Prev: encodeCoin(c)})
	}
	delete(s.utxo, op)
}

func (s *State) setLicence(key [32]byte, on bool) {
	s.touch(BucketLicences, append([]byte(nil), key[:]...))
	if on {
		s.licences[key] = struct{}{}
	} else {
		delete(s.licences, key)
	}
}

func (s *State) setCapFactor(f uint8) {
	s.touch(BucketMeta, []byte(metaCapFactor))
	s.capFactor = f
}

func (s *State) setIssued(v uint64) {
	s.touch(BucketMeta, []byte(metaIssued))
	s.issued = v
}

func (s *State) setTip(height int64, tip types.Hash) {
	s.touch(BucketMeta, []byte(metaHeight))
	s.touch(BucketMeta, []byte(metaTip))
	s.height, s.tip = height, tip
}

// recordMiner moves the cap window to end at height, mined by miner.
func (s *State) recordMiner(height int64, miner [32]byte) {
	w := s.p.CapWindow
	if w <= 0 {
		return
	}
	slot := height % w
	if old, ok := s.ring[slot]; ok {
		s.setCount(old, s.counts[old]-1)
	}
	s.touch(BucketRing, slotKey(slot))
	s.ring[slot] = miner
	s.setCount(miner, s.counts[miner]+1)
}

func (s *State) setCount(key [32]byte, n uint32) {
	s.touch(BucketCounts, append([]byte(nil), key[:]...))
	if n == 0 {
		delete(s.counts, key)
	} else {
		s.counts[key] = n
	}
}

// contractForWrite journals contract id and returns it for mutation.
func (s *State) contractForWrite(id types.Hash) *Contract {
	s.touch(BucketContracts, append([]byte(nil), id[:]...))
	return s.contracts[id]
}

func (s *State) addContract(c *Contract) {
	s.touch(BucketContracts, append([]byte(nil), c.ID[:]...))
	s.contracts[c.ID] = c
}

func (s *State) setVote(op types.OutPoint, v *VoteRecord) {
	s.touch(BucketVotes, opKey(op))
	if v == nil {
		delete(s.votes, op)
	} else {
		s.votes[op] = *v
	}
}

func (s *State) setDeposit(op types.OutPoint, id *types.Hash) {
	s.touch(BucketDeposits, opKey(op))
	if id == nil {
		delete(s.deposits, op)
	} else {
		s.deposits[op] = *id
	}
}
