#include "core/cache.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

#include "core/resource_version.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

bool SameVersion(const ObjectRecord& a, const ObjectRecord& b) {
  return a.uid == b.uid && a.resource_version == b.resource_version;
}

// What a subscriber with `filter` sees of a change, or nothing (cache_watcher.go,
// convertToWatchEvent): both states match → MODIFIED; only the new one → ADDED; only the old
// one → DELETED; neither → nothing. A deletion has no new state.
std::optional<EventType> DeliveredType(const CacheEvent& event, const ObjectFilter& filter) {
  const bool old_matches = event.prev_object() && filter.Matches(*event.prev_object());
  const bool new_matches =
      event.type() != EventType::kDeleted && event.object() && filter.Matches(*event.object());
  if (new_matches) return old_matches ? EventType::kModified : EventType::kAdded;
  if (old_matches) return EventType::kDeleted;
  return std::nullopt;
}

// A Cache's id: random, so that a list state from another cache (another replica, a restarted
// daemon or informer) is never taken for one of this cache's.
uint64_t RandomCacheId() {
  std::random_device device;
  const uint64_t high = device();
  return (high << 32) ^ static_cast<uint64_t>(device());
}

// Orders objects as the store does: namespace, then name.
struct KeyLess {
  bool operator()(const ObjectRecord* a, const ObjectRecord* b) const {
    const int c = a->namespace_name.compare(b->namespace_name);
    return c != 0 ? c < 0 : a->name.view() < b->name.view();
  }
};

bool AfterKey(const ObjectRecord& record, const ObjectKey& key) {
  const int c = record.namespace_name.compare(key.namespace_name);
  return c != 0 ? c > 0 : record.name.view() > key.name;
}

}  // namespace

std::shared_ptr<Cache> Cache::Create(CacheOptions options, const Clock& clock) {
  return std::make_shared<Cache>(Token{}, std::move(options), clock);
}

Cache::Cache(Token, CacheOptions options, const Clock& clock)
    : extra_field_paths_(options.extra_field_paths),
      id_(RandomCacheId()),
      clock_(clock),
      on_window_reset_(std::move(options.on_window_reset)),
      store_(std::move(options.extra_field_paths)),
      window_(options.window_max_events, options.window_max_age) {}

Cache::~Cache() {
  Wakeups wakeups;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
      if (subscription->End(absl::UnavailableError("the resource is no longer served"))) {
        wakeups.emplace_back(subscription, true);
      }
    }
    subscriptions_.clear();
  }
  Wake(wakeups);
}

void Cache::Wake(Wakeups& wakeups) {
  for (auto& [subscription, last] : wakeups) subscription->Notify(last);
  wakeups.clear();
}

void Cache::Report(const WindowResets& resets) const {
  if (!on_window_reset_) return;
  for (const WindowReset& reset : resets) on_window_reset_(reset);
}

std::shared_ptr<const ObjectRecord> Cache::Own(ObjectRecord record) const {
  // One block for the JSON and its fields (object_record.h); the scanner's records already are.
  record.Compact();
  return std::make_shared<const ObjectRecord>(std::move(record));
}

// ---- Fan-out -------------------------------------------------------------------------------

void Cache::Emit(const std::shared_ptr<const CacheEvent>& event, bool from_relist,
                 Wakeups& wakeups) {
  const Clock::TimePoint now = clock_.Now();
  max_change_version_ = std::max(max_change_version_, event->version());
  if (!from_relist) window_.Append(event, now);
  bool pruned = false;
  for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
    if (event->version() <= subscription->min_version_ && !from_relist) continue;
    const std::optional<EventType> delivered = DeliveredType(*event, subscription->filter());
    if (!delivered) continue;
    switch (subscription->Push(Delivery{*delivered, event}, /*counted=*/true, now)) {
      case Subscription::PushResult::kQueuedIntoEmpty:
        wakeups.emplace_back(subscription, false);
        [[fallthrough]];
      case Subscription::PushResult::kQueued:
        queue_high_water_ = std::max(queue_high_water_, subscription->counted());
        ++events_delivered_;
        if (from_relist) relist_delivered_ = true;
        break;
      case Subscription::PushResult::kFull:
        // Not being read (stall budget) or at the hard limit (subscription.h). Never block the
        // applier or the other subscribers: this one resumes later.
        if (subscription->EndFellBehind()) {
          ++fell_behind_;
          wakeups.emplace_back(subscription, true);
          // Its queue stays for it to read; CheckStalled drops it if it does not. (Without
          // anyone calling CheckStalled, closed ones are forgotten here from time to time.)
          if (fell_behind_unread_.size() >= 64) {
            fell_behind_unread_.erase(
                std::remove_if(fell_behind_unread_.begin(), fell_behind_unread_.end(),
                               [](const std::weak_ptr<Subscription>& weak) {
                                 return weak.expired();
                               }),
                fell_behind_unread_.end());
          }
          fell_behind_unread_.push_back(subscription);
        }
        pruned = true;
        break;
      case Subscription::PushResult::kEnded:
        pruned = true;
        break;
      case Subscription::PushResult::kDropped:
        break;  // only bookmarks are dropped (PushBookmark); Push never returns it
    }
  }
  if (pruned) Prune();
}

void Cache::Prune() {
  subscriptions_.erase(std::remove_if(subscriptions_.begin(), subscriptions_.end(),
                                      [](const std::shared_ptr<Subscription>& subscription) {
                                        std::lock_guard<std::mutex> lock(subscription->mu_);
                                        return subscription->ended_;
                                      }),
                       subscriptions_.end());
}

void Cache::PutObject(const std::shared_ptr<const ObjectRecord>& record) {
  object_bytes_ += record->json.size();
  if (std::shared_ptr<const ObjectRecord> replaced = store_.Put(record, list_stamp_)) {
    object_bytes_ -= replaced->json.size();
  }
}

std::shared_ptr<const ObjectRecord> Cache::RemoveObject(std::string_view namespace_name,
                                                        std::string_view name) {
  std::shared_ptr<const ObjectRecord> removed = store_.Remove(namespace_name, name);
  if (removed) object_bytes_ -= removed->json.size();
  return removed;
}

void Cache::EmitChange(EventType type, const std::string& resource_version, uint64_t version,
                       std::shared_ptr<const ObjectRecord> object,
                       std::shared_ptr<const ObjectRecord> prev, bool from_relist,
                       Wakeups& wakeups) {
  ++events_applied_;
  Emit(std::make_shared<const CacheEvent>(type, resource_version, version, std::move(object),
                                          std::move(prev)),
       from_relist, wakeups);
}

void Cache::EmitBookmark(const std::string& resource_version, uint64_t version, Wakeups& wakeups) {
  std::shared_ptr<const CacheEvent> event;
  for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
    if (!subscription->allow_bookmarks() || version <= subscription->min_version_) continue;
    if (!event) {
      event = std::make_shared<const CacheEvent>(EventType::kBookmark, resource_version, version);
    }
    switch (subscription->PushBookmark(Delivery{EventType::kBookmark, event})) {
      case Subscription::PushResult::kQueuedIntoEmpty:
        wakeups.emplace_back(subscription, false);
        break;
      case Subscription::PushResult::kDropped:
        ++bookmarks_dropped_;
        break;
      case Subscription::PushResult::kQueued:
      case Subscription::PushResult::kFull:
      case Subscription::PushResult::kEnded:
        break;
    }
  }
}

void Cache::MarkRelistDirty(Wakeups& wakeups) {
  if (relist_dirty_) return;
  relist_dirty_ = true;
  relist_dirty_since_ = resource_version_;
  // Waiting to restart after a reset: what was sent before this relist's differences bounds
  // where the relist may restart the window (EndList).
  if (window_reset_) reset_high_before_relist_ = HighestVersionSent();
  window_.Invalidate(
      "the cache cannot replay events right now: it is being relisted from the "
      "apiserver");
  // A subscriber waiting for a version the cache has not reached cannot tell which of the
  // differences it has already seen.
  bool pruned = false;
  for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
    if (subscription->min_version_ <= version_) continue;
    if (subscription->End(absl::OutOfRangeError(fmt::format(
            "resource version {} is ahead of the cache, which is relisting from the apiserver; "
            "subscribe again without a resource version",
            subscription->min_version_)))) {
      wakeups.emplace_back(subscription, true);
    }
    pruned = true;
  }
  if (pruned) Prune();
}

// ---- Window resets ------------------------------------------------------------------------

uint64_t Cache::HighestVersionSent() const { return std::max(version_, max_change_version_); }

void Cache::ResetWindow(WindowResetReason reason, const std::string& what, WindowResets& resets) {
  // Already waiting to restart: it stays so (this change's versions are not above the highest
  // sent, or it would have restarted first), and the first reset's message and count stand.
  if (window_reset_) {
    InvalidateForReset();
    return;
  }
  window_reset_ =
      fmt::format("the replay window was reset at resource version {} because {}", version_, what);
  InvalidateForReset();
  ++window_resets_[static_cast<std::size_t>(reason)];
  resets.push_back(WindowReset{reason, *window_reset_});
}

void Cache::InvalidateForReset() {
  window_.Invalidate(fmt::format(
      "{}; it serves resumes again from the next event or bookmark with a newer resource version",
      *window_reset_));
}

void Cache::MaybeRestartWindow(uint64_t version) {
  // See "The window after a reset" in cache.h for why this is sound. Not during a relist: its
  // EndList restarts the window.
  if (!window_reset_ || relisting_ || relist_dirty_) return;
  const uint64_t high = HighestVersionSent();
  if (version <= high) return;
  window_.Reset(high, /*start_exclusive=*/true, *window_reset_);
  window_reset_.reset();
}

// ---- ReflectorSink -------------------------------------------------------------------------

void Cache::BeginListLocked() {
  relisting_ = true;
  ++list_stamp_;
}

void Cache::BeginList() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  BeginListLocked();
}

void Cache::ListItems(std::vector<ObjectRecord> items, const std::string& list_resource_version) {
  Wakeups wakeups;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (!relisting_) BeginListLocked();
    const absl::StatusOr<uint64_t> list_version =
        list_resource_version.empty() ? absl::StatusOr<uint64_t>(absl::InvalidArgumentError(""))
                                      : ParseResourceVersion(list_resource_version);
    for (ObjectRecord& item : items) {
      std::shared_ptr<const ObjectRecord> record = Own(std::move(item));
      const std::shared_ptr<const ObjectRecord> prev =
          store_.Get(record->namespace_name, record->name);
      if (prev && SameVersion(*prev, *record)) {
        store_.Stamp(record->namespace_name, record->name, list_stamp_);
        continue;
      }
      MarkRelistDirty(wakeups);
      // The list's version when known; otherwise the object's own (see cache.h).
      std::string resource_version = list_resource_version;
      uint64_t version = list_version.ok() ? *list_version : 0;
      if (!list_version.ok()) {
        resource_version = record->resource_version;
        const absl::StatusOr<uint64_t> own = ParseResourceVersion(resource_version);
        version = own.ok() ? *own : 0;
      }
      if (prev && prev->uid != record->uid) {
        // Deleted and recreated while we were not watching: DELETED then ADDED, never MODIFIED
        // (docs/kubernetes-semantics.md, "Relist = Replace").
        RemoveObject(prev->namespace_name, prev->name);
        EmitChange(EventType::kDeleted, resource_version, version, prev, prev, true, wakeups);
        PutObject(record);
        EmitChange(EventType::kAdded, resource_version, version, std::move(record), nullptr, true,
                   wakeups);
      } else {
        PutObject(record);
        const EventType type = prev ? EventType::kModified : EventType::kAdded;
        EmitChange(type, resource_version, version, std::move(record), prev, true, wakeups);
      }
    }
  }
  Wake(wakeups);
}

void Cache::EndList(const std::string& resource_version) {
  Wakeups wakeups;
  WindowResets resets;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    const absl::StatusOr<uint64_t> list_version = ParseResourceVersion(resource_version);
    const uint64_t version = list_version.ok() ? *list_version : version_;
    // Without a list in progress (no BeginList, or it was aborted) nothing was delivered that
    // could tell which objects are gone: delete nothing.
    std::vector<std::shared_ptr<const ObjectRecord>> gone;
    if (relisting_) gone = store_.RemoveUnstamped(list_stamp_);
    for (std::shared_ptr<const ObjectRecord>& object : gone) {
      object_bytes_ -= object->json.size();
      MarkRelistDirty(wakeups);
      std::shared_ptr<const ObjectRecord> last = object;
      EmitChange(EventType::kDeleted, resource_version, version, std::move(object), std::move(last),
                 true, wakeups);
    }
    gone.clear();
    relisting_ = false;
    if (!list_version.ok()) {
      // The apiserver's versions are numbers; without one the window cannot be anchored. After
      // a relist that changed the cache this is a reset of its own, whatever was pending.
      if (relist_dirty_) window_reset_.reset();
      ResetWindow(WindowResetReason::kNonNumericListVersion,
                  fmt::format("the list's resource version {:?} is not a number", resource_version),
                  resets);
    } else if (window_reset_ &&
               version <= (relist_dirty_ ? reset_high_before_relist_ : HighestVersionSent())) {
      // Waiting to restart after a reset, and the list is no newer than what was sent before
      // it (before its differences, if it had any): its version may be one a subscriber that
      // missed the unorderable change holds. Keep waiting (cache.h, "The window after a reset").
      InvalidateForReset();
    } else if (relist_dirty_ || !window_.valid()) {
      window_.Reset(version, /*start_exclusive=*/relist_delivered_);
      window_reset_.reset();
    } else if (version > version_) {
      // Nothing changed, so the window's events are still exactly what happened up to the
      // cache's version; between it and the list's, the cache knows nothing (AddGap).
      window_.AddGap(version_, version);
    }
    if (list_version.ok() && !relist_dirty_ && version > version_) {
      // A subscriber waiting for a version between the two holds a state the cache never had
      // (an object created and deleted there) and the list cannot tell it what changed.
      bool pruned = false;
      for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
        if (subscription->min_version_ <= version_ || subscription->min_version_ >= version) {
          continue;
        }
        if (subscription->End(absl::OutOfRangeError(fmt::format(
                "resource version {} is ahead of the cache, which relisted from the apiserver "
                "from {} to {} and cannot tell what changed in between; subscribe again without "
                "a resource version",
                subscription->min_version_, version_, version)))) {
          wakeups.emplace_back(subscription, true);
        }
        pruned = true;
      }
      if (pruned) Prune();
    }
    if (list_version.ok()) version_ = version;
    resource_version_ = resource_version;
    relist_dirty_ = false;
    relist_dirty_since_.clear();
    relist_delivered_ = false;
    reset_high_before_relist_ = 0;
    synced_ = true;
    unsynced_reason_.clear();
    std::shared_ptr<const CacheEvent> synced_event;
    for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
      if (!subscription->awaiting_synced_) continue;
      subscription->awaiting_synced_ = false;
      if (!synced_event) {
        synced_event =
            std::make_shared<const CacheEvent>(EventType::kSynced, resource_version_, version_);
      }
      if (subscription->Push(Delivery{EventType::kSynced, synced_event}, /*counted=*/false,
                             clock_.Now()) == Subscription::PushResult::kQueuedIntoEmpty) {
        wakeups.emplace_back(subscription, false);
      }
    }
  }
  Wake(wakeups);
  Report(resets);
}

void Cache::AbortList() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  // What the abandoned list applied stays: those are real, newer states (reflector_sink.h).
  relisting_ = false;
}

void Cache::MarkUnsynced(const std::string& reason) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  synced_ = false;
  unsynced_reason_ = reason;
}

void Cache::ApplyWatchEvent(WatchEvent event) {
  Wakeups wakeups;
  WindowResets resets;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    const std::string_view resource_version = event.type == WatchEventType::kBookmark
                                                  ? std::string_view(event.resource_version)
                                                  : event.object.resource_version.view();
    const absl::StatusOr<uint64_t> parsed = ParseResourceVersion(resource_version);
    const bool ordered = parsed.ok() && *parsed >= version_;
    if (parsed.ok() && event.type != WatchEventType::kError) MaybeRestartWindow(*parsed);
    if (event.type == WatchEventType::kBookmark) {
      // A bookmark only moves the resource version forward; it changes no object
      // (docs/kubernetes-semantics.md, "Bookmarks").
      if (ordered) {
        version_ = *parsed;
        resource_version_ = resource_version;
        EmitBookmark(resource_version_, version_, wakeups);
      }
    } else if (event.type != WatchEventType::kError) {
      if (!parsed.ok()) {
        ResetWindow(WindowResetReason::kNonNumericVersion,
                    fmt::format("a watch event's resource version {:?} is not a number",
                                std::string(resource_version)),
                    resets);
      } else if (!ordered) {
        ResetWindow(WindowResetReason::kVersionWentBackwards,
                    fmt::format("a watch event's resource version {} is older than the cache's, {}",
                                *parsed, version_),
                    resets);
      }
      const uint64_t version = ordered ? *parsed : version_;
      std::shared_ptr<const ObjectRecord> record = Own(std::move(event.object));
      // The event's own copy of the version string: `resource_version` points into the record.
      const std::string event_version(record->resource_version);
      if (event.type == WatchEventType::kDeleted) {
        std::shared_ptr<const ObjectRecord> prev =
            RemoveObject(record->namespace_name, record->name);
        // Subscribers matched the cached state; they receive the deleted object as the
        // apiserver sent it (the last state, carrying the deletion's version).
        if (prev) {
          EmitChange(EventType::kDeleted, event_version, version, std::move(record),
                     std::move(prev), false, wakeups);
        }
      } else {
        std::shared_ptr<const ObjectRecord> prev = store_.Get(record->namespace_name, record->name);
        if (prev && prev->uid != record->uid) {
          // Deleted and re-created, and the watch reported only the new object: report both
          // halves. The deletion had a version of its own, after the previous event and before
          // this one; giving it `version - 1` keeps the two halves distinct resume points (a
          // subscriber cut off between them resumes after the DELETED and still gets the
          // ADDED). Without room for it, the stream is not one the window can order.
          std::string deleted_version = event_version;
          uint64_t deleted_number = version;
          if (ordered && *parsed >= version_ + 2) {
            deleted_number = *parsed - 1;
            deleted_version = FormatResourceVersion(deleted_number);
          } else {
            ResetWindow(
                WindowResetReason::kUidChangeWithoutVersion,
                fmt::format("{}{}{} was re-created (its UID changed) at resource version "
                            "{}, which leaves no version for its deletion after {}",
                            record->namespace_name, record->namespace_name.empty() ? "" : "/",
                            record->name, event_version, version_),
                resets);
          }
          RemoveObject(prev->namespace_name, prev->name);
          EmitChange(EventType::kDeleted, deleted_version, deleted_number, prev, prev, false,
                     wakeups);
          prev.reset();
        }
        if (!prev || !SameVersion(*prev, *record)) {
          PutObject(record);
          // Decided before the call: arguments are evaluated in no set order.
          const EventType type = prev ? EventType::kModified : EventType::kAdded;
          EmitChange(type, event_version, version, std::move(record), std::move(prev), false,
                     wakeups);
        }
      }
      if (ordered) {
        version_ = *parsed;
        resource_version_ = event_version;
      }
    }
  }
  Wake(wakeups);
  Report(resets);
}

// ---- Readers and subscribers ---------------------------------------------------------------

absl::StatusOr<std::shared_ptr<Subscription>> Cache::Subscribe(SubscribeOptions options) {
  if (options.queue_capacity == 0) {
    return absl::InvalidArgumentError("queue capacity must be at least 1");
  }
  if (options.stall_budget < std::chrono::steady_clock::duration::zero() ||
      options.head_start_stall_budget < std::chrono::steady_clock::duration::zero()) {
    return absl::InvalidArgumentError("the stall budget must not be negative");
  }
  absl::StatusOr<ObjectFilter> filter =
      ObjectFilter::Create(std::move(options.namespace_name), std::move(options.label_selector),
                           options.field_selector, extra_field_paths_);
  if (!filter.ok()) return filter.status();
  // "0" is "any recent state", which a snapshot of the cache is (the cacher serves it the same
  // way); "" asks for the most recent, which is also the cache.
  const bool snapshot = options.resource_version.empty() || options.resource_version == "0";
  uint64_t from = 0;
  if (!snapshot) {
    absl::StatusOr<uint64_t> parsed = ParseResourceVersion(options.resource_version);
    if (!parsed.ok()) return parsed.status();
    from = *parsed;
  }

  std::shared_ptr<Subscription> subscription;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (shut_down_) return shutdown_status_;
    std::vector<std::shared_ptr<const ObjectRecord>> objects;
    std::vector<Delivery> replay;
    uint64_t min_version = 0;
    if (snapshot) {
      objects = store_.List(*filter);
    } else {
      window_.Expire(clock_.Now());
      const auto collect = [&](const std::shared_ptr<const CacheEvent>& event) {
        if (const std::optional<EventType> delivered = DeliveredType(*event, *filter)) {
          replay.push_back(Delivery{*delivered, event});
        }
      };
      if (window_.valid() && from > version_) {
        // Ahead of the cache: wait for it by skipping everything up to `from`.
        min_version = from;
      } else if (absl::Status status = window_.ForEachAfter(from, collect); !status.ok()) {
        return status;
      }
    }
    subscription = std::make_shared<Subscription>(
        Subscription::Token(), weak_from_this(), next_subscription_id_++, std::move(*filter),
        options.allow_bookmarks, options.queue_capacity, options.stall_budget,
        options.head_start_stall_budget, std::move(options.on_ready), std::move(objects));
    subscription->min_version_ = min_version;
    if (snapshot) {
      if (Complete()) {
        subscription->Push(
            Delivery{EventType::kSynced, std::make_shared<const CacheEvent>(
                                             EventType::kSynced, resource_version_, version_)},
            /*counted=*/false, clock_.Now());
      } else {
        // The cache does not hold one consistent state yet: SYNCED comes at the next EndList.
        subscription->awaiting_synced_ = true;
      }
    } else {
      {
        std::lock_guard<std::mutex> subscription_lock(subscription->mu_);
        subscription->resume_from_ = options.resource_version;
        subscription->popped_resume_from_ = options.resource_version;
      }
      const Clock::TimePoint now = clock_.Now();
      for (Delivery& delivery : replay) {
        subscription->Push(std::move(delivery), /*counted=*/false, now);
      }
    }
    subscriptions_.push_back(subscription);
  }
  return subscription;
}

void Cache::Unregister(const Subscription& subscription) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  subscriptions_.erase(std::remove_if(subscriptions_.begin(), subscriptions_.end(),
                                      [&](const std::shared_ptr<Subscription>& each) {
                                        return each.get() == &subscription;
                                      }),
                       subscriptions_.end());
}

absl::StatusOr<ListResult> Cache::List(std::string namespace_name, LabelSelector label_selector,
                                       const FieldSelector& field_selector,
                                       const ListChunk& page) const {
  absl::StatusOr<ObjectFilter> filter = ObjectFilter::Create(
      std::move(namespace_name), std::move(label_selector), field_selector, extra_field_paths_);
  if (!filter.ok()) return filter.status();
  // One more than the limit tells whether more follow.
  const std::size_t max = page.limit == 0 ? 0 : page.limit + 1;
  ListResult result;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (page.from) {
      if (absl::Status read = ReadHistory(*filter, *page.from, max, result.items); !read.ok()) {
        return read;
      }
      result.state = page.from->state;
      result.resource_version = FormatResourceVersion(result.state.version);
      result.synced = true;
    } else {
      result.items = store_.List(*filter, nullptr, max);
      result.state = ListState{id_, window_.generation(), version_};
      result.resource_version = resource_version_;
      result.synced = Complete();
      result.unsynced_reason = IncompleteReason();
    }
  }
  if (max != 0 && result.items.size() >= max) {
    result.items.resize(page.limit);
    result.more = true;
  }
  return result;
}

absl::Status Cache::ReadHistory(const ObjectFilter& filter, const ListCursor& cursor,
                                std::size_t max,
                                std::vector<std::shared_ptr<const ObjectRecord>>& items) const {
  const ListState& state = cursor.state;
  const auto gone = [&](std::string_view why) {
    return absl::OutOfRangeError(
        fmt::format("continue: the list's state at resource version {} is no longer available "
                    "({}); re-list from the start, without continue",
                    state.version, why));
  };
  if (state.cache_id != id_) {
    return gone(
        "the list was started on another cache: another informerd replica, or before informerd "
        "or the resource's informer restarted");
  }
  if (state.generation != window_.generation()) {
    return gone(
        "the cache has since been relisted from the apiserver, or its history of changes was "
        "reset");
  }
  // The objects changed since the list's version, after the cursor: each one's state at that
  // version, the one before its first change since (nullptr: it did not exist yet). Keyed by
  // the records the window holds, which live while the lock is held.
  std::map<const ObjectRecord*, std::shared_ptr<const ObjectRecord>, KeyLess> before;
  const absl::Status covered =
      window_.ForEachAfter(state.version, [&](const std::shared_ptr<const CacheEvent>& event) {
        const ObjectRecord* key =
            event->object() != nullptr ? event->object().get() : event->prev_object().get();
        if (key == nullptr || !AfterKey(*key, cursor.after)) return;
        before.emplace(key, event->prev_object());  // the first change wins
      });
  if (!covered.ok()) {
    return gone(fmt::format(
        "the resource has changed more since than informerd's replay window holds; it reaches "
        "back to resource version {}",
        window_.start()));
  }
  // The objects untouched since are as they are now. Fetch enough that dropping the changed
  // ones still leaves `max`.
  const std::vector<std::shared_ptr<const ObjectRecord>> current =
      store_.List(filter, &cursor.after, max == 0 ? 0 : max + before.size());
  auto old = before.begin();
  const auto next_old = [&]() -> const std::shared_ptr<const ObjectRecord>* {
    for (; old != before.end(); ++old) {
      if (old->second != nullptr && filter.Matches(*old->second)) return &old->second;
    }
    return nullptr;
  };
  const auto full = [&] { return max != 0 && items.size() >= max; };
  for (const std::shared_ptr<const ObjectRecord>& now : current) {
    if (full()) break;
    if (before.count(now.get()) != 0) continue;  // changed since: its old state is in `before`
    for (const std::shared_ptr<const ObjectRecord>* then = next_old();
         then != nullptr && KeyLess()(then->get(), now.get()) && !full(); then = next_old()) {
      items.push_back(*then);
      ++old;
    }
    if (!full()) items.push_back(now);
  }
  for (const std::shared_ptr<const ObjectRecord>* then = next_old(); then != nullptr && !full();
       then = next_old()) {
    items.push_back(*then);
    ++old;
  }
  return absl::OkStatus();
}

GetResult Cache::Get(std::string_view namespace_name, std::string_view name) const {
  GetResult result;
  std::shared_lock<std::shared_mutex> lock(mu_);
  result.object = store_.Get(namespace_name, name);
  result.resource_version = resource_version_;
  result.synced = Complete();
  result.unsynced_reason = IncompleteReason();
  return result;
}

std::string Cache::IncompleteReason() const {
  if (!synced_) return unsynced_reason_;
  if (relist_dirty_) {
    return fmt::format("a relist is replacing the cached objects (since resource version {})",
                       relist_dirty_since_);
  }
  return "";
}

CacheStats Cache::Stats() const {
  CacheStats stats;
  std::shared_lock<std::shared_mutex> lock(mu_);
  stats.object_count = store_.size();
  stats.subscriber_count = subscriptions_.size();
  stats.resource_version = resource_version_;
  stats.synced = Complete();
  stats.unsynced_reason = IncompleteReason();
  stats.relisting = relisting_ || relist_dirty_;
  if (shut_down_) stats.shut_down = shutdown_status_;
  stats.events_applied = events_applied_;
  stats.subscribers_fell_behind = fell_behind_;
  stats.queue_high_water = queue_high_water_;
  stats.bookmarks_dropped = bookmarks_dropped_;
  stats.window_events = window_.size();
  stats.window_resets = window_resets_;
  stats.events_delivered = events_delivered_;
  stats.object_bytes = object_bytes_;
  return stats;
}

void Cache::Shutdown(const absl::Status& status) {
  Wakeups wakeups;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    shut_down_ = true;
    shutdown_status_ = status;
    for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
      if (subscription->End(status)) wakeups.emplace_back(subscription, true);
    }
    subscriptions_.clear();
  }
  Wake(wakeups);
}

bool Cache::CheckStalled() {
  const Clock::TimePoint now = clock_.Now();
  Wakeups wakeups;
  // Destroyed last, after the locks and the wake-ups.
  std::vector<Subscription::Dropped> dropped;
  bool none_left = false;
  bool unread = false;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
      Subscription::Dropped taken;
      if (subscription->CheckIfStalled(now, taken) == Subscription::StallCheck::kDropped) {
        wakeups.emplace_back(subscription, true);
        dropped.push_back(std::move(taken));
      }
    }
    none_left = subscriptions_.size() == wakeups.size();
    unread = !fell_behind_unread_.empty();
  }
  bool any_left = true;
  if (!wakeups.empty() || none_left || unread) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    fell_behind_ += wakeups.size();
    if (!wakeups.empty()) Prune();
    // Those that fell behind (Push) with items still waiting: dropped too once not read from.
    fell_behind_unread_.erase(
        std::remove_if(fell_behind_unread_.begin(), fell_behind_unread_.end(),
                       [&](const std::weak_ptr<Subscription>& weak) {
                         const std::shared_ptr<Subscription> subscription = weak.lock();
                         if (!subscription) return true;
                         Subscription::Dropped taken;
                         const Subscription::StallCheck check =
                             subscription->CheckIfStalled(now, taken);
                         if (check == Subscription::StallCheck::kNotStalled) return false;
                         dropped.push_back(std::move(taken));
                         return true;
                       }),
        fell_behind_unread_.end());
    if (subscriptions_.empty() && fell_behind_unread_.empty()) {
      stall_checks_running_.store(false);
      any_left = false;
    }
  }
  Wake(wakeups);
  return any_left;
}

bool Cache::StartStallChecks() { return !stall_checks_running_.exchange(true); }

uint64_t Cache::store_entries_examined() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return store_.entries_examined();
}

}  // namespace informerd::core
