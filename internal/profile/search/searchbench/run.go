package searchbench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iop-go/iop/internal/profile/search"
)

// Config configures Run. Zero fields take the defaults.
type Config struct {
	N       int    // profiles, default 2,200,000
	Queries int    // queries per kind, default 200
	Cap     int    // result cap of every query, default 10,000
	Seed    uint64 // data and query seed, default 1
}

func (c *Config) setDefaults() {
	if c.N <= 0 {
		c.N = 2_200_000
	}
	if c.Queries <= 0 {
		c.Queries = 200
	}
	if c.Cap <= 0 {
		c.Cap = search.MaxResults
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Report is the outcome of Run.
type Report struct {
	Config      Config
	GoVersion   string
	GOMAXPROCS  int
	GenerateSec float64 `json:"generate_s"`
	BuildSec    float64 `json:"build_s"`
	DataHeapMB  float64 `json:"data_heap_mb"`  // heap of the []Profile
	IndexHeapMB float64 `json:"index_heap_mb"` // heap the index adds while the []Profile is alive
	// IndexAloneMB is the heap the index retains once the []Profile (and the
	// scan) are dropped: it then owns the extra-data strings it shared.
	IndexAloneMB float64 `json:"index_alone_mb"`
	// ScanHeapMB is the heap of the scan's pre-lowered copy of the data (the
	// denominator the scratch baseline used).
	ScanHeapMB float64 `json:"scan_heap_mb"`
	Kinds      []KindReport
	Mismatches int
}

// KindReport is the measurement of one kind of query. Durations are in ms.
type KindReport struct {
	Kind        Kind
	Desc        string
	Queries     int
	ResultsP50  int
	ResultsMax  int
	Capped      int // queries where either side hit the cap
	TimedOut    int // index queries that ran out of regex budget
	ScanP50     float64
	ScanP99     float64
	IndexP50    float64
	IndexP99    float64
	IndexMax    float64
	SpeedupP50  float64
	SpeedupP99  float64
	Mismatches  int
	FirstFailed string `json:",omitempty"`
}

// Run generates data, builds the index and the scan, runs cfg.Queries queries
// of every kind on both, checks the results and measures them. Progress lines
// go to progress.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg.setDefaults()
	rep := &Report{Config: cfg, GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	logf := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }

	heap0 := heapMB()
	logf("generating %d profiles (seed %d)", cfg.N, cfg.Seed)
	t := time.Now()
	data := Generate(cfg.N, cfg.Seed)
	rep.GenerateSec = time.Since(t).Seconds()
	heap1 := heapMB()
	rep.DataHeapMB = heap1 - heap0
	logf("generated in %.1f s, data heap %.0f MB", rep.GenerateSec, rep.DataHeapMB)

	logf("building the index")
	t = time.Now()
	ix := search.Build(data.Profiles)
	rep.BuildSec = time.Since(t).Seconds()
	defer ix.Close()
	heap2 := heapMB()
	rep.IndexHeapMB = heap2 - heap1
	logf("built in %.1f s, index heap %.0f MB (%.2f× data)", rep.BuildSec, rep.IndexHeapMB, rep.IndexHeapMB/rep.DataHeapMB)

	scan := NewScan(data.Profiles)
	rep.ScanHeapMB = heapMB() - heap2
	logf("scan data heap %.0f MB", rep.ScanHeapMB)
	qg := NewQueryGen(data, cfg.Seed+1, cfg.Cap)
	for _, k := range Kinds {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("searchbench: %w", err)
		}
		kr, err := runKind(ctx, k, cfg, qg, ix, scan)
		if err != nil {
			return nil, err
		}
		rep.Mismatches += kr.Mismatches
		rep.Kinds = append(rep.Kinds, kr)
		logf("(%s) %-22s scan p50 %7.2f ms  index p50 %6.3f ms p99 %6.3f ms  speed-up p50 %6.0f×  mismatches %d",
			k, kr.Desc, kr.ScanP50, kr.IndexP50, kr.IndexP99, kr.SpeedupP50, kr.Mismatches)
	}

	data, scan, qg = nil, nil, nil
	rep.IndexAloneMB = heapMB() - heap0
	runtime.KeepAlive(ix)
	return rep, nil
}

func runKind(ctx context.Context, k Kind, cfg Config, qg *QueryGen, ix *search.Index, scan *Scan) (KindReport, error) {
	kr := KindReport{Kind: k, Desc: k.Describe(), Queries: cfg.Queries}
	var scanD, idxD []float64
	var results []int
	for range cfg.Queries {
		q := qg.Next(k)
		t := time.Now()
		rows := scan.Search(&q.Q, cfg.Cap)
		scanD = append(scanD, ms(time.Since(t)))
		t = time.Now()
		res, err := ix.Search(ctx, q.Q)
		idxD = append(idxD, ms(time.Since(t)))
		if err != nil {
			return kr, fmt.Errorf("searchbench: kind %s query %q: %w", k, q.Desc, err)
		}
		results = append(results, max(len(rows), res.Total))
		if res.TimedOut {
			kr.TimedOut++
		}
		if len(rows) >= cfg.Cap || res.Total >= cfg.Cap {
			kr.Capped++
		}
		if msg := Check(scan, &q.Q, rows, res, cfg.Cap); msg != "" {
			kr.Mismatches++
			if kr.FirstFailed == "" {
				kr.FirstFailed = q.Desc + ": " + msg
			}
		}
	}
	slices.Sort(scanD)
	slices.Sort(idxD)
	slices.Sort(results)
	kr.ResultsP50, kr.ResultsMax = results[len(results)/2], results[len(results)-1]
	kr.ScanP50, kr.ScanP99 = pct(scanD, 50), pct(scanD, 99)
	kr.IndexP50, kr.IndexP99, kr.IndexMax = pct(idxD, 50), pct(idxD, 99), idxD[len(idxD)-1]
	kr.SpeedupP50 = kr.ScanP50 / kr.IndexP50
	kr.SpeedupP99 = kr.ScanP99 / kr.IndexP99
	return kr, nil
}

// Check compares an index result with the scan's rows for the same query and
// returns "" if they agree: the same sets when neither side was capped or
// timed out; otherwise both return min(cap, total) (unless the index timed out)
// and every index result matches the query, once.
func Check(scan *Scan, q *search.Query, rows []int32, res search.Result, cap int) string {
	byID := make(map[[32]byte]int32, len(rows))
	for _, i := range rows {
		byID[scan.ID(i)] = i
	}
	if res.Total != len(res.IDs) {
		return fmt.Sprintf("Total %d != len(IDs) %d", res.Total, len(res.IDs))
	}
	seen := make(map[[32]byte]bool, len(res.IDs))
	for _, id := range res.IDs {
		if seen[id] {
			return fmt.Sprintf("duplicate %x", id[:4])
		}
		seen[id] = true
	}
	capped := len(rows) >= cap || res.Total >= cap
	if !capped && !res.TimedOut {
		if len(rows) != res.Total {
			return fmt.Sprintf("scan %d results, index %d", len(rows), res.Total)
		}
		for _, id := range res.IDs {
			if _, ok := byID[id]; !ok {
				return fmt.Sprintf("index result %x not in scan", id[:4])
			}
		}
		return ""
	}
	if !res.TimedOut && len(rows) != res.Total {
		return fmt.Sprintf("capped: scan %d results, index %d", len(rows), res.Total)
	}
	// Every index result must satisfy the predicate.
	for _, id := range res.IDs {
		if _, ok := byID[id]; ok {
			continue
		}
		i, ok := scan.Find(id)
		if !ok {
			return fmt.Sprintf("index result %x is no profile", id[:4])
		}
		if !scan.Matches(q, i) {
			return fmt.Sprintf("index result %x does not match", id[:4])
		}
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// pct returns the nearest-rank p-th percentile of sorted xs.
func pct(xs []float64, p int) float64 {
	i := (len(xs)*p + 99) / 100
	return xs[max(0, min(i, len(xs))-1)]
}

func heapMB() float64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// WriteTable writes the report as a readable table.
func (r *Report) WriteTable(w io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "search benchmark: N=%d, %d queries per kind, cap %d, seed %d, %s, GOMAXPROCS=%d\n",
		r.Config.N, r.Config.Queries, r.Config.Cap, r.Config.Seed, r.GoVersion, r.GOMAXPROCS)
	fmt.Fprintf(&sb, "generate %.1f s; build %.1f s; mismatches %d\n", r.GenerateSec, r.BuildSec, r.Mismatches)
	fmt.Fprintf(&sb, "heap (MiB): []Profile data %.0f; index added %.0f (%.2f× data); index alone, data dropped %.0f (%.2f× data); scan's pre-lowered rows %.0f (index added = %.2f× of that)\n\n",
		r.DataHeapMB, r.IndexHeapMB, r.IndexHeapMB/r.DataHeapMB, r.IndexAloneMB, r.IndexAloneMB/r.DataHeapMB, r.ScanHeapMB, r.IndexHeapMB/r.ScanHeapMB)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\t\tresults p50/max\tcapped\ttimeouts\tscan p50\tscan p99\tindex p50\tindex p99\tindex max\tspeed-up p50\tspeed-up p99\tmismatches\t")
	for _, k := range r.Kinds {
		fmt.Fprintf(tw, "(%s)\t%s\t%d/%d\t%d\t%d\t%.2f\t%.2f\t%.3f\t%.3f\t%.3f\t%.0f×\t%.0f×\t%d\t\n",
			k.Kind, k.Desc, k.ResultsP50, k.ResultsMax, k.Capped, k.TimedOut, k.ScanP50, k.ScanP99,
			k.IndexP50, k.IndexP99, k.IndexMax, k.SpeedupP50, k.SpeedupP99, k.Mismatches)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sb.WriteString("(times in ms; p99 is the nearest-rank 99th percentile)\n")
	for _, k := range r.Kinds {
		if k.FirstFailed != "" {
			fmt.Fprintf(&sb, "(%s) first mismatch: %s\n", k.Kind, k.FirstFailed)
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
