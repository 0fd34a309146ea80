package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
)

func serviceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Enable or disable application services of your identity (through the running agent)"}
	add := &cobra.Command{
		Use:   "add NAME...",
		Short: "Enable application services: other identities may call them while the agent is online",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lc, err := g.local()
			if err != nil {
				return err
			}
			s, err := lc.AddServices(cmd.Context(), args...)
			if err != nil {
				return err
			}
			return g.print(s.Services, func(w io.Writer) { fmt.Fprintf(w, "services: %s\n", strings.Join(s.Services, " ")) })
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Disable an application service",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lc, err := g.local()
			if err != nil {
				return err
			}
			s, err := lc.RemoveService(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(s.Services, func(w io.Writer) { fmt.Fprintf(w, "services: %s\n", strings.Join(s.Services, " ")) })
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the enabled application services",
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
			return g.print(s.Services, func(w io.Writer) {
				for _, n := range s.Services {
					fmt.Fprintln(w, n)
				}
			})
		},
	}
	cmd.AddCommand(add, remove, list)
	return cmd
}

func listenCmd(g *globals) *cobra.Command {
	var echo bool
	var count int
	cmd := &cobra.Command{
		Use:   "listen SERVICE",
		Short: "Accept calls to an application service and print what arrives",
		Long: `Accept the calls other identities make to SERVICE through the running agent
(iop agent), and copy what each connection sends to standard output. The
service is enabled while listen runs. Each connection is reported on standard
error (or as a JSON line with --json) with the caller's authenticated identity
and the path carrying the bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			lc, err := g.local()
			if err != nil {
				return err
			}
			l, err := lc.Listen(ctx, args[0])
			if err != nil {
				return err
			}
			defer l.Close()
			go func() {
				<-ctx.Done()
				l.Close()
			}()
			fmt.Fprintf(g.stderr, "listening for %q calls\n", args[0])
			var outMu sync.Mutex
			var wg sync.WaitGroup
			for n := 0; count == 0 || n < count; n++ {
				in, err := l.Next()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if g.json {
					json.NewEncoder(g.stderr).Encode(in)
				} else {
					fmt.Fprintf(g.stderr, "connection from %s over %s (secure after %d ms)\n", in.Peer, in.Path, in.SetupMS)
				}
				nc, err := lc.Open(ctx, in.Conn)
				if err != nil {
					fmt.Fprintf(g.stderr, "claim connection from %s: %v\n", in.Peer.Short(), err)
					continue
				}
				wg.Add(1)
				go func(in *client.Incoming, nc net.Conn) {
					defer wg.Done()
					defer nc.Close()
					if echo {
						io.Copy(nc, nc)
					} else {
						buf := make([]byte, 32<<10)
						for {
							n, err := nc.Read(buf)
							if n > 0 {
								outMu.Lock()
								g.stdout.Write(buf[:n])
								outMu.Unlock()
							}
							if err != nil {
								break
							}
						}
					}
					fmt.Fprintf(g.stderr, "connection from %s closed\n", in.Peer.Short())
				}(in, nc)
			}
			wg.Wait()
			return nil
		},
	}
	cmd.Flags().BoolVar(&echo, "echo", false, "send everything back to the caller instead of printing it")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many connections have ended (0: run until interrupted)")
	return cmd
}

// dialFlags are the flags of commands that call another identity.
type dialFlags struct {
	which, server    string
	noICE, relayOnly bool
	timeout          time.Duration
}

func (f *dialFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.which, "id", "", "identity to call as (ID, prefix or name; default: the home's default)")
	cmd.Flags().StringVar(&f.server, "server", "", "a node that finds the callee (default: IOP_SERVER, else your agent's profile server)")
	cmd.Flags().BoolVar(&f.noICE, "no-ice", false, "stay on the profile-server relay")
	cmd.Flags().BoolVar(&f.relayOnly, "relay-only", false, "use only TURN relay candidates (do not reveal local addresses)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "give up setting up the connection after this long")
}

// knownNode is the node a command goes through: --server, else
// IOP_SERVER, else the profile server the identity's agent uses (then
// fromAgent is true: it is key's own hosting server).
func (g *globals) knownNode(server string, key *identity.Key) (ai peer.AddrInfo, fromAgent bool, err error) {
	if server == "" {
		server = envServer()
	}
	if server != "" {
		ai, err = p2p.ParseAddr(server)
		return ai, false, err
	}
	a, err := client.NewAgent(client.AgentConfig{Home: g.home, Key: key})
	if err == nil {
		ai, err = a.ServerAddr()
	}
	if err != nil {
		return ai, false, fmt.Errorf("no node known: pass --server, set IOP_SERVER, or run `iop agent --home %s --server ADDR` once (%v)", g.home, err)
	}
	return ai, true, nil
}

// connectResult is what connect reports (stderr; JSON with --json).
type connectResult struct {
	Peer        identity.ID       `json:"peer"`
	Service     string            `json:"service"`
	FirstPath   string            `json:"first_path"`
	Path        string            `json:"path"`
	SetupMS     float64           `json:"setup_ms"`      // from start until the first byte may flow
	FinalPathMS float64           `json:"final_path_ms"` // from start until the final path was known
	Timing      client.DialTiming `json:"-"`
	Sent        int64             `json:"sent"`
	Received    int64             `json:"received"`
}

// dial connects to id's service as the chosen identity.
func (g *globals) dial(ctx context.Context, f *dialFlags, id identity.ID, service string) (*client.PeerConn, func(), client.DialTiming, error) {
	var dt client.DialTiming
	key, err := g.loadKey(f.which)
	if err != nil {
		return nil, nil, dt, err
	}
	via, _, err := g.knownNode(f.server, key)
	if err != nil {
		return nil, nil, dt, err
	}
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return nil, nil, dt, err
	}
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	pc, err := client.DialService(dctx, h, key, via, id, service, client.DialOptions{
		DisableICE: f.noICE, RelayOnly: f.relayOnly, Logger: g.logger(),
		Timing: func(t client.DialTiming) { dt = t },
	})
	if err != nil {
		h.Close()
		return nil, nil, dt, err
	}
	return pc, func() { pc.Close(); h.Close() }, dt, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func connectCmd(g *globals) *cobra.Command {
	var f dialFlags
	cmd := &cobra.Command{
		Use:   "connect ID SERVICE",
		Short: "Connect to another identity's application service: standard input and output over the connection",
		Long: `Call the application service SERVICE of identity ID and copy standard input to
the connection and the connection to standard output, like netcat. The
connection starts on the callee's profile-server relay and moves to a direct
path (or a TURN relay) when ICE finds one; it is encrypted end to end and
authenticates both identities. The path and set-up times are reported on
standard error (one JSON object at the end with --json). The connection is
closed when standard input ends or the other side closes.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := identity.ParseID(args[0])
			if err != nil {
				return fmt.Errorf("callee: %w", err)
			}
			ctx := cmd.Context()
			start := time.Now()
			pc, done, dt, err := g.dial(ctx, &f, id, args[1])
			if err != nil {
				return err
			}
			defer done()
			res := connectResult{Peer: id, Service: args[1], FirstPath: pc.Path(), Path: pc.Path(), SetupMS: ms(time.Since(start)), Timing: dt}
			if !g.json {
				fmt.Fprintf(g.stderr, "connected to %s over %s in %.0f ms (resolved %.0f, accepted %.0f, joined %.0f, secure %.0f ms)\n",
					id.Short(), res.FirstPath, res.SetupMS, ms(dt.Resolved), ms(dt.Accepted), ms(dt.Joined), ms(dt.Secure))
			}
			var mu sync.Mutex
			pathDone := make(chan struct{})
			go func() {
				defer close(pathDone)
				p, err := pc.WaitPath(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				res.Path, res.FinalPathMS = p, ms(time.Since(start))
				mu.Unlock()
				if !g.json {
					fmt.Fprintf(g.stderr, "path: %s after %.0f ms\n", p, ms(time.Since(start)))
				}
			}()
			var sent, recvd atomic.Int64
			inDone := make(chan error, 1)
			go func() {
				n, err := io.Copy(pc, g.stdin)
				sent.Add(n)
				if err == nil {
					// Standard input ended: wait until the path is settled so
					// short transfers report it, then close.
					select {
					case <-pathDone:
					case <-time.After(3 * time.Second):
					}
					pc.Close()
				}
				inDone <- err
			}()
			n, rerr := io.Copy(g.stdout, pc)
			recvd.Add(n)
			pc.Close()
			select {
			case <-pathDone:
			case <-time.After(100 * time.Millisecond):
			}
			mu.Lock()
			res.Sent, res.Received = sent.Load(), recvd.Load()
			out := res
			mu.Unlock()
			if g.json {
				json.NewEncoder(g.stderr).Encode(out)
			}
			if rerr != nil && !errors.Is(rerr, net.ErrClosed) && ctx.Err() == nil {
				return rerr
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func chatCmd(g *globals) *cobra.Command {
	var f dialFlags
	cmd := &cobra.Command{
		Use:   "chat [ID]",
		Short: "Chat with another identity, person to person",
		Long: `With ID, call that identity's "chat" service and chat: each line you type is
sent, each line received is shown with the sender's ID. Without ID, wait for
one chat call through the running agent (iop agent) and chat with the caller.
The caller leaves when its input ends (Ctrl-D); the side that waited stays
until the caller leaves or it is interrupted (Ctrl-C).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var conn net.Conn
			var peerID identity.ID
			if len(args) == 1 {
				id, err := identity.ParseID(args[0])
				if err != nil {
					return fmt.Errorf("callee: %w", err)
				}
				fmt.Fprintf(g.stderr, "* calling %s...\n", id.Short())
				pc, done, _, err := g.dial(ctx, &f, id, "chat")
				if err != nil {
					return err
				}
				defer done()
				conn, peerID = pc, id
				fmt.Fprintf(g.stderr, "* connected over %s; type lines, end with Ctrl-D\n", pc.Path())
				go func() {
					if p, err := pc.WaitPath(ctx); err == nil {
						fmt.Fprintf(g.stderr, "* path: %s\n", p)
					}
				}()
			} else {
				lc, err := g.local()
				if err != nil {
					return err
				}
				l, err := lc.Listen(ctx, "chat")
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stderr, "* waiting for a chat call...")
				in, err := l.Next()
				l.Close()
				if err != nil {
					return err
				}
				nc, err := lc.Open(ctx, in.Conn)
				if err != nil {
					return err
				}
				defer nc.Close()
				conn, peerID = nc, in.Peer
				fmt.Fprintf(g.stderr, "* %s called over %s; type lines, end with Ctrl-D\n", in.Peer.Short(), in.Path)
			}
			return chat(ctx, g, conn, peerID, len(args) == 1)
		},
	}
	f.add(cmd)
	return cmd
}

// maxChatLine bounds one received chat line.
const maxChatLine = 4096

// chat runs the line protocol: lines typed go out, lines received are shown.
func chat(ctx context.Context, g *globals, conn net.Conn, peerID identity.ID, leaveOnEOF bool) error {
	recvDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, maxChatLine), maxChatLine)
		for sc.Scan() {
			fmt.Fprintf(g.stdout, "%s: %s\n", peerID.Short(), sanitizeLine(sc.Text()))
		}
		recvDone <- sc.Err()
	}()
	sendDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(g.stdin)
		sc.Buffer(make([]byte, maxChatLine), maxChatLine)
		for sc.Scan() {
			if _, err := fmt.Fprintf(conn, "%s\n", sc.Text()); err != nil {
				sendDone <- err
				return
			}
		}
		sendDone <- sc.Err()
	}()
	for {
		select {
		case err := <-recvDone:
			fmt.Fprintln(g.stderr, "* the other side left")
			return err
		case err := <-sendDone:
			if !leaveOnEOF {
				// The side that waited for the call stays until the caller
				// leaves (or an interrupt): a listener without input
				// still receives.
				sendDone = nil
				continue
			}
			conn.Close()
			<-recvDone
			return err
		case <-ctx.Done():
			conn.Close()
			return nil
		}
	}
}

// sanitizeLine drops control characters so a peer cannot drive the
// terminal.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}
