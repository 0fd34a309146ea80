package types

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/iop-go/iop/identity"
)

// Signature domains of the chain (Ed25519ctx contexts).
const (
	DomainTx       identity.Domain = "iop/chain/tx/1"
	DomainCoinbase identity.Domain = "iop/chain/coinbase/1"
)

// Address owns outputs: the network ID of an Ed25519 identity key.
type Address [32]byte

// AddressOf is the address of a public key.
func AddressOf(pub []byte) Address { return Address(identity.IDFromPublicKey(ed25519.PublicKey(pub))) }

// Encode is the text form on a network with address prefix p:
// p + "1" + 64 hex characters + 8 hex characters of checksum.
func (a Address) Encode(p string) string {
	sum := addressChecksum(p, a)
	return p + "1" + hex.EncodeToString(a[:]) + hex.EncodeToString(sum[:])
}

func addressChecksum(p string, a Address) [4]byte {
	h := sha256.Sum256(append([]byte(p+"1"), a[:]...))
	return [4]byte(h[:4])
}

// ParseAddress parses the text form of an address on the network with
// address prefix p. It rejects addresses of other networks and mistyped
// ones (the checksum).
func ParseAddress(p, s string) (Address, error) {
	var a Address
	rest, ok := strings.CutPrefix(s, p+"1")
	if !ok {
		if i := strings.Index(s, "1"); i > 0 {
			return a, fmt.Errorf("address %q is for network prefix %q, not %q", s, s[:i], p)
		}
		return a, fmt.Errorf("address %q: want %s1 followed by 72 hex characters", s, p)
	}
	if len(rest) != 72 {
		return a, fmt.Errorf("address %q: want %s1 followed by 72 hex characters", s, p)
	}
	raw, err := hex.DecodeString(rest)
	if err != nil || strings.ToLower(rest) != rest {
		return a, fmt.Errorf("address %q: not lowercase hex", s)
	}
	copy(a[:], raw[:32])
	if sum := addressChecksum(p, a); [4]byte(raw[32:]) != sum {
		return a, fmt.Errorf("address %q: checksum mismatch (mistyped?)", s)
	}
	return a, nil
}

// SignInputs signs every input of tx with the key that owns it: keys maps
// an input's index to its key, which also sets the input's PubKey. Every
// input signs the same SigHash, so a signature cannot be moved to another
// transaction or network.
func (tx *Tx) SignInputs(magic [4]byte, keys func(i int) *identity.Key) {
	for i := range tx.Inputs {
		tx.Inputs[i].PubKey = [32]byte(keys(i).Public())
	}
	msg := tx.SigHash(magic)
	for i := range tx.Inputs {
		copy(tx.Inputs[i].Sig[:], keys(i).Sign(DomainTx, msg))
	}
}

// VerifyInput checks input i's signature against its PubKey. It does not
// check that the key owns the spent output; consensus does that.
func (tx *Tx) VerifyInput(magic [4]byte, i int, msg []byte) error {
	in := &tx.Inputs[i]
	if msg == nil {
		msg = tx.SigHash(magic)
	}
	if err := identity.Verify(in.PubKey[:], DomainTx, msg, in.Sig[:]); err != nil {
		return fmt.Errorf("input %d: %w", i, err)
	}
	return nil
}

// SignCoinbase sets the coinbase's miner key and signature.
func (tx *Tx) SignCoinbase(magic [4]byte, miner *identity.Key) {
	tx.Coinbase.Miner = [32]byte(miner.Public())
	copy(tx.Coinbase.Sig[:], miner.Sign(DomainCoinbase, tx.SigHash(magic)))
}

// VerifyCoinbase checks the coinbase's miner signature.
func (tx *Tx) VerifyCoinbase(magic [4]byte) error {
	cb := tx.Coinbase
	if cb == nil {
		return fmt.Errorf("not a coinbase")
	}
	return identity.Verify(cb.Miner[:], DomainCoinbase, tx.SigHash(magic), cb.Sig[:])
}
