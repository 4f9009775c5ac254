#!/usr/bin/python3
"""clients/python/informerd: the Informer against an in-process fake Informer gRPC server, and
its parts (selectors, store and indexers, backoff) on their own.

The fake (ScriptedInformer, as test/e2e/python_example_test.py's) plays a script of Subscribe
streams: each call takes the next (messages, end) and sends the messages, then ends with the
status `end`, or normally (None), or stays open until the client cancels ("hold"), or (a
threading.Event) ends with UNAVAILABLE once the test sets it. Handler calls
are recorded as ("add", key, rv), ("update", key, old rv, new rv), ("delete", key, rv) and
("tombstone", key, last known rv) and compared exactly. The backoff's sleeps are recorded, not
slept, with the jitter's random source fixed.
"""
import asyncio
import json
import os
import sys
import threading
import time
import unittest
from concurrent import futures

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "clients", "python"))

from informerd import (DeletedFinalStateUnknown, ExponentialBackoff, Informer,  # noqa: E402
                       SelectorError, Store, StreamError, parse_label_selector)
from informerd.v1 import informerd_pb2 as pb2, informerd_pb2_grpc as pb2_grpc  # noqa: E402

E = pb2.Event
HOLD = "hold"


class ScriptedInformer(pb2_grpc.InformerServicer):
    def __init__(self, streams):
        self.streams = list(streams)
        self.requests = []
        self.metadata = []
        self.lock = threading.Lock()

    def Subscribe(self, request, context):
        with self.lock:
            self.requests.append(request)
            self.metadata.append([v for k, v in context.invocation_metadata()
                                  if k == "authorization"])
            if not self.streams:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the script has no more streams")
            messages, end = self.streams.pop(0)
        for message in messages:
            yield message
        if isinstance(end, threading.Event):  # ends with UNAVAILABLE once the test sets it
            end.wait(10)
            end = (grpc.StatusCode.UNAVAILABLE, "released")
        if end == HOLD:
            while context.is_active():
                time.sleep(0.02)
        elif end is not None:
            context.abort(*end)


def serve(servicer):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_InformerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, "127.0.0.1:%d" % port


def pod_object(name, rv, uid=None, labels=None, node="", namespace="default", image="nginx"):
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv,
                         "uid": uid or "uid-" + name,
                         "labels": {"app": "web"} if labels is None else labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": image}]}}


def ev(event_type, rv, name, obj_rv=None, **fields):
    """An event for pod `name`; the object's own resourceVersion is obj_rv (default rv)."""
    obj = pod_object(name, obj_rv or rv, **fields)
    return E(type=event_type, resource_version=rv, object=json.dumps(obj),
             namespace=obj["metadata"]["namespace"], name=name, uid=obj["metadata"]["uid"])


def mark(event_type, rv):
    return E(type=event_type, resource_version=rv)


def batch(*events):
    return E(batch=list(events))


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def rv_of(obj):
    return obj["metadata"]["resourceVersion"]


class Recorder:
    """Handler calls, as comparable tuples; the thread they ran on."""

    def __init__(self):
        self.calls = []
        self.threads = set()
        self.lock = threading.Lock()

    def _record(self, call):
        with self.lock:
            self.calls.append(call)
            self.threads.add(threading.current_thread().name)

    def on_add(self, obj):
        self._record(("add", "%s/%s" % (obj["metadata"]["namespace"], obj["metadata"]["name"]),
                      rv_of(obj)))

    def on_update(self, old, new):
        self._record(("update", "%s/%s" % (new["metadata"]["namespace"],
                                           new["metadata"]["name"]), rv_of(old), rv_of(new)))

    def on_delete(self, obj):
        if isinstance(obj, DeletedFinalStateUnknown):
            self._record(("tombstone", obj.key, rv_of(obj.obj)))
        else:
            self._record(("delete", "%s/%s" % (obj["metadata"]["namespace"],
                                               obj["metadata"]["name"]), rv_of(obj)))

    def snapshot(self):
        with self.lock:
            return list(self.calls)


class Running:
    """An Informer run() on a thread against a fake server playing `streams`."""

    def __init__(self, test, streams, random_fraction=0.0, **informer_args):
        self.fake = ScriptedInformer(streams)
        self.server, self.address = serve(self.fake)
        self.sleeps = []
        self.errors = []
        self.recorder = Recorder()
        backoff = ExponentialBackoff(random_fraction=lambda: random_fraction)
        self.informer = Informer(self.address, "pods", backoff=backoff,
                                 sleep=lambda seconds, stop: self.sleeps.append(seconds),
                                 error_handler=self.errors.append, **informer_args)
        self.informer.add_event_handler(self.recorder)
        self.stop = threading.Event()
        self.raised = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        test.addCleanup(self.close)

    def _run(self):
        try:
            self.informer.run(self.stop)
        except Exception as error:  # noqa: BLE001 (kept for the test to look at)
            self.raised.append(error)

    def wait_calls(self, count, timeout=10.0):
        wait_until(lambda: len(self.recorder.snapshot()) >= count, timeout)
        time.sleep(0.1)  # anything extra would show now
        return self.recorder.snapshot()

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.server.stop(None)

    def versions(self):
        return [r.resource_version for r in self.fake.requests]


class InformerTest(unittest.TestCase):
    def test_first_sync_then_live_events_call_the_handlers_in_order(self):
        streams = [([ev(E.ADDED, "5", "a"), ev(E.ADDED, "7", "b"), ev(E.ADDED, "6", "c"),
                     mark(E.SYNCED, "10"),
                     ev(E.MODIFIED, "11", "a"), ev(E.DELETED, "12", "b"), ev(E.ADDED, "13", "d"),
                     mark(E.BOOKMARK, "14")], HOLD)]
        run = Running(self, streams, namespace="default", label_selector="app=web",
                      field_selector="spec.nodeName=n1")
        self.assertTrue(run.informer.wait_for_sync(10))
        calls = run.wait_calls(6)
        self.assertEqual(calls, [("add", "default/a", "5"), ("add", "default/b", "7"),
                                 ("add", "default/c", "6"), ("update", "default/a", "5", "11"),
                                 ("delete", "default/b", "12"), ("add", "default/d", "13")])
        self.assertEqual(run.informer.store.keys(), ["default/a", "default/c", "default/d"])
        self.assertEqual(rv_of(run.informer.get("default", "a")), "11")
        self.assertIsNone(run.informer.get("default", "b"))
        self.assertEqual(run.informer.last_sync_resource_version(), "14")
        request = run.fake.requests[0]
        self.assertEqual((request.resource, request.namespace, request.label_selector,
                          request.field_selector, request.resource_version,
                          request.max_events_per_message),
                         ("pods", "default", "app=web", "spec.nodeName=n1", "", 64))
        self.assertEqual(len(run.recorder.threads), 1, "handlers ran on several threads")

    def test_nothing_is_visible_or_notified_before_synced(self):
        gate = threading.Event()

        class Gated(ScriptedInformer):
            def Subscribe(self, request, context):
                yield ev(E.ADDED, "5", "a")
                yield ev(E.ADDED, "6", "b")
                gate.wait(10)
                yield mark(E.SYNCED, "9")
                while context.is_active():
                    time.sleep(0.02)

        fake = Gated([])
        server, address = serve(fake)
        self.addCleanup(server.stop, None)
        informer = Informer(address, "pods")
        recorder = Recorder()
        informer.add_event_handler(recorder)
        stop = threading.Event()
        thread = threading.Thread(target=informer.run, args=(stop,), daemon=True)
        thread.start()
        self.addCleanup(lambda: (stop.set(), thread.join(10)))
        self.assertFalse(informer.wait_for_sync(0.3))
        self.assertFalse(informer.has_synced())
        self.assertEqual(len(informer.store), 0)
        self.assertEqual(recorder.snapshot(), [])
        gate.set()
        self.assertTrue(informer.wait_for_sync(10))
        self.assertTrue(wait_until(lambda: len(recorder.snapshot()) == 2))
        self.assertEqual(informer.store.keys(), ["default/a", "default/b"])

    def test_batched_messages_are_applied_event_by_event_in_order(self):
        streams = [([batch(ev(E.ADDED, "5", "a"), ev(E.ADDED, "3", "b")),
                     batch(ev(E.ADDED, "4", "c"), mark(E.SYNCED, "8"), ev(E.MODIFIED, "9", "a")),
                     ev(E.DELETED, "10", "c"),
                     batch(ev(E.ADDED, "11", "e"), ev(E.MODIFIED, "12", "e"),
                           ev(E.DELETED, "13", "a"))],
                    (grpc.StatusCode.UNAVAILABLE, "restarting")),
                   ([], HOLD)]
        run = Running(self, streams, max_events_per_message=16)
        calls = run.wait_calls(8)
        self.assertEqual(calls, [("add", "default/a", "5"), ("add", "default/b", "3"),
                                 ("add", "default/c", "4"), ("update", "default/a", "5", "9"),
                                 ("delete", "default/c", "10"), ("add", "default/e", "11"),
                                 ("update", "default/e", "11", "12"),
                                 ("delete", "default/a", "13")])
        self.assertTrue(wait_until(lambda: len(run.fake.requests) == 2))
        # Resumed from the last event of the last batch.
        self.assertEqual(run.versions(), ["", "13"])
        self.assertEqual([r.max_events_per_message for r in run.fake.requests], [16, 16])

    def test_resume_after_unavailable_and_exhausted_from_the_last_resumable_version(self):
        streams = [
            # Breaks before SYNCED: a snapshot's events carry objects' own versions, no resume
            # point, and nothing of the half snapshot reaches the handlers.
            ([ev(E.ADDED, "30", "a")], (grpc.StatusCode.UNAVAILABLE, "restarting")),
            ([ev(E.ADDED, "30", "a"), ev(E.ADDED, "20", "b"), mark(E.SYNCED, "31")],
             (grpc.StatusCode.UNAVAILABLE, "informerd is shutting down")),
            ([ev(E.MODIFIED, "32", "a")],
             (grpc.StatusCode.RESOURCE_EXHAUSTED, "subscriber fell too far behind")),
            ([], (grpc.StatusCode.UNAVAILABLE, "connection refused")),
            ([ev(E.DELETED, "33", "b")], None),  # a normal end resumes too
            ([ev(E.ADDED, "34", "c")], HOLD),
        ]
        run = Running(self, streams)
        calls = run.wait_calls(5)
        self.assertEqual(calls, [("add", "default/a", "30"), ("add", "default/b", "20"),
                                 ("update", "default/a", "30", "32"),
                                 ("delete", "default/b", "33"), ("add", "default/c", "34")])
        self.assertEqual(run.versions(), ["", "", "31", "32", "32", "33"])
        # client-go's backoff (random fixed at 0: no jitter), doubling while failures come
        # within 2 minutes of each other.
        self.assertEqual(run.sleeps, [0.8, 1.6, 3.2, 6.4, 12.8])
        self.assertEqual([(e.code, e.action) for e in run.errors],
                         [(grpc.StatusCode.UNAVAILABLE, "retry"),
                          (grpc.StatusCode.UNAVAILABLE, "retry"),
                          (grpc.StatusCode.RESOURCE_EXHAUSTED, "retry"),
                          (grpc.StatusCode.UNAVAILABLE, "retry")])
        self.assertEqual(run.informer.store.keys(), ["default/a", "default/c"])

    def test_out_of_range_resnapshots_and_notifies_exactly_the_differences(self):
        streams = [
            ([ev(E.ADDED, "5", "same"), ev(E.ADDED, "6", "changed"), ev(E.ADDED, "7", "gone"),
              ev(E.ADDED, "8", "recreated", uid="uid-old"), mark(E.SYNCED, "10"),
              ev(E.MODIFIED, "11", "gone")],
             (grpc.StatusCode.UNAVAILABLE, "informerd restarting")),
            ([], (grpc.StatusCode.OUT_OF_RANGE, "resource version 11 is older than the window")),
            # Meanwhile: "changed" changed, "gone" was deleted, "recreated" deleted and created
            # again (new UID), "new" created; "same" untouched.
            ([batch(ev(E.ADDED, "5", "same"), ev(E.ADDED, "40", "changed"),
                    ev(E.ADDED, "41", "recreated", uid="uid-new"), ev(E.ADDED, "42", "new"),
                    mark(E.SYNCED, "50")),
              ev(E.MODIFIED, "51", "new")], HOLD),
        ]
        run = Running(self, streams)
        calls = run.wait_calls(11)
        self.assertEqual(calls[:5], [("add", "default/same", "5"), ("add", "default/changed", "6"),
                                     ("add", "default/gone", "7"),
                                     ("add", "default/recreated", "8"),
                                     ("update", "default/gone", "7", "11")])
        self.assertEqual(calls[5:], [("update", "default/changed", "6", "40"),
                                     ("tombstone", "default/recreated", "8"),
                                     ("add", "default/recreated", "41"),
                                     ("add", "default/new", "42"),
                                     ("tombstone", "default/gone", "11"),
                                     ("update", "default/new", "42", "51")])
        self.assertEqual(run.versions(), ["", "11", ""])
        self.assertEqual(run.sleeps, [0.8], "a re-snapshot after OUT_OF_RANGE needs no backoff")
        self.assertEqual(run.informer.store.keys(),
                         ["default/changed", "default/new", "default/recreated", "default/same"])
        self.assertEqual(run.informer.get("default", "recreated")["metadata"]["uid"], "uid-new")
        self.assertEqual(run.errors[-1].action, "resnapshot")

    def test_a_resnapshot_broken_before_synced_starts_over_and_changes_nothing_meanwhile(self):
        streams = [
            ([ev(E.ADDED, "5", "a"), ev(E.ADDED, "6", "b"), mark(E.SYNCED, "10")],
             (grpc.StatusCode.OUT_OF_RANGE, "too old")),
            ([ev(E.ADDED, "5", "a")], (grpc.StatusCode.UNAVAILABLE, "cut")),
            ([ev(E.ADDED, "5", "a"), mark(E.SYNCED, "20")], HOLD),
        ]
        run = Running(self, streams)
        calls = run.wait_calls(3)
        self.assertEqual(calls, [("add", "default/a", "5"), ("add", "default/b", "6"),
                                 ("tombstone", "default/b", "6")])
        self.assertEqual(run.versions(), ["", "", ""])

    def test_request_errors_end_run_and_reach_the_error_handler_without_retries(self):
        for code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                     grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            with self.subTest(code=code):
                run = Running(self, [([], (code, "the message"))])
                run.thread.join(10)
                self.assertFalse(run.thread.is_alive(), "run() did not return")
                self.assertEqual(len(run.raised), 1)
                error = run.raised[0]
                self.assertIsInstance(error, StreamError)
                self.assertEqual((error.code, error.details, error.action),
                                 (code, "the message", "fatal"))
                self.assertEqual(run.errors, [error])
                self.assertEqual(len(run.fake.requests), 1)
                self.assertEqual(run.sleeps, [])

    def test_a_permission_revoked_mid_stream_is_raised_after_delivering_what_came(self):
        streams = [([ev(E.ADDED, "5", "a"), mark(E.SYNCED, "6"), ev(E.MODIFIED, "7", "a")],
                    (grpc.StatusCode.PERMISSION_DENIED, 'user "alice" cannot list pods'))]
        run = Running(self, streams)
        run.thread.join(10)
        self.assertEqual(run.recorder.snapshot(), [("add", "default/a", "5"),
                                                   ("update", "default/a", "5", "7")])
        self.assertEqual(run.raised[0].code, grpc.StatusCode.PERMISSION_DENIED)

    def test_stop_ends_run_promptly_while_the_stream_is_idle(self):
        run = Running(self, [([ev(E.ADDED, "5", "a"), mark(E.SYNCED, "6")], HOLD)])
        self.assertTrue(run.informer.wait_for_sync(10))
        start = time.monotonic()
        run.stop.set()
        run.thread.join(5)
        self.assertFalse(run.thread.is_alive())
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertEqual(run.raised, [])

    def test_resync_redelivers_every_object_as_an_update_to_itself(self):
        streams = [([ev(E.ADDED, "5", "a"), ev(E.ADDED, "6", "b"), mark(E.SYNCED, "7")], HOLD)]
        run = Running(self, streams, resync_period=0.3)
        objects_seen = []
        run.informer.add_event_handler(on_update=lambda old, new: objects_seen.append(old is new))
        self.assertTrue(wait_until(lambda: len(run.recorder.snapshot()) >= 6, 5))
        calls = run.recorder.snapshot()[:6]
        self.assertEqual(calls, [("add", "default/a", "5"), ("add", "default/b", "6"),
                                 ("update", "default/a", "5", "5"),
                                 ("update", "default/b", "6", "6"),
                                 ("update", "default/a", "5", "5"),
                                 ("update", "default/b", "6", "6")])
        self.assertTrue(objects_seen and all(objects_seen), "on_update(obj, obj): the same object")

    def test_no_resync_without_a_period(self):
        run = Running(self, [([ev(E.ADDED, "5", "a"), mark(E.SYNCED, "7")], HOLD)])
        time.sleep(0.5)
        self.assertEqual(run.recorder.snapshot(), [("add", "default/a", "5")])

    def test_a_handler_added_after_sync_first_gets_the_current_objects(self):
        run = Running(self, [([ev(E.ADDED, "5", "a"), ev(E.ADDED, "6", "b"),
                               mark(E.SYNCED, "7")], HOLD)])
        self.assertTrue(run.informer.wait_for_sync(10))
        run.wait_calls(2)
        late = Recorder()
        run.informer.add_event_handler(late.on_add, late.on_update, late.on_delete)
        self.assertTrue(wait_until(lambda: len(late.snapshot()) == 2))
        self.assertEqual(late.snapshot(), [("add", "default/a", "5"), ("add", "default/b", "6")])
        self.assertEqual(len(run.recorder.snapshot()), 2, "the first handler got them again")

    def test_indexers_follow_the_objects(self):
        streams = [([ev(E.ADDED, "5", "a", node="n1"), ev(E.ADDED, "6", "b", node="n2"),
                     mark(E.SYNCED, "7"), ev(E.ADDED, "8", "c", node="n1")],
                    (grpc.StatusCode.UNAVAILABLE, "x")),
                   ([ev(E.MODIFIED, "9", "a", node="n2"), ev(E.DELETED, "10", "b", node="n2")],
                    HOLD)]
        run = Running(self, streams)
        run.informer.add_indexers({"by_node": lambda pod: [pod["spec"]["nodeName"]]})
        self.assertEqual(len(run.wait_calls(5)), 5)
        names = lambda objects: [o["metadata"]["name"] for o in objects]  # noqa: E731
        self.assertEqual(names(run.informer.by_index("by_node", "n1")), ["c"])
        self.assertEqual(names(run.informer.by_index("by_node", "n2")), ["a"])
        self.assertEqual(run.informer.by_index("by_node", "n3"), [])

    def test_the_token_is_sent_on_every_subscription_and_a_token_file_is_reread(self):
        token_file = os.path.join(self.tmp(), "token")
        with open(token_file, "w") as f:
            f.write("first\n")
        streams = [([ev(E.ADDED, "5", "a"), mark(E.SYNCED, "6")],
                    (grpc.StatusCode.UNAVAILABLE, "x")),
                   ([], HOLD)]
        run = Running(self, streams, token_file=token_file)
        self.assertTrue(run.informer.wait_for_sync(10))
        with open(token_file + ".new", "w") as f:  # replaced atomically, as the kubelet does
            f.write("second\n")
        os.replace(token_file + ".new", token_file)
        self.assertTrue(wait_until(lambda: len(run.fake.requests) == 2))
        # The rotation may land before or after the first resubscription: the token read last
        # is the file's newest.
        self.assertEqual(run.fake.metadata[0], ["Bearer first"])
        self.assertIn(run.fake.metadata[1], (["Bearer first"], ["Bearer second"]))

    def test_an_unreadable_token_file_is_retried_not_fatal(self):
        token_file = os.path.join(self.tmp(), "token")
        with open(token_file, "w") as f:
            f.write("t1\n")
        release = threading.Event()
        run = Running(self, [([ev(E.ADDED, "5", "a"), mark(E.SYNCED, "6")], release),
                             ([ev(E.ADDED, "7", "b")], HOLD)], token_file=token_file)
        self.assertTrue(run.informer.wait_for_sync(10))
        os.remove(token_file)  # between two subscriptions, as during a rotation
        release.set()
        self.assertTrue(wait_until(lambda: len(run.sleeps) >= 3))
        with open(token_file, "w") as f:
            f.write("t2\n")
        self.assertTrue(wait_until(lambda: len(run.fake.requests) == 2), run.errors)
        self.assertEqual(run.fake.metadata, [["Bearer t1"], ["Bearer t2"]])
        self.assertIn("reading the token", run.errors[1].details)
        self.assertEqual(run.errors[1].action, "retry")
        self.assertEqual(run.raised, [])

    def test_a_token_is_never_sent_in_plaintext_to_another_machine(self):
        with self.assertRaisesRegex(ValueError, "refusing to send a bearer token in plaintext "
                                                "to 192.0.2.1:50051"):
            Informer("192.0.2.1:50051", "pods", token="t")
        Informer("127.0.0.1:1", "pods", token="t")
        Informer("unix:///run/informerd.sock", "pods", token="t")
        Informer("192.0.2.1:50051", "pods", token="t", tls=True)

    def tmp(self):
        import tempfile
        d = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        return d


class AsyncInformerTest(unittest.TestCase):
    def test_run_async_follows_resumes_and_resnapshots(self):
        streams = [
            ([batch(ev(E.ADDED, "5", "a"), ev(E.ADDED, "6", "b"), mark(E.SYNCED, "10")),
              ev(E.MODIFIED, "11", "a")], (grpc.StatusCode.UNAVAILABLE, "restarting")),
            ([], (grpc.StatusCode.OUT_OF_RANGE, "too old")),
            ([ev(E.ADDED, "11", "a"), ev(E.ADDED, "12", "c"), mark(E.SYNCED, "13")], HOLD),
        ]
        fake = ScriptedInformer(streams)
        server, address = serve(fake)
        self.addCleanup(server.stop, None)
        sleeps = []
        recorder = Recorder()
        coroutine_calls = []

        async def on_add_async(obj):
            await asyncio.sleep(0)
            coroutine_calls.append(obj["metadata"]["name"])

        async def main():
            informer = Informer(address, "pods",
                                backoff=ExponentialBackoff(random_fraction=lambda: 0.0),
                                sleep=lambda seconds, stop: sleeps.append(seconds))
            informer.add_event_handler(recorder)
            informer.add_event_handler(on_add=on_add_async)
            stop = asyncio.Event()
            task = asyncio.ensure_future(informer.run_async(stop))
            for _ in range(500):
                if len(recorder.snapshot()) >= 6:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            stop.set()
            await asyncio.wait_for(task, 5)
            return informer

        informer = asyncio.run(main())
        self.assertEqual(recorder.snapshot(), [("add", "default/a", "5"), ("add", "default/b", "6"),
                                               ("update", "default/a", "5", "11"),
                                               ("add", "default/c", "12"),
                                               ("tombstone", "default/b", "6")])
        self.assertEqual(coroutine_calls, ["a", "b", "c"])
        self.assertEqual([r.resource_version for r in fake.requests], ["", "11", ""])
        self.assertEqual(sleeps, [0.8])
        self.assertEqual(informer.store.keys(), ["default/a", "default/c"])
        self.assertEqual(len(recorder.threads), 1)

    def test_run_async_raises_request_errors(self):
        fake = ScriptedInformer([([], (grpc.StatusCode.NOT_FOUND,
                                       'resource "foos" is not served'))])
        server, address = serve(fake)
        self.addCleanup(server.stop, None)

        async def main():
            await Informer(address, "foos").run_async()

        with self.assertRaises(StreamError) as raised:
            asyncio.run(main())
        self.assertEqual(raised.exception.code, grpc.StatusCode.NOT_FOUND)


class BackoffTest(unittest.TestCase):
    def test_clientgo_values_doubling_from_800ms_to_30s_with_jitter_and_reset(self):
        clock = [0.0]
        rand = [0.0]
        backoff = ExponentialBackoff(clock=lambda: clock[0], random_fraction=lambda: rand[0])

        def step(after=1.0):
            clock[0] += after
            return round(backoff.next_delay(), 6)

        self.assertEqual([step() for _ in range(8)],
                         [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])
        rand[0] = 0.5  # jitter adds up to 100% of the step: here half
        self.assertEqual(step(), 45.0)
        clock[0] += 120.0  # exactly 2 minutes: not yet healthy long enough
        self.assertEqual(step(0), 45.0)
        self.assertEqual(step(120.001), 1.2, "reset after more than 2 minutes without a failure")
        rand[0] = 0.999
        self.assertEqual(step(), round(1.6 * 1.999, 6))


class SelectorTest(unittest.TestCase):
    def matches(self, selector, labels):
        return parse_label_selector(selector).matches(labels)

    def test_equality_based(self):
        self.assertTrue(self.matches("app=web", {"app": "web"}))
        self.assertTrue(self.matches("app==web", {"app": "web", "x": "y"}))
        self.assertFalse(self.matches("app=web", {"app": "db"}))
        self.assertFalse(self.matches("app=web", {}))
        self.assertTrue(self.matches("app!=web", {"app": "db"}))
        self.assertTrue(self.matches("app!=web", {}), "!= matches an absent label")
        self.assertFalse(self.matches("app!=web", {"app": "web"}))
        self.assertTrue(self.matches("app=", {"app": ""}))
        self.assertFalse(self.matches("app=", {}))

    def test_set_based(self):
        self.assertTrue(self.matches("env in (prod, qa)", {"env": "qa"}))
        self.assertFalse(self.matches("env in (prod,qa)", {"env": "dev"}))
        self.assertFalse(self.matches("env in (prod,qa)", {}))
        self.assertTrue(self.matches("env notin (prod,qa)", {"env": "dev"}))
        self.assertTrue(self.matches("env notin (prod,qa)", {}), "notin matches an absent label")
        self.assertFalse(self.matches("env notin (prod)", {"env": "prod"}))
        self.assertTrue(self.matches("canary", {"canary": ""}))
        self.assertFalse(self.matches("canary", {}))
        self.assertTrue(self.matches("!canary", {}))
        self.assertFalse(self.matches("!canary", {"canary": "true"}))
        self.assertTrue(self.matches("replicas>2", {"replicas": "3"}))
        self.assertFalse(self.matches("replicas>2", {"replicas": "2"}))
        self.assertFalse(self.matches("replicas>2", {"replicas": "many"}))
        self.assertTrue(self.matches("replicas<2", {"replicas": "-1"}))
        self.assertTrue(self.matches("", {"anything": "x"}))

    def test_several_requirements_must_all_match_and_whitespace_is_free(self):
        selector = " app = web ,  tier notin(db) , !canary,example.com/team in (a,b)"
        self.assertTrue(self.matches(selector, {"app": "web", "example.com/team": "a"}))
        self.assertFalse(self.matches(selector, {"app": "web", "example.com/team": "a",
                                                 "canary": "1"}))
        self.assertFalse(self.matches(selector, {"app": "web", "example.com/team": "c"}))
        self.assertEqual(str(parse_label_selector("a in (y,x),!b,c!=d")), "a in (x,y),!b,c!=d")

    def test_empty_value_sets_read_as_the_apiserver_reads_them(self):
        self.assertEqual(parse_label_selector("a in ()").requirements[0].values, {""})
        self.assertEqual(parse_label_selector("a in (,x)").requirements[0].values, {"", "x"})
        self.assertEqual(parse_label_selector("a in (x,)").requirements[0].values, {"", "x"})

    def test_bad_selectors_name_the_offending_part(self):
        cases = {
            "app=web,": "found end of string, expected: identifier after ','",
            "a in (b": "found end of string, expected: ',' or ')'",
            "a in b": "found 'b', expected: '('",
            "a b": "found 'b' after key 'a', expected one of",
            "in=5": "found 'in', expected: !, identifier",
            "a=b=c": "found '=', expected: ',' or end of string",
            "!a=b": "after '!a'",
            "a>x": "the value must be an integer, not 'x'",
            "a>": "the value must be an integer, not ''",
            "-bad=x": "invalid label key '-bad'",
            "a=-x": "invalid label value '-x' at key 'a'",
            "a/b/c=x": "invalid label key 'a/b/c'",
            "Example.com/a=x": "invalid label key 'Example.com/a': prefix part",
            "a=" + "v" * 64: "must be no more than 63 characters",
            "k" * 64 + "=v": "name part must be no more than 63 characters",
            ",a": "found ',', expected",
            "a in (x y)": "found 'y', expected: ',' or ')'",
            "a=(b)": "found '(', expected: a value",
        }
        for text, expected in cases.items():
            with self.subTest(selector=text):
                with self.assertRaises(SelectorError) as raised:
                    parse_label_selector(text)
                self.assertIn(expected, str(raised.exception))
                self.assertIn(repr(text), str(raised.exception))
        self.assertIsInstance(SelectorError("x"), ValueError)


class StoreTest(unittest.TestCase):
    def test_listers_and_indexes(self):
        store = Store({"by_node": lambda pod: pod["spec"]["nodeName"] or None})
        store.put("a/p1", pod_object("p1", "1", namespace="a", node="n1",
                                     labels={"app": "web", "tier": "fe"}))
        store.put("a/p2", pod_object("p2", "2", namespace="a", node="n2", labels={"app": "db"}))
        store.put("b/p3", pod_object("p3", "3", namespace="b", node="n1", labels={"app": "web"}))
        store.put("b/p4", pod_object("p4", "4", namespace="b", node="", labels={}))
        names = lambda objects: [o["metadata"]["name"] for o in objects]  # noqa: E731
        self.assertEqual(names(store.list()), ["p1", "p2", "p3", "p4"])
        self.assertEqual(names(store.list("a")), ["p1", "p2"])
        self.assertEqual(names(store.list(label_selector="app=web")), ["p1", "p3"])
        self.assertEqual(names(store.list("b", "app in (web,db)")), ["p3"])
        self.assertEqual(names(store.list(label_selector="!app")), ["p4"])
        self.assertEqual(names(store.list("c")), [])
        self.assertEqual(store.get("a", "p2")["metadata"]["name"], "p2")
        self.assertIsNone(store.get("b", "p2"))
        self.assertEqual(names(store.by_index("by_node", "n1")), ["p1", "p3"])
        self.assertEqual(store.list_index_values("by_node"), ["n1", "n2"])
        # Moving an object moves it in every index; deleting removes it.
        store.put("a/p1", pod_object("p1", "5", namespace="a", node="n2"))
        self.assertEqual(names(store.by_index("by_node", "n1")), ["p3"])
        self.assertEqual(names(store.by_index("by_node", "n2")), ["p1", "p2"])
        store.delete("b/p3")
        self.assertEqual(store.by_index("by_node", "n1"), [])
        self.assertEqual(store.list_index_values("by_node"), ["n2"])
        # An indexer added later indexes what is there.
        store.add_indexers({"by_app": lambda pod: list(pod["metadata"]["labels"].values())})
        self.assertEqual(names(store.by_index("by_app", "web")), ["p1"])
        with self.assertRaises(KeyError):
            store.by_index("nope", "x")
        with self.assertRaises(ValueError):
            store.add_indexers({"by_app": lambda pod: []})
        with self.assertRaises(SelectorError):
            store.list(label_selector="a in (")
        store.replace({"c/p9": pod_object("p9", "9", namespace="c", node="n9")})
        self.assertEqual(store.keys(), ["c/p9"])
        self.assertEqual(names(store.by_index("by_node", "n9")), ["p9"])
        self.assertEqual(store.by_index("by_node", "n2"), [])
        self.assertEqual(names(store.list("c")), ["p9"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
