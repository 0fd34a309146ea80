package turnbench_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/iop-go/iop/internal/turnserver/turnbench"
)

func TestMain(m *testing.M) {
	turnbench.MaybeServe() // the benchmark's server processes
	os.Exit(m.Run())
}

// TestCompareCoturn runs the benchmark when IOP_TURNBENCH=1, for example
//
//	IOP_TURNBENCH=1 go test -run TestCompareCoturn -v -timeout 30m ./internal/turnserver/turnbench/
//
// IOP_TURNBENCH_REPEATS, _ALLOCATIONS, _MESSAGES, _LENGTH and _INTERVAL
// override the defaults; IOP_TURNBENCH_PION=1 adds stock pion and
// IOP_TURNBENCH_GOGC sets our server's GOGC.
func TestCompareCoturn(t *testing.T) {
	if os.Getenv("IOP_TURNBENCH") != "1" {
		t.Skip("set IOP_TURNBENCH=1 to compare with coturn (needs coturn installed; takes about a minute)")
	}
	env := func(name string) int {
		v := os.Getenv("IOP_TURNBENCH_" + name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("IOP_TURNBENCH_%s=%q: %v", name, v, err)
		}
		return n
	}
	opts := turnbench.Options{
		Repeats:     env("REPEATS"),
		Allocations: env("ALLOCATIONS"),
		Messages:    env("MESSAGES"),
		Length:      env("LENGTH"),
		IntervalMS:  env("INTERVAL"),
		Pion:        os.Getenv("IOP_TURNBENCH_PION") == "1",
		GOGC:        os.Getenv("IOP_TURNBENCH_GOGC"),
	}
	rep, err := turnbench.Run(t.Context(), opts, t.Output())
	if err != nil {
		t.Fatalf("turnbench.Run: %v", err)
	}
	t.Logf("\n%s", rep.Markdown())
	for _, r := range rep.Results {
		if r.Received == 0 {
			t.Errorf("%s repeat %d delivered no messages", r.Server, r.Repeat)
		}
	}
}
