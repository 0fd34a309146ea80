package node

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
)

func TestLocStoreRoundTrip(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := newLocStore(db)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := identity.GenerateKey(nil)
	info, err := locnet.SignNodeInfo(k, locnet.NodeInfo{Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Location: graph.Location{Lat: 1, Lon: 2}, Sequence: 1, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
	if err := s.Put(locnet.Entry{Info: info, Relation: locnet.Neighbour, Role: locnet.Initiator, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || len(got) != 1 {
		t.Fatalf("Load = %v, %v; want one entry", got, err)
	}
	e := got[0]
	if e.Info.ID != k.ID() || e.Relation != locnet.Neighbour || e.Role != locnet.Initiator || !e.ExpiresAt.Equal(exp) {
		t.Errorf("Load = %+v, want the stored entry", e)
	}
	// A tampered entry is dropped on load, never trusted.
	id := k.ID()
	db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLocMap)
		v := append([]byte(nil), b.Get(id[:])...)
		v[len(v)-1] ^= 1
		return b.Put(id[:], v)
	})
	if got, _ := s.Load(); len(got) != 0 {
		t.Errorf("Load after tampering = %d entries, want 0", len(got))
	}
	if err := s.Delete(k.ID()); err != nil {
		t.Fatal(err)
	}
}
