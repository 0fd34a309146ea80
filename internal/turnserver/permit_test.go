package turnserver

import (
	"net"
	"testing"
)

func TestPermitPeer(t *testing.T) {
	public, private, loop := net.ParseIP("203.0.113.7"), net.ParseIP("10.1.2.3"), net.ParseIP("127.0.0.1")
	tests := []struct {
		relay, peer net.IP
		want        bool
	}{
		{public, net.ParseIP("198.51.100.1"), true},
		{public, loop, false},
		{public, private, false},
		{public, net.ParseIP("169.254.1.1"), false},
		{public, net.ParseIP("224.0.0.1"), false},
		{public, net.ParseIP("0.0.0.0"), false},
		{public, net.ParseIP("fd00::1"), false},
		{private, net.ParseIP("10.9.9.9"), true},
		{private, loop, false},
		{loop, loop, true},
		{loop, private, true},
	}
	for _, tt := range tests {
		if got := permitPeer(tt.relay)(nil, tt.peer); got != tt.want {
			t.Errorf("permitPeer(relay %v)(peer %v) = %v, want %v", tt.relay, tt.peer, got, tt.want)
		}
	}
}
