package search

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

// model is the reference: a map of profiles, searched by brute force.
type model map[[32]byte]Profile

func (m model) search(q Query) [][32]byte {
	var out [][32]byte
	for id, p := range m {
		if q.HostedOnly && p.Source != 0 {
			continue
		}
		if !q.Type.Match(p.Type) || !q.Name.Match(p.Name) {
			continue
		}
		if q.Lat != NoLocation {
			if !validLocation(p.Lat, p.Lon) || Distance(q.Lat, q.Lon, p.Lat, p.Lon) > float64(q.Radius) {
				continue
			}
		}
		if q.Extra != nil && !q.Extra.MatchString(p.Extra) {
			continue
		}
		out = append(out, id)
	}
	return sortIDs(out)
}

func sortIDs(ids [][32]byte) [][32]byte {
	slices.SortFunc(ids, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

func idOf(i int) [32]byte {
	var id [32]byte
	r := rand.New(rand.NewPCG(uint64(i), 7))
	for j := range id {
		id[j] = byte(r.UintN(256))
	}
	return id
}

var (
	testTypes = []string{"chat/user", "Taxi/Driver", "taxi/passenger", "shop/store", "x"}
	testNames = []string{"Anna Nováková", "Jiří Novák", "ANNA SMITH", "Bob", "Žofia Müller", "a*b", "Annabel Lee", "Ann"}
)

func randProfile(r *rand.Rand, i int) Profile {
	p := Profile{
		ID:     idOf(i),
		Source: uint32(r.IntN(4)),
		Type:   testTypes[r.IntN(len(testTypes))],
		Name:   testNames[r.IntN(len(testNames))],
		Extra:  fmt.Sprintf("age=%d;gender=%c", 18+r.IntN(60), "mfx"[r.IntN(3)]),
	}
	switch r.IntN(10) {
	case 0:
		p.Lat, p.Lon = NoLocation, NoLocation
	case 1: // around the antimeridian
		p.Lat, p.Lon = int32(r.IntN(2_000_000)-1_000_000), 180_000_000-int32(r.IntN(2_000_000))
		if r.IntN(2) == 0 {
			p.Lon = -p.Lon + 1
		}
	case 2: // near the north pole
		p.Lat, p.Lon = 90_000_000-int32(r.IntN(1_000_000)), int32(r.IntN(360_000_000)-179_999_999)
	default:
		p.Lat, p.Lon = int32(r.IntN(10_000_000)+45_000_000), int32(r.IntN(10_000_000)+10_000_000)
	}
	return p
}

func randQuery(r *rand.Rand) Query {
	q := Query{Lat: NoLocation, Lon: NoLocation, Max: MaxResults}
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	if r.IntN(2) == 0 {
		q.Type = MustParseWildcard(pick("taxi/*", "*user", "x", "CHAT/USER", "*a*", "", "*/*", "nope"))
	}
	if r.IntN(2) == 0 {
		q.Name = MustParseWildcard(pick("ann*", "*NOVÁK", "*ová*", "a*b", "bob", "*nn*", "*a*", "ž*", "*er", "*ller*", "*q*"))
	}
	if r.IntN(2) == 0 {
		q.Radius = uint32(pick2(r, 0, 1000, 100_000, 500_000, 3_000_000, 21_000_000))
		switch r.IntN(4) {
		case 0:
			q.Lat, q.Lon = 0, 180_000_000
		case 1:
			q.Lat, q.Lon = 90_000_000, 0
		case 2:
			q.Lat, q.Lon = -90_000_000, 0
		default:
			q.Lat, q.Lon = 50_000_000, 15_000_000
		}
	}
	if r.IntN(3) == 0 {
		q.Extra = regexp.MustCompile(pick("gender=f", `age=2\d`, `^age=1`, "x$"))
	}
	q.HostedOnly = r.IntN(5) == 0
	return q
}

func pick2(r *rand.Rand, xs ...int) int { return xs[r.IntN(len(xs))] }

func checkSearch(t *testing.T, ix *Index, m model, q Query) {
	t.Helper()
	res, err := ix.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v) error %v", q, err)
	}
	got := sortIDs(slices.Clone(res.IDs))
	want := m.search(q)
	if !slices.Equal(got, want) || res.Total != len(want) {
		t.Fatalf("Search(type %q name %q loc %d,%d r %d extra %v hosted %v) = %d results, want %d",
			q.Type, q.Name, q.Lat, q.Lon, q.Radius, q.Extra, q.HostedOnly, len(got), len(want))
	}
}

func TestIndexMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := model{}
	var ps []Profile
	for i := range 3000 {
		p := randProfile(r, i)
		ps = append(ps, p)
		m[p.ID] = p
	}
	ix := Build(ps)
	defer ix.Close()
	ix.deltaMax = 300
	for round := range 8 {
		for range 60 {
			checkSearch(t, ix, m, randQuery(r))
		}
		if ix.Len() != len(m) {
			t.Fatalf("round %d: Len() = %d, want %d", round, ix.Len(), len(m))
		}
		// Mutate: add, replace, delete, drop a source.
		for range 200 {
			switch k := r.IntN(10); {
			case k < 4:
				p := randProfile(r, 3000+r.IntN(3000))
				ix.Put(p)
				m[p.ID] = p
			case k < 7:
				p := randProfile(r, r.IntN(3000))
				ix.Put(p)
				m[p.ID] = p
			default:
				id := idOf(r.IntN(6000))
				_, had := m[id]
				if got := ix.Delete(id); got != had {
					t.Fatalf("Delete = %v, want %v", got, had)
				}
				delete(m, id)
			}
		}
		if round == 5 {
			src := uint32(r.IntN(4))
			want := 0
			for id, p := range m {
				if p.Source == src {
					delete(m, id)
					want++
				}
			}
			if got := ix.DeleteSource(src); got != want {
				t.Fatalf("DeleteSource(%d) = %d, want %d", src, got, want)
			}
		}
		if round%3 == 2 {
			ix.Compact()
		}
	}
}

func TestPutReplaceDelete(t *testing.T) {
	ctx := context.Background()
	ix := New()
	defer ix.Close()
	p := Profile{ID: idOf(1), Type: "chat/user", Name: "Anna", Lat: 50_000_000, Lon: 14_000_000, Extra: "a=1"}
	ix.Put(p)
	find := func(q Query) int {
		t.Helper()
		res, err := ix.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return res.Total
	}
	all := Query{Lat: NoLocation}
	byName := func(n string) Query { return Query{Lat: NoLocation, Name: MustParseWildcard(n)} }
	if n := find(byName("anna")); n != 1 {
		t.Fatalf("after Put: %d results for anna, want 1", n)
	}
	p.Name = "Bob"
	ix.Put(p) // replace
	if n, l := find(byName("anna")), ix.Len(); n != 0 || l != 1 {
		t.Fatalf("after replace: anna %d results, Len %d; want 0, 1", n, l)
	}
	if n := find(byName("bob")); n != 1 {
		t.Fatalf("after replace: bob %d results, want 1", n)
	}
	ix.Compact()
	if n := find(all); n != 1 {
		t.Fatalf("after Compact: %d results, want 1", n)
	}
	p.Name = "Carl"
	ix.Put(p) // replace a base profile
	if n, m := find(byName("bob")), find(byName("carl")); n != 0 || m != 1 {
		t.Fatalf("after replacing a base profile: bob %d, carl %d; want 0, 1", n, m)
	}
	if !ix.Delete(p.ID) || ix.Delete(p.ID) {
		t.Fatalf("Delete twice did not return true, false")
	}
	if n, l := find(all), ix.Len(); n != 0 || l != 0 {
		t.Fatalf("after Delete: %d results, Len %d; want 0, 0", n, l)
	}
}

func TestBuildDuplicates(t *testing.T) {
	ps := []Profile{
		{ID: idOf(1), Name: "first", Lat: NoLocation, Lon: NoLocation},
		{ID: idOf(2), Name: "other", Lat: NoLocation, Lon: NoLocation},
		{ID: idOf(1), Name: "second", Lat: NoLocation, Lon: NoLocation},
	}
	ix := Build(ps)
	defer ix.Close()
	if ix.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", ix.Len())
	}
	res, _ := ix.Search(context.Background(), Query{Lat: NoLocation, Name: MustParseWildcard("first")})
	if res.Total != 0 {
		t.Errorf("the overwritten duplicate is found")
	}
	res, _ = ix.Search(context.Background(), Query{Lat: NoLocation, Name: MustParseWildcard("second")})
	if res.Total != 1 {
		t.Errorf("the last duplicate is not found")
	}
	if !ix.Delete(idOf(1)) || ix.Len() != 1 {
		t.Errorf("Delete of a duplicated ID failed")
	}
}

func TestSearchCapAndErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var ps []Profile
	for i := range 500 {
		ps = append(ps, randProfile(r, i))
	}
	ix := Build(ps)
	defer ix.Close()
	for i := range 10 {
		ix.Put(randProfile(r, 1000+i))
	}
	ctx := context.Background()
	res, err := ix.Search(ctx, Query{Lat: NoLocation, Max: 7})
	if err != nil || res.Total != 7 || len(res.IDs) != 7 {
		t.Errorf("Search(Max 7) = %d, %v; want 7 results", res.Total, err)
	}
	for _, q := range []Query{
		{Lat: NoLocation, Max: -1},
		{Lat: NoLocation, Max: MaxResults + 1},
		{Lat: 90_000_001, Lon: 0},
		{Lat: 0, Lon: 180_000_001},
	} {
		if _, err := ix.Search(ctx, q); err == nil {
			t.Errorf("Search(%+v) succeeded, want error", q)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	big := make([]Profile, 20000)
	for i := range big {
		big[i] = Profile{ID: idOf(i), Lat: NoLocation, Lon: NoLocation, Extra: "x"}
	}
	bix := Build(big)
	defer bix.Close()
	if _, err := bix.Search(cctx, Query{Lat: NoLocation, Extra: regexp.MustCompile("y")}); err == nil {
		t.Errorf("Search with a cancelled context succeeded")
	}
}

func TestRegexBudget(t *testing.T) {
	ps := make([]Profile, 30000)
	for i := range ps {
		ps[i] = Profile{ID: idOf(i), Lat: NoLocation, Lon: NoLocation, Extra: fmt.Sprintf("k=%0150d", i)}
	}
	ix := Build(ps)
	defer ix.Close()
	re := MustCompileRegexForTest(t, `(\d+\d+)+[xy]`)
	start := time.Now()
	res, err := ix.Search(context.Background(), Query{Lat: NoLocation, Extra: re, RegexBudget: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut {
		t.Errorf("Search with a 5 ms budget did not time out (took %v)", time.Since(start))
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Search with a 5 ms budget took %v", d)
	}
}

func MustCompileRegexForTest(t *testing.T, s string) *regexp.Regexp {
	t.Helper()
	re, err := CompileRegex(s)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

// TestConcurrentSearchUpdate runs searches while a writer adds, replaces and
// deletes profiles and merges run. Each profile has a twin with the same name
// key; a search must always see each live ID at most once, and the generation
// invariant (every ID is always present in some version) must hold.
func TestConcurrentSearchUpdate(t *testing.T) {
	const n = 2000
	var ps []Profile
	for i := range n {
		ps = append(ps, Profile{ID: idOf(i), Type: "t", Name: fmt.Sprintf("n%d", i%10), Lat: 1_000_000, Lon: 1_000_000, Extra: "v=0"})
	}
	ix := Build(ps)
	defer ix.Close()
	ix.deltaMax = 500
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for g := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for ctx.Err() == nil {
				q := Query{Lat: NoLocation}
				if r.IntN(2) == 0 {
					q.Lat, q.Lon, q.Radius = 1_000_000, 1_000_000, 1000
				}
				if r.IntN(2) == 0 {
					q.Name = MustParseWildcard("n*")
				}
				res, err := ix.Search(context.Background(), q)
				if err != nil {
					errc <- err
					return
				}
				// Replaced profiles are seen exactly once: the first n IDs are never deleted.
				seen := map[[32]byte]bool{}
				for _, id := range res.IDs {
					if seen[id] {
						errc <- fmt.Errorf("duplicate result")
						return
					}
					seen[id] = true
				}
				for i := range n {
					if !seen[idOf(i)] {
						errc <- fmt.Errorf("profile %d missing (replaced concurrently)", i)
						return
					}
				}
			}
		})
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 4000 {
		k := r.IntN(n)
		ix.Put(Profile{ID: idOf(k), Type: "t", Name: fmt.Sprintf("n%d", k%10), Lat: 1_000_000, Lon: 1_000_000, Extra: fmt.Sprintf("v=%d", i)})
		extra := idOf(n + r.IntN(500))
		if r.IntN(2) == 0 {
			ix.Put(Profile{ID: extra, Lat: NoLocation, Lon: NoLocation})
		} else {
			ix.Delete(extra)
		}
	}
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}
