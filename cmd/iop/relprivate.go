package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
)

// publicEdges reads the public edges of id from its hosting server (found
// through via) and, when that server cannot be reached, from what it last
// published in the content address network, saying so on warn. An
// identity no longer hosted has no public edges to read.
func publicEdges(ctx context.Context, via peer.AddrInfo, id identity.ID, opt client.RelationOptions, warn io.Writer) ([]*graph.EdgeState, error) {
	c, done, err := dialHosting(ctx, via, id)
	if errors.Is(err, client.ErrNotHosted) {
		return nil, err
	}
	if err == nil {
		defer done()
		var edges []*graph.EdgeState
		if edges, err = c.AllRelatedIdentities(ctx, id, opt); err == nil || errors.Is(err, client.ErrBadServer) {
			return edges, err
		}
	}
	var pub *client.Published
	ferr := withServerAddr(ctx, via, func(ctx context.Context, c *client.Conn) error {
		var err error
		pub, err = c.PublishedRelations(ctx, id, opt)
		return err
	})
	if ferr != nil {
		return nil, fmt.Errorf("%v; nor from the content address network: %w", err, ferr)
	}
	fmt.Fprintf(warn, "hosting server of %s unreachable (%v): edges as server %s published them (version %d; %d page(s) missing)\n",
		id.Short(), err, pub.Publisher.Short(), pub.Sequence, len(pub.Missing))
	return pub.Edges, nil
}

// withServerAddr runs fn with a connection to the node ai.
func withServerAddr(ctx context.Context, ai peer.AddrInfo, fn func(ctx context.Context, c *client.Conn) error) error {
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return err
	}
	defer h.Close()
	c, err := client.Dial(ctx, h, ai)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

// withPeers runs fn with a client host and the node (--server, IOP_SERVER
// or the agent's server) through which key's identity reaches other
// devices.
func (g *globals) withPeers(ctx context.Context, server string, key *identity.Key, fn func(h host.Host, via peer.AddrInfo) error) error {
	via, _, err := g.knownNode(server, key)
	if err != nil {
		return err
	}
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h, via)
}

// byCardID finds the one item whose card ID (given by id) starts with
// prefix: nil when none does, an error naming what when several do.
func byCardID[T any](items []*T, id func(*T) graph.CardID, prefix, what string) (*T, error) {
	prefix = strings.ToLower(prefix)
	var match []*T
	for _, it := range items {
		if strings.HasPrefix(id(it).String(), prefix) {
			match = append(match, it)
		}
	}
	switch len(match) {
	case 0:
		return nil, nil
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("%s %s: %d match; give more of the ID", what, prefix, len(match))
}

// matchCard finds the one card whose ID starts with prefix.
func matchCard(cards []*graph.SignedCard, prefix string) (*graph.SignedCard, error) {
	return byCardID(cards, (*graph.SignedCard).ID, prefix, "card")
}

// matchEdge finds the one edge whose card ID starts with prefix.
func matchEdge(edges []*graph.EdgeState, prefix string) (*graph.EdgeState, error) {
	return byCardID(edges, func(st *graph.EdgeState) graph.CardID { return st.Edge.ID() }, prefix, "edge")
}

// pendingProposal finds the proposal to key's identity whose card ID
// starts with prefix: among the private ones on this device first (conn is
// nil then), else in its inbox at its hosting server, whose connection it
// returns; done releases it.
func (g *globals) pendingProposal(ctx context.Context, server string, key *identity.Key, prefix string) (sc *graph.SignedCard, conn *client.Conn, done func(), err error) {
	private, err := client.OpenPrivateGraph(g.home, key).Incoming()
	if err != nil {
		return nil, nil, nil, err
	}
	if sc, err = matchCard(private, prefix); err != nil || sc != nil {
		return sc, nil, func() {}, err
	}
	if conn, done, err = g.ownServer(ctx, server, key); err != nil {
		return nil, nil, nil, err
	}
	cards, err := conn.RelationInbox(ctx)
	if err == nil {
		sc, err = matchCard(cards, prefix)
	}
	if err == nil && sc == nil {
		err = fmt.Errorf("card %s: no pending proposal matches (see `iop rel inbox`)", prefix)
	}
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return sc, conn, done, nil
}

func relDiscloseCmd(g *globals) *cobra.Command {
	var server, to string
	cmd := &cobra.Command{
		Use:   "disclose EDGE --to ID",
		Short: "Show one of this identity's private edges to another identity: the proof goes to its device, end to end encrypted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--to is required: the identity to show the edge to")
			}
			toID, err := identity.ParseID(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			pg := client.OpenPrivateGraph(g.home, key)
			edges, err := pg.Edges(time.Now())
			if err != nil {
				return err
			}
			st, err := matchEdge(edges, args[0])
			if err != nil {
				return err
			}
			if st == nil {
				return fmt.Errorf("edge %s: no private edge of this identity matches (see `iop rel list`)", args[0])
			}
			// A revoked edge may be shown: the revocation replaces the copy
			// the other side kept.
			if err := st.Err(); err != nil && !st.Revoked {
				return fmt.Errorf("edge %s cannot be disclosed: %w", args[0], err)
			}
			proof, err := graph.EncodeProof(st.Proof())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			err = g.withPeers(ctx, server, key, func(h host.Host, via peer.AddrInfo) error {
				return client.Disclose(ctx, h, key, via, g.home, toID, [][]byte{proof})
			})
			if err != nil {
				return err
			}
			v := viewEdge(st)
			return g.print(v, func(w io.Writer) { fmt.Fprintf(w, "edge %s disclosed to %s\n", v.ID[:12], toID.Short()) })
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the identity to show the edge to (its agent must run)")
	cmd.Flags().StringVar(&server, "server", "", "a node that finds the other identity's server (default IOP_SERVER, else the agent's server)")
	return cmd
}

func relAskCmd(g *globals) *cobra.Command {
	var server string
	var types []string
	cmd := &cobra.Command{
		Use:   "ask ID",
		Short: "Ask another identity's device for its private edges (of --type): its allow-list or its owner decides",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			owner, err := identity.ParseID(args[0])
			if err != nil {
				return err
			}
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), client.AskTimeout+time.Minute)
			defer cancel()
			fmt.Fprintf(g.stderr, "asking %s's device; its owner may have to decide (up to %s)\n", owner.Short(), client.AskTimeout)
			var edges []*graph.EdgeState
			var truncated bool
			err = g.withPeers(ctx, server, key, func(h host.Host, via peer.AddrInfo) error {
				edges, truncated, err = client.AskPrivate(ctx, h, key, via, g.home, owner, types)
				return err
			})
			if err != nil {
				return err
			}
			if truncated {
				fmt.Fprintf(g.stderr, "%s has more edges than fit in one answer: ask for fewer types\n", owner.Short())
			}
			return g.printEdges(edges)
		},
	}
	cmd.Flags().StringSliceVar(&types, "type", nil, "edge type wildcards, e.g. 'work/*' (repeatable; default: all)")
	cmd.Flags().StringVar(&server, "server", "", "a node that finds the owner's server (default IOP_SERVER, else the agent's server)")
	return cmd
}

func relRequestsCmd(g *globals) *cobra.Command {
	var follow bool
	var count int
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "Requests for this identity's private edges waiting for its owner (answer with grant or deny, or --follow to be asked)",
		Long: `List the requests for this identity's private edges that wait for its owner.
With --follow, ask the owner about each one as it arrives: answer y (show
the edges), n (refuse) or a (show them, and let this requester read these
types from now on without asking). --count N stops after N answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lc, err := g.local()
			if err != nil {
				return err
			}
			if follow {
				return g.promptRequests(cmd.Context(), lc, count)
			}
			reqs, err := lc.RelationRequests(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(reqs, func(w io.Writer) {
				if len(reqs) == 0 {
					fmt.Fprintln(w, "no requests")
				}
				for _, r := range reqs {
					fmt.Fprintf(w, "%s  %s\n", r.ID, describeRequest(r))
				}
			})
		},
	}
	cmd.Flags().BoolVar(&follow, "follow", false, "ask about each request as it arrives (answers read from stdin)")
	cmd.Flags().IntVar(&count, "count", 0, "with --follow: stop after this many answers (0: until interrupted)")
	return cmd
}

func describeRequest(r client.AskRequest) string {
	types := "all types"
	if len(r.Types) > 0 {
		types = strings.Join(r.Types, ",")
	}
	return fmt.Sprintf("from %s  %s  (%d edge(s) not on the allow-list)", r.Requester, types, r.Edges)
}

// promptRequests asks the owner about each request as it arrives.
func (g *globals) promptRequests(ctx context.Context, lc *client.LocalClient, count int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := lc.FollowRelationRequests(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	answers := bufio.NewScanner(g.stdin)
	for n := 0; count == 0 || n < count; n++ {
		r, err := st.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fmt.Fprintf(g.stderr, "request %s %s\nshow the edges? [y]es, [n]o, [a]lways for this requester: ", r.ID, describeRequest(*r))
		if !answers.Scan() {
			return errors.New("no answer on stdin")
		}
		var grant, remember bool
		switch strings.ToLower(strings.TrimSpace(answers.Text())) {
		case "y", "yes":
			grant = true
		case "a", "always":
			grant, remember = true, true
		}
		word := "refused"
		if grant {
			word = "granted"
		}
		if err := lc.DecideRelationRequest(ctx, r.ID, grant, remember); err != nil {
			fmt.Fprintf(g.stderr, "request %s: %v\n", r.ID, err)
			continue
		}
		fmt.Fprintf(g.stdout, "request %s from %s %s\n", r.ID, r.Requester, word)
	}
	return nil
}

func relDecideCmd(g *globals, grant bool) *cobra.Command {
	var remember bool
	use, short := "deny REQUEST", "Refuse a waiting request for private edges"
	if grant {
		use, short = "grant REQUEST", "Show the asked private edges to the requester"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lc, err := g.local()
			if err != nil {
				return err
			}
			if err := lc.DecideRelationRequest(cmd.Context(), args[0], grant, remember); err != nil {
				return err
			}
			word := "refused"
			if grant {
				word = "granted"
			}
			out := struct {
				Request string `json:"request"`
				Answer  string `json:"answer"`
			}{args[0], word}
			return g.print(out, func(w io.Writer) { fmt.Fprintf(w, "request %s %s\n", args[0], word) })
		},
	}
	if grant {
		cmd.Flags().BoolVar(&remember, "remember", false, "also add the requester and the asked types to the allow-list")
	}
	return cmd
}

func relPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "The allow-list: who may read which of this identity's private edges without asking"}
	var typ string
	rule := func(args []string) client.PolicyRule {
		return client.PolicyRule{Requester: args[0], Type: typ}
	}
	allow := &cobra.Command{
		Use:   "allow ID|*",
		Short: "Let an identity (or anyone: *) read private edges of --type without asking",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			return client.OpenPrivateGraph(g.home, key).Allow(rule(args))
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID|*",
		Short: "Remove a rule of the allow-list (the same ID and --type)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			return client.OpenPrivateGraph(g.home, key).Disallow(rule(args))
		},
	}
	for _, c := range []*cobra.Command{allow, remove} {
		c.Flags().StringVar(&typ, "type", "*", "edge type wildcard, e.g. 'work/*'")
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "The allow-list",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := g.loadKey("")
			if err != nil {
				return err
			}
			rules, err := client.OpenPrivateGraph(g.home, key).Policy()
			if err != nil {
				return err
			}
			if rules == nil {
				rules = []client.PolicyRule{}
			}
			return g.print(rules, func(w io.Writer) {
				if len(rules) == 0 {
					fmt.Fprintln(w, "nobody may read private edges without asking")
				}
				for _, r := range rules {
					fmt.Fprintf(w, "%s  %s\n", r.Requester, r.Type)
				}
			})
		},
	}
	cmd.AddCommand(allow, remove, list)
	return cmd
}

// edgeSource reads incoming edges for path queries: public ones from the
// identities' servers (or the content address network) and the edges
// disclosed to the asking identity.
type edgeSource struct {
	via       peer.AddrInfo
	disclosed map[identity.ID][]*graph.EdgeState // by recipient
	warn      io.Writer
}

func (s *edgeSource) IncomingEdges(ctx context.Context, id identity.ID, types []string) ([]*graph.EdgeState, error) {
	edges := append([]*graph.EdgeState(nil), s.disclosed[id]...)
	public, err := publicEdges(ctx, s.via, id, client.RelationOptions{}, s.warn)
	if err != nil && len(edges) == 0 {
		return nil, err
	}
	return append(edges, public...), nil
}

func relPathCmd(g *globals) *cobra.Command {
	var server string
	var types []string
	var hops int
	cmd := &cobra.Command{
		Use:   "path FROM TO",
		Short: "Is there a valid chain of edges FROM -> ... -> TO (of --type)? Over public edges and the private ones disclosed to this identity",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := identity.ParseID(args[0])
			if err != nil {
				return fmt.Errorf("FROM: %w", err)
			}
			to, err := identity.ParseID(args[1])
			if err != nil {
				return fmt.Errorf("TO: %w", err)
			}
			via, err := nodeAddr(server)
			src := &edgeSource{disclosed: map[identity.ID][]*graph.EdgeState{}, warn: g.stderr}
			// The disclosed edges of the acting identity count too, when
			// the home has one.
			if _, e, rerr := g.resolve(g.as); rerr == nil {
				key, kerr := g.loadKey(e.ID.String())
				if kerr != nil {
					return kerr
				}
				if err != nil {
					via, _, err = g.knownNode(server, key)
				}
				pg := client.OpenPrivateGraph(g.home, key)
				for _, get := range []func(time.Time) ([]*graph.EdgeState, error){pg.Disclosed, pg.Edges} {
					edges, derr := get(time.Now())
					if derr != nil {
						return derr
					}
					for _, st := range edges {
						r := st.Edge.Card.Card.RecipientID()
						src.disclosed[r] = append(src.disclosed[r], st)
					}
				}
			}
			if err != nil {
				return err
			}
			src.via = via
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			q := graph.PathQuery{From: from, To: to, Types: types, MaxHops: hops}
			p, err := graph.FindPath(ctx, src, q)
			if err != nil {
				return err
			}
			out := make([]edgeView, 0, len(p.Edges))
			for _, st := range p.Edges {
				out = append(out, viewEdge(st))
			}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "path of %d edge(s):\n", len(out))
				for _, e := range out {
					fmt.Fprintf(w, "  %s -[%s %s]-> %s\n", e.Issuer.Short(), e.Type, e.Visibility, e.Recipient.Short())
				}
			})
		},
	}
	cmd.Flags().StringSliceVar(&types, "type", nil, "edge types allowed on every hop, wildcards like 'work/*' (repeatable; default: any)")
	cmd.Flags().IntVar(&hops, "max-hops", 4, "longest chain considered (at most 6)")
	cmd.Flags().StringVar(&server, "server", "", "a node that finds the identities' servers (default IOP_SERVER, else the agent's server)")
	return cmd
}

// sortEdges orders edges by type, then card ID, for stable listings.
func sortEdges(edges []*graph.EdgeState) {
	sort.Slice(edges, func(i, j int) bool {
		a, b := edges[i].Edge.Card.Card.Type, edges[j].Edge.Card.Card.Type
		if a != b {
			return a < b
		}
		return edges[i].Edge.ID().String() < edges[j].Edge.ID().String()
	})
}

func relRejectCmd(g *globals) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "reject CARD",
		Short: "Reject a proposed edge (card ID or a unique prefix): it is forgotten without an edge",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			if inbox == nil {
				// The issuer's device is not told: its proposal simply
				// never comes back accepted.
				err = client.OpenPrivateGraph(g.home, key).DropIncoming(sc.ID())
			} else {
				err = inbox.RejectRelation(ctx, sc.ID())
			}
			if err != nil {
				return err
			}
			v := viewCard(sc)
			return g.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "rejected %s: %s %s edge from %s\n", v.ID, v.Visibility, v.Type, v.Issuer)
			})
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "a node that finds this identity's server (default: the agent's server)")
	return cmd
}
