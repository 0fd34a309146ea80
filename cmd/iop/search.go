package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
)

type matchJSON struct {
	Profile       client.ProfileView `json:"profile"`
	Hosted        bool               `json:"hosted"`
	HostingServer identity.ID        `json:"hosting_server"`
	Online        bool               `json:"online"`
}

type searchJSON struct {
	Total          int           `json:"total"`
	CoveredServers []identity.ID `json:"covered_servers"`
	TimedOut       bool          `json:"timed_out"`
	Results        []matchJSON   `json:"results"`
}

func searchCmd(g *globals) *cobra.Command {
	var server, near string
	var q client.Query
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Search profiles by type, name, location and extra data",
		Long: `Search a profile server. Type and name are case-insensitive wildcards with '*'
as prefix and/or suffix ("chat/*", "*da*"); --near LAT,LON with --radius in
metres filters by haversine distance; --extra is a regular expression (a
restricted grammar) matched against the extra data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if near != "" {
				l, err := graph.ParseLocation(near)
				if err != nil {
					return err
				}
				q.Near = &l
			} else if cmd.Flags().Changed("radius") {
				return fmt.Errorf("--radius needs --near LAT,LON")
			}
			return withServer(cmd.Context(), server, func(ctx context.Context, c *client.Conn) error {
				res, err := c.SearchAll(ctx, q)
				if err != nil {
					return err
				}
				out := searchJSON{Total: res.Total, CoveredServers: res.CoveredServers, TimedOut: res.TimedOut, Results: []matchJSON{}}
				for _, m := range res.Matches {
					out.Results = append(out.Results, matchJSON{Profile: client.ViewOf(m.Profile), Hosted: m.Hosted, HostingServer: m.HostingServer, Online: m.Online})
				}
				return g.print(out, func(w io.Writer) {
					for _, m := range out.Results {
						on := "offline"
						if m.Online {
							on = "online"
						}
						loc := "-"
						if m.Profile.Location != nil {
							loc = fmt.Sprintf("%.4f,%.4f", m.Profile.Location.Lat, m.Profile.Location.Lon)
						}
						fmt.Fprintf(w, "%s  %-16s %-24q %-20s %-7s %s\n", m.Profile.ID, m.Profile.Type, m.Profile.Name, loc, on, m.Profile.Extra)
					}
					fmt.Fprintf(w, "%d result(s)", out.Total)
					if out.TimedOut {
						fmt.Fprint(w, " (incomplete: the extra-data regex ran out of time)")
					}
					fmt.Fprintln(w)
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "profile server address (multiaddr with /p2p/ID; env IOP_SERVER)")
	f.StringVar(&q.Type, "type", "", "type wildcard, e.g. chat/*")
	f.StringVar(&q.Name, "name", "", "name wildcard, e.g. *da*")
	f.StringVar(&near, "near", "", "LAT,LON centre of the location filter")
	f.Uint32Var(&q.Radius, "radius", 0, "radius in metres around --near")
	f.StringVar(&q.Extra, "extra", "", "regular expression over extra data")
	f.BoolVar(&q.HostedOnly, "hosted-only", false, "only profiles hosted by this server")
	f.IntVar(&q.Limit, "limit", 1000, "results in total (at most 10,000)")
	return cmd
}

func statsCmd(g *globals) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count the identities a profile server hosts, per type",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withServer(cmd.Context(), server, func(ctx context.Context, c *client.Conn) error {
				st, err := c.Stats(ctx)
				if err != nil {
					return err
				}
				return g.print(st, func(w io.Writer) {
					for t, n := range st {
						fmt.Fprintf(w, "%-32s %d\n", t, n)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "profile server address (multiaddr with /p2p/ID; env IOP_SERVER)")
	return cmd
}
