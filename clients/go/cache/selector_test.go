package cache

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func matches(t *testing.T, selector string, labels map[string]string) bool {
	t.Helper()
	s, err := ParseSelector(selector)
	if err != nil {
		t.Fatalf("ParseSelector(%q): %v", selector, err)
	}
	return s.Matches(labels)
}

type selectorCase struct {
	selector string
	labels   map[string]string
	want     bool
}

func checkCases(t *testing.T, cases []selectorCase) {
	t.Helper()
	for _, c := range cases {
		if got := matches(t, c.selector, c.labels); got != c.want {
			t.Errorf("%q on %v: %v, want %v", c.selector, c.labels, got, c.want)
		}
	}
}

func TestSelectorEqualityBased(t *testing.T) {
	checkCases(t, []selectorCase{
		{"app=web", map[string]string{"app": "web"}, true},
		{"app==web", map[string]string{"app": "web", "x": "y"}, true},
		{"app=web", map[string]string{"app": "db"}, false},
		{"app=web", nil, false},
		{"app!=web", map[string]string{"app": "db"}, true},
		{"app!=web", nil, true}, // != matches an absent label
		{"app!=web", map[string]string{"app": "web"}, false},
		{"app=", map[string]string{"app": ""}, true},
		{"app=", nil, false},
	})
}

func TestSelectorSetBased(t *testing.T) {
	checkCases(t, []selectorCase{
		{"env in (prod, qa)", map[string]string{"env": "qa"}, true},
		{"env in (prod,qa)", map[string]string{"env": "dev"}, false},
		{"env in (prod,qa)", nil, false},
		{"env notin (prod,qa)", map[string]string{"env": "dev"}, true},
		{"env notin (prod,qa)", nil, true}, // notin matches an absent label
		{"env notin (prod)", map[string]string{"env": "prod"}, false},
		{"canary", map[string]string{"canary": ""}, true},
		{"canary", nil, false},
		{"!canary", nil, true},
		{"!canary", map[string]string{"canary": "true"}, false},
		{"replicas>2", map[string]string{"replicas": "3"}, true},
		{"replicas>2", map[string]string{"replicas": "2"}, false},
		{"replicas>2", map[string]string{"replicas": "many"}, false},
		{"replicas<2", map[string]string{"replicas": "-1"}, true},
		{"", map[string]string{"anything": "x"}, true},
	})
}

func TestSelectorSeveralRequirementsAllMatchAndWhitespaceIsFree(t *testing.T) {
	selector := " app = web ,  tier notin(db) , !canary,example.com/team in (a,b)"
	checkCases(t, []selectorCase{
		{selector, map[string]string{"app": "web", "example.com/team": "a"}, true},
		{selector, map[string]string{"app": "web", "example.com/team": "a", "canary": "1"}, false},
		{selector, map[string]string{"app": "web", "example.com/team": "c"}, false},
	})
	if s := MustParseSelector("a in (y,x),!b,c!=d").String(); s != "a in (x,y),!b,c!=d" {
		t.Fatalf("String: %q", s)
	}
}

func TestSelectorEmptyValueSetsReadAsTheApiserverReadsThem(t *testing.T) {
	for text, want := range map[string][]string{
		"a in ()": {""}, "a in (,x)": {"", "x"}, "a in (x,)": {"", "x"},
	} {
		if got := MustParseSelector(text).Requirements[0].Values; !reflect.DeepEqual(got, want) {
			t.Errorf("%q: values %q, want %q", text, got, want)
		}
	}
}

func TestBadSelectorsNameTheOffendingPart(t *testing.T) {
	cases := map[string]string{
		"app=web,":                     "found end of string, expected: identifier after ','",
		"a in (b":                      "found end of string, expected: ',' or ')'",
		"a in b":                       "found 'b', expected: '('",
		"a b":                          `found 'b' after key "a", expected one of`,
		"in=5":                         "found 'in', expected: !, identifier",
		"a=b=c":                        "found '=', expected: ',' or end of string",
		"!a=b":                         "after '!a'",
		"a>x":                          `the value must be an integer, not "x"`,
		"a>":                           `the value must be an integer, not ""`,
		"-bad=x":                       `invalid label key "-bad"`,
		"a=-x":                         `invalid label value "-x" at key "a"`,
		"a/b/c=x":                      `invalid label key "a/b/c"`,
		"Example.com/a=x":              `invalid label key "Example.com/a": prefix part`,
		"a=" + strings.Repeat("v", 64): "must be no more than 63 characters",
		strings.Repeat("k", 64) + "=v": "name part must be no more than 63 characters",
		",a":                           "found ',', expected",
		"a in (x y)":                   "found 'y', expected: ',' or ')'",
		"a=(b)":                        "found '(', expected: a value",
	}
	for text, want := range cases {
		_, err := ParseSelector(text)
		if err == nil {
			t.Errorf("%q parsed", text)
			continue
		}
		if _, ok := err.(*SelectorError); !ok {
			t.Errorf("%q: %T, not *SelectorError", text, err)
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", text)) {
			t.Errorf("%q: %q does not name %q and quote the selector", text, err, want)
		}
	}
	if _, err := ParseSelector("a in (b"); !strings.Contains(err.Error(), "at character 7") {
		t.Errorf("no position: %v", err)
	}
}
