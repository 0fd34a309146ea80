// Package connecttest provides an in-memory profile-server call relay for
// tests of package connect and its users.
package connecttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Window is the number of unacknowledged messages a side may have in flight,
// as on the profile server.
const Window = 20

// Options configure a relay pair.
type Options struct {
	// MaxMessage is the largest message; default 16 KiB.
	MaxMessage int
	// Delay is added to the delivery of every message.
	Delay time.Duration
}

// ErrClosed is returned by Send after the call was closed.
var ErrClosed = errors.New("connecttest: relay closed")

type message struct {
	data []byte
	due  time.Time
}

// call is the state shared by the two ends.
type call struct {
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Relay is one end of an in-memory call relay. It implements connect.Relay.
type Relay struct {
	c      *call
	maxMsg int
	delay  time.Duration
	out    chan message  // to the forwarder of this direction
	in     chan message  // delivered messages of the other direction
	window chan struct{} // slots of this side's unacknowledged messages
	peer   *Relay
	sent   atomic.Int64
}

// Pair returns the two connected ends of a new call. Closing either end
// closes the call; messages sent before can still be received, then Recv
// returns io.EOF.
func Pair(opts Options) (a, b *Relay) {
	if opts.MaxMessage == 0 {
		opts.MaxMessage = 16 << 10
	}
	c := &call{done: make(chan struct{})}
	mk := func() *Relay {
		return &Relay{
			c:      c,
			maxMsg: opts.MaxMessage,
			delay:  opts.Delay,
			out:    make(chan message, Window),
			in:     make(chan message, Window),
			window: make(chan struct{}, Window),
		}
	}
	a, b = mk(), mk()
	a.peer, b.peer = b, a
	c.wg.Go(func() { forward(c, a.out, b.in) })
	c.wg.Go(func() { forward(c, b.out, a.in) })
	return a, b
}

// forward moves messages from one side's queue to the other's, each at its
// due time. When the call closes, messages already sent are delivered at
// once (the window guarantees room for them), so Close loses nothing sent before it.
func forward(c *call, from <-chan message, to chan<- message) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	flush := func(held *message) {
		if held != nil {
			to <- *held
		}
		for {
			select {
			case m := <-from:
				to <- m
			default:
				return
			}
		}
	}
	for {
		var m message
		select {
		case m = <-from:
		case <-c.done:
			flush(nil)
			return
		}
		if d := time.Until(m.due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-c.done:
				flush(&m)
				return
			}
		}
		select {
		case to <- m:
		case <-c.done:
			flush(&m)
			return
		}
	}
}

// Send queues msg for the peer; it blocks while Window messages are unacknowledged.
func (r *Relay) Send(ctx context.Context, msg []byte) error {
	if len(msg) > r.maxMsg {
		return fmt.Errorf("connecttest: message of %d bytes exceeds %d", len(msg), r.maxMsg)
	}
	select {
	case <-r.c.done:
		return ErrClosed
	default:
	}
	select {
	case r.window <- struct{}{}:
	case <-r.c.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	m := message{data: append([]byte(nil), msg...), due: time.Now().Add(r.delay)}
	select {
	case r.out <- m:
		r.sent.Add(1)
		return nil
	case <-r.c.done:
		return ErrClosed
	case <-ctx.Done():
		<-r.window
		return ctx.Err()
	}
}

// Recv returns the peer's next message; io.EOF once the call is closed and
// every message sent before was received.
func (r *Relay) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-r.in:
		<-r.peer.window
		return m.data, nil
	case <-r.c.done:
		r.c.wg.Wait() // the forwarders flush what was sent before the close
		select {
		case m := <-r.in:
			return m.data, nil
		default:
			return nil, io.EOF
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// MaxMessage returns the largest message Send accepts.
func (r *Relay) MaxMessage() int { return r.maxMsg }

// Close ends the call for both sides and stops the relay's goroutines.
func (r *Relay) Close() error {
	r.c.closeOnce.Do(func() { close(r.c.done) })
	r.c.wg.Wait()
	return nil
}

// Closed is closed once either side closed the call.
func (r *Relay) Closed() <-chan struct{} { return r.c.done }

// Sent returns the number of messages this side sent.
func (r *Relay) Sent() int64 { return r.sent.Load() }
