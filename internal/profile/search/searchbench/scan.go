package searchbench

import (
	"math"
	"strings"

	"github.com/iop-go/iop/internal/profile/search"
)

// scanRow is a profile prepared for scanning: type and name lower-cased once.
type scanRow struct {
	id       [32]byte
	hosted   bool
	typ      string
	name     string
	lat, lon int32
	extra    string
}

// Scan is the linear-scan baseline: an in-memory array of pre-lowered
// profiles, checked cheapest filter first (hosted, type, latitude band, name,
// haversine, regex). It is a deliberately strong baseline.
type Scan struct {
	rows []scanRow
	byID map[[32]byte]int32 // built by Find
}

// NewScan prepares ps for scanning.
func NewScan(ps []search.Profile) *Scan {
	s := &Scan{rows: make([]scanRow, len(ps))}
	for i := range ps {
		s.rows[i] = newRow(&ps[i])
	}
	return s
}

func newRow(p *search.Profile) scanRow {
	r := scanRow{
		id:     p.ID,
		hosted: p.Source == 0,
		typ:    strings.ToLower(p.Type),
		name:   strings.ToLower(p.Name),
		lat:    p.Lat,
		lon:    p.Lon,
		extra:  p.Extra,
	}
	if r.lat == search.NoLocation || r.lon == search.NoLocation {
		r.lat, r.lon = search.NoLocation, search.NoLocation
	}
	return r
}

// matcher is a query prepared for the scan.
type matcher struct {
	q      *search.Query
	geo    bool
	latTol float64 // no profile further than this in latitude (microdegrees) can match
}

func newMatcher(q *search.Query) matcher {
	m := matcher{q: q, geo: q.Lat != search.NoLocation}
	if m.geo {
		m.latTol = float64(q.Radius)/search.EarthRadius*180/math.Pi*1e6 + 10
	}
	return m
}

func (m *matcher) match(r *scanRow) bool {
	q := m.q
	if q.HostedOnly && !r.hosted {
		return false
	}
	if !q.Type.MatchLower(r.typ) {
		return false
	}
	if m.geo && (r.lat == search.NoLocation || math.Abs(float64(r.lat)-float64(q.Lat)) > m.latTol) {
		return false
	}
	if !q.Name.MatchLower(r.name) {
		return false
	}
	if m.geo && search.Distance(q.Lat, q.Lon, r.lat, r.lon) > float64(q.Radius) {
		return false
	}
	if q.Extra != nil && !q.Extra.MatchString(r.extra) {
		return false
	}
	return true
}

// Search returns the indexes of the rows that match q, at most max of them
// (max <= 0: no cap).
func (s *Scan) Search(q *search.Query, max int) []int32 {
	m := newMatcher(q)
	var out []int32
	for i := range s.rows {
		if m.match(&s.rows[i]) {
			out = append(out, int32(i))
			if max > 0 && len(out) >= max {
				break
			}
		}
	}
	return out
}

// Matches reports whether row i matches q.
func (s *Scan) Matches(q *search.Query, i int32) bool {
	m := newMatcher(q)
	return m.match(&s.rows[i])
}

// ID returns the ID of row i.
func (s *Scan) ID(i int32) [32]byte { return s.rows[i].id }

// Len returns the number of rows.
func (s *Scan) Len() int { return len(s.rows) }

// Find returns the row of id, building a lookup on first use.
func (s *Scan) Find(id [32]byte) (int32, bool) {
	if s.byID == nil {
		s.byID = make(map[[32]byte]int32, len(s.rows))
		for i := range s.rows {
			s.byID[s.rows[i].id] = int32(i)
		}
	}
	i, ok := s.byID[id]
	return i, ok
}
