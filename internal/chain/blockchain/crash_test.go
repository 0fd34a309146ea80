package blockchain

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/internal/chain/blockchain/chaintest"
	"github.com/iop-go/iop/internal/chain/types"
)

const crashEnv = "IOP_BLOCKCHAIN_CRASH_DB"

// TestCrashChild is the process TestCrashRecovery kills: it mines blocks
// with spends into the database named by the environment and reports
// each connected height on stdout.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process of TestCrashRecovery; runs only when " + crashEnv + " is set")
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := chaintest.New(t, nil)
	c, err := New(Config{Params: g.P, DB: db, Now: func() time.Time { return g.Now }})
	if err != nil {
		t.Fatal(err)
	}
	m0 := g.Miners[0]
	var blocks []*types.Block
	tip := g.Genesis
	for i := 1; i <= 100000; i++ {
		var txs []*types.Tx
		if i > 4 {
			old := blocks[i-5]
			txs = append(txs, g.Tx(m0, []types.OutPoint{chaintest.MinerOut(old)}, []types.TxOut{{Value: 1, Address: chaintest.Addr(m0)}, {Value: chaintest.MinerValue(old) - 10, Address: chaintest.Addr(m0)}}, nil))
		}
		tip = g.Next(tip.Hash(), chaintest.Spec{Txs: txs})
		if _, err := c.ProcessBlock(tip); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, tip)
		fmt.Printf("connected %d\n", i)
	}
}

// TestCrashRecovery kills a process that is connecting blocks (SIGKILL,
// at whatever point it is) and checks that the database reopens on a
// consistent tip: the stored state equals a replay of the stored main
// chain.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("SIGKILLs a child process connecting blocks three times (several seconds); skipped with -short")
	}
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "chain.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		target := fmt.Sprintf("connected %d", 20+17*round)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == target {
				seen = true
				break
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !seen {
			t.Fatalf("round %d: child never reported %q", round, target)
		}

		h := &harness{t: t, g: chaintest.New(t, nil), path: path, count: map[string]int{}}
		h.db = openDB(t, path)
		h.c = h.open()
		tip := h.c.Tip()
		if tip.Height < int64(20+17*round) {
			t.Fatalf("round %d: reopened at height %d, want at least %d", round, tip.Height, 20+17*round)
		}
		if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
			t.Fatalf("round %d: state at height %d differs from a replay of the stored chain", round, tip.Height)
		}
		t.Logf("round %d: killed after %q, reopened at height %d, state consistent", round, target, tip.Height)
		h.db.Close()
	}
}

// TestResumeReorg simulates a crash in the middle of a reorganisation: a
// branch with more work is stored but the tip is still on the old one.
// Reopening switches to the stored branch.
func TestResumeReorg(t *testing.T) {
	h := newHarness(t, nil)
	g := h.g
	a := h.chain(g.Genesis, 3, chaintest.Spec{})
	var side []*types.Block
	parent := a[0]
	for range 3 {
		parent = g.Next(parent.Hash(), chaintest.Spec{Miner: g.Miners[1]})
		side = append(side, parent)
	}
	err := h.db.Update(func(tx *bbolt.Tx) error {
		for i, b := range side {
			if err := putBlock(tx, b, int64(i+2), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.tipIs(a[2])
	h.reopen()
	h.tipIs(side[2])
	if got, want := h.c.StateDigest(), h.replayDigest(); got != want {
		t.Fatal("resumed reorganisation left another state than a replay")
	}
}
