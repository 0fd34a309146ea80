package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
)

type resolveJSON struct {
	*client.Resolution
	Online  *bool               `json:"online,omitempty"`
	Profile *client.ProfileView `json:"profile,omitempty"`
}

func resolveCmd(g *globals) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "resolve ID",
		Short: "Find which server hosts an identity, from any node, and whether it is online",
		Long: `Ask any node to look an identity up in the content address network. The
answer (the identity's signed claim countersigned by its server, and the
server's signed contact record) is verified here; then the hosting server is
asked whether the identity is online.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := identity.ParseID(args[0])
			if err != nil {
				return err
			}
			var out resolveJSON
			err = withServer(cmd.Context(), server, func(ctx context.Context, c *client.Conn) error {
				res, err := c.Resolve(ctx, id)
				out.Resolution = res
				return err
			})
			if err != nil {
				return err
			}
			if out.State == "hosted" && len(out.Addrs) > 0 {
				ctx, cancel := context.WithTimeout(cmd.Context(), 20*time.Second)
				defer cancel()
				// Reaching the hosting server is best effort: the
				// resolution itself is already verified.
				_ = withServer(ctx, out.Addrs[0], func(ctx context.Context, c *client.Conn) error {
					info, err := c.GetProfile(ctx, id, client.GetOptions{})
					if err != nil {
						return err
					}
					out.Online = &info.Online
					if info.Profile != nil {
						v := client.ViewOf(info.Profile)
						out.Profile = &v
					}
					return nil
				})
			}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "identity: %s\nstate:    %s\nserver:   %s\n", out.ID, out.State, out.Server)
				for _, a := range out.Addrs {
					fmt.Fprintf(w, "address:  %s\n", a)
				}
				if out.Online != nil {
					fmt.Fprintf(w, "online:   %v\n", *out.Online)
				}
			})
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "any node's address (multiaddr with /p2p/ID; env IOP_SERVER)")
	return cmd
}
