#!/usr/bin/python3
"""The Python example client (examples/python/informer_client.py) against a fake Informer server.

Stubs are generated at test time from proto/informerd/v1/informerd.proto with /usr/bin/protoc and
grpc_python_plugin, as examples/python/README.md tells users to. The fake is a grpcio server built
on the same stubs that plays a script of streams: each Subscribe call takes the next one, sends
its events and ends with its status. The client is driven in-process through follow() for exact,
sleep-free checks (its backoff's sleep is recorded, not slept), and once as the program a user
runs. The daemon's real Informer service is tested elsewhere; this pins down the example.

Security: the program over TLS (a self-signed certificate made with `openssl req -x509`, as the
README's quick start makes one) sends its token as "authorization: Bearer ..." on every call and
fails against a CA that did not sign the server's certificate; and it follows pods from the real
informerd binary serving TLS (over the project's fake apiserver), the way a user runs it.
"""
import json
import os
import re
import signal
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
INFORMERD = "cmd/informerd/informerd"
FAKE_APISERVER = "test/fakeapi/fakeapi_server"


def generate_stubs(out_dir):
    subprocess.run(
        ["/usr/bin/protoc", "-I" + PROTO_ROOT, "--python_out=" + out_dir, "--grpc_out=" + out_dir,
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", os.path.join(PROTO_ROOT, PROTO)],
        check=True)
    sys.path.insert(0, out_dir)


class ScriptedInformer:
    """Subscribe plays `streams` in order: (events, (code, details) or None for a normal end).
    List answers `lists` in order: a ListResponse, or (code, details)."""

    def __init__(self, pb2, streams, lists=()):
        self.pb2 = pb2
        self.streams = list(streams)
        self.lists = list(lists)
        self.requests = []
        self.list_requests = []
        self.lock = threading.Lock()

    def ListResources(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the example only subscribes and lists")

    Get = ListResources

    def List(self, request, context):
        with self.lock:
            self.list_requests.append(request)
            if not self.lists:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the script has no more lists")
            answer = self.lists.pop(0)
        if isinstance(answer, tuple):
            context.abort(*answer)
        return answer

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


def page(pb2, names, token, rv="40"):
    """One List answer: pods `names` (with their own resource versions), the list's version."""
    items = [json.dumps({"kind": "Pod", "apiVersion": "v1",
                         "metadata": {"name": name, "namespace": "default",
                                      "resourceVersion": str(30 + i)}})
             for i, name in enumerate(names)]
    return pb2.ListResponse(items=items, resource_version=rv, **{"continue": token})


def test_list_pages_through_and_starts_again_when_the_list_expires(pb2, pb2_grpc, client):
    expired = (grpc.StatusCode.OUT_OF_RANGE,
               "continue: the list's state at resource version 40 is no longer available (...); "
               "re-list from the start, without continue")
    lists = [page(pb2, ["web-1"], "t1"), expired,
             page(pb2, ["web-1"], "t2", rv="45"), page(pb2, ["web-2"], "t3", rv="45"),
             page(pb2, ["web-3"], "", rv="45")]
    fake = ScriptedInformer(pb2, [], lists)
    server, address = serve(pb2_grpc, fake)
    lines = []
    try:
        with grpc.insecure_channel(address) as channel:
            objects, rv = client.list_objects(pb2_grpc.InformerStub(channel), "pods", "default",
                                              "app=web", limit=1, log=lines.append)
    finally:
        server.stop(None)
    check(sorted(objects) == ["default/web-1", "default/web-2", "default/web-3"],
          "objects: %r" % sorted(objects))
    check(rv == "45", "resource version: %r" % rv)
    sent = [(r.limit, getattr(r, "continue")) for r in fake.list_requests]
    check(sent == [(1, ""), (1, "t1"), (1, ""), (1, "t2"), (1, "t3")], "requests: %r" % sent)
    for request in fake.list_requests:
        check((request.resource, request.namespace, request.label_selector)
              == ("pods", "default", "app=web"), "request: %r" % request)
    check(lines == ["OUT_OF_RANGE: %s; listing again from the start" % expired[1]],
          "lines: %r" % lines)

    # A first page's error, and a list that keeps expiring, are raised.
    for script, calls in (([(grpc.StatusCode.RESOURCE_EXHAUSTED, "too large")], 1),
                          ([page(pb2, ["a"], "t"), expired] * 3, 6)):
        fake = ScriptedInformer(pb2, [], script)
        server, address = serve(pb2_grpc, fake)
        try:
            with grpc.insecure_channel(address) as channel:
                try:
                    client.list_objects(pb2_grpc.InformerStub(channel), "pods", log=lambda l: None)
                    raise AssertionError("the error must be raised")
                except grpc.RpcError as error:
                    check(error.code() == script[-1][0], "code: %r" % error.code())
        finally:
            server.stop(None)
        check(len(fake.list_requests) == calls, "calls: %d" % len(fake.list_requests))


def self_signed(work, name, sans):
    """A self-signed EC certificate and key (their own CA), as the README's quick start makes."""
    key, crt = os.path.join(work, name + ".key"), os.path.join(work, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=" + sans, "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return crt, key


def run_example(stubs_dir, *args, seconds=60):
    """Runs the program; (exit status, stdout, stderr), the status None if it still ran after
    `seconds` (then it is killed): it retries UNAVAILABLE, a failed handshake included, forever."""
    env = dict(os.environ, PYTHONPATH=stubs_dir)
    process = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(EXAMPLE_DIR, "informer_client.py")] + list(args),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=seconds)
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        return None, out, err


class RecordingInformer(ScriptedInformer):
    """Also records each Subscribe's "authorization" metadata values."""

    def __init__(self, pb2, streams):
        super().__init__(pb2, streams)
        self.authorization = []

    def Subscribe(self, request, context):
        with self.lock:
            self.authorization.append(
                [v for k, v in context.invocation_metadata() if k == "authorization"])
        yield from super().Subscribe(request, context)


def test_the_program_over_tls_with_a_token(pb2, pb2_grpc, client, stubs_dir):
    E = pb2.Event
    work = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    crt, key = self_signed(work, "informerd", "DNS:localhost,IP:127.0.0.1")
    other_ca, _ = self_signed(work, "other", "DNS:other.example")
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write("eyJhbGciOiJSUzI1NiJ9.payload.signature\n")  # as a projected token file is
    streams = [([pod(pb2, E.ADDED, "5", "web-1"), marker(pb2, E.SYNCED, "10")],
                (grpc.StatusCode.UNAVAILABLE, "restarting")),
               ([pod(pb2, E.MODIFIED, "11", "web-1")], None)]
    fake = RecordingInformer(pb2, streams)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_InformerServicer_to_server(fake, server)
    with open(crt, "rb") as c, open(key, "rb") as k:
        credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        address = "127.0.0.1:%d" % port
        code, out, err = run_example(stubs_dir, "--address", address, "--cacert", crt,
                                     "--token-file", token_file, "--resource", "pods",
                                     "--max-events", "3")
        check(code == 0, "exit %r; stderr:\n%s" % (code, err))
        check(out.endswith("MODIFIED default/web-1 (resource version 11)\n"
                           "1 objects: default/web-1\n"), "stdout:\n%s" % out)
        # Both subscriptions (the first, and the resumption) carry the token, exactly.
        expected = ["Bearer eyJhbGciOiJSUzI1NiJ9.payload.signature"]
        check(fake.authorization == [expected, expected], "metadata: %r" % fake.authorization)

        calls = len(fake.requests)
        code, out, err = run_example(stubs_dir, "--address", address, "--cacert", other_ca,
                                     "--token", "t", "--resource", "pods", seconds=3)
        check(code is None and re.search(r"^UNAVAILABLE: .*handshake.*; resuming", out, re.M | re.I),
              "a CA that did not sign the certificate: exit %r\n%s%s" % (code, out, err))
        check(len(fake.requests) == calls, "a call got through with the wrong CA")
    finally:
        server.stop(None)

    code, out, err = run_example(stubs_dir, "--address", "192.0.2.1:50051", "--token", "t",
                                 "--resource", "pods")
    check(code == 2 and "refusing to send a bearer token in plaintext to 192.0.2.1:50051" in err,
          "plaintext token: %r %s" % (code, err))
    code, out, err = run_example(stubs_dir, "--address", "127.0.0.1:1", "--token-file",
                                 os.path.join(work, "missing"), "--resource", "pods")
    check(code == 1 and "No such file or directory" in err, "missing token file: %r %s" % (code, err))


def test_the_program_against_informerd_over_tls(pb2, pb2_grpc, client, stubs_dir):
    """The real daemon serving TLS on loopback, over the project's fake apiserver's pods."""
    work = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    crt, key = self_signed(work, "informerd", "DNS:localhost,IP:127.0.0.1")
    fake = subprocess.Popen([FAKE_APISERVER, "--objects", "4", "--object-bytes", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    daemon = None
    try:
        apiserver_port = int(fake.stdout.readline())
        kubeconfig = os.path.join(work, "kubeconfig")
        with open(kubeconfig, "w") as out:
            out.write("apiVersion: v1\nkind: Config\n"
                      "clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:%d\n"
                      "users:\n- name: tester\n  user:\n    token: t\n"
                      "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
                      "current-context: fake\n" % apiserver_port)
        config = os.path.join(work, "informerd.yaml")
        with open(config, "w") as out:
            out.write("resources:\n  - resource: pods\n")
        daemon = subprocess.Popen(
            [INFORMERD, "--config", config, "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0",
             "--metrics-listen", "none", "--probe-listen", "none", "--tls-cert-file", crt,
             "--tls-private-key-file", key],
            stderr=subprocess.PIPE, text=True)
        lines, address = [], None
        for line in daemon.stderr:
            lines.append(line)
            match = re.search(r"gRPC listening on (\S+)", line)
            if match:
                address = match.group(1)
                break
        check(address, "informerd did not report its address:\n" + "".join(lines))
        threading.Thread(target=lambda: [lines.append(l) for l in daemon.stderr],
                         daemon=True).start()
        # The snapshot may not be ready at once: the example retries UNAVAILABLE by itself.
        code, out, err = run_example(stubs_dir, "--address", address, "--cacert", crt,
                                     "--resource", "pods", "--max-events", "5")
        check(code == 0, "exit %r; stderr:\n%s\ninformerd:\n%s" % (code, err, "".join(lines)))
        check(re.search(r"^SYNCED 4 objects at resource version \d+$", out, re.M) and
              re.search(r"^4 objects: \S+ \S+ \S+ \S+$", out, re.M), "stdout:\n%s" % out)
        # Listed in pages of 3 (two pages, one state), over the same TLS channel setup.
        code, out, err = run_example(stubs_dir, "--address", address, "--cacert", crt,
                                     "--resource", "pods", "--list", "--chunk-size", "3")
        check(code == 0, "--list: exit %r; stderr:\n%s" % (code, err))
        check(re.fullmatch(r"4 objects at resource version \d+: \S+ \S+ \S+ \S+\n", out),
              "--list stdout:\n%s" % out)
        # Plaintext to the TLS port never gets an answer.
        code, out, err = run_example(stubs_dir, "--address", address, "--resource", "pods",
                                     seconds=3)
        check(code is None and re.search(r"^UNAVAILABLE: ", out, re.M),
              "plaintext to a TLS port: exit %r\n%s%s" % (code, out, err))
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
        fake.terminate()
        fake.wait(timeout=15)


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
            test_list_pages_through_and_starts_again_when_the_list_expires,
            lambda *args: test_the_program(*args, stubs_dir),
            lambda *args: test_the_program_over_tls_with_a_token(*args, stubs_dir),
            lambda *args: test_the_program_against_informerd_over_tls(*args, stubs_dir),
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
