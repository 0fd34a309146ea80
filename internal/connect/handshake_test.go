package connect

import (
	"context"
	"crypto/rand"
	"io"
	"testing"

	"github.com/iop-go/iop/identity"
)

// scriptedRelay returns the given messages from Recv and discards sends.
type scriptedRelay struct{ msgs [][]byte }

func (r *scriptedRelay) Send(context.Context, []byte) error { return nil }
func (r *scriptedRelay) Recv(context.Context) ([]byte, error) {
	if len(r.msgs) == 0 {
		return nil, io.EOF
	}
	m := r.msgs[0]
	r.msgs = r.msgs[1:]
	return m, nil
}
func (r *scriptedRelay) MaxMessage() int { return 16 << 10 }
func (r *scriptedRelay) Close() error    { return nil }

// FuzzHandshakeMessage feeds arbitrary handshake messages to both roles.
func FuzzHandshakeMessage(f *testing.F) {
	f.Add([]byte{}, []byte{}, true)
	f.Add(make([]byte, 32), make([]byte, 200), false)
	a, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	b, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, m1, m2 []byte, initiator bool) {
		cfg := Config{Key: a, Peer: b.ID(), Initiator: initiator, DisableICE: true}
		c, err := Open(context.Background(), cfg, &scriptedRelay{msgs: [][]byte{m1, m2}})
		if err == nil {
			c.Close()
			t.Fatalf("Open succeeded with forged handshake messages %x, %x", m1, m2)
		}
	})
}
