// Package p2p builds the libp2p hosts of IoP nodes and clients: transports
// (TCP and QUIC), Noise, yamux, and explicit resource limits sized for a
// profile server that holds tens of thousands of checked-in clients.
package p2p

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/iop-go/iop/identity"
)

// Limits are the resource limits of a host.
type Limits struct {
	Conns        int   // connections in total (inbound and outbound)
	Streams      int   // streams in total
	FD           int   // file descriptors the host may use
	Memory       int64 // bytes the resource manager may reserve
	PeerConns    int   // connections per peer
	PeerStreams  int   // streams per peer
	ConnsPerIPps float64
}

// ServerLimits are the limits of a node: room for 20,000 checked-in
// identities plus its server-to-server links. The file descriptor limit is
// taken from the process limit (see RaiseFDLimit).
func ServerLimits() Limits {
	fd := 19000
	if soft, _, err := FDLimit(); err == nil && soft > 512 {
		fd = int(soft) - 256
	}
	return Limits{
		Conns:   40000,
		Streams: 160000,
		FD:      fd,
		// Memory is what the resource manager lets muxers reserve, not
		// what they use: yamux reserves a 256 KiB window per stream, so
		// 4 GiB stopped a node at exactly 16,384 checked-in clients.
		Memory:      32 << 30,
		PeerConns:   8,
		PeerStreams: 64,
		// Many devices share one address behind carrier-grade NAT, so the
		// per-address connection rate is far above libp2p's default.
		ConnsPerIPps: 20,
	}
}

// ClientLimits are the limits of an end-user agent.
func ClientLimits() Limits {
	return Limits{Conns: 256, Streams: 1024, FD: 512, Memory: 256 << 20, PeerConns: 8, PeerStreams: 64, ConnsPerIPps: 5}
}

// Config configures a host.
type Config struct {
	Key    *identity.Key // the host key; nil for a fresh random key
	Listen []string      // multiaddrs to listen on; empty for none (a pure client)
	Limits Limits
}

// LibP2PKey converts an identity key to a libp2p private key, so that a
// node's peer ID and its IoP identity are the same Ed25519 key.
func LibP2PKey(k *identity.Key) (crypto.PrivKey, error) {
	return crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(k.Seed()))
}

// PeerID is the libp2p peer ID of an identity key.
func PeerID(k *identity.Key) (peer.ID, error) {
	pk, err := LibP2PKey(k)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(pk)
}

// PublicKeyOf extracts the Ed25519 public key behind a peer ID, when the ID
// embeds one (as every Ed25519 peer ID does).
func PublicKeyOf(id peer.ID) (ed25519.PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", id, err)
	}
	raw, err := pk.Raw()
	if err != nil || pk.Type() != crypto.Ed25519 || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("peer %s: not an Ed25519 key", id)
	}
	return ed25519.PublicKey(raw), nil
}

// New builds a libp2p host.
func New(cfg Config) (host.Host, error) {
	l := cfg.Limits
	if l.Conns == 0 {
		l = ClientLimits()
	}
	base := rcmgr.BaseLimit{
		Conns: l.Conns, ConnsInbound: l.Conns, ConnsOutbound: l.Conns,
		Streams: l.Streams, StreamsInbound: l.Streams, StreamsOutbound: l.Streams,
		FD: l.FD, Memory: l.Memory,
	}
	peerBase := rcmgr.BaseLimit{
		Conns: l.PeerConns, ConnsInbound: l.PeerConns, ConnsOutbound: l.PeerConns,
		Streams: l.PeerStreams, StreamsInbound: l.PeerStreams, StreamsOutbound: l.PeerStreams,
		FD: l.PeerConns, Memory: 64 << 20,
	}
	limits := rcmgr.PartialLimitConfig{
		System:      base.ToResourceLimits(),
		Transient:   base.ToResourceLimits(),
		PeerDefault: peerBase.ToResourceLimits(),
		ServiceDefault: rcmgr.BaseLimit{Streams: math.MaxInt, StreamsInbound: math.MaxInt, StreamsOutbound: math.MaxInt,
			Memory: math.MaxInt}.ToResourceLimits(),
		ProtocolDefault: rcmgr.BaseLimit{Streams: math.MaxInt, StreamsInbound: math.MaxInt, StreamsOutbound: math.MaxInt,
			Memory: math.MaxInt}.ToResourceLimits(),
		ProtocolPeerDefault: rcmgr.BaseLimit{Streams: l.PeerStreams, StreamsInbound: l.PeerStreams, StreamsOutbound: l.PeerStreams,
			Memory: 64 << 20}.ToResourceLimits(),
		ServicePeerDefault: rcmgr.BaseLimit{Streams: l.PeerStreams, StreamsInbound: l.PeerStreams, StreamsOutbound: l.PeerStreams,
			Memory: 64 << 20}.ToResourceLimits(),
		Conn:   rcmgr.BaseLimit{Conns: 1, ConnsInbound: 1, ConnsOutbound: 1, FD: 1, Memory: 32 << 20}.ToResourceLimits(),
		Stream: rcmgr.BaseLimit{Streams: 1, StreamsInbound: 1, StreamsOutbound: 1, Memory: 16 << 20}.ToResourceLimits(),
	}
	concrete := limits.Build(rcmgr.DefaultLimits.AutoScale())
	burst := int(l.ConnsPerIPps * 60)
	rl := &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: mustPrefix("127.0.0.0/8"), Limit: rate.Limit{}},
			{Prefix: mustPrefix("::1/128"), Limit: rate.Limit{}},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: l.ConnsPerIPps, Burst: burst}}},
			IPv6SubnetLimits: []rate.SubnetLimit{{PrefixLength: 56, Limit: rate.Limit{RPS: l.ConnsPerIPps, Burst: burst}}},
		},
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(concrete), rcmgr.WithConnRateLimiters(rl),
		rcmgr.WithNetworkPrefixLimit(rcmgr.DefaultNetworkPrefixLimitV4, rcmgr.DefaultNetworkPrefixLimitV6),
		rcmgr.WithLimitPerSubnet([]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: l.Conns}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: l.Conns}}))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	// Servers keep every client connection: trimming is done by the
	// protocols' own idle timeouts, so the connection manager never prunes.
	cm, err := connmgr.NewConnManager(l.Conns, l.Conns+1)
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	}
	if cfg.Key != nil {
		pk, err := LibP2PKey(cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
		opts = append(opts, libp2p.Identity(pk))
	}
	if len(cfg.Listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(cfg.Listen...))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("libp2p host (listen %v): %w", cfg.Listen, err)
	}
	return h, nil
}

// FullAddrs returns the host's listen addresses with /p2p/<id> appended.
// Loopback addresses are left out when the host has others, since they are
// useless to anyone but the host itself.
func FullAddrs(h host.Host) []ma.Multiaddr {
	info := peer.AddrInfo{ID: h.ID(), Addrs: h.Network().ListenAddresses()}
	if addrs, err := h.Network().InterfaceListenAddresses(); err == nil {
		info.Addrs = addrs
	}
	info.Addrs = Announceable(info.Addrs)
	out, _ := peer.AddrInfoToP2pAddrs(&info)
	return out
}

// Announceable drops loopback addresses from addrs unless there is nothing
// else, so that records other nodes read carry only reachable addresses
// (a devnet on loopback keeps its loopback addresses).
func Announceable(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return addrs
	}
	return out
}

// ParseAddr parses a multiaddr that ends in /p2p/<peer id>.
func ParseAddr(s string) (peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("address %q: %w", s, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("address %q: want a multiaddr ending in /p2p/<peer id>, as printed by `iop devnet`: %w", s, err)
	}
	return *info, nil
}

// FDLimit returns the process's open-file limits.
func FDLimit() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	return r.Cur, r.Max, nil
}

// RaiseFDLimit raises the soft open-file limit to the hard limit, since a
// profile server needs one descriptor per TCP client. It returns the new
// soft limit.
func RaiseFDLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("read open-file limit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, fmt.Errorf("raise open-file limit to %d: %w", r.Max, err)
		}
	}
	return r.Cur, nil
}
