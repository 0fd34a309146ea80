package profileserver

import (
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// benchServer starts a server on loopback with n pre-stored hosted profiles.
func benchServer(b *testing.B, n int) *Server {
	b.Helper()
	key, _ := identity.GenerateKey(nil)
	h, err := p2p.New(p2p.Config{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Limits: p2p.ServerLimits()})
	if err != nil {
		b.Fatal(err)
	}
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "node.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	if n > 0 {
		if _, err := openStore(db); err != nil {
			b.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			bk := tx.Bucket(bucketHosted)
			for i := range n {
				k, _ := identity.GenerateKey(nil)
				sp, err := graph.Sign(k, graph.Profile{Type: "bench/user", Name: fmt.Sprintf("User %d", i),
					Location: graph.Location{Lat: int32(i % 90000000), Lon: int32(i)}, Extra: "k=v", Sequence: 1})
				if err != nil {
					return err
				}
				v, _ := proto.Marshal(&wirepb.HostedIdentity{PublicKey: k.Public(), Type: "bench/user", Profile: sp.Proto()})
				id := k.ID()
				if err := bk.Put(id[:], v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Config{Host: h, Key: key, DB: db})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	b.Cleanup(func() {
		s.Close()
		h.Close()
		db.Close()
	})
	return s
}

func (s *Server) addrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: s.cfg.Host.ID(), Addrs: s.cfg.Host.Addrs()}
}

// BenchmarkNeighborhoodInit measures a follower's initialization from a
// server hosting 20,000 profiles: transfer, signature checks, storage and
// indexing.
func BenchmarkNeighborhoodInit(b *testing.B) {
	const n = 20000
	a := benchServer(b, n)
	for b.Loop() {
		f := benchServer(b, 0)
		done := make(chan struct{})
		var once sync.Once
		f.afterApply = func(identity.ID, []sharedItem) {
			if ni := f.neighbors[a.id]; ni != nil && ni.state.Initialized {
				once.Do(func() { close(done) })
			}
		}
		start := time.Now()
		f.SetNeighbors([]peer.AddrInfo{a.addrInfo()})
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			b.Fatal("initialization did not finish in 2 minutes")
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/init")
		if got := f.Stats().Shared; got != n {
			b.Fatalf("follower holds %d profiles, want %d", got, n)
		}
		f.Close()
	}
}

// BenchmarkUpdatePropagation measures how long one profile change takes to
// reach 110 followers (all in this process, on loopback).
func BenchmarkUpdatePropagation(b *testing.B) {
	const followers = 110
	a := benchServer(b, 0)
	key, _ := identity.GenerateKey(nil)
	id := key.ID()
	var mu sync.Mutex
	var arrived chan time.Duration
	var sent time.Time
	var fs []*Server
	for range followers {
		f := benchServer(b, 0)
		f.afterApply = func(_ identity.ID, items []sharedItem) {
			for _, it := range items {
				if it.id == id {
					mu.Lock()
					if arrived != nil {
						arrived <- time.Since(sent)
					}
					mu.Unlock()
				}
			}
		}
		f.SetNeighbors([]peer.AddrInfo{a.addrInfo()})
		fs = append(fs, f)
	}
	waitFor := func(cond func() bool) {
		deadline := time.After(time.Minute)
		tick := time.NewTicker(10 * time.Millisecond) // set-up, not a measured phase
		defer tick.Stop()
		for !cond() {
			select {
			case <-tick.C:
			case <-deadline:
				b.Fatal("followers did not initialize within a minute")
			}
		}
	}
	waitFor(func() bool { return a.Stats().Followers == followers })
	var lat []time.Duration
	seq := uint64(0)
	for b.Loop() {
		seq++
		sp, err := graph.Sign(key, graph.Profile{Type: "bench/user", Name: fmt.Sprintf("v%d", seq), Location: graph.Nowhere, Sequence: seq})
		if err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		arrived = make(chan time.Duration, followers)
		sent = time.Now()
		mu.Unlock()
		a.mu.Lock()
		a.appendLocked(logEntry{id: id, profile: sp})
		a.mu.Unlock()
		var worst time.Duration
		for range followers {
			select {
			case d := <-arrived:
				lat = append(lat, d)
				worst = max(worst, d)
			case <-time.After(time.Minute):
				b.Fatal("a follower did not receive the change within a minute")
			}
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "ms/all-followers")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/p50-follower")
	}
	_ = fs
}
