package search

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Profile is the searchable part of a profile.
type Profile struct {
	ID       [32]byte // identity network ID
	Source   uint32   // 0 = hosted by this server; n > 0 = shared by neighbour n
	Type     string   // at most 64 bytes
	Name     string   // at most 64 bytes
	Lat, Lon int32    // microdegrees, or NoLocation in both
	Extra    string   // at most 200 bytes, "k=v;k=v"
}

// defaultDeltaMax is the number of profiles added or replaced since the last
// merge above which a background merge starts. Searches scan the delta
// linearly, so it bounds the extra work per search (about 0.5 ms).
const defaultDeltaMax = 16384

// entry is a profile added to the delta.
type entry struct {
	rec
	add uint64        // sequence number of the Put
	del atomic.Uint64 // sequence number of its deletion or replacement, 0 if alive
}

func (e *entry) visible(seq uint64) bool {
	if e.add > seq {
		return false
	}
	d := e.del.Load()
	return d == 0 || d > seq
}

// snapshot is what a search sees: an immutable view at sequence number seq.
type snapshot struct {
	seq   uint64
	base  *segment
	delta []*entry // entries added since base was built, some possibly deleted
	n     int      // live profiles
	// baseDead is the number of tombstones in base; 0 lets searches skip
	// the tombstone check.
	baseDead int
}

// Index is the in-memory profile search index. Searches run concurrently with
// each other and with writers; writers are serialized. See the package comment
// for the design.
type Index struct {
	snap atomic.Pointer[snapshot]

	mergeMu sync.Mutex // held while a merge builds and installs a new base
	wg      sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	seq      uint64
	base     *segment
	delta    []*entry
	deltaPos map[[32]byte]int // delta index of the live delta entry of an ID
	baseDead int              // dead base ordinals
	n        int
	merging  bool // a background merge is scheduled or running
	closed   bool
	deltaMax int
}

// New returns an empty index.
func New() *Index {
	return newIndex(buildSegment(nil))
}

// Build returns an index of ps, built in bulk. If several profiles share an ID,
// the last one wins.
func Build(ps []Profile) *Index {
	return newIndex(buildSegment(prepareAll(ps)))
}

func newIndex(s *segment) *Index {
	ix := &Index{
		base:     s,
		seq:      1, // a fresh segment's build-time marks are relative sequence 1
		deltaPos: make(map[[32]byte]int),
		baseDead: s.ndead,
		n:        s.len() - s.ndead,
		deltaMax: defaultDeltaMax,
	}
	ix.publishLocked()
	return ix
}

// prepare turns a Profile into a rec.
func prepare(p *Profile) rec {
	r := rec{
		id:     p.ID,
		source: p.Source,
		typ:    strings.ToLower(p.Type),
		name:   strings.ToLower(p.Name),
		lat:    p.Lat,
		lon:    p.Lon,
		extra:  p.Extra,
	}
	if !validLocation(r.lat, r.lon) {
		r.lat, r.lon = NoLocation, NoLocation
	}
	return r
}

func prepareAll(ps []Profile) []rec {
	recs := make([]rec, len(ps))
	workers := min(runtime.GOMAXPROCS(0), 8)
	chunk := (len(ps) + workers - 1) / workers
	var wg sync.WaitGroup
	for start := 0; start < len(ps); start += chunk {
		end := min(start+chunk, len(ps))
		wg.Go(func() {
			for i := start; i < end; i++ {
				recs[i] = prepare(&ps[i])
			}
		})
	}
	wg.Wait()
	return recs
}

func (ix *Index) publishLocked() {
	ix.snap.Store(&snapshot{seq: ix.seq, base: ix.base, delta: ix.delta[:len(ix.delta):len(ix.delta)], n: ix.n, baseDead: ix.baseDead})
}

// Len returns the number of profiles in the index.
func (ix *Index) Len() int { return ix.snap.Load().n }

// Put adds p, or replaces the profile with the same ID. Profiles whose location
// is out of range are indexed as having no location.
func (ix *Index) Put(p Profile) {
	r := prepare(&p)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.seq++
	ix.removeLocked(r.id)
	e := &entry{rec: r, add: ix.seq}
	ix.deltaPos[r.id] = len(ix.delta)
	ix.delta = append(ix.delta, e)
	ix.n++
	ix.publishLocked()
	ix.maybeMergeLocked()
}

// Delete removes the profile with the given ID and reports whether it was there.
func (ix *Index) Delete(id [32]byte) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.seq++
	if !ix.removeLocked(id) {
		ix.seq--
		return false
	}
	ix.publishLocked()
	ix.maybeMergeLocked()
	return true
}

// DeleteSource removes every profile with the given Source and returns how many
// there were.
func (ix *Index) DeleteSource(src uint32) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.seq++
	removed := 0
	b := ix.base
	if slices.Contains(b.clsSrc, src) {
		rel := uint32(ix.seq - b.seqBase)
		for o := range b.ids {
			if b.clsSrc[b.cls.at(uint32(o))] == src && atomic.LoadUint32(&b.dead[o]) == 0 {
				atomic.StoreUint32(&b.dead[o], rel)
				removed++
			}
		}
		ix.baseDead += removed
	}
	for _, e := range ix.delta {
		if e.source == src && e.del.Load() == 0 {
			e.del.Store(ix.seq)
			delete(ix.deltaPos, e.id)
			removed++
		}
	}
	if removed == 0 {
		ix.seq--
		return 0
	}
	ix.n -= removed
	ix.publishLocked()
	ix.maybeMergeLocked()
	return removed
}

// removeLocked marks the live version of id deleted at ix.seq.
func (ix *Index) removeLocked(id [32]byte) bool {
	if i, ok := ix.deltaPos[id]; ok {
		ix.delta[i].del.Store(ix.seq)
		delete(ix.deltaPos, id)
		ix.n--
		return true
	}
	b := ix.base
	o, ok := b.lookup(id)
	if !ok || atomic.LoadUint32(&b.dead[o]) != 0 {
		return false
	}
	atomic.StoreUint32(&b.dead[o], uint32(ix.seq-b.seqBase))
	ix.baseDead++
	ix.n--
	return true
}

// needMergeLocked reports whether the delta or the tombstones have grown enough
// to rebuild the base.
func (ix *Index) needMergeLocked() bool {
	return len(ix.delta) > ix.deltaMax || ix.baseDead > max(ix.deltaMax, ix.base.len()/8)
}

func (ix *Index) maybeMergeLocked() {
	if ix.merging || ix.closed || !ix.needMergeLocked() {
		return
	}
	ix.merging = true
	ix.wg.Go(func() {
		ix.mergeMu.Lock()
		defer ix.mergeMu.Unlock()
		ix.mu.Lock()
		ix.merging = false
		need := ix.needMergeLocked()
		ix.mu.Unlock()
		if need {
			ix.mergeOnce()
		}
	})
}

// Compact merges the delta and the tombstones into a new base now, waiting for
// a background merge that is running.
func (ix *Index) Compact() {
	ix.mergeMu.Lock()
	defer ix.mergeMu.Unlock()
	ix.mergeOnce()
}

// Close waits for a background merge to finish and stops starting new ones.
// The index stays usable; it just no longer compacts itself.
func (ix *Index) Close() {
	ix.mu.Lock()
	ix.closed = true
	ix.mu.Unlock()
	ix.wg.Wait()
}

// mergeOnce builds a new base from the current snapshot without holding mu,
// then installs it, carrying over the writes made meanwhile. mergeMu is held.
func (ix *Index) mergeOnce() {
	s := ix.snap.Load()
	nb := buildSegment(liveRecs(s))

	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.base // == s.base: only merges replace the base, and they hold mergeMu
	nb.seqBase = ix.seq
	ix.seq++
	markDead := func(id [32]byte) {
		if o, ok := nb.lookup(id); ok {
			atomic.StoreUint32(&nb.dead[o], 1)
			nb.ndead++
		}
	}
	// Base profiles live in s but deleted since.
	limit := old.deadLimit(s.seq)
	for o := range old.dead {
		if d := atomic.LoadUint32(&old.dead[o]); d > limit {
			markDead(old.ids[o])
		}
	}
	// Delta entries live in s but deleted since.
	for _, e := range s.delta {
		if d := e.del.Load(); d > s.seq && e.add <= s.seq {
			markDead(e.id)
		}
	}
	// Entries added since s and still live move to the new delta.
	var carried []*entry
	clear(ix.deltaPos)
	for _, e := range ix.delta[len(s.delta):] {
		if e.del.Load() == 0 {
			ix.deltaPos[e.id] = len(carried)
			carried = append(carried, e)
		}
	}
	ix.base = nb
	ix.delta = carried
	ix.baseDead = nb.ndead
	ix.publishLocked()
}

// liveRecs returns the profiles visible in s.
func liveRecs(s *snapshot) []rec {
	b := s.base
	limit := b.deadLimit(s.seq)
	recs := make([]rec, 0, s.n)
	for o := range b.ids {
		if !b.deadAt(uint32(o), limit) {
			recs = append(recs, b.rec(uint32(o)))
		}
	}
	for _, e := range s.delta {
		if e.visible(s.seq) {
			recs = append(recs, e.rec)
		}
	}
	return recs
}
