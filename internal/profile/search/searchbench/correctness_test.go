package searchbench

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/iop-go/iop/internal/profile/search"
)

// TestIndexAgainstScan compares the index with the scan on random queries of
// every kind, edge cases included, on 50,000 profiles; then again after random
// updates (and the merges they trigger) applied to both.
func TestIndexAgainstScan(t *testing.T) {
	n, perKind := 50_000, 60
	if testing.Short() || raceEnabled {
		n, perKind = 10_000, 20
	}
	data := Generate(n, 7)
	ix := search.Build(data.Profiles)
	defer ix.Close()
	ctx := context.Background()
	kinds := append([]Kind{Special, Mixed}, Kinds...)

	check := func(t *testing.T, scan *Scan, qg *QueryGen, count int, max int) {
		for _, k := range kinds {
			c := count
			if k == Special || k == Mixed {
				c *= 3
			}
			for range c {
				q := qg.Next(k)
				q.Q.Max = max
				rows := scan.Search(&q.Q, max)
				res, err := ix.Search(ctx, q.Q)
				if err != nil {
					t.Fatalf("(%s) %s: %v", k, q.Desc, err)
				}
				if msg := Check(scan, &q.Q, rows, res, max); msg != "" {
					t.Errorf("(%s) %s: %s", k, q.Desc, msg)
				}
			}
		}
	}

	t.Run("built", func(t *testing.T) {
		check(t, NewScan(data.Profiles), NewQueryGen(data, 1, search.MaxResults), perKind, search.MaxResults)
	})
	t.Run("capped", func(t *testing.T) {
		check(t, NewScan(data.Profiles), NewQueryGen(data, 2, 100), perKind/3, 100)
	})

	// Updates: replace some profiles by others' content, delete some, add new
	// ones, drop a neighbour; mirror them in a plain slice.
	r := rand.New(rand.NewPCG(3, 3))
	live := make(map[[32]byte]int, n)
	ps := data.Profiles
	for i := range ps {
		live[ps[i].ID] = i
	}
	extra := Generate(n/5, 8).Profiles
	for i := range 3 * n / 10 {
		switch r.IntN(3) {
		case 0: // replace
			j := r.IntN(len(ps))
			p := extra[r.IntN(len(extra))]
			p.ID = ps[j].ID
			ps[j] = p
			live[p.ID] = j
			ix.Put(p)
		case 1: // delete
			j := r.IntN(len(ps))
			if _, ok := live[ps[j].ID]; ok {
				if !ix.Delete(ps[j].ID) {
					t.Fatalf("Delete of a live profile returned false")
				}
				delete(live, ps[j].ID)
			}
		default: // add
			p := extra[i%len(extra)]
			p.ID[0] ^= 0xA5
			p.ID[31] = byte(i)
			p.ID[30] = byte(i >> 8)
			p.ID[29] = byte(i >> 16)
			if _, ok := live[p.ID]; ok {
				continue
			}
			live[p.ID] = len(ps)
			ps = append(ps, p)
			ix.Put(p)
		}
	}
	removed := 0
	for id, i := range live {
		if ps[i].Source == 5 {
			delete(live, id)
			removed++
		}
	}
	if got := ix.DeleteSource(5); got != removed {
		t.Errorf("DeleteSource(5) = %d, want %d", got, removed)
	}
	var now []search.Profile
	for i := range ps {
		if j, ok := live[ps[i].ID]; ok && j == i {
			now = append(now, ps[i])
		}
	}
	if ix.Len() != len(now) {
		t.Fatalf("after updates Len() = %d, want %d", ix.Len(), len(now))
	}
	updated := &Data{Profiles: now, Cities: data.Cities, Types: data.Types}
	t.Run("updated", func(t *testing.T) {
		check(t, NewScan(now), NewQueryGen(updated, 4, search.MaxResults), perKind/2, search.MaxResults)
	})
	ix.Compact()
	t.Run("compacted", func(t *testing.T) {
		check(t, NewScan(now), NewQueryGen(updated, 5, search.MaxResults), perKind/3, search.MaxResults)
	})
}
