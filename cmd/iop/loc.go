package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/p2p"
)

type nodeJSON struct {
	ID         identity.ID `json:"id"`
	Addrs      []string    `json:"addrs"`
	Lat        float64     `json:"lat"`
	Lon        float64     `json:"lon"`
	DistanceKm float64     `json:"distance_km"`
	Services   []string    `json:"services"`
}

func locCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "loc", Short: "Query the location based network"}
	var server, near string
	var count, hops int
	closest := &cobra.Command{
		Use:   "closest",
		Short: "The nodes closest to a point, found from any node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			loc, err := graph.ParseLocation(near)
			if err != nil || !loc.IsSet() {
				return fmt.Errorf("--near LAT,LON is required: %v", err)
			}
			if server == "" {
				server = envServer()
			}
			ai, err := p2p.ParseAddr(server)
			if err != nil {
				return err
			}
			pub, err := p2p.PublicKeyOf(ai.ID)
			if err != nil {
				return err
			}
			start := locnet.Contact{ID: identity.IDFromPublicKey(pub), PublicKey: pub}
			for _, a := range ai.Addrs {
				start.Addrs = append(start.Addrs, a.String())
			}
			h, err := p2p.New(p2p.Config{})
			if err != nil {
				return err
			}
			defer h.Close()
			tr, err := locnet.NewLibp2pTransport(locnet.Libp2pConfig{Host: h})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			infos, err := locnet.ClosestFrom(ctx, tr, start, loc, count, hops)
			if err != nil {
				return err
			}
			out := []nodeJSON{}
			for _, in := range infos {
				n := nodeJSON{ID: in.ID, Addrs: in.Addrs, Lat: in.Location.LatDeg(), Lon: in.Location.LonDeg(),
					DistanceKm: graph.Distance(loc, in.Location) / 1000, Services: []string{}}
				for _, s := range in.Services {
					n.Services = append(n.Services, s.Type)
				}
				out = append(out, n)
			}
			return g.print(out, func(w io.Writer) {
				for _, n := range out {
					fmt.Fprintf(w, "%s  %8.1f km  %.4f,%.4f  %v\n", n.ID, n.DistanceKm, n.Lat, n.Lon, n.Services)
				}
			})
		},
	}
	closest.Flags().StringVar(&server, "server", "", "any node's address (multiaddr with /p2p/ID; env IOP_SERVER)")
	closest.Flags().StringVar(&near, "near", "", "LAT,LON of the point")
	closest.Flags().IntVar(&count, "count", 3, "how many nodes")
	closest.Flags().IntVar(&hops, "hops", 10, "most nodes to ask")
	cmd.AddCommand(closest)
	return cmd
}
