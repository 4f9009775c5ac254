#!/usr/bin/python3
"""examples/python/pod_images_controller.py without a cluster: its reconcile decisions and its
workqueue loop, over in-memory stores and a recording writer. cluster_test.py runs the program
against a real apiserver and informerd.
"""
import os
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))

import pod_images_controller as controller_module  # noqa: E402
from informerd import (DeletedFinalStateUnknown, ItemExponentialFailureRateLimiter,  # noqa: E402
                       RateLimitingQueue, Store, object_key)


class FakeInformer:
    """What the controller uses of an Informer: handlers and a store."""

    def __init__(self):
        self.store = Store()
        self.handlers = []

    def add_event_handler(self, on_add=None, on_update=None, on_delete=None):
        self.handlers.append((on_add, on_update, on_delete))

    def list(self, namespace=None, label_selector=None):
        return self.store.list(namespace, label_selector)

    def get(self, namespace, name):
        return self.store.get(namespace, name)

    def put(self, obj):
        old = self.store.put(object_key(obj), obj)
        for on_add, on_update, _ in self.handlers:
            on_add(obj) if old is None else on_update(old, obj)

    def delete(self, key, tombstone=False):
        old = self.store.delete(key)
        for _, _, on_delete in self.handlers:
            on_delete(DeletedFinalStateUnknown(key, old) if tombstone else old)


class RecordingWriter:
    def __init__(self, configmaps, fail_times=0):
        self.configmaps, self.calls, self.fail_times = configmaps, [], fail_times

    def apply(self, manifest):
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("apiserver unavailable")
        self.calls.append(("apply", manifest["metadata"]["namespace"],
                           manifest["data"]["images"]))
        self.configmaps.put(manifest)  # as the informer would see it come back

    def delete(self, namespace, name):
        self.calls.append(("delete", namespace, name))
        self.configmaps.delete("%s/%s" % (namespace, name))


def pod(namespace, name, *images, init=()):
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"containers": [{"name": "c%d" % i, "image": image}
                                    for i, image in enumerate(images)],
                     "initContainers": [{"name": "i", "image": image} for image in init]}}


class PodImagesControllerTest(unittest.TestCase):
    def setUp(self):
        self.pods, self.configmaps = FakeInformer(), FakeInformer()
        self.writer = RecordingWriter(self.configmaps)
        self.queue = RateLimitingQueue(ItemExponentialFailureRateLimiter(base=0.01))
        self.controller = controller_module.PodImagesController(
            self.pods, self.configmaps, self.writer, self.queue)
        self.addCleanup(self.queue.shut_down)

    def drain(self):
        while len(self.queue):
            self.assertTrue(self.controller.process_next())

    def test_images_are_distinct_sorted_and_include_init_containers(self):
        self.assertEqual(controller_module.pod_images(
            [pod("a", "p1", "nginx:1", "redis", init=["busybox"]), pod("a", "p2", "nginx:1")]),
            ["busybox", "nginx:1", "redis"])

    def test_handlers_queue_the_namespace_once_and_reconcile_writes_only_differences(self):
        self.pods.put(pod("a", "p1", "nginx"))
        self.pods.put(pod("a", "p2", "redis"))
        self.pods.put(pod("b", "p3", "nginx"))
        self.assertEqual(len(self.queue), 2, "namespaces a and b, each once")
        self.drain()
        self.assertEqual(sorted(self.writer.calls),
                         [("apply", "a", "nginx\nredis"), ("apply", "b", "nginx")])
        self.drain()  # the ConfigMaps' own events queued a and b again: nothing to do
        self.assertEqual(len(self.writer.calls), 2)
        cm = self.configmaps.get("a", "pod-images")
        self.assertEqual(cm["metadata"]["labels"],
                         {"app.kubernetes.io/managed-by": "pod-images-controller"})

        self.pods.put(pod("a", "p2", "redis:7"))
        self.drain()
        self.assertEqual(self.writer.calls[-1], ("apply", "a", "nginx\nredis:7"))
        # A pod deleted while we were away arrives as a tombstone: still the right namespace.
        self.pods.delete("b/p3", tombstone=True)
        self.drain()
        self.assertEqual(self.writer.calls[-1], ("delete", "b", "pod-images"))
        self.assertIsNone(self.configmaps.get("b", "pod-images"))
        calls = len(self.writer.calls)
        self.drain()
        self.assertEqual(len(self.writer.calls), calls)

    def test_a_configmap_changed_by_someone_else_is_put_back(self):
        self.pods.put(pod("a", "p1", "nginx"))
        self.drain()
        edited = controller_module.desired_configmap("a", ["evil"])
        self.configmaps.put(edited)
        self.drain()
        self.assertEqual(self.writer.calls[-1], ("apply", "a", "nginx"))
        self.configmaps.delete("a/pod-images")
        self.drain()
        self.assertEqual(self.writer.calls[-1], ("apply", "a", "nginx"))

    def test_a_failed_write_is_retried_rate_limited_then_forgotten(self):
        self.writer.fail_times = 2
        self.pods.put(pod("a", "p1", "nginx"))
        self.assertTrue(self.controller.process_next())
        self.assertEqual(self.queue.num_requeues("a"), 1)
        self.assertEqual(len(self.queue), 0, "retried only after its backoff")
        self.assertTrue(self.controller.process_next())  # waits out the 10 ms; fails again
        self.assertEqual(self.queue.num_requeues("a"), 2)
        self.assertTrue(self.controller.process_next())  # after 20 ms: succeeds
        self.assertEqual(self.writer.calls, [("apply", "a", "nginx")])
        self.assertEqual(self.queue.num_requeues("a"), 0, "forgotten after success")

    def test_workers_stop_when_the_queue_is_shut_down(self):
        threads = self.controller.run_workers()
        self.pods.put(pod("a", "p1", "nginx"))
        deadline = time.monotonic() + 5
        while not self.writer.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        self.queue.shut_down_with_drain()
        for thread in threads:
            thread.join(5)
            self.assertFalse(thread.is_alive())
        self.assertEqual(self.writer.calls, [("apply", "a", "nginx")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
