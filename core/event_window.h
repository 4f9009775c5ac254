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
// Why a resume is refused is part of the refusal: the window holds a sentence for it (`why`),
// given by whoever last invalidated or reset it, until an expiring event moves `start` on.
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
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/cache_event.h"
#include "core/clock.h"

namespace informerd::core {

// Why the Cache reset the window other than for a relist: the upstream stream had something the
// window cannot order (core/cache.h, "The window after a reset"). Counted per reason.
enum class WindowResetReason {
  kNonNumericVersion,        // a watch event's resource version is not a number
  kVersionWentBackwards,     // a watch event's resource version is older than the cache's
  kUidChangeWithoutVersion,  // a re-creation reported as a change, with no version left for the
                             // deletion between the previous event and it
  kNonNumericListVersion,    // a list's resource version is not a number
};
inline constexpr std::size_t kWindowResetReasonCount = 4;
// "non-numeric-version", "version-went-backwards", "uid-change-without-version",
// "non-numeric-list-version": the metrics' reason label.
const char* WindowResetReasonName(WindowResetReason reason);

class EventWindow {
 public:
  EventWindow(std::size_t max_events, std::chrono::steady_clock::duration max_age);

  // Empties the window; it now covers everything after `start`, and `start` itself unless
  // `start_exclusive`. `why`, when not empty, says why nothing older is covered; refusals quote
  // it until an event expires (the start then moves on for the usual reason).
  void Reset(uint64_t start, bool start_exclusive, std::string why = {});
  // Empties the window and makes it cover nothing until the next Reset: no resume is possible
  // (the cache changed in a way the window cannot replay). `why` completes every refusal's
  // message until then ("too old resource version: X (<why>); ...").
  void Invalidate(std::string why);
  bool valid() const { return valid_; }
  // Marks the versions strictly between `low` and `high` as unservable while the window keeps
  // its events: the cache went from `low` to `high` by a relist that found no difference, so it
  // knows nothing of what happened in between (an object created and deleted there). Whoever
  // holds such a version holds a state the cache never had; resuming from `low` or earlier, or
  // from `high` or later, stays exact. Ignored while invalid or when nothing lies between.
  void AddGap(uint64_t low, uint64_t high);

  // Appends an event newer than (or as new as) the last one. Events are dropped from the front
  // to respect max_events and max_age (measured from `now`). Ignored while invalid.
  void Append(std::shared_ptr<const CacheEvent> event, Clock::TimePoint now);
  // Drops events older than max_age.
  void Expire(Clock::TimePoint now);

  // Calls `visit` for each event with version() > `after`, oldest first. OutOfRange when the
  // window no longer reaches back to `after` (or is invalid), or `after` lies in a gap; the
  // message says what is available. Call Expire first to apply the age limit.
  absl::Status ForEachAfter(
      uint64_t after,
      const std::function<void(const std::shared_ptr<const CacheEvent>&)>& visit) const;

  std::size_t size() const { return events_.size(); }
  uint64_t start() const { return start_; }
  // Counts Reset and Invalidate calls. While it stays the same, the window's events after a
  // version V it covers are every change after V: a paged List reads the state at V by undoing
  // them (Cache::List), and a changed generation tells it that the history was broken since.
  uint64_t generation() const { return generation_; }
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
  // (low, high) ranges from AddGap, oldest first; a gap leaves once the start reaches its high.
  std::vector<std::pair<uint64_t, uint64_t>> gaps_;
  bool valid_ = false;
  uint64_t start_ = 0;
  bool start_exclusive_ = false;
  uint64_t generation_ = 0;
  std::string why_ = "the cache cannot replay events before its first list completes";
};

}  // namespace informerd::core
