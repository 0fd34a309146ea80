// Package devnet runs a local IoP network: several full nodes in one
// process on loopback, each with its own data directory under one root and
// placed at a different world city. Running it again on the same root
// brings back the same nodes (keys, addresses, data).
package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/node"
	"github.com/iop-go/iop/internal/procstat"
)

// City is a place to put a node.
type City struct {
	Name     string
	Lat, Lon float64
}

// Cities are where devnet nodes go, in order.
var Cities = []City{
	{"London", 51.5074, -0.1278}, {"Paris", 48.8566, 2.3522}, {"New York", 40.7128, -74.0060},
	{"Tokyo", 35.6762, 139.6503}, {"Sao Paulo", -23.5505, -46.6333}, {"Sydney", -33.8688, 151.2093},
	{"Cape Town", -33.9249, 18.4241}, {"Mumbai", 19.0760, 72.8777}, {"Berlin", 52.5200, 13.4050},
	{"Madrid", 40.4168, -3.7038}, {"Chicago", 41.8781, -87.6298}, {"Mexico City", 19.4326, -99.1332},
	{"Lagos", 6.5244, 3.3792}, {"Cairo", 30.0444, 31.2357}, {"Moscow", 55.7558, 37.6173},
	{"Singapore", 1.3521, 103.8198}, {"Seoul", 37.5665, 126.9780}, {"Buenos Aires", -34.6037, -58.3816},
	{"Toronto", 43.6532, -79.3832}, {"Nairobi", -1.2921, 36.8219}, {"Istanbul", 41.0082, 28.9784},
	{"Jakarta", -6.2088, 106.8456}, {"Los Angeles", 34.0522, -118.2437}, {"Auckland", -36.8485, 174.7633},
}

// Config configures a devnet.
type Config struct {
	Dir    string // root directory; required
	Nodes  int    // number of nodes; default 5 on first start, then what Dir holds
	Places []City // where new nodes go; default Cities
	Logger *slog.Logger
}

// nodeFile is one node's persisted devnet settings.
type nodeFile struct {
	Name   string   `json:"name"`
	Listen []string `json:"listen"`
	HTTP   string   `json:"http"`
	TURN   string   `json:"turn"`
	Lat    float64  `json:"lat"`
	Lon    float64  `json:"lon"`
}

// NodeInfo describes a running node in devnet.json.
type NodeInfo struct {
	Name     string      `json:"name"`
	ID       identity.ID `json:"id"`
	PeerID   string      `json:"peer_id"`
	Addrs    []string    `json:"addrs"`
	Addr     string      `json:"addr"` // the TCP address, the one to pass as --server
	HTTP     string      `json:"http"`
	Location string      `json:"location"`
	DataDir  string      `json:"data_dir"`
}

// Info is the content of devnet.json.
type Info struct {
	Dir   string     `json:"dir"`
	Nodes []NodeInfo `json:"nodes"`
}

// Devnet is a running local network.
type Devnet struct {
	cfg   Config
	nodes []*node.Node
	info  Info

	mu    sync.Mutex // guards stops
	stops []func()   // per node, while Run runs
}

// freePort finds a free TCP (and, for QUIC, UDP) port on loopback.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port pair found")
}

// Start creates or reopens the devnet in cfg.Dir and starts its nodes.
func Start(cfg Config) (*Devnet, error) {
	if cfg.Dir == "" {
		return nil, errors.New("devnet: a directory is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = abs
	existing := 0
	for {
		if _, err := os.Stat(filepath.Join(cfg.Dir, nodeName(existing), "devnet-node.json")); err != nil {
			break
		}
		existing++
	}
	n := cfg.Nodes
	if n == 0 {
		n = existing
		if n == 0 {
			n = 5
		}
	}
	if n > len(Cities)*4 {
		return nil, fmt.Errorf("devnet: %d nodes is too many (at most %d)", n, len(Cities)*4)
	}
	d := &Devnet{cfg: cfg, info: Info{Dir: cfg.Dir}}
	for i := range n {
		nd, ni, err := d.startNode(i)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.nodes = append(d.nodes, nd)
		d.info.Nodes = append(d.info.Nodes, ni)
		cfg.Logger.Info("node started", "node", ni.Name, "city", ni.Location, "addr", ni.Addr)
	}
	data, err := json.MarshalIndent(d.info, "", "  ")
	if err != nil {
		d.Close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "devnet.json"), append(data, '\n'), 0o644); err != nil {
		d.Close()
		return nil, fmt.Errorf("devnet: write devnet.json: %w", err)
	}
	return d, nil
}

func nodeName(i int) string { return fmt.Sprintf("node%02d", i) }

func (d *Devnet) startNode(i int) (*node.Node, NodeInfo, error) {
	dir := filepath.Join(d.cfg.Dir, nodeName(i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, NodeInfo{}, err
	}
	path := filepath.Join(dir, "devnet-node.json")
	var nf nodeFile
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &nf); err != nil {
			return nil, NodeInfo{}, fmt.Errorf("devnet: %s: %w", path, err)
		}
	} else {
		port, err := freePort()
		if err != nil {
			return nil, NodeInfo{}, err
		}
		hport, err := freePort()
		if err != nil {
			return nil, NodeInfo{}, err
		}
		places := d.cfg.Places
		if len(places) == 0 {
			places = Cities
		}
		c := places[i%len(places)]
		// Nodes beyond the list go near a place already used.
		lat, lon := c.Lat+float64(i/len(places))*0.5, c.Lon+float64(i/len(places))*0.5
		nf = nodeFile{
			Name:   fmt.Sprintf("%s (%s)", nodeName(i), c.Name),
			Listen: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)},
			HTTP:   fmt.Sprintf("127.0.0.1:%d", hport),
			TURN:   fmt.Sprintf("127.0.0.1:%d", hport), // UDP; the HTTP API has the TCP port
			Lat:    lat, Lon: lon,
		}
		data, _ := json.MarshalIndent(nf, "", "  ")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, NodeInfo{}, err
		}
	}
	loc, err := graph.LocationFromDegrees(nf.Lat, nf.Lon)
	if err != nil {
		return nil, NodeInfo{}, err
	}
	// Every node joins through the first one, which learns of the others
	// when they connect.
	var boot []string
	if i > 0 {
		boot = []string{d.info.Nodes[0].Addr}
	}
	// Every devnet node runs the devnet chain; the first mines with the
	// first devnet miner key, whose rewards also fund the faucet.
	var minerSeed []byte
	if i == 0 {
		minerSeed = chaincfg.DevnetMinerKey(0).Seed()
	}
	nd, err := node.New(node.Config{
		DataDir: dir, Listen: nf.Listen, HTTP: nf.HTTP, TURN: nf.TURN, Location: loc, Name: nf.Name, Bootstrap: boot,
		Chain: "devnet", MinerSeed: minerSeed,
		Logger: d.cfg.Logger.With("node", nodeName(i)),
	})
	if err != nil {
		return nil, NodeInfo{}, fmt.Errorf("devnet: %s: %w", nodeName(i), err)
	}
	ni := NodeInfo{
		Name: nf.Name, ID: nd.ID(), PeerID: nd.Host().ID().String(), Addrs: nd.Addrs(),
		HTTP: nd.HTTPURL(), Location: loc.String(), DataDir: dir,
	}
	for _, a := range ni.Addrs {
		if strings.Contains(a, "/tcp/") {
			ni.Addr = a
			break
		}
	}
	return nd, ni, nil
}

// Info describes the running nodes.
func (d *Devnet) Info() Info { return d.info }

// Nodes are the running nodes.
func (d *Devnet) Nodes() []*node.Node { return d.nodes }

// Run serves every node until ctx ends (or, for one node, until StopNode).
func (d *Devnet) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	d.mu.Lock()
	d.stops = make([]func(), len(d.nodes))
	for i, n := range d.nodes {
		nctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		d.stops[i] = func() {
			cancel()
			<-done
		}
		g.Go(func() error {
			defer close(done)
			defer cancel()
			return n.Run(nctx)
		})
	}
	d.mu.Unlock()
	return g.Wait()
}

// StopNode stops node i of a running devnet and waits until it has, as a
// node operator stopping one machine; the others go on. It reports false
// when the devnet is not running.
func (d *Devnet) StopNode(i int) bool {
	d.mu.Lock()
	if i < 0 || i >= len(d.stops) {
		d.mu.Unlock()
		return false
	}
	stop := d.stops[i]
	d.mu.Unlock()
	stop()
	return true
}

// Close stops nodes that were started but never run.
func (d *Devnet) Close() {
	for _, n := range d.nodes {
		n.Close()
	}
}

// IdleReport is what an idle devnet costs.
type IdleReport struct {
	Nodes           int     `json:"nodes"`
	RSSMiB          float64 `json:"rss_mib"`
	RSSMiBPerNode   float64 `json:"rss_mib_per_node"`
	CPUPercent      float64 `json:"cpu_percent_of_one_core"`
	CPUPerNode      float64 `json:"cpu_percent_per_node"`
	Goroutines      int     `json:"goroutines"`
	WindowSec       float64 `json:"window_s"`
	SettleSec       float64 `json:"settle_s"`
	DHTPeersPerNode float64 `json:"dht_peers_per_node"`
}

// MeasureIdle starts a devnet of n nodes in a temporary directory, lets it
// settle, and measures the process's memory and CPU over window. All nodes
// share this process, so per-node figures are totals divided by n.
func MeasureIdle(ctx context.Context, n int, settle, window time.Duration, progress io.Writer) (*IdleReport, error) {
	dir, err := os.MkdirTemp("", "iop-idle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	d, err := Start(Config{Dir: dir, Nodes: n})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	defer func() {
		cancel()
		<-done
	}()
	fmt.Fprintf(progress, "devnet of %d nodes started; settling for %s\n", n, settle)
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	runtime.GC()
	rss, _ := procstat.RSS()
	c0, _ := procstat.CPUTime()
	t0 := time.Now()
	fmt.Fprintf(progress, "measuring CPU for %s\n", window)
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c1, _ := procstat.CPUTime()
	cpu := 100 * (c1 - c0).Seconds() / time.Since(t0).Seconds()
	peers := 0
	for _, nd := range d.Nodes() {
		peers += nd.Status().DHTPeers
	}
	return &IdleReport{
		Nodes: n, RSSMiB: float64(rss) / (1 << 20), RSSMiBPerNode: float64(rss) / (1 << 20) / float64(n),
		CPUPercent: cpu, CPUPerNode: cpu / float64(n), Goroutines: runtime.NumGoroutine(),
		WindowSec: window.Seconds(), SettleSec: settle.Seconds(), DHTPeersPerNode: float64(peers) / float64(n),
	}, nil
}
