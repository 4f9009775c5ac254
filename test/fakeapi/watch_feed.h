// WatchFeed: one watcher's view of a resource: its store subscription, its selectors, and the
// encoding of what it receives as newline-delimited JSON events ({"type":..,"object":..}\n).
//
// A snapshot or the window after the requested RV comes first, then (for WatchList) the BOOKMARK
// with the `k8s.io/initial-events-end` annotation, then live events. Selectors are applied per
// event with the cacher's rules: an object that starts matching arrives as ADDED, one that stops
// matching as DELETED (k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go). Object bytes are
// shared with the store, never copied.
//
// Owned by the connection serving the watch (fake_http_session.cc) and used only on its strand;
// destroying it ends the store subscription.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "test/fakeapi/buffer_chain.h"
#include "test/fakeapi/fake_store.h"
#include "test/fakeapi/k8s_status.h"
#include "test/fakeapi/resource_catalog.h"
#include "test/fakeapi/selectors.h"

namespace informerd::fakeapi {

struct WatchFilter {
  std::string namespace_name;  // Empty: all namespaces.
  std::string name;            // Empty: every object (a watch on one object otherwise).
  LabelSelector labels;
  FieldSelector fields;
  bool Matches(const StoredObject& object) const;
};

class WatchFeed {
 public:
  WatchFeed(FakeStore& store, ResourceType type, FakeStore::WatchStart start, WatchFilter filter,
            bool initial_events_end_bookmark);
  ~WatchFeed();
  WatchFeed(const WatchFeed&) = delete;
  WatchFeed& operator=(const WatchFeed&) = delete;

  // `wake` runs (under the store's lock) when live events are waiting; it must only post.
  void SetWaker(std::function<void()> wake);

  // Appends up to `max_events` events, stopping early once `out` holds `max_bytes`. The
  // initial-events-end bookmark is appended in its place and does not count as an event.
  std::size_t AppendEvents(BufferChain& out, std::size_t max_events, std::size_t max_bytes);
  // Appends a BOOKMARK at the newest revision this watcher is complete up to; false (nothing
  // appended) while events are still waiting to be sent.
  bool AppendBookmarkIfIdle(BufferChain& out);
  // Events (or the initial-events-end bookmark) are waiting in this feed.
  bool has_queued() const { return !queue_.empty(); }
  // The server ended the subscription and every event has been taken.
  bool ended() const { return ended_ && queue_.empty(); }
  // The revision of the last event appended (or the start revision).
  std::uint64_t last_revision() const { return last_revision_; }
  const ResourceType& type() const { return type_; }

 private:
  struct Item {
    EventPtr event;         // Null for the initial-events-end bookmark.
  };
  bool Refill();
  void AppendBookmark(BufferChain& out, std::uint64_t revision, bool initial_events_end) const;

  FakeStore& store_;
  const ResourceType type_;
  const std::uint64_t subscription_;
  const std::uint64_t start_revision_;
  const WatchFilter filter_;
  std::deque<Item> queue_;
  std::uint64_t progress_;  // Every event up to here is in queue_ or already appended.
  std::uint64_t last_revision_;
  bool ended_ = false;
};

// The object's JSON as shared pieces: the stored bytes around copies of its resourceVersion
// and, for a stamped revision, its send-time stamp.
void AppendObjectJson(BufferChain& out, const StoredObject& object,
                      const std::shared_ptr<const void>& owner);

// `{"type":"TYPE","object":OBJECT}\n` as one string (faults and tests).
std::string EncodeEventLine(EventType type, const StoredObject& object);
// `{"type":"ERROR","object":STATUS}\n`.
std::string EncodeErrorEventLine(const ApiStatus& status);
// An event line about a made-up object of `type` in "default", for fault payloads: named
// "fault-payload", or "huge-object" and at least `object_bytes` long when that is non-zero.
std::string SyntheticEventLine(const ResourceType& type, EventType event_type,
                               std::uint64_t revision, std::size_t object_bytes);

}  // namespace informerd::fakeapi
