package netsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/iop-go/iop/internal/chain/types"
)

// Limits of the sync protocol.
const (
	MaxHeaders          = 2000 // headers per get-headers response
	MaxBlocksPerRequest = 16   // blocks per get-blocks request
	MaxLocator          = 128  // hashes in a block locator

	// maxRequestFrame bounds a request: the type byte, a count and
	// MaxLocator hashes.
	maxRequestFrame = 1 + binary.MaxVarintLen64 + MaxLocator*32
	// maxFrame bounds any frame: the type byte and a block.
	maxFrame = 1 + types.MaxBlockSize
)

// Message types. Requests have the high bit clear, responses set.
const (
	msgGetStatus  byte = 0x01 // empty body
	msgGetHeaders byte = 0x02 // a locator
	msgGetBlocks  byte = 0x03 // block hashes
	msgStatus     byte = 0x81 // height (8 bytes LE) and tip hash
	msgHeaders    byte = 0x82 // count and 88-byte headers
	msgBlock      byte = 0x83 // one encoded block
	msgNotFound   byte = 0x84 // the hash of a block the peer does not have
)

// errProtocol marks a message that breaks the protocol: the peer sending
// it misbehaves (or runs incompatible software) and is penalised.
var errProtocol = errors.New("sync protocol violation")

// status is a node's best chain tip.
type status struct {
	Height int64
	Tip    types.Hash
}

// writeFrame writes a length-prefixed frame: a 4-byte big-endian length,
// then the type byte and the body.
func writeFrame(w io.Writer, typ byte, body []byte) error {
	if 1+len(body) > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", 1+len(body), maxFrame)
	}
	buf := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(buf, uint32(1+len(body)))
	buf[4] = typ
	_, err := w.Write(append(buf, body...))
	return err
}

// readFrame reads one frame of at most max bytes (type byte included).
// A length of zero or above max is a protocol violation; the bytes are
// not read, so the caller must drop the stream.
func readFrame(r io.Reader, max int) (typ byte, body []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read frame length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || uint64(n) > uint64(max) {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes, limit %d", errProtocol, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("read frame of %d bytes: %w", n, err)
	}
	return buf[0], buf[1:], nil
}

func encodeStatus(s status) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(s.Height))
	return append(b, s.Tip[:]...)
}

func decodeStatus(b []byte) (status, error) {
	var s status
	if len(b) != 40 {
		return s, fmt.Errorf("%w: status of %d bytes, want 40", errProtocol, len(b))
	}
	h := binary.LittleEndian.Uint64(b)
	if h > 1<<62 {
		return s, fmt.Errorf("%w: status height %d out of range", errProtocol, h)
	}
	s.Height = int64(h)
	copy(s.Tip[:], b[8:])
	return s, nil
}

// uvarint decodes a minimal unsigned varint of at most max.
func uvarint(b []byte, what string, max uint64) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: %s: bad varint", errProtocol, what)
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		return 0, nil, fmt.Errorf("%w: %s: non-minimal varint", errProtocol, what)
	}
	if v > max {
		return 0, nil, fmt.Errorf("%w: %s %d exceeds %d", errProtocol, what, v, max)
	}
	return v, b[n:], nil
}

func encodeHashes(hs []types.Hash) []byte {
	b := binary.AppendUvarint(nil, uint64(len(hs)))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

// decodeHashes decodes a count and that many hashes, at most max.
func decodeHashes(b []byte, max int) ([]types.Hash, error) {
	n, rest, err := uvarint(b, "hash count", uint64(max))
	if err != nil {
		return nil, err
	}
	if uint64(len(rest)) != n*32 {
		return nil, fmt.Errorf("%w: %d hashes in %d bytes", errProtocol, n, len(rest))
	}
	hs := make([]types.Hash, n)
	for i := range hs {
		copy(hs[i][:], rest[i*32:])
	}
	return hs, nil
}

func encodeHeaders(hs []types.Header) []byte {
	b := binary.AppendUvarint(nil, uint64(len(hs)))
	for i := range hs {
		b = append(b, hs[i].Encode()...)
	}
	return b
}

// decodeHeaders decodes a count and that many headers, at most max.
func decodeHeaders(b []byte, max int) ([]types.Header, error) {
	n, rest, err := uvarint(b, "header count", uint64(max))
	if err != nil {
		return nil, err
	}
	if uint64(len(rest)) != n*types.HeaderSize {
		return nil, fmt.Errorf("%w: %d headers in %d bytes", errProtocol, n, len(rest))
	}
	hs := make([]types.Header, n)
	for i := range hs {
		hs[i], err = types.DecodeHeader(rest[i*types.HeaderSize : (i+1)*types.HeaderSize])
		if err != nil {
			return nil, fmt.Errorf("%w: header %d: %v", errProtocol, i, err)
		}
	}
	return hs, nil
}

func decodeNotFound(b []byte) (types.Hash, error) {
	if len(b) != 32 {
		return types.Hash{}, fmt.Errorf("%w: not-found of %d bytes, want 32", errProtocol, len(b))
	}
	return types.Hash(b), nil
}
