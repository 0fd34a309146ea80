package natbench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/node"
	"github.com/iop-go/iop/internal/p2p"
)

// Environment variables of a role process.
const (
	// RoleEnv names the role a re-executed process plays: "node", "callee"
	// or "caller". MaybeRunRole runs it when set.
	RoleEnv = "IOP_NATBENCH_ROLE"
	// ParamsEnv holds the role's parameters as JSON.
	ParamsEnv = "IOP_NATBENCH_PARAMS"
	// DebugEnv, when set to 1, makes role processes log at debug level
	// (connect, ICE) on stderr.
	DebugEnv = "IOP_NATBENCH_DEBUG"
)

// service is the application service the callee listens to.
const service = "chat"

// params are the parameters of a role process.
type params struct {
	Dir     string        `json:"dir,omitempty"`    // node data directory or callee home
	Listen  []string      `json:"listen,omitempty"` // node: libp2p listen addresses
	TURN    string        `json:"turn,omitempty"`   // node: STUN/TURN address; others: where to measure the RTT
	Node    []string      `json:"node,omitempty"`   // callee, caller: the node's full multiaddrs
	Callee  string        `json:"callee,omitempty"` // caller: the callee's identity
	Size    int           `json:"size,omitempty"`   // caller: bytes to send through the echo
	Timeout time.Duration `json:"timeout,omitempty"`
}

// message is one JSON line a role process prints on stdout.
type message struct {
	Event  string        `json:"event"`            // "ready", "served" or "result"
	Addrs  []string      `json:"addrs,omitempty"`  // node ready: full multiaddrs
	ID     string        `json:"id,omitempty"`     // callee ready: its identity
	RTT    time.Duration `json:"rtt,omitempty"`    // callee ready: round trip to the node
	Served *served       `json:"served,omitempty"` // callee: one connection ended
	Result *callResult   `json:"result,omitempty"` // caller: the outcome
}

// served is the callee's account of one connection.
type served struct {
	Caller    string `json:"caller"`
	FirstByte int64  `json:"first_byte_unix_ns"` // wall clock of the first byte read
	Bytes     int64  `json:"bytes"`
	Path      string `json:"path"`
	Err       string `json:"err,omitempty"`
}

// callResult is the caller's account of one call. Durations after the
// dial are measured from the moment DialService returned.
type callResult struct {
	Caller     string        `json:"caller"`
	RTT        time.Duration `json:"rtt"` // round trip to the node (STUN), median of a few
	Resolved   time.Duration `json:"resolved"`
	Accepted   time.Duration `json:"accepted"` // DialTiming, from the start of the dial
	Joined     time.Duration `json:"joined"`
	Secure     time.Duration `json:"secure"`
	AcceptedAt int64         `json:"accepted_unix_ns"` // wall clock of Accepted
	DialedAt   int64         `json:"dialed_unix_ns"`   // wall clock when DialService returned
	FirstEcho  time.Duration `json:"first_echo"`       // probe written and its echo read
	FirstPath  string        `json:"first_path"`       // the path writes took at the first echo
	FinalPath  string        `json:"final_path"`
	FinalAt    time.Duration `json:"final_at"` // WaitPath returned
	Handshake  time.Duration `json:"handshake"`
	OpenFinal  time.Duration `json:"open_final"` // connect Timing: final path after the start of Open
	Sent       int64         `json:"sent"`
	RelayBytes int64         `json:"relay_bytes"` // written while writes went to the relay
	FinalBytes int64         `json:"final_bytes"` // written after writes switched to the final path
	Verified   bool          `json:"verified"`    // all echoed bytes came back intact
	Xfer       time.Duration `json:"xfer"`
	Err        string        `json:"err,omitempty"`
}

// MaybeRunRole runs the role named by the environment variable RoleEnv
// (with its parameters from ParamsEnv) and exits the process; it returns
// at once when RoleEnv is unset. A program that runs the benchmark with
// itself as Options.Exe (the test binary's TestMain, `iop bench nat`)
// calls it first thing in main.
func MaybeRunRole() {
	role := os.Getenv(RoleEnv)
	if role == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := RunRole(ctx, role, os.Getenv(ParamsEnv), os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "natbench %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// RunRole plays one participant of the benchmark in the current process,
// which must already live in its network namespace: role is "node",
// "callee" or "caller", paramsJSON its parameters as the harness passes
// them in ParamsEnv. Progress and results are JSON lines on stdout; the
// node and the callee run until ctx ends.
func RunRole(ctx context.Context, role, paramsJSON string, stdout io.Writer) error {
	var p params
	if paramsJSON != "" {
		if err := json.Unmarshal([]byte(paramsJSON), &p); err != nil {
			return fmt.Errorf("parameters in %s: %w", ParamsEnv, err)
		}
	}
	level := slog.LevelWarn
	if os.Getenv(DebugEnv) == "1" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("role", role)
	out := &emitter{w: stdout}
	switch role {
	case "node":
		return runNode(ctx, p, out, log)
	case "callee":
		return runCallee(ctx, p, out, log)
	case "caller":
		return runCaller(ctx, p, out, log)
	}
	return fmt.Errorf("unknown role %q (want node, callee or caller)", role)
}

// emitter writes JSON lines, one at a time.
type emitter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (e *emitter) emit(m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(append(b, '\n'))
	return err
}

func runNode(ctx context.Context, p params, out *emitter, log *slog.Logger) error {
	n, err := node.New(node.Config{DataDir: p.Dir, Listen: p.Listen, HTTP: "off", TURN: p.TURN, Name: "natbench", Logger: log})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	if err := out.emit(message{Event: "ready", Addrs: n.Addrs()}); err != nil {
		n.Close()
		<-done
		return err
	}
	return <-done
}

// nodeInfo merges the node's full multiaddrs into one AddrInfo.
func nodeInfo(addrs []string) (peer.AddrInfo, error) {
	var ai peer.AddrInfo
	for _, a := range addrs {
		pi, err := p2p.ParseAddr(a)
		if err != nil {
			return ai, err
		}
		ai.ID = pi.ID
		ai.Addrs = append(ai.Addrs, pi.Addrs...)
	}
	if ai.ID == "" {
		return ai, errors.New("no node address")
	}
	return ai, nil
}

func runCallee(ctx context.Context, p params, out *emitter, log *slog.Logger) error {
	server, err := nodeInfo(p.Node)
	if err != nil {
		return err
	}
	key, err := identity.GenerateKey(nil)
	if err != nil {
		return err
	}
	a, err := client.NewAgent(client.AgentConfig{Home: p.Dir, Key: key, Server: server, Type: "person", Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	var conns sync.WaitGroup
	defer func() {
		cancel()
		conns.Wait()
		<-runDone
	}()

	sctx, scancel := context.WithTimeout(ctx, p.Timeout)
	defer scancel()
	if err := a.WaitOnline(sctx); err != nil {
		return fmt.Errorf("wait online: %w", err)
	}
	name := "natbench callee"
	if _, err := a.SetProfile(sctx, client.ProfileChange{Name: &name}); err != nil {
		return fmt.Errorf("set profile: %w", err)
	}
	l, err := a.Listen(sctx, service, client.DialOptions{Logger: log})
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	rtt, err := measureRTT(sctx, p.TURN)
	if err != nil {
		return err
	}
	if err := out.emit(message{Event: "ready", ID: key.ID().String(), RTT: rtt}); err != nil {
		return err
	}
	for {
		c, err := l.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			out.emit(message{Event: "served", Served: echo(ctx, c)})
		}()
	}
}

// echo sends back everything c receives until the caller closes it.
func echo(ctx context.Context, c *client.PeerConn) *served {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	s := &served{Caller: c.PeerID().String()}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if s.FirstByte == 0 {
				s.FirstByte = time.Now().UnixNano()
			}
			s.Bytes += int64(n)
			if _, werr := c.Write(buf[:n]); werr != nil {
				s.Err = werr.Error()
				break
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.Err = err.Error()
			}
			break
		}
	}
	s.Path = c.Path()
	return s
}

func runCaller(ctx context.Context, p params, out *emitter, log *slog.Logger) error {
	server, err := nodeInfo(p.Node)
	if err != nil {
		return err
	}
	callee, err := identity.ParseID(p.Callee)
	if err != nil {
		return fmt.Errorf("callee: %w", err)
	}
	key, err := identity.GenerateKey(nil)
	if err != nil {
		return err
	}
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	res := &callResult{Caller: key.ID().String()}
	if res.RTT, err = measureRTT(ctx, p.TURN); err != nil {
		return err
	}
	if err := call(ctx, h, key, server, callee, p.Size, res, log); err != nil {
		res.Err = err.Error()
	}
	return out.emit(message{Event: "result", Result: res})
}

// call dials the callee, measures the first echoed byte and the final
// path, and sends size random bytes (more while the path is still open)
// through the echo.
func call(ctx context.Context, h host.Host, key *identity.Key, server peer.AddrInfo, callee identity.ID, size int, res *callResult, log *slog.Logger) error {
	var dt client.DialTiming
	start := time.Now()
	c, err := client.DialService(ctx, h, key, server, callee, service, client.DialOptions{
		Logger: log,
		Timing: func(t client.DialTiming) { dt = t },
	})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	t0 := time.Now()
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	res.Resolved, res.Accepted, res.Joined, res.Secure = dt.Resolved, dt.Accepted, dt.Joined, dt.Secure
	res.AcceptedAt = start.Add(dt.Accepted).UnixNano()
	res.DialedAt = t0.UnixNano()

	// The final path is watched from the start: it may come at any time.
	type final struct {
		path string
		at   time.Duration
		err  error
	}
	finalc := make(chan final, 1)
	go func() {
		path, err := c.WaitPath(ctx)
		finalc <- final{path, time.Since(t0), err}
	}()

	probe := make([]byte, 16)
	rand.Read(probe)
	if _, err := c.Write(probe); err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	got := make([]byte, len(probe))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read probe echo: %w", err)
	}
	res.FirstEcho = time.Since(t0)
	res.FirstPath = c.Path()
	if string(got) != string(probe) {
		return errors.New("the probe came back altered")
	}

	// The reader hashes the echo until it has the total the writer
	// announces before its last chunk.
	var total atomic.Int64
	type readDone struct {
		sum [32]byte
		n   int64
		err error
	}
	readc := make(chan readDone, 1)
	go func() {
		hash := sha256.New()
		buf := make([]byte, 64<<10)
		var n int64
		for {
			if t := total.Load(); t > 0 && n >= t {
				var sum [32]byte
				hash.Sum(sum[:0])
				readc <- readDone{sum, n, nil}
				return
			}
			k, err := c.Read(buf)
			hash.Write(buf[:k])
			n += int64(k)
			if err != nil {
				readc <- readDone{n: n, err: err}
				return
			}
		}
	}()

	xstart := time.Now()
	sent := sha256.New()
	chunk := make([]byte, 16<<10)
	var fin *final
	write := func(p []byte, last bool) error {
		rand.Read(p)
		sent.Write(p)
		if last {
			total.Store(res.Sent + int64(len(p)))
		}
		if c.Path() == client.PathRelay {
			res.RelayBytes += int64(len(p))
		} else {
			res.FinalBytes += int64(len(p))
		}
		res.Sent += int64(len(p))
		_, err := c.Write(p)
		return err
	}
	// 1: size bytes at full speed, right after the first byte: the stream
	// migrates under them when ICE is fast enough.
	for res.Sent < int64(size) {
		n := min(len(chunk), size-int(res.Sent))
		if err := write(chunk[:n], false); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	// 2: a trickle until the final path is known, so that bytes are in
	// flight whenever the migration happens.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for fin == nil {
		select {
		case f := <-finalc:
			fin = &f
		case <-tick.C:
			if err := write(chunk[:1024], false); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		case <-ctx.Done():
			return fmt.Errorf("wait for the final path: %w", ctx.Err())
		}
	}
	if fin.err != nil {
		return fmt.Errorf("wait path: %w", fin.err)
	}
	res.FinalPath, res.FinalAt = fin.path, fin.at
	tm := c.Timing()
	res.Handshake, res.OpenFinal = tm.Handshake, tm.FinalPath
	// 3: a tail on the final path.
	for i := range 4 {
		if err := write(chunk, i == 3); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	var rd readDone
	select {
	case rd = <-readc:
	case <-ctx.Done():
		return fmt.Errorf("read the echo: %w after %d of %d bytes", ctx.Err(), rd.n, res.Sent)
	}
	if rd.err != nil {
		return fmt.Errorf("read the echo after %d of %d bytes: %w", rd.n, res.Sent, rd.err)
	}
	res.Xfer = time.Since(xstart)
	var want [32]byte
	sent.Sum(want[:0])
	res.Verified = rd.n == res.Sent && rd.sum == want
	if !res.Verified {
		return fmt.Errorf("echo of %d bytes differs from the %d bytes sent", rd.n, res.Sent)
	}
	return nil
}

// measureRTT returns the median round trip of five STUN binding requests
// to addr.
func measureRTT(ctx context.Context, addr string) (time.Duration, error) {
	raddr, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return 0, err
	}
	conn, err := net.DialUDP("udp4", nil, raddr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var rtts []time.Duration
	req := make([]byte, 20)
	buf := make([]byte, 1500)
	for attempt := 0; len(rtts) < 5 && attempt < 20; attempt++ {
		binary.BigEndian.PutUint16(req[0:], 0x0001) // Binding request, no attributes
		binary.BigEndian.PutUint32(req[4:], 0x2112A442)
		rand.Read(req[8:20])
		start := time.Now()
		if _, err := conn.Write(req); err != nil {
			return 0, fmt.Errorf("STUN to %s: %w", addr, err)
		}
		conn.SetReadDeadline(start.Add(time.Second))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				break // lost: try again
			}
			if n >= 20 && binary.BigEndian.Uint16(buf) == 0x0101 && string(buf[8:20]) == string(req[8:20]) {
				rtts = append(rtts, time.Since(start))
				break
			}
		}
	}
	if len(rtts) == 0 {
		return 0, fmt.Errorf("STUN to %s: no answer", addr)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}
