package connect

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Frame types. Every message on the relay after the handshake is one Noise
// transport message whose plaintext is one frame: a type byte and a body.
const (
	frameData            byte = 1 // body: 1 or more application bytes
	frameOffer           byte = 2 // body: ufrag (u8 length + bytes), pwd (u8 length + bytes), SHA-256 certificate fingerprint (32)
	frameCandidate       byte = 3 // body: one ICE candidate in its SDP attribute form
	frameEndOfCandidates byte = 4 // body: empty
	frameAbort           byte = 5 // body: empty; the sender gave up on the direct path
	frameSwitch          byte = 6 // body: empty; the rest of this direction comes over the direct stream
	frameSwitchAck       byte = 7 // body: empty; the peer's SWITCH was received
	frameFin             byte = 8 // body: empty; this direction ends here
	frameReject          byte = 9 // body: a short UTF-8 reason; the peer refused the connection
)

// Size limits of frame bodies.
const (
	maxCredential = 256 // ufrag and pwd (RFC 8445 allows at most 256 characters)
	maxCandidate  = 512
	maxReason     = 256
	maxFrame      = 65535 - 16 // a Noise message minus the AEAD tag
)

// frame is one decoded frame. Only the fields of its type are set.
type frame struct {
	typ         byte
	data        []byte // DATA payload, CANDIDATE text, REJECT reason
	ufrag, pwd  string
	fingerprint [sha256.Size]byte
}

var errEmptyFrame = errors.New("connect: empty frame")

// appendFrame appends the encoding of f to dst.
func appendFrame(dst []byte, f frame) []byte {
	dst = append(dst, f.typ)
	switch f.typ {
	case frameData, frameCandidate, frameReject:
		dst = append(dst, f.data...)
	case frameOffer:
		dst = append(dst, byte(len(f.ufrag)))
		dst = append(dst, f.ufrag...)
		dst = append(dst, byte(len(f.pwd)))
		dst = append(dst, f.pwd...)
		dst = append(dst, f.fingerprint[:]...)
	}
	return dst
}

// decodeFrame decodes one frame. The DATA payload and texts alias b.
func decodeFrame(b []byte) (frame, error) {
	if len(b) == 0 {
		return frame{}, errEmptyFrame
	}
	if len(b) > maxFrame {
		return frame{}, fmt.Errorf("connect: frame of %d bytes exceeds %d", len(b), maxFrame)
	}
	f := frame{typ: b[0]}
	body := b[1:]
	switch f.typ {
	case frameData:
		if len(body) == 0 {
			return frame{}, errors.New("connect: empty DATA frame")
		}
		f.data = body
	case frameCandidate:
		if len(body) == 0 || len(body) > maxCandidate {
			return frame{}, fmt.Errorf("connect: CANDIDATE frame of %d bytes, want 1 to %d", len(body), maxCandidate)
		}
		f.data = body
	case frameReject:
		if len(body) > maxReason {
			return frame{}, fmt.Errorf("connect: REJECT reason of %d bytes exceeds %d", len(body), maxReason)
		}
		f.data = body
	case frameOffer:
		var ok bool
		if f.ufrag, body, ok = cutString(body); !ok {
			return frame{}, errors.New("connect: OFFER frame: bad ufrag")
		}
		if f.pwd, body, ok = cutString(body); !ok {
			return frame{}, errors.New("connect: OFFER frame: bad pwd")
		}
		if len(body) != sha256.Size {
			return frame{}, fmt.Errorf("connect: OFFER frame: fingerprint of %d bytes, want %d", len(body), sha256.Size)
		}
		copy(f.fingerprint[:], body)
	case frameEndOfCandidates, frameAbort, frameSwitch, frameSwitchAck, frameFin:
		if len(body) != 0 {
			return frame{}, fmt.Errorf("connect: frame type %d has a %d-byte body, want none", f.typ, len(body))
		}
	default:
		return frame{}, fmt.Errorf("connect: unknown frame type %d", f.typ)
	}
	return f, nil
}

// cutString splits a non-empty u8-length-prefixed string off b.
func cutString(b []byte) (string, []byte, bool) {
	if len(b) == 0 {
		return "", nil, false
	}
	n := int(b[0])
	if n == 0 || len(b) < 1+n {
		return "", nil, false
	}
	return string(b[1 : 1+n]), b[1+n:], true
}

// Handshake payload: a version byte, the Ed25519 identity public key and the
// identity's signature binding the Noise static key to the handshake.
const (
	payloadVersion = 1
	payloadSize    = 1 + ed25519.PublicKeySize + ed25519.SignatureSize
)

type handshakePayload struct {
	pub ed25519.PublicKey
	sig []byte
}

func (p handshakePayload) encode() []byte {
	b := make([]byte, 0, payloadSize)
	b = append(b, payloadVersion)
	b = append(b, p.pub...)
	return append(b, p.sig...)
}

func decodeHandshakePayload(b []byte) (handshakePayload, error) {
	if len(b) != payloadSize {
		return handshakePayload{}, fmt.Errorf("connect: handshake payload of %d bytes, want %d", len(b), payloadSize)
	}
	if b[0] != payloadVersion {
		return handshakePayload{}, fmt.Errorf("connect: handshake payload version %d, want %d", b[0], payloadVersion)
	}
	pub := make([]byte, ed25519.PublicKeySize)
	copy(pub, b[1:])
	sig := make([]byte, ed25519.SignatureSize)
	copy(sig, b[1+ed25519.PublicKeySize:])
	return handshakePayload{pub: pub, sig: sig}, nil
}
