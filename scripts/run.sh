#!/usr/bin/env bash
# Builds informerd and runs it in the foreground. Arguments are passed to informerd.
#   scripts/run.sh                          # deploy/config/informerd.yaml on 127.0.0.1:50051
#   INFORMERD_CONFIG=my.yaml scripts/run.sh --log-format json
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh build
bazel build -c opt //cmd/informerd
config=${INFORMERD_CONFIG:-deploy/config/informerd.yaml}
exec bazel-bin/cmd/informerd/informerd --config "$config" "$@"
