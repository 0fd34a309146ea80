package natbench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/netlab"
)

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got, want := quantiles(ds), (Quantiles{10 * time.Millisecond, 19 * time.Millisecond}); got != want {
		t.Errorf("quantiles(1..20 ms) = %v, want %v", got, want)
	}
	if got := quantiles(nil); got != (Quantiles{}) {
		t.Errorf("quantiles(nil) = %v, want zero", got)
	}
	if got, want := quantiles([]time.Duration{7}), (Quantiles{7, 7}); got != want {
		t.Errorf("quantiles([7]) = %v, want %v", got, want)
	}
}

// TestReportMarkdown checks the summary of a made-up run: failures count
// against the pair, the goals are judged on the successful calls.
func TestReportMarkdown(t *testing.T) {
	cc := Pair{netlab.Cone, netlab.Cone}
	ss := Pair{netlab.Symmetric, netlab.Symmetric}
	ms := time.Millisecond
	ok := func(p Pair, path string, first, final time.Duration) Result {
		return Result{Pair: p, OK: true, Path: path, FirstPath: relayPath, RTTA: 40 * ms, RTTB: 40 * ms,
			Accepted: 100 * ms, Secure: 200 * ms, FirstByte: first, Final: final, RelayBytes: 1 << 20, FinalBytes: 1 << 16}
	}
	rep := &Report{Delay: 20 * ms, Runs: 3, Size: 1 << 20, Pairs: []Pair{cc, ss}, Results: []Result{
		ok(cc, "direct", 170*ms, 1400*ms),
		ok(cc, "direct", 180*ms, 1450*ms),
		{Pair: cc, Err: "caller: dial: refused", RTTA: 40 * ms, RTTB: 40 * ms},
		ok(ss, "turn", 300*ms, 2500*ms),
	}}
	st := rep.Stats()
	if len(st) != 2 {
		t.Fatalf("Stats() has %d pairs, want 2", len(st))
	}
	c := st[0]
	if c.OK != 2 || c.Total != 3 || c.Paths["direct"] != 2 || c.Spanned != 2 || c.RelayFirst != 2 {
		t.Errorf("cone → cone stats = %+v, want 2 of 3 ok, both direct, spanned and relay first", c)
	}
	if c.RTT != 80*ms || c.FirstByte.P50 != 170*ms || c.FirstByte.P95 != 180*ms || c.Secure.P50 != 100*ms {
		t.Errorf("cone → cone times = RTT %v, first byte %v, secure %v", c.RTT, c.FirstByte, c.Secure)
	}
	md := rep.Markdown()
	for _, want := range []string{
		"| cone → cone | 2/3 | direct 2 | 40.0 / 40.0 | 100 | 170 / 180 | 2.1 / 4.2 | 1400 / 1450 |",
		"✓ direct p95 ≤ 1.5 s",
		"| symmetric → symmetric | 1/1 | turn 1 |",
		"✗ 1st byte p95 ≤ 3 RTT", // 300 ms > 3 × 80 ms
		"- cone → cone run 0: caller: dial: refused",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown() lacks %q:\n%s", want, md)
		}
	}
}

func TestRunRoleUnknown(t *testing.T) {
	if err := RunRole(context.Background(), "router", "", nil); err == nil || !strings.Contains(err.Error(), "unknown role") {
		t.Errorf("RunRole(router) = %v, want an unknown role error", err)
	}
	if _, err := Run(context.Background(), Options{}); err == nil {
		t.Error("Run without Exe succeeded")
	}
}
