// Package wire frames and decodes the messages of the IoP protocols.
//
// A frame is a 4-byte big-endian body length followed by the body, an
// encoded wirepb.Message. A frame may not exceed MaxFrame bytes including the
// length prefix; a reader refuses a larger length before reading the body,
// so a hostile peer cannot make it allocate more than MaxFrame.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/internal/wire/wirepb"
)

// MaxFrame is the largest frame, length prefix included (1 MiB, as in 2017).
const MaxFrame = 1 << 20

// HeaderSize is the size of the length prefix.
const HeaderSize = 4

// ErrFrameTooLarge reports a length prefix over MaxFrame.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrMalformed reports a frame whose body is not a valid message.
var ErrMalformed = errors.New("malformed message")

// ReadFrame reads one frame body. It returns io.EOF only when the stream ends
// cleanly before a frame starts.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("read frame header: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame-HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, n, MaxFrame-HeaderSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read frame body: %w", err)
	}
	return body, nil
}

// WriteFrame writes body as one frame.
func WriteFrame(w io.Writer, body []byte) error {
	if len(body) > MaxFrame-HeaderSize {
		return fmt.Errorf("write frame: %w: %d bytes", ErrFrameTooLarge, len(body))
	}
	buf := make([]byte, HeaderSize+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[HeaderSize:], body)
	_, err := w.Write(buf)
	return err
}

// DecodeMessage decodes a frame body into a Message. It checks only that the
// bytes are a well-formed Message with exactly one of request or response.
func DecodeMessage(body []byte) (*wirepb.Message, error) {
	m := new(wirepb.Message)
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch k := m.Kind.(type) {
	case *wirepb.Message_Request:
		if k.Request == nil || k.Request.Body == nil {
			return nil, fmt.Errorf("%w: request without a body", ErrMalformed)
		}
	case *wirepb.Message_Response:
		if k.Response == nil {
			return nil, fmt.Errorf("%w: empty response", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("%w: neither request nor response", ErrMalformed)
	}
	return m, nil
}

// ReadMessage reads and decodes one message.
func ReadMessage(r io.Reader) (*wirepb.Message, error) {
	body, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	return DecodeMessage(body)
}

// WriteMessage encodes and writes one message.
func WriteMessage(w io.Writer, m *wirepb.Message) error {
	body, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	return WriteFrame(w, body)
}

// Now is the protocol timestamp of t: milliseconds since the epoch.
func Now(t time.Time) int64 { return t.UnixMilli() }

// ChallengeMessage is what a client signs (identity.DomainChallenge) to
// prove its key in CheckIn and VerifyIdentity: the server's challenge
// followed by the server's public key, so a signature made for one server
// cannot be replayed to another.
func ChallengeMessage(challenge, serverKey []byte) []byte {
	m := make([]byte, 0, len(challenge)+len(serverKey))
	m = append(m, challenge...)
	return append(m, serverKey...)
}
