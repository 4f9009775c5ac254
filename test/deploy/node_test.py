#!/usr/bin/python3
"""The chart's and the sidecar manifests' pods run for real on a one-node cluster: etcd and
kube-apiserver (test/cluster/cluster.sh), containerd + runc and a kubelet built from Debian's
kubernetes source (test/cluster/node.sh), the image built by deploy/build_image.sh --prebuilt.

- The chart (default values, TLS from the README's self-signed certificate; ports and the liveness
  timing from a values file): its informerd pod becomes Ready through the kubelet's /readyz probe,
  with in-cluster credentials from its ServiceAccount's projected token; from the host (the pod
  shares the node's network), informerctl with another ServiceAccount's token over TLS lists the
  pods that account may read; a client pod running the image's informerctl with its own mounted
  token does the same; a liveness failure (the process stopped with SIGSTOP) makes the kubelet
  restart the container, which becomes Ready again.
- The sidecar manifests: the application container (the image's informerctl, in place of "your
  application") reads pods through informerd's unix socket in the shared emptyDir.

What stands in for the parts of a cluster that are not here (test/cluster/node.sh's header): no
scheduler or controllers, so each pod is made from its Deployment's template with spec.nodeName,
the projected token volume the ServiceAccount admission plugin would add, and the
kube-root-ca.crt ConfigMap the controller-manager would publish; host networking (no CNI), and
KUBERNETES_SERVICE_HOST/PORT naming the apiserver on loopback (no kube-proxy for the
`kubernetes` Service's ClusterIP).

Opt-in: skips (exit 0, "SKIP: ...") when no image can be built, when containerd is not
installed, or when the kubelet is not built (test/cluster/build_kubelet.sh, about 15 minutes once;
the test never builds it)."""
import json
import os
import shutil
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_testlib as lib  # noqa: E402

BUILD_IMAGE = "deploy/build_image.sh"
BUILD_KUBELET = "test/cluster/build_kubelet.sh"
NODE_SH = "test/cluster/node.sh"
INFORMERD = "cmd/informerd/informerd"
INFORMERCTL = "cmd/informerctl/informerctl"
REPOSITORY, TAG = "localhost/informerd", "node-test"
IMAGE = "%s:%s" % (REPOSITORY, TAG)
PODMAN = os.environ.get("PODMAN", "podman")
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def skip(reason):
    print("SKIP: " + reason)
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


def preconditions():
    check = subprocess.run([BUILD_IMAGE, "--check"], capture_output=True, text=True)
    if check.returncode == 3:
        skip(check.stderr.strip())
    for tool in ("/usr/bin/containerd", "/usr/bin/ctr"):
        if not os.access(tool, os.X_OK):
            skip("%s not installed (apt-get install containerd): no node can run" % tool)
    kubelet = subprocess.run([BUILD_KUBELET, "--check"], capture_output=True, text=True)
    if kubelet.returncode == 3:
        skip("the kubelet is not built (opt-in): " + " ".join(kubelet.stderr.split()))
    lib.check(kubelet.returncode == 0, "build_kubelet.sh --check: " + kubelet.stderr)


def build_image(work):
    result = subprocess.run([BUILD_IMAGE, "--prebuilt", INFORMERD, INFORMERCTL, "--tag", IMAGE],
                            capture_output=True, text=True, timeout=1200)
    if result.returncode == 3:
        skip(result.stderr.strip().splitlines()[-1])
    lib.check(result.returncode == 0, "build_image.sh failed:\n" + result.stderr[-6000:])
    archive = os.path.join(work, "image.tar")
    subprocess.run([PODMAN, "save", "--format", "docker-archive", "-o", archive, IMAGE],
                   check=True, capture_output=True)
    return archive


class Node:
    def __init__(self, cluster):
        self.cluster = cluster
        result = subprocess.run([NODE_SH, "start", cluster.dir, "--owner-pid=%d" % os.getpid()],
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise AssertionError("node.sh start failed:\n" + result.stderr)
        self.env = {}
        with open(os.path.join(cluster.dir, "node.env")) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("=")
                self.env[key] = value.strip("'")

    def load_image(self, archive):
        subprocess.run([NODE_SH, "load-image", self.cluster.dir, archive], check=True,
                       capture_output=True, timeout=300)

    def kubelet_log(self):
        try:
            with open(self.env["KUBELET_LOG"]) as f:
                return "".join(f.readlines()[-60:])
        except OSError as e:
            return str(e)

    def stop(self):
        subprocess.run([NODE_SH, "stop", self.cluster.dir], capture_output=True, timeout=180)


def pod_from_template(deployment, name, env=None):
    """The pod a ReplicaSet would create from the Deployment's template, bound to the node, with
    what the missing pieces would have added."""
    template = deployment["spec"]["template"]
    spec = json.loads(json.dumps(template["spec"]))
    spec["nodeName"] = "informerd-node"
    spec["hostNetwork"] = True
    if spec.get("automountServiceAccountToken", True):
        # As the ServiceAccount admission plugin (BoundServiceAccountTokenVolume) adds it.
        spec.setdefault("volumes", []).append({"name": "kube-api-access", "projected": {
            "defaultMode": 0o644, "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
        for container in spec["containers"]:
            container.setdefault("volumeMounts", []).append(
                {"name": "kube-api-access", "mountPath": TOKEN_DIR, "readOnly": True})
    for container in spec["containers"]:
        container.setdefault("env", []).extend(env or [])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": deployment["metadata"]["namespace"],
                         "labels": template["metadata"].get("labels", {}),
                         "annotations": template["metadata"].get("annotations", {})},
            "spec": spec}


def apply(cluster, work, name, objects):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(objects, f)
    cluster.kubectl("apply", "-f", path)


def pod_status(cluster, namespace, name):
    return json.loads(cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def wait_pod(cluster, node, namespace, name, predicate, what, timeout):
    deadline = time.monotonic() + timeout
    pod = {}
    while time.monotonic() < deadline:
        pod = pod_status(cluster, namespace, name)
        if predicate(pod):
            return pod
        time.sleep(1)
    events = cluster.kubectl("get", "events", "-n", namespace, check=False).stdout
    raise AssertionError("pod %s/%s: not %s within %ds\nstatus: %s\nevents:\n%s\nkubelet log:\n%s"
                         % (namespace, name, what, timeout, json.dumps(pod.get("status"),
                                                                       indent=1), events,
                            node.kubelet_log()))


def container_status(pod, name):
    return next(c for c in pod["status"]["containerStatuses"] if c["name"] == name)


def container_log(pod, container):
    """The container's output, from the kubelet's log file (/var/log/pods: `kubectl logs` cannot
    reach this node's kubelet, which listens on loopback only). CRI lines: TIME STREAM TAG TEXT."""
    meta = pod["metadata"]
    directory = "/var/log/pods/%s_%s_%s/%s" % (meta["namespace"], meta["name"], meta["uid"],
                                               container)
    lines = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name)) as f:
            lines += [line.split(" ", 3)[3] if line.count(" ") >= 3 else line for line in f]
    return "".join(lines)


def in_cluster_env(cluster):
    """What the kubelet would set from the `kubernetes` Service, made reachable: the apiserver on
    loopback (its certificate names 127.0.0.1)."""
    return [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": cluster.env["APISERVER_PORT"]}]


def publish_root_ca(cluster, namespace):
    with open(cluster.env["CA_FILE"]) as f:
        ca = f.read()
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
         "data": {"ca.crt": ca}}))


def check_chart(cluster, node, work):
    namespace, release = "informerd", "informerd"
    ports = {"grpc": lib.free_port(), "metrics": lib.free_port(), "probes": lib.free_port()}
    lib.check(len(set(ports.values())) == 3, "free ports collided: %s" % ports)
    values = os.path.join(work, "node-values.yaml")
    with open(values, "w") as f:
        yaml.safe_dump({"image": {"repository": REPOSITORY, "tag": TAG},
                        "grpc": {"port": ports["grpc"]}, "metrics": {"port": ports["metrics"]},
                        "probes": {"port": ports["probes"]},
                        # A liveness failure noticed in seconds rather than half a minute.
                        "livenessProbe": {"initialDelaySeconds": 5, "periodSeconds": 2,
                                          "timeoutSeconds": 1, "failureThreshold": 2}}, f)
    _, documents = lib.render_documents([values], release, namespace)
    objects = [o for _, o, _ in documents]
    cluster.ensure_namespace(namespace)
    publish_root_ca(cluster, namespace)
    tls_dir = os.path.join(work, "tls")
    os.makedirs(tls_dir)
    certificate, key = lib.quick_start_certificate(tls_dir, release, namespace)
    cluster.kubectl("-n", namespace, "create", "secret", "tls", release + "-tls",
                    "--cert=" + certificate, "--key=" + key)
    apply(cluster, work, "chart", [o for o in objects if o["kind"] != "Deployment"])
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod_name = release + "-node-test"
    apply(cluster, work, "chart-pod", [pod_from_template(deployment, pod_name,
                                                         in_cluster_env(cluster))])
    started = time.monotonic()
    pod = wait_pod(cluster, node, namespace, pod_name, ready, "Ready", 180)
    print("ok   chart: pod %s Ready (the kubelet's /readyz probe) in %.1fs" % (
        pod_name, time.monotonic() - started))
    # Its only credentials are the mounted token: no kubeconfig among its arguments or files.
    args = next(c for c in pod["spec"]["containers"] if c["name"] == "informerd")["args"]
    lib.check(not any(a.startswith("--kubeconfig") for a in args), "args: %s" % args)

    # A reader: a ServiceAccount allowed to list pods in "default", and one pod there to find.
    cluster.kubectl("apply", "-f", "-", stdin=READER_RBAC)
    cluster.kubectl("run", "findme", "--image=registry.example.com/app:1", "--restart=Never",
                    "-n", "default", "--overrides",
                    json.dumps({"spec": {"nodeName": "nowhere"}}))
    token = cluster.service_account_token("default", "reader")
    token_file = os.path.join(work, "reader.token")
    with open(token_file, "w") as f:
        f.write(token)
    server_name = "%s.%s.svc" % (release, namespace)
    address = "127.0.0.1:%d" % ports["grpc"]
    ctl = subprocess.run([INFORMERCTL, "--address", address, "--cacert", certificate,
                          "--tls-server-name", server_name, "--token-file", token_file,
                          "list", "pods", "-n", "default", "-o", "name"],
                         capture_output=True, text=True, timeout=30)
    lib.check(ctl.returncode == 0 and "pods/findme\n" in ctl.stdout,
              "informerctl from the host: %d %s%s" % (ctl.returncode, ctl.stdout, ctl.stderr))
    refused = subprocess.run([INFORMERCTL, "--address", address, "--cacert", certificate,
                              "--tls-server-name", server_name, "--token-file", token_file,
                              "list", "pods", "-n", namespace], capture_output=True, text=True,
                             timeout=30)
    lib.check(refused.returncode != 0 and "PERMISSION_DENIED" in refused.stderr,
              "the reader listed pods in %s: %s%s" % (namespace, refused.stdout, refused.stderr))
    print("ok   chart: informerctl over TLS as default:reader lists %s, refused in %s "
          "(informerd's TokenReview and SubjectAccessReview as its own ServiceAccount)"
          % (ctl.stdout.split(), namespace))

    # A client pod: the image's informerctl with its own mounted ServiceAccount token.
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "informerd-ca", "namespace": "default"},
                 "data": {"ca.crt": open(certificate).read()}}
    client = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "client", "namespace": "default"},
              "spec": {"nodeName": "informerd-node", "hostNetwork": True, "restartPolicy": "Never",
                       "serviceAccountName": "reader",
                       "containers": [{"name": "informerctl", "image": IMAGE,
                                       "imagePullPolicy": "Never",
                                       "command": ["/usr/local/bin/informerctl", "--address",
                                                   address, "--cacert", "/etc/informerd-ca/ca.crt",
                                                   "--tls-server-name", server_name,
                                                   "--token-file", TOKEN_DIR + "/token",
                                                   "list", "pods", "-n", "default", "-o", "name"],
                                       "volumeMounts": [{"name": "ca",
                                                         "mountPath": "/etc/informerd-ca"}]}],
                       "volumes": [{"name": "ca", "configMap": {"name": "informerd-ca"}}]}}
    publish_root_ca(cluster, "default")
    client_deployment = {"metadata": {"namespace": "default"},
                         "spec": {"template": {"metadata": {}, "spec": client["spec"]}}}
    apply(cluster, work, "client", [configmap, pod_from_template(client_deployment, "client")])
    pod = wait_pod(cluster, node, "default", "client",
                   lambda p: p.get("status", {}).get("phase") in ("Succeeded", "Failed"),
                   "finished", 120)
    output = container_log(pod, "informerctl")
    lib.check(pod["status"]["phase"] == "Succeeded" and "pods/findme" in output,
              "client pod %s; output: %s" % (pod["status"]["phase"], output))
    print("ok   chart: a client pod's informerctl lists %s" % output.split())

    # Liveness: a stopped process answers no probe; the kubelet restarts the container.
    container_id = container_status(pod_status(cluster, namespace, pod_name),
                                    "informerd")["containerID"].split("://", 1)[1]
    tasks = subprocess.run(["/usr/bin/ctr", "--address", node.env["CONTAINERD_SOCKET"],
                            "-n", "k8s.io", "tasks", "list"], capture_output=True, text=True,
                           check=True).stdout
    pid = next(int(line.split()[1]) for line in tasks.splitlines()
               if line.startswith(container_id))
    os.kill(pid, 19)  # SIGSTOP
    started = time.monotonic()
    pod = wait_pod(cluster, node, namespace, pod_name,
                   lambda p: container_status(p, "informerd")["restartCount"] >= 1 and ready(p),
                   "restarted and Ready again", 180)
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    reasons = [e.get("message", "") for e in json.loads(events)["items"]
               if e.get("reason") == "Unhealthy"]
    liveness = [m for m in reasons if "Liveness probe failed" in m]
    lib.check(liveness, "no 'Liveness probe failed' event: %s" % reasons)
    print("ok   chart: SIGSTOPped informerd restarted by the liveness probe and Ready again in "
          "%.1fs (%s)" % (time.monotonic() - started, liveness[-1]))


READER_RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-pod-reader, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: default}
"""


def check_sidecar(cluster, node, work):
    objects = []
    for name in ("rbac.yaml", "configmap.yaml", "deployment.yaml"):
        with open(os.path.join(lib.SIDECAR, name)) as f:
            objects += [o for o in yaml.safe_load_all(f) if o]
    apply(cluster, work, "sidecar", [o for o in objects if o["kind"] != "Deployment"])
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    namespace = deployment["metadata"]["namespace"]
    publish_root_ca(cluster, namespace)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    app = next(c for c in containers if c["name"] == "app")
    informerd = next(c for c in containers if c["name"] == "informerd")
    lib.check(informerd["image"] == "informerd:0.1.0", "sidecar image %s" % informerd["image"])
    informerd["image"] = IMAGE
    # "Your application": the image's informerctl reading through the socket, then idling so that
    # the pod stays up for the probes.
    app["image"] = IMAGE
    app["command"] = ["/bin/sh", "-c",
                      "until /usr/local/bin/informerctl -o name list pods -n default; do sleep 1; "
                      "done; echo listed; exec sleep 3600"]
    pod_name = "my-app-node-test"
    apply(cluster, work, "sidecar-pod", [pod_from_template(deployment, pod_name,
                                                           in_cluster_env(cluster))])
    pod = wait_pod(cluster, node, namespace, pod_name, ready, "Ready", 180)
    deadline = time.monotonic() + 60
    logs = ""
    while time.monotonic() < deadline and "listed" not in logs:
        logs = container_log(pod, "app")
        time.sleep(1)
    lib.check("pods/%s" % pod_name in logs and "listed" in logs,
              "the application did not list its own pod through the socket: %s" % logs)
    print("ok   sidecar: pod Ready; the application lists %s through %s" % (
        [w for w in logs.split() if w.startswith("pods/")],
        next(e["value"] for e in app["env"] if e["name"] == "INFORMERD_ADDRESS")))


def main():
    for path in (INFORMERD, INFORMERCTL):
        lib.check(os.access(path, os.X_OK), "%s not built" % path)
    preconditions()
    work = lib.work_dir()
    archive = build_image(work)
    cluster = lib.Cluster()
    node = None
    try:
        started = time.monotonic()
        node = Node(cluster)
        node.load_image(archive)
        print("node started, image loaded in %.1fs" % (time.monotonic() - started))
        check_chart(cluster, node, work)
        check_sidecar(cluster, node, work)
    finally:
        if node:
            node.stop()
        cluster.stop()
        shutil.rmtree(os.path.join(work, "tls"), ignore_errors=True)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
