#!/usr/bin/env bash
# A throw-away Kubernetes control plane for tests: one etcd and one kube-apiserver on 127.0.0.1,
# every byte of state (data, certificates, tokens, kubeconfigs, logs) inside one directory.
# Used by test/cluster/cluster_fixture.h; also handy by hand.
#
#   cluster.sh start DIR [--owner-pid=PID] [--watch-cache=false] [--apiserver-arg=--flag=value]...
#       Creates DIR (must be empty or absent), starts etcd and kube-apiserver on free ports, waits
#       until /readyz is ok, grants RBAC to the test users, writes DIR/env. With --owner-pid, a
#       watchdog stops the cluster once process PID is gone (so a killed test leaves no strays).
#   cluster.sh stop DIR                 kills the watchdog, kube-apiserver and etcd (process groups)
#   cluster.sh restart-apiserver DIR    stops and starts kube-apiserver: same port, flags and etcd
#   cluster.sh compact DIR              compacts etcd at its current revision; prints the revision
#   cluster.sh kubeconfig DIR IDENTITY  prints the kubeconfig path of an identity (see below)
#
# DIR/env is shell-sourceable, one KEY='value' per line (values never contain a quote):
# APISERVER_URL, APISERVER_PORT, APISERVER_PID, APISERVER_LOG, ETCD_ENDPOINT, ETCD_PID, ETCD_LOG,
# WATCHDOG_PID (empty without --owner-pid), CA_FILE, KUBE_APISERVER, and per identity
# KUBECONFIG_<ID> and for token identities TOKEN_<ID>, for certificate identities CLIENT_CERT_<ID>
# and CLIENT_KEY_<ID>, with <ID> one of ADMIN_TOKEN ADMIN_CERT ALICE_TOKEN ALICE_CERT BOB_TOKEN.
#
# Identities (kubeconfigs in DIR/kubeconfig/<identity>):
#   admin-token, admin-cert  user "admin", group system:masters: may do anything
#   alice-token, alice-cert  user "alice": get/list/watch on the ClusterRole informerd-test-reader
#                            (core objects except secrets, apps, batch, discovery, CRDs); nothing else
#   bob-token                user "bob": authenticated, but granted nothing beyond discovery
#
# Not running: kube-controller-manager and kube-scheduler, so pods stay Pending, deleted namespaces
# stay Terminating, nothing is garbage-collected; the ServiceAccount admission plugin is off (no
# token controller creates the "default" service accounts it would insist on).
#
# Environment: INFORMERD_KUBE_APISERVER (binary; default: build_kube_apiserver.sh's cached build,
# which `start` never builds: run build_kube_apiserver.sh first),
# ETCD (default /usr/bin/etcd), ETCDCTL (default /usr/bin/etcdctl), KUBECTL (default
# /usr/bin/kubectl), CLUSTER_READY_TIMEOUT (seconds, default 60).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The script's own path, for the watchdog to call `stop` (may be a runfiles symlink).
self="$script_dir/$(basename "${BASH_SOURCE[0]}")"
etcd_bin=${ETCD:-/usr/bin/etcd}
etcdctl_bin=${ETCDCTL:-/usr/bin/etcdctl}
kubectl_bin=${KUBECTL:-/usr/bin/kubectl}
ready_timeout=${CLUSTER_READY_TIMEOUT:-60}
identities=(admin-token admin-cert alice-token alice-cert bob-token)

die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }
log() { printf 'cluster.sh: %s\n' "$*" >&2; }
usage() { sed -n '6,13p' "$self" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# Processes. Each daemon runs in its own session (setsid), so its pid is its process-group id and
# `stop` can kill the whole group; and a test runner killing the test's process group does not
# kill the daemons before the watchdog has seen the test die. Stdio goes to files: nothing may keep
# the caller's pipes open.

# Prints the number of live (non-zombie) processes in process group $1. A zombie is dead: whoever
# inherited it reaps it (the test fixture is a child subreaper and does).
live_in_group() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { n++ } END { print n + 0 }'
}

# Kills process group $1 (named $2 in messages): SIGTERM, up to $3 seconds' grace, then SIGKILL.
# Only if the group's leader is still what we started (command name $4): a pid recorded long ago
# may since belong to someone else.
kill_group() {
  local pgid=$1 name=$2 grace=$3 comm=$4 i leader
  case "$pgid" in '' | 0 | 1 | *[!0-9]*) return 0 ;; esac
  [ "$(live_in_group "$pgid")" -gt 0 ] || return 0
  leader=$(ps -o stat=,comm= -p "$pgid" 2>/dev/null || true)
  case "$leader" in
    Z* | '') ;; # leader dead: anything left in the group was started by it
    *" $comm") ;;
    *)
      log "not killing process group $pgid: its leader is no longer $name (${leader#* })"
      return 0
      ;;
  esac
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    [ "$(live_in_group "$pgid")" -gt 0 ] || return 0
    sleep 0.1
  done
  log "$name (process group $pgid) ignored SIGTERM for ${grace}s; sending SIGKILL"
  kill -KILL -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [ "$(live_in_group "$pgid")" -gt 0 ] || return 0
    sleep 0.1
  done
  die "$name (process group $pgid) survived SIGKILL"
}

# Starts "$@" in a new session with stdio to log file $1; prints the pid (= process-group id).
# The daemon must not inherit the lock (fd 9), or it would hold it for its whole life.
spawn() {
  local logfile=$1
  shift
  # A background job of a non-interactive shell is not a process-group leader, so setsid(1)
  # calls setsid(2) and execs in place: $! is the daemon itself.
  setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  local pid=$!
  # Until the child has run setsid(2) it is still in our process group; `stop` must never kill
  # that group, so wait for the new one (or for the child to have died: start-up checks catch it).
  local pgid i
  for ((i = 0; i < 100; i++)); do
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
    if [ -z "$pgid" ] || [ "$pgid" = "$pid" ]; then
      echo "$pid"
      return 0
    fi
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  die "could not start $1 in its own session (process group still $pgid after 5s)"
}

# Prints $1 free TCP ports on 127.0.0.1, distinct. Chosen at random below the kernel's ephemeral
# range (32768+ on Linux), so no outgoing connection is handed one of them between this check and
# the daemon's bind; the start path still retries on "address already in use".
free_ports() {
  /usr/bin/python3 - "$1" <<'PY'
import random, socket, sys
want, found = int(sys.argv[1]), []
lo, hi = 20000, 32000
try:
    lo_eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    hi = min(hi, lo_eph - 1)
except OSError:
    pass
for _ in range(1000):
    if len(found) == want:
        break
    # With an unusual ephemeral range leaving no room below it, let the kernel pick.
    port = random.randint(lo, hi) if hi - lo > 1000 else 0
    if port in found:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        if s.getsockname()[1] not in found:
            found.append(s.getsockname()[1])
    except OSError:
        pass
    finally:
        s.close()
if len(found) != want:
    sys.exit("no free ports found")
print(" ".join(map(str, found)))
PY
}

# ---------------------------------------------------------------------------------------------
# State.

# Reads DIR/env into shell variables.
load_env() {
  [ -f "$dir/env" ] || die "$dir/env not found: is a cluster started in $dir?"
  # shellcheck disable=SC1091
  . "$dir/env"
}

# Serializes the commands that change a cluster: the watchdog's `stop` must not interleave with a
# `restart-apiserver` in flight (it would stop the old apiserver and miss the new one).
lock_cluster() {
  exec 9>>"$dir/lock"
  flock -w 300 9 || die "could not lock $dir/lock within 300s (another cluster.sh command hangs?)"
}

# A stopped cluster stays stopped: a command queued behind the watchdog's `stop` must not start
# anything again.
refuse_if_stopped() {
  [ ! -e "$dir/stopped" ] || die "the cluster in $dir was stopped ($(cat "$dir/stopped"))"
}

# Writes DIR/env from the current shell variables (atomically: readers never see half a file).
write_env() {
  local tmp="$dir/env.tmp" key value id
  : >"$tmp"
  put() {
    case "$2" in *"'"* | *$'\n'*) die "cannot write $1 to $dir/env: value contains a quote or newline: $2" ;; esac
    printf "%s='%s'\n" "$1" "$2" >>"$tmp"
  }
  put CLUSTER_DIR "$dir"
  put APISERVER_URL "https://127.0.0.1:$APISERVER_PORT"
  put APISERVER_PORT "$APISERVER_PORT"
  put APISERVER_PID "$APISERVER_PID"
  put APISERVER_LOG "$dir/kube-apiserver.log"
  put ETCD_ENDPOINT "http://127.0.0.1:$ETCD_CLIENT_PORT"
  put ETCD_CLIENT_PORT "$ETCD_CLIENT_PORT"
  put ETCD_PEER_PORT "$ETCD_PEER_PORT"
  put ETCD_PID "$ETCD_PID"
  put ETCD_LOG "$dir/etcd.log"
  put WATCHDOG_PID "${WATCHDOG_PID:-}"
  put CA_FILE "$dir/pki/ca.crt"
  put KUBE_APISERVER "$KUBE_APISERVER"
  for id in "${identities[@]}"; do
    key=$(echo "$id" | tr 'a-z-' 'A-Z_')
    put "KUBECONFIG_$key" "$dir/kubeconfig/$id"
    case "$id" in
      *-token) value=$(cat "$dir/pki/${id%-token}.token"); put "TOKEN_$key" "$value" ;;
      *-cert)
        put "CLIENT_CERT_$key" "$dir/pki/${id%-cert}-client.crt"
        put "CLIENT_KEY_$key" "$dir/pki/${id%-cert}-client.key"
        ;;
    esac
  done
  mv "$tmp" "$dir/env"
}

# ---------------------------------------------------------------------------------------------
# Certificates and credentials. EC P-256 keys: generating them is instant, unlike RSA.

# SEC 1 ("EC PRIVATE KEY") PEM: kube-apiserver 1.20 cannot read PKCS#8 service-account keys.
new_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# issue_cert NAME SUBJECT EXTENSIONS: key + certificate signed by the test CA.
issue_cert() {
  local name=$1 subject=$2 ext=$3 pki="$dir/pki"
  new_key "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null ||
    die "openssl could not issue the certificate $name ($subject)"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

make_credentials() {
  local pki="$dir/pki" user
  mkdir -p "$pki"
  new_key "$pki/ca.key" || die "openssl could not generate a key"
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=informerd-test-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$pki/ca.crt" 2>/dev/null || die "openssl could not create the CA"
  issue_cert apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
    "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc")"
  local client_ext
  client_ext=$(printf '%s\n' "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth")
  # Client-certificate authentication: CN is the user name, each O a group.
  issue_cert admin-client "/O=system:masters/CN=admin" "$client_ext"
  issue_cert alice-client "/CN=alice" "$client_ext"
  # Service-account tokens: the apiserver signs with the private key, verifies with the same file.
  new_key "$pki/service-account.key"
  # Static bearer tokens: token,user,uid,"group,..." (kube-apiserver --token-auth-file).
  for user in admin alice bob; do
    openssl rand -hex 24 >"$pki/$user.token"
  done
  {
    printf '%s,admin,uid-admin,"system:masters"\n' "$(cat "$pki/admin.token")"
    printf '%s,alice,uid-alice\n' "$(cat "$pki/alice.token")"
    printf '%s,bob,uid-bob\n' "$(cat "$pki/bob.token")"
  } >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki"/*.token "$pki/tokens.csv"
}

write_kubeconfigs() {
  local id user_block
  mkdir -p "$dir/kubeconfig"
  for id in "${identities[@]}"; do
    case "$id" in
      *-token) user_block="    token: $(cat "$dir/pki/${id%-token}.token")" ;;
      *-cert) user_block="    client-certificate: $dir/pki/${id%-cert}-client.crt
    client-key: $dir/pki/${id%-cert}-client.key" ;;
    esac
    cat >"$dir/kubeconfig/$id" <<KC
apiVersion: v1
kind: Config
clusters:
- name: informerd-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $dir/pki/ca.crt
users:
- name: $id
  user:
$user_block
contexts:
- name: $id
  context:
    cluster: informerd-test
    user: $id
current-context: $id
KC
    chmod 600 "$dir/kubeconfig/$id"
  done
}

# ---------------------------------------------------------------------------------------------
# Daemons.

# Starts etcd on fresh ports (retrying if a port is taken meanwhile); sets ETCD_* variables.
start_etcd() {
  local attempt ports
  for attempt in 1 2 3; do
    ports=$(free_ports 2) || die "could not find free ports for etcd"
    read -r ETCD_CLIENT_PORT ETCD_PEER_PORT <<<"$ports"
    local client="http://127.0.0.1:$ETCD_CLIENT_PORT" peer="http://127.0.0.1:$ETCD_PEER_PORT"
    : >"$dir/etcd.log"
    ETCD_PID=$(spawn "$dir/etcd.log" "$etcd_bin" --name=informerd-test --data-dir="$dir/etcd" \
      --listen-client-urls="$client" --advertise-client-urls="$client" \
      --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer" \
      --initial-cluster="informerd-test=$peer" --initial-cluster-state=new \
      --logger=zap --log-level=warn)
    local i
    for ((i = 0; i < 200; i++)); do
      if curl -fsS --max-time 1 "$client/health" 2>/dev/null | grep -q '"health":"true"'; then
        return 0
      fi
      [ "$(live_in_group "$ETCD_PID")" -gt 0 ] || break
      sleep 0.05
    done
    kill_group "$ETCD_PID" etcd 5 etcd
    if grep -q 'address already in use' "$dir/etcd.log" && [ "$attempt" -lt 3 ]; then
      log "etcd: port taken meanwhile (attempt $attempt); retrying on other ports"
      rm -rf "$dir/etcd"
      continue
    fi
    tail -n 30 "$dir/etcd.log" >&2 || true
    die "etcd did not become healthy within 10s (log above: $dir/etcd.log)"
  done
  die "etcd could not bind a port after 3 attempts"
}

# Builds the kube-apiserver command line into DIR/apiserver.args (one argument per line), so that
# restart-apiserver runs exactly the same server.
write_apiserver_args() {
  local pki="$dir/pki" extra
  {
    printf '%s\n' \
      "--bind-address=127.0.0.1" \
      "--advertise-address=127.0.0.1" \
      "--secure-port=$APISERVER_PORT" \
      "--etcd-servers=http://127.0.0.1:$ETCD_CLIENT_PORT" \
      "--etcd-compaction-interval=0" \
      "--tls-cert-file=$pki/apiserver.crt" \
      "--tls-private-key-file=$pki/apiserver.key" \
      "--client-ca-file=$pki/ca.crt" \
      "--token-auth-file=$pki/tokens.csv" \
      "--authorization-mode=Node,RBAC" \
      "--service-account-key-file=$pki/service-account.key" \
      "--service-account-signing-key-file=$pki/service-account.key" \
      "--service-account-issuer=https://kubernetes.default.svc" \
      "--api-audiences=https://kubernetes.default.svc" \
      "--service-cluster-ip-range=10.96.0.0/16" \
      "--disable-admission-plugins=ServiceAccount" \
      "--endpoint-reconciler-type=none" \
      "--allow-privileged=true" \
      "--enable-priority-and-fairness=false" \
      "--profiling=false" \
      "--cert-dir=$dir/apiserver-certs" \
      "--watch-cache=$watch_cache"
    for extra in "${apiserver_extra[@]}"; do printf '%s\n' "$extra"; done
  } >"$dir/apiserver.args"
}

# Starts kube-apiserver from DIR/apiserver.args; sets APISERVER_PID.
start_apiserver() {
  local args
  mapfile -t args <"$dir/apiserver.args"
  echo "--- $(date -Is) starting kube-apiserver on port $APISERVER_PORT" >>"$dir/kube-apiserver.log"
  APISERVER_PID=$(spawn "$dir/kube-apiserver.log" "$KUBE_APISERVER" "${args[@]}")
}

# Waits until /readyz says ok. Returns 3 if the apiserver exited because its port was taken (the
# caller may pick another); dies on any other failure, with the tail of the log.
wait_apiserver_ready() {
  local url="https://127.0.0.1:$APISERVER_PORT/readyz" deadline=$((SECONDS + ready_timeout))
  local token
  token=$(cat "$dir/pki/admin.token")
  while ((SECONDS < deadline)); do
    if [ "$(curl -sS --max-time 2 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" \
      "$url" 2>/dev/null || true)" = ok ]; then
      return 0
    fi
    if [ "$(live_in_group "$APISERVER_PID")" -eq 0 ]; then
      if tail -n 20 "$dir/kube-apiserver.log" | grep -q 'address already in use'; then
        return 3
      fi
      tail -n 40 "$dir/kube-apiserver.log" >&2 || true
      die "kube-apiserver exited during start-up (log above: $dir/kube-apiserver.log)"
    fi
    sleep 0.2
  done
  tail -n 40 "$dir/kube-apiserver.log" >&2 || true
  curl -sS --max-time 2 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" \
    "$url?verbose" >&2 || true
  die "kube-apiserver was not ready within ${ready_timeout}s (log above: $dir/kube-apiserver.log)"
}

# RBAC for the unprivileged test users. "alice" reads common objects; "bob" gets nothing.
grant_rbac() {
  "$kubectl_bin" --kubeconfig="$dir/kubeconfig/admin-token" --cache-dir="$dir/kubectl-cache" \
    create -f - >"$dir/rbac.log" 2>&1 <<'YAML' || { cat "$dir/rbac.log" >&2; die "could not create the test RBAC objects"; }
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: informerd-test-reader
rules:
- apiGroups: [""]
  resources: [pods, configmaps, namespaces, services, endpoints, nodes, events, serviceaccounts,
              persistentvolumes, persistentvolumeclaims, replicationcontrollers, limitranges,
              resourcequotas]
  verbs: [get, list, watch]
- apiGroups: [apps, batch, discovery.k8s.io, apiextensions.k8s.io]
  resources: ["*"]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: informerd-test-reader-alice
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: informerd-test-reader
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: alice
YAML
  # The RBAC authorizer learns of new bindings through a watch: wait until alice's grant is in
  # force, so that a test's first request as alice does not race it.
  local i code token
  token=$(cat "$dir/pki/alice.token")
  for ((i = 0; i < 100; i++)); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$dir/pki/ca.crt" \
      -H "Authorization: Bearer $token" "https://127.0.0.1:$APISERVER_PORT/api/v1/pods?limit=1" \
      2>/dev/null || true)
    [ "$code" != 200 ] || return 0
    sleep 0.1
  done
  die "alice still cannot list pods 10s after the RBAC objects were created (last HTTP status $code)"
}

# Stops the cluster when process $owner is gone. Runs in its own session; no child processes (a
# `sleep` child would be orphaned when `stop` kills this process).
watchdog() {
  local owner=$1
  mkfifo "$dir/watchdog.fifo"
  exec 3<>"$dir/watchdog.fifo"
  while kill -0 "$owner" 2>/dev/null; do
    read -r -t 1 -u 3 _ || true
  done
  log "owner process $owner is gone; stopping the cluster in $dir"
  # exec keeps this pid, so `stop` knows not to kill its own process group.
  exec "$self" stop "$dir"
}

# ---------------------------------------------------------------------------------------------
# Commands.

cmd_start() {
  local owner_pid="" arg
  watch_cache=true
  apiserver_extra=()
  for arg in "$@"; do
    case "$arg" in
      --owner-pid=*) owner_pid=${arg#*=} ;;
      --watch-cache=true | --watch-cache=false) watch_cache=${arg#*=} ;;
      --apiserver-arg=*) apiserver_extra+=("${arg#*=}") ;;
      *) die "start: unknown option $arg" ;;
    esac
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -z "$(ls -A "$dir")" ] || die "start: $dir is not empty (a cluster may still run there: cluster.sh stop $dir)"
  lock_cluster
  for bin in "$etcd_bin" "$etcdctl_bin" "$kubectl_bin" /usr/bin/python3; do
    [ -x "$bin" ] || die "$bin not found or not executable"
  done
  command -v openssl >/dev/null || die "openssl not found"
  command -v curl >/dev/null || die "curl not found"

  if [ -n "${INFORMERD_KUBE_APISERVER:-}" ]; then
    KUBE_APISERVER=$INFORMERD_KUBE_APISERVER
  else
    # Beside this script, or in the runfiles under `bazel run //test/cluster:cluster`.
    local build_script="$script_dir/build_kube_apiserver.sh"
    [ -f "$build_script" ] ||
      build_script="${RUNFILES_DIR:-$self.runfiles}/informerd/test/cluster/build_kube_apiserver.sh"
    [ -f "$build_script" ] || die "INFORMERD_KUBE_APISERVER is unset and build_kube_apiserver.sh is not beside $self"
    # The cached build only: a build takes minutes, longer than a test may wait (its message says
    # how to build).
    KUBE_APISERVER=$("$build_script" --check) ||
      die "INFORMERD_KUBE_APISERVER is unset and kube-apiserver is not built (see above)"
  fi
  [ -x "$KUBE_APISERVER" ] || die "kube-apiserver binary $KUBE_APISERVER not found or not executable"

  make_credentials
  # From here on, a failure must not leave daemons behind.
  trap 'status=$?; if [ $status -ne 0 ]; then kill_group "${APISERVER_PID:-}" kube-apiserver 5 kube-apiserver; kill_group "${ETCD_PID:-}" etcd 5 etcd; kill_group "${WATCHDOG_PID:-}" watchdog 2 bash; fi' EXIT
  if [ -n "$owner_pid" ]; then
    kill -0 "$owner_pid" 2>/dev/null || die "start: owner process $owner_pid does not exist"
    WATCHDOG_PID=$(spawn "$dir/watchdog.log" "$self" _watchdog "$dir" "$owner_pid")
  fi
  start_etcd
  local attempt status
  for attempt in 1 2 3; do
    APISERVER_PORT=$(free_ports 1) || die "could not find a free port for kube-apiserver"
    write_apiserver_args
    start_apiserver
    status=0
    wait_apiserver_ready || status=$?
    [ "$status" -eq 3 ] || break
    log "kube-apiserver: port $APISERVER_PORT taken meanwhile (attempt $attempt); retrying"
    kill_group "$APISERVER_PID" kube-apiserver 5 kube-apiserver
  done
  [ "$status" -eq 0 ] || die "kube-apiserver could not bind a port after 3 attempts"
  write_kubeconfigs
  grant_rbac
  write_env
  # The watchdog cannot stop a cluster before DIR/env exists: check its owner once more.
  if [ -n "$owner_pid" ] && ! kill -0 "$owner_pid" 2>/dev/null; then
    die "start: owner process $owner_pid exited during start-up; stopping"
  fi
  trap - EXIT
}

cmd_stop() {
  [ -d "$dir" ] || die "stop: $dir does not exist"
  [ -f "$dir/env" ] || die "stop: $dir/env not found: no cluster was started in $dir"
  lock_cluster
  load_env
  # Not the watchdog's own group when the watchdog is the one running `stop`.
  if [ -n "${WATCHDOG_PID:-}" ] && [ "$WATCHDOG_PID" != "$$" ]; then
    kill_group "$WATCHDOG_PID" watchdog 2 bash
  fi
  kill_group "${APISERVER_PID:-}" kube-apiserver 10 kube-apiserver
  kill_group "${ETCD_PID:-}" etcd 10 etcd
  [ -e "$dir/stopped" ] || echo "stopped at $(date -Is) by process $$ (parent $PPID)" >"$dir/stopped"
  rm -f "$dir/watchdog.fifo"
}

cmd_restart_apiserver() {
  [ -f "$dir/env" ] || die "restart-apiserver: $dir/env not found: no cluster was started in $dir"
  lock_cluster
  refuse_if_stopped
  load_env
  ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:?} ETCD_PEER_PORT=${ETCD_PEER_PORT:?}
  kill_group "$APISERVER_PID" kube-apiserver 10 kube-apiserver
  # Until DIR/env names the new apiserver, only this process knows it: kill it on failure.
  trap 'status=$?; [ $status -eq 0 ] || kill_group "${APISERVER_PID:-}" kube-apiserver 5 kube-apiserver' EXIT
  start_apiserver
  local status=0
  wait_apiserver_ready || status=$?
  if [ "$status" -eq 3 ]; then
    tail -n 20 "$dir/kube-apiserver.log" >&2 || true
    die "restart-apiserver: port $APISERVER_PORT was taken by another process while restarting"
  fi
  write_env
  trap - EXIT
}

cmd_compact() {
  [ -f "$dir/env" ] || die "compact: $dir/env not found: no cluster was started in $dir"
  lock_cluster
  refuse_if_stopped
  load_env
  local status revision
  status=$("$etcdctl_bin" --endpoints="$ETCD_ENDPOINT" endpoint status -w json) ||
    die "compact: etcdctl endpoint status failed"
  revision=$(printf '%s' "$status" | grep -o '"revision":[0-9]*' | head -n 1 | cut -d: -f2)
  [ -n "$revision" ] || die "compact: no revision in etcdctl's output: $status"
  # --physical: return only once the old revisions are really gone.
  "$etcdctl_bin" --endpoints="$ETCD_ENDPOINT" compact "$revision" --physical >/dev/null ||
    die "compact: etcdctl compact $revision failed"
  echo "$revision"
}

cmd_kubeconfig() {
  local id=${1:-}
  [ -n "$id" ] || die "kubeconfig: missing IDENTITY (one of ${identities[*]})"
  case "$id" in admin | alice | bob) id="$id-token" ;; esac
  [ -f "$dir/kubeconfig/$id" ] || die "kubeconfig: no identity '$id' in $dir (one of ${identities[*]})"
  echo "$dir/kubeconfig/$id"
}

[ $# -ge 2 ] || usage
command=$1 dir=$2
shift 2
# `bazel run` runs us in the runfiles tree: a relative DIR means the user's directory.
case "$dir" in
  /*) ;;
  *) [ -z "${BUILD_WORKING_DIRECTORY:-}" ] || dir="$BUILD_WORKING_DIRECTORY/$dir" ;;
esac
case "$command" in
  start) cmd_start "$@" ;;
  stop) cmd_stop ;;
  restart-apiserver) cmd_restart_apiserver ;;
  compact) cmd_compact ;;
  kubeconfig) cmd_kubeconfig "$@" ;;
  _watchdog) watchdog "$@" ;;
  *) usage ;;
esac
