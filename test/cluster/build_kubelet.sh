#!/usr/bin/env bash
# Builds a kubelet and the pause container's program from Debian's `kubernetes` source package
# (the tree test/cluster/kube_source.sh unpacks, the apiserver's version) with Debian's Go 1.19,
# once, and caches both outside the checkout, keyed by the source version. For the opt-in
# single-node cluster (test/cluster/node.sh). Prints the cache directory (holding `kubelet` and
# `pause`) on stdout; progress goes to stderr.
#
#   test/cluster/build_kubelet.sh            # build if missing (niced, one Go job), print the dir
#   test/cluster/build_kubelet.sh --check    # print the dir if built; never builds: exit 3
#
# Debian packages no kubelet (bookworm has kube-apiserver's source only); the kubelet needs no
# generated files beyond those the source package ships, so it builds in the shared cached tree
# itself (go build writes only to its cache and the output). pause: build/pause/linux/pause.c,
# linked statically as upstream's Makefile does, so its image needs nothing else.
#
# Environment: INFORMERD_CACHE_DIR (default /var/cache/informerd); INFORMERD_KUBE_SOURCE_VERSION.
set -euo pipefail

# shellcheck source=test/cluster/kube_source.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube_source.sh"
cache_dir=$kube_cache_dir
lock="$cache_dir/kubelet.lock"
log() { printf '[kubelet] %s\n' "$*" >&2; }

check_only=false
case "${1:-}" in
  "") ;;
  --check) check_only=true ;;
  *) log "usage: $0 [--check]"; exit 2 ;;
esac

if $check_only; then
  version=$(kube_source_version_readonly)
  if [ -n "$version" ] && [ -x "$cache_dir/kubelet-$version/kubelet" ] &&
    [ -x "$cache_dir/kubelet-$version/pause" ]; then
    echo "$cache_dir/kubelet-$version"
    exit 0
  fi
  log "kubelet ${version:-(version unknown)} is not built in $cache_dir$(kube_build_running_note "$lock"). Build it once (cached):"
  log "  test/cluster/build_kubelet.sh"
  exit 3
fi

kube_take_build_lock "$lock"
version=$(kube_source_version)
out="$cache_dir/kubelet-$version"
if [ -x "$out/kubelet" ] && [ -x "$out/pause" ]; then
  echo "$out"
  exit 0
fi

kube_install_packages golang-1.19-go golang-github-modern-go-reflect2-dev dpkg-dev gcc libc6-dev

work=$(mktemp -d "${TMPDIR:-/tmp}/kubelet-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$(kube_source_tree "$version" "$work")

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
log "building pause from $tree/build/pause/linux/pause.c"
version_define="-DVERSION=${version%%-*}-informerd"
gcc -Os -Wall -Werror -static "$version_define" -o "$out.tmp/pause" "$tree/build/pause/linux/pause.c"

export PATH=/usr/lib/go-1.19/bin:$PATH
export GOFLAGS= GOCACHE="$work/gocache" GO111MODULE=off
mkdir -p "$work/gopath/src/k8s.io"
ln -s "$tree" "$work/gopath/src/k8s.io/kubernetes"
log "go build k8s.io/kubernetes/cmd/kubelet (one job, niced; about 15 minutes on one core)"
GOPATH="$work/gopath" nice -n 19 go build -p 1 -o "$out.tmp/kubelet" k8s.io/kubernetes/cmd/kubelet >&2
rm -rf "$out"
mv "$out.tmp" "$out"
log "cached at $out"
echo "$out"
