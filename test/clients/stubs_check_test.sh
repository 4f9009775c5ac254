#!/usr/bin/env bash
# A client's generate_stubs.sh --check passes on the committed stubs, and fails (exit 1, with a
# diff naming the stub) on stubs that no longer match the proto: here a copy of the client whose
# stub EDITED was edited, and a proto with one more field and one more method. Run for each
# client (test/clients/BUILD.bazel):
#
#   stubs_check_test.sh CLIENT_DIR STUB_DIR EDITED COMMENT [--expect TEXT]... [--then COMMAND]
#
# CLIENT_DIR holds generate_stubs.sh and STUB_DIR (relative to it) the committed stubs; COMMENT
# starts a comment line in them; each TEXT must appear in the changed proto's diff; COMMAND (run
# from the working directory, after everything else) checks that the committed stubs build.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
[ $# -ge 4 ] || fail "usage: $0 CLIENT_DIR STUB_DIR EDITED COMMENT [--expect TEXT]... [--then COMMAND]"
client_dir=$1 stub_dir=$2 edited=$3 comment=$4
shift 4
expect=() then=""
while [ $# -gt 0 ]; do
  case "$1" in
    --expect) expect+=("$2"); shift 2 ;;
    --then) then=$2; shift 2 ;;
    *) fail "unknown argument $1" ;;
  esac
done
script=$client_dir/generate_stubs.sh
proto_root=${PROTO_ROOT:-proto}

PROTO_ROOT="$proto_root" "$script" --check || fail "the committed stubs differ from the proto"

work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/stubs.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The committed stubs (files only: not a __pycache__) into the copy.
copy_stubs() {
  local file
  for file in "$client_dir/$stub_dir"/*; do
    if [ -f "$file" ]; then cp "$file" "$work/pkg/$stub_dir/"; fi
  done
}

# A copy with an edited stub.
mkdir -p "$work/pkg/$stub_dir"
cp "$script" "$work/pkg/generate_stubs.sh"
copy_stubs
echo "$comment edited by hand" >>"$work/pkg/$stub_dir/$edited"
status=0
PROTO_ROOT="$proto_root" "$work/pkg/generate_stubs.sh" --check 2>"$work/err1" || status=$?
[ "$status" -eq 1 ] || fail "an edited stub: exit $status, not 1"
grep -qF "$edited" "$work/err1" || fail "the diff does not name the stub: $(cat "$work/err1")"

# A proto that changed since the stubs were generated.
copy_stubs
mkdir -p "$work/proto/informerd/v1"
sed 's/^  uint32 max_events_per_message = 7;/&\n  bool new_field = 99;/; s/^  rpc Get(GetRequest) returns (GetResponse);/&\n  rpc Get2(GetRequest) returns (GetResponse);/' \
  "$proto_root/informerd/v1/informerd.proto" >"$work/proto/informerd/v1/informerd.proto"
cmp -s "$work/proto/informerd/v1/informerd.proto" "$proto_root/informerd/v1/informerd.proto" &&
  fail "the proto edit did not apply"
status=0
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" --check 2>"$work/err2" || status=$?
[ "$status" -eq 1 ] || fail "a changed proto: exit $status, not 1"
grep -q "run .*generate_stubs.sh" "$work/err2" || fail "no hint: $(cat "$work/err2")"
for text in "${expect[@]}"; do
  grep -qF "$text" "$work/err2" || fail "the changed proto's diff lacks $text"
done

# Regenerating makes --check pass again.
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" >/dev/null
PROTO_ROOT="$work/proto" "$work/pkg/generate_stubs.sh" --check || fail "still differs after regenerating"

if [ -n "$then" ]; then
  $then || fail "$then failed"
fi
echo "PASS"
