#!/usr/bin/python3
"""The chart's RBAC is sufficient and minimal, proven against a real kube-apiserver (test/cluster):
for each documented values file (and for the sidecar manifests) the ServiceAccount, RBAC and
ConfigMap are applied for real, and the real informerd binary runs as that ServiceAccount (a
TokenRequest token) with the ConfigMap's configuration and the Deployment's arguments (the TLS
files made by the README's self-signed quick-start commands): it must sync every configured
resource with exact object counts and turn gRPC health SERVING (over TLS); the ServiceAccount may
get/list/watch exactly what is configured, in the configured scope, and nothing else (writes,
secrets, other namespaces are refused); the chart's may create TokenReviews and
SubjectAccessReviews (system:auth-delegator), the sidecar's may not; and informerd given a
resource outside the RBAC (secrets) is refused by the apiserver and stays unready."""
import glob
import os
import re
import sys
import time
import urllib.error
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_testlib as lib  # noqa: E402

BINARY = "cmd/informerd/informerd"

# What the test cluster holds (created below), and so what each rendering's informers must count.
EXPECTED_COUNTS = {
    "default": {"pods": 3, "deployments.apps": 2, "nodes": 1},
    "namespaced": {"pods": 1, "configmaps": 1, "deployments.apps": 1},
    "crd": {"widgets.example.informerd.io": 2, "jobs.batch": 1, "services": 1},
    "mtls": {"pods": 3},
    "replicas": {"pods": 3, "deployments.apps": 2, "nodes": 1},  # the default informers
    # The sidecar's own ConfigMap is the one configmap in "default".
    "sidecar": {"pods": 1, "configmaps": 1},
}

REVIEWS = ("tokenreviews.authentication.k8s.io", "subjectaccessreviews.authorization.k8s.io")

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.informerd.io
spec:
  group: example.informerd.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
"""

POD_SPEC = {"containers": [{"name": "c", "image": "registry.example.com/app:1"}]}


def seed(cluster):
    """Objects for the informers to find: counts in EXPECTED_COUNTS."""
    objects = []

    def add(api_version, kind, name, namespace=None, labels=None, **rest):
        metadata = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        if labels:
            metadata["labels"] = labels
        objects.append(dict(apiVersion=api_version, kind=kind, metadata=metadata, **rest))

    for namespace in ("default", "team-a", "informerd"):
        add("v1", "Pod", "pod-" + namespace, namespace, spec=POD_SPEC)
    deployment_spec = {"selector": {"matchLabels": {"app": "d"}},
                       "template": {"metadata": {"labels": {"app": "d"}}, "spec": POD_SPEC}}
    add("apps/v1", "Deployment", "deploy-default", "default", spec=deployment_spec)
    add("apps/v1", "Deployment", "deploy-team-a", "team-a", spec=deployment_spec)
    add("v1", "Node", "worker-1")
    add("v1", "ConfigMap", "selected", "team-a", {"app.kubernetes.io/part-of": "team-a"},
        data={"k": "v"})
    add("v1", "ConfigMap", "not-selected", "team-a", data={"k": "v"})
    add("batch/v1", "Job", "job-default", "default",
        spec={"template": {"spec": dict(POD_SPEC, restartPolicy="Never")}})
    add("v1", "Service", "svc-team-a", "team-a",
        spec={"ports": [{"port": 80}], "selector": {"app": "x"}})
    add("v1", "Secret", "not-for-informerd", "informerd", stringData={"password": "x"})
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    cluster.kubectl("apply", "-f", "-", stdin=CRD)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/widgets.example.informerd.io")
    # A freshly established CRD's REST endpoint may take a moment to serve.
    widgets = yaml.safe_dump_all([{
        "apiVersion": "example.informerd.io/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": ns}, "spec": {"size": 3}}
        for ns in ("default", "team-a")])
    for attempt in range(50):
        if cluster.kubectl("apply", "-f", "-", stdin=widgets, check=False).returncode == 0:
            break
        time.sleep(0.2)
    else:
        cluster.kubectl("apply", "-f", "-", stdin=widgets)


def can_i(cluster, kubeconfig, verb, resource, namespace):
    scope = ["--all-namespaces"] if namespace is None else ["-n", namespace]
    result = cluster.kubectl("auth", "can-i", verb, resource, *scope, kubeconfig=kubeconfig,
                             check=False)
    answer = result.stdout.strip()
    lib.check(answer in ("yes", "no"), "kubectl auth can-i %s %s: %r %r" % (
        verb, resource, answer, result.stderr))
    return answer == "yes"


def check_permissions(cluster, kubeconfig, informers, label, delegator):
    """get/list/watch on each informer's resource in its scope; no writes; nothing beyond; and
    the reviews of informerd's callers exactly when `delegator`."""
    first = informers[0]
    # The RBAC authorizer learns of new bindings through a watch: wait for the grant.
    deadline = time.monotonic() + 15
    while not can_i(cluster, kubeconfig, "list", first["resource"], first.get("namespace") or None):
        lib.check(time.monotonic() < deadline, "%s: RBAC never granted list %s" % (label, first))
        time.sleep(0.2)
    for informer in informers:
        resource, namespace = informer["resource"], informer.get("namespace") or None
        for verb in ("get", "list", "watch"):
            lib.check(can_i(cluster, kubeconfig, verb, resource, namespace),
                      "%s: may not %s %s in %s" % (label, verb, resource, namespace or "any namespace"))
        for verb in ("create", "update", "patch", "delete", "deletecollection"):
            lib.check(not can_i(cluster, kubeconfig, verb, resource, namespace),
                      "%s: may %s %s: more than get/list/watch" % (label, verb, resource))
        if namespace:
            lib.check(not can_i(cluster, kubeconfig, "list", resource, None),
                      "%s: may list %s in all namespaces; the values say %s only" % (
                          label, resource, namespace))
            lib.check(not can_i(cluster, kubeconfig, "list", resource, "kube-system"),
                      "%s: may list %s in kube-system" % (label, resource))
    for verb, resource in (("list", "secrets"), ("get", "secrets"), ("list", "roles.rbac.authorization.k8s.io"),
                           ("create", "pods"), ("list", "events")):
        lib.check(not can_i(cluster, kubeconfig, verb, resource, None),
                  "%s: may %s %s, which no informer needs" % (label, verb, resource))
    for resource in REVIEWS:
        lib.check(can_i(cluster, kubeconfig, "create", resource, None) == delegator,
                  "%s: may%s create %s; system:auth-delegator is%s expected" % (
                      label, "" if not delegator else " not", resource,
                      "" if delegator else " not"))
        lib.check(not can_i(cluster, kubeconfig, "list", resource, None),
                  "%s: may list %s" % (label, resource))
    # And a real request, not only the authorizer's opinion.
    result = cluster.kubectl("get", "secrets", "--all-namespaces", kubeconfig=kubeconfig, check=False)
    lib.check(result.returncode != 0 and "forbidden" in result.stderr.lower(),
              "%s: listing secrets as the ServiceAccount did not fail as Forbidden: %s%s" % (
                  label, result.stdout, result.stderr))
    print("ok   %-11s permissions: get/list/watch on %d informer(s) in scope; %s; writes, secrets "
          "and other scopes forbidden" % (label, len(informers), "token and access reviews" if
                                          delegator else "no reviews"))


def daemon_args(deployment, config_path, kubeconfig, tls_files):
    """The Deployment's informerd arguments, run here: local paths, loopback ports; the TLS
    certificate and key (also as the client CA) from `tls_files`."""
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                     if c["name"] == "informerd")
    args, metrics_port = [], None
    certificate, key = tls_files
    for arg in container["args"]:
        flag, _, value = arg.partition("=")
        if flag == "--config":
            value = config_path
        elif flag == "--listen":
            value = "127.0.0.1:0"
        elif flag == "--listen-socket-mode":
            continue  # for a unix socket; here it is a loopback port
        elif flag == "--metrics-listen":
            metrics_port = lib.free_port()
            value = "127.0.0.1:%d" % metrics_port
        elif flag == "--probe-listen":
            value = "127.0.0.1:%d" % lib.free_port()
        elif flag in ("--tls-cert-file", "--client-ca-file"):
            value = certificate
        elif flag == "--tls-private-key-file":
            value = key
        args.append("%s=%s" % (flag, value))
    return args + ["--kubeconfig=" + kubeconfig], metrics_port


def probe_port_of(args):
    """The loopback port daemon_args gave the probe port (--probe-listen), if the manifests ask
    for one."""
    for arg in args:
        if arg.startswith("--probe-listen="):
            return int(arg.rpartition(":")[2])
    return None


def ca_of(args):
    """The CA that verifies the daemon's certificate (it is self-signed), if it serves TLS."""
    for arg in args:
        if arg.startswith("--tls-cert-file="):
            return arg.partition("=")[2]
    return None


def synced_counts(log):
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"([A-Za-z0-9.-]+): synced (\d+) objects at resourceVersion", log)}


def wait_serving(daemon, stubs_dir, timeout):
    match = re.search(r"gRPC listening on ([^\s\"]+)", daemon.log())
    lib.check(match, "no gRPC address in the log:\n" + daemon.log())
    stub, health_pb2 = lib.health_stub(match.group(1), stubs_dir, ca_of(daemon.args))
    deadline, status = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        if status == health_pb2.HealthCheckResponse.SERVING:
            return True
        time.sleep(0.2)
    return False


def health_status(daemon, stubs_dir):
    """The gRPC health of service "" now, by name: SERVING, NOT_SERVING, ..."""
    match = re.search(r"gRPC listening on ([^\s\"]+)", daemon.log())
    lib.check(match, "no gRPC address in the log:\n" + daemon.log())
    stub, health_pb2 = lib.health_stub(match.group(1), stubs_dir, ca_of(daemon.args))
    status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def http_status(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def http_get(port, path):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def run_manifests(cluster, work, name, objects, stubs):
    """Runs informerd as the manifests' ServiceAccount with their configuration."""
    # For real: what informerd's identity and configuration are made of. (The Deployment and
    # Service were checked by manifests_dry_run_test; no kubelet here would run the pod.)
    applied = [o for o in objects if o["kind"] in (
        "ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
    path = os.path.join(work, "chart-%s-identity.yaml" % name)
    with open(path, "w") as f:
        yaml.safe_dump_all(applied, f)
    cluster.kubectl("apply", "-f", path)

    account_object = next(o for o in objects if o["kind"] == "ServiceAccount")
    account, namespace = account_object["metadata"]["name"], account_object["metadata"]["namespace"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    lib.check(deployment["spec"]["template"]["spec"]["serviceAccountName"] == account,
              "%s: the Deployment does not run as the ServiceAccount %s" % (name, account))
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")["metadata"]["name"]
    # The configuration as the pod would read it: from the ConfigMap in the cluster.
    config_text = cluster.kubectl("get", "configmap", config_map, "-n", namespace, "-o",
                                  "jsonpath={.data.informerd\\.yaml}").stdout
    informers = yaml.safe_load(config_text)["resources"]
    expected = EXPECTED_COUNTS[name]
    lib.check(sorted(i["resource"] for i in informers) == sorted(expected),
              "%s: the chart configures %s, the test expects %s" % (
                  name, [i["resource"] for i in informers], sorted(expected)))
    config_path = os.path.join(work, "%s-informerd.yaml" % name)
    with open(config_path, "w") as f:
        f.write(config_text)

    token = cluster.service_account_token(namespace, account)
    kubeconfig = cluster.token_kubeconfig(os.path.join(work, "%s.kubeconfig" % name), token)
    delegator = any(o["kind"] == "ClusterRoleBinding" and
                    o["roleRef"]["name"] == "system:auth-delegator" for o in objects)
    check_permissions(cluster, kubeconfig, informers, name, delegator=name != "sidecar")
    lib.check(delegator == (name != "sidecar"), "%s: system:auth-delegator binding: %s" % (
        name, delegator))

    tls_dir = os.path.join(work, "%s-tls" % name)
    os.makedirs(tls_dir)
    service = next((o for o in objects if o["kind"] == "Service"), None)
    tls_files = lib.quick_start_certificate(
        tls_dir, service["metadata"]["name"] if service else account, namespace)
    args, metrics_port = daemon_args(deployment, config_path, kubeconfig, tls_files)
    started = time.monotonic()
    daemon = lib.Daemon(BINARY, args)
    try:
        daemon.wait_for(lambda log: set(expected) <= set(synced_counts(log)), 30,
                        "did not sync every configured resource (%s)" % sorted(expected))
        counts = synced_counts(daemon.log())
        lib.check(counts == expected, "%s: synced %s, expected %s; log:\n%s" % (
            name, counts, expected, daemon.log()))
        lib.check(wait_serving(daemon, stubs, 15),
                  "%s: gRPC health never SERVING; log:\n%s" % (name, daemon.log()))
        lib.check(metrics_port, "%s: the Deployment passes no --metrics-listen" % name)
        lib.check(http_status(metrics_port, "/readyz") == 200 and
                  http_status(metrics_port, "/healthz") == 200,
                  "%s: /readyz or /healthz not 200 once synced" % name)
        # Where the kubelet's probes go: the probe port, which serves nothing else.
        probe_port = probe_port_of(args)
        lib.check(probe_port, "%s: the Deployment passes no --probe-listen" % name)
        lib.check(http_status(probe_port, "/readyz") == 200 and
                  http_status(probe_port, "/healthz") == 200 and
                  http_status(probe_port, "/metrics") == 404,
                  "%s: the probe port does not answer /readyz and /healthz 200 (and /metrics "
                  "404) once synced" % name)
        lib.check(not re.search(r"HTTP 403|forbidden", daemon.log(), re.I),
                  "%s: informerd was refused something:\n%s" % (name, daemon.log()))
    finally:
        status = daemon.stop()
    lib.check(status == 0, "%s: informerd exited %s after SIGTERM; log:\n%s" % (
        name, status, daemon.log()))
    print("ok   %-11s informerd as %s:%s synced %s in %.1fs, health SERVING%s%s" % (
        name, namespace, account, ", ".join("%s=%d" % kv for kv in sorted(counts.items())),
        time.monotonic() - started, " over TLS" if ca_of(args) else "",
        ", /healthz and /readyz 200 on both HTTP ports"))
    return config_text, args


def run_outside_rbac(work, name, config_text, args, stubs):
    """The same ServiceAccount, one informer more (secrets): the apiserver refuses it, the other
    informers still sync, and informerd keeps running, unready (health NOT_SERVING, /readyz 503
    saying why), until SIGTERM stops it cleanly (exit 0)."""
    config = yaml.safe_load(config_text)
    config["resources"].append({"resource": "secrets"})
    path = os.path.join(work, "%s-with-secrets.yaml" % name)
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    args = [("--config=" + path) if a.startswith("--config=") else a for a in args]
    # A fresh metrics port: the previous run's may linger in TIME_WAIT.
    metrics_port = lib.free_port()
    args = [("--metrics-listen=127.0.0.1:%d" % metrics_port)
            if a.startswith("--metrics-listen=") else a for a in args]
    args = [("--probe-listen=127.0.0.1:%d" % lib.free_port())
            if a.startswith("--probe-listen=") else a for a in args]
    daemon = lib.Daemon(BINARY, args)
    try:
        others = set(EXPECTED_COUNTS[name])
        daemon.wait_for(lambda log: others <= set(synced_counts(log)) and re.search(
            r"secrets: list: HTTP 403 Forbidden", log), 30,
            "did not sync %s and report secrets as forbidden" % sorted(others))
        lib.check("secrets" not in synced_counts(daemon.log()), "secrets synced despite RBAC")
        lib.check(not wait_serving(daemon, stubs, 3),
                  "health is SERVING although secrets could not be listed:\n" + daemon.log())
        health = health_status(daemon, stubs)
        lib.check(health == "NOT_SERVING",
                  "health is %s, not NOT_SERVING, while secrets cannot be listed:\n%s" % (
                      health, daemon.log()))
        lib.check(http_status(metrics_port, "/healthz") == 200,
                  "/healthz is not 200 while informerd runs")
        readyz, body = http_get(metrics_port, "/readyz")
        lib.check(readyz == 503, "/readyz is %d although secrets could not be listed" % readyz)
        # What the kubelet's readiness probe sees: not ready, on the probe port too.
        probe_readyz = http_status(probe_port_of(args), "/readyz")
        lib.check(probe_readyz == 503,
                  "/readyz on the probe port is %d although secrets could not be listed" %
                  probe_readyz)
        # The body says which resource is not ready and why: the apiserver's 403.
        lib.check(re.search(r"secrets \(all namespaces\): .*last error from the apiserver: "
                            r"list: HTTP 403 Forbidden: secrets is forbidden", body) is not None,
                  "/readyz does not explain the forbidden secrets:\n" + body)
        # A refused resource is retried, not fatal: informerd is still running.
        lib.check(daemon.process.poll() is None,
                  "informerd exited (status %s) while secrets were forbidden; log:\n%s" % (
                      daemon.process.poll(), daemon.log()))
    finally:
        status = daemon.stop()
    lib.check(status == 0, "%s: informerd exited %s after SIGTERM with secrets forbidden; "
              "log:\n%s" % (name, status, daemon.log()))
    print("ok   %-11s a resource outside the RBAC (secrets) is refused: 403, gRPC health %s, "
          "/readyz %d, exit %d after SIGTERM" % (name, health, readyz, status))


def main():
    lib.check(os.access(BINARY, os.X_OK), "%s not built" % BINARY)
    # Every flag the chart and the sidecar pass must be one informerd knows.
    help_text = lib.subprocess.run([BINARY, "--help"], capture_output=True, text=True).stdout
    for flag in ("--config", "--listen", "--metrics-listen", "--probe-listen", "--log-level",
                 "--log-format", "--kubeconfig", "--listen-socket-mode", "--tls-cert-file",
                 "--tls-private-key-file", "--tls-reload-interval", "--client-ca-file",
                 "--authorization-mode", "--authentication-token-audiences"):
        lib.check(flag in help_text, "informerd --help does not list %s:\n%s" % (flag, help_text))
    cluster = lib.Cluster()
    try:
        work = lib.work_dir()
        stubs = os.path.join(work, "stubs")
        os.makedirs(stubs)
        for namespace in ("informerd", "team-a"):
            cluster.ensure_namespace(namespace)
        seed(cluster)
        for name, values, release, namespace in lib.RENDERINGS:
            _, documents = lib.render_documents(values, release, namespace)
            config_text, args = run_manifests(cluster, work, name, [o for _, o, _ in documents],
                                              stubs)
            if name == "default":
                run_outside_rbac(work, name, config_text, args, stubs)
        sidecar = []
        for path in sorted(glob.glob(lib.SIDECAR + "/*.yaml")):
            with open(path) as f:
                sidecar += [o for o in yaml.safe_load_all(f) if o]
        run_manifests(cluster, work, "sidecar", sidecar, stubs)
    finally:
        cluster.stop()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
