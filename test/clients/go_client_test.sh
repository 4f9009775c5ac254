#!/usr/bin/env bash
# The Go client's unit tests (clients/go/test.sh: go test in GOPATH mode): client-go's workqueue
# rules with many workers; the informer against an in-process fake informerd (batching, resume,
# OUT_OF_RANGE re-snapshot with tombstones, fatal codes, backoff values, resync, indexers); the
# label-selector parser and the store.
set -euo pipefail
exec "${GO_CLIENT_DIR:-clients/go}/test.sh" -v "$@"
