// Package profileservertest starts real profile servers for tests: a libp2p
// host on loopback, a bbolt database in a temporary directory, and clients
// that dial it over real connections. Everything is cleaned up with
// t.Cleanup.
package profileservertest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/profile/profileserver"
)

// Server is a running profile server.
type Server struct {
	*profileserver.Server
	Host   host.Host
	Key    *identity.Key
	DB     *bbolt.DB
	Dir    string
	Addr   peer.AddrInfo
	config profileserver.Config
}

// Start starts a profile server on loopback. opts may change its config
// before it starts.
func Start(t testing.TB, opts ...func(*profileserver.Config)) *Server {
	t.Helper()
	key, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return StartWith(t, key, t.TempDir(), opts...)
}

// StartWith starts a profile server with a given key and data directory, so
// a test can restart a server on the same data.
func StartWith(t testing.TB, key *identity.Key, dir string, opts ...func(*profileserver.Config)) *Server {
	t.Helper()
	return StartAt(t, key, dir, "/ip4/127.0.0.1/tcp/0", opts...)
}

// StartAt is StartWith on a given listen multiaddr, so a restarted server
// can come back at the same address.
func StartAt(t testing.TB, key *identity.Key, dir, listen string, opts ...func(*profileserver.Config)) *Server {
	t.Helper()
	h, err := p2p.New(p2p.Config{Key: key, Listen: []string{listen}, Limits: p2p.ServerLimits()})
	if err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(dir, "node.db"), 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	cfg := profileserver.Config{Host: h, Key: key, DB: db}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := profileserver.New(cfg)
	if err != nil {
		h.Close()
		db.Close()
		t.Fatal(err)
	}
	srv.Start()
	s := &Server{Server: srv, Host: h, Key: key, DB: db, Dir: dir, config: cfg,
		Addr: peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}}
	t.Cleanup(s.Stop)
	return s
}

// Stop closes the server, its host and database. It is safe to call twice.
func (s *Server) Stop() {
	if s.Host == nil {
		return
	}
	s.Server.Close()
	s.Host.Close()
	s.DB.Close()
	s.Host = nil
}

// ClientHost returns a new client libp2p host.
func ClientHost(t testing.TB) host.Host {
	t.Helper()
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Dial opens a protocol connection from a new client host.
func (s *Server) Dial(t testing.TB) *client.Conn {
	t.Helper()
	return s.DialFrom(t, ClientHost(t))
}

// DialFrom opens a protocol connection from h.
func (s *Server) DialFrom(t testing.TB, h host.Host) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, h, s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// NewKey returns a fresh identity key.
func NewKey(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Customer dials, registers key with identity type typ and checks in.
func (s *Server) Customer(t testing.TB, key *identity.Key, typ string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s.Dial(t)
	if err := c.StartConversation(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterHosting(ctx, typ); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}
