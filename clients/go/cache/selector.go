package cache

// Kubernetes label selectors: parsing and matching, as kubectl and the apiserver do them
// (k8s.io/apimachinery/pkg/labels, Parse), the same rules as the Python client's:
//
//	selector     = "" | requirement ( "," requirement )*
//	requirement  = [ "!" ] KEY                          exists / does not exist
//	             | KEY ( "=" | "==" | "!=" ) [ VALUE ]  equality (an absent VALUE is "")
//	             | KEY ( "in" | "notin" ) "(" [ VALUE ( "," VALUE )* ] ")"
//	             | KEY ( ">" | "<" ) INTEGER
//
// Keys are qualified names (an optional DNS-subdomain prefix and "/", then up to 63 characters
// of [A-Za-z0-9-_.] starting and ending alphanumeric); values are empty or up to 63 such
// characters. "!=" and "notin" match objects without the label; "in", "=", ">" and "<" need it.
// Whitespace between tokens is ignored. A malformed selector is a *SelectorError whose message
// quotes the selector and names the offending part and where it is.

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Operator is a requirement's operator, spelt as in the selector.
type Operator string

const (
	Exists       Operator = "exists"
	DoesNotExist Operator = "!"
	Equals       Operator = "="
	DoubleEquals Operator = "=="
	NotEquals    Operator = "!="
	In           Operator = "in"
	NotIn        Operator = "notin"
	GreaterThan  Operator = ">"
	LessThan     Operator = "<"
)

// SelectorError is a label selector that does not parse.
type SelectorError struct{ Message string }

func (e *SelectorError) Error() string { return e.Message }

// Requirement is one comma-separated part of a selector.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string // sorted, distinct
	number   int64
}

// Selector is a parsed label selector: every requirement must match. The zero Selector (and
// Everything()) matches everything.
type Selector struct {
	Requirements []Requirement
}

// Everything matches every object.
func Everything() Selector { return Selector{} }

// Empty reports whether the selector matches everything.
func (s Selector) Empty() bool { return len(s.Requirements) == 0 }

// Matches reports whether labels (nil: no labels) satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for i := range s.Requirements {
		if !s.Requirements[i].Matches(labels) {
			return false
		}
	}
	return true
}

// MatchesObject matches an object's metadata.labels.
func (s Selector) MatchesObject(o *Object) bool {
	if s.Empty() {
		return true
	}
	return s.Matches(o.Labels())
}

func (s Selector) String() string {
	parts := make([]string, len(s.Requirements))
	for i, r := range s.Requirements {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

var int64Pattern = regexp.MustCompile(`^[+-]?[0-9]+$`)

func (r *Requirement) has(value string) bool {
	for _, v := range r.Values {
		if v == value {
			return true
		}
	}
	return false
}

// Matches reports whether labels satisfy the requirement.
func (r *Requirement) Matches(labels map[string]string) bool {
	value, present := labels[r.Key]
	switch r.Operator {
	case Exists:
		return present
	case DoesNotExist:
		return !present
	case Equals, DoubleEquals, In:
		return present && r.has(value)
	case NotEquals, NotIn:
		return !present || !r.has(value)
	case GreaterThan, LessThan:
		// The label must be an integer (the apiserver's rule: otherwise no match).
		if !present || !int64Pattern.MatchString(value) {
			return false
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		if r.Operator == GreaterThan {
			return n > r.number
		}
		return n < r.number
	}
	return false
}

func (r Requirement) String() string {
	switch r.Operator {
	case Exists:
		return r.Key
	case DoesNotExist:
		return "!" + r.Key
	case In, NotIn:
		return fmt.Sprintf("%s %s (%s)", r.Key, r.Operator, strings.Join(r.Values, ","))
	}
	return r.Key + string(r.Operator) + r.Values[0]
}

// NewRequirement checks and builds one requirement (labels.NewRequirement).
func NewRequirement(key string, op Operator, values []string) (Requirement, error) {
	set := map[string]bool{}
	for _, v := range values {
		set[v] = true
	}
	r := Requirement{Key: key, Operator: op}
	for v := range set {
		r.Values = append(r.Values, v)
	}
	sort.Strings(r.Values)
	if problem := qualifiedNameProblem(key); problem != "" {
		return r, &SelectorError{fmt.Sprintf("invalid label key %q: %s", key, problem)}
	}
	switch op {
	case In, NotIn:
		if len(r.Values) == 0 {
			return r, &SelectorError{"for 'in', 'notin' operators, values set can't be empty"}
		}
	case Equals, DoubleEquals, NotEquals:
		if len(r.Values) != 1 {
			return r, &SelectorError{"exact-match compatibility requires one single value"}
		}
	case Exists, DoesNotExist:
		if len(r.Values) != 0 {
			return r, &SelectorError{"values set must be empty for exists and does not exist"}
		}
	case GreaterThan, LessThan:
		if len(r.Values) != 1 {
			return r, &SelectorError{"for '>', '<' operators, exactly one value is required"}
		}
		n, err := strconv.ParseInt(r.Values[0], 10, 64)
		if err != nil || !int64Pattern.MatchString(r.Values[0]) {
			return r, &SelectorError{fmt.Sprintf("for '>', '<' operators, the value must be an integer, not %q", r.Values[0])}
		}
		r.number = n
		return r, nil
	default:
		return r, &SelectorError{fmt.Sprintf("unknown operator %q", op)}
	}
	for _, v := range r.Values {
		if len(v) > 63 {
			return r, &SelectorError{fmt.Sprintf("invalid label value %q at key %q: must be no more than 63 characters", v, key)}
		}
		if !valuePattern.MatchString(v) {
			return r, &SelectorError{fmt.Sprintf("invalid label value %q at key %q: must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", v, key)}
		}
	}
	return r, nil
}

var (
	namePattern         = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	dnsSubdomainPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	valuePattern        = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
)

func qualifiedNameProblem(key string) string {
	parts := strings.Split(key, "/")
	if len(parts) > 2 {
		return "a qualified name has at most one '/' (an optional prefix, then a name)"
	}
	name := parts[len(parts)-1]
	if len(parts) == 2 {
		prefix := parts[0]
		switch {
		case prefix == "":
			return "prefix part must be non-empty"
		case len(prefix) > 253:
			return "prefix part must be no more than 253 characters"
		case !dnsSubdomainPattern.MatchString(prefix):
			return "prefix part must be a lowercase DNS subdomain (a-z, 0-9, '-' and '.', starting and ending alphanumeric)"
		}
	}
	switch {
	case name == "":
		return "name part must be non-empty"
	case len(name) > 63:
		return "name part must be no more than 63 characters"
	case !namePattern.MatchString(name):
		return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
	}
	return ""
}

// ParseSelector parses kubectl's label-selector syntax (labels.Parse).
func ParseSelector(text string) (Selector, error) {
	p := &parser{text: text, tokens: lex(text)}
	return p.parse()
}

// MustParseSelector is ParseSelector that panics on an error (for constant selectors).
func MustParseSelector(text string) Selector {
	s, err := ParseSelector(text)
	if err != nil {
		panic(err)
	}
	return s
}

// Tokens: the symbols themselves, "in", "notin", identifier and end.
const (
	tokIdentifier = "identifier"
	tokEnd        = "end of string"
)

type token struct {
	kind, literal string
	position      int
}

var symbols = []string{"!=", "==", "!", "=", "(", ")", ",", ">", "<"} // longest first

func isSpecial(c byte) bool { return strings.IndexByte("!=(),<>", c) >= 0 }
func isSpace(c byte) bool   { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func lex(text string) []token {
	var tokens []token
	i, n := 0, len(text)
	for {
		for i < n && isSpace(text[i]) {
			i++
		}
		if i == n {
			return append(tokens, token{tokEnd, "", n})
		}
		if isSpecial(text[i]) {
			for _, s := range symbols {
				if strings.HasPrefix(text[i:], s) {
					tokens = append(tokens, token{s, s, i})
					i += len(s)
					break
				}
			}
			continue
		}
		start := i
		for i < n && !isSpecial(text[i]) && !isSpace(text[i]) {
			i++
		}
		word := text[start:i]
		kind := tokIdentifier
		if word == "in" || word == "notin" {
			kind = word
		}
		tokens = append(tokens, token{kind, word, start})
	}
}

type parser struct {
	text   string
	tokens []token
	index  int
}

type parseFailure struct{ err *SelectorError }

func describe(t token) string {
	if t.kind == tokEnd {
		return "end of string"
	}
	return "'" + t.literal + "'"
}

func (p *parser) fail(position int, format string, args ...interface{}) {
	panic(parseFailure{&SelectorError{fmt.Sprintf("invalid label selector %q: %s (at character %d)",
		p.text, fmt.Sprintf(format, args...), position)}})
}

func (p *parser) peek() token { return p.tokens[p.index] }

func (p *parser) consume() token {
	t := p.tokens[p.index]
	if t.kind != tokEnd {
		p.index++
	}
	return t
}

func (p *parser) parse() (selector Selector, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(parseFailure)
			if !ok {
				panic(r)
			}
			selector, err = Selector{}, f.err
		}
	}()
	if p.peek().kind == tokEnd {
		return Selector{}, nil
	}
	var requirements []Requirement
	for {
		t := p.peek()
		if t.kind != tokIdentifier && t.kind != string(DoesNotExist) {
			p.fail(t.position, "found %s, expected: !, identifier, or end of string", describe(t))
		}
		requirements = append(requirements, p.requirement())
		t = p.consume()
		if t.kind == tokEnd {
			return Selector{Requirements: requirements}, nil
		}
		if t.kind != "," {
			p.fail(t.position, "found %s, expected: ',' or end of string", describe(t))
		}
		if t = p.peek(); t.kind != tokIdentifier && t.kind != string(DoesNotExist) {
			p.fail(t.position, "found %s, expected: identifier after ','", describe(t))
		}
	}
}

func (p *parser) requirement() Requirement {
	start := p.peek().position
	var op Operator
	if p.peek().kind == string(DoesNotExist) {
		p.consume()
		op = DoesNotExist
	}
	t := p.consume()
	if t.kind != tokIdentifier {
		p.fail(t.position, "found %s, expected: identifier", describe(t))
	}
	key := t.literal
	if next := p.peek(); next.kind == tokEnd || next.kind == "," {
		if op == "" {
			op = Exists
		}
		return p.make(key, op, nil, start)
	}
	if op == DoesNotExist {
		next := p.peek()
		p.fail(next.position, "found %s, expected: ',' or end of string after '!%s'", describe(next), key)
	}
	t = p.consume()
	switch Operator(t.kind) {
	case Equals, DoubleEquals, NotEquals, In, NotIn, GreaterThan, LessThan:
		op = Operator(t.kind)
	default:
		p.fail(t.position, "found %s after key %q, expected one of: '=', '==', '!=', 'in', 'notin', '>', '<'", describe(t), key)
	}
	var values []string
	if op == In || op == NotIn {
		values = p.setValues()
	} else {
		values = p.exactValue()
	}
	return p.make(key, op, values, start)
}

func (p *parser) make(key string, op Operator, values []string, start int) Requirement {
	r, err := NewRequirement(key, op, values)
	if err != nil {
		p.fail(start, "%s", err.Error())
	}
	return r
}

func (p *parser) exactValue() []string {
	t := p.peek()
	if t.kind == tokEnd || t.kind == "," {
		return []string{""}
	}
	p.consume()
	if t.kind != tokIdentifier {
		p.fail(t.position, "found %s, expected: a value (identifier)", describe(t))
	}
	return []string{t.literal}
}

func (p *parser) setValues() []string {
	t := p.consume()
	if t.kind != "(" {
		p.fail(t.position, "found %s, expected: '('", describe(t))
	}
	t = p.peek()
	if t.kind == ")" { // "()": the apiserver reads it as the set {""}
		p.consume()
		return []string{""}
	}
	if t.kind != tokIdentifier && t.kind != "," {
		p.fail(t.position, "found %s, expected: ',', ')' or identifier", describe(t))
	}
	var values []string
	expectValue := true
	for {
		t = p.consume()
		switch {
		case t.kind == tokIdentifier && expectValue:
			values = append(values, t.literal)
			expectValue = false
		case t.kind == ",":
			if expectValue { // "(,", ",,": an empty value, as the apiserver reads it
				values = append(values, "")
			}
			expectValue = true
		case t.kind == ")":
			if expectValue { // ",)"
				values = append(values, "")
			}
			return values
		default:
			p.fail(t.position, "found %s, expected: ',' or ')'", describe(t))
		}
	}
}
