#!/usr/bin/env bash
# Runs the Go client's unit tests (go test, GOPATH mode; see goenv.sh): the workqueue rules, the
# selector parser and store, the informer against an in-process fake informerd.
#   clients/go/test.sh [go test flags...]      e.g. -run Workqueue -v
# TEST_PACKAGES overrides which packages run (default: all of this module's).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/goenv.sh"
cd "$GO_BUILD_DIR/gopath/src/informerd.io/client"
read -r -a packages <<<"${TEST_PACKAGES:-${GO_CLIENT_PACKAGES[*]}}"
nice "$GO" vet "${packages[@]}"
exec nice "$GO" test -count=1 "$@" "${packages[@]}"
