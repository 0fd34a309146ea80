package netlab

import (
	"encoding/binary"
	"testing"
)

// ipv4Frame builds an Ethernet frame with an IPv4 header from 192.168.1.2
// to 198.18.0.1 around seg, followed by pad bytes of Ethernet padding.
func ipv4Frame(proto byte, flagsFrag uint16, seg []byte, pad int) []byte {
	f := make([]byte, 14, 14+20+len(seg)+pad)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(seg)))
	binary.BigEndian.PutUint16(ip[6:], flagsFrag)
	ip[8] = 64
	ip[9] = proto
	copy(ip[12:], []byte{192, 168, 1, 2})
	copy(ip[16:], []byte{198, 18, 0, 1})
	f = append(f, ip...)
	f = append(f, seg...)
	return append(f, make([]byte, pad)...)
}

func TestFixChecksum(t *testing.T) {
	// Segments and checksums computed independently (Python, RFC 1071).
	udp := []byte{0x9c, 0x40, 0x0d, 0x96, 0x00, 0x17, 0x12, 0x34}
	udp = append(udp, "hello, netlab!!"...)
	tcp := []byte{
		0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0,
		0x50, 0x02, 0xff, 0xff, 0xbe, 0xef, 0, 0,
	}
	tcp = append(tcp, "abc"...)
	tests := []struct {
		name  string
		frame []byte
		off   int // offset of the checksum in the frame
		fixed bool
		want  uint16
	}{
		{"udp", ipv4Frame(17, 0x4000, udp, 0), 34 + 6, true, 0x14c8},
		{"udp with ethernet padding", ipv4Frame(17, 0, udp, 7), 34 + 6, true, 0x14c8},
		{"tcp", ipv4Frame(6, 0x4000, tcp, 0), 34 + 16, true, 0xa7ed},
		{"fragment left alone", ipv4Frame(17, 0x2000, udp, 0), 34 + 6, false, 0x1234},
		{"icmp left alone", ipv4Frame(1, 0, udp, 0), 34 + 6, false, 0x1234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fixChecksum(tt.frame); got != tt.fixed {
				t.Fatalf("fixChecksum = %v, want %v", got, tt.fixed)
			}
			if got := binary.BigEndian.Uint16(tt.frame[tt.off:]); got != tt.want {
				t.Errorf("checksum = %#04x, want %#04x", got, tt.want)
			}
		})
	}
	// Frames too short or not IPv4 must not panic or change.
	for _, f := range [][]byte{nil, make([]byte, 20), {0: 0, 12: 0x86, 13: 0xdd, 40: 0}} {
		if fixChecksum(f) {
			t.Errorf("fixChecksum(%x) = true, want false", f)
		}
	}
}

func TestParseNAT(t *testing.T) {
	for _, n := range []NAT{Public, Cone, Symmetric} {
		got, err := ParseNAT(n.String())
		if err != nil || got != n {
			t.Errorf("ParseNAT(%q) = %v, %v; want %v", n.String(), got, err, n)
		}
	}
	if _, err := ParseNAT("full-cone"); err == nil {
		t.Error("ParseNAT(full-cone) succeeded, want an error")
	}
}
