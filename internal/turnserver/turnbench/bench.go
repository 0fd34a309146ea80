// Package turnbench compares the relay cost of this module's TURN server
// with coturn's on loopback, both driven by coturn's own load generator,
// turnutils_uclient.
//
// [Run] starts coturn's turnserver (configured as in the M2 feasibility run:
// long-term credentials, loopback peers allowed, no TLS), this module's
// server and, optionally, a stock pion/turn server in separate processes,
// runs the same turnutils_uclient command against each in turn, and reads
// every server's CPU time (utime+stime) from /proc/PID/stat before and after
// each run. The main figure is server CPU time per delivered message: each
// message crosses the server twice (client A -> relay A -> relay B ->
// client B), on one pinned core, so it measures the relay path and not the
// client, which is the throughput bottleneck on small machines. Throughput is
// the median of the client's per-second receive counts, leaving out the
// first and last active second, as in the feasibility run.
//
// Linux only: it needs /proc, and coturn's turnserver and turnutils_uclient
// on PATH (Debian: apt-get install coturn); taskset is used when present.
package turnbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
)

// Options configure [Run]. Zero fields take the defaults noted.
type Options struct {
	// Repeats is how many times each server is measured; the order of the
	// servers alternates between repeats. Default 2.
	Repeats int
	// Allocations is uclient's -m: client-to-client allocations (without
	// RTCP), each sending Messages messages to its pair. Default 10.
	Allocations int
	// Messages is uclient's -n, messages per allocation. Default 10000.
	Messages int
	// Length is uclient's -l, the payload size in bytes. Default 100.
	Length int
	// IntervalMS is uclient's -z, milliseconds between one session's
	// sends; 0 (the default) floods, up to 50 messages per session per
	// millisecond tick.
	IntervalMS int
	// SendIndications makes uclient use Send/Data indications (-s) instead
	// of ChannelData.
	SendIndications bool
	// Pion adds a stock pion/turn server (no wrapper, no peer filter) as a
	// third contender.
	Pion bool
	// GOGC, when set, is the GOGC of this module's server process.
	GOGC string
	// ServerCPU and ClientCPU are the CPU lists given to taskset for the
	// servers and for uclient. Default "1" and "0" when taskset exists and
	// there are at least 2 CPUs; "-" disables pinning.
	ServerCPU, ClientCPU string
	// Uclient and Turnserver are the coturn binaries. Default: found on PATH.
	Uclient, Turnserver string
	// ServerCommand starts a Go server process; it must run [MaybeServe].
	// Default: this executable with its arguments (see MaybeServe).
	ServerCommand []string
	// RunTimeout bounds one uclient run. Default 2 minutes.
	RunTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&o.Repeats, 2)
	set(&o.Allocations, 10)
	set(&o.Messages, 10000)
	set(&o.Length, 100)
	if o.IntervalMS < 0 {
		o.IntervalMS = 0
	}
	if o.RunTimeout <= 0 {
		o.RunTimeout = 2 * time.Minute
	}
	var err error
	if o.Uclient == "" {
		if o.Uclient, err = exec.LookPath("turnutils_uclient"); err != nil {
			return o, fmt.Errorf("turnbench: turnutils_uclient not found (apt-get install coturn): %w", err)
		}
	}
	if o.Turnserver == "" {
		if o.Turnserver, err = exec.LookPath("turnserver"); err != nil {
			return o, fmt.Errorf("turnbench: coturn's turnserver not found (apt-get install coturn): %w", err)
		}
	}
	if o.ServerCPU == "" && o.ClientCPU == "" {
		if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
			o.ServerCPU, o.ClientCPU = "1", "0"
		}
	}
	if o.ServerCPU == "-" {
		o.ServerCPU = ""
	}
	if o.ClientCPU == "-" {
		o.ClientCPU = ""
	}
	if len(o.ServerCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("turnbench: cannot re-execute myself for the server process: %w", err)
		}
		o.ServerCommand = append([]string{exe}, os.Args[1:]...)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return o, fmt.Errorf("turnbench: needs Linux /proc to read server CPU time: %w", err)
	}
	return o, nil
}

// Result is one uclient run against one server.
type Result struct {
	Server     string  // "coturn", "iop" or "pion"
	Repeat     int     // 1-based
	Sent       int     // messages uclient sent
	Received   int     // messages uclient received
	Rate       float64 // delivered messages per second (median of active seconds)
	ServerCPU  time.Duration
	ClientWall time.Duration
}

// Loss is the fraction of sent messages that were not received.
func (r Result) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

// MicrosPerMessage is server CPU time per delivered message in µs.
func (r Result) MicrosPerMessage() float64 {
	if r.Received == 0 {
		return 0
	}
	return float64(r.ServerCPU.Microseconds()) / float64(r.Received)
}

// Report is the outcome of [Run].
type Report struct {
	Options Options
	Command string // the uclient command line, with placeholders
	Results []Result
}

// Mean returns the mean µs/msg and msg/s of server over all repeats.
func (r *Report) Mean(server string) (micros, rate float64) {
	n := 0
	for _, res := range r.Results {
		if res.Server == server {
			micros += res.MicrosPerMessage()
			rate += res.Rate
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return micros / float64(n), rate / float64(n)
}

// Ratio is this module's mean µs/msg divided by coturn's.
func (r *Report) Ratio() float64 {
	ours, _ := r.Mean(ServerIoP)
	theirs, _ := r.Mean("coturn")
	if theirs == 0 {
		return 0
	}
	return ours / theirs
}

// Markdown returns the report as a Markdown table and summary.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "TURN relay on loopback, `%s`\n\n", r.Command)
	fmt.Fprintf(&b, "| repeat | server | sent | received | loss %% | msg/s (median) | server CPU s | server µs/msg |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "| %d | %s | %d | %d | %.2f | %.0f | %.2f | %.2f |\n",
			res.Repeat, res.Server, res.Sent, res.Received, 100*res.Loss(), res.Rate,
			res.ServerCPU.Seconds(), res.MicrosPerMessage())
	}
	b.WriteString("\n| server | mean µs/msg | mean msg/s |\n|---|---|---|\n")
	for _, s := range r.servers() {
		us, rate := r.Mean(s)
		fmt.Fprintf(&b, "| %s | %.2f | %.0f |\n", s, us, rate)
	}
	fmt.Fprintf(&b, "\nours/coturn CPU per message: %.2f\n", r.Ratio())
	return b.String()
}

func (r *Report) servers() []string {
	var s []string
	for _, res := range r.Results {
		if !slices.Contains(s, res.Server) {
			s = append(s, res.Server)
		}
	}
	return s
}

// server is a running server process.
type server struct {
	name       string
	cmd        *exec.Cmd
	stdin      io.Closer
	addr       string
	user, pass string
	stderr     *bytes.Buffer
}

// Run measures coturn and this module's server (and stock pion with
// opts.Pion) with the same uclient command, writing progress lines to
// progress (may be nil). It stops every process it started before
// returning.
func Run(ctx context.Context, opts Options, progress io.Writer) (*Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "turnbench")
	if err != nil {
		return nil, fmt.Errorf("turnbench: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	co, err := startCoturn(ctx, opts, dir)
	if err != nil {
		return nil, err
	}
	servers = append(servers, co)
	kinds := []string{ServerIoP}
	if opts.Pion {
		kinds = append(kinds, ServerPion)
	}
	for _, k := range kinds {
		s, err := startGo(ctx, opts, k)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		fmt.Fprintf(progress, "turnbench: %s pid %d on %s\n", s.name, s.cmd.Process.Pid, s.addr)
	}

	rep := &Report{Options: opts, Command: strings.Join(opts.uclientArgs("USER", "PASS", "PORT"), " ")}
	for rep1 := 1; rep1 <= opts.Repeats; rep1++ {
		order := slices.Clone(servers)
		if rep1%2 == 0 {
			slices.Reverse(order)
		}
		for _, s := range order {
			res, err := measure(ctx, opts, s)
			if err != nil {
				return rep, err
			}
			res.Repeat = rep1
			rep.Results = append(rep.Results, res)
			fmt.Fprintf(progress, "turnbench: repeat %d %-6s sent %d received %d (loss %.2f%%) %.0f msg/s, server %.2f s CPU, %.2f µs/msg\n",
				rep1, s.name, res.Sent, res.Received, 100*res.Loss(), res.Rate, res.ServerCPU.Seconds(), res.MicrosPerMessage())
		}
	}
	return rep, nil
}

func (o Options) uclientArgs(user, pass, port string) []string {
	args := []string{"-y", "-c"}
	if o.SendIndications {
		args = append(args, "-s")
	}
	args = append(args,
		"-m", strconv.Itoa(o.Allocations), "-n", strconv.Itoa(o.Messages),
		"-l", strconv.Itoa(o.Length), "-z", strconv.Itoa(o.IntervalMS),
		"-u", user, "-w", pass, "-p", port, "127.0.0.1")
	if o.ClientCPU != "" {
		return append([]string{"taskset", "-c", o.ClientCPU, o.Uclient}, args...)
	}
	return append([]string{o.Uclient}, args...)
}

// pinned returns argv run on the server CPUs.
func (o Options) pinned(argv ...string) []string {
	if o.ServerCPU == "" {
		return argv
	}
	return append([]string{"taskset", "-c", o.ServerCPU}, argv...)
}

const coturnConf = `listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=%d
min-port=49152
max-port=65535
lt-cred-mech
user=test:secret
realm=example.org
no-tls
no-dtls
no-cli
no-rfc5780
allow-loopback-peers
log-file=%s
pidfile=%s
simple-log
fingerprint
`

// startCoturn starts coturn on a free port and waits until it answers a
// STUN Binding.
func startCoturn(ctx context.Context, opts Options, dir string) (*server, error) {
	var lastErr error
	for attempt := range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, fmt.Sprintf("coturn%d.conf", attempt))
		text := fmt.Sprintf(coturnConf, port, filepath.Join(dir, "coturn.log"), filepath.Join(dir, "coturn.pid"))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("turnbench: write coturn config: %w", err)
		}
		argv := opts.pinned(opts.Turnserver, "-c", conf)
		s := &server{name: "coturn", user: "test", pass: "secret", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stderr: &bytes.Buffer{}}
		s.cmd = exec.Command(argv[0], argv[1:]...)
		s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("turnbench: start %s: %w", strings.Join(argv, " "), err)
		}
		if lastErr = stunPing(ctx, s.addr, 5*time.Second); lastErr == nil {
			return s, nil
		}
		s.stop()
		lastErr = fmt.Errorf("turnbench: coturn on port %d does not answer STUN: %w\n%s", port, lastErr, s.stderr.String())
	}
	return nil, lastErr
}

// startGo starts a Go server process of kind via MaybeServe.
func startGo(ctx context.Context, opts Options, kind string) (*server, error) {
	argv := opts.pinned(opts.ServerCommand...)
	s := &server{name: kind, stderr: &bytes.Buffer{}}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = append(os.Environ(), ServeEnv+"="+kind)
	if kind == ServerIoP && opts.GOGC != "" {
		s.cmd.Env = append(s.cmd.Env, "GOGC="+opts.GOGC)
	}
	s.cmd.Stderr = s.stderr
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	s.stdin = stdin
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("turnbench: start %s server %s: %w", kind, strings.Join(argv, " "), err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if s.addr, s.user, s.pass, err = waitReady(wctx, stdout); err != nil {
		s.stop()
		return nil, fmt.Errorf("turnbench: %s server (%s; it must call turnbench.MaybeServe): %w\n%s",
			kind, strings.Join(argv, " "), err, s.stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return s, nil
}

// stop ends the process: stdin EOF for Go servers, then a kill.
func (s *server) stop() {
	if s.stdin != nil {
		s.stdin.Close()
	}
	done := make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(2 * time.Second):
	}
	s.cmd.Process.Kill()
	<-done
}

var (
	progressLine = regexp.MustCompile(`(?m)^(\d+): .*start_mclient: msz=\d+, tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	totalsLine   = regexp.MustCompile(`start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n`)
)

// measure runs uclient once against s.
func measure(ctx context.Context, opts Options, s *server) (Result, error) {
	_, port, _ := net.SplitHostPort(s.addr)
	argv := opts.uclientArgs(s.user, s.pass, port)
	rctx, cancel := context.WithTimeout(ctx, opts.RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, argv[0], argv[1:]...)
	before, err := cpuTime(s.cmd.Process.Pid)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	after, cerr := cpuTime(s.cmd.Process.Pid)
	if err != nil {
		return Result{}, fmt.Errorf("turnbench: %s against %s: %w\n%s", strings.Join(argv, " "), s.name, err, tail(out))
	}
	if cerr != nil {
		return Result{}, cerr
	}
	m := totalsLine.FindSubmatch(out)
	if m == nil {
		return Result{}, fmt.Errorf("turnbench: uclient against %s printed no totals:\n%s", s.name, tail(out))
	}
	res := Result{Server: s.name, ServerCPU: after - before, ClientWall: wall}
	res.Sent, _ = strconv.Atoi(string(m[1]))
	res.Received, _ = strconv.Atoi(string(m[2]))
	res.Rate = medianRate(out)
	return res, nil
}

// medianRate is the median per-second increase of tot_recv_msgs over the
// active seconds, leaving out the first and the last.
func medianRate(out []byte) float64 {
	var deltas []float64
	prev := -1
	for _, m := range progressLine.FindAllSubmatch(out, -1) {
		recv, _ := strconv.Atoi(string(m[3]))
		if prev >= 0 && recv > prev {
			deltas = append(deltas, float64(recv-prev))
		}
		prev = recv
	}
	if len(deltas) > 2 {
		deltas = deltas[1 : len(deltas)-1]
	}
	if len(deltas) == 0 {
		return 0
	}
	slices.Sort(deltas)
	return deltas[len(deltas)/2]
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpuTime returns utime+stime of process pid (all its threads).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("turnbench: read server CPU time: %w", err)
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime 14 and stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("turnbench: malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("turnbench: short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("turnbench: malformed utime/stime in /proc/PID/stat")
	}
	return time.Duration(ut+st) * clockTick, nil
}

// freePort returns a UDP port that was free a moment ago.
func freePort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("turnbench: find a free port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// stunPing sends Binding requests to addr until one is answered.
func stunPing(ctx context.Context, addr string, timeout time.Duration) error {
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		if _, err := conn.Write(req.Raw); err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		res := &stun.Message{Raw: buf[:n]}
		if res.Decode() == nil && res.TransactionID == req.TransactionID {
			return nil
		}
	}
	return fmt.Errorf("no Binding response within %v", timeout)
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// quietLoggers discards pion's logs.
type quietLoggers struct{}

func (quietLoggers) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

type quietLogger struct{}

func (quietLogger) Trace(string)          {}
func (quietLogger) Tracef(string, ...any) {}
func (quietLogger) Debug(string)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(string)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(string)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(string)          {}
func (quietLogger) Errorf(string, ...any) {}
