package search

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// MaxResults is the largest result cap a query may ask for (IoP's
	// max_total_record_count without thumbnails).
	MaxResults = 10000
	// DefaultRegexBudget is the regex time budget of a query that sets none
	// (IoP's 1,000 ms).
	DefaultRegexBudget = time.Second
)

// ErrInvalidQuery is wrapped by the errors Search returns for a malformed Query.
var ErrInvalidQuery = errors.New("invalid query")

// Query is a profile search. A profile matches if it passes every filter.
type Query struct {
	Type Wildcard // zero value: any type
	Name Wildcard // zero value: any name

	// Lat and Lon (microdegrees) and Radius (metres) select the profiles whose
	// haversine distance from the centre is at most Radius. Lat == NoLocation
	// disables the filter (as in the IoP protocol; note that the zero Query
	// therefore searches around 0°,0°). Profiles without a location never
	// match a location filter.
	Lat, Lon int32
	Radius   uint32

	Extra       *regexp.Regexp // matched against the whole extra data with MatchString; nil: no filter
	HostedOnly  bool           // only profiles with Source == 0
	Max         int            // result cap, 1..MaxResults; 0 means MaxResults
	RegexBudget time.Duration  // regex time allowed to this query; 0 means DefaultRegexBudget
}

// Result is the outcome of a search.
type Result struct {
	IDs      [][32]byte // matching profiles, in index order, no duplicates
	Sources  []uint32   // Sources[i] is the Source of IDs[i]
	Total    int        // len(IDs); at most the query's Max
	TimedOut bool       // the regex budget ran out; IDs holds what was found until then
}

// Search returns the profiles that match q, at most q.Max of them. Without a
// cap or timeout the result is exactly the set of matching profiles of one
// consistent snapshot of the index; with a cap it is any q.Max of them.
func (ix *Index) Search(ctx context.Context, q Query) (Result, error) {
	if q.Max < 0 || q.Max > MaxResults {
		return Result{}, fmt.Errorf("search: max %d not in 1..%d: %w", q.Max, MaxResults, ErrInvalidQuery)
	}
	if q.Lat != NoLocation && !validLocation(q.Lat, q.Lon) {
		return Result{}, fmt.Errorf("search: location %d,%d out of range: %w", q.Lat, q.Lon, ErrInvalidQuery)
	}
	if q.Max == 0 {
		q.Max = MaxResults
	}
	if q.RegexBudget <= 0 {
		q.RegexBudget = DefaultRegexBudget
	}
	snap := ix.snap.Load()
	r := &run{ctx: ctx, q: &q, snap: snap, s: snap.base, max: q.Max}
	bufp := ordPool.Get().(*[]uint32)
	r.ords = (*bufp)[:0]
	r.prepare()
	if !r.stop {
		r.searchBase()
	}
	if !r.stop {
		r.searchDelta()
	}
	n := len(r.ords) + len(r.deltaIDs)
	res := Result{IDs: make([][32]byte, 0, n), Sources: make([]uint32, 0, n), TimedOut: r.timedOut}
	for _, o := range r.ords {
		res.IDs = append(res.IDs, r.s.ids[o])
		res.Sources = append(res.Sources, r.s.clsSrc[r.s.cls.at(o)])
	}
	res.IDs = append(res.IDs, r.deltaIDs...)
	res.Sources = append(res.Sources, r.deltaSrcs...)
	res.Total = len(res.IDs)
	if cap(r.ords) <= 4*MaxResults {
		*bufp = r.ords[:0]
		ordPool.Put(bufp)
	}
	if r.err != nil {
		return res, fmt.Errorf("search: %w", r.err)
	}
	return res, nil
}

// ordPool recycles the ordinal buffers of searches.
var ordPool = sync.Pool{New: func() any { b := make([]uint32, 0, 1024); return &b }}

// run is the state of one search.
type run struct {
	ctx  context.Context
	q    *Query
	snap *snapshot
	s    *segment
	max  int

	ords      []uint32   // matching base ordinals
	deltaIDs  [][32]byte // matching delta profiles
	deltaSrcs []uint32   // their sources
	stop      bool
	err       error
	visits    int

	checkDead bool   // the base has tombstones
	limit     uint32 // dead limit of snap in s

	clsOK   []bool   // by class code, when a type or hosted-only filter is set
	typeAll bool     // no type filter
	typeIDs []uint32 // type codes that match

	nameByID     bool   // name filter as a name id range [nameLo,nameHi) (exact, prefix)
	nameLo       uint32 //
	nameHi       uint32 //
	skipName     bool   // the driver already guarantees the name
	skipLon      bool   // the driver already guarantees the longitude box
	geo          bool
	c            center
	radius       float64
	inner        float64 // microdegrees: a point with |Δlat| + cos(lat)·|Δlon| below this is inside
	box          bbox
	lit          string // required literal of the regex
	reStarted    bool
	reStart      time.Time
	reCount      int
	reNext       int
	reStride     int
	reLastCount  int
	reLastElapse time.Duration
	timedOut     bool
}

func (r *run) prepare() {
	q, s := r.q, r.s
	r.limit = s.deadLimit(r.snap.seq)
	r.checkDead = r.snap.baseDead > 0
	r.typeAll = q.Type.IsAll()
	if !r.typeAll {
		typeOK := make([]bool, len(s.types))
		for t, v := range s.types {
			if q.Type.MatchLower(v) {
				typeOK[t] = true
				r.typeIDs = append(r.typeIDs, uint32(t))
			}
		}
		r.clsOK = make([]bool, len(s.clsType))
		for c, t := range s.clsType {
			r.clsOK[c] = typeOK[t]
		}
	}
	if q.HostedOnly {
		if r.clsOK == nil {
			r.clsOK = make([]bool, len(s.clsType))
			for c := range r.clsOK {
				r.clsOK[c] = true
			}
		}
		for c, src := range s.clsSrc {
			r.clsOK[c] = r.clsOK[c] && src == 0
		}
	}
	if q.Lat != NoLocation {
		r.geo = true
		r.c = newCenter(q.Lat, q.Lon)
		r.radius = float64(q.Radius)
		r.box = circleBox(q.Lat, q.Lon, q.Radius)
		// The path along the centre's parallel, then along the meridian, is
		// no shorter than the great circle: R·(cos φ·|Δλ| + |Δφ|) >= distance.
		// One metre of margin covers the rounding of both computations.
		r.inner = (float64(q.Radius) - 1) / EarthRadius * 180 / math.Pi * 1e6
	}
	if q.Extra != nil {
		r.lit = requiredLiteral(q.Extra)
		r.reStride, r.reNext = 1, 1
	}
}

// tick counts a visited candidate and checks the context now and then.
func (r *run) tick() {
	r.visits++
	if r.visits&4095 == 0 {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			r.stop = true
		}
	}
}

func (r *run) full() bool { return len(r.ords)+len(r.deltaIDs) >= r.max }

// visit checks base ordinal o against the filters the driver does not
// guarantee, cheapest first, and adds it if it matches. It returns false when
// the search must stop.
func (r *run) visit(o uint32) bool {
	r.tick()
	s := r.s
	if r.checkDead && s.deadAt(o, r.limit) {
		return !r.stop
	}
	if r.clsOK != nil && !r.clsOK[s.cls.at(o)] {
		return !r.stop
	}
	if r.nameByID && !r.skipName {
		if id := s.name[o]; id < r.nameLo || id >= r.nameHi {
			return !r.stop
		}
	}
	if r.geo && !r.geoOK(o) {
		return !r.stop
	}
	if !r.nameByID && !r.skipName && !r.q.Name.IsAll() && !r.q.Name.MatchLower(s.names.at(s.name[o])) {
		return !r.stop
	}
	if r.q.Extra != nil && !r.regexOK(s.extra[o]) {
		return !r.stop
	}
	r.ords = append(r.ords, o)
	if r.full() {
		r.stop = true
	}
	return !r.stop
}

func (r *run) geoOK(o uint32) bool {
	s := r.s
	if int(o) >= s.nLoc {
		return false
	}
	lat, lon := s.lat[o], s.lon[o]
	if lat < r.box.latLo || lat > r.box.latHi {
		return false
	}
	if !r.skipLon && !r.lonOK(lon) {
		return false
	}
	return r.inCircle(lat, lon)
}

// inCircle is the exact haversine check, with a cheap shortcut for points
// well inside.
func (r *run) inCircle(lat, lon int32) bool {
	dλ := math.Abs(float64(lon) - float64(r.q.Lon))
	if dλ > 180e6 {
		dλ = 360e6 - dλ
	}
	if math.Abs(float64(lat)-float64(r.q.Lat))+r.c.cosLat*dλ < r.inner {
		return true
	}
	return r.c.dist(lat, lon) <= r.radius
}

func (r *run) lonOK(lon int32) bool {
	for _, lr := range r.box.lons {
		if lon >= lr.lo && lon <= lr.hi {
			return true
		}
	}
	return false
}

// regexOK evaluates the extra-data regex and keeps its time budget. The budget
// is charged with the wall time since the query's first regex check (literal
// prefilter included), read every few checks: up to every 256th while checks
// are fast, every one once they take 2 µs or more.
func (r *run) regexOK(extra string) bool {
	if !r.reStarted {
		r.reStarted = true
		r.reStart = time.Now()
	}
	ok := (r.lit == "" || strings.Contains(extra, r.lit)) && r.q.Extra.MatchString(extra)
	r.reCount++
	if r.reCount >= r.reNext {
		el := time.Since(r.reStart)
		if el > r.q.RegexBudget {
			r.timedOut = true
			r.stop = true
		}
		if per := (el - r.reLastElapse) / time.Duration(r.reCount-r.reLastCount); per < 2*time.Microsecond {
			r.reStride = min(2*r.reStride, 256)
		} else {
			r.reStride = 1
		}
		r.reLastCount, r.reLastElapse = r.reCount, el
		r.reNext = r.reCount + r.reStride
	}
	return ok
}

// Drivers: the source of candidate ordinals for the base.
const (
	driveAll = iota
	driveType
	driveGeo
	driveTypeGeo
	driveName
)

type span struct{ a, b int }

func (r *run) searchBase() {
	s, q := r.s, r.q
	if s.len() == 0 {
		return
	}
	if !r.typeAll && len(r.typeIDs) == 0 || r.clsOK != nil && !slices.Contains(r.clsOK, true) {
		return // no type or class of the base can match
	}
	best, est := driveAll, s.len()

	typeEst := 0
	if !r.typeAll {
		for _, t := range r.typeIDs {
			typeEst += int(s.typeOff[t+1] - s.typeOff[t])
		}
		if typeEst < est {
			best, est = driveType, typeEst
		}
	}

	var geoSpans []span
	if r.geo {
		geoEst := 0
		for bd := bandOf(r.box.latLo); bd <= bandOf(r.box.latHi); bd++ {
			for _, lr := range r.box.lons {
				if a, b := s.bandRange(bd, lr.lo, lr.hi); b > a {
					geoSpans = append(geoSpans, span{a, b})
					geoEst += b - a
				}
			}
		}
		if geoEst <= est {
			best, est = driveGeo, geoEst
		}
	}

	var tgSpans []span
	if r.geo && !r.typeAll && len(r.typeIDs) <= 8 && est > 1024 {
		tgEst := 0
		for _, t := range r.typeIDs {
			off := int(s.typeOff[t])
			list := s.typePost[off:s.typeOff[t+1]]
			for _, g := range geoSpans {
				i, _ := slices.BinarySearch(list, uint32(g.a))
				list = list[i:]
				off += i
				j, _ := slices.BinarySearch(list, uint32(g.b))
				if j > 0 {
					tgSpans = append(tgSpans, span{off, off + j})
					tgEst += j
				}
			}
		}
		if tgEst <= est {
			best, est = driveTypeGeo, tgEst
		}
	}

	// The name filter: an id range, a suffix range or trigram candidates.
	var (
		nameLo, nameHi int
		triData        []byte
		nameEst        = -1
		pat            = q.Name.pat
	)
	switch q.Name.kind {
	case wildExact, wildPrefix:
		if q.Name.kind == wildExact {
			nameLo, nameHi = s.names.exactRange(pat)
		} else {
			nameLo, nameHi = s.names.prefixRange(pat)
		}
		r.nameByID, r.nameLo, r.nameHi = true, uint32(nameLo), uint32(nameHi)
		nameEst = int(s.names.postOff[nameHi] - s.names.postOff[nameLo])
	case wildSuffix:
		nameLo, nameHi = s.names.suffixRange(pat)
		nameEst = 0
		for k := nameLo; k < nameHi && nameEst <= est; k++ {
			id := s.names.suffix[k]
			nameEst += int(s.names.postOff[id+1] - s.names.postOff[id])
		}
	case wildInfix:
		nameEst = s.len()
		if len(pat) >= 3 {
			data, cnt, ok := s.names.tri.rarest(pat)
			if !ok {
				return // no name contains pat
			}
			triData = data
			nameEst = (cnt*s.len() + s.names.len() - 1) / max(s.names.len(), 1)
		}
	}
	if nameEst >= 0 && nameEst < est {
		best, est = driveName, nameEst
	}

	switch best {
	case driveAll:
		for o := range s.len() {
			if !r.visit(uint32(o)) {
				return
			}
		}
	case driveType:
		for _, t := range r.typeIDs {
			for _, o := range s.typePost[s.typeOff[t]:s.typeOff[t+1]] {
				if !r.visit(o) {
					return
				}
			}
		}
	case driveGeo:
		r.skipLon = true
		for _, g := range geoSpans {
			for o := g.a; o < g.b; o++ {
				if !r.visit(uint32(o)) {
					return
				}
			}
		}
	case driveTypeGeo:
		r.skipLon = true
		for _, g := range tgSpans {
			for _, o := range s.typePost[g.a:g.b] {
				if !r.visit(o) {
					return
				}
			}
		}
	case driveName:
		r.skipName = true
		r.driveNames(nameLo, nameHi, triData)
	}
}

// driveNames visits the postings of the names that match the name filter.
func (r *run) driveNames(lo, hi int, triData []byte) {
	x := r.s.names
	pat := r.q.Name.pat
	visitName := func(id uint32) bool {
		for _, o := range x.postings(id) {
			if !r.visit(o) {
				return false
			}
		}
		return true
	}
	switch r.q.Name.kind {
	case wildExact, wildPrefix:
		for _, o := range x.post[x.postOff[lo]:x.postOff[hi]] {
			if !r.visit(o) {
				return
			}
		}
	case wildSuffix:
		for _, id := range x.suffix[lo:hi] {
			if !visitName(id) {
				return
			}
		}
	case wildInfix:
		if triData == nil { // pattern shorter than a trigram: scan the dictionary
			for id := range x.len() {
				if strings.Contains(x.at(uint32(id)), pat) && !visitName(uint32(id)) {
					return
				}
				if id&1023 == 0 {
					if r.tick(); r.stop {
						return
					}
				}
			}
			return
		}
		id := uint32(0)
		for len(triData) > 0 {
			gap, n := binary.Uvarint(triData)
			triData = triData[n:]
			id += uint32(gap)
			if (len(pat) == 3 || strings.Contains(x.at(id), pat)) && !visitName(id) {
				return
			}
		}
	}
}

// searchDelta scans the profiles added since the base was built.
func (r *run) searchDelta() {
	q := r.q
	for _, e := range r.snap.delta {
		r.tick()
		if r.stop {
			return
		}
		if !e.visible(r.snap.seq) {
			continue
		}
		if q.HostedOnly && e.source != 0 {
			continue
		}
		if !q.Type.MatchLower(e.typ) || !q.Name.MatchLower(e.name) {
			continue
		}
		if r.geo && (e.lat == NoLocation || !r.inCircle(e.lat, e.lon)) {
			continue
		}
		if q.Extra != nil && !r.regexOK(e.extra) {
			continue
		}
		r.deltaIDs = append(r.deltaIDs, e.id)
		r.deltaSrcs = append(r.deltaSrcs, e.source)
		if r.full() {
			return
		}
	}
}
