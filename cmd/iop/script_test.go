package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/node"
	"github.com/iop-go/iop/internal/p2p"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"iop": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI as a user meets it (testdata/script/*.txtar)
// against a real node started in the test process. $SERVER is the node's
// address.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			nodes := &scriptNodes{}
			env.Values[scriptNodesKey{}] = nodes
			env.Defer(nodes.stopAll)
			n, err := nodes.start(node.Config{
				DataDir: filepath.Join(env.WorkDir, ".node"),
				Listen:  []string{"/ip4/127.0.0.1/tcp/0"},
				HTTP:    "127.0.0.1:0",
				TURN:    "127.0.0.1:0",
				// A devnet chain with fast blocks, mined by the node with
				// the first devnet miner key (which also pays the faucet).
				ChainParams: fastDevnet(),
				MinerSeed:   chaincfg.DevnetMinerKey(0).Seed(),
			})
			if err != nil {
				return err
			}
			env.Setenv("SERVER", tcpAddr(n))
			env.Setenv("NODE_ID", n.ID().String())
			env.Setenv("IOP_PASSPHRASE", "test passphrase")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitagent":    waitAgent,
			"jsonget":      jsonGet,
			"mkpng":        mkPNG,
			"waitservice":  waitService,
			"waitrequests": waitRequests,
			"waitchain":    waitChain,
			"addedge":      addEdge,
			"startnode":    startNode,
			"stopnode":     stopNode,
		},
	})
}

// scriptNodes are the nodes a script runs: the first one (at $SERVER)
// and those startnode adds.
type scriptNodes struct {
	mu    sync.Mutex // guards the fields below
	stops []func()
	nodes []*node.Node
}

type scriptNodesKey struct{}

// start runs a node until stopped.
func (sn *scriptNodes) start(cfg node.Config) (*node.Node, error) {
	n, err := node.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	var once sync.Once
	sn.mu.Lock()
	sn.nodes = append(sn.nodes, n)
	sn.stops = append(sn.stops, func() {
		once.Do(func() {
			cancel()
			<-done
		})
	})
	sn.mu.Unlock()
	return n, nil
}

func (sn *scriptNodes) stop(i int) bool {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if i >= len(sn.stops) {
		return false
	}
	sn.stops[i]()
	return true
}

func (sn *scriptNodes) stopAll() {
	sn.mu.Lock()
	stops := slices.Clone(sn.stops)
	sn.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

func tcpAddr(n *node.Node) string {
	for _, a := range n.Addrs() {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	return ""
}

// startNode VAR starts another node (no chain) that joins the network
// through the one at $SERVER, waits until it has joined the content
// address network, and sets VAR to its address.
func startNode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: startnode VAR")
	}
	sn := ts.Value(scriptNodesKey{}).(*scriptNodes)
	sn.mu.Lock()
	i := len(sn.stops)
	sn.mu.Unlock()
	n, err := sn.start(node.Config{
		DataDir:   ts.MkAbs(fmt.Sprintf(".node%d", i)),
		Listen:    []string{"/ip4/127.0.0.1/tcp/0"},
		HTTP:      "off",
		Bootstrap: []string{ts.Getenv("SERVER")},
	})
	if err != nil {
		ts.Fatalf("start node: %v", err)
	}
	select {
	case <-n.CAN().Ready():
	case <-time.After(30 * time.Second):
		ts.Fatalf("node %d did not join the content address network within 30 s", i)
	}
	// The first node held its records alone: wait until it has given them
	// to its new peer, which a script may then rely on.
	sn.mu.Lock()
	first := sn.nodes[0]
	sn.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for first.CAN().Alone() {
		if time.Now().After(deadline) {
			ts.Fatalf("the first node did not replicate its records to node %d within 30 s", i)
		}
		<-tick.C
	}
	ts.Setenv(args[0], tcpAddr(n))
}

// stopNode stops the first node (the one at $SERVER), as its operator
// would.
func stopNode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 0 {
		ts.Fatalf("usage: stopnode")
	}
	ts.Value(scriptNodesKey{}).(*scriptNodes).stop(0)
}

// pollAgent polls the agent of home (for identity id, when not empty)
// until check reports done, failing after 30 s with what check last said.
func pollAgent(ts *testscript.TestScript, home, id, what string, check func(ctx context.Context, lc *client.LocalClient) (bool, string)) {
	lc := client.NewLocalClient(ts.MkAbs(home))
	if id != "" {
		iid, err := identity.ParseID(id)
		if err != nil {
			ts.Fatalf("identity: %v", err)
		}
		lc = lc.As(iid)
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond) // polling another process's socket
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		done, last := check(ctx, lc)
		cancel()
		if done {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			ts.Fatalf("agent of %s: %s: not within 30 s (last: %s)", home, what, last)
		}
	}
}

// waitAgent HOME STATE [ID] waits until the agent of HOME reports STATE
// (for identity ID, when it runs several).
func waitAgent(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: waitagent HOME STATE [ID]")
	}
	pollAgent(ts, args[0], strings.Join(args[2:], ""), "state "+args[1], func(ctx context.Context, lc *client.LocalClient) (bool, string) {
		st, err := lc.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		return string(st.State) == args[1], string(st.State)
	})
}

// jsonGet FILE PATH VAR sets VAR to the value at a dotted PATH of a JSON file
// (numbers index arrays).
func jsonGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonget FILE PATH VAR")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &v); err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	for _, p := range strings.Split(args[1], ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i >= len(x) {
				ts.Fatalf("%s: index %d out of range", args[1], i)
			}
			v = x[i]
		default:
			ts.Fatalf("%s: cannot descend into %T", args[1], v)
		}
	}
	ts.Setenv(args[2], fmt.Sprint(v))
}

// mkPNG FILE SIZE writes a SIZE×SIZE PNG with a gradient.
func mkPNG(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mkpng FILE SIZE")
	}
	var n int
	fmt.Sscan(args[1], &n)
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			img.Set(x, y, color.RGBA{uint8(x * 255 / n), uint8(y * 255 / n), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		ts.Fatalf("png: %v", err)
	}
	if err := os.WriteFile(ts.MkAbs(args[0]), buf.Bytes(), 0o644); err != nil {
		ts.Fatalf("%v", err)
	}
}

// fastDevnet is the devnet with a block every 100 ms.
func fastDevnet() *chaincfg.Params {
	p := chaincfg.DevNet()
	p.TargetSpacing = 100 * time.Millisecond
	// The voting period is counted in blocks: keep it a minute long so a
	// slow (race-instrumented) run can still vote within it.
	p.CCVotingPeriod = 600
	return p
}

// waitService HOME NAME [ID] waits until the agent of HOME has service
// NAME enabled.
func waitService(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: waitservice HOME NAME [ID]")
	}
	pollAgent(ts, args[0], strings.Join(args[2:], ""), "service "+args[1], func(ctx context.Context, lc *client.LocalClient) (bool, string) {
		st, err := lc.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(st.Services, args[1]), strings.Join(st.Services, ",")
	})
}

// waitRequests HOME ID N waits until N requests for private edges wait for
// the owner of identity ID.
func waitRequests(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: waitrequests HOME ID N")
	}
	n, err := strconv.Atoi(args[2])
	if err != nil {
		ts.Fatalf("N: %v", err)
	}
	pollAgent(ts, args[0], args[1], args[2]+" pending requests", func(ctx context.Context, lc *client.LocalClient) (bool, string) {
		reqs, err := lc.RelationRequests(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(reqs) == n, strconv.Itoa(len(reqs))
	})
}

// waitChain waits until the node at $SERVER has a chain of at least HEIGHT.
func waitChain(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitchain HEIGHT")
	}
	want, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		ts.Fatalf("height: %v", err)
	}
	ai, err := p2p.ParseAddr(ts.Getenv("SERVER"))
	if err != nil {
		ts.Fatalf("SERVER: %v", err)
	}
	h, err := p2p.New(p2p.Config{})
	if err != nil {
		ts.Fatalf("host: %v", err)
	}
	defer h.Close()
	api := chainapi.NewClient(h, ai)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := api.Do(ctx, chainapi.Request{Op: chainapi.OpStatus})
		cancel()
		if err == nil && resp.Status.Height >= want {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			ts.Fatalf("chain did not reach height %d within 60 s", want)
		}
	}
}

// addEdge makes an edge of TYPE from the identity of home ISSUER to the
// identity of home RECIPIENT: the issuer signs the card, the recipient
// accepts it with application ID APP, registers hosting at $SERVER if
// needed and stores the edge there; the proof is written to FILE.
func addEdge(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 5 {
		ts.Fatalf("usage: addedge ISSUER_HOME RECIPIENT_HOME TYPE APP FILE")
	}
	load := func(home string) *identity.Key {
		ks, err := identity.OpenKeystore(ts.MkAbs(home))
		if err != nil {
			ts.Fatalf("%s: %v", home, err)
		}
		e, err := ks.Resolve("")
		if err != nil {
			ts.Fatalf("%s: %v", home, err)
		}
		k, err := ks.Load(e.ID, []byte(ts.Getenv("IOP_PASSPHRASE")))
		if err != nil {
			ts.Fatalf("%s: %v", home, err)
		}
		return k
	}
	issuer, recipient := load(args[0]), load(args[1])
	now := time.Now()
	sc, err := graph.SignCard(issuer, graph.Card{Version: graph.EdgeVersion, Type: args[2], Issuer: issuer.Public(), Recipient: recipient.Public(),
		ValidFrom: now.Add(-time.Hour), ValidTo: now.Add(24 * time.Hour), Created: now, Nonce: []byte("0123456789abcdef")})
	if err != nil {
		ts.Fatalf("sign card: %v", err)
	}
	acc, err := graph.Accept(recipient, sc, []byte(args[3]))
	if err != nil {
		ts.Fatalf("accept: %v", err)
	}
	proof, err := graph.EncodeProof(&graph.EdgeProof{Card: sc, Acceptance: acc})
	if err != nil {
		ts.Fatalf("proof: %v", err)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[4]), proof, 0o600))
	ai, err := p2p.ParseAddr(ts.Getenv("SERVER"))
	ts.Check(err)
	h, err := p2p.New(p2p.Config{})
	ts.Check(err)
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, h, ai)
	ts.Check(err)
	defer c.Close()
	ts.Check(c.StartConversation(ctx, recipient))
	if err := c.CheckIn(ctx); err != nil {
		if _, err := c.RegisterHosting(ctx, "person"); err != nil {
			ts.Fatalf("register hosting: %v", err)
		}
		ts.Check(c.CheckIn(ctx))
	}
	ts.Check(c.AddRelatedIdentity(ctx, sc, acc))
}
