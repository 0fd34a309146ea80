package netlab

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wireQueue bounds the frames held per direction; frames beyond it are
// dropped, as a real link would under an unpaced burst.
const wireQueue = 4096

// wire forwards Ethernet frames between the veths w0 and w1 of a wire
// namespace, holding each frame for the lab's delay in each direction.
type wire struct {
	ns      string
	files   [2]*os.File // AF_PACKET sockets bound to w0 and w1
	done    chan struct{}
	wg      sync.WaitGroup
	dropped atomic.Uint64
	once    sync.Once
}

type frame struct {
	due  time.Time
	data []byte
}

// startWire creates the AF_PACKET sockets in w, disables transmit
// offloads on the veths feeding the wire (upIf in up, port in the public
// namespace) and starts forwarding. The wire is recorded for Close.
func (l *Lab) startWire(w, up *Host, upIf, port string) error {
	if err := up.Do(func() error { return disableOffloads(upIf) }); err != nil {
		return fmt.Errorf("netlab: %s: %w", up.ns, err)
	}
	if err := l.pub.Do(func() error { return disableOffloads(port) }); err != nil {
		return fmt.Errorf("netlab: %s: %w", l.pub.ns, err)
	}
	wr := &wire{ns: w.ns, done: make(chan struct{})}
	err := w.Do(func() error {
		for i, name := range []string{"w0", "w1"} {
			if err := disableOffloads(name); err != nil {
				return err
			}
			f, err := packetSocket(name)
			if err != nil {
				return err
			}
			wr.files[i] = f
		}
		return nil
	})
	if err != nil {
		for _, f := range wr.files {
			if f != nil {
				f.Close()
			}
		}
		return fmt.Errorf("netlab: wire %s: %w", w.ns, err)
	}
	l.mu.Lock()
	l.wires = append(l.wires, wr)
	l.mu.Unlock()
	wr.start(l.delay)
	return nil
}

// packetSocket opens a non-blocking AF_PACKET socket bound to ifname (in
// the calling thread's namespace) that ignores the frames it sends itself.
func packetSocket(ifname string) (*os.File, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	// Protocol 0 receives nothing until bind, so no frame of another
	// interface slips into the queue.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	// Best effort: a larger receive buffer absorbs bursts; older kernels
	// lack PACKET_IGNORE_OUTGOING, and the reader skips outgoing frames
	// anyway.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)     //nolint:errcheck
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1) //nolint:errcheck
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding AF_PACKET socket to %s: %w", ifname, err)
	}
	return os.NewFile(uintptr(fd), "packet:"+ifname), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// disableOffloads turns off transmit checksum offload, TSO and GSO on
// ifname (in the calling thread's namespace), so frames leaving it carry
// complete checksums and fit the MTU. The wire still fixes checksums in
// case a kernel ignores this.
func disableOffloads(ifname string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for ethtool ioctl: %w", err)
	}
	defer unix.Close(fd)
	for _, op := range []struct {
		cmd  uint32
		name string
	}{
		{unix.ETHTOOL_STXCSUM, "tx checksum offload"},
		{unix.ETHTOOL_STSO, "TSO"},
		{unix.ETHTOOL_SGSO, "GSO"},
	} {
		val := struct{ cmd, data uint32 }{op.cmd, 0}
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data unsafe.Pointer
			_    [16]byte
		}
		copy(ifr.name[:], ifname)
		ifr.data = unsafe.Pointer(&val)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&val)
		if errno != 0 && errno != unix.EOPNOTSUPP {
			return fmt.Errorf("disabling %s on %s (ethtool ioctl): %w", op.name, ifname, errno)
		}
	}
	return nil
}

func (w *wire) start(delay time.Duration) {
	for i := range 2 {
		q := make(chan frame, wireQueue)
		w.wg.Add(2)
		go w.read(w.files[i], q, delay)
		go w.write(w.files[1-i], q)
	}
}

// read receives frames from src and queues them with their due time.
func (w *wire) read(src *os.File, q chan<- frame, delay time.Duration) {
	defer w.wg.Done()
	defer close(q)
	rc, err := src.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 1<<16)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err != nil {
			return // socket closed
		}
		if rerr != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f := frame{due: time.Now().Add(delay), data: append([]byte(nil), buf[:n]...)}
		select {
		case q <- f:
		default:
			w.dropped.Add(1)
		}
	}
}

// write sends each queued frame to dst once it is due, with its IPv4
// TCP/UDP checksum completed.
func (w *wire) write(dst *os.File, q <-chan frame) {
	defer w.wg.Done()
	rc, err := dst.SyscallConn()
	if err != nil {
		return
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for f := range q {
		if d := time.Until(f.due); d > 0 {
			timer.Reset(d)
			select {
			case <-w.done:
				return
			case <-timer.C:
			}
		}
		fixChecksum(f.data)
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			werr = unix.Send(int(fd), f.data, unix.MSG_DONTWAIT)
			return werr != unix.EAGAIN && werr != unix.EINTR
		})
		if err != nil {
			return // socket closed
		}
		if werr != nil {
			w.dropped.Add(1)
		}
	}
}

// stop closes the sockets and waits for the forwarding goroutines.
func (w *wire) stop() {
	w.once.Do(func() {
		close(w.done)
		for _, f := range w.files {
			f.Close()
		}
		w.wg.Wait()
	})
}

// fixChecksum recomputes the TCP or UDP checksum of an unfragmented IPv4
// packet in an Ethernet frame (frames read from a veth may carry only the
// offload seed there). Other frames are left alone. It reports whether it
// rewrote a checksum.
func fixChecksum(eth []byte) bool {
	if len(eth) < 14+20 || binary.BigEndian.Uint16(eth[12:14]) != 0x0800 {
		return false
	}
	ip := eth[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl {
		return false
	}
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total < ihl || total > len(ip) {
		return false
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // MF flag or fragment offset
		return false
	}
	proto := ip[9]
	seg := ip[ihl:total]
	var off int
	switch proto {
	case unix.IPPROTO_TCP:
		off = 16
		if len(seg) < 20 {
			return false
		}
	case unix.IPPROTO_UDP:
		off = 6
		if len(seg) < 8 {
			return false
		}
	default:
		return false
	}
	seg[off], seg[off+1] = 0, 0
	sum := uint32(0)
	sum += uint32(binary.BigEndian.Uint16(ip[12:14])) + uint32(binary.BigEndian.Uint16(ip[14:16]))
	sum += uint32(binary.BigEndian.Uint16(ip[16:18])) + uint32(binary.BigEndian.Uint16(ip[18:20]))
	sum += uint32(proto) + uint32(len(seg))
	sum = onesSum(sum, seg)
	c := ^uint16(sum)
	if proto == unix.IPPROTO_UDP && c == 0 {
		c = 0xffff // 0 means "no checksum" for UDP over IPv4
	}
	binary.BigEndian.PutUint16(seg[off:], c)
	return true
}

// onesSum adds b as big-endian 16-bit words to sum and folds the carries.
func onesSum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum
}
