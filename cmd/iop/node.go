package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/internal/node"
)

func nodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Ask a node about itself (its HTTP API)"}
	var api, server string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show a node's status: identity, addresses, neighbours, DHT peers, hosted and shared counts",
		Long: `Ask a node for its status over libp2p (--server, or IOP_SERVER) or over its
HTTP API (--api URL, listed as "http" in devnet.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if api == "" {
				var st node.Status
				err := withServer(cmd.Context(), server, func(ctx context.Context, c *client.Conn) error {
					doc, err := c.NodeStatus(ctx)
					if err != nil {
						return err
					}
					return json.Unmarshal(doc, &st)
				})
				if err != nil {
					return err
				}
				return printStatus(g, st)
			}
			if !strings.HasPrefix(api, "http") {
				api = "http://" + api
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(api, "/")+"/api/status", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("node status: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("node status: %s", resp.Status)
			}
			var st node.Status
			if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&st); err != nil {
				return fmt.Errorf("node status: %w", err)
			}
			return printStatus(g, st)
		},
	}
	status.Flags().StringVar(&server, "server", "", "the node's address (multiaddr with /p2p/ID; env IOP_SERVER)")
	status.Flags().StringVar(&api, "api", "", "the node's HTTP API URL, instead of --server")
	cmd.AddCommand(status)
	return cmd
}

func printStatus(g *globals, st node.Status) error {
	return g.print(st, func(w io.Writer) {
		fmt.Fprintf(w, "node:       %s %s\nlocation:   %s\nuptime:     %s\npeers:      %d (DHT %d)\nLOC:        %d neighbours, %d colleagues\n",
			st.ID, st.Name, st.Location, st.Uptime, st.Peers, st.DHTPeers, st.LocNeighbours, st.LocColleagues)
		fmt.Fprintf(w, "profiles:   %d hosted (%d online), %d shared by %d neighbours, %d followers, %d indexed\n",
			st.Profile.Hosted, st.Profile.Online, st.Profile.Shared, st.Profile.Neighbors, st.Profile.Followers, st.Profile.Indexed)
		for _, a := range st.Addrs {
			fmt.Fprintf(w, "address:    %s\n", a)
		}
	})
}
