package search

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestCompileRegexAllowed(t *testing.T) {
	tests := []struct {
		pat      string
		match    []string
		nonMatch []string
	}{
		{`gender=f`, []string{"age=3;gender=f"}, []string{"gender=m"}},
		{`^age=\d\d;`, []string{"age=34;x=1"}, []string{"x=1;age=34;"}},
		{`lang=(en|de)$`, []string{"a=b;lang=de"}, []string{"lang=de;a=b"}},
		{`\x41\u00e9`, []string{"Aé"}, []string{"A"}},
		{`\u0041{2,3}`, []string{"AA"}, []string{"A"}},
		{`[a-c]+[^0-9]?.\.`, []string{"abz!."}, []string{"xyz."}},
		{`\w\W\s\S\d\D`, []string{"a- x1y"}, []string{"abcdef"}},
		{`a{3}b{2,}c{1,2}d*e+f?`, []string{"aaabbcee"}, []string{"aabbce"}},
		{`\(\)\[\]\{\}\*\+\?\|\^\$\.\\\/\-`, []string{`()[]{}*+?|^$.\/-`}, []string{"()"}},
		{`[\]\[\-\\]`, []string{"]", "[", "-", `\`}, []string{"a"}},
		{`[]a]`, []string{"]", "a"}, []string{"b"}},
		{`[\x30-\x39]`, []string{"5"}, []string{"a"}},
		{`[\d\s]`, []string{"1", " "}, []string{"a"}},
		{`a}b]`, []string{"a}b]"}, []string{"ab"}},
		{`()|x`, []string{"", "y"}, nil},
		{`é+ü`, []string{"ééü"}, []string{"ü"}},
		{`(a|b(c|d)*)+`, []string{"bcd"}, []string{"x"}},
		{`.{0,1000}`, []string{"x"}, nil},
	}
	for _, tt := range tests {
		re, err := CompileRegex(tt.pat)
		if err != nil {
			t.Errorf("CompileRegex(%q) = %v, want nil", tt.pat, err)
			continue
		}
		for _, s := range tt.match {
			if !re.MatchString(s) {
				t.Errorf("CompileRegex(%q).MatchString(%q) = false, want true", tt.pat, s)
			}
		}
		for _, s := range tt.nonMatch {
			if re.MatchString(s) {
				t.Errorf("CompileRegex(%q).MatchString(%q) = true, want false", tt.pat, s)
			}
		}
	}
}

func TestCompileRegexRejected(t *testing.T) {
	tests := []struct {
		pat    string
		offset int    // -1: whole pattern
		msg    string // part of the message
	}{
		{`(?i)abc`, 0, "(?"},
		{`a(?:b)`, 1, "(?"},
		{`(?P<x>a)`, 0, "(?"},
		{`\bword`, 0, "word boundary"},
		{`x\B`, 1, "word boundary"},
		{`\p{Greek}`, 0, "Unicode class"},
		{`[\pL]`, 1, "Unicode class"},
		{`(a)\1`, 3, "back-reference"},
		{`\k<x>`, 0, "back-reference"},
		{`\Aabc\z`, 0, "anchor"},
		{`a\n`, 1, `escape \n`},
		{`a\tb`, 1, `escape \t`},
		{`\Q*\E`, 0, `escape \Q`},
		{`[[:alpha:]]`, 1, "POSIX"},
		{`a*?`, 2, "quantifier after quantifier"},
		{`a+*`, 2, "quantifier after quantifier"},
		{`a{2}{3}`, 4, "quantifier after quantifier"},
		{`*a`, 0, "nothing to repeat"},
		{`(|+)`, 2, "nothing to repeat"},
		{`a{1001}`, 1, "malformed repetition"},
		{`a{2,1}`, 1, "malformed repetition"},
		{`a{,5}`, 1, "malformed repetition"},
		{`a{x}`, 1, "malformed repetition"},
		{`{`, 0, "unescaped '{'"},
		{`{2}`, 0, "nothing to repeat"},
		{`\x4`, 0, "two hex digits"},
		{`\x{41}`, 0, "two hex digits"},
		{`\u041`, 0, "four hex digits"},
		{`abc\`, 3, "trailing"},
		{`(ab`, 0, "missing ')'"},
		{`ab)`, 2, "unmatched ')'"},
		{`[ab`, 0, "missing ']'"},
		{`[z-a]`, -1, "invalid character class range"},
		{strings.Repeat("a", MaxRegexLen+1), -1, "at most 256"},
		{"\xff", -1, "UTF-8"},
		{`((((a{1000}){1000}){1000}){1000})`, -1, ""},
		{strings.Repeat(`\w{1000}`, 12), -1, "too complex"},
	}
	for _, tt := range tests {
		re, err := CompileRegex(tt.pat)
		if err == nil {
			t.Errorf("CompileRegex(%q) = %v, nil; want error", tt.pat, re)
			continue
		}
		var rerr *RegexError
		if !errors.As(err, &rerr) {
			t.Errorf("CompileRegex(%q) error %T, want *RegexError", tt.pat, err)
			continue
		}
		if rerr.Offset != tt.offset || !strings.Contains(rerr.Msg, tt.msg) {
			t.Errorf("CompileRegex(%q) = %q (offset %d), want offset %d and %q", tt.pat, err, rerr.Offset, tt.offset, tt.msg)
		}
		if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
			t.Errorf("CompileRegex(%q) error %q starts upper-case", tt.pat, msg)
		}
	}
}

func TestRequiredLiteral(t *testing.T) {
	tests := []struct{ pat, want string }{
		{`gender=f`, "gender=f"},
		{`^age=\d`, "age="},
		{`lang=(en|de)`, "lang="},
		{`(abc)+x`, "abc"},
		{`a|b`, ""},
		{`x?yz`, "yz"},
		{`rating=4\.[5-9]`, "rating=4."},
		{`(ab){2}c`, "ab"},
		{`.*`, ""},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.pat)
		if got := requiredLiteral(re); got != tt.want {
			t.Errorf("requiredLiteral(%q) = %q, want %q", tt.pat, got, tt.want)
		}
	}
}

func FuzzCompileRegex(f *testing.F) {
	for _, s := range []string{`gender=f`, `^a\d{2,3}$`, `[^a-z]+|\u00e9`, `(?i)x`, `\b`, `a**`, `[[:x:]]`, `((a))`, `\x4g`} {
		f.Add(s, "age=42;gender=f")
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		re, err := CompileRegex(pat)
		if err != nil {
			var rerr *RegexError
			if !errors.As(err, &rerr) {
				t.Fatalf("CompileRegex(%q) error %T, want *RegexError", pat, err)
			}
			if rerr.Offset >= len(pat) {
				t.Fatalf("CompileRegex(%q) error offset %d beyond the pattern", pat, rerr.Offset)
			}
			return
		}
		if strings.Contains(re.String(), "(?") {
			t.Fatalf("CompileRegex(%q) accepted a group flag: %q", pat, re.String())
		}
		got := re.MatchString(s)
		if lit := requiredLiteral(re); got && !strings.Contains(s, lit) {
			t.Fatalf("CompileRegex(%q) matches %q, which lacks the required literal %q", pat, s, lit)
		}
	})
}
