package connect_test

import (
	"io"
	"net"
	"testing"

	"github.com/iop-go/iop/internal/connect"
	"github.com/iop-go/iop/internal/connect/connecttest"
)

// benchCopy writes b.N chunks of 64 KiB from w and reads them all from r.
func benchCopy(b *testing.B, w io.Writer, r io.Reader) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ReportAllocs()
	done := make(chan error, 1)
	b.ResetTimer()
	go func() {
		_, err := io.CopyN(io.Discard, r, int64(b.N)*chunk)
		done <- err
	}()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatalf("Write: %v", err)
		}
	}
	if err := <-done; err != nil {
		b.Fatalf("Read: %v", err)
	}
}

func BenchmarkThroughput(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}()
		w, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		r, ok := <-accepted
		if !ok {
			b.Fatal("accept failed")
		}
		defer r.Close()
		benchCopy(b, w, r)
	})
	b.Run("direct", func(b *testing.B) {
		p := mustOpenPair(b, connecttest.Options{}, func(_ bool, cfg *connect.Config) { loopbackOnly(cfg) })
		waitPath(b, p.a, connect.PathDirect)
		waitPath(b, p.b, connect.PathDirect)
		benchCopy(b, p.a, p.b)
	})
	b.Run("relay", func(b *testing.B) {
		p := mustOpenPair(b, connecttest.Options{}, func(_ bool, cfg *connect.Config) { cfg.DisableICE = true })
		benchCopy(b, p.a, p.b)
	})
}
