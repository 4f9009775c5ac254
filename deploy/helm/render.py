#!/usr/bin/python3
"""Renders deploy/helm/informerd without helm: `helm template` for the subset of Go templates the
chart uses. helm is not in Debian and these machines reach no other archive, so the tests render
the chart with this script and apply the result to a real kube-apiserver.

    deploy/helm/render.py CHART_DIR [-f VALUES.yaml]... [--release-name NAME] [--namespace NS]
                          [--api-versions GROUP/VERSION]...

prints every template under CHART_DIR/templates/*.yaml (sorted by name, files starting with "_"
skipped, like helm) as YAML documents, each headed by `# Source: CHART/templates/FILE`.

What it implements (text/template + the Sprig/Helm functions the chart calls):
  {{ pipeline }}                 .Values.a.b  .Release.Name  .Release.Namespace  .Chart.AppVersion
                                 .Capabilities.APIVersions.Has "group/version"
                                 .  $  $var  $var.field  "string"  123  true false  ( pipeline )
  {{- ... -}}                    whitespace trimming;  {{/* comment */}}
  {{ if P }} {{ else if P }} {{ else }} {{ end }}
  {{ range P }} / {{ range $v := P }} / {{ range $i, $v := P }} ... {{ else }} ... {{ end }}
  {{ $x := P }}  {{ $x = P }}   variables, scoped to the enclosing block as in Go
  functions: quote default required toYaml nindent indent not and or eq ne gt int contains
             splitn list sha256sum fail
Anything else ({{ with }}, {{ define }}, {{ include }}, an unknown function) is an error naming
file:line, so a template never silently renders differently here and in Helm.

Deliberate differences from Helm, all stricter: printing an unset value (Helm prints nothing) and
printing a list or map (Helm prints Go's `[a b]` / `map[...]`) are errors; so is output that is not
valid YAML. Numbers print as Helm prints the float64 it reads values into: 1000000 -> 1e+06 (use
toYaml or quote a string for large numbers, in Helm as here). For the same reason `gt` compares
only whole numbers written in the template or made by `int` (`gt (int .Values.replicaCount) 1`):
Go's gt refuses a float64 beside an integer, so `gt .Values.replicaCount 1` fails in Helm.

.Capabilities.APIVersions: Helm asks the cluster (helm install) or assumes a recent one (helm
template). render.py has no cluster: --api-versions lists the cluster's group/versions as
`kubectl api-versions` prints them, and replaces the default set, which is that of a current
Kubernetes (DEFAULT_API_VERSIONS). Has takes a group/version ("policy/v1").
"""
import argparse
import decimal
import hashlib
import os
import re
import sys

import yaml


class RenderError(Exception):
    """A template or values error; the message starts with file:line when one is known."""


class Struct(dict):
    """A Go struct (.Release, .Chart, the root): an unknown field is an error, not nil."""


class _GoInt(int):
    """A Go int: a number written in a template, or `int`'s result. A values file's numbers are
    plain Python ints here but float64s in Helm, and Go's comparisons refuse to mix the two."""


# ---------------------------------------------------------------------------------------------
# Lexing: text and actions.

_TRIM_SPACE = " \t\r\n"


class _Action:
    def __init__(self, source, line, tokens):
        self.source, self.line, self.tokens = source, line, tokens

    def where(self):
        return "%s:%d" % (self.source, self.line)


def _tokenize(body, where):
    """Splits an action's inside into tokens: (kind, text)."""
    tokens, i, n = [], 0, len(body)
    while i < n:
        c = body[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and body[j] != '"':
                j += 2 if body[j] == "\\" else 1
            if j >= n:
                raise RenderError("%s: unterminated string" % where)
            tokens.append(("string", _unquote_go(body[i:j + 1], where)))
            i = j + 1
        elif c == "`":
            j = body.find("`", i + 1)
            if j < 0:
                raise RenderError("%s: unterminated raw string" % where)
            tokens.append(("string", body[i + 1:j]))
            i = j + 1
        elif body.startswith(":=", i):
            tokens.append((":=", ":="))
            i += 2
        elif c in "|(),=":
            tokens.append((c, c))
            i += 1
        elif c == "." or c == "$":
            m = re.compile(r"(\$[A-Za-z0-9_]*|\.)?(\.?[A-Za-z_][A-Za-z0-9_]*)*").match(body, i)
            text = m.group(0)
            if text == "":
                raise RenderError("%s: unexpected %r" % (where, c))
            tokens.append(("var" if c == "$" else "field", text))
            i = m.end()
        elif c.isdigit() or (c == "-" and i + 1 < n and body[i + 1].isdigit()):
            m = re.compile(r"-?\d+(\.\d+)?").match(body, i)
            text = m.group(0)
            tokens.append(("number", float(text) if "." in text else _GoInt(text)))
            i = m.end()
        elif c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(body, i)
            tokens.append(("ident", m.group(0)))
            i = m.end()
        else:
            raise RenderError("%s: unexpected character %r in action" % (where, c))
    return tokens


_GO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b",
               "f": "\f", "v": "\v"}


def _unquote_go(literal, where):
    out, i = [], 1
    while i < len(literal) - 1:
        c = literal[i]
        if c == "\\":
            e = literal[i + 1]
            if e not in _GO_ESCAPES:
                raise RenderError("%s: unsupported escape \\%s in string" % (where, e))
            out.append(_GO_ESCAPES[e])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _lex(text, source):
    """Returns a list of str (text) and _Action items, with {{- -}} trimming applied."""
    items, pos, line = [], 0, 1
    trim_next = False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip(_TRIM_SPACE)
        if start < 0:
            items.append(chunk)
            return items
        line += text.count("\n", pos, start)
        where = "%s:%d" % (source, line)
        inner = start + 2
        if text.startswith("-", inner) and inner + 1 < len(text) and text[inner + 1] in _TRIM_SPACE:
            chunk = chunk.rstrip(_TRIM_SPACE)
            inner += 2
        items.append(chunk)
        # The action ends at the first "}}" outside a string literal (a comment's at "*/}}").
        if re.match(r"[ \t\r\n]*/\*", text[inner:]):
            close = text.find("*/", inner)
            closer = re.compile(r"\*/([ \t\r\n]+-)?\}\}").match(text, close) if close >= 0 else None
            if closer is None:
                raise RenderError("%s: unclosed comment (a comment ends with */}} or */ -}})"
                                  % where)
            body, end, trim_next = None, closer.end(), closer.group(1) is not None
        else:
            close, i, quote = None, inner, None
            while i < len(text):
                c = text[i]
                if quote:
                    if c == "\\" and quote == '"':
                        i += 1
                    elif c == quote:
                        quote = None
                elif c in "\"`":
                    quote = c
                elif text.startswith("}}", i):
                    close = i
                    break
                i += 1
            if close is None:
                raise RenderError("%s: unclosed action (no matching }})" % where)
            body, end, trim_next = text[inner:close], close + 2, False
            if body.endswith("-") and (len(body) == 1 or body[-2] in _TRIM_SPACE):
                body, trim_next = body[:-1], True
        if body is not None:
            items.append(_Action(source, line, _tokenize(body, where)))
        line += text.count("\n", start, end)
        pos = end


# ---------------------------------------------------------------------------------------------
# Parsing: a tree of nodes.

class _Text:
    def __init__(self, text):
        self.text = text


class _Output:
    def __init__(self, action, pipeline):
        self.action, self.pipeline = action, pipeline


class _Assign:
    def __init__(self, action, name, pipeline, declare):
        self.action, self.name, self.pipeline, self.declare = action, name, pipeline, declare


class _If:
    def __init__(self, action):
        self.action, self.branches, self.otherwise = action, [], None


class _Range:
    def __init__(self, action, key_var, value_var, pipeline):
        self.action, self.pipeline = action, pipeline
        self.key_var, self.value_var = key_var, value_var
        self.body, self.otherwise = None, None


_UNSUPPORTED_ACTIONS = ("with", "define", "template", "block", "break", "continue")


def _parse(items):
    """Builds the node tree; returns the top-level node list."""
    position = [0]

    def parse_list(stop_at, opener=None):
        nodes = []
        while position[0] < len(items):
            item = items[position[0]]
            position[0] += 1
            if isinstance(item, str):
                if item:
                    nodes.append(_Text(item))
                continue
            tokens = item.tokens
            word = tokens[0][1] if tokens and tokens[0][0] == "ident" else None
            if word in ("end", "else"):
                if word not in stop_at:
                    raise RenderError("%s: unexpected {{ %s }}" % (item.where(), word))
                return nodes, item
            if word == "if":
                node = _If(item)
                condition = _parse_pipeline(tokens[1:], item)
                while True:
                    body, closer = parse_list(("end", "else"), item)
                    node.branches.append((condition, body))
                    if closer.tokens[0][1] == "end":
                        _expect_bare(closer)
                        break
                    rest = closer.tokens[1:]
                    if rest and rest[0] == ("ident", "if"):
                        condition = _parse_pipeline(rest[1:], closer)
                        continue
                    _expect_bare(closer)
                    node.otherwise, closer = parse_list(("end",), item)
                    _expect_bare(closer)
                    break
                nodes.append(node)
            elif word == "range":
                node = _parse_range_header(item)
                node.body, closer = parse_list(("end", "else"), item)
                _expect_bare(closer)
                if closer.tokens[0][1] == "else":
                    node.otherwise, closer = parse_list(("end",), item)
                    _expect_bare(closer)
                nodes.append(node)
            elif word in _UNSUPPORTED_ACTIONS:
                raise RenderError("%s: {{ %s }} is not supported by render.py (supported: if, "
                                  "else, range, end, variables, pipelines)" % (item.where(), word))
            elif not tokens:
                raise RenderError("%s: empty action" % item.where())
            elif len(tokens) >= 2 and tokens[0][0] == "var" and tokens[1][0] in (":=", "="):
                if "." in tokens[0][1]:
                    raise RenderError("%s: cannot assign to %s" % (item.where(), tokens[0][1]))
                nodes.append(_Assign(item, tokens[0][1], _parse_pipeline(tokens[2:], item),
                                     tokens[1][0] == ":="))
            else:
                nodes.append(_Output(item, _parse_pipeline(tokens, item)))
        if stop_at:
            raise RenderError("%s: {{ %s }} has no matching {{ end }}"
                              % (opener.where(), opener.tokens[0][1]))
        return nodes, None

    nodes, _ = parse_list(())
    return nodes


def _expect_bare(closer):
    if len(closer.tokens) != 1:
        raise RenderError("%s: unexpected words after {{ %s }}"
                          % (closer.where(), closer.tokens[0][1]))


def _parse_range_header(item):
    tokens = item.tokens[1:]
    key_var = value_var = None
    if ":=" in [kind for kind, _ in tokens]:
        split = [kind for kind, _ in tokens].index(":=")
        names = tokens[:split]
        if len(names) == 1 and names[0][0] == "var":
            value_var = names[0][1]
        elif [kind for kind, _ in names] == ["var", ",", "var"]:
            key_var, value_var = names[0][1], names[2][1]
        else:
            raise RenderError("%s: range takes $v := or $i, $v :=" % item.where())
        tokens = tokens[split + 1:]
    return _Range(item, key_var, value_var, _parse_pipeline(tokens, item))


def _parse_pipeline(tokens, item):
    """A pipeline is a list of commands; a command is a list of operands (the first may be a
    function name)."""
    if not tokens:
        raise RenderError("%s: missing value in action" % item.where())
    commands, current = [], []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "(":
            depth, j = 1, i + 1
            while j < len(tokens) and depth:
                depth += {"(": 1, ")": -1}.get(tokens[j][0], 0)
                j += 1
            if depth:
                raise RenderError("%s: unclosed (" % item.where())
            current.append(("pipeline", _parse_pipeline(tokens[i + 1:j - 1], item)))
            i = j
            continue
        if kind == ")":
            raise RenderError("%s: unexpected )" % item.where())
        if kind == "|":
            if not current:
                raise RenderError("%s: missing command before |" % item.where())
            commands.append(current)
            current = []
        elif kind in (":=", "=", ","):
            raise RenderError("%s: unexpected %s" % (item.where(), text))
        else:
            current.append((kind, text))
        i += 1
    if not current:
        raise RenderError("%s: missing command after |" % item.where())
    commands.append(current)
    return commands


# ---------------------------------------------------------------------------------------------
# Evaluation.

def _truth(value):
    """text/template's truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float, str, list, dict)):
        return bool(value)
    return True


def _go_number(value):
    """fmt's %v of a float64, which is what Helm holds every number of a values file in."""
    f = float(value)
    if f != f or f in (float("inf"), float("-inf")):
        return {True: "NaN"}.get(f != f, "+Inf" if f > 0 else "-Inf")
    if f == 0:
        return "0"
    sign, digits, exponent = decimal.Decimal(repr(f)).normalize().as_tuple()
    digits = "".join(map(str, digits))
    point = len(digits) + exponent  # digits before the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    # strconv's %g with the shortest precision: %e when the exponent is < -4 or >= 6.
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%s%02d" % (prefix, mantissa, "-" if exp < 0 else "+", abs(exp))
    if point <= 0:
        return prefix + "0." + "0" * -point + digits
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return prefix + digits[:point] + "." + digits[point:]


def _go_string(value, where, what):
    if value is None:
        raise RenderError("%s: %s is unset (Helm would print nothing: a typo in a values key?)"
                          % (where, what))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _go_number(value)
    if isinstance(value, str):
        return value
    raise RenderError("%s: %s is a %s; print it with toYaml" % (
        where, what, "list" if isinstance(value, list) else "map"))


def _go_quote(text):
    out = ['"']
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(c)])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\x%02x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _plain(value):
    """`value` with every _GoInt an int, as PyYAML's safe dumper takes it."""
    if isinstance(value, _GoInt):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _to_yaml(value):
    if value is None:
        return "null"
    text = yaml.safe_dump(_plain(value), default_flow_style=False, sort_keys=True, allow_unicode=True,
                          width=1 << 20)
    if text.endswith("\n...\n"):
        text = text[:-len("...\n")]
    return text[:-1] if text.endswith("\n") else text


def _indent(spaces, text):
    pad = " " * int(spaces)
    return pad + text.replace("\n", "\n" + pad)


def _fn_quote(where, *args):
    return " ".join(_go_quote(_go_string(a, where, "quote's argument"))
                    for a in args if a is not None)


def _fn_default(where, *args):
    if len(args) == 1:
        return args[0]
    if len(args) != 2:
        raise RenderError("%s: default takes a default and a value" % where)
    return args[1] if _truth(args[1]) else args[0]


def _fn_required(where, *args):
    if len(args) != 2:
        raise RenderError("%s: required takes a message and a value" % where)
    if args[1] is None or args[1] == "":
        raise RenderError("%s: %s" % (where, args[0]))
    return args[1]


def _fn_and(where, *args):
    """text/template's and: the first false argument, or the last."""
    if not args:
        raise RenderError("%s: and takes at least one argument" % where)
    return next((a for a in args if not _truth(a)), args[-1])


def _fn_or(where, *args):
    """text/template's or: the first true argument, or the last."""
    if not args:
        raise RenderError("%s: or takes at least one argument" % where)
    return next((a for a in args if _truth(a)), args[-1])


def _fn_splitn(where, separator, count, text):
    """Sprig's splitn: a map {_0: first part, _1: second, ...}."""
    parts = _string_arg(where, text, "splitn").split(
        _string_arg(where, separator, "splitn"), _int_arg(where, count, "splitn") - 1)
    return {"_%d" % i: part for i, part in enumerate(parts)}


def _fn_int(where, value):
    """Sprig's int for what charts give it: a number (truncated) or a decimal string."""
    if isinstance(value, bool) or value is None:
        raise RenderError("%s: int needs a number or a decimal string, got %s" % (
            where, _to_yaml(value)))
    if isinstance(value, (int, float)):
        return _GoInt(int(value))
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return _GoInt(value)
    raise RenderError("%s: int needs a number or a decimal string, got %s" % (
        where, _to_yaml(value)))


def _fn_gt(where, a, b):
    """text/template's gt, for whole numbers (both Go ints) or two floats."""
    if isinstance(a, _GoInt) and isinstance(b, _GoInt):
        return a > b
    if type(a) is float and type(b) is float:
        return a > b
    raise RenderError("%s: gt compares two whole numbers written in the template or made by int "
                      "(got %s and %s); a values file's numbers are float64 in Helm, which Go's gt "
                      "does not compare with an integer: write gt (int .Values.x) 1" % (
                          where, _to_yaml(a), _to_yaml(b)))


def _fn_fail(where, message):
    raise RenderError("%s: fail: %s" % (where, _string_arg(where, message, "fail")))


def _fixed(name, count, function):
    def call(where, *args):
        if len(args) != count:
            raise RenderError("%s: %s takes %d argument%s, got %d" % (
                where, name, count, "" if count == 1 else "s", len(args)))
        return function(where, *args)
    return call


def _string_arg(where, value, name):
    if not isinstance(value, str):
        raise RenderError("%s: %s needs a string, got %s" % (where, name, _to_yaml(value)))
    return value


def _int_arg(where, value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise RenderError("%s: %s needs a whole number, got %r" % (where, name, value))
    return int(value)


FUNCTIONS = {
    "quote": _fn_quote,
    "default": _fn_default,
    "required": _fn_required,
    "toYaml": _fixed("toYaml", 1, lambda where, v: _to_yaml(v)),
    "nindent": _fixed("nindent", 2, lambda where, n, s: "\n" + _indent(
        _int_arg(where, n, "nindent"), _string_arg(where, s, "nindent"))),
    "indent": _fixed("indent", 2, lambda where, n, s: _indent(_int_arg(where, n, "indent"),
                                                  _string_arg(where, s, "indent"))),
    "not": _fixed("not", 1, lambda where, v: not _truth(v)),
    "and": _fn_and,
    "or": _fn_or,
    "eq": _fixed("eq", 2, lambda where, a, b: a == b),
    "ne": _fixed("ne", 2, lambda where, a, b: a != b),
    "gt": _fixed("gt", 2, _fn_gt),
    "int": _fixed("int", 1, _fn_int),
    "sha256sum": _fixed("sha256sum", 1, lambda where, s: hashlib.sha256(
        _string_arg(where, s, "sha256sum").encode()).hexdigest()),
    "contains": _fixed("contains", 2, lambda where, sub, s: _string_arg(where, sub, "contains") in
                       _string_arg(where, s, "contains")),
    "splitn": _fixed("splitn", 3, _fn_splitn),
    "list": lambda where, *args: list(args),
    "fail": _fixed("fail", 1, _fn_fail),
}


class _Scope:
    def __init__(self, root):
        self.frames = [{"$": root}]

    def lookup(self, name, where):
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise RenderError("%s: undefined variable %s" % (where, name))

    def assign(self, name, value, where):
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise RenderError("%s: undefined variable %s (declare it with :=)" % (where, name))


def _field_chain(value, names, where, path):
    for name in names:
        if value is None:
            raise RenderError("%s: nil pointer evaluating %s (a parent key is unset)"
                              % (where, path))
        if isinstance(value, Struct):
            if name not in value:
                raise RenderError("%s: can't evaluate field %s in %s" % (where, name, path))
            value = value[name]
        elif isinstance(value, dict):
            value = value.get(name)
        else:
            raise RenderError("%s: can't evaluate field %s of a %s in %s" % (
                where, name, type(value).__name__, path))
    return value


def _operand(token, dot, scope, where):
    kind, text = token
    if kind == "pipeline":
        return _eval_pipeline(text, dot, scope, where)
    if kind == "field":
        return dot if text == "." else _field_chain(dot, text.split(".")[1:], where, text)
    if kind == "var":
        parts = text.split(".")
        return _field_chain(scope.lookup(parts[0], where), parts[1:], where, text)
    if kind in ("string", "number"):
        return text
    if kind == "ident":
        if text in ("true", "false"):
            return text == "true"
        if text == "nil":
            raise RenderError("%s: nil is not a command" % where)
        raise RenderError("%s: function %s needs to come first in a command" % (where, text))
    raise RenderError("%s: unexpected %s" % (where, text))


def _eval_pipeline(commands, dot, scope, where):
    value, piped = None, False
    for command in commands:
        head = command[0]
        if head[0] == "ident" and head[1] not in ("true", "false", "nil"):
            function = FUNCTIONS.get(head[1])
            if function is None:
                raise RenderError("%s: unknown function %s (render.py implements: %s)" % (
                    where, head[1], ", ".join(sorted(FUNCTIONS))))
            args = [_operand(token, dot, scope, where) for token in command[1:]]
            if piped:
                args.append(value)
            value = function(where, *args)
        else:
            value_of_head = _operand(head, dot, scope, where)
            if callable(value_of_head):
                # A method (.Capabilities.APIVersions.Has): called with the arguments.
                args = [_operand(token, dot, scope, where) for token in command[1:]]
                if piped:
                    args.append(value)
                value = value_of_head(where, *args)
            else:
                if len(command) > 1 or piped:
                    raise RenderError("%s: can't give an argument to a non-function %s"
                                      % (where, head[1]))
                value = value_of_head
        piped = True
    return value


def _execute(nodes, dot, scope, out):
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Output):
            where = node.action.where()
            value = _eval_pipeline(node.pipeline, dot, scope, where)
            out.append(_go_string(value, where, _describe(node.pipeline)))
        elif isinstance(node, _Assign):
            where = node.action.where()
            value = _eval_pipeline(node.pipeline, dot, scope, where)
            if node.declare:
                scope.frames[-1][node.name] = value
            else:
                scope.assign(node.name, value, where)
        elif isinstance(node, _If):
            where = node.action.where()
            chosen = node.otherwise
            for condition, body in node.branches:
                if _truth(_eval_pipeline(condition, dot, scope, where)):
                    chosen = body
                    break
            if chosen:
                scope.frames.append({})
                _execute(chosen, dot, scope, out)
                scope.frames.pop()
        elif isinstance(node, _Range):
            where = node.action.where()
            collection = _eval_pipeline(node.pipeline, dot, scope, where)
            if collection is None:
                pairs = []
            elif isinstance(collection, list):
                pairs = list(enumerate(collection))
            elif isinstance(collection, dict):
                pairs = [(key, collection[key]) for key in sorted(collection)]
            elif isinstance(collection, int) and not isinstance(collection, bool):
                pairs = [(i, i) for i in range(collection)]
            else:
                raise RenderError("%s: range can't iterate over %s" % (where, _go_string(
                    collection, where, "range's value")))
            for key, element in pairs:
                frame = {}
                if node.value_var:
                    frame[node.value_var] = element
                if node.key_var:
                    frame[node.key_var] = key
                scope.frames.append(frame)
                _execute(node.body, element, scope, out)
                scope.frames.pop()
            if not pairs and node.otherwise:
                scope.frames.append({})
                _execute(node.otherwise, dot, scope, out)
                scope.frames.pop()


def _describe(pipeline):
    return " | ".join(" ".join(str(text) if kind != "pipeline" else "(...)"
                               for kind, text in command) for command in pipeline)


# ---------------------------------------------------------------------------------------------
# Charts.

def render_string(template, context, source="template"):
    """Renders one template text with a context (a dict with Values, Release, Chart)."""
    root = context if isinstance(context, Struct) else Struct(context)
    out = []
    _execute(_parse(_lex(template, source)), root, _Scope(root), out)
    return "".join(out)


def merge_values(base, override):
    """Helm's coalescing: maps merge key by key, anything else replaces, null deletes a key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load_yaml(path):
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as error:
        raise RenderError("%s: not valid YAML: %s" % (path, error))
    except OSError as error:
        raise RenderError("%s: %s" % (path, error.strerror))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RenderError("%s: must be a YAML map" % path)
    return data


# Helm's install order (pkg/releaseutil/kind_sorter.go), which `helm template` prints in too.
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService",
]


# The group/versions .Capabilities.APIVersions.Has finds without --api-versions: those of a current
# Kubernetes (1.25 or later) among the ones a chart may ask about.
DEFAULT_API_VERSIONS = (
    "v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1", "autoscaling/v2", "apiextensions.k8s.io/v1",
)


def capabilities(api_versions):
    """Helm's .Capabilities for a cluster serving `api_versions` (group/version strings)."""
    known = frozenset(api_versions)

    def has(where, *args):
        if len(args) != 1 or not isinstance(args[0], str):
            raise RenderError("%s: .Capabilities.APIVersions.Has takes one string" % where)
        if args[0].count("/") > 1:
            raise RenderError("%s: render.py's .Capabilities.APIVersions.Has takes a group/version "
                              "(\"policy/v1\"), not %r" % (where, args[0]))
        return args[0] in known

    return Struct({"APIVersions": Struct({"Has": has})})


def render_chart(chart_dir, values_files=(), release_name="informerd", namespace="default",
                 api_versions=DEFAULT_API_VERSIONS):
    """Returns [(template path relative to the chart's parent, one rendered YAML document)] in
    Helm's install order, as `helm template` prints them (empty documents left out).
    `api_versions`: the cluster's group/versions, for .Capabilities.APIVersions."""
    chart = _load_yaml(os.path.join(chart_dir, "Chart.yaml"))
    values = _load_yaml(os.path.join(chart_dir, "values.yaml"))
    for path in values_files:
        values = merge_values(values, _load_yaml(path))
    chart_object = Struct({"Name": chart.get("name"), "Version": chart.get("version"),
                           "AppVersion": chart.get("appVersion"),
                           "Description": chart.get("description")})
    release = Struct({"Name": release_name, "Namespace": namespace, "Service": "Helm",
                      "IsInstall": True, "IsUpgrade": False, "Revision": 1})
    context = Struct({"Values": values, "Release": release, "Chart": chart_object,
                      "Capabilities": capabilities(api_versions)})
    name = os.path.basename(os.path.normpath(chart_dir))
    templates_dir = os.path.join(chart_dir, "templates")
    rendered = []
    for file_name in sorted(os.listdir(templates_dir)):
        if file_name.startswith("_") or not file_name.endswith((".yaml", ".yml")):
            continue
        source = "%s/templates/%s" % (name, file_name)
        with open(os.path.join(templates_dir, file_name)) as f:
            text = render_string(f.read(), context, source)
        for document in re.split(r"(?m)^---[ \t]*$", text):
            if not document.strip():
                continue
            try:
                manifest = yaml.safe_load(document)
            except yaml.YAMLError as error:
                raise RenderError("%s: rendered output is not valid YAML: %s\n--- output ---\n%s"
                                  % (source, error, document))
            if manifest is None:
                continue  # only comments
            if not isinstance(manifest, dict) or "kind" not in manifest:
                raise RenderError("%s: a rendered document is not a Kubernetes object:\n%s"
                                  % (source, document))
            kind = manifest["kind"]
            order = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
            rendered.append((order, len(rendered), source, document.strip("\n") + "\n"))
    rendered.sort()
    return [(source, document) for _, _, source, document in rendered]


def main(argv):
    parser = argparse.ArgumentParser(description="Render a Helm chart (the subset of Go "
                                     "templates informerd's chart uses) without helm.")
    parser.add_argument("chart_dir")
    parser.add_argument("-f", "--values", action="append", default=[],
                        help="a values file merged over the chart's values.yaml (repeatable)")
    parser.add_argument("--release-name", default="informerd")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--api-versions", action="append", default=None,
                        help="a group/version the cluster serves, as `kubectl api-versions` prints "
                        "(repeatable); replaces the default set, a current Kubernetes's")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", args.release_name):
        print("render.py: release name %r is not a DNS label" % args.release_name, file=sys.stderr)
        return 1
    try:
        rendered = render_chart(args.chart_dir, args.values, args.release_name, args.namespace,
                                args.api_versions or DEFAULT_API_VERSIONS)
    except RenderError as error:
        print("render.py: %s" % error, file=sys.stderr)
        return 1
    for source, text in rendered:
        sys.stdout.write("---\n# Source: %s\n%s" % (source, text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
