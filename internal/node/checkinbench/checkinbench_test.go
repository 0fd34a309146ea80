package checkinbench

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestRunInProcess runs the benchmark end to end on a small scale with the
// clients in this process, so the benchmark cannot rot unnoticed.
func TestRunInProcess(t *testing.T) {
	rep, err := Run(context.Background(), Config{N: 30, Idle: 200 * time.Millisecond, Settle: time.Millisecond, Dir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CheckedIn != 30 || rep.Failed != 0 || rep.Online != 30 {
		t.Errorf("Run = %d checked in, %d failed, %d online at the node; want 30, 0, 30", rep.CheckedIn, rep.Failed, rep.Online)
	}
	if rep.CheckInPerS <= 0 || rep.GoroutinesID <= 0 {
		t.Errorf("Run reported rate %v and goroutines/identity %v; want both > 0", rep.CheckInPerS, rep.GoroutinesID)
	}
}

func TestKeyIsDeterministic(t *testing.T) {
	if Key(1, 5).ID() != Key(1, 5).ID() || Key(1, 5).ID() == Key(1, 6).ID() || Key(1, 5).ID() == Key(2, 5).ID() {
		t.Error("Key must depend on exactly the seed and the index")
	}
}
