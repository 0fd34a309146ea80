// Command iop is the command-line interface of the Internet of People: it
// manages identities, runs the user agent, publishes profiles, queries
// profile servers and starts a local development network.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/natbench"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/turnserver/turnbench"
)

func main() {
	// iop bench nat re-executes iop inside network namespaces to play the
	// node, callee and caller; those processes run only their role.
	natbench.MaybeRunRole()
	// iop bench turn re-executes iop to run the TURN server it measures.
	turnbench.MaybeServe()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// globals are the flags every command shares.
type globals struct {
	home string
	as   string // the identity to act as: name, ID or prefix; "" for the home's default

	saveProofs string // rel: a directory to write the proofs of listed edges to
	json       bool
	verbose    bool
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "iop",
		Short:         "The Internet of People: identities, profiles, search and a local network",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.home, "home", defaultHome(), "home directory of keys and agent state (env IOP_HOME)")
	root.PersistentFlags().StringVar(&g.as, "as", os.Getenv("IOP_AS"), "identity to act as when the home holds several: name, ID or prefix (env IOP_AS; default: the home's default identity)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log more")
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(idCmd(g), walletCmd(g), chainCmd(g), ccCmd(g), relCmd(g), agentCmd(g), profileCmd(g), serviceCmd(g), listenCmd(g), connectCmd(g), chatCmd(g), searchCmd(g), statsCmd(g), resolveCmd(g), locCmd(g), nodeCmd(g), devnetCmd(g), benchCmd(g))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "iop:", err)
		return 1
	}
	return 0
}

func defaultHome() string {
	if h := os.Getenv("IOP_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".iop")
	}
	return ".iop"
}

func (g *globals) logger() *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

// print writes v as JSON with --json, or calls human otherwise.
func (g *globals) print(v any, human func(w io.Writer)) error {
	if g.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(g.stdout)
	return nil
}

// passphrase returns IOP_PASSPHRASE or asks on the terminal.
func (g *globals) passphrase(prompt string, confirm bool) ([]byte, error) {
	if p, ok := os.LookupEnv("IOP_PASSPHRASE"); ok {
		return []byte(p), nil
	}
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("no passphrase: set IOP_PASSPHRASE or run in a terminal to be asked")
	}
	fmt.Fprint(g.stderr, prompt)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(g.stderr, "Repeat passphrase: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return nil, err
		}
		if string(p) != string(p2) {
			return nil, errors.New("passphrases differ")
		}
	}
	return p, nil
}

func (g *globals) keystore() (*identity.Keystore, error) {
	return identity.OpenKeystore(g.home)
}

// resolve opens the keystore and finds an identity by name, ID prefix or
// "" for the default.
func (g *globals) resolve(which string) (*identity.Keystore, identity.Entry, error) {
	ks, err := g.keystore()
	if err != nil {
		return nil, identity.Entry{}, err
	}
	e, err := ks.Resolve(which)
	return ks, e, err
}

// loadKey resolves an identity (name, ID prefix, or "" for the one --as
// names, else the default) and decrypts its key.
func (g *globals) loadKey(which string) (*identity.Key, error) {
	if which == "" {
		which = g.as
	}
	ks, e, err := g.resolve(which)
	if errors.Is(err, identity.ErrNotFound) && which == "" {
		return nil, fmt.Errorf("no identity in %s: create one with `iop id new --home %s`", g.home, g.home)
	}
	if err != nil {
		return nil, err
	}
	pass, err := g.passphrase(fmt.Sprintf("Passphrase for %s: ", e.ID.Short()), false)
	if err != nil {
		return nil, err
	}
	return ks.Load(e.ID, pass)
}

// local is a client of the home's running agent, acting for the identity
// --as names, else the home's default: the same identity the commands
// that use keys act for.
func (g *globals) local() (*client.LocalClient, error) {
	_, e, err := g.resolve(g.as)
	if err != nil {
		if errors.Is(err, identity.ErrNotFound) && g.as == "" {
			return nil, fmt.Errorf("no identity in %s: create one with `iop id new --home %s`", g.home, g.home)
		}
		return nil, fmt.Errorf("--as: %w", err)
	}
	return client.NewLocalClient(g.home).As(e.ID), nil
}

// envServer is the default node address from IOP_SERVER.
func envServer() string { return os.Getenv("IOP_SERVER") }

// dialServer starts a client host and opens a connection to addr.
func dialServer(ctx context.Context, addr string) (*client.Conn, host.Host, error) {
	if addr == "" {
		addr = envServer()
	}
	if addr == "" {
		return nil, nil, errors.New("no server: pass --server or set IOP_SERVER to a node address as printed by `iop devnet` (in devnet.json)")
	}
	ai, err := p2p.ParseAddr(addr)
	if err != nil {
		return nil, nil, err
	}
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return nil, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, h, ai)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return c, h, nil
}

// withServer runs fn with a connection to addr and closes everything after.
func withServer(ctx context.Context, addr string, fn func(ctx context.Context, c *client.Conn) error) error {
	c, h, err := dialServer(ctx, addr)
	if err != nil {
		return err
	}
	defer h.Close()
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return fn(ctx, c)
}
