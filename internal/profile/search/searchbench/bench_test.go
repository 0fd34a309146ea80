package searchbench

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/iop-go/iop/internal/profile/search"
)

// benchN is the data size of the go test benchmarks: 200,000 profiles unless
// IOP_SEARCHBENCH_N says otherwise (2200000 for the real size).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("IOP_SEARCHBENCH_N")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

var bench struct {
	once sync.Once
	data *Data
	ix   *search.Index
	scan *Scan
}

func benchSetup(b *testing.B) {
	bench.once.Do(func() {
		bench.data = Generate(benchN(), 1)
		bench.ix = search.Build(bench.data.Profiles)
		bench.scan = NewScan(bench.data.Profiles)
	})
}

func benchQueries(k Kind) []search.Query {
	qg := NewQueryGen(bench.data, 2, search.MaxResults)
	qs := make([]search.Query, 200)
	for i := range qs {
		qs[i] = qg.Next(k).Q
	}
	return qs
}

// BenchmarkSearch measures the index per query kind.
func BenchmarkSearch(b *testing.B) {
	benchSetup(b)
	ctx := context.Background()
	for _, k := range Kinds {
		b.Run(string(k), func(b *testing.B) {
			qs := benchQueries(k)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := bench.ix.Search(ctx, qs[i%len(qs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkScan measures the linear-scan baseline per query kind.
func BenchmarkScan(b *testing.B) {
	benchSetup(b)
	for _, k := range Kinds {
		b.Run(string(k), func(b *testing.B) {
			qs := benchQueries(k)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bench.scan.Search(&qs[i%len(qs)], search.MaxResults)
				i++
			}
		})
	}
}

// BenchmarkBuild measures a bulk build.
func BenchmarkBuild(b *testing.B) {
	benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		search.Build(bench.data.Profiles).Close()
	}
}
