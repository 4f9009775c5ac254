// The reference model behind cache_model_test: what the apiserver held at every resource version
// (Upstream), and an executable statement of core::Cache's serving rules (ExpectedCache) that says,
// for any sequence of ReflectorSink calls and reader calls, what each subscriber must receive,
// which resumes must be refused, and what List, Get and Stats must answer.
//
// ExpectedCache is written from the rules in core/cache.h, core/subscription.h and
// core/event_window.h (the contract comments), not from the implementation: a test that compares
// the two item by item finds any place where the code and its stated rules part. It models what
// the driver in cache_model_test.cc produces (numeric, ordered resource versions; a re-creation
// reported without its deletion only when the deletion took the version just before), not the
// window resets for streams the window cannot order.
//
// A relist that completes at a version L above the cache's version V without finding any
// difference leaves the cache's objects as they were at V, which are also the apiserver's at L;
// what happened between the two is unknown to the cache (an object created and deleted there).
// Two rules of core/cache.h are about it:
//  * a subscriber still waiting for a version X with V < X < L is ended with OUT_OF_RANGE (as
//    when a relist's differences start);
//  * the window, kept as it was, does not serve resumes from any X with V < X < L (X <= V and
//    X >= L are served as before).
// Without them a client that holds such an X (from a replica that is ahead) keeps an object
// deleted upstream for ever (ExpectedCache::EndList). The driver makes such histories on purpose
// (a short-lived object the watch misses, and replica clients from the versions it lived at).
//
// Upstream is the independent half: the state at each version as the simulated apiserver made it,
// against which every client's replayed stream and every synced List/Get is checked, so that a
// rule the model and the cache would share by mistake is still caught.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/cache_event.h"
#include "core/clock.h"
#include "core/object_record.h"
#include "core/watch_event_decoder.h"

namespace informerd::core::model {

// namespace, name.
using Key = std::pair<std::string, std::string>;
std::string KeyText(const Key& key);

// One state of one object, as the simulated apiserver wrote it. Its JSON spells every field, the
// UID and the resource version included, so two states differ exactly when their JSON does.
struct Obj {
  Key key;
  std::string uid;
  uint64_t resource_version = 0;
  std::string app;                  // label app
  std::optional<std::string> tier;  // label tier
  bool canary = false;              // label canary=""
  std::optional<std::string> node;  // spec.nodeName, the one indexed extra field
  std::string json;

  // Fills `json` from the fields.
  void Render();
  ObjectRecord ToRecord() const;
};
using ObjPtr = std::shared_ptr<const Obj>;

// The extra field paths the cache is created with (ObjectRecord::extra_fields order).
const std::vector<std::string>& ExtraFieldPaths();

// A subscriber's or reader's choice of objects: the strings the cache parses, and the same
// selection written as a plain predicate (so the model does not use the product's selector code).
struct Selection {
  std::string namespace_name;
  std::string labels;
  std::string fields;
  bool (*matches)(const Obj& object);
};
const std::vector<Selection>& Selections();
std::string Describe(const Selection& selection);

// ---- Upstream ------------------------------------------------------------------------------

// The apiserver's history: for each key, the states it went through with the version of each
// change (nullptr: deleted). StateAt answers for any version not older than the pruning floor.
class Upstream {
 public:
  // The object at `key` after every change up to `version` (nullptr: absent).
  ObjPtr At(const Key& key, uint64_t version) const;
  ObjPtr Current(const Key& key) const;
  // Records a change at `version` (above every version recorded so far).
  void Record(const Key& key, uint64_t version, ObjPtr state);
  // Every object present at `version`, in key order.
  std::map<Key, ObjPtr> StateAt(uint64_t version) const;
  std::map<Key, ObjPtr> CurrentState() const { return StateAt(UINT64_MAX); }
  // Forgets what no check can ask about any more: versions below `floor`.
  void Prune(uint64_t floor);
  uint64_t floor() const { return floor_; }
  std::size_t entries() const;

 private:
  std::map<Key, std::vector<std::pair<uint64_t, ObjPtr>>> history_;
  uint64_t floor_ = 0;
};

// ---- ExpectedCache -------------------------------------------------------------------------

// Where an expected delivery comes from, which says what a client may conclude from it.
enum class Origin {
  kSnapshot,  // an initial snapshot item (ADDED at the object's own version)
  kReplay,    // a window event replayed to a resumed subscriber
  kLive,      // a live watch event (or half of a re-creation)
  kRelist,    // a difference a relist found
  kSynced,    // the SYNCED marker
  kBookmark,  // a bookmark
};
const char* OriginName(Origin origin);

// One item a subscriber must receive.
struct ExpectedDelivery {
  EventType type = EventType::kAdded;
  std::string resource_version;
  uint64_t version = 0;  // the event's; the object's own for snapshot items
  ObjPtr object;         // what the delivery carries; nullptr for markers
  Origin origin = Origin::kLive;
  bool counted = false;  // counts against the live queue's bounds
};
std::string Describe(const ExpectedDelivery& delivery);

struct ExpectedStats {
  std::size_t object_count = 0;
  std::size_t subscriber_count = 0;
  std::string resource_version;
  bool synced = false;
  std::string unsynced_reason;
  bool relisting = false;
  uint64_t events_applied = 0;
  uint64_t subscribers_fell_behind = 0;
  std::size_t queue_high_water = 0;
  uint64_t bookmarks_dropped = 0;
  uint64_t events_delivered = 0;
  std::size_t object_bytes = 0;
  std::size_t window_events = 0;
};

struct ExpectedRead {
  std::vector<ObjPtr> items;  // List: key order; Get: zero or one
  std::string resource_version;
  bool synced = false;
  std::string unsynced_reason;
};

class ExpectedCache {
 public:
  struct Options {
    std::size_t window_max_events = 10000;
    std::chrono::steady_clock::duration window_max_age = std::chrono::seconds(75);
  };
  ExpectedCache(Options options, const Clock& clock);

  // ReflectorSink.
  void BeginList();
  // `list_resource_version` "" for a WatchList stream (the version is learnt at EndList).
  void ListItems(const std::vector<ObjPtr>& items, const std::string& list_resource_version);
  void EndList(const std::string& resource_version);
  void AbortList();
  void ApplyWatchEvent(WatchEventType type, const ObjPtr& object);
  void ApplyBookmark(uint64_t version);
  void MarkUnsynced(const std::string& reason);

  struct SubscribeRequest {
    const Selection* selection = nullptr;
    std::string resource_version;
    bool allow_bookmarks = false;
    std::size_t queue_capacity = 1;
    std::chrono::steady_clock::duration stall_budget{};
    std::chrono::steady_clock::duration head_start_stall_budget{};
  };
  // A subscription id, or the status code the cache must refuse with (OUT_OF_RANGE).
  struct SubscribeOutcome {
    std::optional<uint64_t> id;
    absl::StatusCode refused = absl::StatusCode::kOk;
  };
  SubscribeOutcome Subscribe(const SubscribeRequest& request);

  // The consumer's side of subscription `id`.
  std::optional<ExpectedDelivery> Pop(uint64_t id);
  std::size_t Pending(uint64_t id) const;
  // As Subscription::FinalStatus: the end's code once everything queued has been popped.
  std::optional<absl::StatusCode> FinalStatus(uint64_t id) const;
  // The resume point a RESOURCE_EXHAUSTED message names ("" when it says to start over).
  std::string FellBehindResumeFrom(uint64_t id) const;
  void Close(uint64_t id);
  // Cache::CheckStalled (subscription.h, "Not reading at all"): the ids of the subscriptions it
  // must end now, in registration order.
  std::vector<uint64_t> CheckStalled();
  // Live events queued so far only because a head start raised the limit (for the driver's
  // totals: the run exercised the rule).
  uint64_t raised_pushes() const { return raised_pushes_; }
  // Queues of subscribers that fell behind as an event was pushed, dropped by CheckStalled.
  uint64_t unread_dropped() const { return unread_dropped_; }
  // Subscription::EndIfAwaitingSynced / EndIfAheadOfCache: whether it must end it.
  bool EndIfAwaitingSynced(uint64_t id, absl::StatusCode code);
  bool EndIfAheadOfCache(uint64_t id, absl::StatusCode code);
  // Subscribed from a version the cache has not reached, and still waiting for it.
  bool AheadOfCache(uint64_t id) const;
  uint64_t MinVersion(uint64_t id) const;
  // Whether the subscription was from a resource version (not a snapshot).
  bool FromVersion(uint64_t id) const;
  void Forget(uint64_t id);

  ExpectedRead List(const Selection& selection) const;
  ExpectedRead Get(const Key& key) const;
  ExpectedStats Stats() const;

  const std::map<Key, ObjPtr>& store() const { return store_; }
  uint64_t version() const { return version_; }
  bool complete() const { return synced_ && !relist_dirty_; }
  bool relisting() const { return relisting_; }
  bool window_valid() const { return window_valid_; }
  uint64_t window_start() const { return window_start_; }
  // Whether resuming from `version` would be served now (window rules), ahead included.
  bool ResumeServable(uint64_t version) const;
  // Applies the window's age limit, as Subscribe does (for a driver that does not subscribe here).
  void ExpireWindow() { WindowExpire(); }

 private:
  struct Change {
    EventType type;
    std::string resource_version;
    uint64_t version;
    ObjPtr object;
    ObjPtr prev;
  };
  using ChangePtr = std::shared_ptr<const Change>;
  struct WindowItem {
    ChangePtr change;
    Clock::TimePoint added;
  };
  enum class PushResult { kQueued, kDropped, kFull, kEnded };
  struct Sub {
    const Selection* selection = nullptr;
    bool allow_bookmarks = false;
    std::size_t capacity = 1;
    std::size_t hard_limit = 4;
    std::chrono::steady_clock::duration stall_budget{};
    // At least stall_budget; the budget while uncounted (head-start) items wait.
    std::chrono::steady_clock::duration head_start_stall_budget{};
    uint64_t min_version = 0;
    bool from_version = false;
    bool awaiting_synced = false;
    std::deque<ExpectedDelivery> queue;
    std::size_t counted = 0;
    uint64_t pops = 0;
    uint64_t pops_at_stall_since = 0;
    std::optional<Clock::TimePoint> stall_since;
    // Head-start items popped: they raise the live limit (subscription.h, "The head start").
    std::size_t head_start_popped = 0;
    // The timer's check: the check that first found items waiting with no pop since.
    std::optional<Clock::TimePoint> check_since;
    uint64_t pops_at_check_since = 0;
    // resume_from's rule applied to what has been popped.
    std::string popped_resume_from;
    bool ended = false;
    bool closed = false;
    absl::StatusCode code = absl::StatusCode::kOk;
    std::string resume_from;
    std::string fell_behind_resume_from;
  };

  static std::optional<EventType> DeliveredType(const Change& change, const Selection& selection);
  static ObjPtr ObjectFor(const Change& change, EventType delivered);
  // The stall rules' budget for `sub` now (subscription.h, "Not reading at all").
  static std::chrono::steady_clock::duration StallBudget(const Sub& sub);
  PushResult Push(Sub& sub, ExpectedDelivery delivery);
  PushResult PushBookmark(Sub& sub, ExpectedDelivery delivery);
  void Emit(const ChangePtr& change, bool from_relist);
  void EmitChange(EventType type, const std::string& resource_version, uint64_t version,
                  ObjPtr object, ObjPtr prev, bool from_relist);
  void MarkRelistDirty();
  void End(Sub& sub, absl::StatusCode code);
  void WindowAppend(const ChangePtr& change);
  void WindowExpire();
  void WindowDropFront();
  void WindowReset(uint64_t start, bool exclusive);
  void WindowInvalidate();
  // Whether the window serves a resume from `from` (not ahead of the cache).
  bool WindowServes(uint64_t from) const;
  std::string IncompleteReason() const;
  void Put(const ObjPtr& object);
  ObjPtr Remove(const Key& key);

  const Options options_;
  const Clock& clock_;
  std::map<Key, ObjPtr> store_;
  std::map<Key, bool> stamped_;   // keys the list in progress delivered
  std::map<uint64_t, Sub> subs_;  // by id, which is registration order
  uint64_t next_id_ = 1;
  uint64_t version_ = 0;
  std::string resource_version_;
  bool synced_ = false;
  std::string unsynced_reason_ = "the initial list has not completed";
  bool relisting_ = false;
  bool relist_dirty_ = false;
  std::string relist_dirty_since_;
  bool relist_delivered_ = false;
  // The window (event_window.h).
  std::deque<WindowItem> window_;
  bool window_valid_ = false;
  uint64_t window_start_ = 0;
  bool window_start_exclusive_ = false;
  // Versions the window does not serve although they are above its start: (V, L) of each relist
  // that kept the window (above).
  std::vector<std::pair<uint64_t, uint64_t>> window_gaps_;
  ExpectedStats counters_;
  uint64_t raised_pushes_ = 0;
  uint64_t unread_dropped_ = 0;
};

}  // namespace informerd::core::model
