package profileserver_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
)

// BenchmarkGetRelated2000 measures a client reading and verifying all the
// public edges of an identity that has the maximum of 2,000 (in pages
// under the frame size), over loopback. It reports the p50/p99 latency of
// one complete read and, as a baseline in the same run, of a ping.
func BenchmarkGetRelated2000(b *testing.B) {
	srv := profileservertest.Start(b, unlimited)
	issuer, recipient := newKey(b), newKey(b)
	c := srv.Customer(b, recipient, "person")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for i := range 2000 {
		sc := signCard(b, issuer, recipient, "work/employs", nil)
		if err := c.AddRelatedIdentity(ctx, sc, accept(b, recipient, sc, fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
	}
	reader := srv.Dial(b)
	readAll := func() int {
		n := 0
		opt := client.RelationOptions{}
		for {
			edges, more, err := reader.GetRelatedIdentities(ctx, recipient.ID(), opt)
			if err != nil {
				b.Fatal(err)
			}
			n += len(edges)
			opt.Skip += len(edges)
			if !more || len(edges) == 0 {
				return n
			}
		}
	}
	var reads, pings []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if n := readAll(); n != 2000 {
			b.Fatalf("read %d edges, want 2000", n)
		}
		reads = append(reads, time.Since(start))
		start = time.Now()
		if _, err := reader.Ping(ctx, nil); err != nil {
			b.Fatal(err)
		}
		pings = append(pings, time.Since(start))
	}
	q := func(d []time.Duration, f float64) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[min(len(d)-1, int(f*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(reads, 0.5), "p50-ms")
	b.ReportMetric(q(reads, 0.99), "p99-ms")
	b.ReportMetric(q(pings, 0.5), "ping-p50-ms")
}
