package connecttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestRelayOrderWindowClose(t *testing.T) {
	a, b := Pair(Options{MaxMessage: 1024, Delay: time.Millisecond})
	ctx := context.Background()
	for i := range Window {
		if err := a.Send(ctx, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	// The window is full: the next Send blocks until the context ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := a.Send(short, []byte("over"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send with a full window = %v, want context.DeadlineExceeded", err)
	}
	if err := a.Send(ctx, make([]byte, 1025)); err == nil {
		t.Fatalf("Send of 1025 bytes with MaxMessage 1024 succeeded")
	}
	m, err := b.Recv(ctx)
	if err != nil || string(m) != "m0" {
		t.Fatalf("Recv = %q, %v, want m0", m, err)
	}
	if err := a.Send(ctx, []byte("last")); err != nil { // room again
		t.Fatalf("Send after Recv: %v", err)
	}
	a.Close()
	for i := 1; i < Window; i++ {
		m, err := b.Recv(ctx)
		if want := fmt.Sprintf("m%d", i); err != nil || string(m) != want {
			t.Fatalf("Recv after Close = %q, %v, want %q", m, err, want)
		}
	}
	if m, err := b.Recv(ctx); err != nil || string(m) != "last" {
		t.Fatalf("Recv = %q, %v, want last", m, err)
	}
	if _, err := b.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after everything = %v, want io.EOF", err)
	}
	if err := b.Send(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}
