#!/usr/bin/python3
"""deploy/Dockerfile's runtime stage installs exactly the Debian bookworm packages that provide the
shared libraries informerd and informerctl load. Checked without building the image: each package
exists in bookworm's archive (apt-cache), and `ldd` of the two binaries built by Bazel resolves
every library to a file that one of those packages owns (dpkg -S): nothing missing, nothing extra.
The image built for real is checked by image_test.py, which runs this file's ldd check inside it."""
import os
import re
import shlex
import subprocess
import sys

DOCKERFILE = "deploy/Dockerfile"
BINARIES = ["cmd/informerd/informerd", "cmd/informerctl/informerctl"]
# In every Debian image: dpkg, apt and bash are linked against it.
IN_EVERY_DEBIAN_IMAGE = {"libc6"}


def fail(message):
    print("FAIL: " + message)
    print("0 passed, 1 failed")
    sys.exit(1)


def stages(text):
    """[(FROM line, [instructions with continuations joined])]."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append((line, []))
        elif result:
            result[-1][1].append(line)
    return result


def runtime_packages(text):
    all_stages = stages(text)
    if len(all_stages) != 4:
        fail("expected the stages build, runtime, prebuilt and the final one, found %d" %
             len(all_stages))
    ((build_from, build), (runtime_from, runtime), (prebuilt_from, prebuilt),
     (final_from, final)) = all_stages
    if not re.match(r"FROM debian:bookworm AS build$", build_from):
        fail("build stage is not Debian bookworm: " + build_from)
    if runtime_from != "FROM debian:bookworm-slim AS runtime":
        fail("runtime stage is not debian:bookworm-slim: " + runtime_from)
    if not any("scripts/install_deps.sh build" in i for i in build):
        fail("the build stage does not install with scripts/install_deps.sh build")
    if not any(re.search(r"bazel .*build .*//cmd/informerd //cmd/informerctl", i) for i in build):
        fail("the build stage does not build //cmd/informerd and //cmd/informerctl with Bazel")
    # Both ways of getting the binaries (deploy/build_image.sh --prebuilt uses the `prebuilt`
    # target) add them, and only them, to the one runtime stage.
    if (prebuilt_from, prebuilt) != (
            "FROM runtime AS prebuilt",
            ["COPY prebuilt/informerd prebuilt/informerctl /usr/local/bin/"]):
        fail("the prebuilt stage is not the runtime stage plus the two binaries: %s %s" % (
            prebuilt_from, prebuilt))
    if (final_from, final) != (
            "FROM runtime", ["COPY --from=build /out/informerd /out/informerctl /usr/local/bin/"]):
        fail("the last stage is not the runtime stage plus the build stage's two binaries: %s %s"
             % (final_from, final))
    if not any(re.match(r"USER 65532(:65532)?$", i) for i in runtime):
        fail("the runtime stage does not switch to the non-root uid 65532 (the chart's runAsUser)")
    installs = [i for i in runtime if "apt-get install" in i]
    if len(installs) != 1:
        fail("expected one apt-get install in the runtime stage, found %d" % len(installs))
    words = shlex.split(installs[0].split("apt-get install", 1)[1].split("&&", 1)[0])
    return [w for w in words if not w.startswith("-")]


def bookworm_versions(packages):
    """{package: candidate version} for those apt-cache policy finds in a bookworm archive."""
    result = subprocess.run(["apt-cache", "policy"] + list(packages), capture_output=True, text=True)
    versions = {}
    for section in re.split(r"(?m)^(?=\S)", result.stdout):
        name = section.split(":", 1)[0]
        candidate = re.search(r"Candidate: (\S+)", section)
        if (name in packages and candidate and candidate.group(1) != "(none)" and
                re.search(r"debian\S* bookworm(-security|-updates)?/main", section)):
            versions[name] = candidate.group(1)
    return versions


def aliases(path):
    """The names a library may be registered under with dpkg: usrmerge makes /lib and /usr/lib
    one directory, but dpkg knows each file by the path its package shipped."""
    names = []
    for p in (path, os.path.realpath(path)):
        names += [p, p[len("/usr"):] if p.startswith("/usr/") else "/usr" + p]
    return list(dict.fromkeys(names))


def owners(paths):
    """{path: package} for every path dpkg knows (one `dpkg -S` for all: it is slow to start)."""
    result = subprocess.run(["dpkg", "-S"] + sorted(set(paths)), capture_output=True, text=True)
    found = {}
    for line in result.stdout.splitlines():
        package, _, path = line.partition(": ")
        if path and ", " not in package:
            found[path.strip()] = package.split(":")[0]
    return found


def ldd_libraries(binary, ldd=("ldd",)):
    """[(name, resolved path)] of the shared libraries `binary` loads, by `ldd` (a command prefix:
    image_test.py runs ldd inside the image); fails if any is not found."""
    ldd = subprocess.run(list(ldd) + [binary], capture_output=True, text=True)
    if ldd.returncode != 0:
        fail("%s %s failed (%d): %s%s" % (" ".join(ldd.args[:-1]), binary, ldd.returncode,
                                          ldd.stdout, ldd.stderr))
    if "not found" in ldd.stdout:
        fail("%s: unresolved libraries:\n%s" % (binary, ldd.stdout))
    libraries = re.findall(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M)
    libraries += [(os.path.basename(p), p) for p in re.findall(r"^\s*(/\S+) \(0x", ldd.stdout, re.M)]
    if len(libraries) < 10:
        fail("%s: implausibly few libraries from ldd:\n%s" % (binary, ldd.stdout))
    return libraries


def main():
    with open(DOCKERFILE) as f:
        listed = runtime_packages(f.read())
    if not listed:
        fail("no runtime packages found in " + DOCKERFILE)
    if len(set(listed)) != len(listed):
        fail("duplicate runtime packages: %s" % listed)

    lists = [n for n in os.listdir("/var/lib/apt/lists") if "bookworm" in n and "Packages" in n]
    if not lists:
        fail("apt has no bookworm package lists: run apt-get update first")
    versions = bookworm_versions(listed)
    for package in listed:
        version = versions.get(package)
        if version is None:
            fail("%s: not a package of Debian bookworm (apt-cache policy %s)" % (package, package))
        print("ok   %-34s bookworm %s" % (package, version))

    needed = {}
    for binary in BINARIES:
        if not os.access(binary, os.X_OK):
            fail("%s not built" % binary)
        libraries = ldd_libraries(binary)
        known = owners(a for _, path in libraries for a in aliases(path))
        for name, path in libraries:
            package = next((known[a] for a in aliases(path) if a in known), None)
            if package is None:
                fail("%s: no Debian package owns %s (%s)" % (binary, path, name))
            needed.setdefault(package, set()).add(name)

    # A sanitizer build (--config=asan/tsan) links the sanitizer's runtime, which the image's
    # (normal) build does not: that is not a missing package.
    sanitizer_runtimes = {p for p in needed if re.fullmatch(r"lib(asan|tsan|ubsan|lsan)\d*", p)}
    for package in sorted(sanitizer_runtimes):
        print("note %-30s ignored: a sanitizer runtime, not in the image's build" % package)
        del needed[package]
    missing = sorted(set(needed) - set(listed) - IN_EVERY_DEBIAN_IMAGE)
    extra = sorted(set(listed) - set(needed))
    if missing:
        fail("the binaries load libraries from packages the image does not install: " + ", ".join(
            "%s (%s)" % (p, " ".join(sorted(needed[p]))) for p in missing))
    if extra:
        fail("the image installs packages no binary loads a library from: " + ", ".join(extra))
    for package in sorted(needed):
        names = sorted(needed[package])
        shown = " ".join(names[:4]) + (" and %d more" % (len(names) - 4) if len(names) > 4 else "")
        print("ok   %-34s provides %s" % (package, shown))
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
