#!/usr/bin/env bash
# Builds and vets the Go client in GOPATH mode (see goenv.sh): clients/go/build.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/goenv.sh"
cd "$GO_BUILD_DIR/gopath/src/informerd.io/client"
nice "$GO" build "${GO_CLIENT_PACKAGES[@]}"
nice "$GO" vet "${GO_CLIENT_PACKAGES[@]}"
echo "build.sh: built ${GO_CLIENT_PACKAGES[*]}"
