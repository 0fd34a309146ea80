package types

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/iop-go/iop/identity"
)

var magic = [4]byte{'t', 'e', 's', 't'}

func newKey(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sampleBlock(t testing.TB) *Block {
	t.Helper()
	miner, payer := newKey(t), newKey(t)
	cb := &Tx{Version: 1, Coinbase: &Coinbase{Height: 7, Prev: Hash{1}, Extra: []byte("x")},
		Outputs: []TxOut{{Value: 50, Address: AddressOf(miner.Public())}}}
	cb.SignCoinbase(magic, miner)
	pay := &Tx{Version: 1, Inputs: []TxIn{{Prev: OutPoint{Tx: Hash{9}, Index: 2}}},
		Outputs:  []TxOut{{Value: 10, Address: AddressOf(miner.Public())}, {Value: 39, Address: AddressOf(payer.Public())}},
		LockTime: 3, Payload: []byte{1, 2, 3}}
	pay.SignInputs(magic, func(int) *identity.Key { return payer })
	b := &Block{Header: Header{Version: 1, Prev: Hash{1}, Time: 1700000000, Bits: 0x207fffff, Nonce: 42}, Txs: []*Tx{cb, pay}}
	b.Header.Merkle, _ = MerkleRoot(b.TxIDs())
	return b
}

func TestRoundTrips(t *testing.T) {
	b := sampleBlock(t)
	enc := b.Encode()
	got, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), enc) || got.Hash() != b.Hash() {
		t.Fatal("block round trip changed the encoding")
	}
	for i, tx := range b.Txs {
		d, err := DecodeTx(tx.Encode())
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		if d.ID() != tx.ID() {
			t.Fatalf("tx %d: ID changed", i)
		}
	}
	h, err := DecodeHeader(b.Header.Encode())
	if err != nil || h != b.Header {
		t.Fatalf("header round trip: %v %+v", err, h)
	}
}

func TestDecodeRejects(t *testing.T) {
	b := sampleBlock(t)
	tx := b.Txs[1].Encode()
	cases := map[string][]byte{
		"trailing":  append(append([]byte(nil), tx...), 0),
		"truncated": tx[:len(tx)-1],
		"flag":      func() []byte { x := append([]byte(nil), tx...); x[4] = 2; return x }(),
		// The input count 1 written as a two-byte varint.
		"non-minimal": func() []byte {
			x := append([]byte(nil), tx[:5]...)
			x = append(x, 0x81, 0x00)
			return append(x, tx[6:]...)
		}(),
		"empty": nil,
	}
	for name, in := range cases {
		if _, err := DecodeTx(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := DecodeBlock(append(b.Encode(), 1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("block with trailing byte: %v", err)
	}
	big := &Tx{Payload: make([]byte, MaxPayload+1)}
	if _, err := DecodeTx(big.Encode()); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized payload: %v", err)
	}
}

func TestSignatures(t *testing.T) {
	b := sampleBlock(t)
	cb, pay := b.Txs[0], b.Txs[1]
	if err := cb.VerifyCoinbase(magic); err != nil {
		t.Fatal(err)
	}
	if err := pay.VerifyInput(magic, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Another network, another output, a moved signature: all fail.
	if pay.VerifyInput([4]byte{'m', 'a', 'i', 'n'}, 0, nil) == nil {
		t.Error("signature verified on another network")
	}
	pay.Outputs[0].Value++
	if pay.VerifyInput(magic, 0, nil) == nil {
		t.Error("signature verified after an output changed")
	}
	cb.Coinbase.Height++
	if cb.VerifyCoinbase(magic) == nil {
		t.Error("coinbase signature verified after the height changed")
	}
}

func TestMerkle(t *testing.T) {
	a, b, c := Hash{1}, Hash{2}, Hash{3}
	if r, m := MerkleRoot([]Hash{a}); r != a || m {
		t.Error("one leaf")
	}
	ab := DoubleSHA256(append(a[:], b[:]...))
	if r, _ := MerkleRoot([]Hash{a, b}); r != ab {
		t.Error("two leaves")
	}
	cc := DoubleSHA256(append(c[:], c[:]...))
	abc := DoubleSHA256(append(ab[:], cc[:]...))
	r3, m3 := MerkleRoot([]Hash{a, b, c})
	if r3 != abc || m3 {
		t.Error("three leaves")
	}
	// CVE-2012-2459: [a b c c] has the root of [a b c] and is flagged.
	r4, m4 := MerkleRoot([]Hash{a, b, c, c})
	if r4 != r3 || !m4 {
		t.Errorf("duplicated last leaf: same root %v, mutated %v", r4 == r3, m4)
	}
}

func TestAddresses(t *testing.T) {
	a := AddressOf(newKey(t).Public())
	s := a.Encode("diop")
	got, err := ParseAddress("diop", s)
	if err != nil || got != a {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParseAddress("iop", s); err == nil || !strings.Contains(err.Error(), "diop") {
		t.Errorf("other network: %v", err)
	}
	bad := []byte(s)
	bad[10] ^= 1
	if bad[10] < '0' {
		bad[10] = 'a'
	}
	if _, err := ParseAddress("diop", string(bad)); err == nil {
		t.Error("mistyped address accepted")
	}
	if _, err := ParseAddress("diop", strings.ToUpper(s)); err == nil {
		t.Error("upper-case address accepted")
	}
}

func FuzzDecodeTx(f *testing.F) {
	b := sampleBlock(f)
	for _, tx := range b.Txs {
		f.Add(tx.Encode())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := DecodeTx(data)
		if err != nil {
			return
		}
		if !bytes.Equal(tx.Encode(), data) {
			t.Fatal("a decoded transaction re-encodes differently")
		}
	})
}

func FuzzDecodeBlock(f *testing.F) {
	f.Add(sampleBlock(f).Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBlock(data)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Encode(), data) {
			t.Fatal("a decoded block re-encodes differently")
		}
	})
}

func BenchmarkVerifyInput(b *testing.B) {
	blk := sampleBlock(b)
	tx := blk.Txs[1]
	msg := tx.SigHash(magic)
	for b.Loop() {
		if err := tx.VerifyInput(magic, 0, msg); err != nil {
			b.Fatal(err)
		}
	}
}
