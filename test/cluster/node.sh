#!/usr/bin/env bash
# A single worker node for a cluster started by cluster.sh: containerd + runc (Debian's) and a
# kubelet built from Debian's kubernetes source (build_kubelet.sh), registered as node
# "informerd-node". Opt-in, for the deployment tests that run real pods (test/deploy/node_test.py).
#
#   node.sh start CLUSTER_DIR [--owner-pid=PID]
#       Starts containerd and the kubelet against the cluster in CLUSTER_DIR, imports the pause
#       image (built from the source's build/pause), waits until the node is registered, writes
#       CLUSTER_DIR/node.env. With --owner-pid, a watchdog stops the node once PID is gone.
#   node.sh load-image CLUSTER_DIR ARCHIVE   imports a `podman save --format docker-archive` tar
#   node.sh stop CLUSTER_DIR                 stops the kubelet, every pod's containers, containerd;
#                                            unmounts and removes the node's state; undoes what
#                                            the kubelet changed on the host (see below)
#
# What is bent for a test machine (README "Docker image"):
# - No scheduler and no controller-manager: tests create pods with spec.nodeName set (from a
#   Deployment's template), add the projected ServiceAccount token volume the ServiceAccount
#   admission plugin would add (cluster.sh turns the plugin off), and create the kube-root-ca.crt
#   ConfigMap the controller-manager would publish.
# - Host networking only: no CNI configuration (bridge networking would flip ip_forward and add
#   iptables chains), so the node stays NotReady ("cni config uninitialized") and only
#   hostNetwork pods run; the kubelet makes no iptables chains (makeIPTablesUtilChains: false).
# - The kubelet sets vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops
#   and kernel.keys.root_max{keys,bytes} as it does on every node (there is no way to keep them
#   and run it): `start` saves their values and `stop` restores them. It writes container logs to
#   /var/log/pods and /var/log/containers (fixed paths): `stop` removes what this node put there.
# - The kubelet's API: anonymous, AlwaysAllow, on 127.0.0.1 only (the apiserver has no kubelet
#   client certificate); `kubectl logs` works through it.
# - cgroupfs, no per-QoS cgroups, no node-allocatable enforcement, swap allowed; no oom_score_adj
#   below containerd's (restrict_oom_score_adj: lowering it may be refused).
# - The node's address is the default route's interface's (the kubelet refuses a loopback one);
#   the kubelet's API still listens on 127.0.0.1 only, so `kubectl logs` does not reach it: read
#   the log files in /var/log/pods.
# State lives in a short directory of its own (NODE_DIR in node.env, under /tmp: unix socket paths
# must stay under 108 bytes, which a test's TMPDIR exceeds).
#
# Environment: INFORMERD_KUBELET_DIR (kubelet and pause; default: build_kubelet.sh --check),
# CONTAINERD (default /usr/bin/containerd), CTR (default /usr/bin/ctr), KUBECTL.
set -euo pipefail
# runc and sysctl live in /usr/sbin, which a test's PATH (Bazel's strict action environment) lacks.
PATH=$PATH:/usr/sbin:/sbin

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$script_dir/$(basename "${BASH_SOURCE[0]}")"
containerd_bin=${CONTAINERD:-/usr/bin/containerd}
ctr_bin=${CTR:-/usr/bin/ctr}
kubectl_bin=${KUBECTL:-/usr/bin/kubectl}
node_name=informerd-node
pause_image=localhost/informerd-pause:1
sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

die() { printf 'node.sh: %s\n' "$*" >&2; exit 1; }
log() { printf 'node.sh: %s\n' "$*" >&2; }
usage() { sed -n '6,15p' "$self" | sed 's/^# \{0,1\}//' >&2; exit 2; }

live_in_group() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { n++ } END { print n + 0 }'
}

# Kills process group $1 (named $2) if its leader is still command $4: TERM, $3 s, then KILL.
kill_group() {
  local pgid=$1 name=$2 grace=$3 comm=$4 i leader
  case "$pgid" in '' | 0 | 1 | *[!0-9]*) return 0 ;; esac
  [ "$(live_in_group "$pgid")" -gt 0 ] || return 0
  leader=$(ps -o stat=,comm= -p "$pgid" 2>/dev/null || true)
  case "$leader" in
    Z* | '') ;;
    *" $comm") ;;
    *) log "not killing process group $pgid: its leader is no longer $name"; return 0 ;;
  esac
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    [ "$(live_in_group "$pgid")" -gt 0 ] || return 0
    sleep 0.1
  done
  log "$name (process group $pgid) ignored SIGTERM for ${grace}s; sending SIGKILL"
  kill -KILL -- "-$pgid" 2>/dev/null || true
  sleep 0.5
}

spawn() {
  local logfile=$1
  shift
  setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  echo $!
}

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

load_cluster_env() {
  [ -f "$cluster/env" ] || die "$cluster/env not found: start a cluster with cluster.sh first"
  # shellcheck disable=SC1091
  . "$cluster/env"
}

load_node_env() {
  [ -f "$cluster/node.env" ] || die "$cluster/node.env not found: no node was started for $cluster"
  # shellcheck disable=SC1091
  . "$cluster/node.env"
}

ctr() { "$ctr_bin" --address "$NODE_DIR/containerd.sock" -n k8s.io "$@"; }

write_node_env() {
  local tmp="$cluster/node.env.tmp"
  {
    printf "NODE_NAME='%s'\n" "$node_name"
    printf "NODE_DIR='%s'\n" "$NODE_DIR"
    printf "CONTAINERD_PID='%s'\nKUBELET_PID='%s'\nNODE_WATCHDOG_PID='%s'\n" \
      "${CONTAINERD_PID:-}" "${KUBELET_PID:-}" "${NODE_WATCHDOG_PID:-}"
    printf "CONTAINERD_SOCKET='%s'\nKUBELET_LOG='%s'\nCONTAINERD_LOG='%s'\n" \
      "$NODE_DIR/containerd.sock" "$NODE_DIR/kubelet.log" "$NODE_DIR/containerd.log"
    printf "KUBELET_PORT='%s'\nPAUSE_IMAGE='%s'\nNODE_IP='%s'\n" "${KUBELET_PORT:-}" "$pause_image" "${NODE_IP:-}"
  } >"$tmp"
  mv "$tmp" "$cluster/node.env"
}

# The kubelet's client certificate: user system:node:NAME in group system:nodes (the Node
# authorizer's convention), signed by the cluster's CA.
node_credentials() {
  local pki="$NODE_DIR/pki"
  mkdir -p "$pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/kubelet.key" 2>/dev/null
  openssl req -new -key "$pki/kubelet.key" -subj "/O=system:nodes/CN=system:node:$node_name" \
    -out "$pki/kubelet.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=clientAuth" >"$pki/kubelet.ext"
  openssl x509 -req -in "$pki/kubelet.csr" -CA "$cluster/pki/ca.crt" -CAkey "$cluster/pki/ca.key" \
    -CAcreateserial -CAserial "$pki/ca.srl" -days 30 -sha256 -extfile "$pki/kubelet.ext" \
    -out "$pki/kubelet.crt" 2>/dev/null || die "openssl could not issue the kubelet's certificate"
  cat >"$NODE_DIR/kubelet.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: informerd-test
  cluster:
    server: $APISERVER_URL
    certificate-authority: $CA_FILE
users:
- name: kubelet
  user:
    client-certificate: $pki/kubelet.crt
    client-key: $pki/kubelet.key
contexts:
- name: kubelet
  context: {cluster: informerd-test, user: kubelet}
current-context: kubelet
KC
  chmod 600 "$pki/kubelet.key" "$NODE_DIR/kubelet.kubeconfig"
}

start_containerd() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/cni"
  cat >"$NODE_DIR/containerd.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
[grpc]
  address = "$NODE_DIR/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  stream_server_address = "127.0.0.1"
  # No container's oom_score_adj below containerd's own: the kubelet asks -998 for sandboxes (and
  # -997 for Guaranteed pods), and where lowering it is refused (as on the machine this was
  # written on: "echo -1 > /proc/self/oom_score_adj" fails), runc fails every sandbox with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
      SystemdCgroup = false
TOML
  CONTAINERD_PID=$(spawn "$NODE_DIR/containerd.log" "$containerd_bin" --config "$NODE_DIR/containerd.toml")
  local i
  for ((i = 0; i < 100; i++)); do
    "$ctr_bin" --address "$NODE_DIR/containerd.sock" version >/dev/null 2>&1 && return 0
    [ "$(live_in_group "$CONTAINERD_PID")" -gt 0 ] || break
    sleep 0.1
  done
  tail -n 30 "$NODE_DIR/containerd.log" >&2 || true
  die "containerd did not start (log: $NODE_DIR/containerd.log)"
}

# The pause image: the static pause binary alone, ENTRYPOINT /pause (as upstream's image).
import_pause() {
  local tar="$NODE_DIR/pause-image"
  mkdir -p "$tar/rootfs"
  cp "$kubelet_dir/pause" "$tar/rootfs/pause"
  # A docker-archive by hand: one layer, a config, a manifest (what `ctr images import` reads).
  /usr/bin/python3 - "$tar" "$pause_image" <<'PY'
import hashlib, json, os, sys, tarfile
out, name = sys.argv[1], sys.argv[2]
layer = os.path.join(out, "layer.tar")
with tarfile.open(layer, "w") as t:
    info = t.gettarinfo(os.path.join(out, "rootfs", "pause"), "pause")
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755
    with open(os.path.join(out, "rootfs", "pause"), "rb") as f:
        t.addfile(info, f)
digest = hashlib.sha256(open(layer, "rb").read()).hexdigest()
config = {"architecture": "amd64", "os": "linux",
          "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest]}, "history": []}
config_bytes = json.dumps(config).encode()
config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
with tarfile.open(os.path.join(out, "image.tar"), "w") as t:
    def add(arcname, data):
        import io
        info = tarfile.TarInfo(arcname)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add(config_name, config_bytes)
    add(digest + "/layer.tar", open(layer, "rb").read())
    add("manifest.json", json.dumps([{"Config": config_name, "RepoTags": [name],
                                      "Layers": [digest + "/layer.tar"]}]).encode())
PY
  ctr images import "$tar/image.tar" >/dev/null || die "could not import the pause image"
  rm -rf "$tar"
}

# The node's address: the kubelet refuses a loopback one ("nodeIP can't be loopback address") and
# then reports none, leaving hostNetwork pods without an IP for their probes. The first global
# IPv4 address of the interface of the default route (its API still listens on 127.0.0.1 only).
node_ip() {
  local dev
  dev=$(ip -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
  [ -n "$dev" ] || die "no default route: the node needs a non-loopback IPv4 address"
  ip -4 -o addr show dev "$dev" scope global | awk '{ split($4, a, "/"); print a[1]; exit }'
}

start_kubelet() {
  local healthz_port
  KUBELET_PORT=$(free_port)
  healthz_port=$(free_port)
  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/volume-plugins" "$NODE_DIR/kubelet-pki"
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
makeIPTablesUtilChains: false
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
syncFrequency: 5s
nodeStatusUpdateFrequency: 5s
serializeImagePulls: false
YAML
  for s in "${sysctls[@]}"; do printf '%s=%s\n' "$s" "$(sysctl -n "$s")"; done >"$NODE_DIR/sysctl.saved"
  KUBELET_PID=$(spawn "$NODE_DIR/kubelet.log" "$kubelet_dir/kubelet" \
    --config="$NODE_DIR/kubelet.yaml" --kubeconfig="$NODE_DIR/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint="unix://$NODE_DIR/containerd.sock" \
    --image-service-endpoint="unix://$NODE_DIR/containerd.sock" \
    --root-dir="$NODE_DIR/kubelet" --cert-dir="$NODE_DIR/kubelet-pki" \
    --volume-plugin-dir="$NODE_DIR/volume-plugins" \
    --hostname-override="$node_name" --node-ip="$NODE_IP" --v=2)
}

kubectl_admin() {
  "$kubectl_bin" --kubeconfig="$KUBECONFIG_ADMIN_TOKEN" --cache-dir="$cluster/kubectl-cache" "$@"
}

wait_node_registered() {
  local i
  for ((i = 0; i < 600; i++)); do
    kubectl_admin get node "$node_name" >/dev/null 2>&1 && return 0
    if [ "$(live_in_group "$KUBELET_PID")" -eq 0 ]; then
      tail -n 40 "$NODE_DIR/kubelet.log" >&2 || true
      die "the kubelet exited before registering node $node_name (log above: $NODE_DIR/kubelet.log)"
    fi
    sleep 0.2
  done
  tail -n 40 "$NODE_DIR/kubelet.log" >&2 || true
  die "the kubelet did not register node $node_name within 120s (log above: $NODE_DIR/kubelet.log)"
}

watchdog() {
  local owner=$1
  mkfifo "$NODE_DIR/watchdog.fifo"
  exec 3<>"$NODE_DIR/watchdog.fifo"
  while kill -0 "$owner" 2>/dev/null; do
    read -r -t 1 -u 3 _ || true
  done
  log "owner process $owner is gone; stopping the node of $cluster"
  exec "$self" stop "$cluster"
}

cmd_start() {
  local owner_pid="" arg
  for arg in "$@"; do
    case "$arg" in
      --owner-pid=*) owner_pid=${arg#*=} ;;
      *) die "start: unknown option $arg" ;;
    esac
  done
  [ ! -e "$cluster/node.env" ] || die "start: a node was already started for $cluster"
  load_cluster_env
  for bin in "$containerd_bin" "$ctr_bin" /usr/sbin/runc "$kubectl_bin"; do
    [ -x "$bin" ] || die "$bin not found (apt-get install containerd runc)"
  done
  kubelet_dir=${INFORMERD_KUBELET_DIR:-$("$script_dir/build_kubelet.sh" --check)} ||
    die "the kubelet is not built (see above)"
  [ -x "$kubelet_dir/kubelet" ] && [ -x "$kubelet_dir/pause" ] || die "no kubelet and pause in $kubelet_dir"
  NODE_DIR=$(mktemp -d /tmp/informerd-node.XXXXXX)
  write_node_env
  trap 'status=$?; [ $status -eq 0 ] || "$self" stop "$cluster" || true' EXIT
  if [ -n "$owner_pid" ]; then
    NODE_WATCHDOG_PID=$(spawn "$NODE_DIR/watchdog.log" "$self" _watchdog "$cluster" "$owner_pid")
  fi
  node_credentials
  start_containerd
  write_node_env
  import_pause
  # The kubelet reads services and nodes through the system:node ClusterRole, whose binding
  # Kubernetes leaves without subjects (the Node authorizer covers the rest).
  kubectl_admin create clusterrolebinding informerd-node-kubelet --clusterrole=system:node \
    --user="system:node:$node_name" >/dev/null 2>&1 || true
  NODE_IP=$(node_ip)
  [ -n "$NODE_IP" ] || die "no IPv4 address on the default route's interface"
  start_kubelet
  write_node_env
  wait_node_registered
  trap - EXIT
}

cmd_load_image() {
  local archive=${1:?load-image: missing ARCHIVE}
  load_cluster_env
  load_node_env
  ctr images import "$archive" >&2 || die "load-image: ctr images import $archive failed"
}

cmd_stop() {
  load_node_env
  [ -d "$NODE_DIR" ] || return 0
  if [ -n "${NODE_WATCHDOG_PID:-}" ] && [ "$NODE_WATCHDOG_PID" != "$$" ]; then
    kill_group "$NODE_WATCHDOG_PID" watchdog 2 bash
  fi
  kill_group "${KUBELET_PID:-}" kubelet 10 kubelet
  # The pods' containers and their shims, then containerd.
  if [ -n "${CONTAINERD_PID:-}" ] && [ "$(live_in_group "$CONTAINERD_PID")" -gt 0 ]; then
    local id
    for id in $(ctr tasks list -q 2>/dev/null); do
      ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(ctr tasks list -q 2>/dev/null); do
      ctr tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr containers list -q 2>/dev/null); do
      ctr containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  kill_group "${CONTAINERD_PID:-}" containerd 10 containerd
  # Shims run in sessions of their own: any left for this node's containerd.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $NODE_DIR/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Volume tmpfs mounts, sandbox /dev/shm mounts, overlay rootfs mounts: deepest first.
  local mnt
  while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v d="$NODE_DIR" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
  if [ -f "$NODE_DIR/sysctl.saved" ]; then
    local line
    while IFS= read -r line; do sysctl -q -w "$line" >/dev/null || log "could not restore $line"; done <"$NODE_DIR/sysctl.saved"
  fi
  # Logs of this node's pods (their directories are NAMESPACE_NAME_UID; the UIDs are in its
  # kubelet's pod directories).
  local uid
  for uid in $(ls "$NODE_DIR/kubelet/pods" 2>/dev/null); do
    rm -rf /var/log/pods/*_"$uid"
    find /var/log/containers -maxdepth 1 -lname "/var/log/pods/*_$uid/*" -delete 2>/dev/null || true
  done
  rmdir /var/log/containers /var/log/pods 2>/dev/null || true
  rm -rf "$NODE_DIR"
  rm -f "$cluster/node.env"
}

[ $# -ge 2 ] || usage
command=$1 cluster=$2
shift 2
cluster=$(cd "$cluster" && pwd) || die "$cluster: no such directory"
case "$command" in
  start) cmd_start "$@" ;;
  load-image) cmd_load_image "$@" ;;
  stop) cmd_stop ;;
  _watchdog) NODE_DIR=$(. "$cluster/node.env"; echo "$NODE_DIR"); watchdog "$@" ;;
  *) usage ;;
esac
