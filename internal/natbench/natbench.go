package natbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/iop-go/iop/internal/netlab"
)

// Pair is one ordered NAT pair: A calls, B answers.
type Pair struct {
	A, B netlab.NAT
}

func (p Pair) String() string { return p.A.String() + " → " + p.B.String() }

// AllPairs returns the 9 ordered pairs of public, cone and symmetric.
func AllPairs() []Pair {
	kinds := []netlab.NAT{netlab.Public, netlab.Cone, netlab.Symmetric}
	var out []Pair
	for _, a := range kinds {
		for _, b := range kinds {
			out = append(out, Pair{a, b})
		}
	}
	return out
}

// Options configure a benchmark run.
type Options struct {
	// Exe is the program that plays the node, callee and caller roles: a
	// binary that calls MaybeRunRole first thing (a test binary of this
	// package, or iop). Required.
	Exe string
	// Args are passed to Exe; the roles themselves read only the
	// environment.
	Args []string
	// Env is added to the environment of every role process (KEY=value).
	Env []string
	// Delay is the one-way delay added on every access link (see netlab).
	Delay time.Duration
	// Runs is the number of calls per pair; default 1.
	Runs int
	// Pairs are the NAT pairs to measure; default AllPairs.
	Pairs []Pair
	// Size is how many bytes each call sends through the echo right after
	// the first byte; default 1 MiB.
	Size int
	// CallTimeout bounds one call, from the caller's start to its result;
	// default 60 s.
	CallTimeout time.Duration
	// Progress, when set, gets one line per call.
	Progress io.Writer
}

// Result is the outcome of one call.
type Result struct {
	Pair Pair `json:"pair"`
	Run  int  `json:"run"`
	OK   bool `json:"ok"` // connected, every byte echoed intact, final path known
	Err  string

	RTTA, RTTB time.Duration // device A's and B's round trip to the node
	// Dial phases, from the start of DialService.
	Resolved, Accepted, Joined, Secure time.Duration
	// FirstByte is from the caller learning that the call was accepted to
	// the callee reading the first application byte (one clock: all
	// processes run on this machine).
	FirstByte time.Duration
	// FirstEcho is from DialService returning to the first byte's echo
	// read back by the caller.
	FirstEcho time.Duration
	// Final is from the call's acceptance until the caller's writes run on
	// the final path; FinalAfterDial the same from DialService returning.
	Final, FinalAfterDial time.Duration
	FirstPath             string // the caller's path at the first echo
	Path                  string // the caller's final path
	CalleePath            string // the callee's path when the call ended
	Sent                  int64  // bytes sent and verified through the echo
	RelayBytes            int64  // of Sent, written while on the relay
	FinalBytes            int64  // of Sent, written on the final path
	Xfer                  time.Duration
	Log                   string `json:",omitempty"` // the caller's stderr when it failed
}

// Spanned reports whether the echoed bytes crossed the migration: some
// were written on the relay and some on a direct or TURN path.
func (r Result) Spanned() bool {
	return r.RelayBytes > 0 && r.FinalBytes > 0 && r.Path != "" && r.Path != relayPath
}

const relayPath = "relay:profile-server"

// Lab addresses: the node runs in the public namespace.
var (
	nodeListen = []string{"/ip4/" + netlab.ServerIP.String() + "/tcp/4001", "/ip4/" + netlab.ServerIP.String() + "/udp/4001/quic-v1"}
	turnAddr   = netlab.ServerIP.String() + ":3478"
)

// Run builds a NAT lab (it needs root, see netlab.Available), starts a
// node in its public segment and one callee per B NAT kind, then makes
// opt.Runs calls for every pair, one at a time, each from a fresh caller
// process on the A device. A call that fails is recorded in the report;
// Run itself fails only when the lab or the node and callees cannot be set
// up, or when ctx ends; the report then holds the calls made so far.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Exe == "" {
		return nil, errors.New("natbench: Options.Exe is required")
	}
	if opt.Runs <= 0 {
		opt.Runs = 1
	}
	if len(opt.Pairs) == 0 {
		opt.Pairs = AllPairs()
	}
	if opt.Size <= 0 {
		opt.Size = 1 << 20
	}
	if opt.CallTimeout <= 0 {
		opt.CallTimeout = 60 * time.Second
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if err := netlab.Available(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir, err := os.MkdirTemp("", "natbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	lab, err := netlab.New(ctx, netlab.Config{Delay: opt.Delay})
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	b := &bench{opt: opt, lab: lab, dir: dir, rep: &Report{Delay: opt.Delay, Runs: opt.Runs, Size: opt.Size, Pairs: opt.Pairs}}
	start := time.Now()
	err = b.run(ctx)
	b.rep.Elapsed = time.Since(start)
	if b.failed() {
		b.rep.Logs = b.logs()
	}
	if cerr := lab.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("natbench: close the lab: %w", cerr)
	}
	if err != nil {
		return b.rep, err
	}
	return b.rep, nil
}

// bench is one run of the benchmark.
type bench struct {
	opt     Options
	lab     *netlab.Lab
	dir     string
	rep     *Report
	node    *proc
	nodeMA  []string
	callees map[netlab.NAT]*callee
	devA    map[netlab.NAT]*netlab.Device
	procs   []*proc
}

type callee struct {
	p   *proc
	dev *netlab.Device
	id  string
	rtt time.Duration
}

func short(n netlab.NAT) string {
	return map[netlab.NAT]string{netlab.Public: "pub", netlab.Cone: "cone", netlab.Symmetric: "sym"}[n]
}

func (b *bench) run(ctx context.Context) error {
	fmt.Fprintf(b.opt.Progress, "natbench: lab %s, delay %v, %d run(s) of %d pair(s)\n", b.lab.Name(), b.opt.Delay, b.opt.Runs, len(b.opt.Pairs))
	b.devA = make(map[netlab.NAT]*netlab.Device)
	b.callees = make(map[netlab.NAT]*callee)
	for _, p := range b.opt.Pairs {
		if b.devA[p.A] == nil {
			d, err := b.lab.AddDevice("a"+short(p.A), p.A)
			if err != nil {
				return err
			}
			b.devA[p.A] = d
		}
		if b.callees[p.B] == nil {
			d, err := b.lab.AddDevice("b"+short(p.B), p.B)
			if err != nil {
				return err
			}
			b.callees[p.B] = &callee{dev: d}
		}
	}

	var err error
	b.node, err = b.start(ctx, b.lab.Public(), "node", "node", params{
		Dir: filepath.Join(b.dir, "node"), Listen: nodeListen, TURN: turnAddr,
	})
	if err != nil {
		return err
	}
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	defer scancel()
	m, err := b.node.next(sctx)
	if err != nil {
		return fmt.Errorf("natbench: start the node: %w", err)
	}
	b.nodeMA = m.Addrs

	// The callees check in one after the other's start, concurrently.
	for kind, c := range b.callees {
		c.p, err = b.start(ctx, c.dev.Host, "callee-"+short(kind), "callee", params{
			Dir: filepath.Join(b.dir, "callee-"+short(kind)), Node: b.nodeMA, TURN: turnAddr, Timeout: 60 * time.Second,
		})
		if err != nil {
			return err
		}
	}
	for kind, c := range b.callees {
		m, err := c.p.next(sctx)
		if err != nil {
			return fmt.Errorf("natbench: start the %s callee: %w", kind, err)
		}
		c.id, c.rtt = m.ID, m.RTT
	}
	fmt.Fprintf(b.opt.Progress, "natbench: node and %d callee(s) ready after %v\n", len(b.callees), time.Since(b.node.started).Round(time.Millisecond))

	for run := 1; run <= b.opt.Runs; run++ {
		for _, pair := range b.opt.Pairs {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := b.call(ctx, pair, run)
			b.rep.Results = append(b.rep.Results, r)
			fmt.Fprintln(b.opt.Progress, r.line())
		}
	}
	return nil
}

// call makes one call of pair from a new caller process.
func (b *bench) call(ctx context.Context, pair Pair, run int) Result {
	ce := b.callees[pair.B]
	r := Result{Pair: pair, Run: run, RTTB: ce.rtt}
	ctx, cancel := context.WithTimeout(ctx, b.opt.CallTimeout+15*time.Second)
	defer cancel()
	p, err := b.start(ctx, b.devA[pair.A].Host, fmt.Sprintf("caller-%s-%s-%d", short(pair.A), short(pair.B), run), "caller", params{
		Node: b.nodeMA, Callee: ce.id, TURN: turnAddr, Size: b.opt.Size, Timeout: b.opt.CallTimeout,
	})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	m, err := p.next(ctx)
	if err == nil && m.Result == nil {
		err = fmt.Errorf("unexpected %q line", m.Event)
	}
	if err != nil {
		r.Err = "caller: " + err.Error()
		r.Log = p.stderr.String()
		return r
	}
	cr := m.Result
	r.RTTA = cr.RTT
	r.Resolved, r.Accepted, r.Joined, r.Secure = cr.Resolved, cr.Accepted, cr.Joined, cr.Secure
	r.FirstEcho, r.FirstPath, r.Path = cr.FirstEcho, cr.FirstPath, cr.FinalPath
	if cr.FinalPath != "" {
		r.FinalAfterDial = cr.FinalAt
		r.Final = time.Duration(cr.DialedAt-cr.AcceptedAt) + cr.FinalAt
	}
	r.Sent, r.RelayBytes, r.FinalBytes, r.Xfer = cr.Sent, cr.RelayBytes, cr.FinalBytes, cr.Xfer
	r.OK = cr.Err == "" && cr.Verified && cr.FinalPath != ""
	if cr.Err != "" {
		r.Err = "caller: " + cr.Err
		r.Log = p.stderr.String()
	}
	if cr.DialedAt == 0 {
		return r // no connection: the callee has nothing to report
	}
	// The callee reports each connection once it ends, which the caller's
	// Close does: wait for the report that names this caller.
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	for {
		m, err := ce.p.next(wctx)
		if err != nil {
			r.OK = false
			r.Err = strings.TrimPrefix(r.Err+"; ", "; ") + "no report from the callee: " + err.Error()
			return r
		}
		if m.Served == nil || m.Served.Caller != cr.Caller {
			continue // a call that failed earlier
		}
		s := m.Served
		r.CalleePath = s.Path
		if s.FirstByte != 0 && cr.AcceptedAt != 0 {
			r.FirstByte = time.Duration(s.FirstByte - cr.AcceptedAt)
		}
		if s.Err != "" && r.OK {
			r.OK = false
			r.Err = "callee: " + s.Err
		}
		return r
	}
}

// proc is a role process.
type proc struct {
	name    string
	started time.Time
	lines   chan message // its stdout, closed at EOF
	stderr  *tail
	done    chan struct{} // closed when it has exited
	err     error         // its exit status, once done is closed
}

// start runs role in host's namespace.
func (b *bench) start(ctx context.Context, host *netlab.Host, name, role string, p params) (*proc, error) {
	if p.Dir != "" {
		if err := os.MkdirAll(p.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	cmd := host.Command(ctx, b.opt.Exe, b.opt.Args...)
	cmd.Env = append(os.Environ(), b.opt.Env...)
	cmd.Env = append(cmd.Env, RoleEnv+"="+role, ParamsEnv+"="+string(pj))
	pr := &proc{name: name, lines: make(chan message, 256), stderr: &tail{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = pr.stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("natbench: start %s: %w", name, err)
	}
	pr.started = time.Now()
	b.procs = append(b.procs, pr)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m message
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				fmt.Fprintf(pr.stderr, "stdout: %s\n", sc.Bytes())
				continue
			}
			select {
			case pr.lines <- m:
			default: // nobody reads (reports of failed calls): keep draining
				fmt.Fprintf(pr.stderr, "natbench: unread output: %s\n", sc.Bytes())
			}
		}
		io.Copy(io.Discard, stdout)
		close(pr.lines)
		pr.err = cmd.Wait()
		close(pr.done)
	}()
	return pr, nil
}

// next returns the process's next stdout message.
func (p *proc) next(ctx context.Context) (message, error) {
	select {
	case m, ok := <-p.lines:
		if ok {
			return m, nil
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return message{}, fmt.Errorf("%s closed its output: %w", p.name, ctx.Err())
		}
		return message{}, fmt.Errorf("%s exited (%v)", p.name, p.err)
	case <-ctx.Done():
		return message{}, fmt.Errorf("%s: %w", p.name, ctx.Err())
	}
}

func (b *bench) failed() bool {
	for _, r := range b.rep.Results {
		if !r.OK {
			return true
		}
	}
	return len(b.rep.Results) == 0
}

// logs returns the stderr of the long-running processes.
func (b *bench) logs() map[string]string {
	out := make(map[string]string)
	for _, p := range b.procs {
		if !strings.HasPrefix(p.name, "caller") {
			out[p.name] = p.stderr.String()
		}
	}
	return out
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex // guards buf
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// line is the progress line of a call.
func (r Result) line() string {
	if !r.OK {
		return fmt.Sprintf("%-22s run %d: FAILED: %s", r.Pair, r.Run, r.Err)
	}
	return fmt.Sprintf("%-22s run %d: %-6s first byte %6.1f ms after accept (echo %5.1f ms after dial, on %s), final path after %7.1f ms, %d bytes verified (%d on the relay, %d on %s), rtt %.1f/%.1f ms",
		r.Pair, r.Run, r.Path, ms(r.FirstByte), ms(r.FirstEcho), r.FirstPath, ms(r.Final), r.Sent, r.RelayBytes, r.FinalBytes, r.Path, ms(r.RTTA), ms(r.RTTB))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
