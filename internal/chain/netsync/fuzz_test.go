package netsync

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/internal/chain/mempool"
	"github.com/iop-go/iop/internal/chain/types"
)

// rejectAll is a mempool that finds every transaction invalid.
type rejectAll struct{}

func (rejectAll) Accept(*types.Tx) error { return mempool.ErrBadSignature }

func msg(data []byte) *pubsub.Message {
	return &pubsub.Message{Message: &pb.Message{Data: data}, ReceivedFrom: "peer"}
}

// The fuzz targets check that every sync-message decoder refuses what it
// cannot decode without panicking or allocating beyond its limits, and
// that whatever it accepts re-encodes to exactly the input (one encoding
// per value).

func FuzzReadFrame(f *testing.F) {
	f.Add(frame(msgGetStatus, nil), 64)
	f.Add(frame(msgStatus, encodeStatus(status{Height: 7})), 64)
	f.Add([]byte{0, 0, 0, 0}, 64)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, maxFrame)
	f.Add([]byte{0, 0, 0, 5, 1}, 64)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max <= 0 || max > maxFrame {
			max = maxRequestFrame
		}
		typ, body, err := readFrame(bytes.NewReader(data), max)
		if err != nil {
			return
		}
		if 1+len(body) > max {
			t.Fatalf("frame of %d bytes above limit %d accepted", 1+len(body), max)
		}
		if got := frame(typ, body); !bytes.Equal(got, data[:len(got)]) {
			t.Fatal("frame does not re-encode to its input")
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add(encodeStatus(status{Height: 5, Tip: types.Hash{1}}))
	f.Add(make([]byte, 39))
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeStatus(data)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			return
		}
		if s.Height < 0 || !bytes.Equal(encodeStatus(s), data) {
			t.Fatalf("status %+v does not re-encode to its input", s)
		}
	})
}

func FuzzDecodeHashes(f *testing.F) {
	f.Add(encodeHashes([]types.Hash{{1}, {2}}), MaxLocator)
	f.Add(encodeHashes(nil), MaxBlocksPerRequest)
	f.Add([]byte{0x80, 0x00}, MaxLocator)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, MaxLocator)
	f.Add(encodeHashes(make([]types.Hash, MaxBlocksPerRequest+1)), MaxBlocksPerRequest)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max != MaxLocator {
			max = MaxBlocksPerRequest
		}
		hs, err := decodeHashes(data, max)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			return
		}
		if len(hs) > max || !bytes.Equal(encodeHashes(hs), data) {
			t.Fatalf("%d hashes do not re-encode to their input", len(hs))
		}
	})
}

func FuzzDecodeHeaders(f *testing.F) {
	f.Add(encodeHeaders(chainHeaders(types.Hash{}, 3, 1)))
	f.Add(encodeHeaders(nil))
	f.Add([]byte{0xd1, 0x0f}) // 2001
	f.Add([]byte{0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := decodeHeaders(data, MaxHeaders)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			return
		}
		if len(hs) > MaxHeaders || !bytes.Equal(encodeHeaders(hs), data) {
			t.Fatalf("%d headers do not re-encode to their input", len(hs))
		}
	})
}

func FuzzDecodeNotFound(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(make([]byte, 31))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeNotFound(data)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			return
		}
		if !bytes.Equal(h[:], data) {
			t.Fatal("not-found does not re-encode to its input")
		}
	})
}

// FuzzGossipValidators feeds arbitrary gossip payloads to both topic
// validators: they must never accept what does not decode, nor panic.
func FuzzGossipValidators(f *testing.F) {
	f.Add(testGenesis.Encode())
	f.Add(testGenesis.Txs[0].Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newMemChain()
		_, bErr := types.DecodeBlock(data)
		_, txErr := types.DecodeTx(data)
		s := &Sync{cfg: Config{Chain: c, Mempool: rejectAll{}}, log: slog.New(slog.DiscardHandler),
			self: "self", peers: map[peer.ID]*peerState{}, pending: map[peer.ID]bool{}, kickc: make(chan peer.ID, 1)}
		if r := s.validateBlock(t.Context(), "peer", msg(data)); bErr != nil && r != pubsub.ValidationReject {
			t.Fatalf("undecodable block: verdict %v, want reject", r)
		}
		if r := s.validateTx(t.Context(), "peer", msg(data)); txErr != nil && r != pubsub.ValidationReject {
			t.Fatalf("undecodable transaction: verdict %v, want reject", r)
		}
	})
}
