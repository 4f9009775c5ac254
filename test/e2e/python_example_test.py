#!/usr/bin/python3
"""The Python example client (examples/python/informer_client.py) against a fake Informer server.

Stubs are generated at test time from proto/informerd/v1/informerd.proto with /usr/bin/protoc and
grpc_python_plugin, as examples/python/README.md tells users to. The fake is a grpcio server built
on the same stubs that plays a script of streams: each Subscribe call takes the next one, sends
its events and ends with its status. The client is driven in-process through follow() for exact,
sleep-free checks (its backoff's sleep is recorded, not slept), and once as the program a user
runs. The daemon's real Informer service is tested elsewhere; this pins down the example.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import traceback
from concurrent import futures

import grpc

PROTO_ROOT = "proto"
PROTO = "informerd/v1/informerd.proto"
EXAMPLE_DIR = "examples/python"


def generate_stubs(out_dir):
    subprocess.run(
        ["/usr/bin/protoc", "-I" + PROTO_ROOT, "--python_out=" + out_dir, "--grpc_out=" + out_dir,
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", os.path.join(PROTO_ROOT, PROTO)],
        check=True)
    sys.path.insert(0, out_dir)


class ScriptedInformer:
    """Subscribe plays `streams` in order: (events, (code, details) or None for a normal end)."""

    def __init__(self, pb2, streams):
        self.pb2 = pb2
        self.streams = list(streams)
        self.requests = []
        self.lock = threading.Lock()

    def ListResources(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the example only subscribes")

    List = Get = ListResources

    def Subscribe(self, request, context):
        with self.lock:
            self.requests.append(request)
            if not self.streams:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the script has no more streams")
            events, end = self.streams.pop(0)
        for event in events:
            yield event
        if end is not None:
            context.abort(*end)


def serve(pb2_grpc, servicer):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_InformerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, "127.0.0.1:%d" % port


def pod(pb2, event_type, rv, name, version=1):
    obj = {"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": name, "namespace": "default", "resourceVersion": rv,
                        "labels": {"app": "web", "version": str(version)}}}
    return pb2.Event(type=event_type, resource_version=rv, object=json.dumps(obj),
                     namespace="default", name=name, uid="uid-" + name)


def marker(pb2, event_type, rv):
    return pb2.Event(type=event_type, resource_version=rv)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def test_resume_after_unavailable_and_exhausted_then_fresh_snapshot_after_out_of_range(
        pb2, pb2_grpc, client):
    E = pb2.Event
    streams = [
        # A fresh subscription: snapshot (objects' own RVs, unordered), SYNCED, live changes.
        ([pod(pb2, E.ADDED, "5", "web-1"), pod(pb2, E.ADDED, "7", "web-2"),
          pod(pb2, E.ADDED, "6", "web-3"), marker(pb2, E.SYNCED, "10"),
          pod(pb2, E.MODIFIED, "11", "web-1", version=2), pod(pb2, E.DELETED, "12", "web-2")],
         (grpc.StatusCode.UNAVAILABLE, "informerd is shutting down")),
        ([pod(pb2, E.MODIFIED, "13", "web-3", version=2)],
         (grpc.StatusCode.RESOURCE_EXHAUSTED, "subscriber fell too far behind")),
        ([], (grpc.StatusCode.UNAVAILABLE, "connection reset")),
        ([], (grpc.StatusCode.OUT_OF_RANGE, "resource version 13 is older than the window")),
        # From scratch again: web-3 was deleted while we were away, web-4 created.
        ([pod(pb2, E.ADDED, "11", "web-1", version=2), pod(pb2, E.ADDED, "14", "web-4"),
          marker(pb2, E.SYNCED, "15")], None),
    ]
    fake = ScriptedInformer(pb2, streams)
    server, address = serve(pb2_grpc, fake)
    sleeps, lines = [], []
    try:
        with grpc.insecure_channel(address) as channel:
            cache = client.follow(
                pb2_grpc.InformerStub(channel), "pods", namespace="default",
                label_selector="app=web", until=lambda c: c.syncs == 2,
                backoff=client.Backoff(random_fraction=lambda: 1.0), sleep=sleeps.append,
                log=lines.append)
    finally:
        server.stop(None)

    resumed_from = [r.resource_version for r in fake.requests]
    check(resumed_from == ["", "12", "13", "13", ""],
          "subscribe resource versions: %r (lines: %r)" % (resumed_from, lines))
    for request in fake.requests:
        check((request.resource, request.namespace, request.label_selector, request.field_selector)
              == ("pods", "default", "app=web", ""), "request: %r" % request)
    check(sleeps == [0.5, 0.5, 1.0], "backoff sleeps: %r" % sleeps)
    check(sorted(cache.objects) == ["default/web-1", "default/web-4"],
          "final keys: %r" % sorted(cache.objects))
    check(cache.objects["default/web-1"]["metadata"]["labels"]["version"] == "2",
          "web-1: %r" % cache.objects["default/web-1"])
    check(cache.resume_from == "15", "resume_from: %r" % cache.resume_from)
    check(lines[3] == "SYNCED 3 objects at resource version 10", "lines: %r" % lines)
    check("SYNCED 2 objects at resource version 15 (1 gone while away)" in lines, "lines: %r" % lines)


def test_state_before_the_first_sync_is_complete_after_it(pb2, pb2_grpc, client):
    """While the first snapshot arrives the dict stays as it was; a break mid-snapshot restarts it
    from scratch (a snapshot event's RV is the object's own, not a position in the stream)."""
    E = pb2.Event
    streams = [
        ([pod(pb2, E.ADDED, "30", "web-1")], (grpc.StatusCode.UNAVAILABLE, "restarting")),
        ([pod(pb2, E.ADDED, "30", "web-1"), pod(pb2, E.ADDED, "20", "web-2"),
          marker(pb2, E.SYNCED, "31")], None),
    ]
    fake = ScriptedInformer(pb2, streams)
    server, address = serve(pb2_grpc, fake)
    seen_before_sync = []
    try:
        with grpc.insecure_channel(address) as channel:
            def until(c):
                if not c.syncs:
                    seen_before_sync.append(len(c.objects))
                return c.syncs == 1
            cache = client.follow(pb2_grpc.InformerStub(channel), "pods", until=until,
                                  sleep=lambda s: None, log=lambda line: None)
    finally:
        server.stop(None)
    check([r.resource_version for r in fake.requests] == ["", ""],
          "requests: %r" % [r.resource_version for r in fake.requests])
    check(seen_before_sync == [0, 0, 0], "objects visible before SYNCED: %r" % seen_before_sync)
    check(sorted(cache.objects) == ["default/web-1", "default/web-2"], "final: %r" % cache.objects)


def test_errors_in_the_request_are_raised_not_retried(pb2, pb2_grpc, client):
    fake = ScriptedInformer(pb2, [([], (grpc.StatusCode.NOT_FOUND, "resource \"foos\" is not served"))])
    server, address = serve(pb2_grpc, fake)
    try:
        with grpc.insecure_channel(address) as channel:
            try:
                client.follow(pb2_grpc.InformerStub(channel), "foos", sleep=lambda s: None,
                              log=lambda line: None)
                raise AssertionError("NOT_FOUND must be raised")
            except grpc.RpcError as error:
                check(error.code() == grpc.StatusCode.NOT_FOUND, "code: %r" % error.code())
    finally:
        server.stop(None)
    check(len(fake.requests) == 1, "retried a NOT_FOUND: %d requests" % len(fake.requests))


def test_the_program(pb2, pb2_grpc, client, stubs_dir):
    """The example as a user runs it: flags into the request, one line per event, the final dict."""
    E = pb2.Event
    streams = [([pod(pb2, E.ADDED, "5", "web-1"), pod(pb2, E.ADDED, "7", "web-2"),
                 pod(pb2, E.ADDED, "6", "web-3"), marker(pb2, E.SYNCED, "10"),
                 pod(pb2, E.MODIFIED, "11", "web-1"), pod(pb2, E.DELETED, "12", "web-2")],
                (grpc.StatusCode.UNAVAILABLE, "informerd is shutting down"))]
    fake = ScriptedInformer(pb2, streams)
    server, address = serve(pb2_grpc, fake)
    try:
        env = dict(os.environ, PYTHONPATH=stubs_dir)
        result = subprocess.run(
            ["/usr/bin/python3", os.path.join(EXAMPLE_DIR, "informer_client.py"), "--address",
             address, "--resource", "pods", "--namespace", "default", "--selector", "app=web",
             "--max-events", "6"],
            env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.stop(None)
    check(result.returncode == 0, "exit %d; stderr:\n%s" % (result.returncode, result.stderr))
    expected = ("ADDED default/web-1 (resource version 5)\n"
                "ADDED default/web-2 (resource version 7)\n"
                "ADDED default/web-3 (resource version 6)\n"
                "SYNCED 3 objects at resource version 10\n"
                "MODIFIED default/web-1 (resource version 11)\n"
                "DELETED default/web-2 (resource version 12)\n"
                "2 objects: default/web-1 default/web-3\n")
    check(result.stdout == expected, "stdout:\n%s" % result.stdout)
    request = fake.requests[0]
    check((request.resource, request.namespace, request.label_selector)
          == ("pods", "default", "app=web"), "request: %r" % request)


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as stubs_dir:
        generate_stubs(stubs_dir)
        sys.path.insert(0, EXAMPLE_DIR)
        from informerd.v1 import informerd_pb2, informerd_pb2_grpc
        import informer_client
        cases = [
            test_resume_after_unavailable_and_exhausted_then_fresh_snapshot_after_out_of_range,
            test_state_before_the_first_sync_is_complete_after_it,
            test_errors_in_the_request_are_raised_not_retried,
            lambda *args: test_the_program(*args, stubs_dir),
        ]
        for case in cases:
            try:
                case(informerd_pb2, informerd_pb2_grpc, informer_client)
                passed += 1
            except Exception:  # report every failing case, not just the first
                failed += 1
                traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
