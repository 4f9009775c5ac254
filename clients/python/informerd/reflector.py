"""Turns informerd Subscribe streams into store changes and handler notifications.

The pure part of the Informer (no gRPC, no threads, no clock), client-go's Reflector and
DeltaFIFO in one: the Informer opens a stream with resource_version=resume_from, feeds every
event to apply(), and asks what to do when the stream ends (on_stream_end).

The rules, from proto/informerd/v1/informerd.proto:
  * A stream opened without a resource version (a snapshot stream) sends the current state as
    ADDED events, then SYNCED, then live events. A snapshot's ADDED events carry each object's own
    resource version, which is no place to resume from: resumable positions start at SYNCED.
    Snapshot events are collected aside; the store changes only when SYNCED arrives, so readers
    never see half a snapshot.
  * At SYNCED the snapshot is compared with the store and exactly the differences are notified,
    as client-go's Replace does: an object the store lacks is an add; one whose resourceVersion
    changed is an update(old, new); one whose UID changed was deleted and re-created while we were
    away (a delete of the old, as a tombstone, then an add); an object missing from the snapshot
    was deleted while we were away: on_delete gets DeletedFinalStateUnknown(key, last known
    object). Unchanged objects produce nothing. On the first sync the store is empty, so every
    object is an add.
  * Live events: ADDED and MODIFIED put the object (an add if the key is new, else an update);
    DELETED removes it and notifies its last state (the event's object); BOOKMARK only moves the
    resume point. After each live event, resume_from is its resource version.
  * Stream ends: UNAVAILABLE and RESOURCE_EXHAUSTED (and a normal end, and transient transport
    failures) resume from resume_from after a backoff; OUT_OF_RANGE means that version left
    informerd's window (or informerd restarted): resubscribe with a fresh snapshot, whose SYNCED
    diffs as above. Request errors (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED,
    UNAUTHENTICATED, ...) are fatal: retrying cannot help.
"""
import json

import grpc

from informerd.store import DeletedFinalStateUnknown, object_key

__all__ = ["ADD", "DELETE", "UPDATE", "FATAL", "RESNAPSHOT", "RETRY", "Reflector",
           "classify_stream_end"]

ADD, UPDATE, DELETE = "add", "update", "delete"

# What to do after a stream ended.
RETRY, RESNAPSHOT, FATAL = "retry", "resnapshot", "fatal"

_FATAL_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}


def classify_stream_end(code, details=""):
    """RETRY, RESNAPSHOT or FATAL for a stream that ended with `code` (None: ended normally)."""
    if code == grpc.StatusCode.OUT_OF_RANGE:
        return RESNAPSHOT
    if code in _FATAL_CODES:
        return FATAL
    # gRPC's own client-side limit: retrying would receive the same message again.
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and (details or "").startswith(
            "Received message larger than max"):
        return FATAL
    return RETRY


def _metadata(obj):
    return obj.get("metadata") or {} if isinstance(obj, dict) else {}


class Reflector:
    """Applies Subscribe events to a Store; returns notifications as tuples:
    (ADD, obj), (UPDATE, old, new), (DELETE, obj or DeletedFinalStateUnknown)."""

    def __init__(self, store, pb2, decode=json.loads):
        self.store = store
        self._event = pb2.Event
        self._decode = decode
        self.resume_from = ""    # the resource_version of the next Subscribe ("" = snapshot)
        self.synced = False      # the first snapshot has been applied
        self.snapshots = 0       # SYNCED events applied
        self._snapshot = None    # key -> object while a snapshot stream has not synced

    def begin_stream(self):
        """Call before each Subscribe; returns the resource_version to send."""
        self._snapshot = {} if not self.resume_from else None
        return self.resume_from

    def restart_from_scratch(self):
        """After OUT_OF_RANGE: the next stream is a fresh snapshot, diffed at its SYNCED."""
        self.resume_from = ""

    def apply(self, event):
        """Applies one event (not a batch); returns the list of notifications."""
        E = self._event
        if event.type == E.SYNCED:
            return self._apply_synced(event.resource_version)
        if self._snapshot is not None:  # part of a snapshot: kept aside until SYNCED
            if event.type in (E.ADDED, E.MODIFIED):
                obj = self._decode(event.object)
                self._snapshot[object_key(obj)] = obj
            elif event.type == E.DELETED:
                self._snapshot.pop(object_key(self._decode(event.object)), None)
            return []
        notifications = []
        if event.type in (E.ADDED, E.MODIFIED):
            obj = self._decode(event.object)
            old = self.store.put(object_key(obj), obj)
            notifications.append((ADD, obj) if old is None else (UPDATE, old, obj))
        elif event.type == E.DELETED:
            obj = self._decode(event.object)
            # An unknown key has nothing to delete (client-go's DeltaFIFO ignores it too).
            if self.store.delete(object_key(obj)) is not None:
                notifications.append((DELETE, obj))
        if event.resource_version:
            self.resume_from = event.resource_version
        return notifications

    def _apply_synced(self, resource_version):
        snapshot, self._snapshot = self._snapshot, None
        self.resume_from = resource_version
        if snapshot is None:  # not on a snapshot stream: only a position
            return []
        old = self.store.items()
        notifications = []
        for key, obj in snapshot.items():
            previous = old.get(key)
            if previous is None:
                notifications.append((ADD, obj))
                continue
            before, after = _metadata(previous), _metadata(obj)
            if before.get("uid") and after.get("uid") and before["uid"] != after["uid"]:
                notifications.append((DELETE, DeletedFinalStateUnknown(key, previous)))
                notifications.append((ADD, obj))
            elif before.get("resourceVersion") != after.get("resourceVersion"):
                notifications.append((UPDATE, previous, obj))
        for key, previous in old.items():
            if key not in snapshot:
                notifications.append((DELETE, DeletedFinalStateUnknown(key, previous)))
        self.store.replace(snapshot)
        self.synced = True
        self.snapshots += 1
        return notifications
