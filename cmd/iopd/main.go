// Command iopd runs an IoP full node: the libp2p host, the profile server and
// the HTTP API, with its key and embedded database in a data directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/iop-go/iop/internal/node"
)

func main() {
	var cfg node.Config
	var configFile, listen, bootstrap, level string
	flag.StringVar(&configFile, "config", "", "JSON config file (flags override it)")
	flag.StringVar(&cfg.DataDir, "data", "", "data directory (key and database)")
	flag.StringVar(&listen, "listen", "", "comma-separated libp2p listen multiaddrs (default TCP+QUIC on 16987)")
	flag.StringVar(&bootstrap, "bootstrap", "", "comma-separated multiaddrs (with /p2p/ID) of nodes to join the network through")
	flag.StringVar(&cfg.HTTP, "http", "", `HTTP API address (default 127.0.0.1:16988, "off" to disable)`)
	flag.StringVar(&cfg.TURN, "turn", "", "UDP address of the node's STUN/TURN server, a specific IP and port (e.g. 203.0.113.5:3478)")
	flag.StringVar(&cfg.Loc, "location", "", "the node's declared location, LAT,LON in degrees")
	flag.StringVar(&cfg.Name, "name", "", "a label for logs and status")
	flag.IntVar(&cfg.MaxHosted, "max-hosted", 0, "hosted identities quota (default and maximum 20,000)")
	flag.StringVar(&cfg.Chain, "chain", "", `token chain network to run: main, test or devnet ("" or "off": none)`)
	flag.BoolVar(&cfg.Mine, "mine", false, "mine with the node key whenever it holds a licence on the chain")
	flag.StringVar(&level, "log", "info", "log level: debug, info, warn, error")
	flag.Parse()
	if configFile != "" {
		fc, err := node.LoadConfig(configFile)
		if err != nil {
			fatal(err)
		}
		flag.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "data":
				fc.DataDir = cfg.DataDir
			case "http":
				fc.HTTP = cfg.HTTP
			case "location":
				fc.Loc = cfg.Loc
			case "name":
				fc.Name = cfg.Name
			case "max-hosted":
				fc.MaxHosted = cfg.MaxHosted
			case "turn":
				fc.TURN = cfg.TURN
			case "chain":
				fc.Chain = cfg.Chain
			case "mine":
				fc.Mine = cfg.Mine
			}
		})
		cfg = fc
	}
	if listen != "" {
		cfg.Listen = strings.Split(listen, ",")
	}
	if bootstrap != "" {
		cfg.Bootstrap = strings.Split(bootstrap, ",")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		fatal(fmt.Errorf("--log %q: %w", level, err))
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	n, err := node.New(cfg)
	if err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, a := range n.Addrs() {
		fmt.Println(a)
	}
	if err := n.Run(ctx); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "iopd:", err)
	os.Exit(1)
}
