#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds a real kube-apiserver once (cached under
# /var/cache/informerd), runs every Bazel test, and ends with the line "N passed, N failed"
# (N = test targets). Extra arguments go to `bazel test` (for example --config=asan).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh test
INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)
export INFORMERD_KUBE_APISERVER
INFORMERD_PEER=$(bench/peer/build_peer.sh)  # the client-go peer of the benchmarks (cached too)
export INFORMERD_PEER

log=$(mktemp "${TMPDIR:-/tmp}/informerd-test.XXXXXX")
trap 'rm -f "$log"' EXIT
set +e
bazel test "$@" //... 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" || true)
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)' "$log" || true)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # the build itself failed: no test result lines
fi
echo "$passed passed, $failed failed"
exit "$status"
