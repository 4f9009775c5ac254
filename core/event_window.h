// EventWindow: the recent events a subscriber can resume from (the cacher's sliding window in
// watch_cache.go). Subscribe with resource_version X replays the window's events with a resource
// version greater than X, then continues live; an X older than what the window still holds is
// "expired", as the apiserver's 410 says (docs/kubernetes-semantics.md, "The replay window").
//
// Bounded by count and by age: an event leaves when more than `max_events` are held or when it is
// older than `max_age`. The cacher sizes its window to keep about 75 s of events (between 100
// and 102,400); informerd keeps at most max_events, and nothing older than max_age, so a window
// never pins memory for objects long gone.
//
// What "covered" means: the window knows every event after `start` (the resource version of the
// last event it dropped, or where it was last reset), so X is servable iff X >= start. A reset
// may make `start` itself unservable (`start_exclusive`): after a relist whose differences went
// out to subscribers with the list's resource version, a subscriber that stopped in the middle of
// them holds that same version, and replaying "after it" would skip the rest (see core/cache.h).
//
// Owned by the Cache and called under its lock only; not synchronized. Time comes from the
// caller (the Cache's injected Clock).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "core/cache_event.h"
#include "core/clock.h"

namespace informerd::core {

class EventWindow {
 public:
  EventWindow(std::size_t max_events, std::chrono::steady_clock::duration max_age);

  // Empties the window; it now covers everything after `start`, and `start` itself unless
  // `start_exclusive`.
  void Reset(uint64_t start, bool start_exclusive);
  // Empties the window and makes it cover nothing until the next Reset: no resume is possible
  // (the cache changed in a way the window cannot replay).
  void Invalidate();
  bool valid() const { return valid_; }

  // Appends an event newer than (or as new as) the last one. Events are dropped from the front
  // to respect max_events and max_age (measured from `now`). Ignored while invalid.
  void Append(std::shared_ptr<const CacheEvent> event, Clock::TimePoint now);
  // Drops events older than max_age.
  void Expire(Clock::TimePoint now);

  // Calls `visit` for each event with version() > `after`, oldest first. OutOfRange when the
  // window no longer reaches back to `after` (or is invalid); the message says what is
  // available. Call Expire first to apply the age limit.
  absl::Status ForEachAfter(
      uint64_t after,
      const std::function<void(const std::shared_ptr<const CacheEvent>&)>& visit) const;

  std::size_t size() const { return events_.size(); }
  uint64_t start() const { return start_; }
  bool start_exclusive() const { return start_exclusive_; }

 private:
  struct Item {
    std::shared_ptr<const CacheEvent> event;
    Clock::TimePoint added;
  };
  void DropFront();

  std::size_t max_events_;
  std::chrono::steady_clock::duration max_age_;
  std::deque<Item> events_;
  bool valid_ = false;
  uint64_t start_ = 0;
  bool start_exclusive_ = false;
};

}  // namespace informerd::core
