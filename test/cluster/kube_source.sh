# Sourced by the scripts that build programs from Debian's `kubernetes` source package with
# Debian's Go 1.19 and cache them under $INFORMERD_CACHE_DIR (build_kube_apiserver.sh,
# bench/peer/build_peer.sh): the source version that keys their caches, the build lock, the
# packages a build needs, and the unpacked source tree they share. The caller defines log().
#
# Environment: INFORMERD_CACHE_DIR (default /var/cache/informerd); INFORMERD_KUBE_SOURCE_VERSION
# (the cache key's source version; default: the version of Debian's kubernetes source package,
# from apt-cache).

kube_cache_dir=${INFORMERD_CACHE_DIR:-/var/cache/informerd}

# `apt-cache showsrc` needs a deb-src entry: adds one for bookworm when there is none.
kube_ensure_deb_src() {
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

kube_apt_source_version() {
  apt-cache showsrc kubernetes 2>/dev/null | awk '/^Version:/{print $2; exit}'
}

# For --check: the version without changing anything (no deb-src entry added, no apt-get
# update); empty when it cannot be known.
kube_source_version_readonly() {
  echo "${INFORMERD_KUBE_SOURCE_VERSION:-$(kube_apt_source_version || true)}"
}

# For a build: the version, adding the deb-src entry and updating apt's lists if need be; exits
# when there is no kubernetes source package.
kube_source_version() {
  local version=${INFORMERD_KUBE_SOURCE_VERSION:-}
  if [ -z "$version" ]; then
    kube_ensure_deb_src
    version=$(kube_apt_source_version)
    if [ -z "$version" ]; then
      apt-get update -q >&2
      version=$(kube_apt_source_version)
    fi
  fi
  [ -n "$version" ] || { log "cannot find Debian's kubernetes source package"; exit 1; }
  echo "$version"
}

# " (a build is running now; ...)" when another process holds lock file $1, else nothing.
kube_build_running_note() {
  if [ -e "$1" ] && ! flock -n "$1" true 2>/dev/null; then
    echo " (a build is running now; the command waits for it)"
  fi
}

# One build at a time: takes lock file $1 on fd 9 (held until the script exits), waiting for
# whoever holds it, who will have cached what the caller then finds.
kube_take_build_lock() {
  mkdir -p "$kube_cache_dir"
  exec 9>>"$1"
  if ! flock -n 9; then
    log "another build holds $1: waiting for it"
    flock 9
  fi
}

# Installs those of the Debian packages named that are missing.
kube_install_packages() {
  local need=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
  fi
}

# Go 1.19 crashes the vendored reflect2 1.0.1 ("fatal error: fault" in mapiternext): puts
# Debian's 1.0.2 (golang-github-modern-go-reflect2-dev) in its place in source tree $1.
kube_swap_reflect2() {
  rm -rf "$1/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$1/vendor/github.com/modern-go/reflect2"
}

# Fetches the source package of version $1 into directory $2 (apt-get source --download-only).
kube_fetch_source() {
  (cd "$2" && apt-get source --download-only "kubernetes=$1" >&2)
}

# The unpacked source tree of version $1, cached as $kube_cache_dir/kubernetes-src-VERSION with
# reflect2 swapped (unpacked once, under the caller's lock; $2 is a scratch directory); prints
# its path. Never built in: builds that generate files into it work on a copy.
kube_source_tree() {
  local version=$1 scratch=$2 tree="$kube_cache_dir/kubernetes-src-$1"
  mkdir -p "$kube_cache_dir"
  # Its own lock (fd 8): builds of different programs, under different locks, share the tree.
  exec 8>>"$kube_cache_dir/kubernetes-src.lock"
  flock 8
  if [ ! -d "$tree/vendor/k8s.io/client-go/" ]; then
    log "fetching and unpacking Debian's kubernetes $version source package"
    kube_fetch_source "$version" "$scratch"
    rm -rf "$tree.tmp"
    mkdir -p "$tree.tmp"
    tar -xzf "$scratch"/kubernetes_*.orig.tar.gz -C "$tree.tmp" --strip-components=1
    kube_swap_reflect2 "$tree.tmp"
    rm -rf "$tree"
    mv "$tree.tmp" "$tree"
  fi
  flock -u 8
  echo "$tree"
}
