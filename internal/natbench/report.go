package natbench

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Goals the report judges each pair against.
const (
	// GoalFirstByteRTTs: the first application byte reaches the callee
	// within this many round trips (RTT, see PairStats.RTT) after the call
	// is accepted.
	GoalFirstByteRTTs = 3
	// GoalFinalDirect: a direct path carries the stream within this time
	// after the call is accepted.
	GoalFinalDirect = 1500 * time.Millisecond
)

// Report is the outcome of Run.
type Report struct {
	Delay   time.Duration
	Runs    int
	Size    int
	Pairs   []Pair
	Results []Result // one per call, in the order made
	Elapsed time.Duration
	// Logs are the standard error outputs (tails) of the node and the
	// callees, kept when a call failed.
	Logs map[string]string `json:",omitempty"`
}

// Quantiles are the median and the 95th percentile (nearest rank).
type Quantiles struct{ P50, P95 time.Duration }

func quantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Quantiles{rank(0.5), rank(0.95)}
}

// PairStats summarise the calls of one pair. Times are over the calls that
// succeeded.
type PairStats struct {
	Pair      Pair
	OK, Total int
	Paths     map[string]int // final paths of the successful calls
	// RTTA and RTTB are the median round trips of device A and B to the
	// node; RTT is their sum, the round trip between the devices through
	// the node (the relay path a call starts on).
	RTTA, RTTB, RTT time.Duration
	FirstByte       Quantiles // acceptance → first byte at the callee
	FirstEcho       Quantiles // DialService returned → echo of the first byte at the caller
	Final           Quantiles // acceptance → writes on the final path
	Secure          Quantiles // acceptance → end-to-end handshake done (the caller may write)
	Spanned         int       // calls whose echoed bytes crossed the migration
	RelayFirst      int       // calls whose first byte went over the relay
}

// FirstByteRTTs is the median first-byte time in RTTs between the devices
// (0 without an RTT).
func (s PairStats) FirstByteRTTs() float64 {
	if s.RTT <= 0 {
		return 0
	}
	return float64(s.FirstByte.P50) / float64(s.RTT)
}

// FirstByteNodeRTTs is the median first-byte time in round trips of the
// caller to the node (0 without an RTT).
func (s PairStats) FirstByteNodeRTTs() float64 {
	if s.RTTA <= 0 {
		return 0
	}
	return float64(s.FirstByte.P50) / float64(s.RTTA)
}

// Stats summarises the results per pair, in the order of Report.Pairs.
func (r *Report) Stats() []PairStats {
	var out []PairStats
	for _, p := range r.Pairs {
		s := PairStats{Pair: p, Paths: make(map[string]int)}
		var fb, fe, fin, sec, ra, rb []time.Duration
		for _, res := range r.Results {
			if res.Pair != p {
				continue
			}
			s.Total++
			if res.RTTA > 0 {
				ra = append(ra, res.RTTA)
			}
			if res.RTTB > 0 {
				rb = append(rb, res.RTTB)
			}
			if !res.OK {
				continue
			}
			s.OK++
			s.Paths[res.Path]++
			fb = append(fb, res.FirstByte)
			fe = append(fe, res.FirstEcho)
			fin = append(fin, res.Final)
			sec = append(sec, res.Secure-res.Accepted)
			if res.Spanned() {
				s.Spanned++
			}
			if res.FirstPath == relayPath {
				s.RelayFirst++
			}
		}
		s.FirstByte, s.FirstEcho, s.Final, s.Secure = quantiles(fb), quantiles(fe), quantiles(fin), quantiles(sec)
		s.RTTA, s.RTTB = quantiles(ra).P50, quantiles(rb).P50
		s.RTT = s.RTTA + s.RTTB
		out = append(out, s)
	}
	return out
}

func msq(q Quantiles) string {
	return fmt.Sprintf("%.0f / %.0f", ms(q.P50), ms(q.P95))
}

func paths(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		name := k
		if k == relayPath {
			name = "relay"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

// Markdown renders the report as a Markdown table with its legend.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "NAT lab, %v one-way delay per access link, %d run(s) per pair, %d KiB echoed per call, %v in all.\n\n",
		r.Delay, r.Runs, r.Size>>10, r.Elapsed.Round(time.Second))
	b.WriteString("| A → B | ok | final path | RTT A / B ms | secure p50 ms | first byte p50 / p95 ms | first byte p50 in RTT (A↔B / A↔node) | final path p50 / p95 ms | first echo p50 / p95 ms | across migration | goals |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Stats() {
		var goals []string
		if s.OK > 0 && s.RTT > 0 {
			goals = append(goals, mark(float64(s.FirstByte.P95) <= GoalFirstByteRTTs*float64(s.RTT))+" 1st byte p95 ≤ 3 RTT")
		}
		if s.Paths["direct"] > 0 {
			goals = append(goals, mark(s.Final.P95 <= GoalFinalDirect)+" direct p95 ≤ 1.5 s")
		}
		rtts := "–"
		if s.OK > 0 {
			rtts = fmt.Sprintf("%.1f / %.1f", s.FirstByteRTTs(), s.FirstByteNodeRTTs())
		}
		fmt.Fprintf(&b, "| %s | %d/%d | %s | %.1f / %.1f | %.0f | %s | %s | %s | %s | %d/%d | %s |\n",
			s.Pair, s.OK, s.Total, paths(s.Paths), ms(s.RTTA), ms(s.RTTB), ms(s.Secure.P50), msq(s.FirstByte), rtts, msq(s.Final), msq(s.FirstEcho), s.Spanned, s.OK, strings.Join(goals, ", "))
	}
	b.WriteString(`
- RTT: each device's median STUN round trip to the node; their sum is RTT A↔B, the round trip between the devices over the relay, which the goal (first byte ≤ 3 RTT) uses.
- secure: from the caller learning that the call was accepted to the end-to-end handshake over the relay completing (DialTiming: joining the call's relay, then the handshake).
- first byte: from the caller learning that the call was accepted to the callee reading the first application byte (all processes share this machine's clock).
- final path: from the acceptance until the caller writes on its final path (direct or TURN), as WaitPath reports it.
- first echo: from DialService returning to the caller reading the echo of its first bytes back.
- across migration: calls whose echoed bytes were written partly on the relay and partly on the final path, and all came back intact.
`)
	var failed []string
	for _, res := range r.Results {
		if !res.OK {
			failed = append(failed, fmt.Sprintf("- %s run %d: %s", res.Pair, res.Run, res.Err))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed calls:\n" + strings.Join(failed, "\n") + "\n")
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}
