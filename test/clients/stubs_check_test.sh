#!/usr/bin/env bash
# clients/python/generate_stubs.sh --check passes on the committed stubs, and fails (exit 1, with
# a diff naming the stub) on stubs that no longer match the proto: here a copy of the package
# whose informerd_pb2.py was edited, and a proto with one more field.
set -euo pipefail

script=${GENERATE_STUBS:-clients/python/generate_stubs.sh}
proto_root=${PROTO_ROOT:-proto}
fail() { echo "FAIL: $*" >&2; exit 1; }

PROTO_ROOT="$proto_root" "$script" --check || fail "the committed stubs differ from the proto"

work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/stubs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A package copy with an edited stub.
mkdir -p "$work/pkg/informerd/v1"
cp "$script" "$work/pkg/generate_stubs.sh"
cp "$(dirname "$script")"/informerd/v1/*.py "$work/pkg/informerd/v1/"
echo "# edited by hand" >>"$work/pkg/informerd/v1/informerd_pb2.py"
status=0
PROTO_ROOT="$proto_root" "$work/pkg/generate_stubs.sh" --check 2>"$work/err1" || status=$?
[ "$status" -eq 1 ] || fail "an edited stub: exit $status, not 1"
grep -q "informerd_pb2.py" "$work/err1" || fail "the diff does not name the stub: $(cat "$work/err1")"

# A proto that changed since the stubs were generated.
cp "$(dirname "$script")"/informerd/v1/*.py "$work/pkg/informerd/v1/"
mkdir -p "$work/proto/informerd/v1"
sed 's/^  uint32 max_events_per_message = 7;/&\n  bool new_field = 99;/' \
  "$proto_root/informerd/v1/informerd.proto" >"$work/proto/informerd/v1/informerd.proto"
cmp -s "$work/proto/informerd/v1/informerd.proto" "$proto_root/informerd/v1/informerd.proto" &&
  fail "the proto edit did not apply"
status=0
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" --check 2>"$work/err2" || status=$?
[ "$status" -eq 1 ] || fail "a changed proto: exit $status, not 1"
grep -q "run clients/python/generate_stubs.sh" "$work/err2" || fail "no hint: $(cat "$work/err2")"

# Regenerating makes --check pass again.
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" >/dev/null
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" --check || fail "still differs after regenerating"
echo "PASS"
