package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the public segment.
var (
	// PublicPrefix is the public segment every router WAN and public device
	// is on.
	PublicPrefix = netip.MustParsePrefix("198.18.0.0/24")
	// ServerIP is the first address of the public namespace's bridge; run
	// servers on it.
	ServerIP = netip.MustParseAddr("198.18.0.1")
	// ServerIP2 is a second address of the public namespace's bridge, for
	// probes that need two server addresses (RFC 5780 style NAT checks).
	ServerIP2 = netip.MustParseAddr("198.18.0.2")
)

// maxDevices is the number of devices a lab can hold: router WANs use
// 198.18.0.11-19 and public devices 198.18.0.21-29.
const maxDevices = 9

// cmdTimeout bounds every ip/nft invocation made by the lab itself.
const cmdTimeout = 30 * time.Second

// NAT is the kind of network address translation between a device and the
// public segment.
type NAT int

const (
	// Public puts the device directly on the public segment, no router.
	Public NAT = iota
	// Cone is nftables "masquerade": endpoint-independent mapping with
	// address-and-port-dependent filtering (a port-restricted cone).
	Cone
	// Symmetric is nftables "masquerade fully-random":
	// address-and-port-dependent mapping and filtering.
	Symmetric
)

// String returns "public", "cone" or "symmetric".
func (n NAT) String() string {
	switch n {
	case Public:
		return "public"
	case Cone:
		return "cone"
	case Symmetric:
		return "symmetric"
	}
	return "NAT(" + strconv.Itoa(int(n)) + ")"
}

// ParseNAT parses the names String returns (case-insensitive); "none" is
// accepted for Public, "eim" for Cone and "sym" for Symmetric.
func ParseNAT(s string) (NAT, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "public", "none":
		return Public, nil
	case "cone", "eim":
		return Cone, nil
	case "symmetric", "sym":
		return Symmetric, nil
	}
	return 0, fmt.Errorf("netlab: unknown NAT kind %q; use public, cone or symmetric", s)
}

// Config configures a Lab.
type Config struct {
	// Name is a short unique prefix for the lab's namespace names (letters,
	// digits, '_' and '.', at most 24 characters). The default is
	// "nl<pid>x<4 random hex digits>", which lets New recognise and remove
	// the leftovers of crashed runs.
	Name string
	// Delay is the one-way delay added on every access link (device or
	// router to the public bridge), in each direction; 0 means none. It is
	// implemented by a user-space wire in the test process (see the package
	// documentation) and is accurate to about a millisecond when the
	// machine is not overloaded.
	Delay time.Duration
}

// Lab is a running NAT lab. Create it with New or NewForTest and release it
// with Close. Its methods are safe for concurrent use.
type Lab struct {
	name  string
	delay time.Duration
	pub   *Host

	ctx    context.Context // cancelled by Close; parent of every Command
	cancel context.CancelFunc

	mu         sync.Mutex
	namespaces []string // in creation order
	cmds       []*exec.Cmd
	wires      []*wire
	devices    []*Device
	names      map[string]bool
	closed     bool
	closeErr   error
}

// Host is one network namespace of a lab: the public segment, a device or
// a NAT router.
type Host struct {
	lab   *Lab
	ns    string
	addrs []netip.Addr
}

// Namespace returns the namespace name, usable with "ip netns exec" and
// "ip -n".
func (h *Host) Namespace() string { return h.ns }

// IP returns the host's primary IPv4 address (for a router, its WAN
// address).
func (h *Host) IP() netip.Addr { return h.addrs[0] }

// Addrs returns all IPv4 addresses of the host, primary first.
func (h *Host) Addrs() []netip.Addr { return append([]netip.Addr(nil), h.addrs...) }

// Device is a namespace with one interface, eth0, that reaches the public
// segment either directly or through a NAT router. Its embedded Host is the
// device namespace itself.
type Device struct {
	*Host
	name   string
	nat    NAT
	router *Host
}

// Name returns the name the device was added with.
func (d *Device) Name() string { return d.name }

// NAT returns the device's NAT kind.
func (d *Device) NAT() NAT { return d.nat }

// Router returns the NAT router's namespace, or nil for a Public device.
func (d *Device) Router() *Host { return d.router }

// PublicIP returns the address the device's traffic carries on the public
// segment: the router's WAN address behind a NAT, the device's own address
// otherwise.
func (d *Device) PublicIP() netip.Addr {
	if d.router != nil {
		return d.router.IP()
	}
	return d.IP()
}

// Available reports whether a lab can run here: nil when the process is
// root and ip and nft work; otherwise an error that names what is missing
// and how to get it.
func Available() error { return availableOnce() }

var availableOnce = sync.OnceValue(checkAvailable)

func checkAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("netlab: needs root (CAP_NET_ADMIN to create network namespaces); run the tests as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("netlab: ip not found in PATH; apt-get install iproute2")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("netlab: nft not found in PATH; apt-get install nftables")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	probe := fmt.Sprintf("nlprobe%dx%s", os.Getpid(), randomHex(2))
	if err := run(ctx, nil, "ip", "netns", "add", probe); err != nil {
		return fmt.Errorf("%v (network namespaces do not work here; needs a kernel with CONFIG_NET_NS and CAP_SYS_ADMIN)", err)
	}
	defer run(ctx, nil, "ip", "netns", "del", probe) //nolint:errcheck // best effort
	if err := run(ctx, strings.NewReader("add table ip netlabprobe\n"), "ip", "netns", "exec", probe, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("%v (nftables does not work here; needs a kernel with nf_tables)", err)
	}
	return nil
}

// Require skips the test, with the reason, when Available reports that
// the lab cannot run here.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("netlab: %v", strings.TrimPrefix(err.Error(), "netlab: "))
	}
}

// NewForTest calls Require, creates a lab with New (failing the test on
// error) and closes it in t.Cleanup, reporting Close errors.
func NewForTest(t testing.TB, cfg Config) *Lab {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	lab, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	return lab
}

var (
	validName       = regexp.MustCompile(`^[A-Za-z0-9_.]{1,24}$`)
	validDeviceName = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)
)

// New creates a lab with its public namespace and bridge. Before that it
// removes namespaces left over by crashed runs of default-named labs. On
// error everything already created is removed again.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if cfg.Delay < 0 {
		return nil, fmt.Errorf("netlab: negative Config.Delay %v", cfg.Delay)
	}
	name := cfg.Name
	if name == "" {
		name = fmt.Sprintf("nl%dx%s", os.Getpid(), randomHex(2))
	} else if !validName.MatchString(name) {
		return nil, fmt.Errorf("netlab: Config.Name %q must be 1-24 letters, digits, '_' or '.'", name)
	}
	sweepStale(ctx)
	lctx, cancel := context.WithCancel(context.Background())
	l := &Lab{name: name, delay: cfg.Delay, ctx: lctx, cancel: cancel, names: map[string]bool{}}
	pub, err := l.addNamespace(ctx, "pub", ServerIP, ServerIP2)
	if err == nil {
		err = runAll(ctx,
			[]string{"ip", "-n", pub.ns, "link", "add", "br0", "type", "bridge"},
			[]string{"ip", "-n", pub.ns, "addr", "add", ServerIP.String() + "/24", "dev", "br0"},
			[]string{"ip", "-n", pub.ns, "addr", "add", ServerIP2.String() + "/24", "dev", "br0"},
			[]string{"ip", "-n", pub.ns, "link", "set", "br0", "up"},
		)
	}
	if err != nil {
		return nil, errors.Join(err, l.Close())
	}
	l.pub = pub
	return l, nil
}

// Name returns the lab's namespace prefix.
func (l *Lab) Name() string { return l.name }

// Delay returns the configured one-way access-link delay.
func (l *Lab) Delay() time.Duration { return l.delay }

// Public returns the public namespace, which holds bridge br0 with
// ServerIP (198.18.0.1) and ServerIP2 (198.18.0.2).
func (l *Lab) Public() *Host { return l.pub }

// Devices returns the devices added so far, in order.
func (l *Lab) Devices() []*Device {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Device(nil), l.devices...)
}

// WireDrops returns how many frames the delay wires have dropped so far
// because their queue was full or the frame did not fit the link (0
// without Config.Delay). Tests can log it when a transfer misbehaves.
func (l *Lab) WireDrops() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for _, w := range l.wires {
		n += w.dropped.Load()
	}
	return n
}

// Namespaces returns the names of all namespaces the lab has created and
// not yet deleted.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

// AddDevice adds a device namespace named <prefix>-<name> behind the given
// NAT kind (see the package documentation for the addresses). name must be
// 1-12 letters or digits and unique in the lab. With Config.Delay > 0 the
// device's (or its router's) access link runs through a delay wire.
func (l *Lab) AddDevice(name string, nat NAT) (*Device, error) {
	if !validDeviceName.MatchString(name) {
		return nil, fmt.Errorf("netlab: device name %q must be 1-12 letters or digits", name)
	}
	if nat != Public && nat != Cone && nat != Symmetric {
		return nil, fmt.Errorf("netlab: device %s: unknown NAT kind %d", name, int(nat))
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return nil, errors.New("netlab: AddDevice on a closed lab")
	case l.names[name]:
		l.mu.Unlock()
		return nil, fmt.Errorf("netlab: device %q already exists in lab %s", name, l.name)
	case len(l.names) >= maxDevices:
		l.mu.Unlock()
		return nil, fmt.Errorf("netlab: a lab holds at most %d devices; start a second lab for more", maxDevices)
	}
	l.names[name] = true
	idx := len(l.names)
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(l.ctx, cmdTimeout)
	defer cancel()
	d := &Device{name: name, nat: nat}
	port := fmt.Sprintf("p-%d", idx) // bridge port in the public namespace
	pubNS := l.pub.ns

	// uplink is the namespace and interface name that attaches to the
	// public bridge: the router's wan or the public device's eth0.
	var upHost *Host
	var upIf string
	var err error
	if nat == Public {
		ip := netip.AddrFrom4([4]byte{198, 18, 0, byte(20 + idx)})
		if d.Host, err = l.addNamespace(ctx, name, ip); err != nil {
			return nil, err
		}
		upHost, upIf = d.Host, "eth0"
	} else {
		devIP := netip.AddrFrom4([4]byte{192, 168, byte(idx), 2})
		lanIP := netip.AddrFrom4([4]byte{192, 168, byte(idx), 1})
		wanIP := netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + idx)})
		if d.router, err = l.addNamespace(ctx, name+"-nat", wanIP, lanIP); err != nil {
			return nil, err
		}
		if d.Host, err = l.addNamespace(ctx, name, devIP); err != nil {
			return nil, err
		}
		r, dv := d.router.ns, d.Host.ns
		err = runAll(ctx,
			[]string{"ip", "-n", r, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", dv},
			[]string{"ip", "-n", r, "addr", "add", lanIP.String() + "/24", "dev", "lan"},
			[]string{"ip", "-n", r, "link", "set", "lan", "up"},
			[]string{"ip", "-n", dv, "addr", "add", devIP.String() + "/24", "dev", "eth0"},
			[]string{"ip", "-n", dv, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", dv, "route", "add", "default", "via", lanIP.String()},
		)
		if err != nil {
			return nil, err
		}
		if err := d.router.Do(func() error {
			for _, s := range [][2]string{
				{"net/ipv4/ip_forward", "1"},
				{"net/ipv4/conf/all/rp_filter", "0"},
				{"net/ipv4/conf/default/rp_filter", "0"},
				{"net/ipv4/conf/lan/rp_filter", "0"},
			} {
				if err := writeSysctl(s[0], s[1]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("netlab: router %s: %w", r, err)
		}
		if err := run(ctx, strings.NewReader(ruleset(nat)), "ip", "netns", "exec", r, "nft", "-f", "-"); err != nil {
			return nil, err
		}
		upHost, upIf = d.router, "wan"
	}

	if l.delay == 0 {
		err = runAll(ctx,
			[]string{"ip", "-n", pubNS, "link", "add", port, "type", "veth", "peer", "name", upIf, "netns", upHost.ns},
			[]string{"ip", "-n", pubNS, "link", "set", port, "master", "br0", "up"},
		)
	} else {
		var w *Host
		if w, err = l.addNamespace(ctx, name+"-w"); err != nil {
			return nil, err
		}
		err = runAll(ctx,
			[]string{"ip", "-n", pubNS, "link", "add", port, "type", "veth", "peer", "name", "w1", "netns", w.ns},
			[]string{"ip", "-n", w.ns, "link", "add", "w0", "type", "veth", "peer", "name", upIf, "netns", upHost.ns},
			[]string{"ip", "-n", w.ns, "link", "set", "w0", "promisc", "on", "up"},
			[]string{"ip", "-n", w.ns, "link", "set", "w1", "promisc", "on", "up"},
		)
		if err == nil {
			err = l.startWire(w, upHost, upIf, port)
		}
		if err == nil {
			err = run(ctx, nil, "ip", "-n", pubNS, "link", "set", port, "master", "br0", "up")
		}
	}
	if err != nil {
		return nil, err
	}
	if err := runAll(ctx,
		[]string{"ip", "-n", upHost.ns, "addr", "add", upHost.IP().String() + "/24", "dev", upIf},
		[]string{"ip", "-n", upHost.ns, "link", "set", upIf, "up"},
	); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.devices = append(l.devices, d)
	l.mu.Unlock()
	return d, nil
}

// ruleset is the router's nftables configuration (see the package
// documentation for why the input chain drops new inbound traffic).
func ruleset(nat NAT) string {
	masq := "masquerade"
	if nat == Symmetric {
		masq = "masquerade fully-random"
	}
	return `table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" ` + masq + `
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state new counter drop
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
}
`
}

// addNamespace creates <prefix>-<suffix>, records it for Close, brings lo
// up and disables IPv6 in it.
func (l *Lab) addNamespace(ctx context.Context, suffix string, addrs ...netip.Addr) (*Host, error) {
	ns := l.name + "-" + suffix
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("netlab: lab is closed")
	}
	l.mu.Unlock()
	if err := run(ctx, nil, "ip", "netns", "add", ns); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	h := &Host{lab: l, ns: ns, addrs: addrs}
	if err := run(ctx, nil, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	err := h.Do(func() error {
		for _, k := range []string{"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"} {
			if err := writeSysctl(k, "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: namespace %s: %w", ns, err)
	}
	return h, nil
}

// writeSysctl writes a sysctl of the calling thread's network namespace.
func writeSysctl(key, value string) error {
	if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0); err != nil {
		return fmt.Errorf("setting %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// Close kills every process started with Host.Command and every other
// process still inside a lab namespace (by PID), waits for them to exit,
// stops the delay wires and deletes the lab's namespaces. It keeps going
// after errors, returns them joined, and is idempotent: later calls return
// the first call's result.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.closeErr
	}
	l.closed = true
	cmds, wires, namespaces := l.cmds, l.wires, l.namespaces
	l.mu.Unlock()

	l.cancel()
	var errs []error
	var running []int
	for _, c := range cmds {
		// Kill fails with os.ErrProcessDone once the caller has waited for
		// the process, so a PID reused since then is never touched.
		if c.Process != nil && c.Process.Kill() == nil {
			running = append(running, c.Process.Pid)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := killNamespaces(ctx, namespaces); err != nil {
		errs = append(errs, err)
	}
	for _, pid := range running {
		if err := waitGone(ctx, pid); err != nil {
			errs = append(errs, err)
		}
	}
	for _, w := range wires {
		w.stop()
	}
	var left []string
	for i := len(namespaces) - 1; i >= 0; i-- {
		if err := run(ctx, nil, "ip", "netns", "del", namespaces[i]); err != nil {
			errs = append(errs, err)
			left = append(left, namespaces[i])
		}
	}
	l.mu.Lock()
	l.namespaces = left
	l.closeErr = errors.Join(errs...)
	l.mu.Unlock()
	return l.closeErr
}

// killNamespaces SIGKILLs every process (other than this one) whose network
// namespace is one of namespaces and waits until none is left.
func killNamespaces(ctx context.Context, namespaces []string) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var alive []int
		for _, ns := range namespaces {
			pids, err := namespacePIDs(ctx, ns)
			if err != nil {
				return err
			}
			alive = append(alive, pids...)
		}
		if len(alive) == 0 {
			return nil
		}
		for _, pid := range alive {
			unix.Kill(pid, unix.SIGKILL) //nolint:errcheck // it may have exited already
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: processes %v still running in lab namespaces after SIGKILL: %w", alive, ctx.Err())
		case <-tick.C:
		}
	}
}

// namespacePIDs lists the processes in ns ("ip netns pids"), except this
// process, which may have a thread there during Host.Do.
func namespacePIDs(ctx context.Context, ns string) ([]int, error) {
	out, err := output(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// waitGone waits until pid has exited (it may stay a zombie until its
// parent waits for it).
func waitGone(ctx context.Context, pid int) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return nil
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: process %d did not exit after SIGKILL: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// Cleanup kills the processes in, and deletes, every network namespace
// whose name starts with prefix followed by '-' (the lab name, as given by
// Lab.Name or Config.Name). Use it to remove what a crashed run left
// behind; it must not be used on a lab that is still in use.
func Cleanup(prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	all, err := listNamespaces(ctx)
	if err != nil {
		return err
	}
	var mine []string
	for _, ns := range all {
		if strings.HasPrefix(ns, prefix+"-") {
			mine = append(mine, ns)
		}
	}
	return deleteNamespaces(ctx, mine)
}

func deleteNamespaces(ctx context.Context, namespaces []string) error {
	var errs []error
	if err := killNamespaces(ctx, namespaces); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range namespaces {
		if err := run(ctx, nil, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var staleName = regexp.MustCompile(`^nl(?:probe)?(\d+)x[0-9a-f]{4}(?:-|$)`)

// sweepStale deletes namespaces of default-named labs (and Available
// probes) whose creating process no longer exists. Errors are ignored:
// the sweep is a courtesy and must not fail a new lab.
func sweepStale(ctx context.Context) {
	all, err := listNamespaces(ctx)
	if err != nil {
		return
	}
	var stale []string
	for _, ns := range all {
		m := staleName.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			stale = append(stale, ns)
		}
	}
	if len(stale) > 0 {
		deleteNamespaces(ctx, stale) //nolint:errcheck // best effort
	}
}

func listNamespaces(ctx context.Context) ([]string, error) {
	out, err := output(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

func runAll(ctx context.Context, cmds ...[]string) error {
	for _, c := range cmds {
		if err := run(ctx, nil, c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, stdin *strings.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return cmdError(cmd, err, stderr.String())
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", cmdError(cmd, err, stderr.String())
	}
	return string(out), nil
}

func cmdError(cmd *exec.Cmd, err error, stderr string) error {
	msg := fmt.Sprintf("netlab: %s: %v", strings.Join(cmd.Args, " "), err)
	if s := strings.TrimSpace(stderr); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
