"""Kubernetes label selectors: parsing and matching, as kubectl and the apiserver do them.

The grammar and the checks follow k8s.io/apimachinery/pkg/labels/selector.go (labels.Parse):

    selector     = "" | requirement ( "," requirement )*
    requirement  = [ "!" ] KEY                          exists / does not exist
                 | KEY ( "=" | "==" | "!=" ) [ VALUE ]  equality (an absent VALUE is "")
                 | KEY ( "in" | "notin" ) "(" [ VALUE ( "," VALUE )* ] ")"
                 | KEY ( ">" | "<" ) INTEGER

Keys are qualified names (an optional DNS-subdomain prefix and "/", then up to 63 characters of
[A-Za-z0-9-_.] starting and ending alphanumeric); values are empty or up to 63 such characters.
`!=` and `notin` match objects without the label; `in`, `=`, `>` and `<` need it. Whitespace
between tokens is ignored. A malformed selector raises SelectorError, whose message quotes the
selector and names the offending part and where it is.

Used by Store.list(label_selector=...); informerd applies the same syntax on the server side.
"""
import re

__all__ = ["Requirement", "Selector", "SelectorError", "parse_label_selector"]


class SelectorError(ValueError):
    """A label selector that does not parse; the message names the offending part."""


# Operators, by the token that spells them.
EXISTS, DOES_NOT_EXIST = "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN = "in", "notin"
GREATER_THAN, LESS_THAN = ">", "<"

_SYMBOLS = ("!=", "==", "!", "=", "(", ")", ",", ">", "<")
_SPECIAL = set("!=(),<>")
_WHITESPACE = set(" \t\r\n")
_IDENTIFIER, _END = "identifier", "end of string"

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_INT64 = re.compile(r"^[+-]?[0-9]+$")


class Requirement:
    """One comma-separated part of a selector: a key, an operator and a set of values."""

    def __init__(self, key, operator, values=()):
        self.key, self.operator, self.values = key, operator, frozenset(values)
        self._number = None
        _validate_requirement(self)
        if operator in (GREATER_THAN, LESS_THAN):
            self._number = int(next(iter(self.values)))

    def matches(self, labels):
        present = self.key in labels
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (EQUALS, DOUBLE_EQUALS, IN):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_EQUALS, NOT_IN):
            return not present or labels[self.key] not in self.values
        # > and <: the label must be an integer (the apiserver's rule: otherwise no match).
        if not present or not _INT64.match(labels[self.key]):
            return False
        value = int(labels[self.key])
        return value > self._number if self.operator == GREATER_THAN else value < self._number

    def __eq__(self, other):
        return (isinstance(other, Requirement) and
                (self.key, self.operator, self.values) == (other.key, other.operator, other.values))

    def __hash__(self):
        return hash((self.key, self.operator, self.values))

    def __repr__(self):
        return "Requirement(%r, %r, %r)" % (self.key, self.operator, sorted(self.values))

    def __str__(self):
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator in (IN, NOT_IN):
            return "%s %s (%s)" % (self.key, self.operator, ",".join(sorted(self.values)))
        return "%s%s%s" % (self.key, self.operator, next(iter(self.values)))


class Selector:
    """A parsed label selector: every requirement must match. The empty selector matches all."""

    def __init__(self, requirements=()):
        self.requirements = tuple(requirements)

    def matches(self, labels):
        """`labels`: a dict of label key to value (None counts as no labels)."""
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj):
        return self.matches((obj.get("metadata") or {}).get("labels") or {})

    def empty(self):
        return not self.requirements

    def __eq__(self, other):
        return isinstance(other, Selector) and self.requirements == other.requirements

    def __repr__(self):
        return "Selector(%r)" % (list(self.requirements),)

    def __str__(self):
        return ",".join(str(r) for r in self.requirements)


def parse_label_selector(text):
    """Parses kubectl's label-selector syntax; raises SelectorError naming the offending part."""
    if isinstance(text, Selector):
        return text
    if text is None:
        return Selector()
    return _Parser(text).parse()


def _describe(token, literal):
    return "end of string" if token == _END else "'%s'" % literal


class _Parser:
    def __init__(self, text):
        self.text = text
        self.tokens = list(_lex(text))  # (token, literal, position)
        self.index = 0

    def fail(self, message, position=None):
        if position is None:
            position = self.tokens[min(self.index, len(self.tokens) - 1)][2]
        raise SelectorError("invalid label selector %r: %s (at character %d)" % (
            self.text, message, position))

    def peek(self):
        return self.tokens[self.index]

    def consume(self):
        token = self.tokens[self.index]
        if token[0] != _END:
            self.index += 1
        return token

    def parse(self):
        requirements = []
        token, literal, _ = self.peek()
        if token == _END:
            return Selector()
        while True:
            token, literal, _ = self.peek()
            if token not in (_IDENTIFIER, DOES_NOT_EXIST):
                self.fail("found %s, expected: !, identifier, or end of string"
                          % _describe(token, literal))
            requirements.append(self.requirement())
            token, literal, position = self.consume()
            if token == _END:
                return Selector(requirements)
            if token != ",":
                self.fail("found %s, expected: ',' or end of string" % _describe(token, literal),
                          position)
            token, literal, _ = self.peek()
            if token not in (_IDENTIFIER, DOES_NOT_EXIST):
                self.fail("found %s, expected: identifier after ','" % _describe(token, literal))

    def requirement(self):
        start = self.peek()[2]
        operator = None
        if self.peek()[0] == DOES_NOT_EXIST:
            self.consume()
            operator = DOES_NOT_EXIST
        token, key, position = self.consume()
        if token != _IDENTIFIER:
            self.fail("found %s, expected: identifier" % _describe(token, key), position)
        if self.peek()[0] in (_END, ","):
            return self._make(key, operator or EXISTS, (), start)
        if operator == DOES_NOT_EXIST:
            token, literal, position = self.peek()
            self.fail("found %s, expected: ',' or end of string after '!%s'"
                      % (_describe(token, literal), key), position)
        token, literal, position = self.consume()
        if token not in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS, IN, NOT_IN, GREATER_THAN, LESS_THAN):
            self.fail("found %s after key %r, expected one of: '=', '==', '!=', 'in', 'notin', "
                      "'>', '<'" % (_describe(token, literal), key), position)
        operator = token
        values = self.set_values() if operator in (IN, NOT_IN) else self.exact_value()
        return self._make(key, operator, values, start)

    def _make(self, key, operator, values, start):
        try:
            return Requirement(key, operator, values)
        except SelectorError as error:
            self.fail(str(error), start)

    def exact_value(self):
        token, literal, position = self.peek()
        if token in (_END, ","):
            return {""}
        self.consume()
        if token != _IDENTIFIER:
            self.fail("found %s, expected: a value (identifier)" % _describe(token, literal),
                      position)
        return {literal}

    def set_values(self):
        token, literal, position = self.consume()
        if token != "(":
            self.fail("found %s, expected: '('" % _describe(token, literal), position)
        values = set()
        token, literal, position = self.peek()
        if token == ")":  # "()": the apiserver reads it as the set {""}
            self.consume()
            return {""}
        if token not in (_IDENTIFIER, ","):
            self.fail("found %s, expected: ',', ')' or identifier" % _describe(token, literal),
                      position)
        expect_value = True
        while True:
            token, literal, position = self.consume()
            if token == _IDENTIFIER and expect_value:
                values.add(literal)
                expect_value = False
            elif token == ",":
                if expect_value:  # "(,", ",,": an empty value, as the apiserver reads it
                    values.add("")
                expect_value = True
            elif token == ")":
                if expect_value:  # ",)"
                    values.add("")
                return values
            else:
                self.fail("found %s, expected: ',' or ')'" % _describe(token, literal),
                          position)


def _lex(text):
    """Yields (token, literal, position); the last is (_END, "", len(text))."""
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i == n:
            yield _END, "", n
            return
        if text[i] in _SPECIAL:
            for symbol in _SYMBOLS:  # longest first where one is a prefix of another
                if text.startswith(symbol, i):
                    yield symbol, symbol, i
                    i += len(symbol)
                    break
            continue
        start = i
        while i < n and text[i] not in _SPECIAL and text[i] not in _WHITESPACE:
            i += 1
        word = text[start:i]
        yield (word if word in (IN, NOT_IN) else _IDENTIFIER), word, start


def _validate_requirement(requirement):
    key, operator, values = requirement.key, requirement.operator, requirement.values
    problem = _qualified_name_problem(key)
    if problem:
        raise SelectorError("invalid label key %r: %s" % (key, problem))
    if operator in (IN, NOT_IN):
        if not values:
            raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            raise SelectorError("exact-match compatibility requires one single value")
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if values:
            raise SelectorError("values set must be empty for exists and does not exist")
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            raise SelectorError("for '>', '<' operators, exactly one value is required")
        value = next(iter(values))
        if not _INT64.match(value) or not -2**63 <= int(value) < 2**63:
            raise SelectorError("for '>', '<' operators, the value must be an integer, not %r"
                                % value)
        return
    else:
        raise SelectorError("unknown operator %r" % operator)
    for value in values:
        if len(value) > 63:
            raise SelectorError("invalid label value %r at key %r: must be no more than 63 "
                                "characters" % (value, key))
        if not _VALUE.match(value):
            raise SelectorError("invalid label value %r at key %r: must be empty or consist of "
                                "alphanumeric characters, '-', '_' or '.', and must start and "
                                "end with an alphanumeric character" % (value, key))


def _qualified_name_problem(key):
    parts = key.split("/")
    if len(parts) > 2:
        return "a qualified name has at most one '/' (an optional prefix, then a name)"
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > 253:
            return "prefix part must be no more than 253 characters"
        if not _DNS_SUBDOMAIN.match(prefix):
            return ("prefix part must be a lowercase DNS subdomain (a-z, 0-9, '-' and '.', "
                    "starting and ending alphanumeric)")
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character")
    return None
