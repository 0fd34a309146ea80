package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// TestAgentListenDial connects two identities through a profile server:
// the first bytes travel over the relay, the stream then moves to a direct
// path on loopback, and both ends see who is on the other side.
func TestAgentListenDial(t *testing.T) {
	srv := profileservertest.Start(t)
	keyB := profileservertest.NewKey(t)
	b, _ := startAgent(t, client.AgentConfig{Home: t.TempDir(), Key: keyB, Server: srv.Addr, Type: "person"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitOnline(t, b)
	if _, err := b.SetProfile(ctx, client.ProfileChange{Name: name("Bea")}); err != nil {
		t.Fatal(err)
	}
	opt := client.DialOptions{IncludeLoopback: true}
	l, err := b.Listen(ctx, "chat", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := b.Listen(ctx, "chat", opt); err == nil {
		t.Error("a second listener for the same service was accepted")
	}

	keyA := profileservertest.NewKey(t)
	hA := profileservertest.ClientHost(t)

	// A service nobody listens to is rejected; an unknown identity is not found.
	if _, err := client.DialService(ctx, hA, keyA, srv.Addr, keyB.ID(), "video", opt); !errors.Is(err, client.Status(wirepb.Status_NOT_AVAILABLE)) {
		t.Errorf("dial of a service not enabled = %v, want NOT_AVAILABLE", err)
	}

	var timing client.DialTiming
	opt.Timing = func(dt client.DialTiming) { timing = dt }
	accepted := make(chan *client.PeerConn, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	ca, err := client.DialService(ctx, hA, keyA, srv.Addr, keyB.ID(), "chat", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb := <-accepted
	if cb == nil {
		t.Fatal("no connection accepted")
	}
	defer cb.Close()
	if ca.PeerID() != keyB.ID() || cb.PeerID() != keyA.ID() {
		t.Fatalf("peers = %s / %s, want %s / %s", ca.PeerID().Short(), cb.PeerID().Short(), keyB.ID().Short(), keyA.ID().Short())
	}
	if timing.Secure <= 0 || timing.Accepted > timing.Joined || timing.Joined > timing.Secure {
		t.Errorf("dial timing %+v out of order", timing)
	}

	// Bytes flow both ways while the path changes underneath.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	go func() {
		ca.Write(payload)
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(cb, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload corrupted")
	}
	path, err := ca.WaitPath(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if path != client.PathDirect {
		t.Errorf("final path = %s, want %s", path, client.PathDirect)
	}
	if _, err := cb.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(ca, buf); err != nil || string(buf) != "bye" {
		t.Fatalf("read %q, %v", buf, err)
	}
	ca.Close()
	if _, err := cb.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("read after the caller closed = %v, want EOF", err)
	}
}
