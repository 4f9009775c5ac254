#!/usr/bin/env bash
# Builds informerd and runs it in the foreground. Arguments are passed to informerd.
#
# Which cluster: --kubeconfig in the arguments, else $KUBECONFIG, else ~/.kube/config, else the
# in-cluster service account (KUBERNETES_SERVICE_HOST) — kubectl's order. With none of those, it
# starts a local test cluster (a real kube-apiserver + etcd on loopback, test/cluster/cluster.sh;
# the apiserver is built once from Debian's source package, about 5-8 minutes), seeds a few
# objects, and runs informerd against it. Ctrl-C stops informerd and everything started here.
#
#   scripts/run.sh                          # deploy/config/informerd.yaml on 127.0.0.1:50051
#   INFORMERD_CONFIG=my.yaml scripts/run.sh --log-format json
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh build
bazel build -c opt //cmd/informerd //cmd/informerctl
config=${INFORMERD_CONFIG:-deploy/config/informerd.yaml}
binary=bazel-bin/cmd/informerd/informerd

has_cluster_config() {
  local arg
  for arg in "$@"; do
    case "$arg" in --kubeconfig|--kubeconfig=*) return 0 ;; esac
  done
  [ -n "${KUBECONFIG:-}" ] || [ -f "${HOME:-/root}/.kube/config" ] || [ -n "${KUBERNETES_SERVICE_HOST:-}" ]
}

if has_cluster_config "$@"; then
  exec "$binary" --config "$config" "$@"
fi

echo "[run] no kubeconfig and no in-cluster config: starting a local test cluster" >&2
scripts/install_deps.sh test
INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)
export INFORMERD_KUBE_APISERVER
cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/informerd-cluster.XXXXXX")
rmdir "$cluster_dir"
cleanup() {
  test/cluster/cluster.sh stop "$cluster_dir" >/dev/null 2>&1 || true
  rm -rf "$cluster_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
test/cluster/cluster.sh start "$cluster_dir" --owner-pid=$$
kubeconfig=$(test/cluster/cluster.sh kubeconfig "$cluster_dir" admin-token)

# A few objects to look at.
kubectl --kubeconfig "$kubeconfig" apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo, labels: {app.kubernetes.io/part-of: informerd-demo}}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: demo, labels: {app: web}}
spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: demo, labels: {app: web}}
spec: {containers: [{name: web, image: nginx}]}
YAML

cat >&2 <<MSG
[run] local cluster: $(grep '^APISERVER_URL=' "$cluster_dir/env" | cut -d"'" -f2)
[run]   kubectl --kubeconfig $kubeconfig get pods -A
[run] once informerd is up, in another terminal:
[run]   bazel-bin/cmd/informerctl/informerctl resources
[run]   bazel-bin/cmd/informerctl/informerctl watch pods -A
[run]   grpcurl -plaintext 127.0.0.1:50051 list
[run]   curl http://127.0.0.1:9090/readyz ; curl -s http://127.0.0.1:9090/metrics | grep ^informerd_
[run] Ctrl-C stops informerd and the cluster.
MSG
# Not exec: the EXIT trap must stop the cluster when informerd ends.
"$binary" --config "$config" --kubeconfig "$kubeconfig" "$@"
