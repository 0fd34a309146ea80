package natbench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/netlab"
)

func TestMain(m *testing.M) {
	MaybeRunRole()
	os.Exit(m.Run())
}

// testOptions are the options every test starts from: this test binary
// plays the roles.
func testOptions(t *testing.T) Options {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{Exe: exe, Progress: testWriter{t}}
}

// testWriter logs each progress line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func logFailure(t *testing.T, rep *Report) {
	t.Helper()
	for _, r := range rep.Results {
		if !r.OK && r.Log != "" {
			t.Logf("stderr of the caller of %s run %d:\n%s", r.Pair, r.Run, r.Log)
		}
	}
	for name, log := range rep.Logs {
		t.Logf("stderr of %s:\n%s", name, log)
	}
}

// expectDirect reports whether a direct path must be found for p: whenever
// one side is public (its host candidate is reachable) or both are cones
// (hole punching works).
func expectDirect(p Pair) bool {
	return p.A == netlab.Public || p.B == netlab.Public || (p.A == netlab.Cone && p.B == netlab.Cone)
}

// TestNATMatrix calls once for every ordered pair of NAT kinds, without
// added delay: each call must connect, echo 1 MiB intact and end on the
// path its NAT kinds allow.
func TestNATMatrix(t *testing.T) {
	netlab.Require(t)
	opt := testOptions(t)
	opt.CallTimeout = 30 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, opt)
	if err != nil {
		if rep != nil {
			logFailure(t, rep)
		}
		t.Fatal(err)
	}
	t.Logf("matrix took %v", time.Since(start).Round(time.Millisecond))
	if len(rep.Results) != len(AllPairs()) {
		t.Fatalf("Run made %d calls, want %d", len(rep.Results), len(AllPairs()))
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-22s %-7s %-8s %-20s %11s %11s %s\n", "A → B", "ok", "path", "first echo on", "echo ms", "final ms", "bytes relay/final")
	for _, r := range rep.Results {
		fmt.Fprintf(&table, "%-22s %-7v %-8s %-20s %11.1f %11.1f %d/%d\n", r.Pair, r.OK, r.Path, r.FirstPath, ms(r.FirstEcho), ms(r.FinalAfterDial), r.RelayBytes, r.FinalBytes)
	}
	t.Log(table.String())
	failed := false
	for _, r := range rep.Results {
		if !r.OK {
			failed = true
			t.Errorf("%s: %s", r.Pair, r.Err)
			continue
		}
		if r.Sent < 1<<20 {
			t.Errorf("%s: %d bytes verified, want at least 1 MiB", r.Pair, r.Sent)
		}
		switch {
		case expectDirect(r.Pair):
			if r.Path != "direct" {
				t.Errorf("%s: final path = %s, want direct", r.Pair, r.Path)
			}
		case r.Path == "direct":
			t.Logf("%s: a direct path was found (TURN expected)", r.Pair)
		case r.Path != "turn":
			t.Errorf("%s: final path = %s, want turn (or direct)", r.Pair, r.Path)
		}
		if r.CalleePath != r.Path {
			t.Logf("%s: the callee ended on %s, the caller on %s", r.Pair, r.CalleePath, r.Path)
		}
		if r.FirstPath == relayPath {
			if r.FirstEcho > r.FinalAfterDial {
				t.Errorf("%s: first echo after %v on the relay, but the final path was known after %v", r.Pair, r.FirstEcho, r.FinalAfterDial)
			}
		} else {
			t.Logf("%s: the path was final (%s) before the first byte's echo", r.Pair, r.FirstPath)
		}
	}
	if failed {
		logFailure(t, rep)
	}
}

// TestNATBenchmark runs the benchmark (the figure) when
// IOP_NATBENCH=1.
func TestNATBenchmark(t *testing.T) {
	if os.Getenv("IOP_NATBENCH") != "1" {
		t.Skip("benchmark: set IOP_NATBENCH=1 to run it (several minutes, needs root)")
	}
	netlab.Require(t)
	opt := testOptions(t)
	opt.Delay = 20 * time.Millisecond
	opt.Runs = 5
	if s := os.Getenv("IOP_NATBENCH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("IOP_NATBENCH_RUNS=%q: want a positive number", s)
		}
		opt.Runs = n
	}
	if s := os.Getenv("IOP_NATBENCH_DELAY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			t.Fatalf("IOP_NATBENCH_DELAY=%q: want a duration", s)
		}
		opt.Delay = d
	}
	rep, err := Run(t.Context(), opt)
	if err != nil {
		if rep != nil {
			logFailure(t, rep)
		}
		t.Fatal(err)
	}
	t.Log("\n" + rep.Markdown())
	for _, r := range rep.Results {
		if !r.OK {
			t.Errorf("%s run %d: %s", r.Pair, r.Run, r.Err)
		}
	}
	if t.Failed() {
		logFailure(t, rep)
	}
}
