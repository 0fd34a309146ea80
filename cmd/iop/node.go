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

	"github.com/iop-go/iop/internal/node"
)

func nodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Ask a node about itself (its HTTP API)"}
	var api string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show a node's status: identity, addresses, peers, hosted and online counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if api == "" {
				return fmt.Errorf("--api is required: the node's HTTP API URL, e.g. http://127.0.0.1:16988 (listed as \"http\" in devnet.json)")
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
			return g.print(st, func(w io.Writer) {
				fmt.Fprintf(w, "node:      %s %s\nlocation:  %s\nuptime:    %s\npeers:     %d (DHT %d)\nhosted:    %d (online %d, indexed %d)\n",
					st.ID, st.Name, st.Location, st.Uptime, st.Peers, st.DHTPeers, st.Profile.Hosted, st.Profile.Online, st.Profile.Indexed)
				for _, a := range st.Addrs {
					fmt.Fprintf(w, "address:   %s\n", a)
				}
			})
		},
	}
	status.Flags().StringVar(&api, "api", "", "the node's HTTP API URL")
	cmd.AddCommand(status)
	return cmd
}
