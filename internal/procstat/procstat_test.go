package procstat

import "testing"

func TestReadings(t *testing.T) {
	rss, err := RSS()
	if err != nil || rss <= 0 {
		t.Fatalf("RSS() = %d, %v; want > 0", rss, err)
	}
	if _, err := CPUTime(); err != nil {
		t.Fatalf("CPUTime() = %v", err)
	}
}
