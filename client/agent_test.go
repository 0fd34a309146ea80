package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func startAgent(t *testing.T, cfg client.AgentConfig) (*client.Agent, context.CancelFunc) {
	t.Helper()
	a, err := client.NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return a, stop
}

func waitOnline(t *testing.T, a *client.Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.WaitOnline(ctx); err != nil {
		t.Fatalf("agent did not come online: %v (status %+v)", err, a.Status())
	}
}

func name(s string) *string { return &s }

// waitFor polls cond until it holds or the timeout passes: for state that
// no event announces (another process's view), not for synchronisation.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// TestAgentLifecycle: the agent registers with the first profile's type,
// publishes, survives a server restart by reconnecting, and its later
// updates keep increasing sequence numbers.
func TestAgentLifecycle(t *testing.T) {
	key := profileservertest.NewKey(t)
	srvKey := profileservertest.NewKey(t)
	dir := t.TempDir()
	srv := profileservertest.StartWith(t, srvKey, dir)
	listen := srv.Host.Addrs()[0].String()

	a, _ := startAgent(t, client.AgentConfig{Home: t.TempDir(), Key: key, Server: srv.Addr,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, 20*time.Second, "the agent to wait for a profile", func() bool { return a.Status().State == client.StateWaiting })
	if _, err := a.SetProfile(ctx, client.ProfileChange{Name: name("Ada")}); err == nil || !strings.Contains(err.Error(), "type") {
		t.Fatalf("SetProfile without a type = %v, want an error asking for a type", err)
	}
	loc := graph.Location{Lat: 51500000, Lon: -120000}
	sp, err := a.SetProfile(ctx, client.ProfileChange{Type: name("chat/user"), Name: name("Ada"), Location: &loc})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Profile.Sequence != 1 {
		t.Errorf("first sequence = %d, want 1", sp.Profile.Sequence)
	}
	waitOnline(t, a)

	// Restart the server on the same address and data.
	srv.Stop()
	srv = profileservertest.StartAt(t, srvKey, dir, listen)
	waitOnline(t, a)
	q := srv.Dial(t)
	var info *client.ProfileInfo
	waitFor(t, 20*time.Second, "the agent to check in after the restart", func() bool {
		info, err = q.GetProfile(ctx, key.ID(), client.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info.Online
	})
	if info.Profile.Profile.Name != "Ada" {
		t.Errorf("profile after restart = %q", info.Profile.Profile.Name)
	}
	sp, err = a.SetProfile(ctx, client.ProfileChange{Extra: name("t=chess")})
	for errors.Is(err, client.ErrOffline) && ctx.Err() == nil {
		sp, err = a.SetProfile(ctx, client.ProfileChange{Extra: name("t=chess")})
	}
	if err != nil {
		t.Fatal(err)
	}
	if sp.Profile.Sequence != 2 || sp.Profile.Name != "Ada" || sp.Profile.Extra != "t=chess" {
		t.Errorf("second profile = %+v, want sequence 2 keeping the name", sp.Profile)
	}
	if _, err := a.SetProfile(ctx, client.ProfileChange{Type: name("other/type")}); err == nil {
		t.Error("SetProfile changed the identity type")
	}
}

// TestAgentResyncsAfterLostState: an agent whose home lost its state
// learns the server's newer sequence and keeps going from there.
func TestAgentResyncsAfterLostState(t *testing.T) {
	key := profileservertest.NewKey(t)
	srv := profileservertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, stop := startAgent(t, client.AgentConfig{Home: t.TempDir(), Key: key, Server: srv.Addr, Type: "chat/user"})
	waitOnline(t, a)
	for range 3 {
		if _, err := a.SetProfile(ctx, client.ProfileChange{Name: name("Ada")}); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	b, _ := startAgent(t, client.AgentConfig{Home: t.TempDir(), Key: key, Server: srv.Addr, Type: "chat/user"})
	waitOnline(t, b)
	sp, err := b.SetProfile(ctx, client.ProfileChange{Name: name("Ada Lovelace")})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Profile.Sequence != 4 {
		t.Errorf("sequence after resync = %d, want 4", sp.Profile.Sequence)
	}
}

func TestAgentServicesSurviveReconnect(t *testing.T) {
	key := profileservertest.NewKey(t)
	srv := profileservertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := startAgent(t, client.AgentConfig{Home: t.TempDir(), Key: key, Server: srv.Addr, Type: "chat/user",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	waitOnline(t, a)
	if _, err := a.SetProfile(ctx, client.ProfileChange{Name: name("Bob")}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddServices(ctx, "chat", "files"); err != nil {
		t.Fatal(err)
	}
	err := a.AddServices(ctx, strings.Repeat("x", 33))
	if !errors.Is(err, client.Status(wirepb.Status_INVALID_VALUE)) {
		t.Errorf("AddServices(33-byte name) = %v, want INVALID_VALUE", err)
	}
	// A second check-in of the same identity drops the agent's connection;
	// the agent reconnects and enables its services again.
	other := srv.Dial(t)
	if err := other.StartConversation(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := other.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	other.Close()
	q := srv.Dial(t)
	waitFor(t, 20*time.Second, "the agent to re-enable its 2 services", func() bool {
		info, err := q.GetProfile(ctx, key.ID(), client.GetOptions{Services: true})
		if err != nil {
			t.Fatal(err)
		}
		return info.Online && len(info.Services) == 2
	})
}
