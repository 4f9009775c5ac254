#!/usr/bin/env bash
# Builds informerd-peer (bench/peer/*.go, a client-go informer program) against the client-go 1.20
# vendored in Debian's `kubernetes` source package, with Debian's Go 1.19, and caches the binary
# outside the checkout, keyed by the source version and a hash of bench/peer's Go sources. Prints
# the binary's path on stdout; progress goes to stderr.
#
#   bench/peer/build_peer.sh            # build if missing (about 2 minutes on 2 cores), print path
#   bench/peer/build_peer.sh --check    # print the cached path; never builds: when it is
#                                       # missing, exits 3 saying how to build it
#
# The same conventions as test/cluster/build_kube_apiserver.sh: tests never build (they run
# --check), scripts/test.sh builds beforehand, and builds are serialized by a lock (flock on
# $INFORMERD_CACHE_DIR/informerd-peer.lock): the second caller waits, then prints what the first
# built. The unpacked source tree is cached too ($INFORMERD_CACHE_DIR/kubernetes-src-VERSION, with
# Debian's reflect2 1.0.2 in place of the vendored 1.0.1, which crashes under Go 1.19), as is Go's
# build cache (peer-gocache-VERSION), so a change to the Go sources rebuilds in seconds. The program
# is compiled in GOPATH mode (peer-gopath-VERSION) as k8s.io/kubernetes/informerd-peer, beside a
# link to the tree's vendor/ directory, which is what supplies client-go; `make generated_files`
# is not needed.
#
# Environment: INFORMERD_CACHE_DIR (default /var/cache/informerd); INFORMERD_KUBE_SOURCE_VERSION
# (the source part of the cache key; default: the version of Debian's kubernetes source package,
# from apt-cache). The source version, locks, packages and cached tree are
# test/cluster/kube_source.sh's.
set -euo pipefail

peer_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/cluster/kube_source.sh
source "$peer_dir/../../test/cluster/kube_source.sh"
cache_dir=$kube_cache_dir
lock="$cache_dir/informerd-peer.lock"
log() { printf '[informerd-peer] %s\n' "$*" >&2; }

check_only=false
case "${1:-}" in
  "") ;;
  --check) check_only=true ;;
  *) log "usage: $0 [--check]"; exit 2 ;;
esac

# The sources part of the cache key: file names and contents of bench/peer/*.go.
sources_hash=$(cd "$peer_dir" && sha256sum -- *.go | sha256sum | cut -c1-12)

if $check_only; then
  version=$(kube_source_version_readonly)
  binary="$cache_dir/informerd-peer-$version-$sources_hash/informerd-peer"
  if [ -n "$version" ] && [ -x "$binary" ]; then
    echo "$binary"
    exit 0
  fi
  log "informerd-peer (kubernetes ${version:-(version unknown)}, sources $sources_hash) is not built in $cache_dir$(kube_build_running_note "$lock"). Build it once (about 2 minutes on 2 cores; cached), before the tests:"
  log "  export INFORMERD_PEER=\$(bench/peer/build_peer.sh)"
  exit 3
fi

kube_take_build_lock "$lock"
version=$(kube_source_version)
out="$cache_dir/informerd-peer-$version-$sources_hash"
if [ -x "$out/informerd-peer" ]; then
  echo "$out/informerd-peer"
  exit 0
fi

kube_install_packages golang-1.19-go golang-github-modern-go-reflect2-dev dpkg-dev

work=$(mktemp -d "${TMPDIR:-/tmp}/informerd-peer-build.XXXXXX")
trap 'rm -rf "$work" "$out.tmp"' EXIT
tree=$(kube_source_tree "$version" "$work")

# A GOPATH that stays put (under the lock): Go's build cache keys packages by their directory, so
# a fresh temporary GOPATH would recompile all of client-go every time.
gopath="$cache_dir/peer-gopath-$version"
pkg="$gopath/src/k8s.io/kubernetes"
rm -rf "$pkg/informerd-peer"
mkdir -p "$pkg/informerd-peer"
ln -sfn "$tree/vendor" "$pkg/vendor"
cp "$peer_dir"/*.go "$pkg/informerd-peer/"
export PATH=/usr/lib/go-1.19/bin:$PATH
export GOFLAGS='' GO111MODULE=off GOPATH="$gopath" GOCACHE="$cache_dir/peer-gocache-$version"
log "go build k8s.io/kubernetes/informerd-peer (about 2 minutes the first time, seconds after)"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
nice -n 10 go build -o "$out.tmp/informerd-peer" k8s.io/kubernetes/informerd-peer >&2
rm -rf "$out"
mv "$out.tmp" "$out"
log "cached at $out/informerd-peer"
echo "$out/informerd-peer"
