package search

import (
	"encoding/binary"
	"slices"
	"strings"
)

// nameIndex is the dictionary of distinct lower-cased names of a segment, with
// posting lists and the structures that answer prefix, suffix and infix patterns.
type nameIndex struct {
	blob    string   // the distinct names, sorted, concatenated
	offs    []uint32 // name id i is blob[offs[i]:offs[i+1]]
	postOff []uint32 // postings of id i are post[postOff[i]:postOff[i+1]]
	post    []uint32 // ordinals grouped by name id, ascending within a group
	suffix  []uint32 // name ids sorted by their reversed bytes
	tri     trigrams // trigram postings over name ids, for infix patterns
}

func (x *nameIndex) len() int { return len(x.offs) - 1 }

func (x *nameIndex) at(id uint32) string { return x.blob[x.offs[id]:x.offs[id+1]] }

func (x *nameIndex) postings(id uint32) []uint32 { return x.post[x.postOff[id]:x.postOff[id+1]] }

// buildNames sorts the distinct names and returns the index (without postings)
// and the name id of every input name. names[i] must be lower-cased.
func buildNames(names []string) (*nameIndex, []uint32) {
	prov := make(map[string]uint32, len(names)/2)
	var distinct []string
	provOf := make([]uint32, len(names))
	for i, s := range names {
		id, ok := prov[s]
		if !ok {
			id = uint32(len(distinct))
			prov[s] = id
			distinct = append(distinct, s)
		}
		provOf[i] = id
	}
	prov = nil
	order := make([]uint32, len(distinct))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return strings.Compare(distinct[a], distinct[b]) })
	rank := make([]uint32, len(distinct))
	x := &nameIndex{offs: make([]uint32, len(distinct)+1)}
	var size int
	for _, s := range distinct {
		size += len(s)
	}
	var sb strings.Builder
	sb.Grow(size)
	for r, id := range order {
		rank[id] = uint32(r)
		sb.WriteString(distinct[id])
		x.offs[r+1] = uint32(sb.Len())
	}
	x.blob = sb.String()
	for i, p := range provOf {
		provOf[i] = rank[p]
	}
	x.suffix = order // reuse: now holds sorted ids 0..n-1
	for i := range x.suffix {
		x.suffix[i] = uint32(i)
	}
	slices.SortFunc(x.suffix, func(a, b uint32) int { return revCompare(x.at(a), x.at(b)) })
	x.tri = buildTrigrams(x)
	return x, provOf
}

// setPostings fills the posting lists from the name id of every ordinal.
func (x *nameIndex) setPostings(nameOf []uint32) {
	x.postOff = countingOffsets(nameOf, x.len())
	x.post = fillPostings(nameOf, x.postOff)
}

// countingOffsets returns, for keys in [0,n), the start offset of each key's group.
func countingOffsets(keys []uint32, n int) []uint32 {
	off := make([]uint32, n+1)
	for _, k := range keys {
		off[k+1]++
	}
	for i := 1; i <= n; i++ {
		off[i] += off[i-1]
	}
	return off
}

// fillPostings groups the indexes of keys by key, ascending within a group.
func fillPostings(keys []uint32, off []uint32) []uint32 {
	post := make([]uint32, len(keys))
	next := slices.Clone(off[:len(off)-1])
	for i, k := range keys {
		post[next[k]] = uint32(i)
		next[k]++
	}
	return post
}

// revCompare compares a and b by their bytes read from the end.
func revCompare(a, b string) int {
	i, j := len(a)-1, len(b)-1
	for ; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if a[i] != b[j] {
			if a[i] < b[j] {
				return -1
			}
			return 1
		}
	}
	switch {
	case i >= 0:
		return 1
	case j >= 0:
		return -1
	}
	return 0
}

// prefixRange returns the ids [lo,hi) of the names that start with p.
func (x *nameIndex) prefixRange(p string) (lo, hi int) {
	n := x.len()
	lo = searchInts(0, n, func(i int) bool { return x.at(uint32(i)) >= p })
	hi = searchInts(lo, n, func(i int) bool { return !strings.HasPrefix(x.at(uint32(i)), p) })
	return lo, hi
}

// exactRange returns the ids [lo,hi) of the names equal to p (at most one).
func (x *nameIndex) exactRange(p string) (lo, hi int) {
	n := x.len()
	lo = searchInts(0, n, func(i int) bool { return x.at(uint32(i)) >= p })
	if lo < n && x.at(uint32(lo)) == p {
		return lo, lo + 1
	}
	return lo, lo
}

// suffixRange returns the positions [lo,hi) in x.suffix of the names that end with p.
func (x *nameIndex) suffixRange(p string) (lo, hi int) {
	n := x.len()
	lo = searchInts(0, n, func(i int) bool { return revCompare(x.at(x.suffix[i]), p) >= 0 })
	hi = searchInts(lo, n, func(i int) bool { return !strings.HasSuffix(x.at(x.suffix[i]), p) })
	return lo, hi
}

// searchInts is sort.Search over [lo,hi).
func searchInts(lo, hi int, f func(int) bool) int {
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !f(m) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// trigrams maps every byte trigram to the ascending list of ids of the names
// that contain it, delta- and varint-encoded.
type trigrams struct {
	keys []uint32 // sorted trigram keys b0<<16 | b1<<8 | b2
	cnt  []uint32 // number of names in each list
	off  []uint32 // list k is data[off[k]:off[k+1]]
	data []byte
}

func triKey(s string, i int) uint32 {
	return uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2])
}

func buildTrigrams(x *nameIndex) trigrams {
	n := x.len()
	// Pass 1: count names per trigram in a direct table of all 2^24 keys.
	table := make([]uint32, 1<<24)
	var seen []uint32
	forEach := func(id int, f func(k uint32)) {
		s := x.at(uint32(id))
		seen = seen[:0]
		for i := 0; i+3 <= len(s); i++ {
			k := triKey(s, i)
			if !slices.Contains(seen, k) {
				seen = append(seen, k)
				f(k)
			}
		}
	}
	for id := 0; id < n; id++ {
		forEach(id, func(k uint32) { table[k]++ })
	}
	var t trigrams
	var total uint32
	for k, c := range table {
		if c != 0 {
			t.keys = append(t.keys, uint32(k))
			t.cnt = append(t.cnt, c)
			table[k] = total // start of the list in flat
			total += c
		}
	}
	// Pass 2: flat lists grouped by trigram, ids ascending.
	flat := make([]uint32, total)
	for id := 0; id < n; id++ {
		forEach(id, func(k uint32) {
			flat[table[k]] = uint32(id)
			table[k]++
		})
	}
	table = nil
	// Pass 3: delta-varint encode.
	t.off = make([]uint32, len(t.keys)+1)
	t.data = make([]byte, 0, int(total)+int(total)/2)
	var pos uint32
	for k, c := range t.cnt {
		prev := uint32(0)
		for _, id := range flat[pos : pos+c] {
			t.data = binary.AppendUvarint(t.data, uint64(id-prev))
			prev = id
		}
		pos += c
		t.off[k+1] = uint32(len(t.data))
	}
	t.data = slices.Clip(t.data)
	return t
}

// list returns the encoded list and its length for trigram key k.
func (t *trigrams) list(k uint32) (data []byte, cnt int) {
	i, ok := slices.BinarySearch(t.keys, k)
	if !ok {
		return nil, 0
	}
	return t.data[t.off[i]:t.off[i+1]], int(t.cnt[i])
}

// rarest returns the shortest trigram list of p (len(p) >= 3); ok is false if
// some trigram of p occurs in no name, so no name contains p.
func (t *trigrams) rarest(p string) (data []byte, cnt int, ok bool) {
	cnt = -1
	for i := 0; i+3 <= len(p); i++ {
		d, c := t.list(triKey(p, i))
		if c == 0 {
			return nil, 0, false
		}
		if cnt < 0 || c < cnt {
			data, cnt = d, c
		}
	}
	return data, cnt, true
}
