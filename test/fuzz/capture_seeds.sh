#!/usr/bin/env bash
# Captures real kube-apiserver output for the fuzzers' seed corpora, from the test harness's
# throw-away cluster (test/cluster/cluster.sh), then writes test/fuzz/corpus/ with make_corpus.py.
#
#   export INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)
#   test/fuzz/capture_seeds.sh CAPTURE_DIR [CORPUS_ROOT]
#
# Creates pods, a ConfigMap, a CRD and custom resources; fetches LIST pages (compact JSON, as
# informerd receives it: the apiserver pretty-prints only for curl's user agent), a WATCH stream
# with updates, relabels, deletes and bookmarks, a watch ERROR 410 (from a second cluster with the
# watch cache off, compacted), Status bodies (404, 403, an expired continue token); copies the
# harness's kubeconfigs with every token replaced. Nothing secret is kept: CAPTURE_DIR holds no
# token or key, and the clusters are deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
corpus_root=${2:-test/fuzz/corpus}
work=$(mktemp -d)
cleanup() {
  test/cluster/cluster.sh stop "$work/c1" >/dev/null 2>&1 || true
  test/cluster/cluster.sh stop "$work/c2" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

test/cluster/cluster.sh start "$work/c1" --owner-pid=$$ >/dev/null
# shellcheck disable=SC1091
source "$work/c1/env"
export KUBECONFIG=$KUBECONFIG_ADMIN_TOKEN
printf 'Authorization: Bearer %s\n' "$TOKEN_ADMIN_TOKEN" >"$work/auth"
get() { curl -sS -A informerd-seed --cacert "$CA_FILE" -H @"$work/auth" "$APISERVER_URL$1"; }
watch() { curl -sS -N -A informerd-seed --cacert "$CA_FILE" -H @"$work/auth" "$APISERVER_URL$1"; }

kubectl create namespace shop >/dev/null
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: shop
  labels: {app: web, tier: frontend, "app.kubernetes.io/version": "1.2.3", env: prod}
  annotations: {"kubectl.kubernetes.io/note": "caf\u00e9 \"quoted\" \\ back", owner: "team-a"}
spec:
  nodeName: node-1
  containers:
  - name: nginx
    image: nginx:1.25
    ports: [{containerPort: 80}]
    env: [{name: GREETING, value: "h\u00e9llo\twörld ☃"}]
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: shop
  labels: {app: db, tier: backend, replicas: "3"}
spec:
  containers: [{name: pg, image: "postgres:16"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop, labels: {app: web}}
data: {key: "value", "multi.line": "a\nb\n", empty: ""}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
YAML
kubectl wait --for=condition=Established crd/widgets.example.com >/dev/null
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: example.com/v1
kind: Widget
metadata: {name: gear, namespace: shop, labels: {app: web, size: "42"}}
spec: {teeth: 12, ratio: 1.5e3, nested: {list: [1, "two", null, true, {"k": []}]}, enabled: false}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: sprocket, namespace: shop}
spec: {}
YAML

get /api/v1/pods >"$out/pod_list.json"
get '/api/v1/namespaces/shop/pods?limit=1' >"$out/pod_list_page1.json"
get /api/v1/configmaps >"$out/configmap_list.json"
get /apis/apiextensions.k8s.io/v1/customresourcedefinitions >"$out/crd_list.json"
get /apis/example.com/v1/widgets >"$out/widget_list.json"
get /api/v1/namespaces >"$out/namespace_list.json"
get /api/v1/nodes >"$out/node_list_empty.json"
get '/apis/rbac.authorization.k8s.io/v1/clusterroles?limit=3' >"$out/clusterrole_list_page.json"
get /api/v1/namespaces/shop/pods/nope >"$out/status_404.json"
curl -sS -A informerd-seed --cacert "$CA_FILE" -H "Authorization: Bearer $TOKEN_BOB_TOKEN" \
  "$APISERVER_URL/api/v1/pods" >"$out/status_403.json"

rv() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["resourceVersion"])' "$1"; }
watch "/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=$(rv "$out/pod_list.json")&timeoutSeconds=80" >"$out/pod_watch.jsonl" &
pod_watch=$!
watch "/apis/example.com/v1/widgets?watch=1&allowWatchBookmarks=true&resourceVersion=$(rv "$out/widget_list.json")&timeoutSeconds=80" >"$out/widget_watch.jsonl" &
widget_watch=$!
sleep 2
kubectl -n shop label pod web-1 tier=edge --overwrite >/dev/null
kubectl -n shop annotate pod web-1 'note=multi
line "value"' >/dev/null
kubectl -n shop run batch-1 --image=busybox --labels='app=batch,run=once' --restart=Never -- sh -c 'echo hi' >/dev/null
kubectl -n shop delete pod db-0 --wait=false >/dev/null
kubectl -n shop label widget gear size=43 --overwrite >/dev/null
kubectl -n shop patch widget sprocket --type=merge -p '{"spec":{"teeth":[1,2,3],"label":"\u00fcml\u00e4ut"}}' >/dev/null
kubectl -n shop delete widget sprocket >/dev/null
# The watches end after timeoutSeconds, having sent a bookmark or more (about one a minute).
wait "$pod_watch" "$widget_watch"
# The first page's continue token, once the list's revision is compacted away: 410 Expired.
test/cluster/cluster.sh compact "$work/c1" >/dev/null
get "/api/v1/namespaces/shop/pods?limit=1&continue=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["continue"])' "$out/pod_list_page1.json")" >"$out/status_410_continue.json"

for identity in admin-token admin-cert alice-token alice-cert bob-token; do
  sed -E 's/^( *token:).*/\1 REDACTED/' "$work/c1/kubeconfig/$identity" >"$out/kubeconfig_$identity"
done
test/cluster/cluster.sh stop "$work/c1" >/dev/null

# A watch ERROR event: without the watch cache, a watch from a compacted revision.
test/cluster/cluster.sh start "$work/c2" --owner-pid=$$ --watch-cache=false >/dev/null
# shellcheck disable=SC1091
source "$work/c2/env"
printf 'Authorization: Bearer %s\n' "$TOKEN_ADMIN_TOKEN" >"$work/auth"
KUBECONFIG=$KUBECONFIG_ADMIN_TOKEN kubectl create namespace x >/dev/null
test/cluster/cluster.sh compact "$work/c2" >/dev/null
watch '/api/v1/namespaces?watch=1&resourceVersion=5&timeoutSeconds=2' >"$out/error_410_watch.jsonl"
test/cluster/cluster.sh stop "$work/c2" >/dev/null

! grep -rlE 'BEGIN .*PRIVATE KEY|Bearer ' "$out" || { echo "capture_seeds.sh: a secret was captured" >&2; exit 1; }
python3 test/fuzz/make_corpus.py "$out" "$corpus_root"
echo "captured into $out; corpus written to $corpus_root"
