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

// BenchmarkRelations2000 reads the relation pages of an identity with
// 2,000 edges (proofs of 600 bytes, the size of a card with a few
// properties and its acceptance) through a 5-node DHT on loopback, from a
// node other than the publisher, and reports p50/p99 latency and the pages
// read. Proof verification is not included (see graph's
// BenchmarkVerifyEdges); a ping in the same network is the baseline.
func BenchmarkRelations2000(b *testing.B) {
	nodes := startNetworkB(b, 5)
	ctx := context.Background()
	u := key(b)
	pub := nodes[0]
	c, s := claim(b, u, pub.cfg.Key.ID(), canpb.ClaimState_HOSTED, 1)
	proofs := make([][]byte, 2000)
	for i := range proofs {
		proofs[i] = make([]byte, 600)
		for j := range proofs[i] {
			proofs[i][j] = byte(rand.Uint32())
		}
	}
	if err := pub.PublishRelations(ctx, c, s, proofs); err != nil {
		b.Fatal(err)
	}
	reader := nodes[3]
	var lat []time.Duration
	pages := 0
	for b.Loop() {
		start := time.Now()
		set, err := reader.Relations(ctx, u.ID())
		if err != nil || len(set.Proofs) != len(proofs) || len(set.Missing) > 0 {
			b.Fatalf("Relations = %d proofs, missing %v, %v", len(set.Proofs), set.Missing, err)
		}
		lat = append(lat, time.Since(start))
		pages = set.Pages
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms/p99")
	b.ReportMetric(float64(pages), "pages")
	var ping []time.Duration
	for range 20 {
		start := time.Now()
		if err := reader.DHT().Ping(ctx, pub.cfg.Host.ID()); err != nil {
			b.Fatal(err)
		}
		ping = append(ping, time.Since(start))
	}
	sort.Slice(ping, func(i, j int) bool { return ping[i] < ping[j] })
	b.ReportMetric(float64(ping[len(ping)/2].Microseconds())/1000, "ms/ping")
}
