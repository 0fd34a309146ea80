package locnet_test

import (
	"cmp"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/internal/locnet/locnettest"
)

func TestDebugInDegree(t *testing.T) {
	n := 2000
	if s := os.Getenv("IOP_LOCNET_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	locs := locnettest.World(rand.New(rand.NewPCG(1, 2)), n, 0.1)
	in := make([]int, n)
	out := make([]map[int]bool, n)
	for i := range locs {
		type nd struct {
			j int
			d float64
		}
		var ds []nd
		for j := range locs {
			if j != i {
				ds = append(ds, nd{j, graph.Distance(locs[i], locs[j])})
			}
		}
		slices.SortFunc(ds, func(a, b nd) int { return cmp.Compare(a.d, b.d) })
		out[i] = map[int]bool{}
		for _, x := range ds[:50] {
			in[x.j]++
			out[i][x.j] = true
		}
	}
	union := make([]int, n)
	for i := range locs {
		union[i] = len(out[i])
		for j := range locs {
			if out[j][i] && !out[i][j] {
				union[i]++
			}
		}
	}
	slices.Sort(in)
	slices.Sort(union)
	t.Logf("in-degree: median %d p90 %d p99 %d max %d", in[n/2], in[n*9/10], in[n*99/100], in[n-1])
	t.Logf("union: median %d p90 %d p99 %d max %d", union[n/2], union[n*9/10], union[n*99/100], union[n-1])
}
