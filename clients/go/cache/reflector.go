package cache

// The reflector turns informerd Subscribe events into store changes and notifications: the
// pure part of the Informer (no gRPC, no goroutines, no clock), client-go's Reflector and
// DeltaFIFO in one, with the same rules as the Python client's (clients/python/informerd/
// reflector.py), from proto/informerd/v1/informerd.proto:
//
//   - A stream opened without a resource version (a snapshot stream) sends the current state as
//     ADDED events, then SYNCED, then live events. A snapshot's ADDED events carry each object's
//     own resource version, which is no place to resume from: resumable positions start at
//     SYNCED. Snapshot events are collected aside; the store changes only when SYNCED arrives,
//     so readers never see half a snapshot.
//   - At SYNCED the snapshot is compared with the store and exactly the differences are
//     notified, as client-go's Replace does: an object the store lacks is an add; one whose
//     resourceVersion changed is an update(old, new); one whose UID changed was deleted and
//     re-created while we were away (a delete of the old, as a DeletedFinalStateUnknown, then
//     an add); an object missing from the snapshot was deleted while we were away: OnDelete
//     gets DeletedFinalStateUnknown{key, last known object}. Unchanged objects produce nothing.
//   - Live events: ADDED and MODIFIED put the object (an add if the key is new, else an
//     update); DELETED removes it and notifies its last state (the event's object); BOOKMARK
//     only moves the resume point. After each live event, resumeFrom is its resource version.
//   - Stream ends (classifyStreamEnd): UNAVAILABLE and RESOURCE_EXHAUSTED (and a normal end,
//     and transport failures) resume from resumeFrom after a backoff; OUT_OF_RANGE means that
//     version left informerd's window (or informerd restarted): resubscribe with a fresh
//     snapshot, whose SYNCED diffs as above. Request errors (INVALID_ARGUMENT, NOT_FOUND,
//     PERMISSION_DENIED, UNAUTHENTICATED, ...) are fatal: retrying cannot help.

import (
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	informerdv1 "informerd.io/client/api/v1"
)

type notificationKind int

const (
	notifyAdd notificationKind = iota
	notifyUpdate
	notifyDelete
)

// notification is one handler call: OnAdd(obj), OnUpdate(old, obj) or OnDelete(obj), where obj
// is an *Object or (deletes) a DeletedFinalStateUnknown.
type notification struct {
	kind     notificationKind
	old, obj interface{}
}

type reflector struct {
	store      *Store
	resumeFrom string             // the resource_version of the next Subscribe ("" = snapshot)
	synced     bool               // the first snapshot has been applied
	snapshots  int                // SYNCED events applied
	snapshot   map[string]*Object // key -> object while a snapshot stream has not synced
	order      []string           // the snapshot's keys in the order they came
	indexErr   error              // the last index function error (logged by the informer)
}

// beginStream is called before each Subscribe; it returns the resource_version to send.
func (r *reflector) beginStream() string {
	r.snapshot, r.order = nil, nil
	if r.resumeFrom == "" {
		r.snapshot = map[string]*Object{}
	}
	return r.resumeFrom
}

// restartFromScratch: after OUT_OF_RANGE the next stream is a fresh snapshot.
func (r *reflector) restartFromScratch() { r.resumeFrom = "" }

// apply applies one event (not a batch) and returns its notifications; an error is an object
// that is not JSON.
func (r *reflector) apply(e *informerdv1.Event) ([]notification, error) {
	if e.Type == informerdv1.Event_SYNCED {
		return r.applySynced(e.ResourceVersion), nil
	}
	var obj *Object
	if e.Type == informerdv1.Event_ADDED || e.Type == informerdv1.Event_MODIFIED || e.Type == informerdv1.Event_DELETED {
		var err error
		if obj, err = NewObject([]byte(e.Object)); err != nil {
			return nil, err
		}
	}
	if r.snapshot != nil { // part of a snapshot: kept aside until SYNCED
		switch e.Type {
		case informerdv1.Event_ADDED, informerdv1.Event_MODIFIED:
			if _, ok := r.snapshot[obj.Key()]; !ok {
				r.order = append(r.order, obj.Key())
			}
			r.snapshot[obj.Key()] = obj
		case informerdv1.Event_DELETED:
			delete(r.snapshot, obj.Key())
		}
		return nil, nil
	}
	var notifications []notification
	switch e.Type {
	case informerdv1.Event_ADDED, informerdv1.Event_MODIFIED:
		old, err := r.store.put(obj.Key(), obj)
		if err != nil {
			r.indexErr = err
		}
		if old == nil {
			notifications = append(notifications, notification{kind: notifyAdd, obj: obj})
		} else {
			notifications = append(notifications, notification{kind: notifyUpdate, old: old, obj: obj})
		}
	case informerdv1.Event_DELETED:
		// An unknown key has nothing to delete (client-go's DeltaFIFO ignores it too).
		if r.store.remove(obj.Key()) != nil {
			notifications = append(notifications, notification{kind: notifyDelete, obj: obj})
		}
	}
	if e.ResourceVersion != "" {
		r.resumeFrom = e.ResourceVersion
	}
	return notifications, nil
}

func (r *reflector) applySynced(resourceVersion string) []notification {
	snapshot, order := r.snapshot, r.order
	r.snapshot, r.order = nil, nil
	r.resumeFrom = resourceVersion
	if snapshot == nil { // not on a snapshot stream: only a position
		return nil
	}
	old := r.store.Items()
	var notifications []notification
	// In the snapshot's order, as client-go's Replace notifies in the list's order.
	seen := make(map[string]bool, len(snapshot))
	for _, key := range order {
		obj, ok := snapshot[key]
		if !ok || seen[key] {
			continue // deleted again within the snapshot, or already done
		}
		seen[key] = true
		previous := old[key]
		switch {
		case previous == nil:
			notifications = append(notifications, notification{kind: notifyAdd, obj: obj})
		case previous.UID() != "" && obj.UID() != "" && previous.UID() != obj.UID():
			notifications = append(notifications,
				notification{kind: notifyDelete, obj: DeletedFinalStateUnknown{Key: key, Obj: previous}},
				notification{kind: notifyAdd, obj: obj})
		case previous.ResourceVersion() != obj.ResourceVersion():
			notifications = append(notifications, notification{kind: notifyUpdate, old: previous, obj: obj})
		}
	}
	var gone []string
	for key := range old {
		if _, ok := snapshot[key]; !ok {
			gone = append(gone, key)
		}
	}
	sort.Strings(gone)
	for _, key := range gone {
		notifications = append(notifications,
			notification{kind: notifyDelete, obj: DeletedFinalStateUnknown{Key: key, Obj: old[key]}})
	}
	if err := r.store.replace(snapshot); err != nil {
		r.indexErr = err
	}
	r.synced = true
	r.snapshots++
	return notifications
}

// What to do after a stream ended.
type streamAction string

const (
	ActionRetry      streamAction = "retry"
	ActionResnapshot streamAction = "resnapshot"
	ActionFatal      streamAction = "fatal"
)

var fatalCodes = map[codes.Code]bool{
	codes.InvalidArgument: true, codes.NotFound: true, codes.PermissionDenied: true,
	codes.Unauthenticated: true, codes.Unimplemented: true, codes.FailedPrecondition: true,
	codes.AlreadyExists: true,
}

// classifyStreamEnd says what follows a stream that ended with code (codes.OK: it ended
// normally).
func classifyStreamEnd(code codes.Code, message string) streamAction {
	if code == codes.OutOfRange {
		return ActionResnapshot
	}
	if fatalCodes[code] {
		return ActionFatal
	}
	// gRPC's own client-side limit: retrying would receive the same message again.
	if code == codes.ResourceExhausted && strings.Contains(strings.ToLower(message), "received message larger than max") {
		return ActionFatal
	}
	return ActionRetry
}
