#!/bin/bash
# fanout_bench --smoke runs to the end and prints every figure line, well formed (not the
# figures' values: they depend on the machine). Argument: the fanout_bench binary.
set -euo pipefail
bench="$1"
output="$("$bench" --smoke)" || { echo "fanout_bench --smoke failed:"; echo "$output"; exit 1; }
echo "$output"
status=0
ms='[0-9]+\.[0-9]+ ms'
for scenario in fanout-10x200 fanout-40x20 fanout-search-10 fanout-search-20; do
  grep -Eq "^\[$scenario-latency\] p50 $ms, p99 $ms, max $ms from the fake's stamp to each subscriber's receipt, over [1-9][0-9]* \(subscriber, event\) pairs: [0-9]+ subscribers x [1-9][0-9]* events in [0-9.]+ s at [0-9]+ ev/s; [0-9]+ pairs missing" <<<"$output" || { echo "[$scenario-latency] missing or malformed"; status=1; }
  grep -Eq "^\[$scenario-spread\] p50 $ms, p99 $ms, max $ms from the first subscriber's receipt of an event to the last's, over [1-9][0-9]* events" <<<"$output" || { echo "[$scenario-spread] missing or malformed"; status=1; }
  grep -Eq "^\[$scenario-snapshots\] [0-9]+ of [0-9]+ snapshots of [0-9]+ objects complete [0-9.]+ s after the first Subscribe was sent \(median subscriber [0-9.]+ s; [0-9]+ objects/s in all\); CPU s until then: informerd [0-9.]+, bench [0-9.]+ in [0-9.]+ s$" <<<"$output" || { echo "[$scenario-snapshots] missing or malformed"; status=1; }
  grep -Eq "^\[$scenario-snapshot-pauses\] first message [0-9.]+ s after Subscribe \(median\), [0-9.]+ s \(max\); longest pause between two messages of a snapshot [0-9.]+ s \(median subscriber\), [0-9.]+ s \(max\)$" <<<"$output" || { echo "[$scenario-snapshot-pauses] missing or malformed"; status=1; }
  grep -Eq "^\[$scenario-ended\] [0-9]+ subscribers ended by the server" <<<"$output" || { echo "[$scenario-ended] missing or malformed"; status=1; }
  grep -Eq "^\[$scenario-cpu\] CPU s in [0-9.]+ s: informerd [0-9.]+, fakeapi [0-9.]+, bench [0-9.]+$" <<<"$output" || { echo "[$scenario-cpu] missing or malformed"; status=1; }
done
grep -Eq "^\[fanout-search\] largest subscriber count with p99 <= [0-9]+ ms at [0-9]+ ev/s \(doubling from [0-9]+ up to [0-9]+\): [0-9]+ \(p99 [0-9.]+ ms\)" <<<"$output" || { echo "[fanout-search] missing or malformed"; status=1; }
# The same with batched messages (--batch: SubscribeRequest.max_events_per_message), one scenario.
batched="$("$bench" --smoke --only 10x200 --batch 16)" || { echo "fanout_bench --smoke --batch 16 failed:"; echo "$batched"; exit 1; }
echo "$batched"
grep -q "up to 16 events per message" <<<"$batched" || { echo "--batch not in the header line"; status=1; }
grep -Eq "^\[fanout-10x200-latency\] p50 $ms, p99 $ms, max $ms from the fake's stamp to each subscriber's receipt, over [1-9][0-9]* \(subscriber, event\) pairs" <<<"$batched" || { echo "[fanout-10x200-latency] missing or malformed with --batch"; status=1; }
grep -Eq "^\[fanout-10x200-snapshots\] 10 of 10 snapshots" <<<"$batched" || { echo "[fanout-10x200-snapshots] not all complete with --batch"; status=1; }
exit $status
