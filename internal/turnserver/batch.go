package turnserver

import (
	"net"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchReader reads a UDP socket several datagrams per system call
// (recvmmsg on Linux; one at a time elsewhere) and hands them out one by one
// through read. Under load, when datagrams queue up, this saves most of the
// receive system calls. It must be used by one goroutine at a time, as pion
// does: one read loop per socket.
type batchReader struct {
	conn interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
	size int // bytes per buffer, fixed by the first read
	n, i int // messages filled by the last batch, next to hand out
}

func newBatchReader(conn *net.UDPConn, batch int) *batchReader {
	b := &batchReader{msgs: make([]ipv4.Message, batch)}
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		b.conn = ipv6.NewPacketConn(conn)
	} else {
		b.conn = ipv4.NewPacketConn(conn)
	}
	return b
}

// read copies the next datagram into p. A datagram that did not fit p is
// reported as len(p) bytes, as a single ReadFrom into p would.
func (b *batchReader) read(p []byte) (int, net.Addr, error) {
	if b.i >= b.n {
		if b.size == 0 {
			b.size = max(len(p), 1)
			for i := range b.msgs {
				b.msgs[i].Buffers = [][]byte{make([]byte, b.size)}
			}
		}
		n, err := b.conn.ReadBatch(b.msgs, 0)
		if err != nil {
			return 0, nil, err
		}
		b.n, b.i = n, 0
	}
	m := &b.msgs[b.i]
	b.i++
	n := copy(p, m.Buffers[0][:m.N])
	addr := m.Addr
	m.Addr = nil
	return n, addr, nil
}
