package search

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

const (
	// MaxRegexLen is the longest extra-data regex CompileRegex accepts, in bytes.
	MaxRegexLen = 256
	// MaxRepeat bounds the counts of {n}, {n,} and {n,m}.
	MaxRepeat = 1000
	// maxRegexInst bounds the size of the compiled program. A match costs at most
	// O(len(input) × program), so this bounds one evaluation on a 200-byte value.
	maxRegexInst = 10000
)

// RegexError reports an extra-data regex that is outside the restricted IoP
// grammar, or that does not compile.
type RegexError struct {
	Offset int    // byte offset in the pattern, or -1 when the whole pattern is at fault
	Msg    string // what is wrong
}

func (e *RegexError) Error() string {
	if e.Offset < 0 {
		return "regex: " + e.Msg
	}
	return fmt.Sprintf("regex: %s at byte %d", e.Msg, e.Offset)
}

// CompileRegex compiles an IoP RegexType pattern (at most MaxRegexLen bytes).
// Only the restricted grammar is accepted: literals, the escapes \xnn and \unnnn,
// escaped punctuation, \w \W \s \S \d \D, '.', '^', '$', classes [..] and [^..]
// with ranges, the quantifiers * + ? {n} {n,} {n,m} (counts at most MaxRepeat),
// alternation '|' and groups ( ). Anything else — flags such as (?i), non-capturing
// or named groups, \b, \p{..}, back-references, lazy quantifiers, POSIX classes —
// is rejected with a *RegexError that says what and where. Matching is
// case-sensitive and unanchored (regexp.MatchString).
func CompileRegex(s string) (*regexp.Regexp, error) {
	if len(s) > MaxRegexLen {
		return nil, &RegexError{Offset: -1, Msg: fmt.Sprintf("pattern is %d bytes, at most %d allowed", len(s), MaxRegexLen)}
	}
	if !utf8.ValidString(s) {
		return nil, &RegexError{Offset: -1, Msg: "pattern is not valid UTF-8"}
	}
	p := regexParser{src: s}
	if err := p.parse(); err != nil {
		return nil, err
	}
	goPat := p.out.String()
	re, err := regexp.Compile(goPat)
	if err != nil {
		return nil, &RegexError{Offset: -1, Msg: err.Error()}
	}
	st, err := syntax.Parse(goPat, syntax.Perl)
	if err != nil {
		return nil, &RegexError{Offset: -1, Msg: err.Error()}
	}
	prog, err := syntax.Compile(st.Simplify())
	if err != nil {
		return nil, &RegexError{Offset: -1, Msg: err.Error()}
	}
	if len(prog.Inst) > maxRegexInst {
		return nil, &RegexError{Offset: -1, Msg: fmt.Sprintf("pattern is too complex (%d instructions, at most %d)", len(prog.Inst), maxRegexInst)}
	}
	return re, nil
}

// regexParser checks a pattern against the restricted grammar and writes the
// equivalent Go syntax to out (\unnnn becomes \x{nnnn}).
type regexParser struct {
	src   string
	pos   int
	depth int
	out   strings.Builder
}

func (p *regexParser) errf(off int, format string, args ...any) error {
	return &RegexError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (p *regexParser) parse() error {
	if err := p.alternation(); err != nil {
		return err
	}
	if p.pos < len(p.src) { // only an unmatched ')' stops alternation early
		return p.errf(p.pos, "unmatched ')'")
	}
	return nil
}

func (p *regexParser) alternation() error {
	for {
		if err := p.concat(); err != nil {
			return err
		}
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.out.WriteByte('|')
			p.pos++
			continue
		}
		return nil
	}
}

func (p *regexParser) concat() error {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '|' || c == ')' {
			return nil
		}
		if err := p.atom(); err != nil {
			return err
		}
		if err := p.quantifier(); err != nil {
			return err
		}
	}
	return nil
}

// atom parses one atom: a group, a class, an escape, '.', '^', '$' or a literal.
func (p *regexParser) atom() error {
	start := p.pos
	c := p.src[p.pos]
	switch c {
	case '(':
		if p.pos+1 < len(p.src) && p.src[p.pos+1] == '?' {
			return p.errf(start, "group flags and non-capturing or named groups '(?' are not allowed")
		}
		p.depth++
		if p.depth > 100 {
			return p.errf(start, "groups nested deeper than 100")
		}
		p.out.WriteByte('(')
		p.pos++
		if err := p.alternation(); err != nil {
			return err
		}
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return p.errf(start, "missing ')' for this '('")
		}
		p.out.WriteByte(')')
		p.pos++
		p.depth--
		return nil
	case '[':
		return p.class()
	case '\\':
		return p.escape(false)
	case '*', '+', '?':
		return p.errf(start, "quantifier '%c' has nothing to repeat", c)
	case '{':
		if _, ok := p.repeatAt(p.pos); ok {
			return p.errf(start, "quantifier '{' has nothing to repeat")
		}
		return p.errf(start, "unescaped '{' is not allowed, write \\{")
	case '.', '^', '$':
		p.out.WriteByte(c)
		p.pos++
		return nil
	}
	_, size := utf8.DecodeRuneInString(p.src[p.pos:])
	p.out.WriteString(p.src[p.pos : p.pos+size])
	p.pos += size
	return nil
}

// quantifier parses at most one quantifier after an atom.
func (p *regexParser) quantifier() error {
	if p.pos >= len(p.src) {
		return nil
	}
	start := p.pos
	switch c := p.src[p.pos]; c {
	case '*', '+', '?':
		p.out.WriteByte(c)
		p.pos++
	case '{':
		end, ok := p.repeatAt(p.pos)
		if !ok {
			return p.errf(start, "malformed repetition, want {n}, {n,} or {n,m} with counts at most %d", MaxRepeat)
		}
		p.out.WriteString(p.src[p.pos:end])
		p.pos = end
	default:
		return nil
	}
	if p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '*', '+', '?', '{':
			return p.errf(p.pos, "quantifier after quantifier (lazy or nested repetition) is not allowed")
		}
	}
	return nil
}

// repeatAt parses {n}, {n,} or {n,m} at i and returns the offset after it.
func (p *regexParser) repeatAt(i int) (end int, ok bool) {
	s := p.src
	i++ // '{'
	n, i, ok := number(s, i)
	if !ok {
		return 0, false
	}
	m := n
	if i < len(s) && s[i] == ',' {
		i++
		if i < len(s) && s[i] == '}' {
			m = -1
		} else if m, i, ok = number(s, i); !ok {
			return 0, false
		}
	}
	if i >= len(s) || s[i] != '}' {
		return 0, false
	}
	if n > MaxRepeat || m > MaxRepeat || (m >= 0 && m < n) {
		return 0, false
	}
	return i + 1, true
}

func number(s string, i int) (n, next int, ok bool) {
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if n <= MaxRepeat {
			n = n*10 + int(s[i]-'0')
		}
		i++
	}
	return n, i, i > start && i-start <= 5
}

// class parses [..] or [^..].
func (p *regexParser) class() error {
	start := p.pos
	p.out.WriteByte('[')
	p.pos++
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		p.out.WriteByte('^')
		p.pos++
	}
	first := true
	for {
		if p.pos >= len(p.src) {
			return p.errf(start, "missing ']' for this '['")
		}
		c := p.src[p.pos]
		switch {
		case c == ']' && !first:
			p.out.WriteByte(']')
			p.pos++
			return nil
		case c == '[' && p.pos+1 < len(p.src) && p.src[p.pos+1] == ':':
			return p.errf(p.pos, "POSIX classes '[:' are not allowed")
		case c == '\\':
			if err := p.escape(true); err != nil {
				return err
			}
		default:
			_, size := utf8.DecodeRuneInString(p.src[p.pos:])
			if c == ']' || c == '[' {
				p.out.WriteByte('\\')
			}
			p.out.WriteString(p.src[p.pos : p.pos+size])
			p.pos += size
		}
		first = false
	}
}

// escape parses a backslash escape.
func (p *regexParser) escape(inClass bool) error {
	start := p.pos
	if p.pos+1 >= len(p.src) {
		return p.errf(start, "trailing '\\'")
	}
	c := p.src[p.pos+1]
	switch {
	case c == 'x':
		if p.pos+4 > len(p.src) || !isHex(p.src[p.pos+2]) || !isHex(p.src[p.pos+3]) {
			return p.errf(start, "\\x must be followed by exactly two hex digits")
		}
		p.out.WriteString(p.src[p.pos : p.pos+4])
		p.pos += 4
		return nil
	case c == 'u':
		if p.pos+6 > len(p.src) || !isHex(p.src[p.pos+2]) || !isHex(p.src[p.pos+3]) || !isHex(p.src[p.pos+4]) || !isHex(p.src[p.pos+5]) {
			return p.errf(start, "\\u must be followed by exactly four hex digits")
		}
		p.out.WriteString(`\x{`)
		p.out.WriteString(p.src[p.pos+2 : p.pos+6])
		p.out.WriteByte('}')
		p.pos += 6
		return nil
	case strings.IndexByte("wWsSdD", c) >= 0:
		p.out.WriteString(p.src[p.pos : p.pos+2])
		p.pos += 2
		return nil
	case c < utf8.RuneSelf && isPunct(c):
		p.out.WriteString(p.src[p.pos : p.pos+2])
		p.pos += 2
		return nil
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos+1:])
	what := "escape \\" + string(r)
	switch c {
	case 'b', 'B':
		what = "word boundary \\" + string(c)
	case 'p', 'P':
		what = "Unicode class \\" + string(c)
	case 'A', 'z', 'Z', 'G':
		what = "anchor \\" + string(c)
	case '1', '2', '3', '4', '5', '6', '7', '8', '9', 'k':
		what = "back-reference \\" + string(c)
	}
	_ = inClass
	return p.errf(start, "%s is not allowed", what)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isPunct reports whether c is ASCII punctuation that may be escaped.
func isPunct(c byte) bool {
	return c > ' ' && c < 0x7f && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_')
}

// requiredLiteral returns a case-sensitive string that every match of re
// contains, or "" if it finds none. Search uses it as a cheap prefilter.
func requiredLiteral(re *regexp.Regexp) string {
	st, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return ""
	}
	return litOf(st.Simplify())
}

func litOf(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return ""
		}
		return string(re.Rune)
	case syntax.OpCapture, syntax.OpPlus:
		return litOf(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return litOf(re.Sub[0])
		}
	case syntax.OpConcat:
		best, run := "", ""
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
				run += string(sub.Rune)
				if len(run) > len(best) {
					best = run
				}
				continue
			}
			run = ""
			if l := litOf(sub); len(l) > len(best) {
				best = l
			}
		}
		return best
	}
	return ""
}
