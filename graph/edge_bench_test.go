package graph

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/iop-go/iop/internal/procstat"
)

// benchProofs returns n distinct proofs of card plus acceptance (two
// signatures each) with two properties, as stored for public edges.
func benchProofs(b *testing.B, n int) [][]byte {
	b.Helper()
	p := newEdgeParties(b)
	proofs := make([][]byte, n)
	for i := range proofs {
		sc, acc := p.edge(b, "work/employs", map[string]string{"role": "engineer", "team": fmt.Sprint(i)})
		blob, err := EncodeProof(&EdgeProof{Card: sc, Acceptance: acc})
		if err != nil {
			b.Fatal(err)
		}
		proofs[i] = blob
	}
	return proofs
}

// BenchmarkVerifyEdges measures the verification throughput of edge proofs
// with VerifyProofs: each operation is one edge (decode, card ID, issuer
// and recipient signatures, state). The goal is 10,000 edges/s on 2 cores.
// cpu-µs/edge is the process's CPU time per edge, which other load on the
// machine does not inflate as it does the wall-clock edges/s.
func BenchmarkVerifyEdges(b *testing.B) {
	pool := benchProofs(b, 256)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			batch := make([][]byte, b.N)
			for i := range batch {
				batch[i] = pool[i%len(pool)]
			}
			b.ReportAllocs()
			cpu0, cpuErr := procstat.CPUTime()
			b.ResetTimer()
			_, errs := VerifyProofs(batch, edgeT, workers)
			b.StopTimer()
			if cpu1, err := procstat.CPUTime(); cpuErr == nil && err == nil {
				// CPU time per edge is what the throughput would be per
				// core on an otherwise idle machine.
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/edge")
			}
			for i, err := range errs {
				if err != nil {
					b.Fatalf("proof %d: %v", i, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "edges/s")
		})
	}
}

// BenchmarkEd25519Verify is the floor of BenchmarkVerifyEdges: one plain
// Ed25519ctx verification, of which each edge needs two.
func BenchmarkEd25519Verify(b *testing.B) {
	k := newKey(b)
	msg := make([]byte, 32)
	sig := k.Sign(DomainEdgeCard, msg)
	pub := k.Public()
	opts := &ed25519.Options{Context: string(DomainEdgeCard)}
	for b.Loop() {
		if err := ed25519.VerifyWithOptions(pub, msg, sig, opts); err != nil {
			b.Fatal(err)
		}
	}
}
