#!/usr/bin/env bash
# The Go client against a real etcd + kube-apiserver (test/cluster/cluster.sh) and the real
# informerd: clients/go/internal/clustertest (convergence with kubectl's change history,
# informerd restarted, a client that falls behind, tokens). Skipped, saying how to build one,
# when no kube-apiserver is found. Paths are the Bazel runfiles' (relative to the working
# directory), overridable: INFORMERD_BIN, CLUSTER_SH, KUBECTL, GO_CLIENT_DIR. By hand, from the
# repository root:
#
#   INFORMERD_BIN=bazel-bin/cmd/informerd/informerd test/clients/go_cluster_test.sh
set -euo pipefail
abs() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }
INFORMERD_BIN=$(abs "${INFORMERD_BIN:-cmd/informerd/informerd}")
CLUSTER_SH=$(abs "${CLUSTER_SH:-test/cluster/cluster.sh}")
export INFORMERD_BIN CLUSTER_SH KUBECTL=${KUBECTL:-/usr/bin/kubectl}
[ -x "$INFORMERD_BIN" ] || { echo "FAIL: no informerd at $INFORMERD_BIN (set INFORMERD_BIN)" >&2; exit 1; }
[ -x "$CLUSTER_SH" ] || { echo "FAIL: no cluster.sh at $CLUSTER_SH (set CLUSTER_SH)" >&2; exit 1; }
go_client_dir=${GO_CLIENT_DIR:-clients/go}
TEST_PACKAGES=informerd.io/client/internal/clustertest \
  exec "$go_client_dir/test.sh" -v -timeout 15m "$@"
