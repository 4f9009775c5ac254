"""Informer: client-go's SharedIndexInformer over one informerd Subscribe stream.

    informer = Informer("127.0.0.1:50051", "pods", namespace="default")
    informer.add_event_handler(on_add=..., on_update=..., on_delete=...)
    threading.Thread(target=informer.run, args=(stop,), daemon=True).start()
    informer.wait_for_sync(timeout=30)
    informer.store.list(namespace="default", label_selector="app=web")

Data flow: run() reads the stream (batches of up to max_events_per_message events) on the
calling thread and hands each event to the Reflector (reflector.py), which updates the Store and
returns notifications; those queue, unbounded as in client-go's processorListener, and one
dispatcher thread calls the handlers, in order. So the store is never behind the handlers (a
handler may read the store and see a newer state than its notification, as in client-go), and a
slow handler does not stall the stream. run_async() does the same on an asyncio event loop with
grpc.aio; there the handlers run on the loop (a handler may be a coroutine function).

Reconnection (see reflector.py for the rules): after UNAVAILABLE, RESOURCE_EXHAUSTED, a normal
end or a transport failure it resumes from the last resumable version after client-go's backoff
(backoff.py); after OUT_OF_RANGE it takes a fresh snapshot and notifies only the differences.
Other errors end run(): raised as StreamError, after error_handler saw them. error_handler (if
given) sees every stream end that was an error, retried or not.

Resync (resync_period seconds, as client-go's): every period after the first sync each handler
gets on_update(obj, obj) for every object in the store, in line with the other notifications.

Objects are dicts (json.loads of the JSON informerd sends; pass `decode` for something else).
Handlers and listers share them: treat them as read-only.
"""
import asyncio
import collections
import inspect
import json
import logging
import threading
import time

import grpc

from informerd.backoff import ExponentialBackoff
from informerd.connection import Credentials
from informerd.reflector import (ADD, DELETE, FATAL, RESNAPSHOT, UPDATE, Reflector,
                                 classify_stream_end)
from informerd.store import Store
from informerd.v1 import informerd_pb2, informerd_pb2_grpc

__all__ = ["EventHandler", "Informer", "StreamError"]

_log = logging.getLogger("informerd.informer")


class StreamError(Exception):
    """A Subscribe stream that ended with an error. `action`: "retry" (resumed after `delay`
    seconds), "resnapshot" (a fresh snapshot follows) or "fatal" (run() raises it)."""

    def __init__(self, code, details, action, delay=0.0):
        super().__init__("%s: %s" % (code.name if code is not None else "OK", details))
        self.code, self.details, self.action, self.delay = code, details, action, delay


class EventHandler:
    """on_add(obj), on_update(old, new), on_delete(obj or DeletedFinalStateUnknown); any may be
    None. client-go's ResourceEventHandlerFuncs."""

    def __init__(self, on_add=None, on_update=None, on_delete=None):
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete

    def call(self, notification):
        kind = notification[0]
        function = {ADD: self.on_add, UPDATE: self.on_update, DELETE: self.on_delete}[kind]
        return function(*notification[1:]) if function is not None else None


class Informer:
    def __init__(self, channel_or_address, resource, namespace="", label_selector="",
                 field_selector="", *, token=None, token_file=None, ca_file=None, tls=False,
                 client_cert_file=None, client_key_file=None, allow_plaintext_token=False,
                 channel_options=None, resync_period=None, max_events_per_message=64,
                 indexers=None, decode=json.loads, error_handler=None, backoff=None,
                 sleep=None, clock=time.monotonic):
        """channel_or_address: "host:port" or "unix:///path" (the informer opens its own channel
        per run), or a grpc.Channel for run() / a grpc.aio.Channel for run_async() (yours to
        close). Credentials: see connection.Credentials; a token goes with a given channel too.
        backoff, sleep(seconds, stop_event) and clock are for tests."""
        self.resource, self.namespace = resource, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.max_events_per_message = max_events_per_message
        self.resync_period = resync_period
        self.credentials = Credentials(token, token_file, ca_file, tls, client_cert_file,
                                       client_key_file, allow_plaintext_token)
        if isinstance(channel_or_address, str):
            self._address, self._channel = channel_or_address, None
            self.credentials.check_address(channel_or_address)
        else:
            self._address, self._channel = None, channel_or_address
        self.credentials.metadata()  # an unreadable token file is an error now
        self._channel_options = channel_options
        self.store = Store(indexers)
        self._reflector = Reflector(self.store, informerd_pb2, decode)
        self._error_handler = error_handler
        self._backoff = backoff or ExponentialBackoff(clock=clock)
        self._sleep = sleep
        self._clock = clock
        self._handlers = []
        # Guards the reflector, _pending and _next_resync, so that notifications queue in the
        # order the store changed.
        self._cond = threading.Condition()
        # (the handlers registered when it was queued, notification): a handler added later
        # gets only what follows its own replay of the store.
        self._pending = collections.deque()
        self._next_resync = None
        self._async_wakeup = None            # run_async's asyncio.Event

    # -- client-go's SharedIndexInformer surface --------------------------------------------

    def add_event_handler(self, on_add=None, on_update=None, on_delete=None):
        """Registers handlers (functions, or one object with on_add/on_update/on_delete methods
        as the first argument); returns the EventHandler. Added after the informer has synced,
        it first gets on_add for every object already in the store, as in client-go."""
        if on_add is not None and not callable(on_add) and hasattr(on_add, "on_add"):
            handler = on_add
            handler = EventHandler(getattr(handler, "on_add", None),
                                   getattr(handler, "on_update", None),
                                   getattr(handler, "on_delete", None))
        else:
            handler = EventHandler(on_add, on_update, on_delete)
        with self._cond:
            self._handlers.append(handler)
            if self._reflector.synced:
                for obj in self.store.list():
                    self._pending.append(((handler,), (ADD, obj)))
                self._wake()
        return handler

    def add_indexers(self, indexers):
        """{"by_node": lambda pod: pod["spec"].get("nodeName")}; see Store.add_indexers."""
        self.store.add_indexers(indexers)

    def by_index(self, index_name, value):
        return self.store.by_index(index_name, value)

    def get(self, namespace, name):
        return self.store.get(namespace, name)

    def list(self, namespace=None, label_selector=None):
        return self.store.list(namespace, label_selector)

    def has_synced(self):
        """Whether the store holds a complete snapshot (the first SYNCED has been applied)."""
        with self._cond:
            return self._reflector.synced

    def wait_for_sync(self, timeout=None):
        """Waits until has_synced(); returns whether it has (False after `timeout` seconds)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._reflector.synced, timeout)

    def last_sync_resource_version(self):
        with self._cond:
            return self._reflector.resume_from

    # -- Running on a thread ----------------------------------------------------------------

    def run(self, stop_event):
        """Follows the resource until stop_event (a threading.Event) is set; returns then.
        Raises StreamError for an error retrying cannot fix. Call it on a thread of its own."""
        if self._channel is not None:
            if isinstance(self._channel, grpc.aio.Channel):
                raise TypeError("run() needs a grpc.Channel; use run_async() with grpc.aio")
            channel, own = self._channel, False
        else:
            channel = self.credentials.open_channel(self._address, self._channel_options)
            own = True
        stub = informerd_pb2_grpc.InformerStub(channel)
        finished = threading.Event()
        current = []  # the call in flight, for the canceller
        dispatcher = threading.Thread(target=self._dispatch_loop, args=(stop_event, finished),
                                      name="informer-handlers-%s" % self.resource, daemon=True)
        canceller = threading.Thread(target=self._cancel_on_stop,
                                     args=(stop_event, finished, current), daemon=True)
        dispatcher.start()
        canceller.start()
        try:
            while not stop_event.is_set():
                with self._cond:
                    version = self._reflector.begin_stream()
                metadata, delay = self._metadata()
                if metadata is None:
                    (self._sleep or _sleep_unless_stopped)(delay, stop_event)
                    continue
                call = stub.Subscribe(self._request(version), metadata=metadata)
                current[:] = [call]
                if stop_event.is_set():
                    call.cancel()
                try:
                    for message in call:
                        self._apply_message(message)
                    code, details = None, "the stream ended"
                except grpc.RpcError as error:
                    code, details = error.code(), error.details()
                if stop_event.is_set():
                    break
                delay = self._after_stream_end(code, details, version)
                if delay:
                    (self._sleep or _sleep_unless_stopped)(delay, stop_event)
        finally:
            finished.set()
            with self._cond:
                self._cond.notify_all()
            dispatcher.join()
            canceller.join()
            if own:
                channel.close()

    def _cancel_on_stop(self, stop_event, finished, current):
        while not finished.is_set():
            if stop_event.wait(0.2):
                for call in current:
                    call.cancel()
                return

    def _dispatch_loop(self, stop_event, finished):
        """Calls the handlers, one notification at a time, until run() ends. What is pending when
        run() ends with an error is still delivered; once stop_event is set, nothing more."""
        while True:
            with self._cond:
                while True:
                    if stop_event.is_set():
                        return
                    self._maybe_queue_resync()
                    if self._pending:
                        handlers, notification = self._pending.popleft()
                        break
                    if finished.is_set():
                        return
                    self._cond.wait(self._seconds_to_resync())
            for handler in handlers:
                try:
                    handler.call(notification)
                except Exception:  # a handler's bug must not stop the others
                    _log.exception("informer %s: event handler failed on %s", self.resource,
                                   notification[0])

    # -- Running on asyncio -----------------------------------------------------------------

    async def run_async(self, stop_event=None):
        """run() for asyncio, with grpc.aio: follows the resource until stop_event (an
        asyncio.Event) is set or the task is cancelled. Handlers run on the event loop, one at
        a time, in order; coroutine handlers are awaited."""
        stop_event = stop_event or asyncio.Event()
        if self._channel is not None:
            if not isinstance(self._channel, grpc.aio.Channel):
                raise TypeError("run_async() needs a grpc.aio.Channel; use run() with grpc")
            channel, own = self._channel, False
        else:
            channel = self.credentials.open_channel(self._address, self._channel_options,
                                                    aio=True)
            own = True
        stub = informerd_pb2_grpc.InformerStub(channel)
        self._async_wakeup = asyncio.Event()
        finished = asyncio.Event()
        dispatcher = asyncio.ensure_future(self._dispatch_async(stop_event, finished))
        try:
            while not stop_event.is_set():
                with self._cond:
                    version = self._reflector.begin_stream()
                metadata, delay = self._metadata()
                if metadata is None:
                    await self._sleep_async(delay, stop_event)
                    continue
                call = stub.Subscribe(self._request(version), metadata=metadata)
                stopper = asyncio.ensure_future(stop_event.wait())
                stopper.add_done_callback(lambda _, call=call: call.cancel())
                try:
                    async for message in call:
                        self._apply_message(message)
                    code, details = None, "the stream ended"
                except grpc.RpcError as error:
                    code, details = error.code(), error.details()
                except asyncio.CancelledError:
                    if stop_event.is_set():
                        break
                    raise
                finally:
                    stopper.cancel()
                if stop_event.is_set():
                    break
                delay = self._after_stream_end(code, details, version)
                if delay:
                    await self._sleep_async(delay, stop_event)
        finally:
            finished.set()
            self._async_wakeup.set()
            if stop_event.is_set():
                dispatcher.cancel()
            try:
                await dispatcher
            except asyncio.CancelledError:
                pass
            self._async_wakeup = None
            if own:
                await channel.close()

    async def _dispatch_async(self, stop_event, finished):
        while not stop_event.is_set():
            with self._cond:
                self._maybe_queue_resync()
                item = self._pending.popleft() if self._pending else None
                timeout = self._seconds_to_resync()
                if item is None:
                    self._async_wakeup.clear()
            if item is None:
                if finished.is_set():
                    return
                try:
                    await asyncio.wait_for(self._async_wakeup.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
                continue
            handlers, notification = item
            for handler in handlers:
                try:
                    result = handler.call(notification)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    _log.exception("informer %s: event handler failed on %s", self.resource,
                                   notification[0])

    # -- Shared by both ---------------------------------------------------------------------

    def _request(self, version):
        return informerd_pb2.SubscribeRequest(
            resource=self.resource, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=version,
            max_events_per_message=self.max_events_per_message)

    async def _sleep_async(self, delay, stop_event):
        if self._sleep is not None:
            self._sleep(delay, stop_event)
            return
        try:
            await asyncio.wait_for(stop_event.wait(), delay)
        except asyncio.TimeoutError:
            pass

    def _metadata(self):
        """(the call metadata, 0); or (None, seconds to wait) if the token file cannot be
        read now: a rotated token may be missing for a moment, so this is retried, not fatal."""
        try:
            return self.credentials.metadata(), 0.0
        except (OSError, ValueError) as error:
            delay = self._backoff.next_delay()
            _log.warning("informer %s: reading the token: %s (retry, in %.1fs)", self.resource,
                         error, delay)
            if self._error_handler is not None:
                self._error_handler(StreamError(grpc.StatusCode.UNAUTHENTICATED,
                                                "reading the token: %s" % error, "retry", delay))
            return None, delay

    def _apply_message(self, message):
        # A batch carries whole events in order and nothing else (informerd.proto, Event.batch).
        events = message.batch if len(message.batch) else (message,)
        with self._cond:
            was_synced = self._reflector.synced
            handlers = tuple(self._handlers)
            for event in events:
                for notification in self._reflector.apply(event):
                    self._pending.append((handlers, notification))
            if not was_synced and self._reflector.synced and self.resync_period:
                self._next_resync = self._clock() + self.resync_period
            self._wake()

    def _wake(self):
        """With self._cond held: something is pending (or synced)."""
        self._cond.notify_all()
        if self._async_wakeup is not None:
            self._async_wakeup.set()

    def _after_stream_end(self, code, details, version):
        """Decides what follows a stream's end; returns the seconds to wait first. Raises
        StreamError when the error is fatal."""
        action = classify_stream_end(code, details)
        delay = 0.0
        if action == RESNAPSHOT:
            with self._cond:
                self._reflector.restart_from_scratch()
            # A fresh snapshot is never OUT_OF_RANGE; if one was, do not spin.
            if not version:
                delay = self._backoff.next_delay()
        elif action != FATAL:
            delay = self._backoff.next_delay()
        error = StreamError(code, details, action, delay)
        if code is None:
            _log.info("informer %s: the stream ended; resuming in %.1fs", self.resource, delay)
        else:
            _log.warning("informer %s: %s (%s%s)", self.resource, error, action,
                         ", in %.1fs" % delay if delay else "")
        if self._error_handler is not None and code is not None:
            self._error_handler(error)
        if action == FATAL:
            raise error
        return delay

    def _maybe_queue_resync(self):
        """With self._cond held: queues on_update(obj, obj) for every object when due."""
        if self._next_resync is None or self._clock() < self._next_resync:
            return
        handlers = tuple(self._handlers)
        for obj in self.store.list():
            self._pending.append((handlers, (UPDATE, obj, obj)))
        self._next_resync = self._clock() + self.resync_period

    def _seconds_to_resync(self):
        if self._next_resync is None:
            return None
        return max(0.0, self._next_resync - self._clock())


def _sleep_unless_stopped(seconds, stop_event):
    stop_event.wait(seconds)
