#!/usr/bin/env bash
# informerd-peer (bench/peer) against a real etcd + kube-apiserver (test/cluster/cluster.sh) with a
# few pods: in typed and dynamic mode with --informers 3 --strip-managed-fields, the "synced" line
# counts every informer's pods (objects = informers x pods) and its figures are positive numbers;
# with --run-seconds and --latency-annotation, a pod update stamped with the send time after the
# sync gives one latency sample per informer in the "end" line. Stdout holds nothing but the JSON
# lines.
#
# The peer is $INFORMERD_PEER, else bench/peer/build_peer.sh --check's cached build; with neither,
# the test fails at once with the command that builds it (a build outlives any test timeout).
set -euo pipefail

tmp=${TEST_TMPDIR:?}/peer_cluster_test
rm -rf "$tmp"
mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

if [ -n "${INFORMERD_PEER:-}" ]; then
  peer=$INFORMERD_PEER
  [ -x "$peer" ] || { echo "FAIL: INFORMERD_PEER=$peer is not an executable file" >&2; exit 1; }
elif ! peer=$(bench/peer/build_peer.sh --check); then
  echo "FAIL: no informerd-peer: set INFORMERD_PEER or build it (the message above says how)" >&2
  exit 1
fi

cluster=$tmp/cluster
test/cluster/cluster.sh start "$cluster" --owner-pid=$$ >"$tmp/cluster.out" 2>"$tmp/cluster.err" || {
  cat "$tmp/cluster.err" >&2
  echo "FAIL: cluster.sh start" >&2
  exit 1
}
trap 'test/cluster/cluster.sh stop "$cluster" >/dev/null 2>&1 || true' EXIT
kubeconfig=$cluster/kubeconfig/admin-token
kubectl() { /usr/bin/kubectl --kubeconfig "$kubeconfig" --cache-dir "$tmp/kube-cache" "$@"; }

pods=4
informers=3
for i in $(seq "$pods"); do
  kubectl apply -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata:
  name: peer-test-$i
  namespace: default
spec:
  containers:
  - name: c
    image: example.invalid/none
POD
done
key=informerd.io/bench-sent-unix-nanos

# check JSON_LINE PYTHON_EXPRESSION [NAME=VALUE...]: the expression over the parsed line `j` (and
# the values given as NAME=VALUE, integers when all digits) is true. Python, not jq: the test suite
# installs python3, not jq.
check() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
line, expr = sys.argv[1], sys.argv[2]
names = {k: int(v) if v.isdigit() else v for k, v in (a.split("=", 1) for a in sys.argv[3:])}
def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
try:
    j = json.loads(line)
except ValueError:
    sys.exit(1)
sys.exit(0 if isinstance(j, dict) and eval("(" + expr + ")", {"num": num, "j": j, **names}) else 1)
PY
}

# check_synced FILE MODE: FILE's first line is the synced line of MODE with every pod per informer.
check_synced() {
  local line
  line=$(head -n 1 "$1")
  check "$line" 'j["phase"] == "synced" and j["mode"] == mode and j["informers"] == informers
    and j["objects"] == informers * pods
    and all(num(j[k]) for k in ("sync_seconds", "cpu_seconds", "rss_bytes", "go_heap_inuse_bytes"))' \
    informers="$informers" pods="$pods" mode="$2" ||
    fail "$2: synced line wrong (want objects $((informers * pods)), positive figures): $line"
}

# only_json FILE: every stdout line is a JSON object with a phase.
only_json() {
  local line
  [ -s "$1" ] || fail "nothing on stdout"
  while IFS= read -r line; do
    check "$line" '"phase" in j' || fail "stdout holds more than the JSON lines: $(cat "$1")"
  done <"$1"
}

for mode in typed dynamic; do
  echo "--- $mode: --informers $informers --strip-managed-fields"
  status=0
  timeout 60 "$peer" --kubeconfig "$kubeconfig" --mode "$mode" --informers "$informers" \
    --strip-managed-fields >"$tmp/$mode.out" 2>"$tmp/$mode.err" || status=$?
  [ "$status" -eq 0 ] || fail "$mode: exit $status: $(tail -n 5 "$tmp/$mode.err")"
  cat "$tmp/$mode.out"
  check_synced "$tmp/$mode.out" "$mode"
  only_json "$tmp/$mode.out"
  [ "$(wc -l <"$tmp/$mode.out")" -eq 1 ] || fail "$mode: more than the synced line without --run-seconds"

  echo "--- $mode: --run-seconds, an update stamped with its send time"
  out=$tmp/$mode-run.out
  timeout 60 "$peer" --kubeconfig "$kubeconfig" --mode "$mode" --informers "$informers" \
    --strip-managed-fields --run-seconds 6 --latency-annotation "$key" >"$out" 2>"$tmp/$mode-run.err" &
  pid=$!
  for _ in $(seq 300); do
    [ -s "$out" ] && break
    sleep 0.1
  done
  kubectl annotate pod peer-test-1 --overwrite "$key=$(date +%s%N)" >/dev/null
  status=0
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || fail "$mode: --run-seconds: exit $status: $(tail -n 5 "$tmp/$mode-run.err")"
  cat "$out"
  check_synced "$out" "$mode"
  only_json "$out"
  end=$(sed -n 2p "$out")
  # One update seen by each informer; the stamp was taken before kubectl started, so a sample
  # includes kubectl's start: positive, and below the run's length.
  check "$end" 'j["phase"] == "end" and j["events"] == informers
    and j["latency_samples"] == informers
    and 0 < j["latency_p50_ms"] <= j["latency_p99_ms"] <= j["latency_max_ms"] < 6000
    and all(num(j[k]) for k in ("cpu_seconds", "rss_bytes", "go_heap_inuse_bytes"))' \
    informers="$informers" || fail "$mode: end line wrong (want $informers events and samples): $end"
done

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
