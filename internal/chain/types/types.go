// Package types defines the IoP token chain's ledger records — block
// headers, transactions and blocks — with their one canonical binary
// encoding, identifiers, Merkle commitments, signature hashes and
// addresses.
//
// # Model
//
// The ledger is a UTXO set: a transaction spends earlier outputs and creates
// new ones. UTXO, not accounts, because the chain's governance is about
// particular coins: a contribution contract freezes a deposit output and a
// vote is the weight of a vote output, and spending exactly that output
// cancels the contract or withdraws the vote. With outputs that effect is
// local and exact (no balance arithmetic to undo), transactions validate
// independently and in parallel, and it is the model of the 2017 IoP chain.
//
// Keys are the Ed25519 identity keys of package identity, so a profile can
// hold and pay tokens: an Address is the owner's network ID (SHA-256 of the
// public key). An input names the public key that owns the spent output and
// carries its signature.
//
// # Encoding
//
// Integers are little-endian fixed width in headers and unsigned varints
// (encoding/binary Uvarint, minimal form only) for counts and lengths
// elsewhere. Every decoder rejects trailing bytes, non-minimal varints and
// anything beyond the limits below, so one value has exactly one encoding
// and identifiers are well defined.
//
// # Identifiers and signatures
//
// Hashes are double SHA-256. A header's hash is that of its 88-byte
// encoding; a transaction's ID is that of its full encoding (Ed25519
// signatures are deterministic and verified strictly, so they are not
// malleable). Signatures cover SigHash: the transaction encoded with every
// signature zeroed, prefixed by the network magic, so a transaction signed
// for one network is invalid on another; inputs use the Ed25519ctx domain
// DomainTx and the coinbase's miner signature DomainCoinbase.
package types

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Limits of the encoding.
const (
	HeaderSize    = 88
	MaxBlockSize  = 4 << 20 // bytes of an encoded block
	MaxBlockTxs   = 20000   // transactions per block
	MaxTxSize     = 100_000 // bytes of an encoded transaction
	MaxTxInputs   = 2000
	MaxTxOutputs  = 2000
	MaxPayload    = 1024 // bytes of a transaction's typed payload
	MaxCoinbaseEx = 64   // bytes of a coinbase's extra data
)

// Hash is a double SHA-256 digest. Its text form is plain lowercase hex of
// the 32 bytes in order.
type Hash [32]byte

// DoubleSHA256 hashes b twice with SHA-256.
func DoubleSHA256(b []byte) Hash {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeroes.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes h as hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes 64 hex characters.
func (h *Hash) UnmarshalText(b []byte) error {
	x, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = x
	return nil
}

// ParseHash parses 64 hex characters.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("hash %q: want 64 hex characters", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	return h, nil
}

// Header is a block header.
type Header struct {
	Version uint32
	Prev    Hash   // hash of the previous block's header
	Merkle  Hash   // Merkle root of the block's transaction IDs
	Time    int64  // seconds since the Unix epoch
	Bits    uint32 // compact proof-of-work target
	Nonce   uint64
}

// Encode returns the 88-byte encoding.
func (h *Header) Encode() []byte {
	b := make([]byte, 0, HeaderSize)
	b = binary.LittleEndian.AppendUint32(b, h.Version)
	b = append(b, h.Prev[:]...)
	b = append(b, h.Merkle[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Time))
	b = binary.LittleEndian.AppendUint32(b, h.Bits)
	return binary.LittleEndian.AppendUint64(b, h.Nonce)
}

// Hash is the block hash: the double SHA-256 of the encoding.
func (h *Header) Hash() Hash { return DoubleSHA256(h.Encode()) }

// DecodeHeader decodes exactly HeaderSize bytes.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) != HeaderSize {
		return h, fmt.Errorf("header: %d bytes, want %d", len(b), HeaderSize)
	}
	h.Version = binary.LittleEndian.Uint32(b)
	copy(h.Prev[:], b[4:36])
	copy(h.Merkle[:], b[36:68])
	h.Time = int64(binary.LittleEndian.Uint64(b[68:76]))
	h.Bits = binary.LittleEndian.Uint32(b[76:80])
	h.Nonce = binary.LittleEndian.Uint64(b[80:88])
	return h, nil
}

// OutPoint names an output: a transaction ID and the output's index.
type OutPoint struct {
	Tx    Hash
	Index uint32
}

func (o OutPoint) String() string { return fmt.Sprintf("%s:%d", o.Tx, o.Index) }

// TxIn spends an output owned by PubKey.
type TxIn struct {
	Prev   OutPoint
	PubKey [32]byte // Ed25519 public key; its network ID must be the output's address
	Sig    [64]byte // Ed25519ctx signature of the transaction's SigHash (DomainTx)
}

// TxOut creates Value base units owned by Address.
type TxOut struct {
	Value   uint64
	Address Address
}

// Coinbase is what makes a transaction a coinbase: the first transaction of
// a block, spending nothing, signed by the licensed miner.
type Coinbase struct {
	Height int64    // the block's height
	Prev   Hash     // the previous block's hash: a coinbase cannot be moved to another fork
	Miner  [32]byte // the miner's Ed25519 public key (its licence)
	Sig    [64]byte // Ed25519ctx signature of the transaction's SigHash (DomainCoinbase)
	Extra  []byte   // free data, at most MaxCoinbaseEx bytes (extra nonce)
}

// Tx is a transaction. A coinbase has Coinbase set and no inputs.
type Tx struct {
	Version  uint32
	Coinbase *Coinbase
	Inputs   []TxIn
	Outputs  []TxOut
	LockTime int64  // 0, or the first height at which the transaction may be mined
	Payload  []byte // typed payload interpreted by consensus (admin, contracts); at most MaxPayload
}

// IsCoinbase reports whether tx is a coinbase.
func (tx *Tx) IsCoinbase() bool { return tx.Coinbase != nil }

// Encode returns the canonical encoding.
func (tx *Tx) Encode() []byte { return tx.appendTo(nil, false) }

// ID is the transaction ID: the double SHA-256 of the encoding.
func (tx *Tx) ID() Hash { return DoubleSHA256(tx.Encode()) }

// SigHash is what the inputs' and the miner's signatures sign on the
// network with magic: the magic followed by the encoding with every
// signature zeroed.
func (tx *Tx) SigHash(magic [4]byte) []byte {
	return tx.appendTo(append([]byte(nil), magic[:]...), true)
}

// Size is the length of the encoding.
func (tx *Tx) Size() int { return len(tx.Encode()) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func (tx *Tx) appendTo(b []byte, zeroSigs bool) []byte {
	var zero [64]byte
	b = binary.LittleEndian.AppendUint32(b, tx.Version)
	if cb := tx.Coinbase; cb != nil {
		b = append(b, 1)
		b = appendUvarint(b, uint64(cb.Height))
		b = append(b, cb.Prev[:]...)
		b = append(b, cb.Miner[:]...)
		if zeroSigs {
			b = append(b, zero[:]...)
		} else {
			b = append(b, cb.Sig[:]...)
		}
		b = appendUvarint(b, uint64(len(cb.Extra)))
		b = append(b, cb.Extra...)
	} else {
		b = append(b, 0)
	}
	b = appendUvarint(b, uint64(len(tx.Inputs)))
	for i := range tx.Inputs {
		in := &tx.Inputs[i]
		b = append(b, in.Prev.Tx[:]...)
		b = binary.LittleEndian.AppendUint32(b, in.Prev.Index)
		b = append(b, in.PubKey[:]...)
		if zeroSigs {
			b = append(b, zero[:]...)
		} else {
			b = append(b, in.Sig[:]...)
		}
	}
	b = appendUvarint(b, uint64(len(tx.Outputs)))
	for _, o := range tx.Outputs {
		b = binary.LittleEndian.AppendUint64(b, o.Value)
		b = append(b, o.Address[:]...)
	}
	b = appendUvarint(b, uint64(tx.LockTime))
	b = appendUvarint(b, uint64(len(tx.Payload)))
	return append(b, tx.Payload...)
}

// ErrMalformed reports bytes that are not a canonical encoding.
var ErrMalformed = errors.New("malformed encoding")

// Reader decodes a canonical encoding with bounds checks; the first error
// sticks. Other decoders of chain data (transaction payloads) use it with
// their own sentinel error.
type Reader struct {
	b        []byte
	err      error
	sentinel error // wrapped by every error; nil means ErrMalformed
}

// NewReader reads b; its errors wrap sentinel.
func NewReader(b []byte, sentinel error) *Reader { return &Reader{b: b, sentinel: sentinel} }

// Err is the first error, or nil.
func (r *Reader) Err() error { return r.err }

// Rest is what is left to read.
func (r *Reader) Rest() []byte { return r.b }

// Fail records an error (unless one is already recorded).
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		s := r.sentinel
		if s == nil {
			s = ErrMalformed
		}
		r.err = fmt.Errorf("%w: %s", s, fmt.Sprintf(format, args...))
	}
}

// Bytes reads n bytes.
func (r *Reader) Bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.Fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// Uvarint reads a minimal varint of at most max.
func (r *Reader) Uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail("%s: bad varint", what)
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		r.Fail("%s: non-minimal varint", what)
		return 0
	}
	if v > max {
		r.Fail("%s: %d exceeds %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *Reader) u32(what string) uint32 {
	b := r.Bytes(4, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *Reader) u64(what string) uint64 {
	b := r.Bytes(8, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

const maxHeight = 1<<62 - 1

func (r *Reader) tx() *Tx {
	tx := &Tx{Version: r.u32("version")}
	flag := r.Bytes(1, "coinbase flag")
	if r.err != nil {
		return nil
	}
	switch flag[0] {
	case 0:
	case 1:
		cb := &Coinbase{Height: int64(r.Uvarint("coinbase height", maxHeight))}
		copy(cb.Prev[:], r.Bytes(32, "coinbase prev"))
		copy(cb.Miner[:], r.Bytes(32, "coinbase miner"))
		copy(cb.Sig[:], r.Bytes(64, "coinbase signature"))
		n := r.Uvarint("coinbase extra length", MaxCoinbaseEx)
		if ex := r.Bytes(int(n), "coinbase extra"); n > 0 {
			cb.Extra = append([]byte(nil), ex...)
		}
		tx.Coinbase = cb
	default:
		r.Fail("coinbase flag %d", flag[0])
		return nil
	}
	nin := r.Uvarint("input count", MaxTxInputs)
	if nin > 0 && r.err == nil {
		tx.Inputs = make([]TxIn, nin)
	}
	for i := 0; i < int(nin) && r.err == nil; i++ {
		in := &tx.Inputs[i]
		copy(in.Prev.Tx[:], r.Bytes(32, "input prev"))
		in.Prev.Index = r.u32("input index")
		copy(in.PubKey[:], r.Bytes(32, "input key"))
		copy(in.Sig[:], r.Bytes(64, "input signature"))
	}
	nout := r.Uvarint("output count", MaxTxOutputs)
	if nout > 0 && r.err == nil {
		tx.Outputs = make([]TxOut, nout)
	}
	for i := 0; i < int(nout) && r.err == nil; i++ {
		o := &tx.Outputs[i]
		o.Value = r.u64("output value")
		copy(o.Address[:], r.Bytes(32, "output address"))
	}
	tx.LockTime = int64(r.Uvarint("lock time", maxHeight))
	n := r.Uvarint("payload length", MaxPayload)
	if p := r.Bytes(int(n), "payload"); n > 0 {
		tx.Payload = append([]byte(nil), p...)
	}
	if r.err != nil {
		return nil
	}
	return tx
}

// DecodeTx decodes exactly one canonical transaction.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("%w: transaction of %d bytes exceeds %d", ErrMalformed, len(b), MaxTxSize)
	}
	r := &Reader{b: b}
	tx := r.tx()
	if r.err == nil && len(r.b) > 0 {
		r.Fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("transaction: %w", r.err)
	}
	return tx, nil
}

// Block is a header and its transactions, the coinbase first.
type Block struct {
	Header Header
	Txs    []*Tx
}

// Hash is the block's header hash.
func (b *Block) Hash() Hash { return b.Header.Hash() }

// Encode returns the canonical encoding: the header, the transaction count
// and the transactions.
func (b *Block) Encode() []byte {
	out := b.Header.Encode()
	out = appendUvarint(out, uint64(len(b.Txs)))
	for _, tx := range b.Txs {
		out = tx.appendTo(out, false)
	}
	return out
}

// DecodeBlock decodes exactly one canonical block.
func DecodeBlock(data []byte) (*Block, error) {
	if len(data) > MaxBlockSize {
		return nil, fmt.Errorf("block: %w: %d bytes exceed %d", ErrMalformed, len(data), MaxBlockSize)
	}
	if len(data) < HeaderSize {
		return nil, fmt.Errorf("block: %w: truncated header", ErrMalformed)
	}
	h, _ := DecodeHeader(data[:HeaderSize])
	r := &Reader{b: data[HeaderSize:]}
	n := r.Uvarint("transaction count", MaxBlockTxs)
	b := &Block{Header: h}
	for i := 0; i < int(n) && r.err == nil; i++ {
		start := len(r.b)
		tx := r.tx()
		if r.err == nil && start-len(r.b) > MaxTxSize {
			r.Fail("transaction %d exceeds %d bytes", i, MaxTxSize)
		}
		b.Txs = append(b.Txs, tx)
	}
	if r.err == nil && len(r.b) > 0 {
		r.Fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("block: %w", r.err)
	}
	return b, nil
}

// MerkleRoot computes the Merkle root of the transaction IDs the bitcoin
// way (an odd level duplicates its last hash). mutated reports a level
// whose last two hashes are equal (CVE-2012-2459): such a transaction list
// has the same root as a shorter one and must be rejected without marking
// the header invalid.
func MerkleRoot(ids []Hash) (root Hash, mutated bool) {
	if len(ids) == 0 {
		return Hash{}, false
	}
	level := append([]Hash(nil), ids...)
	var buf [64]byte
	for len(level) > 1 {
		for i := 0; i+1 < len(level); i += 2 {
			if level[i] == level[i+1] {
				mutated = true
			}
		}
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			copy(buf[:32], level[i][:])
			copy(buf[32:], level[i+1][:])
			next = append(next, DoubleSHA256(buf[:]))
		}
		level = next
	}
	return level[0], mutated
}

// TxIDs returns the IDs of the block's transactions.
func (b *Block) TxIDs() []Hash {
	ids := make([]Hash, len(b.Txs))
	for i, tx := range b.Txs {
		ids[i] = tx.ID()
	}
	return ids
}

// Equal reports whether two transactions encode identically.
func Equal(a, b *Tx) bool { return bytes.Equal(a.Encode(), b.Encode()) }
