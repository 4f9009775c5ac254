#!/usr/bin/env bash
# Builds a real kube-apiserver from Debian's `kubernetes` source package (1.20.2) with Debian's
# Go 1.19, once, and caches it outside the checkout, keyed by the source version. Prints the
# binary's path on stdout; progress goes to stderr.
#
#   test/cluster/build_kube_apiserver.sh            # build if missing (about 8 minutes), print path
#   test/cluster/build_kube_apiserver.sh --check    # print the cached path; never builds: when it
#                                                   # is missing, exits 3 saying how to build it
#
# Tests never build (a build outlives any test timeout): they run --check (cluster_fixture.cc,
# cluster.sh), and scripts/test.sh builds beforehand. Builds are serialized by a lock
# (flock on $INFORMERD_CACHE_DIR/kube-apiserver.lock), so that two callers never build into the
# same temporary output: the second waits for the first, then prints what it built.
#
# Environment: INFORMERD_CACHE_DIR (default /var/cache/informerd); INFORMERD_KUBE_SOURCE_VERSION
# (the cache key; default: the version of Debian's kubernetes source package, from apt-cache).
# The source version, lock and package steps are test/cluster/kube_source.sh's. The build works in
# a copy of its own (`make generated_files` writes into the tree), not the shared cached tree.
set -euo pipefail

# shellcheck source=test/cluster/kube_source.sh
source "$(dirname "${BASH_SOURCE[0]}")/kube_source.sh"
cache_dir=$kube_cache_dir
lock="$cache_dir/kube-apiserver.lock"
log() { printf '[kube-apiserver] %s\n' "$*" >&2; }

check_only=false
case "${1:-}" in
  "") ;;
  --check) check_only=true ;;
  *) log "usage: $0 [--check]"; exit 2 ;;
esac

if $check_only; then
  version=$(kube_source_version_readonly)
  if [ -n "$version" ] && [ -x "$cache_dir/kube-apiserver-$version/kube-apiserver" ]; then
    echo "$cache_dir/kube-apiserver-$version/kube-apiserver"
    exit 0
  fi
  log "kube-apiserver ${version:-(version unknown)} is not built in $cache_dir$(kube_build_running_note "$lock"). Build it once (about 8 minutes on 2 cores; cached), before the tests:"
  log "  export INFORMERD_KUBE_APISERVER=\$(test/cluster/build_kube_apiserver.sh)"
  exit 3
fi

kube_take_build_lock "$lock"
version=$(kube_source_version)
out="$cache_dir/kube-apiserver-$version"
if [ -x "$out/kube-apiserver" ]; then
  echo "$out/kube-apiserver"
  exit 0
fi

log "building kube-apiserver $version from Debian's source package (about 8 minutes on 2 cores)"
kube_install_packages golang-1.19-go rsync golang-github-modern-go-reflect2-dev dpkg-dev make

work=$(mktemp -d "${TMPDIR:-/tmp}/kube-apiserver-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
log "fetching the source package"
kube_fetch_source "$version" "$work"
tar -xzf kubernetes_*.orig.tar.gz
src=$(find . -maxdepth 1 -mindepth 1 -type d -name 'kubernetes*' | head -n 1)
[ -n "$src" ] || { log "source tree not found after unpacking"; exit 1; }
src=$(cd "$src" && pwd)

export PATH=/usr/lib/go-1.19/bin:$PATH
export GOFLAGS= GOCACHE="$work/gocache" GO111MODULE=off
cd "$src"
log "make generated_files (about 2 minutes)"
if ! make generated_files >"$work/gen.log" 2>&1; then
  log "first generated_files run failed; retrying from a clean _output"
  rm -rf _output
  make generated_files >"$work/gen.log" 2>&1 || { tail -n 30 "$work/gen.log" >&2; exit 1; }
fi

kube_swap_reflect2 "$src"

mkdir -p "$work/gopath/src/k8s.io"
ln -s "$src" "$work/gopath/src/k8s.io/kubernetes"
log "go build k8s.io/kubernetes/cmd/kube-apiserver (about 6 minutes)"
mkdir -p "$out.tmp"
GOPATH="$work/gopath" go build -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
rm -rf "$out"
mv "$out.tmp" "$out"
log "cached at $out/kube-apiserver"
echo "$out/kube-apiserver"
