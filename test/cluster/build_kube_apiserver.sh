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
set -euo pipefail

cache_dir=${INFORMERD_CACHE_DIR:-/var/cache/informerd}
lock="$cache_dir/kube-apiserver.lock"
log() { printf '[kube-apiserver] %s\n' "$*" >&2; }

check_only=false
case "${1:-}" in
  "") ;;
  --check) check_only=true ;;
  *) log "usage: $0 [--check]"; exit 2 ;;
esac

# The source version decides the cache key. `apt-cache showsrc` needs the deb-src entry.
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
  if [ -n "$version" ] && [ -x "$cache_dir/kube-apiserver-$version/kube-apiserver" ]; then
    echo "$cache_dir/kube-apiserver-$version/kube-apiserver"
    exit 0
  fi
  running=""
  if [ -e "$lock" ] && ! flock -n "$lock" true 2>/dev/null; then
    running=" (a build is running now; the command waits for it)"
  fi
  log "kube-apiserver ${version:-(version unknown)} is not built in $cache_dir$running. Build it once (about 8 minutes on 2 cores; cached), before the tests:"
  log "  export INFORMERD_KUBE_APISERVER=\$(test/cluster/build_kube_apiserver.sh)"
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
out="$cache_dir/kube-apiserver-$version"
if [ -x "$out/kube-apiserver" ]; then
  echo "$out/kube-apiserver"
  exit 0
fi

log "building kube-apiserver $version from Debian's source package (about 8 minutes on 2 cores)"
need=()
for p in golang-1.19-go rsync golang-github-modern-go-reflect2-dev dpkg-dev make; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kube-apiserver-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
log "fetching the source package"
apt-get source --download-only kubernetes >&2
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

# Go 1.19 crashes the vendored reflect2 1.0.1 ("fatal error: fault" in mapiternext): use Debian's 1.0.2.
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2

mkdir -p "$work/gopath/src/k8s.io"
ln -s "$src" "$work/gopath/src/k8s.io/kubernetes"
log "go build k8s.io/kubernetes/cmd/kube-apiserver (about 6 minutes)"
mkdir -p "$out.tmp"
GOPATH="$work/gopath" go build -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
rm -rf "$out"
mv "$out.tmp" "$out"
log "cached at $out/kube-apiserver"
echo "$out/kube-apiserver"
