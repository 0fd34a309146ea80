package client

import "testing"

func TestAmounts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{{"0", 0}, {"12.5", 1_250_000_000}, {"0.00000001", 1}, {"21000000", 21_000_000 * Units}, {"1.10", 110_000_000}} {
		got, err := ParseAmount(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseAmount(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", ".5", "1.123456789", "-1", "+1", "1e3", "abc", "184467440737.1"} {
		if _, err := ParseAmount(bad); err == nil {
			t.Errorf("ParseAmount(%q) succeeded", bad)
		}
	}
	for _, tc := range []struct {
		in   uint64
		want string
	}{{0, "0"}, {1, "0.00000001"}, {1_250_000_000, "12.5"}, {Units, "1"}} {
		if got := FormatAmount(tc.in); got != tc.want {
			t.Errorf("FormatAmount(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
