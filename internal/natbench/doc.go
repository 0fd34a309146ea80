// Package natbench tests and measures device-to-device connections of the
// Internet of People end to end, across the NAT kinds of package netlab.
//
// # What runs
//
// Run builds one lab (see netlab): a full node (libp2p, profile server,
// STUN/TURN server) in the public segment, one callee device per B NAT kind
// and one caller device per A NAT kind, each behind its own home router.
// Every participant is its own process started inside its namespace,
// because a namespace applies to a socket when it is created and libp2p and
// pion create sockets from any goroutine. The processes are re-executions
// of Options.Exe that call MaybeRunRole: the environment variable RoleEnv
// names the role (node, callee, caller) and ParamsEnv carries its
// parameters; each prints JSON lines on stdout.
//
//   - node: node.New with TCP and QUIC on 198.18.0.1:4001 and TURN on
//     198.18.0.1:3478; prints its full multiaddrs when ready.
//   - callee: an agent with a fresh key checks in, publishes a profile,
//     listens to the "chat" service and echoes every connection; per
//     connection it reports when the first byte arrived and the final path.
//   - caller: a fresh key dials the callee's "chat" through the node
//     (client.DialService), writes a 16-byte probe and reads its echo, then
//     streams Size random bytes through the echo while ICE is still at work
//     (and a trickle until the final path is known, and a tail on it), and
//     compares SHA-256 digests; one process per call.
//
// Calls are made one at a time. Callers and callees measure their round trip to
// the node with STUN binding requests before they dial or listen.
//
// # What it reports
//
// Per NAT pair: calls that connected and echoed every byte, the final paths
// ("direct", "turn"), the time from the call's acceptance to the callee
// reading the first application byte (all processes share one clock), in
// milliseconds and in round trips between the devices through the node,
// and the time from the acceptance until the stream runs on its final
// path. The goals it judges against: the first byte within 3 round trips
// after acceptance, and a direct path within 1.5 s.
//
// # Running it
//
// The lab needs root, iproute2 and nftables; the tests skip with the reason
// otherwise.
//
//	sudo go test ./internal/natbench -run TestNATMatrix -v
//	sudo IOP_NATBENCH=1 go test ./internal/natbench -run TestNATBenchmark -v -timeout 30m
//
// TestNATMatrix makes one call per ordered pair of public, cone and
// symmetric without added delay and checks that each connects, echoes
// 1 MiB intact, and ends on the path its NAT kinds allow (direct whenever
// one side is public or both are cone; TURN or direct otherwise). It takes
// about 15 s, also under the race detector, which slows the processes but
// not the outcome: no time is asserted. TestNATBenchmark runs the benchmark with 20 ms one-way
// delay per access link; IOP_NATBENCH_RUNS sets the calls per pair (default
// 5) and IOP_NATBENCH_DELAY the delay. IOP_NATBENCH_DEBUG=1 makes the role
// processes log at debug level; their stderr appears in the test log when a
// call fails.
//
// # Limits
//
// The lab is one machine: the delay is a user-space wire (no jitter or loss
// model; its bounded queue drops bursts), CPU is shared by all processes,
// and a device's RTT is dominated by the added delay. Cone is a
// port-restricted cone; full-cone and endpoint-dependent-filtering NATs
// other than nftables masquerade are not modelled. Path times follow pion's
// candidate acceptance timers (by default 1 s before a peer-reflexive pair
// and 2 s before a relayed one is accepted), so they measure the ICE
// configuration of package connect as much as the network. Timings taken
// under the race detector mean nothing.
package natbench
