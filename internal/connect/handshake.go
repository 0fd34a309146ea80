package connect

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"github.com/iop-go/iop/identity"
)

// domainConnect is the signature domain of the identity proofs in the handshake.
const domainConnect identity.Domain = "iop/connect/1"

const prologuePrefix = "iop/connect/1\x00"

var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// IdentityError reports that the peer proved an identity other than the expected one.
type IdentityError struct {
	Got, Want identity.ID
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("connect: peer proved identity %s, expected %s", e.Got, e.Want)
}

// secureSession is the result of a handshake.
type secureSession struct {
	enc, dec *noise.CipherState
	peerPub  ed25519.PublicKey
}

// proofMessage is what an identity signs: the role, its Noise static key and
// the handshake hash just before the message that carries the proof.
func proofMessage(initiator bool, static, h []byte) []byte {
	m := make([]byte, 0, 1+len(static)+len(h))
	if initiator {
		m = append(m, 'I')
	} else {
		m = append(m, 'R')
	}
	m = append(m, static...)
	return append(m, h...)
}

// handshake runs Noise XX over relay. The initiator sends messages 1 and 3,
// the responder message 2; messages 2 and 3 carry the identity proofs.
func handshake(ctx context.Context, cfg Config, relay Relay) (*secureSession, error) {
	static, err := cipherSuite.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("connect: generate Noise key: %w", err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Random:        rand.Reader,
		Pattern:       noise.HandshakeXX,
		Initiator:     cfg.Initiator,
		Prologue:      append([]byte(prologuePrefix), cfg.Binding...),
		StaticKeypair: static,
	})
	if err != nil {
		return nil, fmt.Errorf("connect: start Noise handshake: %w", err)
	}
	send := func(payload []byte) (*noise.CipherState, *noise.CipherState, error) {
		msg, cs1, cs2, err := hs.WriteMessage(nil, payload)
		if err != nil {
			return nil, nil, fmt.Errorf("connect: write handshake message: %w", err)
		}
		if err := relay.Send(ctx, msg); err != nil {
			return nil, nil, fmt.Errorf("connect: send handshake message: %w", err)
		}
		return cs1, cs2, nil
	}
	recv := func() ([]byte, *noise.CipherState, *noise.CipherState, error) {
		msg, err := relay.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil, nil, nil, fmt.Errorf("connect: relay closed during the handshake (the peer rejected it or left): %w", err)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("connect: receive handshake message: %w", err)
		}
		payload, cs1, cs2, err := hs.ReadMessage(nil, msg)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("connect: read handshake message (wrong binding or tampered): %w", err)
		}
		return payload, cs1, cs2, nil
	}
	ownProof := func() []byte {
		sig := cfg.Key.Sign(domainConnect, proofMessage(cfg.Initiator, static.Public, hs.ChannelBinding()))
		return handshakePayload{pub: cfg.Key.Public(), sig: sig}.encode()
	}
	checkProof := func(payload, h []byte) (ed25519.PublicKey, error) {
		p, err := decodeHandshakePayload(payload)
		if err != nil {
			return nil, err
		}
		if err := identity.Verify(p.pub, domainConnect, proofMessage(!cfg.Initiator, hs.PeerStatic(), h), p.sig); err != nil {
			return nil, fmt.Errorf("connect: peer's identity proof: %w", err)
		}
		if got := identity.IDFromPublicKey(p.pub); got != cfg.Peer {
			return nil, &IdentityError{Got: got, Want: cfg.Peer}
		}
		return p.pub, nil
	}

	if cfg.Initiator {
		if _, _, err := send(nil); err != nil { // -> e
			return nil, err
		}
		h := append([]byte(nil), hs.ChannelBinding()...)
		payload, _, _, err := recv() // <- e, ee, s, es
		if err != nil {
			return nil, err
		}
		pub, err := checkProof(payload, h)
		if err != nil {
			return nil, err
		}
		cs1, cs2, err := send(ownProof()) // -> s, se
		if err != nil {
			return nil, err
		}
		if cs1 == nil {
			return nil, errors.New("connect: Noise handshake did not complete")
		}
		return &secureSession{enc: cs1, dec: cs2, peerPub: pub}, nil
	}

	if payload, _, _, err := recv(); err != nil { // -> e
		return nil, err
	} else if len(payload) != 0 {
		return nil, errors.New("connect: unexpected payload in handshake message 1")
	}
	if _, _, err := send(ownProof()); err != nil { // <- e, ee, s, es
		return nil, err
	}
	h := append([]byte(nil), hs.ChannelBinding()...)
	payload, cs1, cs2, err := recv() // -> s, se
	if err != nil {
		return nil, err
	}
	if cs1 == nil {
		return nil, errors.New("connect: Noise handshake did not complete")
	}
	pub, err := checkProof(payload, h)
	if err != nil {
		// Tell the initiator why, best effort, before the caller closes the relay.
		var ie *IdentityError
		reason := "identity proof failed"
		if errors.As(err, &ie) {
			reason = "unexpected identity " + ie.Got.String()
		}
		if msg, encErr := cs2.Encrypt(nil, nil, appendFrame(nil, frame{typ: frameReject, data: []byte(reason)})); encErr == nil {
			_ = relay.Send(ctx, msg)
		}
		return nil, err
	}
	return &secureSession{enc: cs2, dec: cs1, peerPub: pub}, nil
}
