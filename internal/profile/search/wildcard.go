package search

import (
	"fmt"
	"strings"
)

// MaxWildcardLen is the longest wildcard pattern ParseWildcard accepts, in bytes.
const MaxWildcardLen = 64

// wildKind says how a Wildcard compares a lower-cased value with its pattern.
type wildKind uint8

const (
	wildAll    wildKind = iota // matches everything (the zero Wildcard, "" and "*")
	wildExact                  // "ab"
	wildPrefix                 // "ab*"
	wildSuffix                 // "*ab"
	wildInfix                  // "*ab*"
)

// Wildcard is a parsed IoP WildcardType filter. Matching is case-insensitive: the
// pattern and the value are both lower-cased with strings.ToLower. A '*' is special
// only as the first and/or the last byte of the pattern; any other '*' is literal.
// The zero value, "" and "*" match every value.
type Wildcard struct {
	kind wildKind
	pat  string // lower-cased pattern without the special stars
	src  string // the pattern as given
}

// ParseWildcard parses an IoP wildcard pattern of at most MaxWildcardLen bytes.
func ParseWildcard(s string) (Wildcard, error) {
	if len(s) > MaxWildcardLen {
		return Wildcard{}, fmt.Errorf("wildcard %.16q...: %d bytes, at most %d allowed", s, len(s), MaxWildcardLen)
	}
	w := Wildcard{src: s}
	if s == "" || s == "*" {
		return w, nil
	}
	pre := s[0] == '*'
	suf := s[len(s)-1] == '*'
	core := s
	if pre {
		core = core[1:]
	}
	if suf && len(core) > 0 {
		core = core[:len(core)-1]
	}
	w.pat = strings.ToLower(core)
	switch {
	case pre && suf:
		w.kind = wildInfix
		if w.pat == "" {
			w.kind = wildAll // "**"
		}
	case pre:
		w.kind = wildSuffix
	case suf:
		w.kind = wildPrefix
	default:
		w.kind = wildExact
	}
	return w, nil
}

// MustParseWildcard is like ParseWildcard but panics on error. It is meant for
// tests and constant patterns.
func MustParseWildcard(s string) Wildcard {
	w, err := ParseWildcard(s)
	if err != nil {
		panic(err)
	}
	return w
}

// String returns the pattern as it was given to ParseWildcard.
func (w Wildcard) String() string { return w.src }

// IsAll reports whether w matches every value, i.e. filters nothing.
func (w Wildcard) IsAll() bool { return w.kind == wildAll }

// Match reports whether s matches w, ignoring case.
func (w Wildcard) Match(s string) bool {
	if w.kind == wildAll {
		return true
	}
	return w.MatchLower(strings.ToLower(s))
}

// MatchLower is Match for a value that is already lower-cased with strings.ToLower.
func (w Wildcard) MatchLower(s string) bool {
	switch w.kind {
	case wildExact:
		return s == w.pat
	case wildPrefix:
		return strings.HasPrefix(s, w.pat)
	case wildSuffix:
		return strings.HasSuffix(s, w.pat)
	case wildInfix:
		return strings.Contains(s, w.pat)
	}
	return true
}
