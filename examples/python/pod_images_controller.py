#!/usr/bin/python3
"""A controller on informerd: keeps a ConfigMap "pod-images" in each namespace listing the images
its pods run.

The shape of every client-go controller, with the informerd Python client (clients/python):

  * two Informers over informerd: pods, and this controller's ConfigMaps (label
    app.kubernetes.io/managed-by=pod-images-controller), their handlers putting the namespace to
    reconcile on a RateLimitingQueue;
  * wait_for_sync on both, then worker threads: get() a namespace, reconcile it from the
    informers' stores (never from the apiserver), done(); forget() on success,
    add_rate_limited() on failure (5 ms doubling to 1000 s per namespace, 10/s overall);
  * reconcile is level-based: desired = the sorted, distinct images of the namespace's pods
    (containers and initContainers); the ConfigMap is written only when it differs (data key
    "images", one image per line) and deleted when the namespace has no pods. A ConfigMap edited
    or deleted by someone else is put back, since its events queue the namespace too.

Writes go to the apiserver with kubectl (`kubectl apply -f -` of the ConfigMap as JSON, and
`kubectl delete configmap`), as whoever --kubeconfig names; reads never leave informerd. Stop it
with SIGINT or SIGTERM: the queue is drained (namespaces in flight finish) and it exits 0.

    examples/python/pod_images_controller.py --address 127.0.0.1:50051 --kubeconfig ~/.kube/config

informerd must serve pods and configmaps (its config's `resources`). Uses the `informerd` package
(pip install ./clients/python); run from the repository it finds clients/python by itself.
"""
import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading

try:
    from informerd import (DeletedFinalStateUnknown, Informer, RateLimitingQueue, StreamError,
                           split_key)
except ImportError:  # run from the repository without installing the package
    for module in [m for m in sys.modules if m == "informerd" or m.startswith("informerd.")]:
        del sys.modules[module]  # e.g. a namespace package of stubs generated beside this file
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "clients", "python"))
    from informerd import (DeletedFinalStateUnknown, Informer, RateLimitingQueue, StreamError,
                           split_key)

CONFIGMAP_NAME = "pod-images"
MANAGED_BY = "app.kubernetes.io/managed-by"
CONTROLLER_NAME = "pod-images-controller"

log = logging.getLogger(CONTROLLER_NAME)


def pod_images(pods):
    """The sorted, distinct images of `pods` (containers and initContainers)."""
    images = set()
    for pod in pods:
        spec = pod.get("spec") or {}
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if container.get("image"):
                images.add(container["image"])
    return sorted(images)


def desired_configmap(namespace, images):
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP_NAME, "namespace": namespace,
                     "labels": {MANAGED_BY: CONTROLLER_NAME}},
        "data": {"images": "\n".join(images)},
    }


class KubectlWriter:
    """Writes ConfigMaps with kubectl; raises RuntimeError with kubectl's message on failure."""

    def __init__(self, kubectl="kubectl", kubeconfig=None):
        self.command = [kubectl] + (["--kubeconfig", kubeconfig] if kubeconfig else [])

    def _run(self, args, stdin=None):
        result = subprocess.run(self.command + args, input=stdin, capture_output=True, text=True,
                                timeout=60)
        if result.returncode != 0:
            raise RuntimeError("kubectl %s: %s" % (" ".join(args), result.stderr.strip()))

    def apply(self, manifest):
        self._run(["apply", "-f", "-"], json.dumps(manifest))

    def delete(self, namespace, name):
        self._run(["delete", "configmap", name, "-n", namespace, "--ignore-not-found"])


class PodImagesController:
    """Reconciles namespaces from the pod and ConfigMap stores; `writer` does the writes."""

    def __init__(self, pods, configmaps, writer, queue=None, workers=2):
        self.pods, self.configmaps, self.writer = pods, configmaps, writer
        self.queue = queue if queue is not None else RateLimitingQueue()
        self.workers = workers
        for informer in (pods, configmaps):
            informer.add_event_handler(on_add=self._enqueue,
                                       on_update=lambda old, new: self._enqueue(new),
                                       on_delete=self._enqueue)

    def _enqueue(self, obj):
        if isinstance(obj, DeletedFinalStateUnknown):
            namespace = split_key(obj.key)[0]
        else:
            namespace = (obj.get("metadata") or {}).get("namespace", "")
        if namespace:
            self.queue.add(namespace)

    def reconcile(self, namespace):
        """Makes the namespace's ConfigMap match its pods; returns what it did."""
        images = pod_images(self.pods.list(namespace=namespace))
        current = self.configmaps.get(namespace, CONFIGMAP_NAME)
        if not images:
            if current is None:
                return "nothing"
            self.writer.delete(namespace, CONFIGMAP_NAME)
            log.info("deleted configmap %s/%s (no pods)", namespace, CONFIGMAP_NAME)
            return "deleted"
        desired = desired_configmap(namespace, images)
        if current is not None and (current.get("data") or {}) == desired["data"]:
            return "nothing"
        self.writer.apply(desired)
        log.info("applied configmap %s/%s: %s", namespace, CONFIGMAP_NAME, " ".join(images))
        return "applied"

    def process_next(self):
        """One namespace from the queue; False once the queue is shut down."""
        namespace, shutdown = self.queue.get()
        if shutdown:
            return False
        try:
            self.reconcile(namespace)
            self.queue.forget(namespace)
        except Exception as error:  # noqa: BLE001: any failure is retried, rate-limited
            log.warning("reconciling %s failed (retry %d): %s", namespace,
                        self.queue.num_requeues(namespace) + 1, error)
            self.queue.add_rate_limited(namespace)
        finally:
            self.queue.done(namespace)
        return True

    def run_workers(self):
        threads = [threading.Thread(target=self._work, name="worker-%d" % i, daemon=True)
                   for i in range(self.workers)]
        for thread in threads:
            thread.start()
        return threads

    def _work(self):
        while self.process_next():
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default=os.environ.get("INFORMERD_ADDRESS", "127.0.0.1:50051"))
    parser.add_argument("--namespace", default="", help="only this namespace (default: all)")
    parser.add_argument("--kubeconfig", help="for kubectl's writes (default: kubectl's own)")
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cacert", help="PEM CA of informerd's certificate: use TLS")
    parser.add_argument("--token-file", help="bearer token for informerd, re-read per call")
    parser.add_argument("--sync-timeout", type=float, default=60.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s: %(message)s")

    security = dict(ca_file=args.cacert, token_file=args.token_file)
    pods = Informer(args.address, "pods", namespace=args.namespace, **security)
    configmaps = Informer(args.address, "configmaps", namespace=args.namespace,
                          label_selector="%s=%s" % (MANAGED_BY, CONTROLLER_NAME), **security)
    controller = PodImagesController(pods, configmaps, KubectlWriter(args.kubectl, args.kubeconfig),
                                     workers=args.workers)
    stop = threading.Event()
    failures = []

    def run(informer):
        try:
            informer.run(stop)
        except StreamError as error:
            failures.append(error)
            log.error("informer %s: %s", informer.resource, error)
            stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    runners = [threading.Thread(target=run, args=(i,), daemon=True) for i in (pods, configmaps)]
    for runner in runners:
        runner.start()
    if not (pods.wait_for_sync(args.sync_timeout) and configmaps.wait_for_sync(args.sync_timeout)):
        log.error("the informers did not sync within %.0fs", args.sync_timeout)
        stop.set()
        return 1
    log.info("synced: %d pods, %d configmaps", len(pods.store), len(configmaps.store))
    workers = controller.run_workers()
    while not stop.wait(1):
        pass
    controller.queue.shut_down_with_drain()
    for thread in runners + workers:
        thread.join(10)
    log.info("stopped")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
