#!/usr/bin/env bash
# Regenerates the Python gRPC stubs committed in informerd/v1/ from
# proto/informerd/v1/informerd.proto, with Debian's protoc and gRPC's Python plugin
# (packages protobuf-compiler, protobuf-compiler-grpc).
#
#   clients/python/generate_stubs.sh           rewrite informerd/v1/informerd_pb2{,_grpc}.py
#   clients/python/generate_stubs.sh --check   exit 1 (with a diff) if the committed stubs differ
#                                              from what the proto generates; change nothing
#
# Environment: PROTOC (default /usr/bin/protoc), GRPC_PYTHON_PLUGIN (default
# /usr/bin/grpc_python_plugin), PROTO_ROOT (the directory holding informerd/v1/informerd.proto;
# default: the repository's proto/, found from this script's location).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
protoc=${PROTOC:-/usr/bin/protoc}
plugin=${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}
proto_root=${PROTO_ROOT:-$here/../../proto}
proto=informerd/v1/informerd.proto
stubs=(informerd_pb2.py informerd_pb2_grpc.py)

die() { printf 'generate_stubs.sh: %s\n' "$*" >&2; exit 2; }
[ -x "$protoc" ] || die "$protoc not found (apt-get install protobuf-compiler, or set PROTOC)"
[ -x "$plugin" ] || die "$plugin not found (apt-get install protobuf-compiler-grpc, or set GRPC_PYTHON_PLUGIN)"
[ -f "$proto_root/$proto" ] || die "$proto_root/$proto not found (set PROTO_ROOT)"

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) die "usage: $0 [--check]" ;;
esac

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$protoc" -I"$proto_root" --python_out="$out" --grpc_out="$out" \
  --plugin=protoc-gen-grpc="$plugin" "$proto_root/$proto"

if ! $check; then
  for stub in "${stubs[@]}"; do
    cp "$out/informerd/v1/$stub" "$here/informerd/v1/$stub"
  done
  echo "generate_stubs.sh: wrote ${stubs[*]} in $here/informerd/v1"
  exit 0
fi

status=0
for stub in "${stubs[@]}"; do
  if ! diff -u "$here/informerd/v1/$stub" "$out/informerd/v1/$stub" >&2; then
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "generate_stubs.sh: the committed stubs differ from $proto: run clients/python/generate_stubs.sh" >&2
fi
exit $status
