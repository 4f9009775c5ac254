#!/usr/bin/env bash
# The suite's short fuzzing run: builds every libFuzzer target with clang-16 (fuzz.sh build) from
# the sources in the runfiles, fuzzes each for FUZZ_SMOKE_SECONDS/7 seconds (default 56 s in all)
# from the committed seed corpora, and replays test/fuzz/regressions/. Any crash, leak, UB report
# or failed invariant fails the test, with the fuzzer's log.
set -euo pipefail
cd "${TEST_SRCDIR:-$(dirname "$0")/../..}/${TEST_WORKSPACE:-}" 2>/dev/null || cd "$(dirname "$0")/../.."
bin=$(mktemp -d "${TEST_TMPDIR:-/tmp}/fuzzers.XXXXXX")
start=$SECONDS
test/fuzz/fuzz.sh build "$bin"
echo "built the fuzzers in $((SECONDS - start)) s"
test/fuzz/fuzz.sh smoke "$bin" "${FUZZ_SMOKE_SECONDS:-56}"
