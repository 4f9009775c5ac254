#!/usr/bin/python3
"""The Python client (clients/python) against a real etcd + kube-apiserver (test/cluster/cluster.sh)
and the real informerd binary; the example controller (examples/python/pod_images_controller.py)
against both.

  1. Convergence: pods are created, updated, relabelled and deleted with kubectl while two
     Informers run (all pods of a namespace; and only app=web, so relabelling moves pods in and
     out). Each handler's calls are exactly the change history that kubectl's own watch of the
     apiserver reports (each add, update and delete once, in order, resource versions
     included), and each store equals `kubectl get pods -o json` (keys, versions, UIDs).
  2. informerd restarted mid-run: while it is down a pod is deleted, one changed, one created,
     one created and deleted again, one left alone. The Informers come back through
     OUT_OF_RANGE and a fresh snapshot and notify only the real differences: the deletion as a
     DeletedFinalStateUnknown tombstone, the change as one update, the creation as one add,
     nothing for the rest; live events follow.
  3. A client that falls behind (its reader stalls while 30 changes of 200 KiB pile up) is ended
     with RESOURCE_EXHAUSTED and resumes with every change delivered once, in order.
  4. Credentials: with informerd authorizing every call against the apiserver, a token file's
     token (alice, who may list pods) syncs; bob's token is PERMISSION_DENIED and a bad or
     missing token UNAUTHENTICATED, raised from run() at once, not retried.
  5. The example controller keeps each namespace's "pod-images" ConfigMap right as pods come,
     change image and go, puts back a ConfigMap edited by hand, and exits 0 on SIGTERM.

Without a kube-apiserver ($INFORMERD_KUBE_APISERVER, else test/cluster/build_kube_apiserver.sh's
cached build) the test is skipped with a message saying how to build one. Binary paths are the
Bazel runfiles' (relative to the working directory), overridable: INFORMERD_BIN, CLUSTER_SH,
KUBECTL. By hand, from the repository root:

    INFORMERD_BIN=bazel-bin/cmd/informerd/informerd \\
    INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh) test/clients/cluster_test.py
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

from informerd import DeletedFinalStateUnknown, Informer, StreamError  # noqa: E402

INFORMERD = os.environ.get("INFORMERD_BIN", "cmd/informerd/informerd")
CLUSTER_SH = os.environ.get("CLUSTER_SH", "test/cluster/cluster.sh")
BUILD_KUBE_APISERVER = os.path.join(os.path.dirname(CLUSTER_SH), "build_kube_apiserver.sh")
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")
CONTROLLER = os.environ.get("POD_IMAGES_CONTROLLER", "examples/python/pod_images_controller.py")
CONFIG = "resources:\n  - resource: pods\n  - resource: configmaps\n"


def kube_apiserver():
    """The kube-apiserver binary, or None."""
    if os.environ.get("INFORMERD_KUBE_APISERVER"):
        return os.environ["INFORMERD_KUBE_APISERVER"]
    try:
        result = subprocess.run([BUILD_KUBE_APISERVER, "--check"], capture_output=True,
                                text=True, timeout=60)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def wait_until(condition, timeout=60.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, work):
        self.dir = os.path.join(work, "cluster")
        subprocess.run([CLUSTER_SH, "start", self.dir, "--owner-pid=%d" % os.getpid()],
                       check=True, timeout=180)
        self.env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                self.env[key] = value.strip("'")
        self.kubeconfig = self.env["KUBECONFIG_ADMIN_TOKEN"]

    def kubectl(self, *args, stdin=None):
        result = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig] + list(args),
                                input=stdin, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise AssertionError("kubectl %s: %s" % (" ".join(args), result.stderr))
        return result.stdout

    def kubectl_json(self, *args, stdin=None):
        return json.loads(self.kubectl(*args, "-o", "json", stdin=stdin))

    def stop(self):
        subprocess.run([CLUSTER_SH, "stop", self.dir], timeout=120)


class Daemon:
    """informerd on a fixed loopback port, so that a restart keeps the address."""

    def __init__(self, cluster, work, port, extra_args=()):
        self.cluster, self.port, self.extra_args = cluster, port, list(extra_args)
        self.config = os.path.join(work, "informerd-%d.yaml" % port)
        with open(self.config, "w") as f:
            f.write(CONFIG)
        self.log = []
        self.process = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.process = subprocess.Popen(
            [INFORMERD, "--config", self.config, "--kubeconfig", self.cluster.kubeconfig,
             "--listen", self.address, "--metrics-listen", "none", "--probe-listen", "none"]
            + self.extra_args,
            stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:
            self.log.append(line)
            if "gRPC listening on" in line:
                break
        else:
            raise AssertionError("informerd exited:\n" + "".join(self.log))
        process = self.process
        threading.Thread(target=lambda: [self.log.append(l) for l in process.stderr],
                         daemon=True).start()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def describe(obj):
    return "%s/%s" % (obj["metadata"]["namespace"], obj["metadata"]["name"])


class Recorder:
    """Handler calls as ("add", key, rv), ("update", key, old rv, new rv), ("delete", key, rv),
    ("tombstone", key, last known rv)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def on_add(self, obj):
        with self.lock:
            self.calls.append(("add", describe(obj), obj["metadata"]["resourceVersion"]))

    def on_update(self, old, new):
        with self.lock:
            self.calls.append(("update", describe(new), old["metadata"]["resourceVersion"],
                               new["metadata"]["resourceVersion"]))

    def on_delete(self, obj):
        with self.lock:
            if isinstance(obj, DeletedFinalStateUnknown):
                self.calls.append(("tombstone", obj.key, obj.obj["metadata"]["resourceVersion"]))
            else:
                self.calls.append(("delete", describe(obj), obj["metadata"]["resourceVersion"]))

    def snapshot(self):
        with self.lock:
            return list(self.calls)


def pod_manifest(namespace, name, labels, image="nginx:1", init_image=None):
    spec = {"containers": [{"name": "c", "image": image}]}
    if init_image:
        spec["initContainers"] = [{"name": "init", "image": init_image}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": namespace, "labels": labels},
                       "spec": spec})


def rv(obj):
    return obj["metadata"]["resourceVersion"]


def grpc_code_name(errors):
    """The code of the first stream error, by name ("" if none)."""
    return errors[0].code.name if errors else ""


def expected_diff(before, after):
    """The handler calls a re-snapshot must make, from two states (key -> object), sorted."""
    calls = []
    for key, obj in after.items():
        if key not in before:
            calls.append(("add", key, rv(obj)))
        elif rv(before[key]) != rv(obj):
            calls.append(("update", key, rv(before[key]), rv(obj)))
    for key, obj in before.items():
        if key not in after:
            calls.append(("tombstone", key, rv(obj)))
    return sorted(calls)


class ApiserverWatch:
    """`kubectl get pods --watch --output-watch-events -o json`: the apiserver's own account of
    the changes (its initial ADDED events, then each change), as handler calls would be."""

    def __init__(self, cluster, namespace, selector=None):
        args = [KUBECTL, "--kubeconfig", cluster.kubeconfig, "get", "pods", "-n", namespace,
                "--watch", "--output-watch-events", "-o", "json"]
        self.process = subprocess.Popen(args + (["-l", selector] if selector else []),
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.process.stdout:
            buffer += line
            while True:
                stripped = buffer.lstrip()
                if not stripped:
                    buffer = ""
                    break
                try:
                    event, end = decoder.raw_decode(stripped)
                except ValueError:
                    break  # incomplete: read more
                buffer = stripped[end:]
                with self.lock:
                    self.events.append(event)

    def history(self, settle=1.0):
        """The calls so far, after `settle` seconds without a new event."""
        count = -1
        while True:
            with self.lock:
                if len(self.events) == count:
                    break
                count = len(self.events)
            time.sleep(settle)
        with self.lock:
            events = list(self.events)
        state, calls = {}, []
        for event in events:
            obj = event["object"]
            key = describe(obj)
            if event["type"] == "ADDED":
                calls.append(("add", key, rv(obj)))
            elif event["type"] == "MODIFIED":
                calls.append(("update", key, rv(state[key]), rv(obj)))
            elif event["type"] == "DELETED":
                calls.append(("delete", key, rv(obj)))
            state[key] = obj
        return calls

    def stop(self):
        self.process.kill()
        self.process.wait()


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        binary = kube_apiserver()
        if not binary:
            raise unittest.SkipTest(
                "no kube-apiserver: INFORMERD_KUBE_APISERVER is unset and none is cached; build "
                "one with: export INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)")
        os.environ["INFORMERD_KUBE_APISERVER"] = binary
        cls.work = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.cluster = Cluster(cls.work)
        cls.daemon = Daemon(cls.cluster, cls.work, free_port())
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.cluster.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def start_informer(self, namespace, label_selector="", decode=json.loads):
        recorder, errors = Recorder(), []
        informer = Informer(self.daemon.address, "pods", namespace=namespace,
                            label_selector=label_selector, error_handler=errors.append,
                            decode=decode)
        informer.add_event_handler(recorder)
        stop = threading.Event()
        raised = []

        def run():
            try:
                informer.run(stop)
            except Exception as error:  # noqa: BLE001
                raised.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()

        def close():
            stop.set()
            thread.join(15)
            self.assertEqual(raised, [], "run() raised")

        self.addCleanup(close)
        self.assertTrue(informer.wait_for_sync(60), "did not sync: " + "".join(self.daemon.log))
        return informer, recorder, errors

    maxDiff = None

    def wait_calls(self, recorder, expected, what, unordered_prefix=0, delete_rv=True):
        """The calls must be `expected`; the first `unordered_prefix` (a snapshot's adds, in
        the order of whoever took the snapshot) in any order. delete_rv=False compares deletes
        by key only: for an object that stops matching a selector the apiserver's watch sends
        its new state, informerd the last state that matched (informerd.proto: "the last known
        state")."""
        wait_until(lambda: len(recorder.snapshot()) >= len(expected), 60)
        time.sleep(0.5)  # anything more would show now
        calls, n = recorder.snapshot(), unordered_prefix
        if not delete_rv:
            calls, expected = ([c[:2] if c[0] == "delete" else c for c in seq]
                               for seq in (calls, expected))
        self.assertEqual((sorted(calls[:n]), calls[n:]), (sorted(expected[:n]), expected[n:]),
                         what)

    def assert_store_is_kubectls(self, informer, namespace, selector=None):
        args = ["get", "pods", "-n", namespace] + (["-l", selector] if selector else [])
        items = self.cluster.kubectl_json(*args)["items"]
        expected = {describe(o): (rv(o), o["metadata"]["uid"]) for o in items}
        actual = {describe(o): (rv(o), o["metadata"]["uid"]) for o in informer.store.list()}
        self.assertEqual(actual, expected, "store vs kubectl get pods %s" % selector)

    def test_convergence_and_informerd_restart(self):
        ns = "informer-a"
        k = self.cluster
        k.kubectl("create", "namespace", ns)
        create = lambda name, labels: k.kubectl(  # noqa: E731
            "create", "-f", "-", stdin=pod_manifest(ns, name, labels))
        create("p0", {"app": "web"})
        create("p1", {"app": "db"})
        # The change history as the apiserver tells it: kubectl's own watches, beside ours.
        truth_all = ApiserverWatch(k, ns)
        truth_web = ApiserverWatch(k, ns, "app=web")
        self.addCleanup(truth_all.stop)
        self.addCleanup(truth_web.stop)
        every, every_calls, every_errors = self.start_informer(ns)
        web, web_calls, web_errors = self.start_informer(ns, "app=web")

        # -- Live changes: create, update, relabel (out of and into app=web), delete.
        create("p2", {"app": "web"})
        k.kubectl("label", "pod", "p2", "-n", ns, "tier=fe")
        k.kubectl("label", "pod", "p0", "-n", ns, "app=db", "--overwrite")
        k.kubectl("label", "pod", "p1", "-n", ns, "app=web", "--overwrite")
        k.kubectl("annotate", "pod", "p1", "-n", ns, "note=hello")
        k.kubectl("delete", "pod", "p2", "-n", ns, "--wait=true")
        for truth, calls, initial, what in ((truth_all, every_calls, 2, "all pods"),
                                            (truth_web, web_calls, 1, "app=web")):
            expected = truth.history()
            self.assertGreaterEqual(len(expected), 8 if truth is truth_all else 6, expected)
            self.wait_calls(calls, expected, what + ": the apiserver's change history", initial,
                            delete_rv=truth is truth_all)
        self.assert_store_is_kubectls(every, ns)
        self.assert_store_is_kubectls(web, ns, "app=web")
        self.assertEqual(every_errors + web_errors, [])

        # -- informerd restarted; changes made while it is down.
        before_all, before_web = self.kubectl_state(ns), self.kubectl_state(ns, "app=web")
        calls_all, calls_web = len(every_calls.snapshot()), len(web_calls.snapshot())
        self.daemon.stop()
        k.kubectl("delete", "pod", "p0", "-n", ns)            # gone while away
        k.kubectl("label", "pod", "p1", "-n", ns, "tier=be")  # changed
        create("p3", {"app": "web"})                          # created
        create("p4", {"app": "web"})                          # created and deleted again
        k.kubectl("delete", "pod", "p4", "-n", ns)
        after_all, after_web = self.kubectl_state(ns), self.kubectl_state(ns, "app=web")
        self.daemon.start()
        expected_all = expected_diff(before_all, after_all)
        expected_web = expected_diff(before_web, after_web)
        self.assertEqual(sorted(c[0] for c in expected_all), ["add", "tombstone", "update"])
        self.assertTrue(wait_until(
            lambda: len(every_calls.snapshot()) >= calls_all + len(expected_all)
            and len(web_calls.snapshot()) >= calls_web + len(expected_web), 90),
            "no re-snapshot: %r %r\n%s" % (every_calls.snapshot()[calls_all:],
                                            web_calls.snapshot()[calls_web:],
                                            "".join(self.daemon.log)))
        time.sleep(0.5)
        # A snapshot's order is the daemon's: the differences are compared as a set.
        self.assertEqual(sorted(every_calls.snapshot()[calls_all:]), expected_all)
        self.assertEqual(sorted(web_calls.snapshot()[calls_web:]), expected_web)
        self.assertIn("resnapshot", [e.action for e in every_errors],
                      "came back through OUT_OF_RANGE: %r" % every_errors)
        self.assertIn("retry", [e.action for e in every_errors], "informerd down: UNAVAILABLE")
        self.assert_store_is_kubectls(every, ns)
        self.assert_store_is_kubectls(web, ns, "app=web")

        # -- Live again after the re-snapshot.
        create("p5", {"app": "web"})
        p5 = k.kubectl_json("get", "pod", "p5", "-n", ns)
        self.wait_calls(every_calls, every_calls.snapshot()[:calls_all + len(expected_all)]
                        + [("add", "%s/p5" % ns, rv(p5))], "live after the restart")
        self.assert_store_is_kubectls(every, ns)

    def test_a_client_that_falls_behind_resumes_without_loss(self):
        """The informer stops reading (its decode blocks) while large changes pile up: informerd
        ends its stream with RESOURCE_EXHAUSTED, and it resumes from its last version with every
        change delivered once, in order."""
        ns = "behind"
        k = self.cluster
        k.kubectl("create", "namespace", ns)
        k.kubectl("create", "-f", "-", stdin=pod_manifest(ns, "big", {"app": "web"}))
        truth = ApiserverWatch(k, ns)
        self.addCleanup(truth.stop)
        reading = threading.Event()
        reading.set()

        def stalling_decode(text):
            reading.wait(120)
            return json.loads(text)

        informer, calls, errors = self.start_informer(ns, decode=stalling_decode)
        reading.clear()
        filler = "x" * (200 << 10)  # 30 changes of 200 KiB: more than gRPC's windows buffer
        for i in range(30):  # replace from stdin: an argument may not be that long
            pod = k.kubectl_json("get", "pod", "big", "-n", ns)
            pod["metadata"].setdefault("annotations", {})["filler"] = "%d%s" % (i, filler)
            k.kubectl("replace", "-f", "-", stdin=json.dumps(pod))
        self.assertTrue(wait_until(lambda: len(truth.history(settle=0.2)) >= 31, 60))
        time.sleep(3)  # informerd gives a subscriber that reads nothing about a second
        reading.set()
        expected = truth.history()
        self.wait_calls(calls, expected, "the change history after falling behind", 1)
        self.assertIn(grpc_code_name(errors), ("RESOURCE_EXHAUSTED",),
                      "informerd did not end the stalled stream: %r" % errors)
        self.assertNotIn("resnapshot", [e.action for e in errors], errors)
        self.assert_store_is_kubectls(informer, ns)

    def kubectl_state(self, namespace, selector=None):
        args = ["get", "pods", "-n", namespace] + (["-l", selector] if selector else [])
        return {describe(o): o for o in self.cluster.kubectl_json(*args)["items"]}

    def test_tokens_are_sent_and_a_denial_is_raised_not_retried(self):
        """informerd authorizing each call with the apiserver (Webhook): alice's token may list
        and watch pods, bob's may not."""
        daemon = Daemon(self.cluster, self.work, free_port(), ["--authorization-mode", "Webhook"])
        daemon.start()
        self.addCleanup(daemon.stop)
        token_file = os.path.join(self.work, "alice.token")
        with open(token_file, "w") as f:
            f.write(self.cluster.env["TOKEN_ALICE_TOKEN"] + "\n")
        self.cluster.kubectl("create", "namespace", "tokens")
        self.cluster.kubectl("create", "-f", "-", stdin=pod_manifest("tokens", "t1", {}))
        alice = Informer(daemon.address, "pods", namespace="tokens", token_file=token_file)
        stop = threading.Event()
        thread = threading.Thread(target=alice.run, args=(stop,), daemon=True)
        thread.start()
        try:
            self.assertTrue(alice.wait_for_sync(60), "".join(daemon.log))
            self.assertEqual(alice.store.keys(), ["tokens/t1"])
        finally:
            stop.set()
            thread.join(15)
        for token, code in ((self.cluster.env["TOKEN_BOB_TOKEN"], "PERMISSION_DENIED"),
                            ("not-a-token", "UNAUTHENTICATED"),
                            (None, "UNAUTHENTICATED")):
            errors = []
            informer = Informer(daemon.address, "pods", namespace="tokens", token=token,
                                error_handler=errors.append)
            with self.assertRaises(StreamError) as raised:
                informer.run(threading.Event())
            self.assertEqual(raised.exception.code.name, code, raised.exception)
            self.assertEqual([e.action for e in errors], ["fatal"])
            self.assertFalse(informer.has_synced())

    def test_example_controller_keeps_the_configmaps(self):
        k = self.cluster
        for ns in ("images-1", "images-2"):
            k.kubectl("create", "namespace", ns)
        k.kubectl("create", "-f", "-", stdin=pod_manifest("images-1", "a", {}, "nginx:1",
                                                          init_image="busybox:1"))
        k.kubectl("create", "-f", "-", stdin=pod_manifest("images-1", "b", {}, "redis:7"))
        k.kubectl("create", "-f", "-", stdin=pod_manifest("images-1", "c", {}, "nginx:1"))
        k.kubectl("create", "-f", "-", stdin=pod_manifest("images-2", "d", {}, "nginx:1"))
        log = open(os.path.join(self.work, "controller.log"), "w+")
        process = subprocess.Popen(
            [sys.executable, CONTROLLER, "--address", self.daemon.address, "--kubeconfig",
             k.kubeconfig, "--kubectl", KUBECTL], stdout=log, stderr=subprocess.STDOUT)

        def output():
            log.flush()
            log.seek(0)
            return log.read()

        def images(ns):
            result = subprocess.run(
                [KUBECTL, "--kubeconfig", k.kubeconfig, "get", "configmap", "pod-images", "-n",
                 ns, "-o", "json"], capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                return None
            return json.loads(result.stdout).get("data", {}).get("images")

        def expect(ns, value, what):
            self.assertTrue(wait_until(lambda: images(ns) == value, 60, 0.3),
                            "%s: %s has %r, not %r\n%s" % (what, ns, images(ns), value, output()))

        try:
            expect("images-1", "busybox:1\nnginx:1\nredis:7", "first sync")
            expect("images-2", "nginx:1", "first sync")
            k.kubectl("set", "image", "pod/d", "-n", "images-2", "c=nginx:2")
            expect("images-2", "nginx:2", "image changed")
            k.kubectl("delete", "pod", "b", "-n", "images-1")
            expect("images-1", "busybox:1\nnginx:1", "pod deleted")
            k.kubectl("patch", "configmap", "pod-images", "-n", "images-1", "--type=merge",
                      "-p", '{"data":{"images":"tampered"}}')
            expect("images-1", "busybox:1\nnginx:1", "edited by hand, put back")
            k.kubectl("delete", "pod", "d", "-n", "images-2")
            expect("images-2", None, "no pods left: ConfigMap deleted")
            process.send_signal(signal.SIGTERM)
            self.assertEqual(process.wait(30), 0, output())
            # One write per change, give or take one: a reconcile may run before the ConfigMap
            # informer has seen the controller's own last write, and write the same again. No
            # write storm.
            applies = re.findall(r"applied configmap (\S+):", output())
            self.assertIn(applies.count("images-1/pod-images"), (3, 4), output())
            self.assertIn(applies.count("images-2/pod-images"), (2, 3), output())
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
