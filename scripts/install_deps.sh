#!/usr/bin/env bash
# Installs the Debian packages informerd needs, and nothing that is already there.
#   scripts/install_deps.sh build   # compile and run the daemon
#   scripts/install_deps.sh test    # also what the test suite uses (etcd, Python gRPC, kubectl,
#                                   # clang-16 for the fuzzers, podman for the image)
# Everything comes from Debian bookworm's archive; run as root (or with sudo available).
set -euo pipefail

mode=${1:-build}
build_packages=(
  bazel-bootstrap g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto libabsl-dev
  libboost-dev libboost-system-dev libboost-program-options-dev
  libssl-dev openssl rapidjson-dev libsimdjson-dev libspdlog-dev libfmt-dev libyaml-cpp-dev catch2
)
test_packages=(
  python3 python3-grpcio python3-grpc-tools python3-yaml etcd-server etcd-client curl procps
  # test/fuzz: libFuzzer, ASan and UBSan come with clang-16's runtime libraries.
  clang-16 libclang-rt-16-dev
  # test/deploy:image_test builds and runs the image (deploy/build_image.sh: podman with runc, the
  # base image made with debootstrap). node_test's containerd is opt-in (README "Running the pods
  # on a real node").
  podman runc debootstrap
)

wanted=("${build_packages[@]}")
[ "$mode" = test ] && wanted+=("${test_packages[@]}")
# kubectl: keep the one the machine has; otherwise Debian's (kubernetes-client).
if [ "$mode" = test ] && ! command -v kubectl >/dev/null 2>&1; then
  wanted+=(kubernetes-client)
fi

missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
# test/deploy/dockerfile_test.py asks apt-cache about bookworm's archive: it needs package lists.
need_lists=false
if [ "$mode" = test ] && ! compgen -G '/var/lib/apt/lists/*bookworm*Packages*' >/dev/null; then
  need_lists=true
fi
[ ${#missing[@]} -eq 0 ] && [ "$need_lists" = false ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "[install_deps] installing: ${missing[*]:-(package lists only)}" >&2
$sudo apt-get update -q >&2 || echo "[install_deps] apt-get update reported errors; trying anyway" >&2
[ ${#missing[@]} -eq 0 ] && exit 0
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
