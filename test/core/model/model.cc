#include "test/core/model/model.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>

#include "core/labels.h"
#include "fmt/format.h"

namespace informerd::core::model {

std::string KeyText(const Key& key) { return key.first + "/" + key.second; }

void Obj::Render() {
  std::string labels = fmt::format("\"app\":\"{}\"", app);
  if (canary) labels += ",\"canary\":\"\"";
  if (tier) labels += fmt::format(",\"tier\":\"{}\"", *tier);
  json = fmt::format(
      R"({{"metadata":{{"namespace":"{}","name":"{}","uid":"{}","resourceVersion":"{}",)"
      R"("labels":{{{}}}}},"spec":{{{}}}}})",
      key.first, key.second, uid, resource_version, labels,
      node ? fmt::format("\"nodeName\":\"{}\"", *node) : std::string());
}

ObjectRecord Obj::ToRecord() const {
  // Sorted by key, as ObjectRecord requires.
  std::vector<LabelSet::View> labels = {{"app", app}};
  if (canary) labels.emplace_back("canary", "");
  if (tier) labels.emplace_back("tier", *tier);
  std::vector<std::optional<std::string_view>> extra = {std::nullopt};
  if (node) extra[0] = std::string_view(*node);
  const std::string version = std::to_string(resource_version);
  return ObjectRecord::Pack(json, key.first, key.second, uid, version, "", labels, extra);
}

const std::vector<std::string>& ExtraFieldPaths() {
  static const std::vector<std::string> paths = {"spec.nodeName"};
  return paths;
}

namespace {

std::string_view NodeOf(const Obj& o) { return o.node ? std::string_view(*o.node) : ""; }

}  // namespace

const std::vector<Selection>& Selections() {
  static const std::vector<Selection> selections = {
      {"", "", "", [](const Obj&) { return true; }},
      {"", "app=web", "", [](const Obj& o) { return o.app == "web"; }},
      {"a", "", "", [](const Obj& o) { return o.key.first == "a"; }},
      {"", "app in (web,db)", "", [](const Obj& o) { return o.app == "web" || o.app == "db"; }},
      {"", "tier!=fe", "", [](const Obj& o) { return !o.tier || *o.tier != "fe"; }},
      {"", "", "spec.nodeName=n1", [](const Obj& o) { return NodeOf(o) == "n1"; }},
      {"b", "app=db", "spec.nodeName!=n2",
       [](const Obj& o) { return o.key.first == "b" && o.app == "db" && NodeOf(o) != "n2"; }},
      {"", "canary", "", [](const Obj& o) { return o.canary; }},
      {"", "", "metadata.name=p3", [](const Obj& o) { return o.key.second == "p3"; }},
      {"", "", "metadata.namespace=c", [](const Obj& o) { return o.key.first == "c"; }},
      {"a", "app notin (web),!canary", "",
       [](const Obj& o) { return o.key.first == "a" && o.app != "web" && !o.canary; }},
      {"", "tier", "spec.nodeName!=n1", [](const Obj& o) { return o.tier && NodeOf(o) != "n1"; }},
  };
  return selections;
}

std::string Describe(const Selection& selection) {
  return fmt::format("[ns={:?} labels={:?} fields={:?}]", selection.namespace_name,
                     selection.labels, selection.fields);
}

// ---- Upstream ------------------------------------------------------------------------------

ObjPtr Upstream::At(const Key& key, uint64_t version) const {
  if (version < floor_) {
    throw std::logic_error(
        fmt::format("the model's history was pruned below {}, asked for {}", floor_, version));
  }
  const auto it = history_.find(key);
  if (it == history_.end()) return nullptr;
  const auto& changes = it->second;
  auto after = std::upper_bound(
      changes.begin(), changes.end(), version,
      [](uint64_t v, const std::pair<uint64_t, ObjPtr>& change) { return v < change.first; });
  if (after == changes.begin()) return nullptr;
  return std::prev(after)->second;
}

ObjPtr Upstream::Current(const Key& key) const { return At(key, UINT64_MAX); }

void Upstream::Record(const Key& key, uint64_t version, ObjPtr state) {
  auto& changes = history_[key];
  if (!changes.empty() && changes.back().first >= version) {
    throw std::logic_error(
        fmt::format("upstream versions must increase: {} after {}", version, changes.back().first));
  }
  changes.emplace_back(version, std::move(state));
}

std::map<Key, ObjPtr> Upstream::StateAt(uint64_t version) const {
  std::map<Key, ObjPtr> state;
  for (const auto& [key, changes] : history_) {
    if (ObjPtr object = At(key, version)) state.emplace(key, std::move(object));
  }
  return state;
}

void Upstream::Prune(uint64_t floor) {
  if (floor <= floor_) return;
  floor_ = floor;
  for (auto& [key, changes] : history_) {
    // Keep the last change at or below the floor (the state there) and everything after it.
    auto after = std::upper_bound(
        changes.begin(), changes.end(), floor,
        [](uint64_t v, const std::pair<uint64_t, ObjPtr>& change) { return v < change.first; });
    if (after - changes.begin() > 1) changes.erase(changes.begin(), std::prev(after));
  }
}

std::size_t Upstream::entries() const {
  std::size_t n = 0;
  for (const auto& [key, changes] : history_) n += changes.size();
  return n;
}

// ---- ExpectedCache -------------------------------------------------------------------------

const char* OriginName(Origin origin) {
  switch (origin) {
    case Origin::kSnapshot:
      return "snapshot";
    case Origin::kReplay:
      return "replay";
    case Origin::kLive:
      return "live";
    case Origin::kRelist:
      return "relist";
    case Origin::kSynced:
      return "synced";
    case Origin::kBookmark:
      return "bookmark";
  }
  return "?";
}

std::string Describe(const ExpectedDelivery& d) {
  if (!d.object)
    return fmt::format("{} rv={} ({})", EventTypeName(d.type), d.resource_version,
                       OriginName(d.origin));
  return fmt::format("{} {} uid={} object_rv={} rv={} ({})", EventTypeName(d.type),
                     KeyText(d.object->key), d.object->uid, d.object->resource_version,
                     d.resource_version, OriginName(d.origin));
}

ExpectedCache::ExpectedCache(Options options, const Clock& clock)
    : options_(options), clock_(clock) {}

// cache.h: "Per subscriber, a MODIFIED object that starts matching arrives as ADDED, one that
// stops matching as DELETED"; a deletion has no new state.
std::optional<EventType> ExpectedCache::DeliveredType(const Change& change,
                                                      const Selection& selection) {
  const bool old_matches = change.prev && selection.matches(*change.prev);
  const bool new_matches =
      change.type != EventType::kDeleted && change.object && selection.matches(*change.object);
  if (new_matches) return old_matches ? EventType::kModified : EventType::kAdded;
  if (old_matches) return EventType::kDeleted;
  return std::nullopt;
}

// cache_event.h: a MODIFIED delivered as DELETED carries the previous state (the one that
// matched); otherwise the event's object.
ObjPtr ExpectedCache::ObjectFor(const Change& change, EventType delivered) {
  if (delivered == EventType::kDeleted && change.type == EventType::kModified) return change.prev;
  return change.object;
}

// subscription.h, "Not reading at all": the stall rules' budget is the head start's while any
// snapshot object, replayed event or SYNCED (the uncounted items) waits.
std::chrono::steady_clock::duration ExpectedCache::StallBudget(const Sub& sub) {
  const bool uncounted_waiting =
      std::any_of(sub.queue.begin(), sub.queue.end(),
                  [](const ExpectedDelivery& delivery) { return !delivery.counted; });
  return uncounted_waiting ? sub.head_start_stall_budget : sub.stall_budget;
}

// subscription.h, "Bounded memory": a counted push into a queue at or over its capacity is
// refused (the subscriber fell behind) at the live limit (the hard limit plus the head-start
// items popped, "The head start"), or when nothing has been popped for the stall budget since the
// queue went over its capacity or since the last push that saw progress.
ExpectedCache::PushResult ExpectedCache::Push(Sub& sub, ExpectedDelivery delivery) {
  if (sub.ended) return PushResult::kEnded;
  const Clock::TimePoint now = clock_.Now();
  if (delivery.counted) {
    if (sub.counted < sub.capacity) {
      sub.stall_since.reset();
    } else if (sub.counted >= sub.hard_limit + sub.head_start_popped) {
      return PushResult::kFull;
    } else if (!sub.stall_since || sub.pops != sub.pops_at_stall_since) {
      sub.stall_since = now;
      sub.pops_at_stall_since = sub.pops;
    } else if (now - *sub.stall_since >= StallBudget(sub)) {
      return PushResult::kFull;
    }
  }
  // Resuming is possible from SYNCED and from anything after it (or after the version a resumed
  // subscription started from).
  if (delivery.type == EventType::kSynced || !sub.resume_from.empty()) {
    sub.resume_from = delivery.resource_version;
  }
  if (delivery.counted) {
    if (sub.counted >= sub.hard_limit) ++raised_pushes_;
    ++sub.counted;
  }
  sub.queue.push_back(std::move(delivery));
  return PushResult::kQueued;
}

// subscription.h: a bookmark replaces a bookmark queued last; otherwise it is dropped when the
// live queue is at or over its capacity. Never ends a subscription.
ExpectedCache::PushResult ExpectedCache::PushBookmark(Sub& sub, ExpectedDelivery delivery) {
  if (sub.ended) return PushResult::kEnded;
  if (!sub.queue.empty() && sub.queue.back().type == EventType::kBookmark) {
    if (!sub.resume_from.empty()) sub.resume_from = delivery.resource_version;
    sub.queue.back() = std::move(delivery);
    return PushResult::kQueued;
  }
  if (sub.counted >= sub.capacity) return PushResult::kDropped;
  if (!sub.resume_from.empty()) sub.resume_from = delivery.resource_version;
  ++sub.counted;
  sub.queue.push_back(std::move(delivery));
  return PushResult::kQueued;
}

void ExpectedCache::End(Sub& sub, absl::StatusCode code) {
  sub.ended = true;
  sub.code = code;
}

void ExpectedCache::Emit(const ChangePtr& change, bool from_relist) {
  if (!from_relist) WindowAppend(change);
  for (auto& [id, sub] : subs_) {
    if (sub.ended) continue;
    // A subscriber waiting for a future version skips live events up to it.
    if (change->version <= sub.min_version && !from_relist) continue;
    const std::optional<EventType> delivered = DeliveredType(*change, *sub.selection);
    if (!delivered) continue;
    ExpectedDelivery delivery;
    delivery.type = *delivered;
    delivery.resource_version = change->resource_version;
    delivery.version = change->version;
    delivery.object = ObjectFor(*change, *delivered);
    delivery.origin = from_relist ? Origin::kRelist : Origin::kLive;
    delivery.counted = true;
    switch (Push(sub, std::move(delivery))) {
      case PushResult::kQueued:
        counters_.queue_high_water = std::max(counters_.queue_high_water, sub.counted);
        ++counters_.events_delivered;
        if (from_relist) relist_delivered_ = true;
        break;
      case PushResult::kFull:
        End(sub, absl::StatusCode::kResourceExhausted);
        sub.fell_behind_resume_from = sub.resume_from;
        ++counters_.subscribers_fell_behind;
        break;
      case PushResult::kDropped:
      case PushResult::kEnded:
        break;
    }
  }
}

void ExpectedCache::EmitChange(EventType type, const std::string& resource_version,
                               uint64_t version, ObjPtr object, ObjPtr prev, bool from_relist) {
  ++counters_.events_applied;
  Emit(std::make_shared<const Change>(
           Change{type, resource_version, version, std::move(object), std::move(prev)}),
       from_relist);
}

// cache.h: the first difference a relist applies empties the window (resumes refused until
// EndList), makes reads report not synced, and ends subscribers still waiting for a version the
// cache has not reached with OUT_OF_RANGE.
void ExpectedCache::MarkRelistDirty() {
  if (relist_dirty_) return;
  relist_dirty_ = true;
  relist_dirty_since_ = resource_version_;
  WindowInvalidate();
  for (auto& [id, sub] : subs_) {
    if (sub.ended || sub.min_version <= version_) continue;
    End(sub, absl::StatusCode::kOutOfRange);
  }
}

void ExpectedCache::Put(const ObjPtr& object) {
  const auto it = store_.find(object->key);
  if (it != store_.end()) {
    counters_.object_bytes -= it->second->json.size();
    it->second = object;
  } else {
    store_.emplace(object->key, object);
  }
  counters_.object_bytes += object->json.size();
}

ObjPtr ExpectedCache::Remove(const Key& key) {
  const auto it = store_.find(key);
  if (it == store_.end()) return nullptr;
  ObjPtr removed = std::move(it->second);
  store_.erase(it);
  counters_.object_bytes -= removed->json.size();
  return removed;
}

void ExpectedCache::BeginList() {
  relisting_ = true;
  stamped_.clear();
}

// reflector_sink.h: absent → ADDED; same UID, other resourceVersion → MODIFIED; other UID →
// DELETED then ADDED; identical → nothing. cache.h: the events carry the list's version, or the
// object's own when the list's is not known yet (for both halves of a UID change, the new
// object's).
void ExpectedCache::ListItems(const std::vector<ObjPtr>& items,
                              const std::string& list_resource_version) {
  if (!relisting_) BeginList();
  for (const ObjPtr& item : items) {
    const auto held = store_.find(item->key);
    const ObjPtr prev = held == store_.end() ? nullptr : held->second;
    if (prev && prev->uid == item->uid && prev->resource_version == item->resource_version) {
      stamped_[item->key] = true;
      continue;
    }
    MarkRelistDirty();
    std::string resource_version = list_resource_version;
    uint64_t version = 0;
    if (list_resource_version.empty()) {
      resource_version = std::to_string(item->resource_version);
      version = item->resource_version;
    } else {
      version = std::stoull(list_resource_version);
    }
    stamped_[item->key] = true;
    if (prev && prev->uid != item->uid) {
      Remove(prev->key);
      EmitChange(EventType::kDeleted, resource_version, version, prev, prev, true);
      Put(item);
      EmitChange(EventType::kAdded, resource_version, version, item, nullptr, true);
    } else {
      Put(item);
      EmitChange(prev ? EventType::kModified : EventType::kAdded, resource_version, version, item,
                 prev, true);
    }
  }
}

// reflector_sink.h / cache.h: what the list did not deliver is DELETED at the list's version;
// the window restarts at the list's version (the version itself excluded when differences went
// out to subscribers) if the relist changed anything, otherwise it stays as it was; the cache is
// synced there and snapshot subscribers waiting for SYNCED get it.
void ExpectedCache::EndList(const std::string& resource_version) {
  const uint64_t version = std::stoull(resource_version);
  std::vector<ObjPtr> gone;
  if (relisting_) {
    for (const auto& [key, object] : store_) {
      if (!stamped_.count(key)) gone.push_back(object);
    }
  }
  for (const ObjPtr& object : gone) {
    Remove(object->key);
    MarkRelistDirty();
    EmitChange(EventType::kDeleted, resource_version, version, object, object, true);
  }
  relisting_ = false;
  // cache.h (and model.h): whoever holds a version X between the cache's version and the
  // list's holds a state the cache never had, and the list says nothing about what changed
  // between X and the list's version (a relist that finds no difference against the cache's own
  // objects may hide an object created at X and deleted before the list). So a subscriber still
  // waiting for such an X cannot follow on (OUT_OF_RANGE, as when a relist's differences start),
  // and a window kept through this relist does not serve resumes from such an X.
  for (auto& [id, sub] : subs_) {
    if (!sub.ended && sub.min_version > version_ && sub.min_version < version) {
      End(sub, absl::StatusCode::kOutOfRange);
    }
  }
  if (relist_dirty_ || !window_valid_) {
    WindowReset(version, relist_delivered_);
  } else if (version > version_ + 1) {
    window_gaps_.emplace_back(version_, version);
  }
  version_ = version;
  resource_version_ = resource_version;
  relist_dirty_ = false;
  relist_dirty_since_.clear();
  relist_delivered_ = false;
  synced_ = true;
  unsynced_reason_.clear();
  for (auto& [id, sub] : subs_) {
    if (sub.ended || !sub.awaiting_synced) continue;
    sub.awaiting_synced = false;
    ExpectedDelivery synced;
    synced.type = EventType::kSynced;
    synced.resource_version = resource_version_;
    synced.version = version_;
    synced.origin = Origin::kSynced;
    Push(sub, std::move(synced));
  }
}

// reflector_sink.h: what the abandoned list applied stays.
void ExpectedCache::AbortList() { relisting_ = false; }

void ExpectedCache::ApplyWatchEvent(WatchEventType type, const ObjPtr& object) {
  const uint64_t version = object->resource_version;
  const std::string resource_version = std::to_string(version);
  if (version < version_) throw std::logic_error("the model has no rule for versions going back");
  if (type == WatchEventType::kDeleted) {
    if (ObjPtr prev = Remove(object->key)) {
      EmitChange(EventType::kDeleted, resource_version, version, object, std::move(prev), false);
    }
  } else {
    const auto held = store_.find(object->key);
    ObjPtr prev = held == store_.end() ? nullptr : held->second;
    if (prev && prev->uid != object->uid) {
      // A re-creation reported without its deletion: DELETED at this version minus one, then
      // ADDED (cache.h).
      if (version < version_ + 2) {
        throw std::logic_error("the model has no rule for a re-creation without a free version");
      }
      Remove(prev->key);
      EmitChange(EventType::kDeleted, std::to_string(version - 1), version - 1, prev, prev, false);
      prev.reset();
    }
    if (!prev || prev->uid != object->uid || prev->resource_version != object->resource_version) {
      Put(object);
      EmitChange(prev ? EventType::kModified : EventType::kAdded, resource_version, version, object,
                 prev, false);
    }
  }
  version_ = version;
  resource_version_ = resource_version;
}

// cache.h: bookmarks advance the cache's version and go to subscribers that asked for them and
// are not waiting for a later version.
void ExpectedCache::ApplyBookmark(uint64_t version) {
  if (version < version_) return;
  version_ = version;
  resource_version_ = std::to_string(version);
  for (auto& [id, sub] : subs_) {
    if (sub.ended || !sub.allow_bookmarks || version <= sub.min_version) continue;
    ExpectedDelivery bookmark;
    bookmark.type = EventType::kBookmark;
    bookmark.resource_version = resource_version_;
    bookmark.version = version;
    bookmark.origin = Origin::kBookmark;
    bookmark.counted = true;
    if (PushBookmark(sub, std::move(bookmark)) == PushResult::kDropped) {
      ++counters_.bookmarks_dropped;
    }
  }
}

void ExpectedCache::MarkUnsynced(const std::string& reason) {
  synced_ = false;
  unsynced_reason_ = reason;
}

ExpectedCache::SubscribeOutcome ExpectedCache::Subscribe(const SubscribeRequest& request) {
  const bool snapshot = request.resource_version.empty() || request.resource_version == "0";
  std::vector<ObjPtr> objects;
  std::vector<ExpectedDelivery> replay;
  uint64_t min_version = 0;
  if (snapshot) {
    for (const auto& [key, object] : store_) {
      if (request.selection->matches(*object)) objects.push_back(object);
    }
  } else {
    const uint64_t from = std::stoull(request.resource_version);
    WindowExpire();
    if (window_valid_ && from > version_) {
      min_version = from;  // ahead of the cache: waits for it
    } else if (!WindowServes(from)) {
      return SubscribeOutcome{std::nullopt, absl::StatusCode::kOutOfRange};
    } else {
      for (const WindowItem& item : window_) {
        if (item.change->version <= from) continue;
        const std::optional<EventType> delivered = DeliveredType(*item.change, *request.selection);
        if (!delivered) continue;
        ExpectedDelivery delivery;
        delivery.type = *delivered;
        delivery.resource_version = item.change->resource_version;
        delivery.version = item.change->version;
        delivery.object = ObjectFor(*item.change, *delivered);
        delivery.origin = Origin::kReplay;
        replay.push_back(std::move(delivery));
      }
    }
  }
  const uint64_t id = next_id_++;
  Sub& sub = subs_[id];
  sub.selection = request.selection;
  sub.allow_bookmarks = request.allow_bookmarks;
  sub.capacity = request.queue_capacity;
  sub.hard_limit = request.queue_capacity * 4;
  sub.stall_budget = request.stall_budget;
  sub.head_start_stall_budget = std::max(request.stall_budget, request.head_start_stall_budget);
  sub.min_version = min_version;
  sub.from_version = !snapshot;
  if (snapshot) {
    for (ObjPtr& object : objects) {
      ExpectedDelivery item;
      item.type = EventType::kAdded;
      item.resource_version = std::to_string(object->resource_version);
      item.version = object->resource_version;
      item.object = std::move(object);
      item.origin = Origin::kSnapshot;
      sub.queue.push_back(std::move(item));
    }
    if (complete()) {
      ExpectedDelivery synced;
      synced.type = EventType::kSynced;
      synced.resource_version = resource_version_;
      synced.version = version_;
      synced.origin = Origin::kSynced;
      Push(sub, std::move(synced));
    } else {
      sub.awaiting_synced = true;
    }
  } else {
    sub.resume_from = request.resource_version;
    sub.popped_resume_from = request.resource_version;
    for (ExpectedDelivery& delivery : replay) Push(sub, std::move(delivery));
  }
  return SubscribeOutcome{id, absl::StatusCode::kOk};
}

std::optional<ExpectedDelivery> ExpectedCache::Pop(uint64_t id) {
  Sub& sub = subs_.at(id);
  if (sub.closed || sub.queue.empty()) return std::nullopt;
  ExpectedDelivery front = std::move(sub.queue.front());
  sub.queue.pop_front();
  ++sub.pops;
  if (front.counted) {
    --sub.counted;
  } else {
    ++sub.head_start_popped;  // a snapshot object, a replayed event, SYNCED
  }
  if (front.type == EventType::kSynced || !sub.popped_resume_from.empty()) {
    sub.popped_resume_from = front.resource_version;
  }
  // The raise ends once no uncounted item waits and the live queue is back within its capacity.
  const bool uncounted_waiting =
      std::any_of(sub.queue.begin(), sub.queue.end(),
                  [](const ExpectedDelivery& delivery) { return !delivery.counted; });
  if (!uncounted_waiting && sub.counted <= sub.capacity) sub.head_start_popped = 0;
  return front;
}

std::size_t ExpectedCache::Pending(uint64_t id) const { return subs_.at(id).queue.size(); }

std::optional<absl::StatusCode> ExpectedCache::FinalStatus(uint64_t id) const {
  const Sub& sub = subs_.at(id);
  if (!sub.ended) return std::nullopt;
  if (!sub.closed && !sub.queue.empty()) return std::nullopt;
  return sub.code;
}

std::string ExpectedCache::FellBehindResumeFrom(uint64_t id) const {
  return subs_.at(id).fell_behind_resume_from;
}

void ExpectedCache::Close(uint64_t id) {
  Sub& sub = subs_.at(id);
  if (sub.closed) return;
  sub.closed = true;
  sub.queue.clear();
  sub.counted = 0;
  sub.head_start_popped = 0;
  if (!sub.ended) End(sub, absl::StatusCode::kCancelled);
}

// subscription.h, "Not reading at all": items waiting, and nothing popped since a check at least
// the stall budget ago that found items waiting: ended, what was queued dropped, the resume point
// the last item popped. The same for one that fell behind as an event was pushed and has not read
// what was left queued for it (its end is not counted again).
std::vector<uint64_t> ExpectedCache::CheckStalled() {
  const Clock::TimePoint now = clock_.Now();
  std::vector<uint64_t> ended;
  for (auto& [id, sub] : subs_) {
    const bool fell_behind = sub.ended && !sub.closed &&
                             sub.code == absl::StatusCode::kResourceExhausted && !sub.queue.empty();
    if (sub.ended && !fell_behind) continue;
    if (sub.queue.empty()) {
      sub.check_since.reset();
      continue;
    }
    if (!sub.check_since || sub.pops != sub.pops_at_check_since) {
      sub.check_since = now;
      sub.pops_at_check_since = sub.pops;
      continue;
    }
    if (now - *sub.check_since < StallBudget(sub)) continue;
    sub.fell_behind_resume_from = sub.popped_resume_from;
    sub.queue.clear();
    sub.counted = 0;
    sub.head_start_popped = 0;
    if (fell_behind) {
      ++unread_dropped_;
      continue;
    }
    End(sub, absl::StatusCode::kResourceExhausted);
    ++counters_.subscribers_fell_behind;
    ended.push_back(id);
  }
  return ended;
}

bool ExpectedCache::EndIfAwaitingSynced(uint64_t id, absl::StatusCode code) {
  Sub& sub = subs_.at(id);
  if (sub.ended || !sub.awaiting_synced) return false;
  End(sub, code);
  return true;
}

bool ExpectedCache::EndIfAheadOfCache(uint64_t id, absl::StatusCode code) {
  Sub& sub = subs_.at(id);
  if (!AheadOfCache(id)) return false;
  End(sub, code);
  return true;
}

// subscription.h: "A subscription from a resource version the cache has not reached: nothing has
// been queued for it."
bool ExpectedCache::AheadOfCache(uint64_t id) const {
  const Sub& sub = subs_.at(id);
  return !sub.ended && sub.min_version > version_;
}

uint64_t ExpectedCache::MinVersion(uint64_t id) const { return subs_.at(id).min_version; }

bool ExpectedCache::FromVersion(uint64_t id) const { return subs_.at(id).from_version; }

void ExpectedCache::Forget(uint64_t id) { subs_.erase(id); }

std::string ExpectedCache::IncompleteReason() const {
  if (!synced_) return unsynced_reason_;
  if (relist_dirty_) {
    return fmt::format("a relist is replacing the cached objects (since resource version {})",
                       relist_dirty_since_);
  }
  return "";
}

ExpectedRead ExpectedCache::List(const Selection& selection) const {
  ExpectedRead read;
  for (const auto& [key, object] : store_) {
    if (selection.matches(*object)) read.items.push_back(object);
  }
  read.resource_version = resource_version_;
  read.synced = complete();
  read.unsynced_reason = IncompleteReason();
  return read;
}

ExpectedRead ExpectedCache::Get(const Key& key) const {
  ExpectedRead read;
  if (const auto it = store_.find(key); it != store_.end()) read.items.push_back(it->second);
  read.resource_version = resource_version_;
  read.synced = complete();
  read.unsynced_reason = IncompleteReason();
  return read;
}

ExpectedStats ExpectedCache::Stats() const {
  ExpectedStats stats = counters_;
  stats.object_count = store_.size();
  stats.subscriber_count = 0;
  for (const auto& [id, sub] : subs_) stats.subscriber_count += sub.ended ? 0 : 1;
  stats.resource_version = resource_version_;
  stats.synced = complete();
  stats.unsynced_reason = IncompleteReason();
  stats.relisting = relisting_ || relist_dirty_;
  stats.window_events = window_.size();
  return stats;
}

bool ExpectedCache::ResumeServable(uint64_t version) const {
  if (!window_valid_) return false;
  return version > version_ || WindowServes(version);
}

bool ExpectedCache::WindowServes(uint64_t from) const {
  if (!window_valid_ || from < window_start_ ||
      (from == window_start_ && window_start_exclusive_)) {
    return false;
  }
  for (const auto& [low, high] : window_gaps_) {
    if (low < from && from < high) return false;
  }
  return true;
}

// ---- The window (event_window.h) -----------------------------------------------------------
// It covers every event after `start` (and `start` itself unless exclusive); an event leaves
// when more than max_events are held or when older than max_age, and `start` becomes its version.

void ExpectedCache::WindowAppend(const ChangePtr& change) {
  if (!window_valid_) return;
  window_.push_back(WindowItem{change, clock_.Now()});
  while (window_.size() > options_.window_max_events) WindowDropFront();
  WindowExpire();
}

void ExpectedCache::WindowExpire() {
  const Clock::TimePoint now = clock_.Now();
  while (!window_.empty() && now - window_.front().added > options_.window_max_age) {
    WindowDropFront();
  }
}

void ExpectedCache::WindowDropFront() {
  window_start_ = window_.front().change->version;
  window_start_exclusive_ = false;
  window_.pop_front();
  // Gaps wholly below the start no longer matter.
  window_gaps_.erase(std::remove_if(window_gaps_.begin(), window_gaps_.end(),
                                    [&](const auto& gap) { return gap.second <= window_start_; }),
                     window_gaps_.end());
}

void ExpectedCache::WindowReset(uint64_t start, bool exclusive) {
  window_.clear();
  window_gaps_.clear();
  window_valid_ = true;
  window_start_ = start;
  window_start_exclusive_ = exclusive;
}

void ExpectedCache::WindowInvalidate() {
  window_.clear();
  window_gaps_.clear();
  window_valid_ = false;
}

}  // namespace informerd::core::model
