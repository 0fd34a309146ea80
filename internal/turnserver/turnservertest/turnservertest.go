// Package turnservertest starts real STUN/TURN servers on loopback for tests.
package turnservertest

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"sync"
	"testing"

	"github.com/iop-go/iop/internal/turnserver"
)

// Start starts a server with cfg on 127.0.0.1 and closes it when the test
// ends. Empty ListenUDP becomes "127.0.0.1:0" and an empty Secret a random
// one. A nil Logger collects debug logs and prints them only if the test
// fails (pion logs from its own goroutines, which may outlive subtests, so
// they cannot write to t.Output directly).
func Start(t testing.TB, cfg turnserver.Config) *turnserver.Server {
	t.Helper()
	if cfg.ListenUDP == "" {
		cfg.ListenUDP = "127.0.0.1:0"
	}
	if cfg.Secret == nil {
		cfg.Secret = make([]byte, 32)
		rand.Read(cfg.Secret)
	}
	if cfg.Logger == nil {
		w := &syncBuffer{}
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
		// Registered first, so it runs after the server has closed.
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("turn server log:\n%s", w.String())
			}
		})
	}
	s, err := turnserver.New(cfg)
	if err != nil {
		t.Fatalf("turnserver.New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("turnserver Close: %v", err)
		}
	})
	return s
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
