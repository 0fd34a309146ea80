package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/profile/search"
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

// printEdges prints edges as a list (JSON: an array, empty when none) and,
// with --save-proofs, writes each edge's proof to DIR/<card ID>.proof for
// `rel verify` or anyone else to check offline.
func (g *globals) printEdges(edges []*graph.EdgeState) error {
	if g.saveProofs != "" {
		if err := os.MkdirAll(g.saveProofs, 0o755); err != nil {
			return fmt.Errorf("--save-proofs: %w", err)
		}
		for _, st := range edges {
			b, err := graph.EncodeProof(st.Proof())
			if err != nil {
				return err
			}
			path := filepath.Join(g.saveProofs, st.Edge.ID().String()+".proof")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return fmt.Errorf("--save-proofs: %w", err)
			}
		}
	}
	out := make([]edgeView, 0, len(edges))
	for _, e := range edges {
		out = append(out, viewEdge(e))
	}
	return g.print(out, func(w io.Writer) {
		if len(out) == 0 {
			fmt.Fprintln(w, "no edges")
		}
		for _, e := range out {
			fmt.Fprintf(w, "%s  %-20s %s -> %s  %s  until %s\n", e.ID[:12], e.Type, e.Issuer.Short(), e.Recipient.Short(), e.Status, e.ValidTo.Format("2006-01-02"))
		}
	})
}

// dialHosting connects to the profile server hosting id, found through
// the node ai.
func dialHosting(ctx context.Context, ai peer.AddrInfo, id identity.ID) (*client.Conn, func(), error) {
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return nil, nil, err
	}
	hosting, err := client.HostingServer(ctx, h, ai, id)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	c, err := client.Dial(ctx, h, hosting)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return c, func() { c.Close(); h.Close() }, nil
}

// dialHostingFor connects to the profile server hosting id, found through
// the node key's identity knows (--server, IOP_SERVER or its agent's).
func (g *globals) dialHostingFor(ctx context.Context, server string, key *identity.Key, id identity.ID) (*client.Conn, func(), error) {
	via, _, err := g.knownNode(server, key)
	if err != nil {
		return nil, nil, err
	}
	return dialHosting(ctx, via, id)
}

func relCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rel", Short: "Relationships: the edges of the graphchain"}
	cmd.PersistentFlags().StringVar(&g.saveProofs, "save-proofs", "", "also write the proof of every edge listed to DIR/<card ID>.proof (check one with `iop rel verify`)")
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
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			ai, err := nodeAddr(server)
			if err != nil {
				return err
			}
			edges, err := publicEdges(ctx, ai, id, opt, g.stderr)
			if err != nil {
				return err
			}
			return g.printEdges(edges)
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
	cmd.AddCommand(get, verify, relProposeCmd(g), relInboxCmd(g), relAcceptCmd(g), relRejectCmd(g), relListCmd(g), relRevokeCmd(g),
		relDiscloseCmd(g), relAskCmd(g), relRequestsCmd(g), relDecideCmd(g, true), relDecideCmd(g, false), relPolicyCmd(g), relPathCmd(g))
	return cmd
}

// cardView is a pending proposal as the CLI prints it.
type cardView struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Issuer     identity.ID       `json:"issuer"`
	Recipient  identity.ID       `json:"recipient"`
	ValidFrom  time.Time         `json:"valid_from"`
	ValidTo    time.Time         `json:"valid_to"`
	Properties map[string]string `json:"properties,omitempty"`
	Visibility string            `json:"visibility"`
}

func viewCard(sc *graph.SignedCard) cardView {
	c := sc.Card
	id := sc.ID()
	v := cardView{ID: hex.EncodeToString(id[:]), Type: c.Type, Issuer: c.IssuerID(), Recipient: c.RecipientID(),
		ValidFrom: c.ValidFrom.UTC(), ValidTo: c.ValidTo.UTC(), Properties: c.Properties, Visibility: "public"}
	if c.Visibility == graph.VisibilityPrivate {
		v.Visibility = "private"
	}
	return v
}

// parseDay parses a YYYY-MM-DD date (UTC) for flag name; end selects the
// last millisecond of the day rather than its start.
func parseDay(name, s string, end bool) (time.Time, error) {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s: want a date YYYY-MM-DD, got %q", name, s)
	}
	if end {
		d = d.AddDate(0, 0, 1).Add(-time.Millisecond)
	}
	return d, nil
}

// parseProps parses k=v pairs separated by commas.
func parseProps(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--props: want k=v pairs separated by commas, got %q", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--props: key %q given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// ownServer connects to the hosting server of key's identity, found through
// the node at server (or IOP_SERVER) when set, from the agent's stored state
// otherwise, and proves the key there with VerifyIdentity (which leaves a
// running agent's check-in alone).
func (g *globals) ownServer(ctx context.Context, server string, key *identity.Key) (*client.Conn, func(), error) {
	via, fromAgent, err := g.knownNode(server, key)
	if err != nil {
		return nil, nil, err
	}
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return nil, nil, err
	}
	hosting := via
	if !fromAgent {
		if hosting, err = client.HostingServer(ctx, h, via, key.ID()); err != nil {
			h.Close()
			return nil, nil, err
		}
	}
	c, err := client.Dial(ctx, h, hosting)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	done := func() { c.Close(); h.Close() }
	if err := c.StartConversation(ctx, key); err != nil {
		done()
		return nil, nil, err
	}
	if err := c.VerifyIdentity(ctx); err != nil {
		done()
		return nil, nil, err
	}
	return c, done, nil
}

func relProposeCmd(g *globals) *cobra.Command {
	var server, typ, from, until, props string
	var private bool
	cmd := &cobra.Command{
		Use:   "propose ID",
		Short: "Propose an edge from this identity to ID: a public card goes to the inbox at ID's hosting server, a private one (--private) to ID's device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := identity.ParseID(args[0])
			if err != nil {
				return err
			}
			if typ == "" {
				return errors.New("--type is required, e.g. work/employs")
			}
			if until == "" {
				return errors.New("--valid-until is required (YYYY-MM-DD)")
			}
			c := graph.Card{Type: typ, Visibility: graph.VisibilityPublic}
			if private {
				c.Visibility = graph.VisibilityPrivate
			}
			if c.ValidTo, err = parseDay("valid-until", until, true); err != nil {
				return err
			}
			if from != "" {
				if c.ValidFrom, err = parseDay("valid-from", from, false); err != nil {
					return err
				}
			}
			if c.Properties, err = parseProps(props); err != nil {
				return err
			}
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			// The recipient's public key is in its hosted profile.
			conn, done, err := g.dialHostingFor(ctx, server, key, to)
			if err != nil {
				return err
			}
			defer done()
			info, err := conn.GetProfile(ctx, to, client.GetOptions{})
			if err != nil {
				return err
			}
			if !info.Hosted || info.Profile == nil {
				return fmt.Errorf("identity %s is not hosted at its server: it cannot receive proposals", to)
			}
			c.Recipient = info.Profile.Profile.PublicKey
			sc, err := graph.SignCard(key, c)
			if err != nil {
				return fmt.Errorf("card: %w", err)
			}
			if private {
				// Nothing of a private edge goes to a server: the card
				// travels end to end encrypted to the recipient's device.
				err = g.withPeers(ctx, server, key, func(h host.Host, via peer.AddrInfo) error {
					return client.ProposePrivate(ctx, h, key, via, g.home, sc)
				})
				// The acceptance comes back to this identity's agent.
				if _, serr := client.NewLocalClient(g.home).As(key.ID()).Status(ctx); err == nil && serr != nil {
					fmt.Fprintf(g.stderr, "note: no agent runs %s here; %s's acceptance reaches this device only while `iop agent --home %s` runs it\n",
						key.ID().Short(), to.Short(), g.home)
				}
			} else {
				err = conn.StartConversation(ctx, key)
				if err == nil {
					err = conn.VerifyIdentity(ctx)
				}
				if err == nil {
					err = conn.ProposeRelation(ctx, sc)
				}
				if err == nil {
					err = client.OpenPrivateGraph(g.home, key).RememberIssued(sc)
				}
			}
			if err != nil {
				return err
			}
			v := viewCard(sc)
			return g.print(v, func(w io.Writer) { fmt.Fprintln(w, v.ID) })
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "a node that finds the recipient's server (default IOP_SERVER, else the agent's server)")
	cmd.Flags().StringVar(&typ, "type", "", "edge type, e.g. work/employs")
	cmd.Flags().StringVar(&from, "valid-from", "", "first day of validity, YYYY-MM-DD UTC (default now)")
	cmd.Flags().StringVar(&until, "valid-until", "", "last day of validity, YYYY-MM-DD UTC")
	cmd.Flags().StringVar(&props, "props", "", "properties, k=v pairs separated by commas")
	cmd.Flags().BoolVar(&private, "private", false, "a private edge: kept only on this device, proposed to the recipient's device (its agent must run)")
	return cmd
}

func relInboxCmd(g *globals) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "The edges proposed to this identity: public ones waiting at its hosting server, private ones on this device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			cards, err := client.OpenPrivateGraph(g.home, key).Incoming()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			c, done, err := g.ownServer(ctx, server, key)
			if err != nil {
				return err
			}
			defer done()
			public, err := c.RelationInbox(ctx)
			if err != nil {
				return err
			}
			out := []cardView{}
			for _, sc := range append(public, cards...) {
				out = append(out, viewCard(sc))
			}
			return g.print(out, func(w io.Writer) {
				if len(out) == 0 {
					fmt.Fprintln(w, "no proposals")
				}
				for _, v := range out {
					fmt.Fprintf(w, "%s  %-20s %-7s from %s  %s to %s", v.ID, v.Type, v.Visibility, v.Issuer, v.ValidFrom.Format("2006-01-02"), v.ValidTo.Format("2006-01-02"))
					keys := make([]string, 0, len(v.Properties))
					for k := range v.Properties {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						fmt.Fprintf(w, " %s=%s", k, v.Properties[k])
					}
					fmt.Fprintln(w)
				}
			})
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "a node that finds this identity's server (default: the agent's server)")
	return cmd
}

func relAcceptCmd(g *globals) *cobra.Command {
	var server, app string
	cmd := &cobra.Command{
		Use:   "accept CARD",
		Short: "Accept a proposed edge (card ID or a unique prefix): sign the acceptance; a public edge is stored at this identity's server, a private one on the issuer's device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("card: an ID or ID prefix is required")
			}
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			sc, inbox, done, err := g.pendingProposal(ctx, server, key, args[0])
			if err != nil {
				return err
			}
			defer done()
			appID := func(sc *graph.SignedCard) []byte {
				if app != "" {
					return []byte(app)
				}
				return []byte(sc.ID().String()[:16])
			}
			if inbox == nil {
				err = g.withPeers(ctx, server, key, func(h host.Host, via peer.AddrInfo) error {
					_, err := client.AcceptPrivate(ctx, h, key, via, g.home, sc, appID(sc))
					return err
				})
			} else {
				acc, aerr := graph.Accept(key, sc, appID(sc))
				if aerr != nil {
					return fmt.Errorf("--app: %w", aerr)
				}
				err = inbox.AcceptRelation(ctx, sc, acc)
			}
			if err != nil {
				return err
			}
			v := viewCard(sc)
			return g.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "accepted %s: %s %s edge from %s, application ID %s\n", v.ID, v.Visibility, v.Type, v.Issuer, appID(sc))
			})
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "a node that finds this identity's server (default: the agent's server)")
	cmd.Flags().StringVar(&app, "app", "", "application ID of the edge (default: the first 16 hex digits of the card ID)")
	return cmd
}

func relListCmd(g *globals) *cobra.Command {
	var server, typ, direction string
	var invalid, disclosed bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "This identity's edges: public ones it received (at its server) and issued (at the recipients' servers), private ones on this device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			wild, err := search.ParseWildcard(typ)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			if direction != "in" && direction != "out" && direction != "any" {
				return fmt.Errorf("--direction: want in, out or any, got %q", direction)
			}
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			me := key.ID()
			pg := client.OpenPrivateGraph(g.home, key)
			now := time.Now()
			edges, err := pg.Edges(now)
			if err != nil {
				return err
			}
			if disclosed {
				more, err := pg.Disclosed(now)
				if err != nil {
					return err
				}
				edges = append(edges, more...)
			}
			issued, err := pg.Issued()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			opt := client.RelationOptions{IncludeInvalid: true, Type: typ}
			// The public edges it received are at its hosting server; an
			// identity hosted nowhere has none.
			if c, done, err := g.ownServer(ctx, server, key); err != nil {
				fmt.Fprintf(g.stderr, "edges received: %v\n", err)
			} else {
				received, err := c.AllRelatedIdentities(ctx, me, opt)
				done()
				if err != nil {
					return err
				}
				edges = append(edges, received...)
			}
			// The public edges it issued are stored at each recipient's server.
			recipients := map[identity.ID]bool{}
			for _, sc := range issued {
				if wild.Match(sc.Card.Type) {
					recipients[sc.Card.RecipientID()] = true
				}
			}
			via, _, err := g.knownNode(server, key)
			if err != nil && len(recipients) > 0 {
				return err
			}
			opt.Issuer = &me
			for r := range recipients {
				out, err := publicEdges(ctx, via, r, opt, g.stderr)
				if err != nil {
					fmt.Fprintf(g.stderr, "edges issued to %s: %v\n", r.Short(), err)
					continue
				}
				edges = append(edges, out...)
			}
			kept := edges[:0]
			for _, st := range edges {
				c := &st.Edge.Card.Card
				switch {
				case !wild.Match(c.Type), !invalid && st.Status != graph.EdgeValid:
				case direction == "in" && c.RecipientID() != me, direction == "out" && c.IssuerID() != me:
				default:
					kept = append(kept, st)
				}
			}
			sortEdges(kept)
			return g.printEdges(kept)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "a node that finds this identity's server (default: the agent's server)")
	cmd.Flags().StringVar(&typ, "type", "", "edge type wildcard, e.g. 'work/*'")
	cmd.Flags().BoolVar(&invalid, "include-invalid", false, "include revoked, expired and not yet valid edges")
	cmd.Flags().BoolVar(&disclosed, "disclosed", false, "include the edges other identities disclosed to this one")
	cmd.Flags().StringVar(&direction, "direction", "any", "in (this identity is the recipient), out (the issuer) or any")
	return cmd
}

// revokePrivate revokes one of key's private edges on this device and
// sends the revocation to every identity the edge was shown to.
func (g *globals) revokePrivate(ctx context.Context, server string, key *identity.Key, st *graph.EdgeState) error {
	id := st.Edge.ID()
	if err := client.OpenPrivateGraph(g.home, key).Revoke(id); err != nil {
		return err
	}
	out := struct {
		Card     string            `json:"card"`
		Notified int               `json:"notified"`
		Failed   map[string]string `json:"failed,omitempty"`
	}{Card: id.String(), Failed: map[string]string{}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err := g.withPeers(ctx, server, key, func(h host.Host, via peer.AddrInfo) error {
		sent, failed, err := client.SendRevocation(ctx, h, key, via, g.home, id)
		out.Notified = sent
		for t, ferr := range failed {
			out.Failed[t.String()] = ferr.Error()
		}
		return err
	})
	if err != nil {
		fmt.Fprintf(g.stderr, "edge %s revoked here; the identities it was shown to were not told: %v\n", id, err)
	}
	return g.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "private edge %s revoked; told %d identity(ies) it was shown to\n", out.Card, out.Notified)
		for t, why := range out.Failed {
			fmt.Fprintf(w, "  not told %s: %s (show it again later with `iop rel disclose %s --to %s`)\n", t, why, out.Card[:12], t)
		}
	})
}

// relRevokeCmd revokes an edge: the signer must be a party the edge type's
// rules allow; the record goes to the recipient's hosting server.
func relRevokeCmd(g *globals) *cobra.Command {
	var server, which string
	cmd := &cobra.Command{
		Use:   "revoke [RECIPIENT_ID] CARD_ID",
		Short: "Revoke an edge, as the issuer or the recipient where the edge type's rules allow it",
		Long: `Revoke an edge with a signed revocation record. A private edge of this
identity is revoked on this device. A public edge goes to its recipient's
hosting server: give the recipient, or let the command find it among the
public cards this identity issued and the edges it received.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cardArg := strings.ToLower(args[len(args)-1])
			key, err := g.loadKey(which)
			if err != nil {
				return err
			}
			pg := client.OpenPrivateGraph(g.home, key)
			var recipient identity.ID
			if len(args) == 2 {
				if recipient, err = identity.ParseID(args[0]); err != nil {
					return fmt.Errorf("recipient: %w", err)
				}
			} else {
				private, err := pg.Edges(time.Now())
				if err != nil {
					return err
				}
				st, err := matchEdge(private, cardArg)
				if err != nil {
					return err
				}
				if st != nil {
					return g.revokePrivate(cmd.Context(), server, key, st)
				}
				issued, err := pg.Issued()
				if err != nil {
					return err
				}
				sc, err := matchCard(issued, cardArg)
				if err != nil {
					return err
				}
				if sc == nil {
					recipient = key.ID() // an edge it received
				} else {
					recipient, cardArg = sc.Card.RecipientID(), sc.ID().String()
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			c, done, err := g.dialHostingFor(ctx, server, key, recipient)
			if err != nil {
				return err
			}
			defer done()
			// Find the edge and its last record among the recipient's edges.
			edges, err := c.AllRelatedIdentities(ctx, recipient, client.RelationOptions{IncludeInvalid: true})
			if err != nil {
				return err
			}
			st, err := matchEdge(edges, cardArg)
			if err != nil {
				return err
			}
			if st == nil {
				return fmt.Errorf("no edge with card ID %s is stored for %s", cardArg, recipient.Short())
			}
			if st.Revoked {
				return fmt.Errorf("edge %s is already revoked", cardArg)
			}
			rec, err := graph.SignRevocation(key, st.Edge.Card, st.Sequence+1, time.Time{})
			if err != nil {
				return err
			}
			n, err := c.AddEdgeRecord(ctx, recipient, rec)
			if err != nil {
				return err
			}
			id := st.Edge.ID().String()
			out := struct {
				Card    string `json:"card"`
				Revoked int    `json:"revoked_copies"`
			}{id, n}
			return g.print(out, func(w io.Writer) { fmt.Fprintf(w, "edge %s revoked\n", id) })
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "a node that finds the recipient's server (default IOP_SERVER, else the agent's server)")
	cmd.Flags().StringVar(&which, "id", "", "identity that revokes (default: --as, else the home's default)")
	return cmd
}
