package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/iop-go/iop/identity"
)

// Relay is the first path of every connection: the profile server's call relay.
type Relay interface {
	// Send queues msg (len ≤ MaxMessage()) for the peer, in order. It blocks while the
	// relay's window is full and fails once the call is closed or ctx ends.
	Send(ctx context.Context, msg []byte) error
	// Recv returns the peer's next message, in order; io.EOF once the peer or server closed the call.
	Recv(ctx context.Context) ([]byte, error)
	// MaxMessage is the largest message Send accepts, at least 1 KiB.
	MaxMessage() int
	// Close ends the call for both sides; it is idempotent.
	Close() error
}

// ICEServer is a STUN or TURN server used to gather candidates.
type ICEServer struct {
	// URLs are "stun:host:port" or "turn:host:port?transport=udp" URIs.
	URLs []string
	// Username and Credential authenticate to TURN servers.
	Username, Credential string
}

// Config configures one side of a connection.
type Config struct {
	// Key is this device's identity. Required.
	Key *identity.Key
	// Peer is the identity expected on the other side. Required.
	Peer identity.ID
	// Initiator is true on the caller: the Noise initiator and ICE controlling agent.
	Initiator bool
	// Binding is the call context both sides know (service name, call IDs). It is
	// part of the Noise prologue: a handshake made for another call fails. At most 4 KiB.
	Binding []byte
	// ICEServers are the STUN/TURN servers for srflx and relay candidates.
	ICEServers []ICEServer
	// DisableICE keeps the connection on the relay.
	DisableICE bool
	// RelayOnly gathers only TURN relay candidates (no host or server-reflexive
	// addresses are revealed to the peer).
	RelayOnly bool
	// IncludeLoopback lets host candidates use loopback addresses (tests).
	IncludeLoopback bool
	// IPFilter, if set, limits host candidates to the local IPs it accepts.
	IPFilter func(net.IP) bool
	// ICETimeout bounds the attempt to find and secure a direct path. Default 10 s.
	ICETimeout time.Duration
	// IdleTimeout is how long the direct path may stay silent before the peer is
	// considered gone; keep-alives are sent at a third of it. Default 15 s.
	IdleTimeout time.Duration
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
}

const (
	defaultICETimeout  = 10 * time.Second
	defaultIdleTimeout = 15 * time.Second
	maxBinding         = 4096
)

// Validate reports whether c is usable.
func (c *Config) Validate() error {
	switch {
	case c.Key == nil:
		return errors.New("connect: config: Key is required")
	case c.Peer.IsZero():
		return errors.New("connect: config: Peer is required")
	case len(c.Binding) > maxBinding:
		return fmt.Errorf("connect: config: Binding of %d bytes exceeds %d", len(c.Binding), maxBinding)
	case c.ICETimeout < 0 || c.IdleTimeout < 0:
		return errors.New("connect: config: negative timeout")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ICETimeout == 0 {
		c.ICETimeout = defaultICETimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
