#!/usr/bin/python3
"""deploy/helm/render.py, the chart renderer: each Go-template construct it implements renders as
Helm renders it, and everything else is an error naming file:line."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, "deploy/helm")
import render  # noqa: E402

RENDER = "deploy/helm/render.py"


def run(template, values=None, **context):
    ctx = {"Values": values or {},
           "Release": render.Struct({"Name": "rel", "Namespace": "ns", "Service": "Helm"}),
           "Chart": render.Struct({"Name": "informerd", "Version": "1.2.3", "AppVersion": "0.1.0"})}
    ctx.update(context)
    return render.render_string(template, ctx, "t.yaml")


class Values(unittest.TestCase):
    def test_fields_release_and_chart(self):
        self.assertEqual(run("{{ .Values.a.b }}/{{ .Release.Name }}/{{ .Release.Namespace }}/"
                             "{{ .Chart.AppVersion }}", {"a": {"b": "x"}}), "x/rel/ns/0.1.0")

    def test_scalars_print_as_go_prints_them(self):
        self.assertEqual(run("{{ .Values.t }} {{ .Values.f }} {{ .Values.port }}",
                             {"t": True, "f": False, "port": 50051}), "true false 50051")

    def test_large_numbers_print_in_e_notation_as_helm_float64s_do(self):
        values = {"a": 1000000, "b": 1234567, "c": 33554432, "d": 999999, "e": 1.5, "f": 0.00001,
                  "g": -2500000}
        self.assertEqual(run("{{ .Values.a }} {{ .Values.b }} {{ .Values.c }} {{ .Values.d }} "
                             "{{ .Values.e }} {{ .Values.f }} {{ .Values.g }}", values),
                         "1e+06 1.234567e+06 3.3554432e+07 999999 1.5 1e-05 -2.5e+06")

    def test_printing_an_unset_value_is_an_error_naming_file_and_line(self):
        with self.assertRaisesRegex(render.RenderError, r"^t.yaml:3: .*Values.missing is unset"):
            run("a\nb\n{{ .Values.missing }}")

    def test_a_field_of_an_unset_map_is_an_error(self):
        with self.assertRaisesRegex(render.RenderError, r"^t.yaml:1: nil pointer evaluating "
                                    r"\.Values\.a\.b"):
            run("{{ if .Values.a.b }}x{{ end }}")

    def test_an_unknown_release_field_is_an_error(self):
        with self.assertRaisesRegex(render.RenderError, r"t.yaml:1: can't evaluate field Nme"):
            run("{{ .Release.Nme }}")

    def test_printing_a_map_or_list_is_an_error(self):
        with self.assertRaisesRegex(render.RenderError, r"t.yaml:1: .* is a map; print it with toYaml"):
            run("{{ .Values.m }}", {"m": {"a": 1}})
        with self.assertRaisesRegex(render.RenderError, r"is a list"):
            run("{{ .Values.l }}", {"l": [1]})


class Control(unittest.TestCase):
    def test_if_else_if_else(self):
        template = "{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}"
        self.assertEqual(run(template, {"a": 1, "b": 1}), "A")
        self.assertEqual(run(template, {"a": 0, "b": "x"}), "B")
        self.assertEqual(run(template, {}), "C")

    def test_truth_follows_text_template(self):
        for falsy in (False, 0, 0.0, "", [], {}, None):
            self.assertEqual(run("{{ if .Values.v }}T{{ else }}F{{ end }}", {"v": falsy}), "F", falsy)
        for truthy in (True, 1, "0", "false", [0], {"a": None}):
            self.assertEqual(run("{{ if .Values.v }}T{{ else }}F{{ end }}", {"v": truthy}), "T", truthy)

    def test_range_over_a_list_with_index_and_root(self):
        self.assertEqual(run("{{ range $i, $v := .Values.l }}{{ $i }}={{ $v.n }}@{{ $.Release.Name }};"
                             "{{ end }}", {"l": [{"n": "a"}, {"n": "b"}]}), "0=a@rel;1=b@rel;")

    def test_range_sets_dot(self):
        self.assertEqual(run("{{ range .Values.l }}[{{ .name }}]{{ end }}",
                             {"l": [{"name": "x"}, {"name": "y"}]}), "[x][y]")

    def test_range_over_a_map_in_key_order(self):
        self.assertEqual(run("{{ range $k, $v := .Values.m }}{{ $k }}:{{ $v }} {{ end }}",
                             {"m": {"b": 2, "a": 1}}), "a:1 b:2 ")

    def test_range_else_when_empty_or_unset(self):
        self.assertEqual(run("{{ range .Values.l }}x{{ else }}none{{ end }}", {"l": []}), "none")
        self.assertEqual(run("{{ range .Values.l }}x{{ else }}none{{ end }}", {}), "none")

    def test_variables_assigned_inside_a_block_change_the_outer_one(self):
        template = ("{{ $any := false }}{{ range .Values.l }}{{ if .on }}{{ $any = true }}{{ end }}"
                    "{{ end }}{{ $any }}")
        self.assertEqual(run(template, {"l": [{"on": False}, {"on": True}]}), "true")
        self.assertEqual(run(template, {"l": [{"on": False}]}), "false")

    def test_a_variable_declared_in_a_block_ends_with_it(self):
        with self.assertRaisesRegex(render.RenderError, r"t.yaml:2: undefined variable \$x"):
            run("{{ if true }}{{ $x := 1 }}{{ end }}\n{{ $x }}")

    def test_assigning_an_undeclared_variable_is_an_error(self):
        with self.assertRaisesRegex(render.RenderError, r"t.yaml:1: undefined variable \$y"):
            run("{{ $y = 1 }}")


class Whitespace(unittest.TestCase):
    def test_trim_markers(self):
        self.assertEqual(run("a  \n  {{- .Values.x -}}  \n  b", {"x": "X"}), "aXb")
        self.assertEqual(run("a\n{{- if true }}\nb\n{{- end }}\nc"), "a\nb\nc")

    def test_minus_without_a_space_is_a_number_not_a_trim_marker(self):
        self.assertEqual(run("a {{-3}} b"), "a -3 b")

    def test_comments_render_nothing(self):
        self.assertEqual(run("a {{/* x {{ y }} */}} b"), "a  b")
        self.assertEqual(run("a\n{{- /* multi\nline */ -}}\nb"), "ab")

    def test_line_numbers_count_lines_inside_comments_and_actions(self):
        with self.assertRaisesRegex(render.RenderError, r"^t.yaml:5: "):
            run("{{/* one\ntwo */}}\n{{ if\ntrue }}\n{{ .Values.unset }}{{ end }}")


class Functions(unittest.TestCase):
    def test_to_yaml_nindent_as_charts_use_it(self):
        self.assertEqual(run("resources: {{- toYaml .Values.r | nindent 2 }}",
                             {"r": {"limits": {"memory": "1Gi"}, "b": [1, "x"]}}),
                         "resources:\n  b:\n  - 1\n  - x\n  limits:\n    memory: 1Gi")

    def test_to_yaml_of_scalars_and_empty_values(self):
        self.assertEqual(run("{{ toYaml .Values.s }}|{{ toYaml .Values.m }}|{{ toYaml .Values.n }}",
                             {"s": "a", "m": {}, "n": None}), "a|{}|null")

    def test_indent_pads_every_line_like_sprig(self):
        self.assertEqual(run('{{ indent 2 "a\\n\\nb" }}'), "  a\n  \n  b")

    def test_quote_escapes_like_go(self):
        self.assertEqual(run("{{ .Values.s | quote }}", {"s": 'a"b\\c\nd\te\x01'}),
                         '"a\\"b\\\\c\\nd\\te\\x01"')
        self.assertEqual(run("{{ .Values.n | quote }}", {"n": 8080}), '"8080"')
        self.assertEqual(run("[{{ .Values.unset | quote }}]"), "[]")  # sprig skips nil

    def test_default(self):
        template = '{{ .Values.v | default "d" }}'
        self.assertEqual(run(template, {"v": "x"}), "x")
        for empty in ("", None, 0, False, [], {}):
            self.assertEqual(run(template, {"v": empty}), "d")
        self.assertEqual(run("{{ .Values.tag | default .Chart.AppVersion }}", {}), "0.1.0")

    def test_required_and_fail(self):
        self.assertEqual(run('{{ required "need x" .Values.x }}', {"x": "y"}), "y")
        with self.assertRaisesRegex(render.RenderError, r"t.yaml:1: need x"):
            run('{{ required "need x" .Values.x }}')
        with self.assertRaisesRegex(render.RenderError, r"t.yaml:2: fail: bad values"):
            run('\n{{ fail "bad values" }}')

    def test_splitn_contains_not_eq(self):
        self.assertEqual(run('{{ $p := splitn "." 2 .Values.r }}{{ $p._0 }}|{{ $p._1 | default "" | quote }}',
                             {"r": "widgets.example.com"}), 'widgets|"example.com"')
        self.assertEqual(run('{{ $p := splitn "." 2 "pods" }}{{ $p._0 }}|{{ $p._1 | default "" | quote }}'),
                         'pods|""')
        self.assertEqual(run('{{ contains "/" "apps/v1/x" }} {{ not true }} {{ eq 1 1 }} {{ ne "a" "a" }}'),
                         "true false true false")

    def test_gt_and_int_compare_whole_numbers_as_helm_can(self):
        self.assertEqual(run("{{ gt (int .Values.n) 1 }} {{ gt (int .Values.one) 1 }} {{ gt 2 1 }} "
                             "{{ gt 1.5 1.25 }} {{ int \"7\" }}", {"n": 3, "one": 1}),
                         "true false true true 7")
        self.assertEqual(run("{{ int .Values.f }}", {"f": 2.9}), "2")
        # Helm holds a values file's numbers as float64s, which Go's gt refuses beside an int.
        for template in ("{{ gt .Values.n 1 }}", "{{ gt 1 .Values.n }}", "{{ gt 1.5 1 }}"):
            with self.assertRaisesRegex(render.RenderError, r"^t.yaml:1: gt compares two whole "
                                        r"numbers .* write gt \(int \.Values\.x\) 1"):
                run(template, {"n": 3})
        for value in (True, "x", None, [1]):
            with self.assertRaisesRegex(render.RenderError, r"^t.yaml:1: int needs a number"):
                run("{{ int .Values.v }}", {"v": value})
        self.assertEqual(run("{{ list 1 (int .Values.n) | toYaml }}", {"n": 2}), "- 1\n- 2")

    def test_capabilities_api_versions_has(self):
        for versions, expected in ((render.DEFAULT_API_VERSIONS, "v1"),
                                   (["v1", "policy/v1beta1"], "v1beta1")):
            self.assertEqual(run('{{ if .Capabilities.APIVersions.Has "policy/v1" }}v1{{ else }}'
                                 'v1beta1{{ end }}', Capabilities=render.capabilities(versions)),
                             expected)
        caps = render.capabilities(["v1"])
        self.assertEqual(run('{{ "v1" | .Capabilities.APIVersions.Has }}', Capabilities=caps), "true")
        with self.assertRaisesRegex(render.RenderError, r"^t.yaml:1: .*takes a group/version"):
            run('{{ .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" }}',
                Capabilities=caps)
        with self.assertRaisesRegex(render.RenderError, r"^t.yaml:1: .*Has takes one string"):
            run("{{ if .Capabilities.APIVersions.Has }}x{{ end }}", Capabilities=caps)

    def test_and_or_return_an_argument_like_text_template(self):
        self.assertEqual(run('{{ or .Values.a .Values.b "c" }}|{{ or 0 "" }}|{{ and 1 "x" }}|'
                             '{{ and 1 0 "x" }}', {"b": "B"}), "B||x|0")
        self.assertEqual(run("{{ if not (or .Values.l .Values.m.on) }}none{{ end }}",
                             {"l": [], "m": {}}), "none")

    def test_sha256sum_and_list(self):
        self.assertEqual(run('{{ sha256sum "abc" }}'),
                         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        self.assertEqual(run("{{ list 1 .Values.a | toYaml }}", {"a": "x"}), "- 1\n- x")

    def test_parenthesized_pipelines(self):
        self.assertEqual(run('{{ (.Values.a | default "z") | quote }}', {}), '"z"')

    def test_wrong_argument_counts_are_errors(self):
        with self.assertRaisesRegex(render.RenderError, r"t.yaml:1: nindent takes 2 arguments, got 1"):
            run('{{ nindent 2 }}')


class Errors(unittest.TestCase):
    def test_unknown_function_names_file_line_and_the_supported_set(self):
        with self.assertRaisesRegex(render.RenderError,
                                    r"^t.yaml:2: unknown function include \(render.py implements: "):
            run('x\n{{ include "informerd.labels" . }}')

    def test_unsupported_actions(self):
        for action in ("with .Values.a", 'define "x"', 'template "x"', "block \"x\" .", "break"):
            with self.assertRaisesRegex(render.RenderError, r"^t.yaml:1: \{\{ %s \}\} is not supported"
                                        % action.split()[0]):
                run("{{ %s }}x{{ end }}" % action)

    def test_structure_errors(self):
        cases = [
            ("a\n{{ if true }}x", r"^t.yaml:2: \{\{ if \}\} has no matching \{\{ end \}\}"),
            ("{{ end }}", r"^t.yaml:1: unexpected \{\{ end \}\}"),
            ("a\n{{ .Values.x ", r"^t.yaml:2: unclosed action"),
            ("{{/* no end }}", r"^t.yaml:1: unclosed comment"),
            ("{{ .Values.x | }}", r"^t.yaml:1: missing command after \|"),
            ('{{ "a" "b" }}', r"can't give an argument to a non-function"),
            ("{{ .Values.x @ }}", r"unexpected character '@'"),
            ("{{ }}", r"^t.yaml:1: empty action"),
            ("{{ if true }}{{ end x }}", r"unexpected words after \{\{ end \}\}"),
        ]
        for template, pattern in cases:
            with self.assertRaisesRegex(render.RenderError, pattern, msg=template):
                run(template, {"x": "1"})


class Charts(unittest.TestCase):
    def make_chart(self, templates, values="", chart="apiVersion: v2\nname: c\nversion: 1.0.0\n"
                   "appVersion: \"2.0\"\n"):
        directory = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        chart_dir = os.path.join(directory, "c")
        os.makedirs(os.path.join(chart_dir, "templates"))
        with open(os.path.join(chart_dir, "Chart.yaml"), "w") as f:
            f.write(chart)
        with open(os.path.join(chart_dir, "values.yaml"), "w") as f:
            f.write(values)
        for name, text in templates.items():
            with open(os.path.join(chart_dir, "templates", name), "w") as f:
                f.write(text)
        return chart_dir

    def test_values_merge_like_helm(self):
        base = {"a": {"x": 1, "y": 2}, "l": [1, 2], "gone": 1, "keep": "k"}
        merged = render.merge_values(base, {"a": {"y": 3, "z": 4}, "l": [9], "gone": None})
        self.assertEqual(merged, {"a": {"x": 1, "y": 3, "z": 4}, "l": [9], "keep": "k"})

    def test_documents_come_out_in_helm_install_order_skipping_helpers_and_empty_ones(self):
        chart = self.make_chart({
            "a.yaml": "kind: Deployment\nmetadata: {name: {{ .Release.Name }}}\n",
            "b.yaml": "kind: ConfigMap\n---\n# only a comment\n---\nkind: ServiceAccount\n",
            "c.yaml": "{{ if .Values.off }}kind: Secret{{ end }}",
            "_helpers.tpl": "{{ define \"x\" }}{{ end }}",
            "NOTES.txt": "{{ .Values.nonsense }}",
        })
        documents = render.render_chart(chart, release_name="r")
        self.assertEqual([(source, text.split("\n")[0]) for source, text in documents],
                         [("c/templates/b.yaml", "kind: ServiceAccount"),
                          ("c/templates/b.yaml", "kind: ConfigMap"),
                          ("c/templates/a.yaml", "kind: Deployment")])

    def test_values_files_override_the_charts(self):
        chart = self.make_chart({"a.yaml": "kind: ConfigMap\ndata: {v: {{ .Values.v | quote }}, "
                                 "w: {{ .Values.w | quote }}}\n"}, values="v: a\nw: b\n")
        override = os.path.join(os.path.dirname(chart), "more.yaml")
        with open(override, "w") as f:
            f.write("w: c\n")
        [(_, text)] = render.render_chart(chart, [override])
        self.assertIn('data: {v: "a", w: "c"}', text)

    def test_output_that_is_not_yaml_is_an_error_naming_the_template(self):
        chart = self.make_chart({"bad.yaml": "kind: ConfigMap\ndata: {{ .Values.v }}\n"},
                                values="v: '[unclosed'\n")
        with self.assertRaisesRegex(render.RenderError, r"^c/templates/bad.yaml: rendered output "
                                    r"is not valid YAML"):
            render.render_chart(chart)

    def test_command_line(self):
        chart = self.make_chart({"a.yaml": "kind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
                                 "  namespace: {{ .Release.Namespace }}\n"})
        result = subprocess.run([sys.executable, RENDER, chart, "--release-name", "r1",
                                 "--namespace", "n1"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "---\n# Source: c/templates/a.yaml\nkind: ConfigMap\n"
                         "metadata:\n  name: r1\n  namespace: n1\n")

    def test_command_line_api_versions(self):
        chart = self.make_chart({"a.yaml": "kind: ConfigMap\nmetadata:\n  name: x\ndata:\n  v: "
                                 "{{ if .Capabilities.APIVersions.Has \"policy/v1\" }}new"
                                 "{{ else }}old{{ end }}\n"})
        for extra, expected in (([], "new"), (["--api-versions", "v1", "--api-versions",
                                               "policy/v1beta1"], "old")):
            result = subprocess.run([sys.executable, RENDER, chart] + extra, capture_output=True,
                                    text=True)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertTrue(result.stdout.endswith("  v: %s\n" % expected), result.stdout)

    def test_command_line_errors_exit_1_with_file_and_line(self):
        chart = self.make_chart({"a.yaml": "kind: ConfigMap\n\n{{ with .Values }}{{ end }}\n"})
        result = subprocess.run([sys.executable, RENDER, chart], capture_output=True, text=True)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        self.assertRegex(result.stderr, r"^render.py: c/templates/a.yaml:3: \{\{ with \}\} is not "
                         r"supported")
        result = subprocess.run([sys.executable, RENDER, chart, "-f", "/nonexistent.yaml"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 1)
        self.assertIn("/nonexistent.yaml", result.stderr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or not result.testsRun else 0)
