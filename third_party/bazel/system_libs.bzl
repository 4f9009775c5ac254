"""A repository rule that turns Debian's installed libraries into cc_library targets.

Link flags come from pkg-config at fetch time (gRPC alone needs dozens of absl libraries, and
the list changes with Debian's packaging), so they are declared in exactly one place and nothing
is downloaded. Headers live in /usr/include, which the default toolchain already searches.
"""

def _dedupe(flags):
    seen = {}
    out = []
    for f in flags:
        # Keep order; drop repeated -l flags (pkg-config repeats absl ones many times).
        if f.startswith("-l") and f in seen:
            continue
        seen[f] = True
        out.append(f)
    return out

def _system_libs_impl(ctx):
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, spec in ctx.attr.libs.items():
        parts = spec.split(" ")
        modules = [p for p in parts if not p.startswith("-")]
        extra = [p for p in parts if p.startswith("-")]
        flags = []
        if modules:
            res = ctx.execute(["pkg-config", "--libs"] + modules)
            if res.return_code != 0:
                fail("pkg-config --libs %s failed: %s (install the Debian -dev packages; see scripts/install_deps.sh)" % (" ".join(modules), res.stderr))
            flags = res.stdout.strip().split(" ")
        flags = _dedupe([f for f in flags + extra if f])
        lines.append("cc_library(")
        lines.append('    name = "%s",' % name)
        lines.append("    linkopts = %s," % repr(flags))
        lines.append(")")
        lines.append("")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD", "\n".join(lines))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {
        # target name -> "pkg-config modules and/or raw -l flags, space separated"
        "libs": attr.string_dict(mandatory = True),
    },
    local = True,
)
