// Package checkinbench measures how many identities one node checks in at
// once over real libp2p connections, and what each checked-in identity costs
// the node: resident memory, goroutines and idle CPU.
//
// The node runs in the benchmark's own process, so the figures read from
// /proc/self are the node's. Clients run in separate processes (Config.Exec
// re-runs a program in client mode, as `iop bench checkin` does), each
// holding its share of identities, one libp2p host and connection per
// identity, with retry and back-off like the user agent.
package checkinbench

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/node"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/procstat"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Config configures a run.
type Config struct {
	N          int           // identities; default 19,500 (TCP needs one descriptor each and the hard limit here is 20,000)
	Procs      int           // client processes; default 4; 0 with Exec nil runs clients in this process
	Transport  string        // "tcp" (default) or "quic"
	Idle       time.Duration // idle window for the CPU reading; default 30 s
	Settle     time.Duration // pause after the ramp before the idle readings; default 5 s
	Seed       uint64        // key derivation seed; default 1
	Dir        string        // node data directory; default a temporary one
	CPUProfile io.Writer     // if set, the node process's CPU profile of the check-in phase
	// Exec returns the command that runs one client process for identities
	// [from, to) against addr. Nil runs the clients as goroutines here.
	Exec func(addr string, from, to int, seed uint64) *exec.Cmd
}

// Report is the outcome.
type Report struct {
	N            int     `json:"n"`
	Transport    string  `json:"transport"`
	Procs        int     `json:"client_procs"`
	CheckedIn    int     `json:"checked_in"`
	Failed       int     `json:"failed"`
	RegisterPerS float64 `json:"registrations_per_s"`
	CheckInSec   float64 `json:"checkin_s"`
	CheckInPerS  float64 `json:"checkins_per_s"`
	BaseRSSMiB   float64 `json:"base_rss_mib"`
	RSSMiB       float64 `json:"rss_mib"`
	KiBPerID     float64 `json:"rss_kib_per_identity"`
	KiBPerIDGC   float64 `json:"rss_kib_per_identity_after_gc"`
	HeapKiBPerID float64 `json:"heap_kib_per_identity"`
	GoroutinesID float64 `json:"goroutines_per_identity"`
	IdleCPU      float64 `json:"idle_cpu_percent_of_one_core"`
	Online       int     `json:"online_at_server"`
}

func (c *Config) setDefaults() {
	if c.N == 0 {
		c.N = 19500
	}
	if c.Procs == 0 && c.Exec != nil {
		c.Procs = 4
	}
	if c.Transport == "" {
		c.Transport = "tcp"
	}
	if c.Idle == 0 {
		c.Idle = 30 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Settle == 0 {
		c.Settle = 5 * time.Second
	}
}

// Key derives identity i of a run deterministically, so client processes
// need no key transfer.
func Key(seed uint64, i int) *identity.Key {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	s := sha256.Sum256(b[:])
	k, err := identity.NewKeyFromSeed(s[:])
	if err != nil {
		panic(err)
	}
	return k
}

// Type is the identity type of benchmark identities.
const Type = "bench/checkin"

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg.setDefaults()
	rep := &Report{N: cfg.N, Transport: cfg.Transport, Procs: cfg.Procs}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "iop-checkinbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	listen := "/ip4/127.0.0.1/tcp/0"
	if cfg.Transport == "quic" {
		listen = "/ip4/127.0.0.1/udp/0/quic-v1"
	}
	n, err := node.New(node.Config{DataDir: cfg.Dir, Listen: []string{listen}, HTTP: "off"})
	if err != nil {
		return nil, err
	}
	nctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	defer func() {
		stop()
		<-done
	}()
	addr := n.Addrs()[0]
	ai, err := p2p.ParseAddr(addr)
	if err != nil {
		return nil, err
	}

	settle()
	baseRSS, _ := procstat.RSS()
	baseG := runtime.NumGoroutine()
	rep.BaseRSSMiB = float64(baseRSS) / (1 << 20)
	fmt.Fprintf(progress, "node at %s; baseline RSS %.1f MiB, %d goroutines\n", addr, rep.BaseRSSMiB, baseG)

	start := time.Now()
	if err := register(ctx, ai, cfg, progress); err != nil {
		return nil, err
	}
	rep.RegisterPerS = float64(cfg.N) / time.Since(start).Seconds()
	fmt.Fprintf(progress, "registered %d identities (%.0f/s)\n", cfg.N, rep.RegisterPerS)

	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return nil, err
		}
	}
	ok, failed, took, cleanup, err := checkIn(ctx, addr, ai, cfg, progress)
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	defer cleanup()
	if err != nil {
		return nil, err
	}
	rep.CheckedIn, rep.Failed = ok, failed
	rep.CheckInSec = took.Seconds()
	rep.CheckInPerS = float64(ok) / took.Seconds()
	fmt.Fprintf(progress, "checked in %d (failed %d) in %.1f s: %.0f/s\n", ok, failed, rep.CheckInSec, rep.CheckInPerS)

	time.Sleep(cfg.Settle) // let the ramp's garbage and handshakes settle before reading idle figures
	rss, _ := procstat.RSS()
	rep.RSSMiB = float64(rss) / (1 << 20)
	per := float64(max(ok, 1))
	rep.KiBPerID = float64(rss-baseRSS) / 1024 / per
	rep.GoroutinesID = float64(runtime.NumGoroutine()-baseG) / per
	cpu0, _ := procstat.CPUTime()
	t0 := time.Now()
	select {
	case <-time.After(cfg.Idle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu1, _ := procstat.CPUTime()
	rep.IdleCPU = 100 * (cpu1 - cpu0).Seconds() / time.Since(t0).Seconds()
	rep.Online = n.ProfileServer().Stats().Online
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	debug.FreeOSMemory()
	rssGC, _ := procstat.RSS()
	rep.KiBPerIDGC = float64(rssGC-baseRSS) / 1024 / per
	rep.HeapKiBPerID = float64(ms.HeapInuse) / 1024 / per
	return rep, nil
}

// settle collects garbage and returns memory to the OS before a reading.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// register registers every identity over parallel streams of a few client
// hosts, backing off when the server says it is busy (its per-peer rate
// limit).
func register(ctx context.Context, ai peer.AddrInfo, cfg Config, progress io.Writer) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		h, err := p2p.New(p2p.Config{})
		if err != nil {
			return err
		}
		defer h.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.N {
					return
				}
				err := registerOne(ctx, h, ai, Key(cfg.Seed, i))
				for try := 0; errors.Is(err, client.Status(wirepb.Status_BUSY)) && try < 20; try++ {
					time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond) // back-off as the server asked
					err = registerOne(ctx, h, ai, Key(cfg.Seed, i))
				}
				if err != nil {
					errs <- fmt.Errorf("register identity %d: %w", i, err)
					return
				}
				if i > 0 && i%5000 == 0 {
					fmt.Fprintf(progress, "  registered %d\n", i)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func registerOne(ctx context.Context, h host.Host, ai peer.AddrInfo, k *identity.Key) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, h, ai)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.StartConversation(ctx, k); err != nil {
		return err
	}
	_, err = c.RegisterHosting(ctx, Type)
	return err
}

// checkIn starts the clients and waits until every identity checked in or
// gave up. The returned cleanup stops the clients.
func checkIn(ctx context.Context, addr string, ai peer.AddrInfo, cfg Config, progress io.Writer) (ok, failed int, took time.Duration, cleanup func(), err error) {
	if cfg.Exec == nil {
		cctx, cancel := context.WithCancel(ctx)
		res := make(chan ClientResult, 1)
		go RunClients(cctx, ai, 0, cfg.N, cfg.Seed, func(r ClientResult) { res <- r })
		r := <-res
		return r.OK, r.Failed, r.Last.Sub(r.First), cancel, r.Err
	}
	var cmds []*exec.Cmd
	cleanup = func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
	results := make(chan ClientResult, cfg.Procs)
	per := (cfg.N + cfg.Procs - 1) / cfg.Procs
	for p := range cfg.Procs {
		from, to := p*per, min((p+1)*per, cfg.N)
		cmd := cfg.Exec(addr, from, to, cfg.Seed)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return 0, 0, 0, cleanup, err
		}
		if err := cmd.Start(); err != nil {
			return 0, 0, 0, cleanup, fmt.Errorf("start client process: %w", err)
		}
		cmds = append(cmds, cmd)
		go func() {
			sc := bufio.NewScanner(out)
			var r ClientResult
			r.Err = errors.New("client process ended without a result")
			for sc.Scan() {
				line := sc.Text()
				if j, found := strings.CutPrefix(line, "RESULT "); found {
					r = ClientResult{}
					if err := json.Unmarshal([]byte(j), &r); err != nil {
						r.Err = err
					}
					results <- r
					for sc.Scan() {
					}
					return
				}
				fmt.Fprintln(progress, "  client:", line)
			}
			results <- r
		}()
	}
	var first, last time.Time
	for range cfg.Procs {
		select {
		case r := <-results:
			if r.Err != nil && r.ErrText == "" {
				return 0, 0, 0, cleanup, r.Err
			}
			ok += r.OK
			failed += r.Failed
			if r.ErrText != "" {
				fmt.Fprintf(progress, "  a client process reports %d failed; first error: %s\n", r.Failed, r.ErrText)
			}
			if first.IsZero() || r.First.Before(first) {
				first = r.First
			}
			if r.Last.After(last) {
				last = r.Last
			}
		case <-ctx.Done():
			return 0, 0, 0, cleanup, ctx.Err()
		}
	}
	return ok, failed, last.Sub(first), cleanup, nil
}

// ClientResult is what a client process reports.
type ClientResult struct {
	OK, Failed  int
	First, Last time.Time // first dial started, last check-in acknowledged
	Err         error     `json:"-"`
	ErrText     string    `json:",omitempty"`
}

// RunClients checks in identities [from, to) against ai, one host and
// connection each, with up to 3 attempts and jittered back-off, and then
// keeps them online with a ping every 30 s until ctx ends. The result is
// passed to report once every identity checked in or gave up; then the
// connections are held until ctx ends.
func RunClients(ctx context.Context, ai peer.AddrInfo, from, to int, seed uint64, report func(ClientResult)) {
	n := to - from
	hosts := make([]host.Host, n)
	for i := range n {
		h, err := p2p.New(p2p.Config{})
		if err != nil {
			report(ClientResult{Err: err, ErrText: err.Error()})
			return
		}
		hosts[i] = h
	}
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	var res ClientResult
	var mu sync.Mutex
	res.First = time.Now()
	sem := make(chan struct{}, 64)
	var wg, held sync.WaitGroup
	defer held.Wait()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			k := Key(seed, from+i)
			var c *client.Conn
			var err error
			for attempt := range 3 {
				if attempt > 0 {
					time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond) // back-off between attempts
				}
				if c, err = checkInOne(ctx, hosts[i], ai, k); err == nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				if res.ErrText == "" {
					res.ErrText = err.Error()
				}
				return
			}
			res.OK++
			res.Last = time.Now()
			held.Add(1)
			go func() {
				defer held.Done()
				keepAlive(ctx, c)
			}()
		}()
	}
	wg.Wait()
	report(res)
	<-ctx.Done()
}

// keepAlive pings like an agent: every 30 s from its own check-in, so no
// connection idles past the server's 60 s limit.
func keepAlive(ctx context.Context, c *client.Conn) {
	defer c.Close()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			c.Ping(pctx, nil)
			cancel()
		}
	}
}

func checkInOne(ctx context.Context, h host.Host, ai peer.AddrInfo, k *identity.Key) (*client.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(cctx, h, ai)
	if err != nil {
		return nil, err
	}
	if err := c.StartConversation(cctx, k); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.CheckIn(cctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
