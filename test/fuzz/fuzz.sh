#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of test/fuzz/ with Debian's clang-16
# (clang-16 + libclang-rt-16-dev; scripts/install_deps.sh test installs them).
#
#   test/fuzz/fuzz.sh build OUTDIR
#       Compiles the code under test and every target with -fsanitize=fuzzer,address,undefined
#       into OUTDIR/<target> (run from the repository root, or any directory holding core/,
#       daemon/ and test/fuzz/ as in the repository: Bazel's genrule runs it from its execroot).
#   test/fuzz/fuzz.sh smoke BINDIR SECONDS [CORPUS_ROOT]
#       Runs each target of BINDIR for SECONDS/7 seconds on its seed corpus
#       (CORPUS_ROOT/<target>, default test/fuzz/corpus), new inputs going to a temporary
#       directory; then replays test/fuzz/regressions/<target>/* if any. Fails on any crash,
#       leak, UB report or failed check. The test suite runs this (//test/fuzz:fuzz_smoke_test).
#   test/fuzz/fuzz.sh run TARGET SECONDS WORKDIR [extra libFuzzer flags...]
#       The long campaign for one target: builds into WORKDIR/bin if needed, keeps a growing
#       corpus in WORKDIR/corpus/TARGET (seeded from test/fuzz/corpus/TARGET), crash inputs in
#       WORKDIR/artifacts/TARGET/, the log in WORKDIR/TARGET.log, and ends with one line
#       "TARGET: N s, N execs (N/s), cov N, ft N, corpus N, crashes N" taken from the log
#       (crashes: crash, leak, timeout and out-of-memory inputs).
#       libFuzzer stops at the first crash; `-fork=1 -ignore_crashes=1` goes on past crashes,
#       keeping each input (fork mode counts coverage differently: compare like with like).
#   test/fuzz/fuzz.sh targets
#       Lists the targets.
#
# Environment: CLANGXX (default clang++-16), FUZZ_JOBS (parallel compiles, default 2).
set -euo pipefail

targets=(watch_event_decoder list_decoder object_scanner label_selector field_selector config
  kubeconfig)
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
clangxx=${CLANGXX:-clang++-16}

die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 1; }

# The code under test, per target (core/ and daemon/ sources, compiled once for all targets).
core_json=(core/record_strings.cc core/labels.cc core/object_record.cc core/object_scanner.cc)
sources_of() {
  case "$1" in
    watch_event_decoder) echo "${core_json[*]} core/watch_event_decoder.cc" ;;
    list_decoder) echo "${core_json[*]} core/list_decoder.cc core/watch_event_decoder.cc" ;;
    object_scanner) echo "${core_json[*]}" ;;
    label_selector) echo core/record_strings.cc core/labels.cc core/label_selector.cc ;;
    field_selector) echo core/field_selector.cc ;;
    config) echo daemon/config.cc ;;
    kubeconfig)
      echo daemon/kube/auth/kubeconfig.cc daemon/kube/auth/credentials.cc \
        daemon/kube/auth/environment.cc daemon/kube/auth/exec_plugin.cc \
        daemon/kube/auth/file_contents.cc daemon/kube/auth/pem.cc daemon/kube/auth/rest_config.cc
      ;;
    *) die "unknown target $1 (targets: ${targets[*]})" ;;
  esac
}
libs_of() {
  case "$1" in
    config) echo "-lyaml-cpp" ;;
    kubeconfig) echo "-lyaml-cpp -lssl -lcrypto" ;;
    object_scanner | watch_event_decoder | list_decoder) echo "-lsimdjson" ;;
    *) echo "" ;;
  esac
}

cxxflags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -I.
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -fsanitize-ignorelist=test/fuzz/ubsan_ignorelist.txt
  -Wall -Wextra)
ldflags=(-fsanitize=fuzzer,address,undefined)

build() {
  local out=$1
  command -v "$clangxx" >/dev/null || die "$clangxx not found: install clang-16 and libclang-rt-16-dev (scripts/install_deps.sh test)"
  [ -f core/object_scanner.cc ] || die "run from the repository root"
  mkdir -p "$out/obj"
  out=$(cd "$out" && pwd)
  local all=() t
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2207
    all+=($(sources_of "$t") "test/fuzz/${t}_fuzzer.cc")
  done
  # Each source once, compiled in parallel; test/fuzz's own files with -Werror.
  printf '%s\n' "${all[@]}" | sort -u | FUZZ_OUT=$out CLANGXX=$clangxx \
    xargs -P "${FUZZ_JOBS:-2}" -I{} bash -c '
      src={}; obj="$FUZZ_OUT/obj/${src//\//_}.o"; extra=()
      # Up to date: newer than its source, every header and this script (the flags).
      if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "$obj" -nt test/fuzz/fuzz.sh ] &&
        [ -z "$(find core daemon test/fuzz -name "*.h" -newer "$obj" -print -quit)" ]; then
        exit 0
      fi
      case "$src" in test/fuzz/*) extra=(-Werror) ;; esac
      exec "$CLANGXX" "$@" "${extra[@]}" -c "$src" -o "$obj"' _ "${cxxflags[@]}"
  local absl
  absl=$(pkg-config --libs absl_status absl_statusor absl_strings)
  for t in "${targets[@]}"; do
    local objs=() src
    for src in $(sources_of "$t") "test/fuzz/${t}_fuzzer.cc"; do
      objs+=("$out/obj/${src//\//_}.o")
    done
    # shellcheck disable=SC2046
    "$clangxx" "${ldflags[@]}" "${objs[@]}" -o "$out/$t" $(libs_of "$t") -lfmt $absl
  done
}

# Prints the summary line of a libFuzzer log.
summary() {
  local target=$1 log=$2 seconds=$3 corpus=$4 artifacts=$5
  local last execs cov ft
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(grep -oE '^#[0-9]+' <<<"$last" | tr -d '#' || true)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  local crashes
  # Crashes, leaks, timeouts and out-of-memory inputs; not slow-unit-* (only reported).
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) 2>/dev/null | wc -l)
  printf '%s: %s s, %s execs (%s/s), cov %s, ft %s, corpus %s, crashes %s\n' "$target" \
    "$seconds" "${execs:-0}" "$(( ${execs:-0} / (seconds > 0 ? seconds : 1) ))" "${cov:-?}" \
    "${ft:-?}" "$(find "$corpus" -type f | wc -l)" "$crashes"
}

fuzz_flags() {
  local target=$1
  # A unit that runs for a minute is a hang; shorter limits fail on a busy machine (a starved
  # process once took over 10 s of wall time for a unit that runs in milliseconds).
  local flags=(-rss_limit_mb=2048 -timeout=60 -print_final_stats=1)
  [ -f "$script_dir/dict/$target.dict" ] && flags+=("-dict=$script_dir/dict/$target.dict")
  printf '%s\n' "${flags[@]}"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Stack traces with function names and lines: any llvm-symbolizer will do (clang-16's own is in
# the llvm-16 package; Debian's default llvm provides llvm-symbolizer).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for symbolizer in llvm-symbolizer-16 llvm-symbolizer; do
    if command -v "$symbolizer" >/dev/null; then
      ASAN_SYMBOLIZER_PATH=$(command -v "$symbolizer")
      export ASAN_SYMBOLIZER_PATH
      break
    fi
  done
fi

# The report part of a fuzzer's log (without ASan's shadow-byte legend), for failures.
report() {
  grep -v -E '^(  0x|=>0x)|^ +(Shadow|Addressable|Partially|Heap left|Freed|Stack |Global|Poisoned|Container|Array|Intra|ASan|Left|Right)' "$1" |
    grep -A45 -m1 -E 'ERROR: |check failed|runtime error' || tail -40 "$1"
}

smoke() {
  local bin=$1 total=$2 corpus_root=${3:-$script_dir/corpus}
  local each=$(( total / ${#targets[@]} ))
  [ "$each" -ge 1 ] || each=1
  local tmp failed=0 t
  tmp=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/fuzz-smoke.XXXXXX")
  for t in "${targets[@]}"; do
    mkdir -p "$tmp/$t/new" "$tmp/$t/artifacts"
    local log=$tmp/$t/log
    local flags
    mapfile -t flags < <(fuzz_flags "$t")
    local began=$SECONDS
    if ! "$bin/$t" "${flags[@]}" -max_total_time="$each" -artifact_prefix="$tmp/$t/artifacts/" \
      "$tmp/$t/new" "$corpus_root/$t" >"$log" 2>&1; then
      echo "FAILED $t: the fuzzer found a problem:" >&2
      report "$log" >&2
      # Keep the input (Bazel: in bazel-testlogs/.../test.outputs/).
      if [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
        cp "$tmp/$t/artifacts/"* "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null || true
        echo "the input is in $TEST_UNDECLARED_OUTPUTS_DIR (bazel-testlogs/test/fuzz/fuzz_smoke_test/test.outputs/)" >&2
      fi
      failed=1
    fi
    summary "$t" "$log" "$((SECONDS - began))" "$tmp/$t/new" "$tmp/$t/artifacts"
    if [ -d "$script_dir/regressions/$t" ]; then
      local input
      for input in "$script_dir/regressions/$t"/*; do
        [ -f "$input" ] || continue
        if ! "$bin/$t" "$input" >"$tmp/$t/regression.log" 2>&1; then
          echo "FAILED $t: regression input $input:" >&2
          report "$tmp/$t/regression.log" >&2
          failed=1
        fi
      done
    fi
  done
  rm -rf "$tmp"
  return "$failed"
}

run() {
  local target=$1 seconds=$2 work=$3
  shift 3
  sources_of "$target" >/dev/null
  mkdir -p "$work"
  work=$(cd "$work" && pwd)
  [ -x "$work/bin/$target" ] || (cd "$script_dir/../.." && build "$work/bin")
  local corpus=$work/corpus/$target artifacts=$work/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  local flags
  mapfile -t flags < <(fuzz_flags "$target")
  local status=0 began=$SECONDS
  "$work/bin/$target" "${flags[@]}" -max_total_time="$seconds" -artifact_prefix="$artifacts/" \
    "$@" "$corpus" "$script_dir/corpus/$target" >"$work/$target.log" 2>&1 || status=$?
  summary "$target" "$work/$target.log" "$((SECONDS - began))" "$corpus" "$artifacts"
  [ "$status" -eq 0 ] || report "$work/$target.log" >&2
  return "$status"
}

case "${1:-}" in
  build) [ $# -eq 2 ] || die "usage: fuzz.sh build OUTDIR"; build "$2" ;;
  smoke) [ $# -ge 3 ] || die "usage: fuzz.sh smoke BINDIR SECONDS [CORPUS_ROOT]"; smoke "$2" "$3" "${4:-}" ;;
  run) [ $# -ge 4 ] || die "usage: fuzz.sh run TARGET SECONDS WORKDIR [libFuzzer flags]"; shift; run "$@" ;;
  targets) printf '%s\n' "${targets[@]}" ;;
  *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
