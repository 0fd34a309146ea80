package connect

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

var sampleFrames = []frame{
	{typ: frameData, data: []byte("hello")},
	{typ: frameOffer, ufrag: "abcd", pwd: "0123456789012345678901", fingerprint: sha256.Sum256([]byte("cert"))},
	{typ: frameCandidate, data: []byte("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host")},
	{typ: frameEndOfCandidates},
	{typ: frameAbort},
	{typ: frameSwitch},
	{typ: frameSwitchAck},
	{typ: frameFin},
	{typ: frameReject, data: []byte("unexpected identity")},
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range sampleFrames {
		b := appendFrame(nil, f)
		got, err := decodeFrame(b)
		if err != nil {
			t.Fatalf("decodeFrame(appendFrame(type %d)) = %v", f.typ, err)
		}
		if again := appendFrame(nil, got); !bytes.Equal(again, b) {
			t.Errorf("frame type %d: re-encoding = %x, want %x", f.typ, again, b)
		}
	}
	for _, bad := range [][]byte{nil, {frameData}, {frameFin, 0}, {99}, {frameOffer, 0}, {frameOffer, 1, 'a', 1, 'b', 1, 2}} {
		if _, err := decodeFrame(bad); err == nil {
			t.Errorf("decodeFrame(%x) succeeded, want an error", bad)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range sampleFrames {
		f.Add(appendFrame(nil, fr))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		if again := appendFrame(nil, fr); !bytes.Equal(again, b) {
			t.Fatalf("appendFrame(decodeFrame(%x)) = %x", b, again)
		}
	})
}

func FuzzHandshakePayload(f *testing.F) {
	f.Add(handshakePayload{pub: make([]byte, 32), sig: make([]byte, 64)}.encode())
	f.Add([]byte{payloadVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeHandshakePayload(b)
		if err != nil {
			return
		}
		if again := p.encode(); !bytes.Equal(again, b) {
			t.Fatalf("encode(decodeHandshakePayload(%x)) = %x", b, again)
		}
	})
}
