package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/internal/devnet"
	"github.com/iop-go/iop/internal/natbench"
	"github.com/iop-go/iop/internal/netlab"
	"github.com/iop-go/iop/internal/node/checkinbench"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/profile/search/searchbench"
	"github.com/iop-go/iop/internal/turnserver/turnbench"
)

func benchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Re-runnable benchmarks of IoP components"}
	var cfg searchbench.Config
	srch := &cobra.Command{
		Use:   "search",
		Short: "Search index against a linear scan over synthetic profiles (default 2.2M)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := searchbench.Run(cmd.Context(), cfg, g.stderr)
			if err != nil {
				return err
			}
			if err := g.print(rep, func(w io.Writer) { rep.WriteTable(w) }); err != nil {
				return err
			}
			if rep.Mismatches > 0 {
				return fmt.Errorf("%d result mismatches between index and scan", rep.Mismatches)
			}
			return nil
		},
	}
	srch.Flags().IntVar(&cfg.N, "n", 2_200_000, "number of profiles")
	srch.Flags().IntVar(&cfg.Queries, "queries", 200, "queries per kind")
	srch.Flags().IntVar(&cfg.Cap, "cap", 10000, "result cap of every query")
	srch.Flags().Uint64Var(&cfg.Seed, "seed", 1, "data and query seed")
	cmd.AddCommand(srch)
	cmd.AddCommand(benchCheckinCmds(g)...)
	cmd.AddCommand(benchNATCmd(g), benchTURNCmd(g))
	var nodes int
	var settle, window time.Duration
	idle := &cobra.Command{
		Use:   "idle",
		Short: "Memory and CPU of idle nodes in a devnet (all nodes in this process)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := devnet.MeasureIdle(cmd.Context(), nodes, settle, window, g.stderr)
			if err != nil {
				return err
			}
			return g.print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "%d nodes idle: %.1f MiB RSS (%.1f MiB per node), CPU %.2f%% of one core (%.3f%% per node), %d goroutines, %.1f DHT peers per node\n",
					rep.Nodes, rep.RSSMiB, rep.RSSMiBPerNode, rep.CPUPercent, rep.CPUPerNode, rep.Goroutines, rep.DHTPeersPerNode)
			})
		},
	}
	idle.Flags().IntVarP(&nodes, "nodes", "n", 20, "nodes")
	idle.Flags().DurationVar(&settle, "settle", 30*time.Second, "wait before measuring")
	idle.Flags().DurationVar(&window, "window", 30*time.Second, "CPU measurement window")
	cmd.AddCommand(idle)
	return cmd
}

func benchCheckinCmds(g *globals) []*cobra.Command {
	var cfg checkinbench.Config
	var idle time.Duration
	var cpuprofile string
	run := &cobra.Command{
		Use:   "checkin",
		Short: "Check in many identities at once to one node; report rate, memory, goroutines, idle CPU",
		Long: `Starts a node in this process, registers --n identities, then checks them all
in at once from --procs client processes (one libp2p host and connection per
identity, with retry and back-off) and holds them online. Reported: check-ins
per second, the node's resident memory and goroutines per checked-in identity,
and its idle CPU over --idle. TCP needs one file descriptor per connection, and
the hard open-file limit of these machines is 20,000, so the TCP default is
19,500; --transport quic uses one socket.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Idle = idle
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.CPUProfile = f
			}
			cfg.Exec = func(addr string, from, to int, seed uint64) *exec.Cmd {
				return exec.Command(self, "bench", "checkin-client", "--server", addr,
					"--from", strconv.Itoa(from), "--to", strconv.Itoa(to), "--seed", strconv.FormatUint(seed, 10))
			}
			rep, err := checkinbench.Run(cmd.Context(), cfg, g.stderr)
			if err != nil {
				return err
			}
			return g.print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "identities      %d checked in, %d failed (%s, %d client processes)\n", rep.CheckedIn, rep.Failed, rep.Transport, rep.Procs)
				fmt.Fprintf(w, "registrations   %.0f/s\n", rep.RegisterPerS)
				fmt.Fprintf(w, "check-ins       %.0f/s (%.1f s for all)\n", rep.CheckInPerS, rep.CheckInSec)
				fmt.Fprintf(w, "node RSS        %.1f MiB (baseline %.1f MiB)\n", rep.RSSMiB, rep.BaseRSSMiB)
				fmt.Fprintf(w, "per identity    %.1f KiB RSS idle, %.1f KiB after GC, %.1f KiB heap, %.2f goroutines\n", rep.KiBPerID, rep.KiBPerIDGC, rep.HeapKiBPerID, rep.GoroutinesID)
				fmt.Fprintf(w, "idle CPU        %.1f%% of one core\n", rep.IdleCPU)
				fmt.Fprintf(w, "online at node  %d\n", rep.Online)
			})
		},
	}
	run.Flags().IntVar(&cfg.N, "n", 19500, "identities")
	run.Flags().IntVar(&cfg.Procs, "procs", 4, "client processes")
	run.Flags().StringVar(&cfg.Transport, "transport", "tcp", "tcp or quic")
	run.Flags().DurationVar(&idle, "idle", 30*time.Second, "idle window for the CPU reading")
	run.Flags().StringVar(&cpuprofile, "cpuprofile", "", "write the node's CPU profile of the check-in phase to this file")

	var server string
	var from, to int
	var seed uint64
	client := &cobra.Command{
		Use:    "checkin-client",
		Short:  "One client process of bench checkin (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ai, err := p2p.ParseAddr(server)
			if err != nil {
				return err
			}
			checkinbench.RunClients(cmd.Context(), ai, from, to, seed, func(r checkinbench.ClientResult) {
				data, _ := json.Marshal(r)
				fmt.Fprintf(g.stdout, "RESULT %s\n", data)
			})
			return nil
		},
	}
	client.Flags().StringVar(&server, "server", "", "node address")
	client.Flags().IntVar(&from, "from", 0, "first identity index")
	client.Flags().IntVar(&to, "to", 0, "end identity index")
	client.Flags().Uint64Var(&seed, "seed", 1, "key seed")
	return []*cobra.Command{run, client}
}

func benchNATCmd(g *globals) *cobra.Command {
	var opt natbench.Options
	cmd := &cobra.Command{
		Use:   "nat",
		Short: "Device-to-device connections through NATs in a network-namespace lab (root only)",
		Long: `Build a NAT lab of network namespaces (a node on a public segment; devices that
are public, behind a cone NAT or behind a symmetric NAT, each access link with
--delay added one way), then for every ordered pair of NAT kinds call a
device's service --runs times and measure the time to the first application
byte after the call is accepted, the time until the stream runs on its final
path, and which path that is. Needs root, ip and nft.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := netlab.Available(); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			opt.Exe = exe
			opt.Progress = g.stderr
			rep, err := natbench.Run(cmd.Context(), opt)
			if err != nil {
				return err
			}
			return g.print(rep, func(w io.Writer) { fmt.Fprint(w, rep.Markdown()) })
		},
	}
	cmd.Flags().DurationVar(&opt.Delay, "delay", 20*time.Millisecond, "one-way delay added on each access link")
	cmd.Flags().IntVar(&opt.Runs, "runs", 5, "calls per NAT pair")
	cmd.Flags().IntVar(&opt.Size, "size", 1<<20, "bytes sent through each connection after the first byte")
	return cmd
}

func benchTURNCmd(g *globals) *cobra.Command {
	var opt turnbench.Options
	cmd := &cobra.Command{
		Use:   "turn",
		Short: "TURN relay cost against coturn, both driven by coturn's turnutils_uclient (Linux, coturn installed)",
		Long: `Start coturn's turnserver and this node's STUN/TURN server (and with --pion a
stock pion/turn server) as separate processes on loopback, drive each with the
same turnutils_uclient flood, and report server CPU time per relayed message
and throughput, side by side in one run. Needs coturn (apt-get install coturn).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := turnbench.Run(cmd.Context(), opt, g.stderr)
			if err != nil {
				return err
			}
			return g.print(rep, func(w io.Writer) { fmt.Fprint(w, rep.Markdown()) })
		},
	}
	cmd.Flags().IntVar(&opt.Repeats, "repeats", 2, "measurements per server (the order alternates)")
	cmd.Flags().IntVar(&opt.Allocations, "allocations", 10, "client-to-client allocations (uclient -m)")
	cmd.Flags().IntVar(&opt.Messages, "messages", 10000, "messages per allocation (uclient -n)")
	cmd.Flags().IntVar(&opt.Length, "length", 100, "payload bytes (uclient -l)")
	cmd.Flags().BoolVar(&opt.Pion, "pion", false, "also measure a stock pion/turn server")
	return cmd
}
