#!/bin/bash
# decode_bench with a few milliseconds per case runs to the end and prints every figure line, for
# both pod sizes and both of the object scanner's parsers (not the figures' values: they depend
# on the machine). Argument: the decode_bench binary.
set -euo pipefail
bench="$1"
output="$("$bench" 0.01)" || { echo "decode_bench failed:"; echo "$output"; exit 1; }
echo "$output"
status=0
figure=' +[0-9]+ objects/s +[0-9.]+ MB/s$'
for line in \
    'watch decoder, 16 KiB pieces, strip managedFields, 2 paths' \
    'the same, simdjson \(fast_path kAlways\)' \
    'watch decoder, 16 KiB pieces, keep managedFields, 2 paths' \
    'watch decoder, as the first, one non-ASCII char per pod' \
    'the same, RapidJSON only \(fast_path kOff\)' \
    'list decoder, 500-item page, strip managedFields, 2 paths' \
    '\(floor\) RapidJSON, no-op handler, in situ on a copy'; do
  count=$(grep -cE "^ +$line$figure" <<<"$output" || true)
  # Each line once per pod size (the "the same" lines follow more than one case).
  if [ "$count" -lt 2 ]; then
    echo "figure line missing or malformed (found $count, want >= 2): $line"
    status=1
  fi
done
grep -q '^500 pods of 4\.[0-9] KB' <<<"$output" || { echo "no 4 KB heading"; status=1; }
grep -q '^500 pods of 20\.[0-9] KB' <<<"$output" || { echo "no 20 KB heading"; status=1; }
exit $status
