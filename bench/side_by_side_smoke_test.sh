#!/bin/bash
# side_by_side --smoke with the client-go peer runs to the end and prints every figure line in
# its form "[tag] informerd X | client-go Y | ratio Z" (Get/List: "| apiserver Y |"), and the
# table (not the figures' values: they depend on the machine). Argument: the side_by_side
# binary, which finds the peer itself ($INFORMERD_PEER, else bench/peer/build_peer.sh --check from
# its runfiles: bench/peer's files are this test's data) and exits 3 saying how to build it when
# there is none. Needs $INFORMERD_KUBE_APISERVER or its cached build, as every cluster test does.
set -euo pipefail
bench="$1"
output="$("$bench" --smoke)" || {
  echo "side_by_side --smoke failed:"
  echo "$output"
  exit 1
}
echo "$output"
status=0
number='[0-9][0-9.]*'
for tag in sync-objects-per-second sync-objects-per-cpu-second rss-per-object-typed \
    rss-per-object-typed-strip rss-per-object-dynamic rss-per-json-byte \
    consumers-1-apiserver-watches consumers-1-apiserver-cpu consumers-1-rss consumers-1-cpu \
    consumers-3-apiserver-watches consumers-3-apiserver-cpu consumers-3-rss consumers-3-cpu \
    get-latency list-namespace-latency list-all-latency relist-peak; do
  line="$(grep "^\[$tag\] " <<<"$output" || true)"
  if [[ -z "$line" ]]; then
    echo "missing figure line [$tag]"
    status=1
  elif ! grep -Eq "^\[$tag\] informerd $number.* \| (client-go|apiserver) .*$number.* \| ratio $number+x$" <<<"$line"; then
    echo "malformed figure line: $line"
    status=1
  fi
done
# One watch for informerd whatever the subscribers, one per client-go informer.
grep -Eq '^\[consumers-3-apiserver-watches\] informerd 1 .*\| client-go 3 ' <<<"$output" ||
  { echo "watches: expected informerd 1, client-go 3"; status=1; }
grep -Eq '^\[relist-peak\] informerd [0-9.]+x .*[1-9][0-9]* expired relist' <<<"$output" ||
  { echo "no relist measured"; status=1; }
grep -q '^| 6. relist peak' <<<"$output" || { echo "no table"; status=1; }
exit $status
