package can

import (
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can/canpb"
)

// BenchmarkResolve20 resolves identity pointers through a 20-node DHT on
// loopback, each lookup from a random node, and reports p50/p99 latency.
func BenchmarkResolve20(b *testing.B) {
	nodes := startNetworkB(b, 20)
	ctx := context.Background()
	const ids = 50
	var users []identity.ID
	for i := range ids {
		u, _ := identity.GenerateKey(nil)
		pub := nodes[i%len(nodes)]
		srv := pub.cfg.Key.ID()
		c, s, err := SignClaim(u, &canpb.IdentityClaim{ServerId: srv[:], State: canpb.ClaimState_HOSTED, Sequence: 1})
		if err != nil {
			b.Fatal(err)
		}
		if err := pub.PublishPointer(ctx, c, s); err != nil {
			b.Fatal(err)
		}
		users = append(users, u.ID())
	}
	var lat []time.Duration
	for b.Loop() {
		u := users[rand.IntN(len(users))]
		n := nodes[rand.IntN(len(nodes))]
		start := time.Now()
		p, _, err := n.Resolve(ctx, u)
		if err != nil || p.Identity != u {
			b.Fatalf("Resolve = %v, %v", p, err)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms/p99")
}
