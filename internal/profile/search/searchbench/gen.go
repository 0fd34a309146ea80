// Package searchbench is the re-runnable benchmark of package search: a seeded
// generator of profiles skewed like real data, a strong linear-scan baseline,
// query generators for each kind of search, and Run, which measures the index
// against the scan (latency, memory, build time) and checks that both return
// the same results.
package searchbench

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/iop-go/iop/internal/profile/search"
)

// Generator parameters, after the data the scratch baseline was measured on.
const (
	numTypes      = 50
	numFirst      = 3000
	numLast       = 3000
	numCities     = 500
	typeZipfS     = 1.0
	nameZipfS     = 0.7
	cityZipfS     = 0.8
	citySigmaM    = 20_000.0 // gaussian spread around a city, metres
	noLocationPct = 10
	numSources    = 110 // source 0 (hosted) plus neighbours 1..109
)

// typeNames are the profile types; the generator uses them in this order of
// popularity (Zipf).
var typeNames = []string{
	"chat/user", "taxi/driver", "taxi/passenger", "dating/profile", "shop/store",
	"shop/customer", "food/restaurant", "food/courier", "music/artist", "music/fan",
	"game/player", "game/server", "doctor/gp", "doctor/dentist", "tutor/math",
	"tutor/language", "job/seeker", "job/employer", "rent/apartment", "rent/car",
	"bike/share", "event/organizer", "event/venue", "sport/coach", "sport/club",
	"pet/sitter", "pet/vet", "photo/studio", "art/gallery", "book/club",
	"travel/guide", "hotel/room", "repair/plumber", "repair/electrician", "beauty/salon",
	"fitness/gym", "volunteer/ngo", "church/parish", "school/teacher", "news/reporter",
	"iot/sensor", "iot/gateway", "mesh/node", "energy/seller", "farm/produce",
	"market/stall", "crypto/miner", "lawyer/office", "translator/freelance", "nanny/care",
}

// Special cities: index (rank) → location in degrees. They exercise the
// antimeridian and the pole code.
var specialCities = map[int][2]float64{
	3: {-17.8, 179.95}, // on the antimeridian (Fiji)
	7: {84.0, 20.0},    // near the north pole
}

var extraKeys = []string{"age", "gender", "lang", "rating", "car", "seats", "since", "city", "price", "status", "genre"}

var (
	langs    = []string{"en", "de", "fr", "es", "it", "pt", "ru", "zh", "ja", "ar", "hi", "cs", "pl", "nl", "sv", "tr", "ko"}
	cars     = []string{"skoda", "toyota", "ford", "vw", "tesla", "bmw", "fiat", "kia", "dacia", "honda", "lada", "volvo", "audi", "seat", "opel"}
	statuses = []string{"online", "away", "busy", "offline"}
	genres   = []string{"rock", "jazz", "pop", "folk", "metal", "classical", "techno", "hiphop", "blues", "reggae"}
	genders  = []string{"m", "f", "x"}
)

var (
	syllables = []string{
		"ka", "lo", "ma", "ri", "an", "to", "ne", "el", "sa", "mi", "da", "vi", "ja", "ro", "be", "li",
		"na", "te", "mo", "ra", "ze", "ko", "lu", "pe", "ha", "ni", "so", "de", "ta", "gu", "fi", "wo",
	}
	accented = []string{"é", "ü", "ø", "ł", "ñ", "ž", "ö", "å", "ç", "ř"}
)

// zipf samples ranks 0..n-1 with weight 1/(rank+1)^s, for any s > 0.
type zipf struct{ cdf []float64 }

func newZipf(n int, s float64) zipf {
	z := zipf{cdf: make([]float64, n)}
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), s)
		z.cdf[i] = sum
	}
	for i := range z.cdf {
		z.cdf[i] /= sum
	}
	return z
}

func (z zipf) draw(r *rand.Rand) int {
	i, _ := slices.BinarySearch(z.cdf, r.Float64())
	return min(i, len(z.cdf)-1)
}

// Data is a generated data set.
type Data struct {
	Profiles []search.Profile
	Cities   [][2]int32 // city centres, microdegrees, by rank
	Types    []string
}

type world struct {
	first, last []string
	cityNames   []string
	cities      [][2]float64 // degrees
	typeKeys    [][]int      // extra keys per type
	types       zipf
	names       zipf
	cityZ       zipf
}

func newWorld(r *rand.Rand) *world {
	w := &world{
		types: newZipf(numTypes, typeZipfS),
		names: newZipf(numFirst, nameZipfS),
		cityZ: newZipf(numCities, cityZipfS),
	}
	w.first = uniqueWords(r, numFirst, 2, 3)
	w.last = uniqueWords(r, numLast, 2, 4)
	w.cityNames = uniqueWords(r, numCities, 2, 3)
	for i := range numCities {
		if c, ok := specialCities[i]; ok {
			w.cities = append(w.cities, c)
			continue
		}
		// Populated latitudes, roughly.
		lat := -40 + 100*r.Float64()
		lon := -180 + 360*r.Float64()
		w.cities = append(w.cities, [2]float64{lat, lon})
	}
	for range numTypes {
		k := 2 + r.IntN(3)
		keys := r.Perm(len(extraKeys))[:k]
		slices.Sort(keys)
		w.typeKeys = append(w.typeKeys, keys)
	}
	return w
}

// uniqueWords makes n distinct capitalised words of lo..hi syllables, some
// with a non-ASCII letter.
func uniqueWords(r *rand.Rand, n int, lo, hi int) []string {
	seen := make(map[string]bool, n)
	var out []string
	for len(out) < n {
		var sb strings.Builder
		k := lo + r.IntN(hi-lo+1)
		for j := range k {
			if j > 0 && r.IntN(12) == 0 {
				sb.WriteString(accented[r.IntN(len(accented))])
			}
			sb.WriteString(syllables[r.IntN(len(syllables))])
		}
		s := sb.String()
		rr, size := utf8.DecodeRuneInString(s)
		s = string(unicode.ToUpper(rr)) + s[size:]
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Generate returns n profiles generated from seed; the same seed gives the same data.
func Generate(n int, seed uint64) *Data {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	w := newWorld(r)
	d := &Data{Profiles: make([]search.Profile, n), Types: typeNames}
	for _, c := range w.cities {
		d.Cities = append(d.Cities, [2]int32{int32(c[0] * 1e6), int32(c[1] * 1e6)})
	}
	var sb strings.Builder
	for i := range d.Profiles {
		p := &d.Profiles[i]
		for j := 0; j < 32; j += 8 {
			v := r.Uint64()
			for k := range 8 {
				p.ID[j+k] = byte(v >> (8 * k))
			}
		}
		p.Source = uint32(r.IntN(numSources))
		t := w.types.draw(r)
		p.Type = typeNames[t]
		p.Name = w.first[w.names.draw(r)] + " " + w.last[w.names.draw(r)]
		city := w.cityZ.draw(r)
		if r.IntN(100) < noLocationPct {
			p.Lat, p.Lon = search.NoLocation, search.NoLocation
		} else {
			p.Lat, p.Lon = scatter(r, w.cities[city])
		}
		sb.Reset()
		for j, k := range w.typeKeys[t] {
			if j > 0 {
				sb.WriteByte(';')
			}
			sb.WriteString(extraKeys[k])
			sb.WriteByte('=')
			extraValue(&sb, r, extraKeys[k], w.cityNames[city])
		}
		p.Extra = sb.String()
	}
	return d
}

// scatter draws a location around a city with a gaussian spread.
func scatter(r *rand.Rand, c [2]float64) (lat, lon int32) {
	const mPerDeg = search.EarthRadius * math.Pi / 180
	la := c[0] + r.NormFloat64()*citySigmaM/mPerDeg
	lo := c[1] + r.NormFloat64()*citySigmaM/(mPerDeg*math.Max(math.Cos(c[0]*math.Pi/180), 0.01))
	if la > 90 {
		la, lo = 180-la, lo+180
	} else if la < -90 {
		la, lo = -180-la, lo+180
	}
	for lo > 180 {
		lo -= 360
	}
	for lo <= -180 {
		lo += 360
	}
	lat = int32(la * 1e6)
	lon = int32(lo * 1e6)
	if lon <= -180_000_000 {
		lon = 180_000_000
	}
	return lat, lon
}

func extraValue(sb *strings.Builder, r *rand.Rand, key, city string) {
	switch key {
	case "age":
		sb.WriteString(strconv.Itoa(18 + r.IntN(63)))
	case "gender":
		sb.WriteString(genders[r.IntN(len(genders))])
	case "lang":
		sb.WriteString(langs[min(r.IntN(len(langs)), r.IntN(len(langs)))])
	case "rating":
		v := 10 + r.IntN(41)
		sb.WriteString(strconv.Itoa(v / 10))
		sb.WriteByte('.')
		sb.WriteString(strconv.Itoa(v % 10))
	case "car":
		sb.WriteString(cars[r.IntN(len(cars))])
	case "seats":
		sb.WriteString(strconv.Itoa(1 + r.IntN(8)))
	case "since":
		y, m, d := 2000+r.IntN(25), 1+r.IntN(12), 1+r.IntN(28)
		sb.WriteString(strconv.Itoa(y))
		sb.WriteByte('-')
		if m < 10 {
			sb.WriteByte('0')
		}
		sb.WriteString(strconv.Itoa(m))
		sb.WriteByte('-')
		if d < 10 {
			sb.WriteByte('0')
		}
		sb.WriteString(strconv.Itoa(d))
	case "city":
		sb.WriteString(city)
	case "price":
		sb.WriteString(strconv.Itoa(1 + r.IntN(500)))
	case "status":
		sb.WriteString(statuses[r.IntN(len(statuses))])
	case "genre":
		sb.WriteString(genres[r.IntN(len(genres))])
	}
}
