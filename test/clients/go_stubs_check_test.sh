#!/usr/bin/env bash
# clients/go/generate_stubs.sh --check passes on the committed stubs, and fails (exit 1, with a
# diff naming the stub) on stubs that no longer match the proto: here a copy whose
# informerd.pb.go was edited, and a proto with one more field. Then the committed stubs compile
# (clients/go/build.sh).
set -euo pipefail

script=${GENERATE_STUBS:-clients/go/generate_stubs.sh}
proto_root=${PROTO_ROOT:-proto}
fail() { echo "FAIL: $*" >&2; exit 1; }

PROTO_ROOT="$proto_root" "$script" --check || fail "the committed stubs differ from the proto"

work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/gostubs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A copy with an edited stub.
mkdir -p "$work/pkg/api/v1"
cp "$script" "$work/pkg/generate_stubs.sh"
cp "$(dirname "$script")"/api/v1/*.go "$work/pkg/api/v1/"
echo "// edited by hand" >>"$work/pkg/api/v1/informerd.pb.go"
status=0
PROTO_ROOT="$proto_root" "$work/pkg/generate_stubs.sh" --check 2>"$work/err1" || status=$?
[ "$status" -eq 1 ] || fail "an edited stub: exit $status, not 1"
grep -q "informerd.pb.go" "$work/err1" || fail "the diff does not name the stub: $(cat "$work/err1")"

# A proto that changed since the stubs were generated: both stubs differ.
cp "$(dirname "$script")"/api/v1/*.go "$work/pkg/api/v1/"
mkdir -p "$work/proto/informerd/v1"
sed 's/^  uint32 max_events_per_message = 7;/&\n  bool new_field = 99;/; s/^  rpc Get(GetRequest) returns (GetResponse);/&\n  rpc Get2(GetRequest) returns (GetResponse);/' \
  "$proto_root/informerd/v1/informerd.proto" >"$work/proto/informerd/v1/informerd.proto"
cmp -s "$work/proto/informerd/v1/informerd.proto" "$proto_root/informerd/v1/informerd.proto" &&
  fail "the proto edit did not apply"
status=0
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" --check 2>"$work/err2" || status=$?
[ "$status" -eq 1 ] || fail "a changed proto: exit $status, not 1"
grep -q "run clients/go/generate_stubs.sh" "$work/err2" || fail "no hint: $(cat "$work/err2")"
grep -q "NewField" "$work/err2" || fail "the message stub's diff lacks the new field"
grep -q "Get2" "$work/err2" || fail "the gRPC stub's diff lacks the new method"

# Regenerating makes --check pass again.
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" >/dev/null
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" --check || fail "still differs after regenerating"

# The committed stubs build, with the rest of the module.
"$(dirname "$script")/build.sh" || fail "clients/go does not build"
echo "PASS"
