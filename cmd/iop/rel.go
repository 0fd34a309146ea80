package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
)

// edgeView is an edge as the CLI prints it.
type edgeView struct {
	ID          string            `json:"id"`
	Type        string            `json:"type"`
	Issuer      identity.ID       `json:"issuer"`
	Recipient   identity.ID       `json:"recipient"`
	Status      string            `json:"status"`
	ValidFrom   time.Time         `json:"valid_from"`
	ValidTo     time.Time         `json:"valid_to"`
	Properties  map[string]string `json:"properties,omitempty"`
	Application string            `json:"application_id,omitempty"`
	Visibility  string            `json:"visibility"`
	Revoked     bool              `json:"revoked,omitempty"`
}

func viewEdge(st *graph.EdgeState) edgeView {
	c := st.Edge.Card.Card
	id := st.Edge.ID()
	v := edgeView{ID: hex.EncodeToString(id[:]), Type: c.Type, Issuer: c.IssuerID(), Recipient: c.RecipientID(),
		Status: st.Status.String(), ValidFrom: c.ValidFrom.UTC(), ValidTo: c.ValidTo.UTC(), Properties: st.Properties,
		Visibility: "public", Revoked: st.Revoked}
	if c.Visibility == graph.VisibilityPrivate {
		v.Visibility = "private"
	}
	if a := st.Edge.Acceptance; a != nil {
		v.Application = string(a.Acceptance.ApplicationID)
	}
	return v
}

func printEdges(w io.Writer, es []edgeView) {
	if len(es) == 0 {
		fmt.Fprintln(w, "no edges")
	}
	for _, e := range es {
		fmt.Fprintf(w, "%s  %-20s %s -> %s  %s  until %s\n", e.ID[:12], e.Type, e.Issuer.Short(), e.Recipient.Short(), e.Status, e.ValidTo.Format("2006-01-02"))
	}
}

func relCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rel", Short: "Relationships: the edges of the graphchain"}
	var server, typ, issuer string
	var invalid bool
	get := &cobra.Command{
		Use:   "get ID",
		Short: "The public edges of any identity, fetched from its hosting server and verified here",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := identity.ParseID(args[0])
			if err != nil {
				return err
			}
			opt := client.RelationOptions{Type: typ, IncludeInvalid: invalid}
			if issuer != "" {
				iid, err := identity.ParseID(issuer)
				if err != nil {
					return fmt.Errorf("--issuer: %w", err)
				}
				opt.Issuer = &iid
			}
			ai, err := nodeAddr(server)
			if err != nil {
				return err
			}
			h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
			if err != nil {
				return err
			}
			defer h.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			hosting, err := client.HostingServer(ctx, h, ai, id)
			if err != nil {
				return err
			}
			c, err := client.Dial(ctx, h, hosting)
			if err != nil {
				return err
			}
			defer c.Close()
			var out []edgeView
			for {
				edges, more, err := c.GetRelatedIdentities(ctx, id, opt)
				if err != nil {
					return err
				}
				for _, e := range edges {
					out = append(out, viewEdge(e))
				}
				opt.Skip += len(edges)
				if !more || len(edges) == 0 {
					break
				}
			}
			if out == nil {
				out = []edgeView{}
			}
			return g.print(out, func(w io.Writer) { printEdges(w, out) })
		},
	}
	get.Flags().StringVar(&server, "server", "", "a node that finds the identity's server (default IOP_SERVER)")
	get.Flags().StringVar(&typ, "type", "", "edge type wildcard, e.g. 'work/*'")
	get.Flags().StringVar(&issuer, "issuer", "", "only edges issued by this identity")
	get.Flags().BoolVar(&invalid, "include-invalid", false, "include revoked, expired and not yet valid edges")

	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Verify an edge proof offline: both signatures, the card's ID, the change records and the validity at this moment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, graph.MaxProofSize+1))
			if err != nil {
				return err
			}
			if len(b) > graph.MaxProofSize {
				return fmt.Errorf("%s: larger than an edge proof may be (%d bytes)", args[0], graph.MaxProofSize)
			}
			st, err := graph.OpenProof(b, time.Now())
			if err != nil {
				return fmt.Errorf("%s: not a valid edge proof: %w", args[0], err)
			}
			v := viewEdge(st)
			if err := g.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "edge %s: %s from %s to %s, %s\n", v.ID, v.Type, v.Issuer, v.Recipient, v.Status)
			}); err != nil {
				return err
			}
			if err := st.Err(); err != nil {
				return fmt.Errorf("the proof is authentic but the edge is not valid now: %w", err)
			}
			return nil
		},
	}
	cmd.AddCommand(get, verify)
	return cmd
}
