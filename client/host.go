package client

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/internal/p2p"
)

// NewHost starts a libp2p host with the transports and resource limits of
// an IoP client. Agents create their own when AgentConfig.Host is nil;
// pass one host to several agents to run several identities on shared
// connections.
func NewHost() (host.Host, error) {
	return p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
}

// ParseAddr parses a node's address as `iop devnet` and `iop node status`
// print it: a multiaddr ending in /p2p/<peer ID>.
func ParseAddr(s string) (peer.AddrInfo, error) { return p2p.ParseAddr(s) }
