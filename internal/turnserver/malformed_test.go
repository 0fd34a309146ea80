package turnserver_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/turnserver"
	"github.com/iop-go/iop/internal/turnserver/turnservertest"
	"github.com/pion/stun/v4"
)

// TestMalformedInput sends datagrams pion and the listener wrapper must
// survive, then checks the server still answers and relays.
func TestMalformedInput(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	alice := testID("alice")
	creds := srv.Grant(alice, time.Now())
	c := newRawClient(t, srv)
	nonce := c.nonce()
	res := c.do(c.authed(allocateRequest, creds, nonce, transportUDP)...)
	if res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate = %v (%v), want success", res, errorCode(t, res))
	}

	valid, err := stun.Build(stun.TransactionID, allocateRequest, transportUDP, dontFragment,
		stun.NewUsername(creds.Username), stun.NewRealm(srv.Realm()), nonce, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	header := func(typ, length uint16) []byte {
		b := make([]byte, 20)
		binary.BigEndian.PutUint16(b, typ)
		binary.BigEndian.PutUint16(b[2:], length)
		binary.BigEndian.PutUint32(b[4:], 0x2112A442)
		return b
	}
	channel := func(number, length uint16, payload int) []byte {
		b := make([]byte, 4+payload)
		binary.BigEndian.PutUint16(b, number)
		binary.BigEndian.PutUint16(b[2:], length)
		return b
	}
	junk := [][]byte{
		{},
		{0},
		bytes.Repeat([]byte{0xff}, 64),
		make([]byte, 4000), // beyond pion's 1600-byte read buffer
		append(header(0x0003, 0), make([]byte, 1700)...),  // oversized STUN
		valid.Raw[:len(valid.Raw)-3],                      // truncated
		header(0x0003, 8),                                 // length beyond the datagram
		header(0x0003, 2),                                 // length not a multiple of 4
		append(header(0x0003, 4), 0x00, 0x19, 0x00, 0x10), // attribute overruns the message
		append(header(0x0113, 4), 0x00, 0x09, 0x00, 0x00), // error response sent to the server
		header(0x0016, 0),                                 // Send indication without attributes
		channel(0x4000, 100, 10),                          // ChannelData shorter than its length
		channel(0x4000, 0, 0),                             // empty ChannelData on an unbound channel
		channel(0x7fff, 65535, 20),
		channel(0x4001, 4, 4),
	}
	for i := range 2 { // also after the relay has been used
		for _, b := range junk {
			if _, err := c.conn.WriteTo(b, srv.Addr()); err != nil && len(b) < 1600 {
				t.Fatalf("WriteTo(%d bytes): %v", len(b), err)
			}
		}
		if res := c.do(stun.BindingRequest, stun.Fingerprint); res.Type != stun.BindingSuccess {
			t.Fatalf("round %d: Binding after junk = %v, want success", i, res)
		}
	}
	if got := srv.Allocations(alice); got != 1 {
		t.Errorf("Allocations(alice) = %d, want 1", got)
	}
}

// TestFloodAndClose floods the server with Allocates of one identity and
// checks that the quota holds, and that Close frees every relayed port and
// goroutine.
func TestFloodAndClose(t *testing.T) {
	const (
		quota   = 8
		clients = 40
	)
	before := runtime.NumGoroutine()
	srv := turnservertest.Start(t, turnserver.Config{MaxAllocationsPerIdentity: quota})
	alice := testID("alice")
	creds := srv.Grant(alice, time.Now())

	var relays []string
	refused := 0
	for range clients {
		c := newRawClient(t, srv)
		res := c.do(c.authed(allocateRequest, creds, c.nonce(), transportUDP)...)
		switch res.Type.Class {
		case stun.ClassSuccessResponse:
			var relayed stun.XORMappedAddress
			if err := relayed.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
				t.Fatalf("success without XOR-RELAYED-ADDRESS: %v", err)
			}
			relays = append(relays, relayed.String())
		default:
			if ec := errorCode(t, res); ec.Code != stun.CodeAllocQuotaReached {
				t.Fatalf("Allocate = %v, want success or 486", ec)
			}
			refused++
		}
	}
	if len(relays) != quota || refused != clients-quota || srv.Allocations(alice) != quota {
		t.Fatalf("%d allocated, %d refused, %d live; want %d, %d, %d",
			len(relays), refused, srv.Allocations(alice), quota, clients-quota, quota)
	}

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, r := range relays {
		conn, err := net.ListenPacket("udp4", r)
		if err != nil {
			t.Fatalf("relayed port %s still in use after Close: %v", r, err)
		}
		conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines 5 s after Close, %d before the server:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}
