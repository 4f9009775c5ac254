"""Support for the deployment tests: the chart renderer, a real kube-apiserver (test/cluster/
cluster.sh) and kubectl against it. Paths are relative to the runfiles root, the tests' cwd."""
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

CHART = "deploy/helm/informerd"
EXAMPLES = "deploy/helm/examples"
RENDER = "deploy/helm/render.py"
SIDECAR = "deploy/sidecar"
CLUSTER_SH = "test/cluster/cluster.sh"
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")

sys.path.insert(0, os.path.dirname(RENDER))
import render  # noqa: E402,F401  (deploy/helm/render.py; lib.render for the tests)

# The documented renderings: (name, values files, release name, namespace). README "Deploying".
RENDERINGS = [
    ("default", [], "informerd", "informerd"),
    ("namespaced", [EXAMPLES + "/namespaced.yaml"], "informerd-team-a", "team-a"),
    ("crd", [EXAMPLES + "/crd.yaml"], "informerd-crd", "informerd"),
    ("mtls", [EXAMPLES + "/mtls.yaml"], "informerd-mtls", "informerd"),
    ("replicas", [EXAMPLES + "/replicas.yaml"], "informerd-ha", "informerd"),
]


def work_dir():
    base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
    return tempfile.mkdtemp(prefix="deploy.", dir=base)


def render_documents(values_files, release, namespace, api_versions=None):
    """The chart rendered by render.py's command line: [(source, parsed object, text)].
    `api_versions`: the cluster's group/versions (render.py's --api-versions); None, its default."""
    result = subprocess.run([sys.executable, RENDER, CHART, "--release-name", release,
                             "--namespace", namespace] + [a for f in values_files for a in ("-f", f)] +
                            [a for v in api_versions or [] for a in ("--api-versions", v)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError("render.py failed (%d): %s" % (result.returncode, result.stderr))
    documents = []
    for chunk in result.stdout.split("---\n")[1:]:
        first, _, text = chunk.partition("\n")
        assert first.startswith("# Source: "), chunk
        documents.append((first[len("# Source: "):], yaml.safe_load(text), text))
    return result.stdout, documents


class Cluster:
    """A real etcd + kube-apiserver for this test (stopped by stop(), or by cluster.sh's watchdog
    when this process dies)."""

    def __init__(self):
        self.dir = os.path.join(work_dir(), "cluster")
        started = time.monotonic()
        result = subprocess.run([CLUSTER_SH, "start", self.dir, "--owner-pid=%d" % os.getpid()],
                                capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise AssertionError("cluster.sh start failed:\n" + result.stderr)
        print("cluster started in %.1fs" % (time.monotonic() - started))
        self.env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("=")
                self.env[key] = value.strip("'")
        self.admin = self.env["KUBECONFIG_ADMIN_TOKEN"]

    def stop(self):
        subprocess.run([CLUSTER_SH, "stop", self.dir], capture_output=True, timeout=120)

    def kubectl(self, *args, kubeconfig=None, stdin=None, check=True, timeout=120):
        """Runs kubectl; returns the CompletedProcess (raising with its output if check fails)."""
        command = [KUBECTL, "--kubeconfig", kubeconfig or self.admin,
                   "--cache-dir", os.path.join(self.dir, "kubectl-cache")] + list(args)
        result = subprocess.run(command, input=stdin, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(command), result.returncode,
                                                           result.stdout, result.stderr))
        return result

    def ensure_namespace(self, name):
        if self.kubectl("get", "namespace", name, check=False).returncode != 0:
            self.kubectl("create", "namespace", name)

    def service_account_token(self, namespace, name, audiences=None):
        """A token for the ServiceAccount, from the TokenRequest API (POST .../token), which
        `kubectl create token` uses too; any kubectl can send it with `create --raw`. Its
        audiences: `audiences`, or the apiserver's own (test/cluster/cluster.sh's
        --api-audiences)."""
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"audiences": audiences or ["https://kubernetes.default.svc"],
                            "expirationSeconds": 3600}}
        path = os.path.join(self.dir, "token-request.json")
        with open(path, "w") as f:
            json.dump(request, f)
        result = self.kubectl("create", "--raw",
                              "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (namespace, name),
                              "-f", path)
        token = json.loads(result.stdout)["status"]["token"]
        assert token.count(".") == 2, "not a JWT: %r" % token[:40]
        return token

    def token_kubeconfig(self, path, token):
        with open(path, "w") as f:
            f.write("apiVersion: v1\nkind: Config\n"
                    "clusters:\n- name: test\n  cluster:\n    server: %s\n"
                    "    certificate-authority: %s\n"
                    "users:\n- name: sa\n  user:\n    token: %s\n"
                    "contexts:\n- name: sa\n  context:\n    cluster: test\n    user: sa\n"
                    "current-context: sa\n" % (self.env["APISERVER_URL"], self.env["CA_FILE"], token))
        os.chmod(path, 0o600)
        return path


README = "README.md"


def quick_start_certificate(directory, release, namespace):
    """Runs the README's self-signed certificate commands (the sh block after the
    `quick-start-tls` marker) in `directory` for `release` and `namespace`, without the kubectl
    line; returns the paths of (tls.crt, tls.key)."""
    with open(README) as f:
        text = f.read()
    marker = text.index("<!-- quick-start-tls:")
    block = text[text.index("```sh\n", marker) + len("```sh\n"):]
    block = block[:block.index("```")]
    lines = block.split("\n")
    assert lines[0] == "RELEASE=informerd NAMESPACE=informerd", lines[0]
    lines[0] = "RELEASE=%s NAMESPACE=%s" % (release, namespace)
    script = "\n".join(l for l in lines if not l.startswith("kubectl "))
    assert "kubectl" not in script and "openssl req" in script, script
    subprocess.run(["bash", "-euc", script], cwd=directory, check=True, capture_output=True)
    return os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """informerd running in the background; its stderr lines are collected as they come."""

    def __init__(self, binary, args):
        import threading
        self.args = [binary] + args
        self.process = subprocess.Popen(self.args, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line)

    def log(self):
        with self._lock:
            return "".join(self.lines)

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate(log text) is true; fails with the log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.log()):
                return
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the reader take the last lines
                break
            time.sleep(0.1)
        raise AssertionError("informerd: %s within %ds; command %s\nexit status %s; log:\n%s" % (
            what, timeout, " ".join(self.args), self.process.poll(), self.log()))

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("informerd ignored SIGTERM for 20s; log:\n" + self.log())


def health_stub(address, out_dir, ca_file=None):
    """A grpc.health.v1 stub for `address` (over TLS trusting `ca_file` when given), generated
    from Debian's grpc-proto (as test/e2e/python_health_check_test.py does); returns
    (stub, health_pb2)."""
    import grpc
    if not os.path.exists(os.path.join(out_dir, "healthstubs")):
        subprocess.run(["/usr/bin/protoc", "-Ihealthstubs=/usr/share/grpc-proto/grpc/health",
                        "--python_out=" + out_dir, "--grpc_out=" + out_dir,
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                        "healthstubs/v1/health.proto"], check=True)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    from healthstubs.v1 import health_pb2, health_pb2_grpc
    if ca_file:
        with open(ca_file, "rb") as f:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(address)
    return health_pb2_grpc.HealthStub(channel), health_pb2
