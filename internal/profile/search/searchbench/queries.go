package searchbench

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/iop-go/iop/internal/profile/search"
)

// Kind is a kind of benchmark query.
type Kind string

// The query kinds of the benchmark.
const (
	NamePrefix Kind = "a1"  // name prefix "xx*" (2–5 chars)
	NameSuffix Kind = "a2"  // name suffix "*abc" (3–5 chars)
	NameInfix  Kind = "a3"  // name infix "*abc*" (3–5 chars)
	TypeRadius Kind = "b"   // type + 50 km radius
	RegexOnly  Kind = "c"   // extra-data regex alone
	Combined   Kind = "d"   // type + name prefix + 50 km radius + regex
	WideRadius Kind = "e"   // 1,000 km radius alone
	Special    Kind = "sp"  // edge cases: antimeridian, poles, huge radius, hosted-only, odd wildcards (tests only)
	Mixed      Kind = "mix" // random mixture of filters (tests only)
)

// Kinds are the kinds Run measures, in report order.
var Kinds = []Kind{NamePrefix, NameSuffix, NameInfix, TypeRadius, RegexOnly, Combined, WideRadius}

// Describe returns a human description of k.
func (k Kind) Describe() string {
	switch k {
	case NamePrefix:
		return "name prefix"
	case NameSuffix:
		return "name suffix"
	case NameInfix:
		return "name infix"
	case TypeRadius:
		return "type + 50 km"
	case RegexOnly:
		return "extra regex only"
	case Combined:
		return "type+name+50 km+regex"
	case WideRadius:
		return "1000 km radius"
	case Special:
		return "edge cases"
	case Mixed:
		return "mixed filters"
	}
	return string(k)
}

// regexTemplates are extra-data regexes in the restricted grammar; %d is
// replaced by a random digit.
var regexTemplates = []string{
	`gender=f`,
	`age=%d[0-9]`,
	`lang=(en|de|fr)`,
	`rating=4\.[5-9]`,
	`since=20%d[0-9]-0[1-6]`,
	`seats=[%d-8]`,
	`price=[1-9][0-9]?(;|$)`,
	`status=(online|away)`,
	`^age=`,
	`car=\w+;`,
	`genre=(rock|jazz)`,
	`city=\w*a\w*`,
	`since=\d{4}-1[0-2]-\d\d`,
	`(^|;)lang=e\w$`,
}

// QueryGen draws benchmark queries from a data set.
type QueryGen struct {
	r    *rand.Rand
	data *Data
	loc  []int32 // indexes of profiles with a location
	max  int
}

// NewQueryGen returns a query generator over d with result cap max.
func NewQueryGen(d *Data, seed uint64, max int) *QueryGen {
	g := &QueryGen{r: rand.New(rand.NewPCG(seed, 0x9e7)), data: d, max: max}
	for i := range d.Profiles {
		if d.Profiles[i].Lat != search.NoLocation {
			g.loc = append(g.loc, int32(i))
		}
	}
	return g
}

func (g *QueryGen) base() search.Query {
	return search.Query{Lat: search.NoLocation, Lon: search.NoLocation, Max: g.max}
}

func (g *QueryGen) profile() *search.Profile {
	return &g.data.Profiles[g.r.IntN(len(g.data.Profiles))]
}

func (g *QueryGen) located() *search.Profile {
	if len(g.loc) == 0 {
		return g.profile()
	}
	return &g.data.Profiles[g.loc[g.r.IntN(len(g.loc))]]
}

// runes returns up to k runes of s starting at rune i.
func runes(s string, i, k int) string {
	rs := []rune(s)
	i = min(i, len(rs))
	return string(rs[i:min(i+k, len(rs))])
}

// mixCase upper-cases some letters, to exercise case-insensitivity.
func (g *QueryGen) mixCase(s string) string {
	if g.r.IntN(3) != 0 {
		return s
	}
	var sb strings.Builder
	for _, c := range s {
		if g.r.IntN(2) == 0 {
			c = unicode.ToUpper(c)
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

func (g *QueryGen) wildcard(s string) search.Wildcard {
	return search.MustParseWildcard(s)
}

func (g *QueryGen) regex() string {
	t := regexTemplates[g.r.IntN(len(regexTemplates))]
	if strings.Contains(t, "%d") {
		t = fmt.Sprintf(t, 1+g.r.IntN(7))
	}
	return t
}

// Query is a benchmark query with its description.
type Query struct {
	Q    search.Query
	Desc string
}

// Next draws a query of kind k.
func (g *QueryGen) Next(k Kind) Query {
	q := g.base()
	var desc []string
	setName := func(pat string) {
		q.Name = g.wildcard(pat)
		desc = append(desc, "name="+pat)
	}
	setType := func(pat string) {
		q.Type = g.wildcard(pat)
		desc = append(desc, "type="+pat)
	}
	setLoc := func(lat, lon int32, radius uint32) {
		q.Lat, q.Lon, q.Radius = lat, lon, radius
		desc = append(desc, fmt.Sprintf("loc=%.4f,%.4f r=%dm", float64(lat)/1e6, float64(lon)/1e6, radius))
	}
	setRegex := func(s string) {
		q.Extra = mustRegex(s)
		desc = append(desc, "extra="+s)
	}
	switch k {
	case NamePrefix:
		name := g.profile().Name
		setName(g.mixCase(runes(name, 0, 2+g.r.IntN(4))) + "*")
	case NameSuffix:
		name := []rune(g.profile().Name)
		n := 3 + g.r.IntN(3)
		setName("*" + g.mixCase(string(name[max(0, len(name)-n):])))
	case NameInfix:
		name := g.profile().Name
		n := 3 + g.r.IntN(3)
		i := g.r.IntN(max(1, utf8.RuneCountInString(name)-n+1))
		setName("*" + g.mixCase(runes(name, i, n)) + "*")
	case TypeRadius:
		p := g.located()
		setType(p.Type)
		setLoc(p.Lat, p.Lon, 50_000)
	case RegexOnly:
		setRegex(g.regex())
	case Combined:
		p := g.located()
		setType(p.Type)
		setName(g.mixCase(runes(p.Name, 0, 1+g.r.IntN(3))) + "*")
		setLoc(p.Lat, p.Lon, 50_000)
		setRegex(g.regex())
	case WideRadius:
		p := g.located()
		setLoc(p.Lat, p.Lon, 1_000_000)
	case Special:
		g.special(&q, &desc, setName, setType, setLoc, setRegex)
	case Mixed:
		p := g.located()
		if g.r.IntN(2) == 0 {
			pats := []string{p.Type, strings.Split(p.Type, "/")[0] + "/*", "*/" + strings.Split(p.Type, "/")[1], "*a*", "*"}
			setType(pats[g.r.IntN(len(pats))])
		}
		if g.r.IntN(2) == 0 {
			name := p.Name
			pats := []string{runes(name, 0, 1+g.r.IntN(4)) + "*", "*" + runes(name, utf8.RuneCountInString(name)-2, 2), "*" + runes(name, 2, 2) + "*", name, "*" + runes(name, 1, 4) + "*"}
			setName(g.mixCase(pats[g.r.IntN(len(pats))]))
		}
		if g.r.IntN(2) == 0 {
			radii := []uint32{0, 1_000, 20_000, 50_000, 200_000, 1_000_000, 5_000_000}
			setLoc(p.Lat, p.Lon, radii[g.r.IntN(len(radii))])
		}
		if g.r.IntN(3) == 0 {
			setRegex(g.regex())
		}
		if g.r.IntN(5) == 0 {
			q.HostedOnly = true
			desc = append(desc, "hosted")
		}
	}
	return Query{Q: q, Desc: strings.Join(desc, " ")}
}

func (g *QueryGen) special(q *search.Query, desc *[]string, setName, setType func(string), setLoc func(int32, int32, uint32), setRegex func(string)) {
	cities := g.data.Cities
	switch g.r.IntN(12) {
	case 0: // the antimeridian city, from both sides
		c := cities[3]
		lon := int32(180_000_000)
		if g.r.IntN(2) == 0 {
			lon = -179_999_999
		}
		setLoc(c[0], lon, uint32(10_000+g.r.IntN(200_000)))
	case 1: // the polar city and the pole itself
		lat := int32(90_000_000)
		if g.r.IntN(2) == 0 {
			lat = cities[7][0] + int32(g.r.IntN(3_000_000))
		}
		setLoc(lat, int32(g.r.IntN(360_000_000)-179_999_999), uint32(50_000+g.r.IntN(1_000_000)))
	case 2: // south pole, huge radius
		setLoc(-90_000_000, 0, uint32(8_000_000+g.r.IntN(4_000_000)))
	case 3: // whole earth
		setLoc(int32(g.r.IntN(180_000_000)-90_000_000), int32(g.r.IntN(360_000_000)-179_999_999), 20_100_000)
		setType(g.data.Types[20+g.r.IntN(30)])
	case 4: // radius 0 on an existing profile
		p := g.located()
		setLoc(p.Lat, p.Lon, 0)
	case 5: // hosted only, with type prefix
		q.HostedOnly = true
		*desc = append(*desc, "hosted")
		setType(strings.Split(g.located().Type, "/")[0] + "/*")
	case 6: // a literal star, an empty pattern, "**"
		pats := []string{"a*b", "", "**", "*", "***"}
		setName(pats[g.r.IntN(len(pats))])
		setType("*driver")
	case 7: // exact name, mixed case
		setName(g.mixCase(g.profile().Name))
	case 8: // short infix
		setName("*" + runes(g.profile().Name, 1+g.r.IntN(3), 1+g.r.IntN(2)) + "*")
		setType(g.profile().Type)
	case 9: // non-ASCII infix
		setName("*" + []string{"é", "ü", "ø", "ł", "ñ", "Ž", "Ö", "Å"}[g.r.IntN(8)] + "*")
	case 10: // an antipodal-ish wide radius around the antimeridian
		setLoc(int32(g.r.IntN(160_000_000)-80_000_000), 179_900_000+int32(g.r.IntN(100_000)), uint32(g.r.IntN(3_000_000)))
		setRegex(g.regex())
	case 11: // no match at all
		setName("*zzzq*")
	}
}

func mustRegex(s string) *regexp.Regexp {
	re, err := search.CompileRegex(s)
	if err != nil {
		panic(err)
	}
	return re
}
