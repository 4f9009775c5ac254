#!/usr/bin/env bash
# clients/python installs with Debian's pip and setuptools, offline, depending only on Debian's
# python3-grpcio and python3-protobuf: into a fresh virtual environment that sees the system's
# packages (Debian's pip refuses to install into the system Python itself, PEP 668). The
# installed package imports from the environment, stubs included, outside the source tree.
set -euo pipefail

src=${PYTHON_CLIENT_DIR:-clients/python}
fail() { echo "FAIL: $*" >&2; exit 1; }

work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pip.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -rL "$src" "$work/src"  # pip writes build/ beside the sources; runfiles are read-only
/usr/bin/python3 -m venv --system-site-packages "$work/venv" ||
  fail "cannot create a virtual environment (apt-get install python3-venv)"
"$work/venv/bin/python" -m pip install --no-cache-dir --no-index --no-build-isolation "$work/src" \
  >"$work/pip.log" 2>&1 || fail "pip install failed: $(cat "$work/pip.log")"
cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'PY' || fail "the installed package does not import"
import sys
import informerd
from informerd import Informer, RateLimitingQueue, parse_label_selector
from informerd.v1 import informerd_pb2, informerd_pb2_grpc
venv = sys.argv[1]
for module in (informerd, informerd_pb2, informerd_pb2_grpc):
    assert module.__file__.startswith(venv), module.__file__
assert informerd_pb2.SubscribeRequest(max_events_per_message=3).max_events_per_message == 3
assert parse_label_selector("app=web").matches({"app": "web"})
print("imported from", informerd.__file__)
PY
show=$("$work/venv/bin/python" -m pip show informerd-client)
grep -qx "Requires: grpcio, protobuf" <<<"$show" || fail "unexpected dependencies: $show"
echo PASS
