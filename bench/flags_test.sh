#!/bin/bash
# The benchmarks' flags (bench/flags.h): an unknown flag, a flag without its value and a flag
# given twice fail with exit 2 and a message naming the flag; --help lists the flags and exits 0;
# with --smoke, a flag given explicitly wins over the smoke number wherever it stands. Nothing is
# measured: the runs stop before (or, for the last check, just after the header line, as the
# fake is /bin/false). Arguments: the fanout_bench, overload_bench and side_by_side binaries.
set -uo pipefail
status=0
fail() {
  echo "FAIL: $*"
  status=1
}
# expect_error BINARY PATTERN ARGS...: BINARY ARGS exits 2 and its stderr matches PATTERN.
expect_error() {
  local bench="$1" pattern="$2"
  shift 2
  local output code
  output="$("$bench" "$@" 2>&1 >/dev/null)"
  code=$?
  [[ $code == 2 ]] || fail "$(basename "$bench") $* exited $code, not 2: $output"
  grep -q -- "$pattern" <<<"$output" || fail "$(basename "$bench") $*: no '$pattern' in: $output"
}
for bench in "$@"; do
  name="$(basename "$bench")"
  expect_error "$bench" "^$name: unrecognised option '--nonsense'" --nonsense 1
  expect_error "$bench" "^$name: unrecognised option '--win'" --win 2  # no abbreviations
  expect_error "$bench" "^$name: the required argument for option '--window' is missing" --window
  expect_error "$bench" "^$name: the argument ('abc') for option '--window' is invalid" \
    --window abc
  expect_error "$bench" "^$name: option '--window' cannot be specified more than once" \
    --window 1 --window 2
  expect_error "$bench" "^$name: too many positional options" stray
  help="$("$bench" --help)" || fail "$name --help failed"
  for flag in --window --smoke --help; do
    grep -q -- "$flag" <<<"$help" || fail "$name --help does not list $flag: $help"
  done
done

# --smoke's numbers are defaults only: fanout_bench --smoke serves 200 pods, with --objects 50
# (after --smoke or before it) 50. Its header line says so before the fake (/bin/false) fails.
fanout="$1"
header() { "$fanout" "$@" --fakeapi /bin/false --informerd /bin/false 2>/dev/null | head -1; }
grep -q ", 200 pods of" <<<"$(header --smoke)" || fail "--smoke: $(header --smoke)"
for args in "--smoke --objects 50" "--objects 50 --smoke" "--smoke --objects=50"; do
  # shellcheck disable=SC2086 # args is a list of flags.
  line="$(header $args)"
  grep -q ", 50 pods of" <<<"$line" || fail "$args: $line"
done
[[ $status == 0 ]] && echo PASS
exit $status
