// Package netlab builds a small NAT lab out of Linux network namespaces,
// veth links, a bridge and nftables NAT, for integration tests that need
// real NAT behaviour (STUN, TURN, ICE hole punching) on one machine.
//
// # Topology
//
// A [Lab] owns a set of namespaces whose names all start with the lab's
// prefix ([Config.Name], by default "nl<pid>x<4 hex digits>", so parallel
// or stale runs never collide):
//
//	<prefix>-pub        the public segment: bridge br0 with 198.18.0.1/24 and
//	                    198.18.0.2/24 (see [Lab.Public]); run servers here.
//	<prefix>-<name>     one namespace per device added with [Lab.AddDevice].
//	<prefix>-<name>-nat the NAT router of a Cone or Symmetric device.
//	<prefix>-<name>-w   the delay wire of a device when [Config.Delay] > 0.
//
// Device number N (1..9, in the order devices are added) gets these
// addresses:
//
//	Public:            device eth0 198.18.0.(20+N)/24, plugged straight into br0.
//	Cone / Symmetric:  device eth0 192.168.N.2/24, default route via the router;
//	                   router lan 192.168.N.1/24, router wan 198.18.0.(10+N)/24.
//
// Every veth is created directly inside its namespaces, so the root
// namespace never holds a lab interface, and deleting the namespaces removes
// every link. IPv6 is disabled inside the lab namespaces.
//
// # NAT kinds
//
// [Cone] is nftables "masquerade": endpoint-independent mapping (the port is
// normally preserved) and address-and-port-dependent filtering, i.e. a
// port-restricted cone. [Symmetric] is "masquerade fully-random":
// address-and-port-dependent mapping. Both routers run
//
//	table ip nat   { chain postrouting { type nat hook postrouting priority srcnat; oifname "wan" masquerade [fully-random] } }
//	table inet filter {
//	  chain input   { type filter hook input priority filter; policy accept; iifname "wan" ct state new counter drop }
//	  chain forward { type filter hook forward priority filter; policy drop;
//	                  ct state established,related accept; iifname "lan" oifname "wan" accept }
//	}
//
// with net.ipv4.ip_forward=1 and rp_filter=0 (new namespaces start with
// forwarding off). The input-chain drop is essential: without it an early
// unsolicited packet from a peer creates a conntrack entry on the router
// that later forces masquerade to pick a different port for exactly that
// peer, and cone-to-cone hole punching falls back to a relay. A side effect
// is that a router's WAN address does not answer ping; probe 198.18.0.1.
// UDP conntrack entries live 30 s until the first reply, 120 s afterwards.
//
// # Delay
//
// Some kernels (including the CI machine kind) have no netem qdisc, so
// [Config.Delay] is implemented in user space: each access link (device or
// router to the bridge) is split by a wire namespace in which the test
// process forwards Ethernet frames between two veths with AF_PACKET sockets,
// holding each frame for the delay in each direction. The device-to-server
// round trip therefore grows by 2*Delay and device-to-device by 4*Delay
// (measured with Delay = 20ms: 41-42 ms median device-to-server UDP round
// trip, about 0.5 ms of forwarding overhead per direction).
// Frames read from a veth may carry offloaded (never filled in) TCP/UDP
// checksums, so the wire disables transmit offloads on the veths that feed
// it and also recomputes IPv4 TCP and UDP checksums before re-injecting a
// frame. The wire queue is bounded (frames beyond it are dropped), so
// unpaced bursts can lose packets, as on a real link.
//
// # Running code in the lab
//
// [Host.Command] returns an *exec.Cmd that runs a program inside a
// namespace through "ip netns exec"; the lab remembers it and [Lab.Close]
// kills it; [Host.Run] runs a short command to completion. [Host.Do] runs a Go function on an OS thread switched into the
// namespace: sockets created inside the function (net.ListenUDP, net.Dial,
// ...) belong to that namespace for their whole life and can be used from
// any goroutine afterwards, while goroutines started by the function run in
// the test's own namespace.
//
// # Cleanup
//
// Deleting a namespace does not stop the processes inside it, so
// [Lab.Close] first kills every tracked process and every other process
// living in a lab namespace by PID, waits for them to exit, stops the wires
// and only then deletes the namespaces. Close is idempotent and works after
// partial setup failures. [New] also removes namespaces left over by a
// crashed earlier run (default-named labs whose creating process is gone),
// and [Cleanup] removes every namespace with a given prefix.
//
// # Use in tests
//
// The lab needs root (CAP_NET_ADMIN), iproute2 and nftables. Tests call
// [NewForTest], which skips the test with the missing piece named when
// [Available] reports a problem, and closes the lab in t.Cleanup:
//
//	lab := netlab.NewForTest(t, netlab.Config{Delay: 20 * time.Millisecond})
//	a, err := lab.AddDevice("a", netlab.Cone)
//	...
//	var pc net.PacketConn
//	err = lab.Public().Do(func() (err error) {
//		pc, err = net.ListenPacket("udp4", "198.18.0.1:3478")
//		return err
//	})
package netlab
