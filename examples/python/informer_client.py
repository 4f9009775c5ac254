#!/usr/bin/python3
"""Follow one resource in informerd and keep a local copy of its objects, like a client-go informer.

The loop every informerd client needs: subscribe, apply each event to a
dict keyed by "namespace/name", and when the stream ends, resume where it stopped:

  * UNAVAILABLE (informerd restarting) or RESOURCE_EXHAUSTED (this client fell behind): subscribe
    again after a backoff with the resource version of the last event applied; nothing is lost.
  * OUT_OF_RANGE (that resource version left informerd's replay window): subscribe again from
    scratch; the new snapshot replaces the dict when its SYNCED arrives, so objects deleted in
    the meantime disappear and readers never see a half-filled dict.
  * Anything else (NOT_FOUND, INVALID_ARGUMENT, ...) is a mistake in the request: raise it.

A snapshot's ADDED events carry each object's own resource version, which is no place to resume
from; resumable positions start at SYNCED. Stubs are generated from the proto (see README.md).

Security (README "Security model"): with --cacert (or --tls, trusting the system's CAs) the channel
is TLS; a bearer token (--token, or better --token-file, e.g. a projected ServiceAccount token,
re-read on every subscription since the kubelet rotates it) goes in the "authorization: Bearer ..."
metadata of each call, which informerd checks with a TokenReview and authorizes per call. Like
informerctl, the example sends a token in plaintext only to a unix socket or a loopback address.
Run it as a program, or import it and call follow() with an `until` condition, as
test/e2e/python_example_test.py does.

Listing (--list, or list_objects()): a List answer is at most 4 MiB by default (informerd's
--max-list-response-bytes), so a large resource is read in pages, as client-go's pager does:
`limit` objects per page, each next page asked for with the previous answer's `continue`, every
page read from the same state (the first page's resource version). A list that expires while
paging (OUT_OF_RANGE: the resource changed more meanwhile than informerd's replay window holds)
is read again from the start. `continue` is a Python keyword: the field is read with getattr()
and set through a dict.
"""
import argparse
import ipaddress
import json
import os
import random
import sys
import time

import grpc

try:
    from informerd.v1 import informerd_pb2, informerd_pb2_grpc
except ImportError as error:
    raise ImportError("cannot import the generated stubs (%s): generate them first, "
                      "see examples/python/README.md" % error) from error

Event = informerd_pb2.Event
RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


class Backoff:
    """Exponential backoff with full jitter: up to 0.5 s, doubling to 30 s; reset on progress."""

    def __init__(self, initial=0.5, maximum=30.0, random_fraction=random.random):
        self._initial, self._maximum, self._random = initial, maximum, random_fraction
        self._ceiling = initial

    def next_delay(self):
        delay = self._ceiling * self._random()
        self._ceiling = min(self._ceiling * 2, self._maximum)
        return delay

    def reset(self):
        self._ceiling = self._initial


class LocalCache:
    """The objects of one subscription, keyed by "namespace/name" ("name" if cluster-scoped)."""

    def __init__(self):
        self.objects = {}        # key -> the object, parsed from its JSON
        self.resume_from = ""    # resource version to subscribe from; "" means a fresh snapshot
        self.syncs = 0           # SYNCED events seen
        self._snapshot = None    # while a snapshot arrives: the dict that will replace `objects`

    def begin_stream(self):
        if not self.resume_from:
            self._snapshot = {}

    def apply(self, event):
        """Applies one event; returns a line describing it."""
        key = "%s/%s" % (event.namespace, event.name) if event.namespace else event.name
        target = self._snapshot if self._snapshot is not None else self.objects
        if event.type in (Event.ADDED, Event.MODIFIED):
            target[key] = json.loads(event.object)
        elif event.type == Event.DELETED:
            target.pop(key, None)
        elif event.type == Event.SYNCED:
            gone = len(set(self.objects) - set(self._snapshot or {}))
            self.objects, self._snapshot = self._snapshot or {}, None
            self.syncs += 1
            self.resume_from = event.resource_version
            note = " (%d gone while away)" % gone if gone else ""
            return "SYNCED %d objects at resource version %s%s" % (
                len(self.objects), event.resource_version, note)
        if self._snapshot is None and event.resource_version:
            self.resume_from = event.resource_version
        if event.type == Event.BOOKMARK:
            return "BOOKMARK %s" % event.resource_version
        return "%s %s (resource version %s)" % (
            Event.Type.Name(event.type), key, event.resource_version)


def follow(stub, resource, namespace="", label_selector="", field_selector="", cache=None,
           until=lambda cache: False, max_events=None, backoff=None, sleep=time.sleep, log=print,
           metadata=lambda: ()):
    """Subscribes and applies events to `cache` until `until(cache)` holds or `max_events` have
    been applied, resuming after every retryable end of the stream. `metadata()` gives each
    subscription's call metadata (see bearer_metadata). Returns the cache."""
    cache = cache if cache is not None else LocalCache()
    backoff = backoff or Backoff()
    applied = 0
    while True:
        request = informerd_pb2.SubscribeRequest(
            resource=resource, namespace=namespace, label_selector=label_selector,
            field_selector=field_selector, resource_version=cache.resume_from)
        cache.begin_stream()
        call = stub.Subscribe(request, metadata=metadata())
        try:
            for event in call:
                log(cache.apply(event))
                backoff.reset()
                applied += 1
                if until(cache) or (max_events is not None and applied >= max_events):
                    return cache
            code, details = grpc.StatusCode.UNAVAILABLE, "stream ended"
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
            if code != grpc.StatusCode.OUT_OF_RANGE and code not in RETRY:
                raise  # a mistake in the request: retrying cannot help
        finally:
            call.cancel()  # no-op when the call is over; ends it when we stop early
        if code == grpc.StatusCode.OUT_OF_RANGE:
            log("%s: %s; subscribing again from scratch" % (code.name, details))
            cache.resume_from = ""
        else:  # RETRY: resume where the stream stopped
            delay = backoff.next_delay()
            log("%s: %s; resuming from resource version %s in %.1fs" % (
                code.name, details, cache.resume_from or "(none: fresh snapshot)", delay))
            sleep(delay)


def object_key(obj):
    """ "namespace/name", or "name" for a cluster-scoped object."""
    metadata = obj.get("metadata", {})
    namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
    return "%s/%s" % (namespace, name) if namespace else name


def list_objects(stub, resource, namespace="", label_selector="", field_selector="", limit=500,
                 metadata=lambda: (), log=print, restarts=2):
    """Lists one resource in pages of `limit` objects (0: one answer, which informerd refuses
    for a list larger than its response bound). Returns (dict of objects keyed by
    "namespace/name", the list's resource version). A list that expires while paging is read
    again from the start, `restarts` times at most; other errors are raised."""
    for attempt in range(restarts + 1):
        objects, token = {}, ""
        try:
            while True:
                request = informerd_pb2.ListRequest(
                    resource=resource, namespace=namespace, label_selector=label_selector,
                    field_selector=field_selector, limit=limit, **{"continue": token})
                response = stub.List(request, metadata=metadata())
                for item in response.items:
                    obj = json.loads(item)
                    objects[object_key(obj)] = obj
                token = getattr(response, "continue")
                if not token:
                    return objects, response.resource_version
        except grpc.RpcError as error:
            # Only a continued page expires (token is the one it was asked with).
            if error.code() != grpc.StatusCode.OUT_OF_RANGE or not token or attempt == restarts:
                raise
            log("%s: %s; listing again from the start" % (error.code().name, error.details()))


def is_local(address):
    """Whether a gRPC target is this machine only: a unix socket or a loopback address."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address[len("dns:///"):] if address.startswith("dns:///") else address
    if host.startswith("["):
        host = host[1:host.find("]")]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_channel(address, cacert=None, tls=False):
    """TLS when a CA file is given (or tls: the system's CAs); plaintext otherwise."""
    if cacert or tls:
        root_certificates = None
        if cacert:
            with open(cacert, "rb") as f:
                root_certificates = f.read()
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates))
    return grpc.insecure_channel(address)


def bearer_metadata(token=None, token_file=None):
    """A function giving the call metadata that carries the token. A token file is read each
    time, so a rotated ServiceAccount token is picked up by the next subscription."""
    if not token and not token_file:
        return lambda: ()

    def metadata():
        value = token
        if token_file:
            with open(token_file) as f:
                value = f.read().strip()
        if not value:
            raise ValueError("the bearer token is empty (%s)" % (token_file or "--token"))
        return (("authorization", "Bearer " + value),)
    return metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default=os.environ.get("INFORMERD_ADDRESS", "127.0.0.1:50051"))
    parser.add_argument("--resource", required=True, help="as kubectl takes it: pods, deployments.apps")
    parser.add_argument("--namespace", default="", help="default: all namespaces")
    parser.add_argument("--selector", default="", help="label selector, kubectl syntax")
    parser.add_argument("--max-events", type=int, default=None, help="stop after N events")
    parser.add_argument("--list", action="store_true",
                        help="list the objects once (in pages) and exit instead of following")
    parser.add_argument("--chunk-size", type=int, default=500,
                        help="with --list: objects per page (default 500; 0: one answer)")
    parser.add_argument("--cacert", help="PEM CA of informerd's certificate: use TLS")
    parser.add_argument("--tls", action="store_true", help="use TLS with the system's CAs")
    credentials = parser.add_mutually_exclusive_group()
    credentials.add_argument("--token", help="bearer token (visible in ps: prefer --token-file)")
    credentials.add_argument("--token-file", help="file holding the bearer token, re-read per call")
    args = parser.parse_args()
    tls = bool(args.cacert or args.tls)
    if (args.token or args.token_file) and not tls and not is_local(args.address):
        parser.error("refusing to send a bearer token in plaintext to %s: use --cacert or --tls"
                     % args.address)
    metadata = bearer_metadata(args.token, args.token_file)
    try:
        metadata()  # an unreadable token file is an error now, not at the first call
        channel = open_channel(args.address, args.cacert, args.tls)
    except (OSError, ValueError) as error:
        print("informer_client: %s" % error, file=sys.stderr)
        return 1
    with channel:
        stub = informerd_pb2_grpc.InformerStub(channel)
        if args.list:
            try:
                objects, resource_version = list_objects(
                    stub, args.resource, args.namespace, args.selector, limit=args.chunk_size,
                    metadata=metadata, log=lambda line: print(line, file=sys.stderr))
            except grpc.RpcError as error:
                print("informer_client: %s: %s" % (error.code().name, error.details()),
                      file=sys.stderr)
                return 1
            print("%d objects at resource version %s: %s" % (
                len(objects), resource_version, " ".join(sorted(objects))))
            return 0
        cache = LocalCache()
        try:
            follow(stub, args.resource, args.namespace, args.selector, cache=cache,
                   max_events=args.max_events, log=lambda line: print(line, flush=True),
                   metadata=metadata)
        except KeyboardInterrupt:
            pass
        except grpc.RpcError as error:
            print("informer_client: %s: %s" % (error.code().name, error.details()), file=sys.stderr)
            return 1
    print("%d objects: %s" % (len(cache.objects), " ".join(sorted(cache.objects))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
