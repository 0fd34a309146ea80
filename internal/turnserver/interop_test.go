package turnserver_test

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/turnserver"
	"github.com/iop-go/iop/internal/turnserver/turnservertest"
)

// uclientTotals matches the summary uclient prints at the end of a run.
var uclientTotals = regexp.MustCompile(`start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n`)

// runTool runs a coturn test tool with a deadline and returns its combined
// output. Callers skip first when the tool is not installed.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not installed (apt-get install coturn): %w", name, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	return string(out), err
}

func TestCoturnClientInterop(t *testing.T) {
	if _, err := exec.LookPath("turnutils_uclient"); err != nil {
		t.Skipf("turnutils_uclient not installed (apt-get install coturn): %v", err)
	}
	t.Parallel() // mostly waiting for uclient's staggered sessions
	srv := turnservertest.Start(t, turnserver.Config{MaxAllocationsPerIdentity: -1})
	creds := srv.Grant(testID("uclient"), time.Now())
	port := strconv.Itoa(srv.Addr().Port)
	const n = 20
	tests := []struct {
		name     string
		flags    []string
		sessions int    // 2 per allocation pair, 4 with the RTCP allocations
		allowed  string // an error line the run may print
	}{
		{"channel data", []string{"-y", "-c"}, 2, ""},
		{"send and data indications", []string{"-y", "-c", "-s"}, 2, ""},
		{"rtcp pair", []string{"-y"}, 4, ""},
		{"dont fragment", []string{"-y", "-c", "-g"}, 2, ""},
		{"dont fragment rtcp send indications", []string{"-y", "-s", "-g"}, 4, ""},
		// -G may add requests for IPv6 peers, which an IPv4 allocation
		// refuses; the answer must carry its reason phrase.
		{"extra requests", []string{"-y", "-c", "-G"}, 2, "error 443 (Peer Address Family Mismatch)"},
	}
	// uclient staggers session starts over seconds, so run all at once
	// (t.Parallel would run only GOMAXPROCS of them at a time).
	type result struct {
		args []string
		out  string
		err  error
	}
	results := make([]chan result, len(tests))
	for i, tt := range tests {
		results[i] = make(chan result, 1)
		args := append(append([]string{}, tt.flags...),
			"-m", "2", "-n", strconv.Itoa(n), "-l", "120", "-z", "5",
			"-u", creds.Username, "-w", creds.Password, "-p", port, "127.0.0.1")
		go func() {
			out, err := runTool(t, "turnutils_uclient", args...)
			results[i] <- result{args, out, err}
		}()
	}
	for i, tt := range tests {
		r := <-results[i]
		t.Run(tt.name, func(t *testing.T) {
			args, out, err := r.args, r.out, r.err
			if err != nil {
				t.Fatalf("turnutils_uclient %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			m := uclientTotals.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("turnutils_uclient printed no totals:\n%s", out)
			}
			sent, _ := strconv.Atoi(m[1])
			recv, _ := strconv.Atoi(m[2])
			if want := tt.sessions * n; sent != want || recv != want {
				t.Errorf("turnutils_uclient sent %d, received %d messages; want %d each\n%s", sent, recv, want, out)
			}
			if !strings.Contains(out, "Total lost packets 0 (") {
				t.Errorf("turnutils_uclient lost packets:\n%s", out)
			}
			rest := out
			if tt.allowed != "" {
				rest = strings.ReplaceAll(out, tt.allowed, "")
			}
			if strings.Contains(rest, "error 4") || strings.Contains(rest, "error 5") {
				t.Errorf("turnutils_uclient got an error response:\n%s", out)
			}
		})
	}
}

func TestCoturnStunClient(t *testing.T) {
	if _, err := exec.LookPath("turnutils_stunclient"); err != nil {
		t.Skipf("turnutils_stunclient not installed (apt-get install coturn): %v", err)
	}
	srv := turnservertest.Start(t, turnserver.Config{})
	out, err := runTool(t, "turnutils_stunclient", "-p", strconv.Itoa(srv.Addr().Port), "127.0.0.1")
	if err != nil {
		t.Fatalf("turnutils_stunclient: %v\n%s", err, out)
	}
	if !strings.Contains(out, "UDP reflexive addr: 127.0.0.1:") {
		t.Errorf("turnutils_stunclient printed no reflexive address:\n%s", out)
	}
}
