package search

import (
	"strings"
	"testing"
)

func TestParseWildcard(t *testing.T) {
	tests := []struct {
		pat  string
		kind wildKind
		core string
	}{
		{"", wildAll, ""},
		{"*", wildAll, ""},
		{"**", wildAll, ""},
		{"ab", wildExact, "ab"},
		{"AB", wildExact, "ab"},
		{"ab*", wildPrefix, "ab"},
		{"*ab", wildSuffix, "ab"},
		{"*ab*", wildInfix, "ab"},
		{"a*b", wildExact, "a*b"},
		{"ab**", wildPrefix, "ab*"},
		{"**ab", wildSuffix, "*ab"},
		{"***", wildInfix, "*"},
		{"ŽOFIA*", wildPrefix, "žofia"},
	}
	for _, tt := range tests {
		w, err := ParseWildcard(tt.pat)
		if err != nil {
			t.Errorf("ParseWildcard(%q) error %v", tt.pat, err)
			continue
		}
		if w.kind != tt.kind || w.pat != tt.core {
			t.Errorf("ParseWildcard(%q) = kind %d core %q, want kind %d core %q", tt.pat, w.kind, w.pat, tt.kind, tt.core)
		}
		if w.String() != tt.pat {
			t.Errorf("ParseWildcard(%q).String() = %q", tt.pat, w.String())
		}
	}
	if _, err := ParseWildcard(strings.Repeat("a", MaxWildcardLen+1)); err == nil {
		t.Errorf("ParseWildcard(65 bytes) succeeded, want error")
	}
	if _, err := ParseWildcard(strings.Repeat("a", MaxWildcardLen)); err != nil {
		t.Errorf("ParseWildcard(64 bytes) = %v, want nil", err)
	}
}

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"", "anything", true},
		{"*", "", true},
		{"chat/user", "Chat/User", true},
		{"chat/user", "chat/users", false},
		{"chat/*", "CHAT/driver", true},
		{"chat/*", "taxi/chat", false},
		{"*/driver", "taxi/Driver", true},
		{"*/driver", "taxi/driver2", false},
		{"*xi/dr*", "taxi/driver", true},
		{"*xi/dr*", "taxi/passenger", false},
		{"a*b", "a*b", true},
		{"a*b", "axb", false},
		{"a*b*", "A*Bcd", true},
		{"*ř*", "JiŘí", true},
		{"jiří", "JIŘÍ", true},
		{"**", "", true},
		{"***", "a*b", true},
		{"***", "ab", false},
	}
	for _, tt := range tests {
		w := MustParseWildcard(tt.pat)
		if got := w.Match(tt.s); got != tt.want {
			t.Errorf("ParseWildcard(%q).Match(%q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
		if got := w.MatchLower(strings.ToLower(tt.s)); got != tt.want {
			t.Errorf("ParseWildcard(%q).MatchLower(%q) = %v, want %v", tt.pat, strings.ToLower(tt.s), got, tt.want)
		}
	}
	var zero Wildcard
	if !zero.Match("x") || !zero.IsAll() {
		t.Errorf("zero Wildcard does not match everything")
	}
}

func FuzzParseWildcard(f *testing.F) {
	for _, s := range []string{"", "*", "ab*", "*ab", "*a*b*", "a*b", "ŽO*", "\xff*"} {
		f.Add(s, "abc")
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		w, err := ParseWildcard(pat)
		if err != nil {
			if len(pat) <= MaxWildcardLen {
				t.Fatalf("ParseWildcard(%q) = %v", pat, err)
			}
			return
		}
		got := w.Match(s)
		// Reference: strip one leading and one trailing star and compare.
		lp, ls := strings.ToLower(pat), strings.ToLower(s)
		var want bool
		switch {
		case pat == "" || pat == "*":
			want = true
		case len(pat) >= 2 && pat[0] == '*' && pat[len(pat)-1] == '*':
			want = strings.Contains(ls, lp[1:len(lp)-1])
		case pat[0] == '*':
			want = strings.HasSuffix(ls, lp[1:])
		case pat[len(pat)-1] == '*':
			want = strings.HasPrefix(ls, lp[:len(lp)-1])
		default:
			want = ls == lp
		}
		if got != want {
			t.Fatalf("ParseWildcard(%q).Match(%q) = %v, want %v", pat, s, got, want)
		}
	})
}
