package netsync

import (
	"bufio"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/mempool"
	"github.com/iop-go/iop/internal/chain/types"
	"github.com/iop-go/iop/internal/p2p"
)

const testNet = "testnet-netsync"

var testMagic = [4]byte{'n', 's', 'y', 'n'}

// utxoSet is an in-memory confirmed UTXO set: a data fixture.
type utxoSet struct {
	mu   sync.Mutex
	outs map[types.OutPoint]types.TxOut
}

func (s *utxoSet) UTXO(op types.OutPoint) (types.TxOut, int64, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.outs[op]
	return o, 1, false, ok
}

func (s *utxoSet) TipHeight() int64 { return 1000 }

type node struct {
	t     *testing.T
	host  host.Host
	chain *memChain
	pool  *mempool.Pool
	sync  *Sync

	mu       sync.Mutex
	progress [][2]int64
}

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := p2p.New(p2p.Config{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Limits: p2p.ServerLimits()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return nil
}

func newNode(t *testing.T, utxos *utxoSet) *node {
	t.Helper()
	n := &node{t: t, host: newHost(t), chain: newMemChain()}
	pool, err := mempool.New(mempool.Config{Magic: testMagic, CoinbaseMaturity: 10, Source: utxos, MinFeeRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	n.pool = pool
	return n
}

// start runs the node's Sync.
func (n *node) start() {
	n.t.Helper()
	s, err := New(context.Background(), Config{
		Host: n.host, Network: testNet, Chain: n.chain, Mempool: n.pool, Logger: testLogger(n.t),
		Progress: func(have, want int64) {
			n.mu.Lock()
			n.progress = append(n.progress, [2]int64{have, want})
			n.mu.Unlock()
		},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.sync = s
	n.t.Cleanup(s.Close)
}

func connect(t *testing.T, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatalf("connect %s to %s: %v", a.ID(), b.ID(), err)
	}
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// holdsFor checks that cond keeps holding for d, polling every 20 ms.
func holdsFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		select {
		case <-tick.C:
		case <-deadline:
			return
		}
	}
}

// meshed waits until every node sees every other in both topics.
func meshed(t *testing.T, nodes ...*node) {
	t.Helper()
	waitFor(t, 10*time.Second, "topic peers", func() bool {
		for _, n := range nodes {
			if len(n.sync.blocks.ListPeers()) < len(nodes)-1 || len(n.sync.txs.ListPeers()) < len(nodes)-1 {
				return false
			}
		}
		return true
	})
}

func threeNodes(t *testing.T, utxos *utxoSet) (a, b, c *node) {
	a, b, c = newNode(t, utxos), newNode(t, utxos), newNode(t, utxos)
	for _, n := range []*node{a, b, c} {
		n.start()
	}
	connect(t, a.host, b.host)
	connect(t, b.host, c.host)
	connect(t, a.host, c.host)
	meshed(t, a, b, c)
	return a, b, c
}

func TestGossipBlockAndTx(t *testing.T) {
	key, err := identity.NewKeyFromSeed(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	funding := types.OutPoint{Tx: types.Hash{1}}
	utxos := &utxoSet{outs: map[types.OutPoint]types.TxOut{funding: {Value: 100_000, Address: types.AddressOf(key.Public())}}}
	a, b, c := threeNodes(t, utxos)

	blk := makeBlock(testGenesis.Hash(), 1, 1)
	if err := a.sync.PublishBlock(blk); err != nil {
		t.Fatal(err)
	}
	if !a.chain.HaveBlock(blk.Hash()) {
		t.Fatal("PublishBlock did not process the block locally")
	}
	waitFor(t, 10*time.Second, "block at B and C", func() bool {
		return b.chain.HaveBlock(blk.Hash()) && c.chain.HaveBlock(blk.Hash())
	})

	tx := &types.Tx{Version: 1, Inputs: []types.TxIn{{Prev: funding}},
		Outputs: []types.TxOut{{Value: 90_000, Address: types.Address{7}}}}
	tx.SignInputs(testMagic, func(int) *identity.Key { return key })
	if err := a.sync.PublishTx(tx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "transaction in B's and C's mempools", func() bool {
		return a.pool.Has(tx.ID()) && b.pool.Has(tx.ID()) && c.pool.Has(tx.ID())
	})

	// An invalid block is refused before it is sent.
	bad := makeBlock(blk.Hash(), 2, 9)
	bad.Header.Merkle = types.Hash{1}
	if err := a.sync.PublishBlock(bad); err == nil {
		t.Fatal("PublishBlock sent a block the chain rejects")
	}
	// So is an invalid transaction.
	bad2 := *tx
	bad2.Outputs = []types.TxOut{{Value: 1, Address: types.Address{8}}}
	if err := a.sync.PublishTx(&bad2); err == nil {
		t.Fatal("PublishTx sent a transaction the mempool rejects")
	}
}

// TestOrphanGossipTriggersSync: a block whose parent a node lacks makes
// it sync from the sender.
func TestOrphanGossipTriggersSync(t *testing.T) {
	utxos := &utxoSet{outs: map[types.OutPoint]types.TxOut{}}
	a, b := newNode(t, utxos), newNode(t, utxos)
	a.start()
	b.start()
	connect(t, a.host, b.host)
	meshed(t, a, b)
	// A mines 5 blocks silently, then publishes the 6th.
	a.chain.extend(5, 3)
	tip, h := a.chain.Tip()
	blk := makeBlock(tip, h+1, 3)
	if err := a.sync.PublishBlock(blk); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "B synced to A's tip", func() bool { return b.chain.HaveBlock(blk.Hash()) })
	if _, bh := b.chain.Tip(); bh != 6 {
		t.Fatalf("B at height %d, want 6", bh)
	}
}

func TestLateJoinerCatchesUp(t *testing.T) {
	utxos := &utxoSet{outs: map[types.OutPoint]types.TxOut{}}
	a, b := newNode(t, utxos), newNode(t, utxos)
	for _, blk := range a.chain.extend(500, 1) {
		if _, _, err := b.chain.ProcessBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	a.start()
	b.start()
	connect(t, a.host, b.host)

	c := newNode(t, utxos)
	c.start()
	start := time.Now()
	connect(t, c.host, a.host)
	connect(t, c.host, b.host)
	waitFor(t, 20*time.Second, "C at height 500", func() bool {
		_, h := c.chain.Tip()
		return h == 500
	})
	t.Logf("500 blocks in %v", time.Since(start))
	aTip, _ := a.chain.Tip()
	if cTip, _ := c.chain.Tip(); cTip != aTip {
		t.Fatal("C's tip differs from A's")
	}
	c.mu.Lock()
	prog := slices.Clone(c.progress)
	c.mu.Unlock()
	if len(prog) < 10 {
		t.Fatalf("progress reported %d times, want one per batch of blocks", len(prog))
	}
	for i := 1; i < len(prog); i++ {
		if prog[i][0] < prog[i-1][0] && prog[i][0] != 0 {
			t.Fatalf("progress went backwards: %v then %v", prog[i-1], prog[i])
		}
	}
	if last := prog[len(prog)-1]; last != [2]int64{500, 500} {
		t.Fatalf("last progress %v, want [500 500]", last)
	}

	// C restarts (a new process: a new host, the same stored chain) while
	// A and B moved on by 30 blocks: it catches up again.
	c.sync.Close()
	_ = c.host.Close()
	for _, blk := range a.chain.extend(30, 1) {
		if _, _, err := b.chain.ProcessBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	c = &node{t: t, host: newHost(t), chain: c.chain, pool: c.pool}
	c.start()
	connect(t, c.host, a.host)
	connect(t, c.host, b.host)
	waitFor(t, 20*time.Second, "restarted C at height 530", func() bool {
		_, h := c.chain.Tip()
		return h == 530
	})
	meshed(t, a, b, c)

	// A fork: B reorganises onto a longer branch from height 520; C follows.
	b.chain.mu.Lock()
	fork := b.chain.main[520]
	b.chain.mu.Unlock()
	var blocks []*types.Block
	prev := fork
	for h := int64(521); h <= 540; h++ {
		blk := makeBlock(prev, h, 2)
		blocks = append(blocks, blk)
		prev = blk.Hash()
	}
	for _, blk := range blocks {
		if _, _, err := b.chain.ProcessBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.sync.PublishBlock(blocks[len(blocks)-1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "A and C on B's fork", func() bool {
		at, _ := a.chain.Tip()
		ct, _ := c.chain.Tip()
		return at == prev && ct == prev
	})
}

// rawGossip joins the chain's topics with a plain gossipsub router.
func rawGossip(t *testing.T, h host.Host) (blocks, txs *pubsub.Topic) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if blocks, err = ps.Join(BlockTopic(testNet)); err != nil {
		t.Fatal(err)
	}
	if txs, err = ps.Join(TxTopic(testNet)); err != nil {
		t.Fatal(err)
	}
	return blocks, txs
}

func TestBadGossipPenalised(t *testing.T) {
	key, err := identity.NewKeyFromSeed(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	addr := types.AddressOf(key.Public())
	utxos := &utxoSet{outs: map[types.OutPoint]types.TxOut{
		{Tx: types.Hash{1}}: {Value: 100_000, Address: addr},
		{Tx: types.Hash{2}}: {Value: 100_000, Address: addr},
	}}
	a, b := newNode(t, utxos), newNode(t, utxos)
	a.start()
	b.start()
	connect(t, a.host, b.host)
	meshed(t, a, b)

	x := newHost(t)
	blocksX, txsX := rawGossip(t, x)
	connect(t, x, b.host)
	waitFor(t, 10*time.Second, "attacker sees B in the topics", func() bool {
		return slices.Contains(txsX.ListPeers(), b.host.ID()) && slices.Contains(blocksX.ListPeers(), b.host.ID())
	})
	ctx := context.Background()
	// An oversized transaction, malformed ones and a malformed block.
	oversized := make([]byte, types.MaxTxSize+1)
	for _, m := range [][]byte{oversized, []byte("not a transaction"), {0, 1, 2, 3, 4, 5}} {
		if err := txsX.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := blocksX.Publish(ctx, []byte("not a block")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "attacker graylisted by B", func() bool {
		s, ok := b.sync.PeerScore(x.ID())
		return ok && s < graylistThreshold
	})
	s, _ := b.sync.PeerScore(x.ID())
	t.Logf("attacker's score at B: %.0f", s)

	// Now the attacker's valid transactions no longer get through, while
	// the honest peer's do.
	sign := func(op types.OutPoint) *types.Tx {
		tx := &types.Tx{Version: 1, Inputs: []types.TxIn{{Prev: op}}, Outputs: []types.TxOut{{Value: 50_000, Address: addr}}}
		tx.SignInputs(testMagic, func(int) *identity.Key { return key })
		return tx
	}
	fromX, fromA := sign(types.OutPoint{Tx: types.Hash{1}}), sign(types.OutPoint{Tx: types.Hash{2}})
	if err := txsX.Publish(ctx, fromX.Encode()); err != nil {
		t.Fatal(err)
	}
	if err := a.sync.PublishTx(fromA); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "honest transaction at B", func() bool { return b.pool.Has(fromA.ID()) })
	holdsFor(t, time.Second, "attacker's transaction kept out of B", func() bool { return !b.pool.Has(fromX.ID()) })
}

// evilServer serves the sync protocol on h with canned answers.
func evilServer(h host.Host, st status, headers func(req []types.Hash) []byte, blocks func(req []types.Hash) [][]byte) {
	h.SetStreamHandler(ProtocolID(testNet), func(s network.Stream) {
		defer s.Close()
		typ, body, err := readFrame(s, maxRequestFrame)
		if err != nil {
			_ = s.Reset()
			return
		}
		w := bufio.NewWriter(s)
		defer w.Flush()
		switch typ {
		case msgGetStatus:
			_ = writeFrame(w, msgStatus, encodeStatus(st))
		case msgGetHeaders:
			loc, _ := decodeHashes(body, MaxLocator)
			raw := headers(loc)
			_, _ = w.Write(raw)
		case msgGetBlocks:
			hs, _ := decodeHashes(body, MaxBlocksPerRequest)
			for _, f := range blocks(hs) {
				_, _ = w.Write(f)
			}
		}
	})
}

func frame(typ byte, body []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(body)))
	return append(append(b, typ), body...)
}

func chainHeaders(prev types.Hash, n int, salt uint64) []types.Header {
	var out []types.Header
	for i := range n {
		blk := makeBlock(prev, int64(i+1), salt)
		out = append(out, blk.Header)
		prev = blk.Hash()
	}
	return out
}

func TestSyncMisbehaviourBanned(t *testing.T) {
	g := testGenesis.Hash()
	real := newMemChain()
	real.extend(20, 5)
	realHeaders := real.HeadersAfter([]types.Hash{g}, 100)
	cases := []struct {
		name    string
		kicks   int
		prefill bool // C starts with the real chain
		headers func(loc []types.Hash) []byte
		blocks  func(req []types.Hash) [][]byte
	}{
		{"headers that do not connect", 1, false, func([]types.Hash) []byte {
			return frame(msgHeaders, encodeHeaders(chainHeaders(types.Hash{0xee}, 10, 1)))
		}, nil},
		{"headers that do not chain", 1, false, func([]types.Hash) []byte {
			hs := chainHeaders(g, 10, 1)
			hs[5].Prev = types.Hash{3}
			return frame(msgHeaders, encodeHeaders(hs))
		}, nil},
		{"more than MaxHeaders headers", 1, false, func([]types.Hash) []byte {
			return frame(msgHeaders, encodeHeaders(chainHeaders(g, MaxHeaders+1, 1)))
		}, nil},
		{"oversized frame", 1, false, func([]types.Hash) []byte {
			return binary.BigEndian.AppendUint32(nil, uint32(maxFrame+1))
		}, nil},
		{"wrong response type", 1, false, func([]types.Hash) []byte {
			return frame(msgStatus, encodeStatus(status{}))
		}, nil},
		{"block other than announced", 1, false, func([]types.Hash) []byte {
			return frame(msgHeaders, encodeHeaders(chainHeaders(g, 3, 1)))
		}, func(req []types.Hash) [][]byte {
			return [][]byte{frame(msgBlock, makeBlock(g, 1, 77).Encode())}
		}},
		{"invalid block", 1, false, func([]types.Hash) []byte {
			return frame(msgHeaders, encodeHeaders(realHeaders[:1]))
		}, func(req []types.Hash) [][]byte {
			b, _ := real.BlockByHash(req[0])
			bad := *b
			bad.Txs = append(slices.Clone(b.Txs), b.Txs[0]) // header unchanged: the Merkle root no longer matches
			return [][]byte{frame(msgBlock, bad.Encode())}
		}},
		// Lesser offences take several rounds to ban.
		{"headers leading nowhere", 3, false, func([]types.Hash) []byte {
			return frame(msgHeaders, encodeHeaders(nil))
		}, nil},
		{"headers we already have", 3, true, func([]types.Hash) []byte {
			return frame(msgHeaders, encodeHeaders(realHeaders[:5]))
		}, nil},
		{"announced blocks not served", 3, false, func([]types.Hash) []byte {
			return frame(msgHeaders, encodeHeaders(chainHeaders(g, 3, 1)))
		}, func(req []types.Hash) [][]byte {
			return [][]byte{frame(msgNotFound, req[0][:])}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			utxos := &utxoSet{outs: map[types.OutPoint]types.TxOut{}}
			c := newNode(t, utxos)
			if tc.prefill {
				for _, h := range realHeaders {
					b, _ := real.BlockByHash(h.Hash())
					if _, _, err := c.chain.ProcessBlock(b); err != nil {
						t.Fatal(err)
					}
				}
			}
			_, before := c.chain.Tip()
			c.start()
			m := newHost(t)
			evilServer(m, status{Height: 10_000, Tip: types.Hash{0xaa}}, tc.headers, tc.blocks)
			connect(t, c.host, m)
			for i := range tc.kicks {
				if i > 0 {
					// Wait for the previous round to finish, then ask again.
					waitFor(t, 10*time.Second, "previous sync round", func() bool {
						return c.sync.penalty(m.ID()) >= float64(i)*pointsStrike*0.99
					})
					c.sync.kick(m.ID())
				}
			}
			waitFor(t, 10*time.Second, "C bans the peer", func() bool { return c.sync.Banned(m.ID()) })
			waitFor(t, 10*time.Second, "C drops the connection", func() bool {
				return c.host.Network().Connectedness(m.ID()) != network.Connected
			})
			if _, h := c.chain.Tip(); h != before {
				t.Fatalf("C accepted blocks from a misbehaving peer: height %d, was %d", h, before)
			}
		})
	}
}

func TestServeRateLimitAndMalformedRequests(t *testing.T) {
	utxos := &utxoSet{outs: map[types.OutPoint]types.TxOut{}}
	b := newNode(t, utxos)
	b.chain.extend(3, 1)
	b.start()
	// A low limit, so that the test does not depend on the machine's speed.
	b.sync.mu.Lock()
	b.sync.serveLimit, b.sync.serveBurst = 5, 10
	b.sync.mu.Unlock()
	x := newHost(t)
	connect(t, x, b.host)
	ctx := context.Background()
	ask := func(req []byte) (byte, []byte, error) {
		s, err := x.NewStream(ctx, b.host.ID(), ProtocolID(testNet))
		if err != nil {
			return 0, nil, err
		}
		defer s.Close()
		if _, err := s.Write(req); err != nil {
			return 0, nil, err
		}
		_ = s.CloseWrite()
		return readFrame(s, maxFrame)
	}
	// A well-formed exchange first.
	typ, body, err := ask(frame(msgGetStatus, nil))
	if err != nil || typ != msgStatus {
		t.Fatalf("status: type %#x, %v", typ, err)
	}
	st, err := decodeStatus(body)
	if tip, h := b.chain.Tip(); err != nil || st.Height != h || st.Tip != tip {
		t.Fatalf("status %+v, %v", st, err)
	}
	typ, body, err = ask(frame(msgGetHeaders, encodeHashes([]types.Hash{testGenesis.Hash()})))
	if err != nil || typ != msgHeaders {
		t.Fatalf("headers: type %#x, %v", typ, err)
	}
	if hs, err := decodeHeaders(body, MaxHeaders); err != nil || len(hs) != 3 {
		t.Fatalf("headers: %d, %v", len(hs), err)
	}

	// Hammering status requests: the server starts refusing, then bans.
	refused := 0
	for i := 0; i < 500 && !b.sync.Banned(x.ID()); i++ {
		if _, _, err := ask(frame(msgGetStatus, nil)); err != nil {
			refused++
		}
	}
	if refused == 0 || !b.sync.Banned(x.ID()) {
		t.Fatalf("%d requests refused, banned %v", refused, b.sync.Banned(x.ID()))
	}

	// A malformed request bans at once.
	y := newHost(t)
	connect(t, y, b.host)
	s, err := y.NewStream(ctx, b.host.ID(), ProtocolID(testNet))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write(frame(msgGetBlocks, encodeHashes(make([]types.Hash, MaxBlocksPerRequest+1))))
	_ = s.CloseWrite()
	if _, _, err := readFrame(s, maxFrame); err == nil {
		t.Fatal("a request for too many blocks was answered")
	}
	waitFor(t, 5*time.Second, "B bans the peer", func() bool { return b.sync.Banned(y.ID()) })
}

func TestNewConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no host":    {Network: "x", Chain: newMemChain(), Mempool: &mempool.Pool{}},
		"no chain":   {Network: "x", Host: nil},
		"no network": {},
	} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestNames(t *testing.T) {
	if BlockTopic("devnet") != "/iop/chain/devnet/blocks/1" || TxTopic("devnet") != "/iop/chain/devnet/txs/1" ||
		ProtocolID("devnet") != "/iop/chain/devnet/sync/1" {
		t.Fatal("topic or protocol names changed")
	}
}
