// CacheEvent: one change (or marker) as the cache hands it to its subscribers, stored once and
// shared by every subscriber's queue and by the replay window; and Delivery, one event as one
// subscriber sees it.
//
// Data flow: the cache (core/cache.*) creates a CacheEvent for each change it applies (a live
// watch event, or the difference a relist finds), appends it to the replay window and pushes a
// Delivery {event, delivered type} onto each interested subscriber's queue (core/subscription.*).
// The RPC layer pops Deliveries on its own threads and serializes them. Serialization happens
// once per (event, delivered type), whatever the number of subscribers, and every subscriber is
// sent the same bytes (the cacher's cachingObject; docs/kubernetes-semantics.md, "Encode
// once"): the event memoizes the bytes its first caller's encoder produced, so core/ needs no
// protobuf.
//
// Immutable after construction except for that memo, which is thread-safe (std::call_once): any
// thread may read an event and call Encoded concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/object_record.h"

namespace informerd::core {

// informerd.v1.Event.Type, minus UNSPECIFIED. An event's own type says what happened upstream;
// a Delivery's type says what one subscriber sees, which differs when a MODIFIED object starts
// or stops matching the subscriber's selectors (then ADDED or DELETED).
enum class EventType : uint8_t { kAdded, kModified, kDeleted, kBookmark, kSynced };
inline constexpr std::size_t kEventTypeCount = 5;

// "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "SYNCED".
const char* EventTypeName(EventType type);

class CacheEvent {
 public:
  // Produces the bytes that go on the wire for `event` as delivered with type `delivered`.
  using Encoder = std::function<std::string(const CacheEvent& event, EventType delivered)>;

  // A change. `object`: the new state for kAdded and kModified, the last known state for
  // kDeleted. `prev_object`: the state before a kModified or kDeleted (what subscribers'
  // selectors matched until now), nullptr for kAdded. `resource_version` is the change's
  // (for kDeleted, the deletion's); `version` its numeric value, which orders the window.
  CacheEvent(EventType type, std::string resource_version, uint64_t version,
             std::shared_ptr<const ObjectRecord> object,
             std::shared_ptr<const ObjectRecord> prev_object);
  // A kBookmark or kSynced marker: a point in resource versions, no object.
  CacheEvent(EventType type, std::string resource_version, uint64_t version);

  CacheEvent(const CacheEvent&) = delete;
  CacheEvent& operator=(const CacheEvent&) = delete;

  EventType type() const { return type_; }
  const std::string& resource_version() const { return resource_version_; }
  uint64_t version() const { return version_; }
  const std::shared_ptr<const ObjectRecord>& object() const { return object_; }
  const std::shared_ptr<const ObjectRecord>& prev_object() const { return prev_object_; }

  // The object a subscriber receives when this event is delivered as `delivered`: for a
  // MODIFIED delivered as DELETED (the object stopped matching), the previous state, which is
  // the one that matched; the apiserver's cacher does the same (cache_watcher.go,
  // convertToWatchEvent: "return a delete event with the previous object content, but with the
  // event's resource version"). Otherwise object(). nullptr for markers.
  const ObjectRecord* ObjectFor(EventType delivered) const;

  // The encoded bytes for `delivered`, computed by `encode` the first time they are asked for
  // and shared afterwards; concurrent callers wait for the first. All callers for one event
  // must pass equivalent encoders (the memo does not look at which one it was given).
  const std::string& Encoded(EventType delivered, const Encoder& encode) const;

 private:
  EventType type_;
  std::string resource_version_;
  uint64_t version_;
  std::shared_ptr<const ObjectRecord> object_;
  std::shared_ptr<const ObjectRecord> prev_object_;
  mutable std::array<std::once_flag, kEventTypeCount> encoded_once_;
  mutable std::array<std::string, kEventTypeCount> encoded_;
};

// One event as one subscriber receives it.
struct Delivery {
  EventType type = EventType::kAdded;
  std::shared_ptr<const CacheEvent> event;

  // nullptr for BOOKMARK and SYNCED.
  const ObjectRecord* object() const { return event->ObjectFor(type); }
  // The event's resource version: what the subscriber resumes from.
  const std::string& resource_version() const { return event->resource_version(); }
  const std::string& Encoded(const CacheEvent::Encoder& encode) const {
    return event->Encoded(type, encode);
  }
};

}  // namespace informerd::core
