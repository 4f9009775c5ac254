#!/usr/bin/env bash
# client-go's own SharedIndexInformer (client-go 1.20, vendored in Debian's kubernetes source
# package) over clients/go/clientgo's ListWatch, against an in-process fake informerd
# (clients/go/clientgo/listwatch_test.go). Built in GOPATH mode as
# k8s.io/kubernetes/informerd-clientgo beside a link to the tree's vendor/ (which supplies
# client-go, apimachinery, grpc 1.27 and protobuf 1.25); the generated stubs are copied into the
# package's own vendor/ as informerd.io/client/api/v1, less their grpc.SupportPackageIsVersion7
# assertion (grpc 1.27 predates it; the stubs use nothing newer).
#
# The source tree is only read, never fetched: KUBE_SOURCE_TREE, else the newest
# $INFORMERD_CACHE_DIR/kubernetes-src-* (default /var/cache/informerd) that the cluster harness
# unpacked (test/cluster/build_kube_apiserver.sh). Without one the test is skipped, saying so.
# The first build compiles client-go (about 2-3 minutes on one core; cached in GO_BUILD_DIR).
set -euo pipefail
go_client_dir=$(cd "${GO_CLIENT_DIR:-clients/go}" && pwd -P)
tree=${KUBE_SOURCE_TREE:-}
if [ -z "$tree" ]; then
  for candidate in "${INFORMERD_CACHE_DIR:-/var/cache/informerd}"/kubernetes-src-*; do
    [ -d "$candidate/vendor/k8s.io/client-go/tools/cache" ] && tree=$candidate
  done
fi
if [ -z "$tree" ] || [ ! -d "$tree/vendor/k8s.io/client-go/tools/cache" ]; then
  echo "SKIPPED: no kubernetes source tree with a vendored client-go (set KUBE_SOURCE_TREE, or" \
       "run test/cluster/build_kube_apiserver.sh once, which unpacks it)"
  exit 0
fi
GO=${GO:-/usr/lib/go-1.19/bin/go}
build_dir=${GO_BUILD_DIR:-${TEST_TMPDIR:-$go_client_dir/../../.cache}/go-build}
gopath="$build_dir/clientgo-gopath"
pkg="$gopath/src/k8s.io/kubernetes"
mkdir -p "$pkg" "$build_dir/clientgo-cache"
ln -sfn "$tree/vendor" "$pkg/vendor"
rm -rf "$pkg/informerd-clientgo"
mkdir -p "$pkg/informerd-clientgo/vendor/informerd.io/client/api/v1"
cp "$go_client_dir"/clientgo/*.go "$pkg/informerd-clientgo/"
for stub in "$go_client_dir"/api/v1/*.go; do
  grep -v '^const _ = grpc.SupportPackageIsVersion7$' "$stub" \
    >"$pkg/informerd-clientgo/vendor/informerd.io/client/api/v1/$(basename "$stub")"
done
export GOFLAGS='' GO111MODULE=off GOPATH="$gopath" GOCACHE="$build_dir/clientgo-cache" GOPROXY=off
export HOME=${HOME:-$build_dir}
cd "$pkg/informerd-clientgo"
nice "$GO" vet k8s.io/kubernetes/informerd-clientgo
exec nice "$GO" test -count=1 -v "$@" k8s.io/kubernetes/informerd-clientgo
