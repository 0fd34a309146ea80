package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
)

func agentCmd(g *globals) *cobra.Command {
	var server, typ string
	var which []string
	var all bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the user agent: keep identities hosted, checked in and online",
		Long: `Run the user agent in the foreground, for one identity of the home (--as,
else the default) or several (--id a --id b, or --all). For each it registers
hosting at the profile server when needed (with --type, or with the type of
the first profile set through it), checks in, keeps the connection alive and
reconnects with back-off. It answers other identities' private-graph
requests on the device. Other commands (profile set, service add, rel
grant) talk to it through a unix socket in the home directory; with several
identities they choose theirs with --as.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all {
				ks, err := g.keystore()
				if err != nil {
					return err
				}
				entries, err := ks.List()
				if err != nil {
					return err
				}
				if len(entries) == 0 {
					return fmt.Errorf("no identity in %s: create one with `iop id new --home %s`", g.home, g.home)
				}
				which = which[:0]
				for _, e := range entries {
					which = append(which, e.ID.String())
				}
			}
			if len(which) == 0 {
				which = []string{g.as}
			}
			var ai peer.AddrInfo
			if server == "" {
				server = os.Getenv("IOP_SERVER")
			}
			if server != "" {
				var err error
				if ai, err = p2p.ParseAddr(server); err != nil {
					return err
				}
			}
			h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
			if err != nil {
				return err
			}
			defer h.Close()
			var agents []*client.Agent
			seen := map[identity.ID]bool{}
			for _, w := range which {
				key, err := g.loadKey(w)
				if err != nil {
					return err
				}
				if seen[key.ID()] {
					continue
				}
				seen[key.ID()] = true
				a, err := client.NewAgent(client.AgentConfig{Home: g.home, Key: key, Server: ai, Type: typ, Host: h,
					Logger: g.logger().With("identity", key.ID().Short())})
				if err != nil {
					return fmt.Errorf("identity %s: %w", key.ID().Short(), err)
				}
				agents = append(agents, a)
				fmt.Fprintf(g.stderr, "agent for %s\n", a.ID())
			}
			fmt.Fprintf(g.stderr, "local API at %s\n", client.SocketPath(g.home))
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			eg, ctx := errgroup.WithContext(ctx)
			eg.Go(func() error { return client.ServeLocal(ctx, g.home, agents...) })
			var running sync.WaitGroup
			for _, a := range agents {
				running.Add(1)
				eg.Go(func() error {
					defer running.Done()
					return a.Run(ctx)
				})
				eg.Go(func() error { return a.ServeRelations(ctx) })
			}
			go func() {
				// Every identity's hosting was cancelled: the local API stops too.
				running.Wait()
				cancel()
			}()
			return eg.Wait()
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "profile server address (multiaddr with /p2p/ID; env IOP_SERVER); remembered after the first run")
	cmd.Flags().StringSliceVar(&which, "id", nil, "identities to run (ID, prefix or name; repeatable; default: --as, else the home's default)")
	cmd.Flags().BoolVar(&all, "all", false, "run every identity of the home")
	cmd.Flags().StringVar(&typ, "type", "", "identity type to register with (otherwise taken from the first profile)")
	agents := &cobra.Command{
		Use:   "list",
		Short: "The identities the running agent serves, and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := client.NewLocalClient(g.home).Agents(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(list, func(w io.Writer) {
				for _, s := range list {
					fmt.Fprintf(w, "%s  %-20s %s\n", s.ID, s.State, s.Server)
				}
			})
		},
	}
	cmd.AddCommand(agents)
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the running agent's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lc, err := g.local()
			if err != nil {
				return err
			}
			s, err := lc.Status(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(s, func(w io.Writer) {
				fmt.Fprintf(w, "identity: %s\nserver:   %s\nstate:    %s\n", s.ID, s.Server, s.State)
				if s.LastError != "" {
					fmt.Fprintf(w, "error:    %s\n", s.LastError)
				}
				if s.Profile != nil {
					printProfile(w, s.Profile)
				}
			})
		},
	}
	var redirect string
	cancelCmd := &cobra.Command{
		Use:   "cancel",
		Short: "End the identity's hosting (optionally --redirect to its new server's ID) and stop the agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lc, err := g.local()
			if err != nil {
				return err
			}
			s, err := lc.CancelHosting(cmd.Context(), redirect)
			if err != nil {
				return err
			}
			return g.print(s, func(w io.Writer) { fmt.Fprintf(w, "hosting of %s cancelled\n", s.ID) })
		},
	}
	cancelCmd.Flags().StringVar(&redirect, "redirect", "", "network ID of the identity's new server")
	cmd.AddCommand(status, cancelCmd)
	return cmd
}
