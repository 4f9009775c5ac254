// FakeStore: the fake apiserver's storage, an in-memory stand-in for etcd behind the watch cache.
//
// One global revision counter orders every change of every resource (as etcd's revision does);
// each object carries the revision of its last change as metadata.resourceVersion. Per resource
// the store keeps the current objects (ordered by "namespace/name", etcd's key order) and a
// window of recent events; older history is compacted, and a LIST at, a continue token from, or a
// watch resuming from a compacted revision fails as Expired (HTTP 410). A LIST at an older
// revision inside the window is answered by undoing the window's events, so continue tokens give
// consistent pages as etcd's do.
//
// Owned by FakeApiServer. Thread-safe: tests mutate it from their thread while connection
// handlers read it and drain watch subscriptions on the I/O thread. Subscribers are woken through
// a callback invoked with the store's lock held; it must only post work elsewhere.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "test/fakeapi/selectors.h"
#include "test/fakeapi/synthetic_objects.h"

namespace informerd::fakeapi {

// One revision of one object. Immutable and shared between the store, events and responses.
struct StoredObject {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string creation_timestamp;
  std::shared_ptr<const Labels> labels;
  std::uint64_t resource_version = 0;
  // Load mode's send-time stamp of this revision (Unix ns), written into the body's stamp slot
  // when it has one; 0: the stamp as built.
  std::uint64_t sent_unix_nanos = 0;
  std::shared_ptr<const ObjectTemplate> body;

  // "namespace/name" ("/name" when cluster-scoped): the store's ordering key.
  std::string Key() const { return namespace_name + "/" + name; }
  std::string Json() const { return body->Render(resource_version, sent_unix_nanos); }
};
using ObjectPtr = std::shared_ptr<const StoredObject>;

enum class EventType { kAdded, kModified, kDeleted };
const char* EventTypeName(EventType type);

// A change. `object` is the new state (for kDeleted: the last state, with the deletion's revision
// as its resourceVersion); `previous` the state before (null for kAdded).
struct StoreEvent {
  EventType type;
  ObjectPtr object;
  ObjectPtr previous;
  std::uint64_t revision() const { return object->resource_version; }
};
using EventPtr = std::shared_ptr<const StoreEvent>;

class FakeStore {
 public:
  // Produces an object's content given the uid and creationTimestamp it keeps (or gets), and
  // its previous revision (null when created).
  using Builder = std::function<absl::StatusOr<BuiltObject>(
      const std::string& uid, const std::string& creation_timestamp, const StoredObject* previous)>;

  // `history_limit`: events kept per resource for watch resumption and consistent paging.
  FakeStore(std::uint64_t initial_revision, std::size_t history_limit);

  // A resource starts empty, with no history before the current revision.
  void AddResource(const std::string& resource);
  // Drops the objects and history, and ends the resource's watch subscriptions.
  void RemoveResource(const std::string& resource);
  bool HasResource(const std::string& resource) const;

  // Create or update; the uid and creationTimestamp of an existing object are kept.
  // Returns the new revision. NotFound if the resource is not registered.
  absl::StatusOr<std::uint64_t> Upsert(const std::string& resource, const std::string& ns,
                                       const std::string& name, const Builder& build);
  // Delete (if present) and create again with a new uid: DELETED then ADDED.
  absl::StatusOr<std::uint64_t> Recreate(const std::string& resource, const std::string& ns,
                                         const std::string& name, const Builder& build);
  // MODIFIED with identical content and a new resourceVersion (load mode).
  absl::StatusOr<std::uint64_t> Touch(const std::string& resource, const std::string& ns,
                                      const std::string& name);
  // Load mode's writer: `count` MODIFIED events as Touch makes them, for keys[first],
  // keys[first + 1], ... (wrapping around), under one lock, each subscriber woken at most once.
  // `keys` are Key()s; a key whose object is gone is skipped (it still counts). Each new
  // revision gets `sent_unix_nanos` as its send-time stamp (0: keeps the previous one). Returns
  // the number of events made.
  std::size_t TouchKeys(const std::string& resource, const std::vector<std::string>& keys,
                        std::size_t first, std::size_t count, std::uint64_t sent_unix_nanos = 0);
  absl::StatusOr<std::uint64_t> Delete(const std::string& resource, const std::string& ns,
                                       const std::string& name);
  // Everything before the current revision expires. Returns that revision.
  std::uint64_t Compact();
  std::uint64_t Revision() const;

  absl::StatusOr<ObjectPtr> Get(const std::string& resource, const std::string& ns,
                                const std::string& name) const;
  std::size_t ObjectCount(const std::string& resource) const;

  struct ListRequest {
    std::string namespace_name;                // Empty: all namespaces.
    std::optional<std::uint64_t> at_revision;  // Unset: now.
    std::string start_key;                     // Items with Key() >= start_key.
    std::size_t limit = 0;                     // 0: no limit.
    std::function<bool(const StoredObject&)> filter;  // Unset: everything.
  };
  struct ListResult {
    std::vector<ObjectPtr> items;
    std::uint64_t revision = 0;
    std::string last_key;
    bool more = false;  // Keys follow the last item (a continue token is due).
    // With `more` and no filter: how many objects follow, which etcd counts and the apiserver
    // reports as remainingItemCount (only for lists without selectors).
    std::optional<std::uint64_t> remaining;
  };
  // OutOfRange "too old resource version: X (Y)" for a compacted revision; Unavailable for a
  // revision the store has not reached.
  absl::StatusOr<ListResult> List(const std::string& resource, const ListRequest& request) const;

  struct WatchStart {
    std::uint64_t subscription = 0;
    std::vector<EventPtr> initial;  // Snapshot as ADDED events, or the window after the RV.
    std::uint64_t revision = 0;     // The store's revision when the watch started.
  };
  // `after_revision` unset: a snapshot of the current objects, then live events. Set: the events
  // after it (OutOfRange if compacted), then live events. Atomic: no gap, no duplicate.
  absl::StatusOr<WatchStart> Subscribe(const std::string& resource,
                                       std::optional<std::uint64_t> after_revision);
  // `wake` is called (under the store's lock, at most once per Drain) when events are pending.
  void SetWaker(std::uint64_t subscription, std::function<void()> wake);
  struct Drained {
    std::vector<EventPtr> events;
    std::uint64_t revision = 0;  // Every event up to this revision has been delivered.
    bool ended = false;          // The server ended this watch (resource removed, EndWatches).
  };
  Drained Drain(std::uint64_t subscription);
  void Unsubscribe(std::uint64_t subscription);
  // Ends every subscription of `resource` cleanly (an apiserver closing its watches).
  void EndSubscriptions(const std::string& resource);

 private:
  struct ResourceState {
    std::map<std::string, ObjectPtr> objects;
    std::deque<EventPtr> history;
    std::uint64_t compacted = 0;  // Events at or before this revision are gone.
  };
  struct Subscription {
    std::string resource;
    std::deque<EventPtr> pending;
    std::function<void()> wake;
    bool wake_posted = false;
    bool ended = false;
  };

  ResourceState* FindLocked(const std::string& resource);
  const ResourceState* FindLocked(const std::string& resource) const;
  // Appends `event` to the resource's history, compacting the oldest past history_limit_.
  void AppendHistoryLocked(ResourceState& state, EventPtr event);
  // AppendHistoryLocked, then queues the event for the resource's live watchers and wakes them.
  void CommitLocked(const std::string& resource, ResourceState& state, EventPtr event);
  void WakeLocked(Subscription& sub);
  std::string NewUidLocked();

  const std::size_t history_limit_;
  mutable std::mutex mutex_;
  std::uint64_t revision_;
  std::map<std::string, ResourceState> resources_;
  std::map<std::uint64_t, Subscription> subscriptions_;
  std::uint64_t next_subscription_ = 1;
  std::mt19937_64 rng_;
};

}  // namespace informerd::fakeapi
