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
# from apt-cache).
set -euo pipefail

cache_dir=${INFORMERD_CACHE_DIR:-/var/cache/informerd}
lock="$cache_dir/informerd-peer.lock"
peer_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[informerd-peer] %s\n' "$*" >&2; }

check_only=false
case "${1:-}" in
  "") ;;
  --check) check_only=true ;;
  *) log "usage: $0 [--check]"; exit 2 ;;
esac

# The sources part of the cache key: file names and contents of bench/peer/*.go.
sources_hash=$(cd "$peer_dir" && sha256sum -- *.go | sha256sum | cut -c1-12)

# The source version decides the other part. `apt-cache showsrc` needs the deb-src entry.
ensure_deb_src() {
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    log "adding a deb-src entry for bookworm"
    cat > /etc/apt/sources.list.d/informerd-src.sources <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q >&2
  fi
}

source_version() {
  apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/{print $2; exit}'
}

if $check_only; then
  # Reads only: no deb-src entry added, no apt-get update, no lock taken.
  version=${INFORMERD_KUBE_SOURCE_VERSION:-$(source_version || true)}
  binary="$cache_dir/informerd-peer-$version-$sources_hash/informerd-peer"
  if [ -n "$version" ] && [ -x "$binary" ]; then
    echo "$binary"
    exit 0
  fi
  running=""
  if [ -e "$lock" ] && ! flock -n "$lock" true 2>/dev/null; then
    running=" (a build is running now; the command waits for it)"
  fi
  log "informerd-peer (kubernetes ${version:-(version unknown)}, sources $sources_hash) is not built in $cache_dir$running. Build it once (about 2 minutes on 2 cores; cached), before the tests:"
  log "  export INFORMERD_PEER=\$(bench/peer/build_peer.sh)"
  exit 3
fi

# One build at a time: whoever comes second waits, then finds the binary cached.
mkdir -p "$cache_dir"
exec 9>>"$lock"
if ! flock -n 9; then
  log "another build holds $lock: waiting for it"
  flock 9
fi

if [ -n "${INFORMERD_KUBE_SOURCE_VERSION:-}" ]; then
  version=$INFORMERD_KUBE_SOURCE_VERSION
else
  ensure_deb_src
  version=$(source_version)
  if [ -z "$version" ]; then
    apt-get update -q >&2
    version=$(source_version)
  fi
fi
[ -n "$version" ] || { log "cannot find Debian's kubernetes source package"; exit 1; }
out="$cache_dir/informerd-peer-$version-$sources_hash"
if [ -x "$out/informerd-peer" ]; then
  echo "$out/informerd-peer"
  exit 0
fi

need=()
for p in golang-1.19-go golang-github-modern-go-reflect2-dev dpkg-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/informerd-peer-build.XXXXXX")
trap 'rm -rf "$work" "${tree:-}.tmp" "$out.tmp"' EXIT

tree="$cache_dir/kubernetes-src-$version"
if [ ! -d "$tree/vendor/k8s.io/client-go/" ]; then
  log "fetching and unpacking Debian's kubernetes $version source package"
  (cd "$work" && apt-get source --download-only "kubernetes=$version" >&2)
  rm -rf "$tree.tmp"
  mkdir -p "$tree.tmp"
  tar -xzf "$work"/kubernetes_*.orig.tar.gz -C "$tree.tmp" --strip-components=1
  # Go 1.19 crashes the vendored reflect2 1.0.1 ("fatal error: fault" in mapiternext).
  rm -rf "$tree.tmp/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree.tmp/vendor/github.com/modern-go/reflect2"
  rm -rf "$tree"
  mv "$tree.tmp" "$tree"
fi

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
