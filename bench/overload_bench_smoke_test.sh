#!/bin/bash
# overload_bench --smoke runs to the end and prints every figure line (not the figures' values:
# they depend on the machine). Argument: the overload_bench binary.
set -euo pipefail
bench="$1"
output="$("$bench" --smoke)" || { echo "overload_bench --smoke failed:"; echo "$output"; exit 1; }
echo "$output"
status=0
for tag in ingest-1-resource-no-clients ingest-1-resource-with-clients clients-list-get \
    ingest-ratio-with-clients ingest-4-resources ingest-ratio-4-to-1 list-flood-rss \
    list-flood-clients list-flood-limits list-flood-cpu; do
  if ! grep -q "^\[$tag\] " <<<"$output"; then
    echo "missing figure line [$tag]"
    status=1
  fi
done
# Every ingest line has a rate and each process's CPU time; the clients got answers.
grep -q '^\[ingest-1-resource-no-clients\] [0-9]* events/s applied .*CPU s in .* informerd .* fakeapi .* bench ' <<<"$output" || { echo "ingest line malformed"; status=1; }
grep -q '^\[clients-list-get\] [1-9][0-9]* Get/s, [1-9][0-9]* List/s' <<<"$output" || { echo "no Get or List answered"; status=1; }
grep -q '^\[list-flood-rss\] informerd resident [0-9.]* MB steady, [0-9.]* MB peak' <<<"$output" || { echo "no RSS figure"; status=1; }
grep -q '^\[list-flood-limits\] --max-list-response-bytes=[0-9]* --max-list-response-objects=[0-9]*' <<<"$output" || { echo "no limits"; status=1; }
exit $status
