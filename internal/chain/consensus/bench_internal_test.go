package consensus

import (
	"fmt"
	"testing"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/types"
)

// BenchmarkVerifySigs verifies 2000 input signatures (one per transaction,
// as in a block of 2000 single-input transactions) on 1 and 2 workers.
func BenchmarkVerifySigs(b *testing.B) {
	k, err := identity.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	jobs := make([]sigJob, 2000)
	for i := range jobs {
		msg := []byte(fmt.Sprintf("transaction %d", i))
		jobs[i] = sigJob{pub: k.Public(), domain: types.DomainTx, msg: msg, sig: k.Sign(types.DomainTx, msg), tx: i}
	}
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := verifySigs(jobs, w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(jobs)*b.N)/b.Elapsed().Seconds(), "sigs/s")
		})
	}
}
