package turnbench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/turnserver"
	"github.com/pion/turn/v5"
)

// ServeEnv is the environment variable that makes [MaybeServe] run a server
// instead of returning. Its value names the server: "iop" (this module's
// turnserver) or "pion" (a plain pion/turn server, the baseline's stock
// configuration).
const ServeEnv = "IOP_TURNBENCH_SERVE"

// ProfileEnv, when set in a server process started by [MaybeServe], names
// a file for its CPU profile.
const ProfileEnv = "IOP_TURNBENCH_CPUPROFILE"

// Server kinds, the values of ServeEnv.
const (
	ServerIoP  = "iop"
	ServerPion = "pion"
)

// pionUser and pionPass are the credentials of the stock pion server.
const pionUser, pionPass = "test", "secret"

// MaybeServe returns at once unless ServeEnv is set. If it is, it runs that
// server on 127.0.0.1, prints "READY <addr> <username> <password>" on
// stdout, serves until stdin is closed and exits the process. [Run] starts
// the benchmark's server process by re-executing the current program with
// ServeEnv set, so a program that calls Run must call MaybeServe first
// (TestMain, or the command that calls Run, before parsing anything else).
func MaybeServe() {
	kind := os.Getenv(ServeEnv)
	if kind == "" {
		return
	}
	if err := serve(kind, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "turnbench server: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve runs a server of kind until stdin reaches EOF.
func serve(kind string, stdin io.Reader, stdout io.Writer) error {
	var (
		addr, user, pass string
		closer           io.Closer
	)
	switch kind {
	case ServerIoP:
		secret := make([]byte, 32)
		rand.Read(secret)
		srv, err := turnserver.New(turnserver.Config{
			ListenUDP:                 "127.0.0.1:0",
			Secret:                    secret,
			CredentialTTL:             24 * time.Hour,
			MaxAllocationsPerIdentity: -1,
		})
		if err != nil {
			return err
		}
		creds := srv.Grant(identity.ID(sha256.Sum256([]byte("turnbench"))), time.Now())
		addr, user, pass, closer = srv.Addr().String(), creds.Username, creds.Password, srv
	case ServerPion:
		srv, a, err := startPion()
		if err != nil {
			return err
		}
		addr, user, pass, closer = a, pionUser, pionPass, srv
	default:
		return fmt.Errorf("unknown server %q in %s; want %q or %q", kind, ServeEnv, ServerIoP, ServerPion)
	}
	defer closer.Close()
	if path := os.Getenv(ProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("%s: %w", ProfileEnv, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("%s: %w", ProfileEnv, err)
		}
		defer pprof.StopCPUProfile()
	}
	if _, err := fmt.Fprintf(stdout, "READY %s %s %s\n", addr, user, pass); err != nil {
		return err
	}
	// Serve until the parent closes stdin (or dies).
	_, err := io.Copy(io.Discard, bufio.NewReader(stdin))
	return err
}

// startPion starts pion/turn as the feasibility run did: one UDP listener,
// a static relay address and one user, no peer filter.
func startPion() (*turn.Server, string, error) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	const realm = "example.org"
	key := turn.GenerateAuthKey(pionUser, realm, pionPass)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, key, ra.Username == pionUser
		},
		LoggerFactory: quietLoggers{},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		conn.Close()
		return nil, "", err
	}
	return srv, conn.LocalAddr().String(), nil
}

// waitReady reads the READY line of a server process.
func waitReady(ctx context.Context, r io.Reader) (addr, user, pass string, err error) {
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		ch <- line{s, err}
	}()
	select {
	case <-ctx.Done():
		return "", "", "", ctx.Err()
	case l := <-ch:
		if l.err != nil {
			return "", "", "", fmt.Errorf("server printed no READY line: %w", l.err)
		}
		if _, err := fmt.Sscanf(l.s, "READY %s %s %s", &addr, &user, &pass); err != nil {
			return "", "", "", fmt.Errorf("server printed %q, want READY <addr> <user> <password>: %w", l.s, err)
		}
		return addr, user, pass, nil
	}
}
