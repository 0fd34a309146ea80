package connect_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/connect"
	"github.com/iop-go/iop/internal/connect/connecttest"
)

func newKey(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CONNECT_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

// loopbackOnly restricts host candidates to 127.0.0.1.
func loopbackOnly(cfg *connect.Config) {
	cfg.IncludeLoopback = true
	cfg.IPFilter = func(ip net.IP) bool { return ip.IsLoopback() }
}

type pair struct {
	a, b           *connect.Conn
	relayA, relayB *connecttest.Relay
}

// openPair opens both sides concurrently; edit adjusts each side's config.
func openPair(t testing.TB, opts connecttest.Options, edit func(initiator bool, cfg *connect.Config)) (pair, error, error) {
	t.Helper()
	ka, kb := newKey(t), newKey(t)
	ra, rb := connecttest.Pair(opts)
	cfgA := connect.Config{Key: ka, Peer: kb.ID(), Initiator: true, Binding: []byte("test-call"), Logger: testLogger(t)}
	cfgB := connect.Config{Key: kb, Peer: ka.ID(), Binding: []byte("test-call"), Logger: testLogger(t)}
	if edit != nil {
		edit(true, &cfgA)
		edit(false, &cfgB)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p pair
	p.relayA, p.relayB = ra, rb
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { p.a, errA = connect.Open(ctx, cfgA, ra) })
	wg.Go(func() { p.b, errB = connect.Open(ctx, cfgB, rb) })
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range []*connect.Conn{p.a, p.b} {
			if c != nil {
				c.Close()
			}
		}
		ra.Close()
	})
	return p, errA, errB
}

func mustOpenPair(t testing.TB, opts connecttest.Options, edit func(initiator bool, cfg *connect.Config)) pair {
	t.Helper()
	p, errA, errB := openPair(t, opts, edit)
	if errA != nil || errB != nil {
		t.Fatalf("Open: initiator %v, responder %v", errA, errB)
	}
	return p
}

func waitPath(t testing.TB, c *connect.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := c.WaitPath(ctx)
	if err != nil || got != want {
		t.Fatalf("WaitPath() = %q, %v, want %q", got, err, want)
	}
}

// exchange sends msg each way and checks it arrives.
func exchange(t testing.TB, p pair, msg []byte) {
	t.Helper()
	for _, dir := range [][2]*connect.Conn{{p.a, p.b}, {p.b, p.a}} {
		errc := make(chan error, 1)
		go func() {
			_, err := dir[0].Write(msg)
			errc <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir[1], got); err != nil {
			t.Fatalf("Read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Write: %v", err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("Read %d bytes that differ from those written", len(got))
		}
	}
}

func TestRelayOnly(t *testing.T) {
	p := mustOpenPair(t, connecttest.Options{}, func(_ bool, cfg *connect.Config) { cfg.DisableICE = true })
	if p.a.PeerID() != p.b.LocalAddr().(connect.Addr).ID || p.b.PeerID() != p.a.LocalAddr().(connect.Addr).ID {
		t.Fatalf("PeerID does not match the other side's identity")
	}
	waitPath(t, p.a, connect.PathRelay)
	waitPath(t, p.b, connect.PathRelay)
	exchange(t, p, []byte("hello"))
	big := make([]byte, 300<<10) // many relay messages
	rand.Read(big)
	exchange(t, p, big)
	if tm := p.a.Timing(); tm.Handshake <= 0 || tm.FinalPath < tm.Handshake {
		t.Errorf("Timing() = %+v, want 0 < Handshake <= FinalPath", tm)
	}
	// Close delivers io.EOF after the data before it.
	if _, err := p.a.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.a.Close() }()
	got, err := io.ReadAll(p.b)
	if err != nil || string(got) != "last" {
		t.Fatalf("ReadAll after peer Close = %q, %v, want %q, nil", got, err, "last")
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := p.a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := p.b.Write([]byte("x")); err == nil {
		t.Errorf("Write after the peer closed succeeded")
	}
}

func TestDeadlines(t *testing.T) {
	p := mustOpenPair(t, connecttest.Options{}, func(_ bool, cfg *connect.Config) { cfg.DisableICE = true })
	p.a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := p.a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	p.a.SetReadDeadline(time.Time{})
	// Fill the relay window and the peer's queue: Write blocks, then times out.
	p.a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64<<10)
	var err error
	for range 1000 {
		if _, err = p.a.Write(buf); err != nil {
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	// The reader closes first, so the writer's FIN need not wait for room.
	p.b.Close()
}

func TestWrongPeer(t *testing.T) {
	other := newKey(t).ID()
	t.Run("initiator expects another", func(t *testing.T) {
		_, errA, errB := openPair(t, connecttest.Options{}, func(initiator bool, cfg *connect.Config) {
			if initiator {
				cfg.Peer = other
			}
		})
		var ie *connect.IdentityError
		if !errors.As(errA, &ie) || ie.Want != other {
			t.Errorf("initiator Open = %v, want IdentityError expecting %s", errA, other.Short())
		}
		if errB == nil {
			t.Errorf("responder Open succeeded although the initiator rejected it")
		}
	})
	t.Run("responder expects another", func(t *testing.T) {
		p, errA, errB := openPair(t, connecttest.Options{}, func(initiator bool, cfg *connect.Config) {
			if !initiator {
				cfg.Peer = other
			}
		})
		var ie *connect.IdentityError
		if !errors.As(errB, &ie) || ie.Want != other {
			t.Errorf("responder Open = %v, want IdentityError expecting %s", errB, other.Short())
		}
		if errA != nil {
			// The initiator may learn it in Open when the relay closes first.
			return
		}
		_, err := p.a.Read(make([]byte, 1))
		if err == nil || !strings.Contains(err.Error(), "rejected") {
			t.Errorf("initiator Read = %v, want the peer's rejection", err)
		}
	})
}

func TestBindingMismatch(t *testing.T) {
	_, errA, errB := openPair(t, connecttest.Options{}, func(initiator bool, cfg *connect.Config) {
		if initiator {
			cfg.Binding = []byte("another-call")
		}
	})
	if errA == nil || errB == nil {
		t.Fatalf("Open with different bindings: initiator %v, responder %v; want both to fail", errA, errB)
	}
	t.Logf("initiator: %v; responder: %v", errA, errB)
}

// streamCounters writes 8-byte counters until stop is closed and then
// until extra bytes more, then the end marker.
func streamCounters(w io.Writer, stop <-chan struct{}, extra int) error {
	var n uint64
	buf := make([]byte, 0, 4096)
	after := -1
	for {
		buf = buf[:0]
		for range 512 {
			buf = binary.BigEndian.AppendUint64(buf, n)
			n++
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if after < 0 && isDone(stop) {
			after = 0
		}
		if after >= 0 {
			if after += len(buf); after >= extra {
				_, err := w.Write(binary.BigEndian.AppendUint64(nil, ^uint64(0)))
				return err
			}
		}
	}
}

// checkCounters reads counters up to the end marker and returns how many.
func checkCounters(r io.Reader) (uint64, error) {
	var want uint64
	buf := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return want, err
		}
		got := binary.BigEndian.Uint64(buf)
		if got == ^uint64(0) {
			return want, nil
		}
		if got != want {
			return want, errors.New("counter out of sequence: lost, reordered or duplicated data")
		}
		want++
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// migrateAndStream streams counters both ways while the pair migrates and
// checks every byte arrives once and in order.
func migrateAndStream(t *testing.T, p pair, wantPath string) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	counts := make(chan uint64, 2)
	for _, dir := range [][2]*connect.Conn{{p.a, p.b}, {p.b, p.a}} {
		wg.Go(func() { errs <- streamCounters(dir[0], stop, 1<<20) })
		wg.Go(func() {
			n, err := checkCounters(dir[1])
			errs <- err
			counts <- n
		})
	}
	waitPath(t, p.a, wantPath)
	waitPath(t, p.b, wantPath)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
	}
	close(counts)
	for n := range counts {
		t.Logf("%d counters (%d KiB) arrived in order", n, n*8>>10)
	}
	for _, r := range []*connecttest.Relay{p.relayA, p.relayB} {
		select {
		case <-r.Closed():
		case <-time.After(5 * time.Second):
			t.Fatalf("relay still open after both directions switched")
		}
	}
	if p.relayA.Sent() < 3 || p.relayB.Sent() < 3 {
		t.Errorf("relay carried %d and %d messages; want the stream to start there", p.relayA.Sent(), p.relayB.Sent())
	}
	exchange(t, p, []byte("after the relay closed"))
	t.Logf("timing: initiator %+v, responder %+v", p.a.Timing(), p.b.Timing())
}

func TestMigrateDirect(t *testing.T) {
	p := mustOpenPair(t, connecttest.Options{Delay: time.Millisecond}, func(_ bool, cfg *connect.Config) { loopbackOnly(cfg) })
	migrateAndStream(t, p, connect.PathDirect)
	// Close on the direct path: the peer reads EOF.
	done := make(chan error, 1)
	go func() { done <- p.a.Close() }()
	if n, err := io.Copy(io.Discard, p.b); err != nil || n != 0 {
		t.Fatalf("peer Read after Close = %d bytes, %v; want io.EOF", n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestICEImpossible(t *testing.T) {
	p := mustOpenPair(t, connecttest.Options{}, func(_ bool, cfg *connect.Config) {
		cfg.IPFilter = func(net.IP) bool { return false } // no candidates at all
		cfg.ICETimeout = 500 * time.Millisecond
	})
	stop := make(chan struct{})
	close(stop)
	waitPath(t, p.a, connect.PathRelay)
	waitPath(t, p.b, connect.PathRelay)
	exchange(t, p, bytes.Repeat([]byte("relay "), 10000))
	if tm := p.a.Timing(); tm.FinalPath < 500*time.Millisecond {
		t.Errorf("Timing().FinalPath = %v, want the ICE timeout to have passed", tm.FinalPath)
	}
}

func TestPeerWithoutICE(t *testing.T) {
	p := mustOpenPair(t, connecttest.Options{}, func(initiator bool, cfg *connect.Config) {
		loopbackOnly(cfg)
		cfg.DisableICE = !initiator
		cfg.ICETimeout = 20 * time.Second
	})
	waitPath(t, p.a, connect.PathRelay)
	waitPath(t, p.b, connect.PathRelay)
	if tm := p.a.Timing(); tm.FinalPath > 5*time.Second {
		t.Errorf("initiator gave up after %v, want the peer's ABORT to end the attempt early", tm.FinalPath)
	}
	exchange(t, p, []byte("still on the relay"))
}

func TestSmallRelayMessages(t *testing.T) {
	p := mustOpenPair(t, connecttest.Options{MaxMessage: 1024, Delay: time.Millisecond}, func(_ bool, cfg *connect.Config) {
		cfg.DisableICE = true
	})
	msg := make([]byte, 100<<10)
	rand.Read(msg)
	exchange(t, p, msg)
}

func TestConcurrentWrites(t *testing.T) {
	p := mustOpenPair(t, connecttest.Options{}, func(_ bool, cfg *connect.Config) { loopbackOnly(cfg) })
	const writers, size = 4, 40000 // each Write arrives whole, not interleaved
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if _, err := p.a.Write(bytes.Repeat([]byte{byte('a' + i)}, size)); err != nil {
				t.Errorf("Write: %v", err)
			}
		})
	}
	got := make([]byte, writers*size)
	if _, err := io.ReadFull(p.b, got); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for off := 0; off < len(got); off += size {
		if c := bytes.Count(got[off:off+size], got[off:off+1]); c != size {
			t.Fatalf("bytes %d..%d mix writes", off, off+size)
		}
	}
}

// waitGoroutines polls until the number of goroutines is back to at most base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}

// keepWriting writes to c until a Write fails and returns that error.
func keepWriting(c *connect.Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 8<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
		}
	}()
	return errc
}

func TestPeerVanishes(t *testing.T) {
	t.Run("relay", func(t *testing.T) {
		base := runtime.NumGoroutine()
		p := mustOpenPair(t, connecttest.Options{}, func(_ bool, cfg *connect.Config) { cfg.DisableICE = true })
		exchange(t, p, []byte("ping"))
		writeErr := keepWriting(p.a)
		p.b.Kill()
		if _, err := p.a.Read(make([]byte, 1)); err == nil || err == io.EOF {
			t.Fatalf("Read after the peer vanished = %v, want an error", err)
		}
		if err := <-writeErr; err == nil {
			t.Fatalf("Write after the peer vanished succeeded")
		}
		p.a.Close()
		waitGoroutines(t, base)
	})
	t.Run("direct", func(t *testing.T) {
		base := runtime.NumGoroutine()
		p := mustOpenPair(t, connecttest.Options{}, func(_ bool, cfg *connect.Config) {
			loopbackOnly(cfg)
			cfg.IdleTimeout = 2 * time.Second
		})
		waitPath(t, p.a, connect.PathDirect)
		waitPath(t, p.b, connect.PathDirect)
		exchange(t, p, []byte("ping"))
		writeErr := keepWriting(p.a)
		p.b.Kill()
		start := time.Now()
		p.a.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := p.a.Read(make([]byte, 1))
		if err == nil || err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after the peer vanished = %v, want a path error", err)
		}
		t.Logf("Read failed after %v: %v", time.Since(start), err)
		if err := <-writeErr; err == nil {
			t.Fatalf("Write after the peer vanished succeeded")
		}
		p.a.Close()
		waitGoroutines(t, base)
	})
}

// tamperRelay flips a bit in the n-th message it receives.
type tamperRelay struct {
	connect.Relay
	n, seen int
}

func (r *tamperRelay) Recv(ctx context.Context) ([]byte, error) {
	m, err := r.Relay.Recv(ctx)
	if err == nil {
		if r.seen == r.n && len(m) > 0 {
			m[len(m)/2] ^= 1
		}
		r.seen++
	}
	return m, err
}

func TestTamperedHandshake(t *testing.T) {
	// The initiator receives handshake message 2, the responder messages 1 and 3.
	for _, tc := range []struct {
		n           int
		atInitiator bool
	}{{0, true}, {0, false}, {1, false}} {
		n, atInitiator := tc.n, tc.atInitiator
		ka, kb := newKey(t), newKey(t)
		ra, rb := connecttest.Pair(connecttest.Options{})
		var relA, relB connect.Relay = ra, rb
		if atInitiator {
			relA = &tamperRelay{Relay: ra, n: n}
		} else {
			relB = &tamperRelay{Relay: rb, n: n}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() {
			c, err := connect.Open(ctx, connect.Config{Key: ka, Peer: kb.ID(), Initiator: true, DisableICE: true}, relA)
			if err == nil {
				_, err = c.Read(make([]byte, 1)) // a responder's rejection shows here
				c.Close()
			}
			errA = err
		})
		wg.Go(func() {
			c, err := connect.Open(ctx, connect.Config{Key: kb, Peer: ka.ID(), DisableICE: true}, relB)
			if err == nil {
				c.Close()
			}
			errB = err
		})
		wg.Wait()
		cancel()
		ra.Close()
		if errA == nil || errB == nil || errors.Is(errA, io.EOF) {
			t.Errorf("tampered message %d at initiator=%v: initiator %v, responder %v; want both to fail", n, atInitiator, errA, errB)
		}
	}
}
