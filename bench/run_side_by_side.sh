#!/bin/bash
# The side-by-side suite in one go: builds bench:side_by_side optimised (-c opt, in an output base
# of its own so that the default fastbuild build is not evicted), builds or finds kube-apiserver
# and the client-go peer (each cached under /var/cache/informerd; the first build of each takes a
# few minutes), and runs it: figure lines, then a Markdown table (README "Performance").
# Arguments go to side_by_side (--pods 3000 --namespaces 4 --consumers 1,10,100 --callers 50
# --window 5 --no-peer --smoke ...). Not part of CI: it takes a few minutes and loads both cores.
#   BAZEL_OUTPUT_BASE  the output base (default ~/.cache/bazel_opt)
#   BAZEL_FLAGS        extra flags for `bazel run` (e.g. --local_cpu_resources=1)
set -euo pipefail
cd "$(dirname "$0")/.."
output_base="${BAZEL_OUTPUT_BASE:-$HOME/.cache/bazel_opt}"
export INFORMERD_KUBE_APISERVER="${INFORMERD_KUBE_APISERVER:-$(test/cluster/build_kube_apiserver.sh)}"
if [[ " $* " != *" --no-peer "* ]]; then
  export INFORMERD_PEER="${INFORMERD_PEER:-$(bench/peer/build_peer.sh)}"
fi
# shellcheck disable=SC2086 # BAZEL_FLAGS is a list of flags.
exec bazel --output_base="$output_base" run -c opt ${BAZEL_FLAGS:-} //bench:side_by_side -- "$@"
