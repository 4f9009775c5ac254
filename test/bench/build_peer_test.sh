#!/usr/bin/env bash
# bench/peer/build_peer.sh without building anything: --check with nothing cached fails at once
# (exit 3) with the command that builds, and prints no path; a bad argument gets the usage.
#
# The cache is an empty directory under $TEST_TMPDIR and the cache key is fixed
# (INFORMERD_KUBE_SOURCE_VERSION), so nothing reads apt; apt-get, apt-cache, dpkg, go and tar are
# stubs that record being called and fail, so a script that starts building fails at once.
set -euo pipefail

build=bench/peer/build_peer.sh
tmp=${TEST_TMPDIR:?}/build_peer_test
rm -rf "$tmp"
mkdir -p "$tmp/stubs" "$tmp/cache"
for tool in apt-get apt-cache dpkg go tar; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 97\n' "$tool" "$tmp/stub-calls" >"$tmp/stubs/$tool"
  chmod +x "$tmp/stubs/$tool"
done
export PATH="$tmp/stubs:$PATH"
export INFORMERD_CACHE_DIR="$tmp/cache" INFORMERD_KUBE_SOURCE_VERSION=9.9.9-test
build_command='export INFORMERD_PEER=$(bench/peer/build_peer.sh)'

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
contains() { grep -qF -- "$2" "$1"; }

echo "--- --check with nothing cached: exit 3 at once, with the command that builds"
status=0
"$build" --check >"$tmp/out" 2>"$tmp/err" || status=$?
[ "$status" -eq 3 ] || fail "--check exit $status, want 3"
[ ! -s "$tmp/out" ] || fail "--check printed a path: $(cat "$tmp/out")"
contains "$tmp/err" "$build_command" || fail "--check does not give the build command: $(cat "$tmp/err")"
contains "$tmp/err" "informerd-peer (kubernetes 9.9.9-test, sources " ||
  fail "--check does not name what is missing: $(cat "$tmp/err")"
contains "$tmp/err" "is not built in $tmp/cache" || fail "--check message: $(cat "$tmp/err")"
[ ! -s "$tmp/stub-calls" ] || fail "--check started building: $(cat "$tmp/stub-calls")"
[ -z "$(ls -A "$tmp/cache")" ] || fail "--check wrote to the cache: $(ls -A "$tmp/cache")"

echo "--- a bad argument: usage, exit 2"
status=0
"$build" --rebuild >/dev/null 2>"$tmp/err" || status=$?
[ "$status" -eq 2 ] && contains "$tmp/err" "usage:" || fail "bad argument: exit $status: $(cat "$tmp/err")"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
