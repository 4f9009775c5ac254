#!/usr/bin/env bash
# build_kube_apiserver.sh and cluster.sh without building anything: --check never builds and, with
# nothing cached, fails at once with the command that builds; a build waits for the lock another
# build holds and then prints what that build cached, without building again; `cluster.sh start`
# uses the cached build only.
#
# The cache is an empty directory under $TEST_TMPDIR and the cache key is fixed
# (INFORMERD_KUBE_SOURCE_VERSION), so nothing reads apt; apt-get, apt-cache, dpkg, go, make and tar
# are stubs that record being called and fail, so a script that starts building fails at once
# instead of building for minutes.
set -euo pipefail

build=test/cluster/build_kube_apiserver.sh
cluster=test/cluster/cluster.sh
tmp=${TEST_TMPDIR:?}/build_kube_apiserver_test
rm -rf "$tmp"
mkdir -p "$tmp/stubs"
for tool in apt-get apt-cache dpkg go make tar; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 97\n' "$tool" "$tmp/stub-calls" >"$tmp/stubs/$tool"
  chmod +x "$tmp/stubs/$tool"
done
export PATH="$tmp/stubs:$PATH"
export INFORMERD_CACHE_DIR="$tmp/cache" INFORMERD_KUBE_SOURCE_VERSION=9.9.9-test
unset INFORMERD_KUBE_APISERVER
binary="$tmp/cache/kube-apiserver-9.9.9-test/kube-apiserver"
build_command='export INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)'

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# contains FILE TEXT: the file has TEXT (a fixed string).
contains() { grep -qF -- "$2" "$1"; }
no_stub_called() {
  if [ -s "$tmp/stub-calls" ]; then fail "$1: the script started building: $(cat "$tmp/stub-calls")"; fi
}
# Polls (10 ms steps, up to 30 s) until FILE has TEXT.
await() {
  local i
  for i in $(seq 3000); do
    contains "$1" "$2" && return 0
    sleep 0.01
  done
  return 1
}

echo "--- --check with nothing cached: exit 3 at once, with the command that builds"
status=0
"$build" --check >"$tmp/out" 2>"$tmp/err" || status=$?
[ "$status" -eq 3 ] || fail "--check exit $status, want 3"
[ ! -s "$tmp/out" ] || fail "--check printed a path: $(cat "$tmp/out")"
contains "$tmp/err" "$build_command" || fail "--check does not give the build command: $(cat "$tmp/err")"
contains "$tmp/err" "kube-apiserver 9.9.9-test is not built in $tmp/cache" || fail "--check message: $(cat "$tmp/err")"
no_stub_called "--check"

echo "--- a build while another holds the lock: waits, then prints what the other cached"
mkdir -p "$tmp/cache"
exec 8>>"$tmp/cache/kube-apiserver.lock"
flock 8  # this test is "the other build"
"$build" >"$tmp/out" 2>"$tmp/err" 8>&- &  # not holding this test's lock itself
waiter=$!
await "$tmp/err" "another build holds $tmp/cache/kube-apiserver.lock: waiting for it" ||
  fail "the second build does not say it waits: $(cat "$tmp/err")"
kill -0 "$waiter" 2>/dev/null || fail "the second build did not wait for the lock"
# Meanwhile --check says a build is running.
status=0
"$build" --check >/dev/null 2>"$tmp/check-err" || status=$?
[ "$status" -eq 3 ] || fail "--check during a build: exit $status, want 3"
contains "$tmp/check-err" "a build is running now" || fail "--check during a build: $(cat "$tmp/check-err")"
# "The other build" finishes: its binary is cached, the lock released.
mkdir -p "$(dirname "$binary")"
printf '#!/bin/sh\n' >"$binary"
chmod +x "$binary"
exec 8>&-
status=0
wait "$waiter" || status=$?
[ "$status" -eq 0 ] || fail "the second build: exit $status, want 0: $(cat "$tmp/err")"
[ "$(cat "$tmp/out")" = "$binary" ] || fail "the second build printed '$(cat "$tmp/out")', want $binary"
! contains "$tmp/err" "building" || fail "the second build built again: $(cat "$tmp/err")"
no_stub_called "the second build"

echo "--- --check with the binary cached: its path"
[ "$("$build" --check)" = "$binary" ] || fail "--check does not print the cached binary"
echo "--- a bad argument: usage, exit 2"
status=0
"$build" --rebuild >/dev/null 2>"$tmp/err" || status=$?
[ "$status" -eq 2 ] && contains "$tmp/err" "usage:" || fail "bad argument: exit $status: $(cat "$tmp/err")"

echo "--- cluster.sh start with nothing cached: fails at once with the build command"
rm -rf "$tmp/cache"
status=0
ETCD=/bin/true ETCDCTL=/bin/true KUBECTL=/bin/true \
  timeout 60 "$cluster" start "$tmp/cluster" >"$tmp/out" 2>"$tmp/err" || status=$?
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "cluster.sh start: exit $status"
contains "$tmp/err" "$build_command" || fail "cluster.sh start does not give the build command: $(cat "$tmp/err")"
no_stub_called "cluster.sh start"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
