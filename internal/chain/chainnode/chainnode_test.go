package chainnode_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.etcd.io/bbolt"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/chainnode"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
	"github.com/iop-go/iop/internal/p2p"
)

// fastDevnet is the devnet with blocks as fast as the miner finds them.
func fastDevnet() *chaincfg.Params {
	p := chaincfg.DevNet()
	p.TargetSpacing = 10 * time.Millisecond
	return p
}

func keyOf(t *testing.T, priv ed25519.PrivateKey) *identity.Key {
	t.Helper()
	k, err := identity.NewKeyFromSeed(priv.Seed())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func startNode(t *testing.T, ctx context.Context, p *chaincfg.Params, miner *identity.Key) (*chainnode.Node, host.Host) {
	t.Helper()
	h, err := p2p.New(p2p.Config{Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "chain.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n, err := chainnode.New(ctx, chainnode.Config{Params: p, DB: db, Host: h, MinerKey: miner, Faucet: miner,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	done := make(chan struct{})
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		n.Run(rctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return n, h
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// TestDevnetPayments: a licensed node mines, a second node follows it,
// the faucet pays a wallet, the wallet pays another address, and both
// nodes agree on the result.
func TestDevnetPayments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := fastDevnet()
	miner := keyOf(t, chaincfg.DevnetMinerKey(0))
	a, ha := startNode(t, ctx, p, miner)
	b, hb := startNode(t, ctx, p, nil)
	if err := hb.Connect(ctx, peer.AddrInfo{ID: ha.ID(), Addrs: ha.Addrs()}); err != nil {
		t.Fatal(err)
	}
	t.Log("started")
	waitFor(t, time.Minute, "mature coinbases", func() bool { return a.Chain().Tip().Height > p.CoinbaseMaturity+2 })

	hc, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	wkey, _ := identity.GenerateKey(rand.Reader)
	w, err := client.OpenWallet(ctx, hc, peer.AddrInfo{ID: ha.ID(), Addrs: ha.Addrs()}, wkey)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("mature", a.Chain().Tip().Height)
	resp, err := w.API().Do(ctx, chainapi.Request{Op: chainapi.OpFaucet, Address: w.AddressText(), Amount: 5 * chaincfg.Units})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WaitConfirmed(ctx, *resp.TxID, 1, nil); err != nil {
		t.Fatal(err)
	}
	bal, err := w.Balance(ctx)
	if err != nil || bal.Spendable != 5*chaincfg.Units {
		t.Fatalf("balance after the faucet = %+v, %v", bal, err)
	}
	t.Log("faucet confirmed")
	xkey, _ := identity.GenerateKey(rand.Reader)
	to := types.AddressOf(xkey.Public())
	id, err := w.Send(ctx, to, 2*chaincfg.Units)
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.WaitConfirmed(ctx, id, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("payment confirmed")
	// The follower has the same chain and sees the payment.
	waitFor(t, time.Minute, "the follower to catch up", func() bool { return b.Chain().Tip().Height >= st.Height+1 })
	wb, err := client.OpenWallet(ctx, hc, peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}, xkey)
	if err != nil {
		t.Fatal(err)
	}
	xb, err := wb.Balance(ctx)
	if err != nil || xb.Spendable != 2*chaincfg.Units {
		t.Fatalf("payee's balance at the follower = %+v, %v", xb, err)
	}
	after, err := w.Balance(ctx)
	if err != nil || after.Spendable >= 3*chaincfg.Units || after.Spendable < 3*chaincfg.Units-chaincfg.Units/100 {
		t.Fatalf("payer's balance = %+v (want 3 tokens minus a small fee), %v", after, err)
	}
	hdrA, _ := a.Chain().HeaderByHeight(st.Height)
	hdrB, _ := b.Chain().HeaderByHeight(st.Height)
	if hdrA.Hash() != hdrB.Hash() {
		t.Fatal("the nodes disagree on the block with the payment")
	}
}

// TestLicensedMining: a node whose key holds no licence does not mine;
// once an administrator licences the key, its blocks appear on the chain.
func TestLicensedMining(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := fastDevnet()
	miner := keyOf(t, chaincfg.DevnetMinerKey(0))
	a, ha := startNode(t, ctx, p, miner)
	newKey, _ := identity.GenerateKey(rand.Reader)
	b, hb := startNode(t, ctx, p, newKey)
	if err := hb.Connect(ctx, peer.AddrInfo{ID: ha.ID(), Addrs: ha.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "mature coinbases", func() bool { return a.Chain().Tip().Height > p.CoinbaseMaturity+2 })

	// The administrator gets tokens for the fee, then licences the key.
	hc, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	admin := keyOf(t, chaincfg.DevnetAdminKey(0))
	w, err := client.OpenWallet(ctx, hc, peer.AddrInfo{ID: ha.ID(), Addrs: ha.Addrs()}, admin)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.API().Do(ctx, chainapi.Request{Op: chainapi.OpFaucet, Address: w.AddressText(), Amount: chaincfg.Units})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WaitConfirmed(ctx, *resp.TxID, 1, nil); err != nil {
		t.Fatal(err)
	}
	before := b.Chain().Tip().Height
	if minedBy(t, b, [32]byte(newKey.Public()), before) {
		t.Fatal("an unlicensed key mined a block")
	}
	pl := consensus.Payload{Admin: &consensus.Admin{Op: consensus.AdminAddLicence, Key: [32]byte(types.AddressOf(newKey.Public()))}}
	tx, err := w.Build(ctx, nil, pl.Encode())
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.Submit(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.WaitConfirmed(ctx, id, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "a block by the newly licensed key", func() bool {
		return minedBy(t, b, [32]byte(newKey.Public()), b.Chain().Tip().Height)
	})
	// The licence takes effect only after the block that carries it.
	if minedBy(t, a, [32]byte(newKey.Public()), st.Height) {
		t.Fatalf("the key mined a block at or before its licence at height %d", st.Height)
	}
}

// minedBy reports whether key mined any main-chain block up to height.
func minedBy(t *testing.T, n *chainnode.Node, key [32]byte, height int64) bool {
	t.Helper()
	for h := int64(1); h <= height; h++ {
		hdr, ok := n.Chain().HeaderByHeight(h)
		if !ok {
			return false
		}
		b, err := n.Chain().BlockByHash(hdr.Hash())
		if err != nil {
			t.Fatal(err)
		}
		if b.Txs[0].Coinbase.Miner == key {
			return true
		}
	}
	return false
}
