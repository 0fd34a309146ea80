package netlab_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/netlab"
)

// listenUDP opens a UDP socket on addr inside h's namespace and closes it
// at the end of the test.
func listenUDP(t *testing.T, h *netlab.Host, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() error {
		a, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp4", a)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, h.Namespace(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// reflect answers every datagram on c with "R <nonce> <source address>",
// where nonce is the datagram's content, until c is closed.
func reflect(c *net.UDPConn) {
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(fmt.Appendf(nil, "R %s %s", buf[:n], from), from) //nolint:errcheck // the prober retries
		}
	}()
}

// query sends a nonce from c to a reflector at to, resending every 200 ms,
// and returns the source address the reflector saw.
func query(t *testing.T, c *net.UDPConn, to netip.AddrPort) netip.AddrPort {
	t.Helper()
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if _, err := c.WriteToUDPAddrPort([]byte(nonce), to); err != nil {
			t.Fatalf("send to %s: %v", to, err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break // resend
			}
			f := strings.Fields(string(buf[:n]))
			if len(f) == 3 && f[0] == "R" && f[1] == nonce {
				ap, err := netip.ParseAddrPort(f[2])
				if err != nil {
					t.Fatalf("reflector reply %q: %v", buf[:n], err)
				}
				return ap
			}
		}
	}
	t.Fatalf("no answer from reflector %s within 5 s", to)
	return netip.AddrPort{}
}

func localAddr(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func namespacesWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix+"-") {
			found = append(found, f[0])
		}
	}
	return found
}

func addDevice(t *testing.T, lab *netlab.Lab, name string, nat netlab.NAT) *netlab.Device {
	t.Helper()
	d, err := lab.AddDevice(name, nat)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTopology brings a lab up with a public and a cone device, checks
// that both reach the server address with the expected source address, and
// that Close removes every namespace and is idempotent.
func TestTopology(t *testing.T) {
	lab := netlab.NewForTest(t, netlab.Config{})
	pub := addDevice(t, lab, "pub1", netlab.Public)
	cone := addDevice(t, lab, "cone1", netlab.Cone)

	if got, want := lab.Public().IP(), netlab.ServerIP; got != want {
		t.Errorf("Public().IP() = %v, want %v", got, want)
	}
	if got, want := pub.IP(), netip.MustParseAddr("198.18.0.21"); got != want || pub.PublicIP() != want || pub.Router() != nil {
		t.Errorf("public device: IP %v, PublicIP %v, router %v; want %v, %v, nil", got, pub.PublicIP(), pub.Router(), want, want)
	}
	if got, want := cone.IP(), netip.MustParseAddr("192.168.2.2"); got != want {
		t.Errorf("cone device IP = %v, want %v", got, want)
	}
	if got, want := cone.PublicIP(), netip.MustParseAddr("198.18.0.12"); got != want {
		t.Errorf("cone device PublicIP = %v, want %v", got, want)
	}

	srv := listenUDP(t, lab.Public(), "198.18.0.1:3478")
	reflect(srv)
	server := netip.MustParseAddrPort("198.18.0.1:3478")
	for _, d := range []*netlab.Device{pub, cone} {
		c := listenUDP(t, d.Host, "0.0.0.0:0")
		got := query(t, c, server)
		if got.Addr() != d.PublicIP() {
			t.Errorf("%s device: server saw %v, want address %v", d.NAT(), got, d.PublicIP())
		}
	}

	names := lab.Namespaces()
	if len(names) != 4 {
		t.Errorf("lab namespaces = %v, want 4 (pub, pub1, cone1, cone1-nat)", names)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if left := namespacesWithPrefix(t, lab.Name()); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
	if _, err := lab.AddDevice("late", netlab.Public); err == nil {
		t.Error("AddDevice after Close succeeded, want an error")
	}
}

// TestNATBehaviour classifies each NAT kind with real UDP: mapping
// (endpoint-independent or not, against three reflector endpoints on two
// server addresses) and filtering (an unsolicited packet from an endpoint
// the device never contacted must not get through a NAT, a reply from a
// contacted endpoint must).
func TestNATBehaviour(t *testing.T) {
	lab := netlab.NewForTest(t, netlab.Config{})
	ends := []netip.AddrPort{
		netip.MustParseAddrPort("198.18.0.1:3479"),
		netip.MustParseAddrPort("198.18.0.1:3480"),
		netip.MustParseAddrPort("198.18.0.2:3479"),
	}
	refl := make([]*net.UDPConn, len(ends))
	for i, e := range ends {
		refl[i] = listenUDP(t, lab.Public(), e.String())
		reflect(refl[i])
	}
	stranger := listenUDP(t, lab.Public(), "198.18.0.1:3481") // never contacted

	for _, nat := range []netlab.NAT{netlab.Public, netlab.Cone, netlab.Symmetric} {
		t.Run(nat.String(), func(t *testing.T) {
			d := addDevice(t, lab, nat.String(), nat)
			c := listenUDP(t, d.Host, "0.0.0.0:0")
			var mapped []netip.AddrPort
			for _, e := range ends {
				mapped = append(mapped, query(t, c, e))
			}
			t.Logf("local %v, mapped %v", localAddr(c), mapped)
			for _, m := range mapped {
				if m.Addr() != d.PublicIP() {
					t.Errorf("mapped address %v, want address %v", m, d.PublicIP())
				}
			}
			distinct := len(slices.CompactFunc(slices.SortedFunc(slices.Values(mapped), netip.AddrPort.Compare),
				func(a, b netip.AddrPort) bool { return a == b }))
			switch nat {
			case netlab.Public:
				want := netip.AddrPortFrom(d.IP(), localAddr(c).Port())
				if mapped[0] != want || distinct != 1 {
					t.Errorf("public device mapped %v, want %v for every endpoint", mapped, want)
				}
			case netlab.Cone:
				if distinct != 1 {
					t.Errorf("cone NAT mapped %v, want one mapping for all endpoints (EIM)", mapped)
				}
			case netlab.Symmetric:
				if distinct != len(mapped) {
					t.Errorf("symmetric NAT mapped %v, want a different mapping per endpoint (APDM)", mapped)
				}
			}

			// Filtering: the stranger's packet is sent first, then one from
			// the contacted endpoint; behind a NAT the first to arrive must
			// be the contacted endpoint's.
			if _, err := stranger.WriteToUDPAddrPort([]byte("unsolicited"), mapped[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := refl[0].WriteToUDPAddrPort([]byte("solicited"), mapped[0]); err != nil {
				t.Fatal(err)
			}
			var got []string
			buf := make([]byte, 1500)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			for !slices.Contains(got, "solicited") {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("waiting for the contacted endpoint's packet: %v (got %q)", err, got)
				}
				if !bytes.HasPrefix(buf[:n], []byte("R ")) { // skip late reflector replies
					got = append(got, string(buf[:n]))
					t.Logf("received %q from %v", buf[:n], from)
				}
			}
			want := []string{"solicited"}
			if nat == netlab.Public {
				want = []string{"unsolicited", "solicited"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("received %q, want %q", got, want)
			}
		})
	}
}

// TestDelay checks that Config.Delay really delays: UDP round trips from a
// cone and a public device to the server take 2*Delay (median of 10), and a
// 1 MiB TCP transfer crosses the wire intact (checksums, segmentation).
func TestDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	lab := netlab.NewForTest(t, netlab.Config{Delay: delay})
	srv := listenUDP(t, lab.Public(), "198.18.0.1:7")
	reflect(srv)
	server := netip.MustParseAddrPort("198.18.0.1:7")

	for _, nat := range []netlab.NAT{netlab.Cone, netlab.Public} {
		d := addDevice(t, lab, nat.String(), nat)
		c := listenUDP(t, d.Host, "0.0.0.0:0")
		query(t, c, server) // warm up ARP and conntrack
		var rtts []time.Duration
		for range 10 {
			start := time.Now()
			query(t, c, server)
			rtts = append(rtts, time.Since(start))
		}
		slices.Sort(rtts)
		median := rtts[len(rtts)/2]
		t.Logf("%s device: RTT min %v median %v max %v", nat, rtts[0], median, rtts[len(rtts)-1])
		if median < 2*delay || median > 4*delay {
			t.Errorf("%s device: median RTT %v, want between %v and %v", nat, median, 2*delay, 4*delay)
		}
	}

	// 1 MiB over TCP from the server to the cone device through both wires'
	// worth of delay.
	var ln net.Listener
	if err := lab.Public().Do(func() (err error) {
		ln, err = net.Listen("tcp4", "198.18.0.1:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	sent := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer conn.Close()
		_, err = conn.Write(data)
		sent <- err
	}()
	var conn net.Conn
	cone := lab.Devices()[0]
	if err := cone.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp4", "198.18.0.1:8080", 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading 1 MiB over TCP through the wire: %v (after %d bytes)", err, len(got))
	}
	if err := <-sent; err != nil {
		t.Fatalf("sending 1 MiB: %v", err)
	}
	t.Logf("1 MiB over TCP took %v; wire drops %d", time.Since(start), lab.WireDrops())
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("received %d bytes that differ from the 1 MiB sent", len(got))
	}
}

// TestCloseKillsProcesses checks that Close kills a long-running process
// started with Command, and also one started in a lab namespace without
// it, before removing the namespaces.
func TestCloseKillsProcesses(t *testing.T) {
	lab := netlab.NewForTest(t, netlab.Config{})
	d := addDevice(t, lab, "dev", netlab.Cone)
	ctx := context.Background()

	tracked := d.Command(ctx, "sleep", "600")
	if err := tracked.Start(); err != nil {
		t.Fatal(err)
	}
	untracked := exec.Command("ip", "netns", "exec", lab.Public().Namespace(), "sleep", "601")
	if err := untracked.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { untracked.Process.Kill() })

	// The tracked command really runs inside the device namespace.
	waitFor(t, "sleep to run in the device namespace", func() bool {
		out, err := exec.Command("ip", "netns", "identify", strconv.Itoa(tracked.Process.Pid)).Output()
		return err == nil && strings.TrimSpace(string(out)) == d.Namespace()
	})

	if err := lab.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range []*exec.Cmd{tracked, untracked} {
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != -1 {
				t.Errorf("%v: Wait = %v, want killed by a signal", c.Args, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%v still running 5 s after Close", c.Args)
		}
	}
	if left := namespacesWithPrefix(t, lab.Name()); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
}

// waitFor polls cond every 10 ms for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// TestCleanupPrefix checks that Cleanup removes namespaces left behind
// under a lab name.
func TestCleanupPrefix(t *testing.T) {
	netlab.Require(t)
	name := fmt.Sprintf("nltest%d", os.Getpid())
	ns := name + "-stale"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	if err := netlab.Cleanup(name); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if left := namespacesWithPrefix(t, name); len(left) > 0 {
		t.Errorf("namespaces left after Cleanup: %v", left)
	}
}

// TestConeHolePunch punches a UDP hole between two cone devices in the
// order that breaks without the routers' input-chain drop: B's first packet
// reaches A's router before A has sent anything to B. The router must drop
// it (its counter shows it), and A's later packet must leave with the same
// mapping the server saw, so that both directions get through.
func TestConeHolePunch(t *testing.T) {
	lab := netlab.NewForTest(t, netlab.Config{})
	srv := listenUDP(t, lab.Public(), "198.18.0.1:3478")
	reflect(srv)
	server := netip.MustParseAddrPort("198.18.0.1:3478")
	a := addDevice(t, lab, "a", netlab.Cone)
	b := addDevice(t, lab, "b", netlab.Cone)
	ca, cb := listenUDP(t, a.Host, "0.0.0.0:0"), listenUDP(t, b.Host, "0.0.0.0:0")
	ma, mb := query(t, ca, server), query(t, cb, server)

	if _, err := cb.WriteToUDPAddrPort([]byte("b1"), ma); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A's router to drop B's unsolicited packet", func() bool {
		out, err := a.Router().Run(context.Background(), "nft", "list", "chain", "inet", "filter", "input")
		if err != nil {
			t.Fatal(err)
		}
		_, after, ok := strings.Cut(out, "counter packets ")
		n, _ := strconv.Atoi(strings.Fields(after + " x")[0])
		return ok && n > 0
	})
	expect := func(c *net.UDPConn, msg string, from netip.AddrPort) {
		t.Helper()
		buf := make([]byte, 1500)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, got, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("waiting for %q from %v: %v", msg, from, err)
			}
			if string(buf[:n]) == msg {
				if got != from {
					t.Errorf("%q came from %v, want %v (the mapping the server saw)", msg, got, from)
				}
				return
			}
		}
	}
	if _, err := ca.WriteToUDPAddrPort([]byte("a1"), mb); err != nil {
		t.Fatal(err)
	}
	expect(cb, "a1", ma)
	if _, err := cb.WriteToUDPAddrPort([]byte("b2"), ma); err != nil {
		t.Fatal(err)
	}
	expect(ca, "b2", mb)
}

// TestNameCollision checks that a second lab with a name in use fails with
// an error naming the failing command and leaves the first lab intact.
func TestNameCollision(t *testing.T) {
	cfg := netlab.Config{Name: fmt.Sprintf("nlc%d", os.Getpid())}
	first := netlab.NewForTest(t, cfg)
	second, err := netlab.New(context.Background(), cfg)
	if err == nil {
		second.Close()
		t.Fatal("second New with the same Name succeeded, want an error")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "netlab: ip netns add "+cfg.Name+"-pub: exit status") {
		t.Errorf("error %q does not name the failing command", err)
	}
	if got := namespacesWithPrefix(t, first.Name()); !slices.Equal(got, []string{cfg.Name + "-pub"}) {
		t.Errorf("namespaces of the first lab = %v, want [%s-pub]", got, cfg.Name)
	}
}

// TestStaleSweep checks that New removes the namespaces of a default-named
// lab whose process no longer exists (a PID above any pid_max).
func TestStaleSweep(t *testing.T) {
	netlab.Require(t)
	stale := "nl4194305xabcd-pub"
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", stale, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })
	netlab.NewForTest(t, netlab.Config{})
	if left := namespacesWithPrefix(t, "nl4194305xabcd"); len(left) > 0 {
		t.Errorf("stale namespaces left after New: %v", left)
	}
}
