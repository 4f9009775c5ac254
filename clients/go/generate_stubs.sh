#!/usr/bin/env bash
# Regenerates the Go gRPC stubs committed in api/v1/ (import path informerd.io/client/api/v1,
# package informerdv1) from proto/informerd/v1/informerd.proto, with Debian's protoc,
# protoc-gen-go (1.28) and protoc-gen-go-grpc (packages protobuf-compiler, protoc-gen-go,
# protoc-gen-go-grpc). The proto has no go_package option: the import path is given with M.
#
#   clients/go/generate_stubs.sh           rewrite api/v1/informerd{,_grpc}.pb.go
#   clients/go/generate_stubs.sh --check   exit 1 (with a diff) if the committed stubs differ
#                                          from what the proto generates; change nothing
#
# Environment: PROTOC (default /usr/bin/protoc), PROTOC_GEN_GO (default /usr/bin/protoc-gen-go),
# PROTOC_GEN_GO_GRPC (default /usr/bin/protoc-gen-go-grpc), PROTO_ROOT (the directory holding
# informerd/v1/informerd.proto; default: the repository's proto/).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
protoc=${PROTOC:-/usr/bin/protoc}
gen_go=${PROTOC_GEN_GO:-/usr/bin/protoc-gen-go}
gen_go_grpc=${PROTOC_GEN_GO_GRPC:-/usr/bin/protoc-gen-go-grpc}
proto_root=${PROTO_ROOT:-$here/../../proto}
proto=informerd/v1/informerd.proto
mapping="M$proto=informerd.io/client/api/v1;informerdv1"
stubs=(informerd.pb.go informerd_grpc.pb.go)

die() { printf 'generate_stubs.sh: %s\n' "$*" >&2; exit 2; }
[ -x "$protoc" ] || die "$protoc not found (apt-get install protobuf-compiler, or set PROTOC)"
[ -x "$gen_go" ] || die "$gen_go not found (apt-get install protoc-gen-go, or set PROTOC_GEN_GO)"
[ -x "$gen_go_grpc" ] || die "$gen_go_grpc not found (apt-get install protoc-gen-go-grpc, or set PROTOC_GEN_GO_GRPC)"
[ -f "$proto_root/$proto" ] || die "$proto_root/$proto not found (set PROTO_ROOT)"

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) die "usage: $0 [--check]" ;;
esac

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$protoc" -I"$proto_root" \
  --plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_go_grpc" \
  --go_out="$out" --go_opt=paths=source_relative --go_opt="$mapping" \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative --go-grpc_opt="$mapping" \
  "$proto_root/$proto"

if ! $check; then
  for stub in "${stubs[@]}"; do
    cp "$out/informerd/v1/$stub" "$here/api/v1/$stub"
  done
  echo "generate_stubs.sh: wrote ${stubs[*]} in $here/api/v1"
  exit 0
fi

status=0
for stub in "${stubs[@]}"; do
  if ! diff -u "$here/api/v1/$stub" "$out/informerd/v1/$stub" >&2; then
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "generate_stubs.sh: the committed stubs differ from $proto: run clients/go/generate_stubs.sh" >&2
fi
exit $status
