package turnbench

import (
	"os"
	"testing"
)

func TestMedianRate(t *testing.T) {
	out := []byte(`0: : start_mclient: msz=2, tot_send_msgs=0, tot_recv_msgs=0, tot_send_bytes ~ 0, tot_recv_bytes ~ 0
1: : start_mclient: msz=2, tot_send_msgs=100, tot_recv_msgs=100, tot_send_bytes ~ 0, tot_recv_bytes ~ 0
2: : start_mclient: msz=2, tot_send_msgs=1100, tot_recv_msgs=1100, tot_send_bytes ~ 0, tot_recv_bytes ~ 0
3: : start_mclient: msz=2, tot_send_msgs=3100, tot_recv_msgs=3100, tot_send_bytes ~ 0, tot_recv_bytes ~ 0
4: : start_mclient: msz=2, tot_send_msgs=4600, tot_recv_msgs=4600, tot_send_bytes ~ 0, tot_recv_bytes ~ 0
5: : start_mclient: msz=2, tot_send_msgs=4650, tot_recv_msgs=4650, tot_send_bytes ~ 0, tot_recv_bytes ~ 0
5: : start_mclient: tot_send_msgs=4650, tot_recv_msgs=4650
`)
	// Active seconds 100, 1000, 2000, 1500, 50; without the first and last,
	// the median of 1000, 2000, 1500 is 1500.
	if got := medianRate(out); got != 1500 {
		t.Errorf("medianRate = %v, want 1500", got)
	}
	if m := totalsLine.FindSubmatch(out); m == nil || string(m[1]) != "4650" || string(m[2]) != "4650" {
		t.Errorf("totals = %q, want 4650/4650", m)
	}
}

func TestCPUTime(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc on this system: %v", err)
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatalf("cpuTime(self): %v", err)
	}
}
