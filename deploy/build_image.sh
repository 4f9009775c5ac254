#!/usr/bin/env bash
# Builds informerd's container image from deploy/Dockerfile with podman, also on a machine that
# reaches no image registry (only Debian's archive): the Debian base images the Dockerfile names
# are then made locally with debootstrap, once, and cached.
#
#   deploy/build_image.sh [--tag TAG] [-- PODMAN_BUILD_ARGS...]
#       The full build: Bazel inside the `build` stage, then the runtime stage. Slow (a fresh
#       Bazel build of the two binaries in the container; see README "Docker image").
#   deploy/build_image.sh --prebuilt INFORMERD INFORMERCTL [--tag TAG] [-- PODMAN_BUILD_ARGS...]
#       The same runtime stage with binaries built outside (bazel-bin/cmd/informerd/informerd and
#       bazel-bin/cmd/informerctl/informerctl): the Dockerfile's `prebuilt` target, Bazel is not
#       run; seconds once the runtime packages' layer is cached. For tests.
#   deploy/build_image.sh --base-only       only make (or find) the base images
#   deploy/build_image.sh --check           exit 0 if an image can be built here, else 3 and why
#
# TAG defaults to localhost/informerd:0.1.0 (the chart's default image is informerd:0.1.0). The
# image's id is printed on stdout, progress on stderr. Exit status 3: this machine cannot build an
# image (no podman or runc; no base image and no debootstrap or no Debian mirror to make one):
# tests skip on it. Any other failure is the build's own and exits 1.
#
# Base images: `FROM debian:bookworm-slim` and `FROM debian:bookworm` resolve to whatever image of
# that name podman has. When there is none (no registry here), this script makes one:
# `debootstrap --variant=minbase bookworm` (about a minute), trimmed like Debian's official slim
# images for docker.io/library/debian:bookworm-slim (no documentation, manual pages or
# translations; apt keeps no .debs or lists), untrimmed for docker.io/library/debian:bookworm (the
# build stage installs everything it needs with apt). The root filesystems' tarballs are kept in
# $INFORMERD_CACHE_DIR (default /var/cache/informerd), so a later import needs no network. On
# a machine with a registry, `podman pull debian:bookworm-slim debian:bookworm` first and this
# script uses those.
#
# podman runs with runc (`--runtime runc`; crun fails on hosts in cgroup hybrid mode),
# `--pull=never` and `--network host` (no bridge, so no host network changes). Environment: PODMAN (default podman), INFORMERD_CACHE_DIR, DEBIAN_MIRROR
# (default http://deb.debian.org/debian).
set -euo pipefail
# runc and debootstrap live in /usr/sbin, which a test's PATH (Bazel's strict action environment)
# lacks.
PATH=$PATH:/usr/sbin:/sbin

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
podman=${PODMAN:-podman}
cache_dir=${INFORMERD_CACHE_DIR:-/var/cache/informerd}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The two base images (the build stage's and the runtime stage's) and their cached root filesystems.
base_names=(docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim)
base_tars=("$cache_dir/debian-bookworm-minbase.tar" "$cache_dir/debian-bookworm-minbase-slim.tar")

log() { printf '[build_image] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
cannot() { log "cannot build an image here: $*"; exit 3; }
usage() { sed -n '6,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

mode=full tag=localhost/informerd:0.1.0 informerd= informerctl=
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt)
      [ $# -ge 3 ] || usage
      mode=prebuilt informerd=$2 informerctl=$3
      shift 3
      ;;
    --tag) [ $# -ge 2 ] || usage; tag=$2; shift 2 ;;
    --base-only) mode=base; shift ;;
    --check) mode=check; shift ;;
    --) shift; extra=("$@"); break ;;
    *) usage ;;
  esac
done

# ---------------------------------------------------------------------------------------------
# What this machine has.

command -v "$podman" >/dev/null || cannot "podman is not installed (apt-get install podman runc)"
command -v runc >/dev/null || cannot "runc is not installed (apt-get install runc)"
[ "$(id -u)" -eq 0 ] || cannot "not root: this script uses podman's root storage (rootless podman needs subuids and fuse-overlayfs; not tried)"

have_image() { "$podman" image exists "$1" 2>/dev/null; }

have_base() {
  local name
  for name in "${base_names[@]}"; do have_image "$name" || return 1; done
}

mirror_reachable() {
  curl -fsS --max-time 10 -o /dev/null "$mirror/dists/bookworm/Release" 2>/dev/null
}

# Why the base cannot be made, or nothing.
base_obstacle() {
  have_base && return 0
  [ -f "${base_tars[0]}" ] && [ -f "${base_tars[1]}" ] && return 0
  command -v debootstrap >/dev/null || { echo "no debian:bookworm-slim image and no debootstrap to make one (apt-get install debootstrap)"; return 0; }
  mirror_reachable || echo "no debian:bookworm-slim image, and Debian's mirror $mirror is unreachable to debootstrap one"
}

# ---------------------------------------------------------------------------------------------
# The base image.

# Settings both images share, as Debian's official images have them: apt keeps no .debs and no
# translations; the sources of bookworm, its updates and security updates.
configure_rootfs() {
  local r=$1
  cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
CFG
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
    "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/etc/resolv.conf "$r"/etc/hostname
  # The runtime supplies /dev; an image carries an empty one.
  rm -rf "${r:?}"/dev/*
}

# Trims root filesystem $1 as Debian's official slim images are trimmed (the dpkg setting kept
# inside, so that later installs stay trimmed). Not for the build stage's image: some packages'
# scripts (openjdk's, which bazel-bootstrap needs) fail without /usr/share/man.
slim_rootfs() {
  local r=$1
  cat >"$r/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
# As Debian's official slim images: no documentation, manual pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/groff/* "$r"/usr/share/info/* \
    "$r"/usr/share/lintian/* "$r"/usr/share/locale/*
}

make_base() {
  local lock="$cache_dir/debian-base.lock" i
  mkdir -p "$cache_dir"
  exec 7>>"$lock"
  flock 7
  if have_base; then
    exec 7>&-
    return 0
  fi
  if [ ! -f "${base_tars[0]}" ] || [ ! -f "${base_tars[1]}" ]; then
    local obstacle
    obstacle=$(base_obstacle)
    [ -z "$obstacle" ] || cannot "$obstacle"
    local rootfs="$cache_dir/debian-bookworm-minbase.rootfs.tmp"
    rm -rf "$rootfs"
    log "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
    nice -n 19 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 ||
      { tail -n 20 "$cache_dir/debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed (log: $cache_dir/debootstrap.log)"; }
    configure_rootfs "$rootfs"
    tar --numeric-owner -C "$rootfs" -cf "${base_tars[0]}.tmp" .
    slim_rootfs "$rootfs"
    tar --numeric-owner -C "$rootfs" -cf "${base_tars[1]}.tmp" .
    mv "${base_tars[0]}.tmp" "${base_tars[0]}"
    mv "${base_tars[1]}.tmp" "${base_tars[1]}"
    rm -rf "$rootfs"
  fi
  for i in 0 1; do
    have_image "${base_names[$i]}" && continue
    log "importing ${base_tars[$i]} as ${base_names[$i]}"
    "$podman" import --change 'CMD ["bash"]' "${base_tars[$i]}" "${base_names[$i]}" >/dev/null 2>&1 ||
      die "podman import ${base_tars[$i]} failed"
  done
  exec 7>&-
}

# ---------------------------------------------------------------------------------------------

if [ "$mode" = check ]; then
  obstacle=$(base_obstacle)
  [ -z "$obstacle" ] || cannot "$obstacle"
  log "an image can be built here (podman $("$podman" version --format '{{.Client.Version}}' 2>/dev/null || echo '?'), runc)"
  exit 0
fi

make_base
[ "$mode" != base ] || { log "base images: ${base_names[*]}"; exit 0; }

# --network host: RUN steps (apt-get) use the host's network; podman's default bridge would turn on
# ip_forward and add iptables chains (CNI-FORWARD, CNI-ADMIN) and a cni-podman0 bridge on the host.
build_args=(--pull=never --runtime runc --network host -f deploy/Dockerfile -t "$tag")
work=
trap '[ -z "$work" ] || rm -rf "$work"' EXIT

context=$repo
if [ "$mode" = prebuilt ]; then
  for binary in "$informerd" "$informerctl"; do
    [ -f "$binary" ] && [ -x "$binary" ] || die "$binary: not an executable file"
  done
  # A context of exactly what the `prebuilt` target copies (the caller's tree may be Bazel's
  # runfiles, whose symlinks point outside it).
  work=$(mktemp -d "${TMPDIR:-/tmp}/build_image.XXXXXX")
  mkdir -p "$work/deploy/config" "$work/prebuilt"
  cp -L "$repo/deploy/Dockerfile" "$work/deploy/Dockerfile"
  cp -L "$repo/deploy/config/informerd.yaml" "$work/deploy/config/informerd.yaml"
  cp -L "$informerd" "$work/prebuilt/informerd"
  cp -L "$informerctl" "$work/prebuilt/informerctl"
  chmod 0755 "$work/prebuilt"/*
  build_args+=(--target prebuilt)
  context=$work
fi

previous=$("$podman" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
log "podman build ${build_args[*]} ${extra[*]} $context"
started=$SECONDS
(cd "$context" && "$podman" build "${build_args[@]}" "${extra[@]}" . >&2) ||
  die "podman build failed"
id=$("$podman" image inspect --format '{{.Id}}' "$tag")
# A rebuild under the same tag leaves the previous image untagged: remove it (its layers that
# the new image shares stay).
if [ -n "$previous" ] && [ "$previous" != "$id" ] &&
  [ -z "$("$podman" image inspect --format '{{.RepoTags}}' "$previous" 2>/dev/null | tr -d '[]')" ]; then
  "$podman" rmi "$previous" >/dev/null 2>&1 || true
fi
size=$("$podman" image inspect --format '{{.Size}}' "$tag")
log "built $tag (${id:0:12}) in $((SECONDS - started))s: $((size / 1000000)) MB ($size bytes)"
echo "$id"
