package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/internal/p2p"
)

func agentCmd(g *globals) *cobra.Command {
	var server, which, typ string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the user agent: keep an identity hosted, checked in and online",
		Long: `Run the user agent of an identity in the foreground. It registers hosting at
the profile server when needed (with --type, or with the type of the first
profile set through it), checks in, keeps the connection alive and reconnects
with back-off. Other commands (profile set, service add) talk to it through a
unix socket in the home directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := g.loadKey(which)
			if err != nil {
				return err
			}
			var ai peer.AddrInfo
			if server == "" {
				server = os.Getenv("IOP_SERVER")
			}
			if server != "" {
				if ai, err = p2p.ParseAddr(server); err != nil {
					return err
				}
			}
			a, err := client.NewAgent(client.AgentConfig{Home: g.home, Key: key, Server: ai, Type: typ, Logger: g.logger()})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "agent for %s; local API at %s\n", a.ID(), client.SocketPath(g.home))
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			eg, ctx := errgroup.WithContext(ctx)
			eg.Go(func() error { return a.ServeLocal(ctx) })
			eg.Go(func() error {
				defer cancel() // the agent stopped (hosting cancelled): so does its local API
				return a.Run(ctx)
			})
			return eg.Wait()
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "profile server address (multiaddr with /p2p/ID; env IOP_SERVER); remembered after the first run")
	cmd.Flags().StringVar(&which, "id", "", "identity to run (ID, prefix or name; default: the home's default)")
	cmd.Flags().StringVar(&typ, "type", "", "identity type to register with (otherwise taken from the first profile)")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the running agent's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := client.NewLocalClient(g.home).Status(cmd.Context())
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
			s, err := client.NewLocalClient(g.home).CancelHosting(cmd.Context(), redirect)
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
