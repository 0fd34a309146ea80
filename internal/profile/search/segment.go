package search

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	bandWidth = 50_000 // microdegrees of latitude per geo band (0.05°, about 5.6 km)
	nBands    = 2 * maxLat / bandWidth
)

// rec is a profile as the index keeps it: type and name lower-cased, location
// either valid or NoLocation in both coordinates.
type rec struct {
	id       [32]byte
	source   uint32
	typ      string
	name     string
	lat, lon int32
	extra    string
}

// codes is a column of small dictionary codes, 16 bits wide while the
// dictionary allows it.
type codes struct {
	u16 []uint16
	u32 []uint32
}

func makeCodes(n, distinct int) codes {
	if distinct <= 1<<16 {
		return codes{u16: make([]uint16, n)}
	}
	return codes{u32: make([]uint32, n)}
}

func (c *codes) at(i uint32) uint32 {
	if c.u16 != nil {
		return uint32(c.u16[i])
	}
	return c.u32[i]
}

func (c *codes) set(i int, v uint32) {
	if c.u16 != nil {
		c.u16[i] = uint16(v)
	} else {
		c.u32[i] = v
	}
}

// segment is the immutable, bulk-built part of the index. Profiles are numbered
// by ordinal in geo order: located profiles sorted by (latitude band,
// longitude) come first, profiles without a location last. Only dead changes
// after the build (atomically, by the serialized writer).
type segment struct {
	seqBase uint64   // dead marks are sequence numbers relative to this
	dead    []uint32 // 0 = alive, else (deletion seq - seqBase); atomic access
	ndead   int      // dead at build time (duplicate IDs)

	ids      [][32]byte
	lat, lon []int32
	cls      codes    // class code per ordinal: a distinct (type, source) pair
	clsType  []uint32 // class code -> type code
	clsSrc   []uint32 // class code -> Source
	types    []string // type code -> lower-cased type
	name     []uint32 // name id per ordinal
	extra    []string

	nLoc      int      // ordinals [0,nLoc) have a location
	bandStart []uint32 // band b holds ordinals [bandStart[b], bandStart[b+1])

	typeOff  []uint32 // ordinals of type t are typePost[typeOff[t]:typeOff[t+1]]
	typePost []uint32
	names    *nameIndex

	idBucket []uint32 // ordinals whose ID starts with 16-bit prefix p are idOrder[idBucket[p]:idBucket[p+1]]
	idOrder  []uint32 // live ordinals sorted by ID
}

func (s *segment) len() int { return len(s.ids) }

func bandOf(lat int32) int {
	b := int((int64(lat) + maxLat) / bandWidth)
	return min(max(b, 0), nBands-1)
}

// buildSegment builds a segment from recs. If two recs share an ID, the later
// one wins and the earlier one is dead from the start.
func buildSegment(recs []rec) *segment {
	n := len(recs)
	s := &segment{}
	var (
		wg     sync.WaitGroup
		names  *nameIndex
		nameOf []uint32 // by rec index
	)
	wg.Go(func() {
		lower := make([]string, n)
		for i := range recs {
			lower[i] = recs[i].name
		}
		names, nameOf = buildNames(lower)
	})

	// Geo order.
	perm := geoOrder(recs)
	s.ids = make([][32]byte, n)
	s.lat = make([]int32, n)
	s.lon = make([]int32, n)
	s.extra = make([]string, n)
	typeCode := make(map[string]uint32)
	clsCode := make(map[[2]uint32]uint32)
	typOf := make([]uint32, n)
	clsOf := make([]uint32, n)
	s.bandStart = make([]uint32, nBands+1)
	for o, i := range perm {
		r := &recs[i]
		s.ids[o] = r.id
		s.lat[o], s.lon[o] = r.lat, r.lon
		s.extra[o] = r.extra
		if r.lat != NoLocation {
			s.nLoc = o + 1
			s.bandStart[bandOf(r.lat)+1]++
		}
		t, ok := typeCode[r.typ]
		if !ok {
			t = uint32(len(s.types))
			typeCode[r.typ] = t
			s.types = append(s.types, r.typ)
		}
		typOf[o] = t
		c, ok := clsCode[[2]uint32{t, r.source}]
		if !ok {
			c = uint32(len(s.clsType))
			clsCode[[2]uint32{t, r.source}] = c
			s.clsType = append(s.clsType, t)
			s.clsSrc = append(s.clsSrc, r.source)
		}
		clsOf[o] = c
	}
	for b := 1; b <= nBands; b++ {
		s.bandStart[b] += s.bandStart[b-1]
	}
	s.cls = makeCodes(n, len(s.clsType))
	for o, c := range clsOf {
		s.cls.set(o, c)
	}
	s.typeOff = countingOffsets(typOf, len(s.types))
	s.typePost = fillPostings(typOf, s.typeOff)
	typOf, clsOf = nil, nil
	s.dead = make([]uint32, n)
	s.buildIDs(perm)

	wg.Wait()
	s.names = names
	s.name = make([]uint32, n)
	for o, i := range perm {
		s.name[o] = nameOf[i]
	}
	names.setPostings(s.name)
	return s
}

// geoOrder returns the rec indexes in geo order (see segment).
func geoOrder(recs []rec) []uint32 {
	n := len(recs)
	const keyBits = 41 // 12 bits of band, 29 of longitude
	const noLoc = 1<<keyBits - 1
	key := func(r *rec) uint64 {
		if r.lat == NoLocation {
			return noLoc
		}
		return uint64(bandOf(r.lat))<<29 | uint64(int64(r.lon)-minLon)
	}
	perm := make([]uint32, n)
	idxBits := bits.Len(uint(n))
	if keyBits+idxBits <= 64 {
		packed := make([]uint64, n)
		for i := range recs {
			packed[i] = key(&recs[i])<<idxBits | uint64(i)
		}
		slices.Sort(packed)
		for o, p := range packed {
			perm[o] = uint32(p & (1<<idxBits - 1))
		}
		return perm
	}
	for i := range perm {
		perm[i] = uint32(i)
	}
	slices.SortStableFunc(perm, func(a, b uint32) int {
		ka, kb := key(&recs[a]), key(&recs[b])
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return perm
}

// buildIDs builds the ID lookup and marks all but the last rec of a duplicated
// ID dead (relative sequence 1, i.e. dead in every snapshot).
func (s *segment) buildIDs(perm []uint32) {
	n := len(s.ids)
	prefix := func(o int) uint32 { return uint32(binary.BigEndian.Uint16(s.ids[o][:2])) }
	s.idBucket = make([]uint32, 1<<16+1)
	for o := range n {
		s.idBucket[prefix(o)+1]++
	}
	for p := 1; p <= 1<<16; p++ {
		s.idBucket[p] += s.idBucket[p-1]
	}
	s.idOrder = make([]uint32, n)
	next := slices.Clone(s.idBucket[:1<<16])
	for o := range n {
		p := prefix(o)
		s.idOrder[next[p]] = uint32(o)
		next[p]++
	}
	dups := false
	for p := range 1 << 16 {
		b := s.idOrder[s.idBucket[p]:s.idBucket[p+1]]
		slices.SortFunc(b, func(x, y uint32) int {
			if c := bytes.Compare(s.ids[x][:], s.ids[y][:]); c != 0 {
				return c
			}
			return int(perm[x]) - int(perm[y])
		})
		for i := 1; i < len(b); i++ {
			if s.ids[b[i]] == s.ids[b[i-1]] {
				s.dead[b[i-1]] = 1
				s.ndead++
				dups = true
			}
		}
	}
	if !dups {
		return
	}
	// Drop the dead duplicates from the lookup.
	w := 0
	for p := range 1 << 16 {
		start := w
		for _, o := range s.idOrder[s.idBucket[p]:s.idBucket[p+1]] {
			if s.dead[o] == 0 {
				s.idOrder[w] = o
				w++
			}
		}
		s.idBucket[p] = uint32(start)
	}
	s.idBucket[1<<16] = uint32(w)
	s.idOrder = slices.Clip(s.idOrder[:w])
}

// lookup returns the ordinal of id, alive or not.
func (s *segment) lookup(id [32]byte) (uint32, bool) {
	p := binary.BigEndian.Uint16(id[:2])
	b := s.idOrder[s.idBucket[p]:s.idBucket[p+1]]
	i, ok := slices.BinarySearchFunc(b, id, func(o uint32, id [32]byte) int {
		return bytes.Compare(s.ids[o][:], id[:])
	})
	if !ok {
		return 0, false
	}
	return b[i], true
}

// deadAt reports whether ordinal o is deleted in a snapshot whose sequence
// number is seqBase+limit.
func (s *segment) deadAt(o uint32, limit uint32) bool {
	d := atomic.LoadUint32(&s.dead[o])
	return d != 0 && d <= limit
}

// deadLimit converts a snapshot sequence number to the limit for deadAt.
func (s *segment) deadLimit(seq uint64) uint32 {
	if seq < s.seqBase {
		return 0
	}
	return uint32(min(seq-s.seqBase, math.MaxUint32))
}

// rec rebuilds the rec of ordinal o.
func (s *segment) rec(o uint32) rec {
	return rec{
		id:     s.ids[o],
		source: s.clsSrc[s.cls.at(o)],
		typ:    s.types[s.clsType[s.cls.at(o)]],
		name:   s.names.at(s.name[o]),
		lat:    s.lat[o],
		lon:    s.lon[o],
		extra:  s.extra[o],
	}
}

// bandRange returns the ordinals [a,b) of band bd with longitude in [lo,hi].
func (s *segment) bandRange(bd int, lo, hi int32) (a, b int) {
	start, end := int(s.bandStart[bd]), int(s.bandStart[bd+1])
	a = searchInts(start, end, func(i int) bool { return s.lon[i] >= lo })
	b = searchInts(a, end, func(i int) bool { return s.lon[i] > hi })
	return a, b
}
