// A seeded random run of core::Cache against the reference model (model.h), through both of its
// interfaces: the ReflectorSink (live ADDED/MODIFIED/DELETED/BOOKMARK events, re-creations under a
// new UID with and without their deletion, relists page by page with known or WatchList versions
// that add, modify, delete and re-create, aborted relists, MarkUnsynced) and the readers'
// (Subscribe with and without a resource version and with selectors, slow readers with small
// queues and stall budgets that pop rarely, subscribers that leave and resume from the last version
// they saw or come from a replica at any version, the bounded waits' ends, List, Get, Stats), with
// a fake clock. The apiserver's changes reach the cache through a lagging watch, so the cache is
// behind the apiserver and some clients are ahead of it. Now and then a short-lived object is
// created and deleted upstream and the watch breaks before reporting it: the relist that follows
// finds no difference, yet completes past versions this cache never saw, and clients from a
// replica hold those versions (some wait for them through the relist, some resume from them
// after it; model.h has the rules for both).
//
// Checked after every action:
//  * every item a subscriber pops is exactly the one the rules say comes next (type, versions,
//    object), and nothing is missing when its queue is empty; its end (fell behind, OUT_OF_RANGE,
//    the bounded waits, with the resume point the message names) is the one the rules say;
//  * independently of those rules, each client replays its stream onto its own map: no ADDED for a
//    key it holds, no MODIFIED or DELETED for one it lacks or under another UID; versions never go
//    back (a relist's differences are not older than the last point before them, and the points
//    after them not older than any of them: a WatchList relist's differences carry their objects'
//    own versions, in no order); at each point it could resume from (SYNCED, a bookmark, a live or
//    replayed event) its map equals what the apiserver held at that version, through its
//    selection; having read everything, it holds what the cache holds (unless it waits for a
//    version the cache has not reached); a subscriber that was ended is held to the same until its
//    last item, and a fell-behind message names the last version it received. The driver tells a
//    live event from a relist's difference by its version (the watch delivered a change there),
//    not by asking the rules; with the rules' model, that classification is checked too;
//  * resumes are accepted or refused with OUT_OF_RANGE exactly as the window's rules say;
//  * List and Get answer what the model's store holds, with its version and sync state, and when
//    they say synced what they answer is the apiserver's state at the version they report (never
//    a mix of a relist's before and after); Stats agree with the model's counts.
// --independent keeps only the checks that do not use the rules' model (same histories).
//
// On failure: the seed, the step, the last actions and the command that replays it. Default: a
// bounded run for CI (40 seeds of 1,000 steps). Long runs:
//   bazel run -c opt //test/core/model:cache_model_test -- --steps 1000000 --seed 7 [--seeds N]
// (--trace prints every action).

// This binary has its own main (the run-length flags), so Catch2 provides the runner only.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/field_selector.h"
#include "core/label_selector.h"
#include "fmt/format.h"
#include "test/common/fake_clock.h"
#include "test/core/model/model.h"

namespace informerd::core::model {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct RunConfig {
  uint64_t steps = 1000;
  uint64_t first_seed = 1;
  uint64_t seeds = 0;  // 0: the default for the mode (40 bounded; 1 with --seed)
  bool seed_given = false;
  bool trace = false;
  // Only what clients and readers can check against the apiserver's history: no item-by-item
  // comparison with the rules' model, no Stats, no predicted resume refusals or ends.
  bool independent = false;
};
RunConfig g_config;

struct Totals {
  uint64_t steps = 0;
  uint64_t upstream_changes = 0;
  uint64_t live_events = 0;
  uint64_t bookmarks = 0;
  uint64_t relists = 0;
  uint64_t watch_list_relists = 0;
  uint64_t relists_aborted = 0;
  uint64_t relist_differences = 0;
  uint64_t mark_unsynced = 0;
  uint64_t transients = 0;
  uint64_t quiet_relists = 0;
  uint64_t waiting_in_quiet_gap = 0;
  uint64_t resumes_in_quiet_gap = 0;
  uint64_t snapshots = 0;
  uint64_t resumes = 0;
  uint64_t resumes_refused = 0;
  uint64_t replica_subscribes = 0;
  uint64_t ahead_subscribes = 0;
  uint64_t fell_behind = 0;
  uint64_t ended_out_of_range = 0;
  uint64_t bounded_wait_ends = 0;
  // Subscribers the stall check ended; live events queued only thanks to the head start's raise
  // of the limit (the rules' model counts them).
  uint64_t stall_ends = 0;
  uint64_t unread_dropped = 0;
  uint64_t raised_pushes = 0;
  uint64_t deliveries = 0;
  uint64_t point_checks = 0;
  uint64_t reads_synced = 0;
  uint64_t reads_unsynced = 0;

  void Add(const Totals& o) {
    steps += o.steps;
    upstream_changes += o.upstream_changes;
    live_events += o.live_events;
    bookmarks += o.bookmarks;
    relists += o.relists;
    watch_list_relists += o.watch_list_relists;
    relists_aborted += o.relists_aborted;
    relist_differences += o.relist_differences;
    mark_unsynced += o.mark_unsynced;
    transients += o.transients;
    quiet_relists += o.quiet_relists;
    waiting_in_quiet_gap += o.waiting_in_quiet_gap;
    resumes_in_quiet_gap += o.resumes_in_quiet_gap;
    snapshots += o.snapshots;
    resumes += o.resumes;
    resumes_refused += o.resumes_refused;
    replica_subscribes += o.replica_subscribes;
    ahead_subscribes += o.ahead_subscribes;
    fell_behind += o.fell_behind;
    ended_out_of_range += o.ended_out_of_range;
    bounded_wait_ends += o.bounded_wait_ends;
    stall_ends += o.stall_ends;
    unread_dropped += o.unread_dropped;
    raised_pushes += o.raised_pushes;
    deliveries += o.deliveries;
    point_checks += o.point_checks;
    reads_synced += o.reads_synced;
    reads_unsynced += o.reads_unsynced;
  }
  std::string Describe() const {
    return fmt::format(
        "{} steps: {} upstream changes ({} short-lived objects), {} live events, {} bookmarks; "
        "{} relists ({} WatchList, {} aborted, {} differences; {} found none but went past "
        "versions the cache never saw, with {} subscribers from a version in between), {} "
        "MarkUnsynced; {} snapshots, {} resumes accepted, {} refused ({} tried from strictly "
        "inside such a relist's span), {} from a replica ({} ahead of the cache); ended: {} fell "
        "behind ({} by the stall check, {} more with their queues dropped by it), {} OUT_OF_RANGE, "
        "{} bounded waits; {} live events "
        "queued thanks to a head start; {} items delivered, {} checked against the apiserver's "
        "state; reads: {} synced, {} not synced",
        steps, upstream_changes, transients, live_events, bookmarks, relists, watch_list_relists,
        relists_aborted, relist_differences, quiet_relists, waiting_in_quiet_gap, mark_unsynced,
        snapshots, resumes, resumes_refused, resumes_in_quiet_gap, replica_subscribes,
        ahead_subscribes, fell_behind, stall_ends, unread_dropped, ended_out_of_range,
        bounded_wait_ends, raised_pushes, deliveries, point_checks, reads_synced, reads_unsynced);
  }
};

class ModelFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : seed_(seed), rng_(seed) {
    names_ = 3 + Pick(8);
    ExpectedCache::Options model_options;
    model_options.window_max_events = 1 + Pick(Pick(4) == 0 ? 8 : 200);
    model_options.window_max_age = seconds(5 + Pick(60));
    CacheOptions options;
    options.extra_field_paths = ExtraFieldPaths();
    options.window_max_events = model_options.window_max_events;
    options.window_max_age = model_options.window_max_age;
    cache_ = Cache::Create(std::move(options), clock_);
    model_ = std::make_unique<ExpectedCache>(model_options, clock_);
  }

  ~Simulation() {
    for (Client& client : clients_) {
      if (client.subscription) client.subscription->Close();
    }
  }

  // Throws ModelFailure.
  void Run(uint64_t steps) {
    for (step_ = 0; step_ < steps; ++step_) {
      try {
        Step();
        AfterAction();
      } catch (const ModelFailure&) {
        throw;
      } catch (const std::exception& e) {
        Fail(fmt::format("exception: {}", e.what()));
      }
      ++totals_.steps;
    }
  }

  const Totals& totals() const { return totals_; }
  std::string Trace() const {
    std::string text;
    for (const std::string& line : trace_) text += "  " + line + "\n";
    return text;
  }

 private:
  struct Held {
    std::string uid;
    std::string json;
  };
  struct Client {
    int number = 0;
    const Selection* selection = nullptr;
    std::size_t capacity = 1024;
    std::chrono::steady_clock::duration stall_budget = seconds(1);
    // Below stall_budget it counts as stall_budget (both the cache and the model apply it so).
    std::chrono::steady_clock::duration head_start_stall_budget = seconds(10);
    bool allow_bookmarks = false;
    bool slow = false;
    std::shared_ptr<Subscription> subscription;  // null while disconnected
    uint64_t model_id = 0;
    // The client's replica of what its stream says, and where it can resume from ("" when it
    // cannot: a snapshot not yet followed by SYNCED).
    std::map<Key, Held> held;
    std::string resume_from;
    // Inside a snapshot: nothing received is a point until SYNCED.
    bool in_snapshot = false;
    // The version this subscription resumed from; 0 for a snapshot.
    uint64_t from_version = 0;
    // The highest version of any non-snapshot item in this stream, and of its last point.
    uint64_t frontier = 0;
    uint64_t last_point = 0;
    // The cache's version when this subscription started (no check asks about older versions).
    uint64_t started_at = 0;
  };

  // ---- Plumbing ----------------------------------------------------------------------------

  uint64_t Pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  template <typename... Args>
  void Note(fmt::format_string<Args...> format, Args&&... args) {
    std::string line = fmt::format("step {}: {}", step_, fmt::format(format, args...));
    if (g_config.trace) fmt::print("{}\n", line);
    trace_.push_back(std::move(line));
    if (trace_.size() > 60) trace_.pop_front();
  }

  [[noreturn]] void Fail(const std::string& what) {
    throw ModelFailure(fmt::format("seed {} step {}: {}", seed_, step_, what));
  }

  static constexpr const char* kNamespaces[] = {"a", "b", "c"};
  // The name of the short-lived objects (TransientWhileLagging), never picked by RandomKey.
  static constexpr const char* kTransientName = "transient";

  Key RandomKey() { return Key(kNamespaces[Pick(3)], fmt::format("p{}", Pick(names_))); }

  std::vector<Key> AllKeys() const {
    std::vector<Key> keys;
    for (const char* ns : kNamespaces) {
      for (uint64_t i = 0; i < names_; ++i) keys.emplace_back(ns, fmt::format("p{}", i));
      keys.emplace_back(ns, kTransientName);
    }
    return keys;
  }

  void Randomize(Obj& o) {
    static const char* kApps[] = {"web", "db", "api"};
    o.app = kApps[Pick(3)];
    o.tier.reset();
    if (Pick(2)) o.tier = Pick(2) ? "fe" : "be";
    o.canary = Pick(5) == 0;
    o.node.reset();
    if (Pick(4)) o.node = fmt::format("n{}", 1 + Pick(3));
  }

  ObjPtr NewObject(const Key& key, uint64_t version) {
    Obj o;
    o.key = key;
    o.uid = fmt::format("uid-{}", ++uids_);
    o.resource_version = version;
    Randomize(o);
    o.Render();
    return std::make_shared<const Obj>(std::move(o));
  }

  ObjPtr WithVersion(const Obj& from, uint64_t version) {
    Obj o = from;
    o.resource_version = version;
    o.Render();
    return std::make_shared<const Obj>(std::move(o));
  }

  static WatchEvent ToWatchEvent(WatchEventType type, const Obj& object) {
    WatchEvent event;
    event.type = type;
    event.object = object.ToRecord();
    return event;
  }

  static std::string Keys(const std::vector<ObjPtr>& objects) {
    std::string keys;
    for (const ObjPtr& object : objects) keys += (keys.empty() ? "" : ",") + KeyText(object->key);
    return keys;
  }

  // ---- The apiserver and the sink ----------------------------------------------------------

  void Step() {
    const uint64_t dice = Pick(200);
    if (dice < 48) {
      UpstreamChange();
    } else if (dice < 80) {
      DeliverPending();
    } else if (dice < 88) {
      UpstreamBookmark();
    } else if (dice < 89) {
      if (Pick(3) == 0) {
        MarkUnsynced();
      } else {
        TransientWhileLagging();
      }
    } else if (dice < 94 || (phase_ != Phase::kWatching && dice < 150)) {
      // While watching, the watch breaks now and then (410: a relist); a relist in progress
      // moves on a page at a time.
      RelistStep();
    } else {
      ReaderStep();
    }
    // Time passes: the window's age limit and the stall budgets depend on it.
    clock_.Advance(milliseconds(Pick(4) == 0 ? 0 : Pick(1500)));
  }

  // One change upstream, queued for the watch (which reports it later, or never if it breaks
  // first and a relist picks it up instead).
  void UpstreamChange() {
    ++totals_.upstream_changes;
    const Key key = RandomKey();
    const ObjPtr current = upstream_.Current(key);
    if (!current) {
      const ObjPtr created = NewObject(key, ++rv_);
      upstream_.Record(key, rv_, created);
      pending_.push_back({WatchEventType::kAdded, created, 0});
      Note("upstream: create {} uid={} at {}", KeyText(key), created->uid, rv_);
      return;
    }
    const uint64_t dice = Pick(100);
    if (dice < 18) {
      // The apiserver's DELETED carries the last state at the deletion's version.
      const ObjPtr deleted = WithVersion(*current, ++rv_);
      upstream_.Record(key, rv_, nullptr);
      pending_.push_back({WatchEventType::kDeleted, deleted, 0});
      Note("upstream: delete {} at {}", KeyText(key), rv_);
    } else if (dice < 30) {
      // Deleted and re-created under a new UID. Sometimes the watch reports only the new object
      // (as ADDED or MODIFIED): the cache must still send DELETED, then ADDED.
      const ObjPtr deleted = WithVersion(*current, ++rv_);
      upstream_.Record(key, rv_, nullptr);
      const bool report_deletion = Pick(2) == 0;
      if (report_deletion) pending_.push_back({WatchEventType::kDeleted, deleted, 0});
      const ObjPtr created = NewObject(key, ++rv_);
      upstream_.Record(key, rv_, created);
      pending_.push_back(
          {report_deletion || Pick(2) ? WatchEventType::kAdded : WatchEventType::kModified, created,
           report_deletion ? 0 : rv_ - 1});
      Note("upstream: re-create {} uid={} at {} (deletion {} reported: {})", KeyText(key),
           created->uid, rv_, rv_ - 1, report_deletion);
    } else {
      Obj changed = *current;
      changed.resource_version = ++rv_;
      if (Pick(3) == 0) {
        Randomize(changed);
      } else if (Pick(2) == 0) {
        changed.node =
            Pick(3) ? std::optional<std::string>(fmt::format("n{}", 1 + Pick(3))) : std::nullopt;
      }  // else: only the version (a status update): matching unchanged
      changed.Render();
      const ObjPtr modified = std::make_shared<const Obj>(std::move(changed));
      upstream_.Record(key, rv_, modified);
      pending_.push_back({WatchEventType::kModified, modified, 0});
      Note("upstream: modify {} at {}", KeyText(key), rv_);
    }
  }

  // A short-lived object (a Job's pod, say) is created, perhaps modified, and deleted upstream
  // while the watch lags, and most often the watch breaks before reporting any of it. The watch
  // first catches up, so the object is all it misses: the relist that follows finds no difference
  // against the cache, yet completes at a version past the ones at which the object existed, which
  // this cache never saw. A replica that saw them hands such versions to its clients: some resume
  // from one now (ahead of this cache, waiting for it), others later (ReplicaClient, from the
  // relist's span).
  void TransientWhileLagging() {
    if (phase_ != Phase::kWatching) return;
    while (!pending_.empty()) DeliverPending();
    if (Pick(2) == 0) UpstreamBookmark();
    ++totals_.transients;
    const uint64_t before = rv_;
    const Key key(kNamespaces[Pick(3)], kTransientName);
    ObjPtr state = NewObject(key, ++rv_);
    upstream_.Record(key, rv_, state);
    pending_.push_back({WatchEventType::kAdded, state, 0});
    for (uint64_t i = Pick(3); i > 0; --i) {
      Obj changed = *state;
      changed.resource_version = ++rv_;
      if (Pick(2) == 0) Randomize(changed);
      changed.Render();
      state = std::make_shared<const Obj>(std::move(changed));
      upstream_.Record(key, rv_, state);
      pending_.push_back({WatchEventType::kModified, state, 0});
    }
    const ObjPtr deleted = WithVersion(*state, ++rv_);
    upstream_.Record(key, rv_, nullptr);
    pending_.push_back({WatchEventType::kDeleted, deleted, 0});
    totals_.upstream_changes += pending_.size();
    Note("upstream: short-lived {} uid={} from {} to {}", KeyText(key), deleted->uid, before + 1,
         rv_);
    for (uint64_t i = Pick(3); i > 0; --i) ReplicaClientAt(before + 1 + Pick(rv_ - before));
    if (Pick(4) != 0) {
      Note("watch: ends with 410 Gone, {} events never delivered", pending_.size());
      BeginList();
    }
  }

  // The watch delivers what is pending, in order.
  void DeliverPending() {
    if (phase_ != Phase::kWatching || pending_.empty()) return;
    const uint64_t count = 1 + Pick(std::min<uint64_t>(pending_.size(), 4));
    for (uint64_t i = 0; i < count; ++i) {
      const auto [type, object, unreported_deletion] = pending_.front();
      pending_.pop_front();
      ++totals_.live_events;
      live_versions_.insert(object->resource_version);
      if (unreported_deletion != 0) live_versions_.insert(unreported_deletion);
      Note("watch: {} {} uid={} rv={}",
           type == WatchEventType::kAdded      ? "ADDED"
           : type == WatchEventType::kModified ? "MODIFIED"
                                               : "DELETED",
           KeyText(object->key), object->uid, object->resource_version);
      model_->ApplyWatchEvent(type, object);
      cache_->ApplyWatchEvent(ToWatchEvent(type, *object));
    }
  }

  // A bookmark at the watch's position: everything up to it delivered. With nothing pending, the
  // apiserver's version (other resources' writes may have moved it on: versions are global);
  // otherwise just before the next pending change (before its unreported deletion, if any).
  void UpstreamBookmark() {
    if (phase_ != Phase::kWatching) return;
    uint64_t version = rv_;
    if (pending_.empty()) {
      version = rv_ += Pick(3);
    } else {
      const PendingEvent& next = pending_.front();
      version = (next.unreported_deletion != 0 ? next.unreported_deletion
                                               : next.object->resource_version) -
                1;
      version = std::max(version, model_->version());
    }
    ++totals_.bookmarks;
    Note("watch: BOOKMARK {}", version);
    model_->ApplyBookmark(version);
    WatchEvent event;
    event.type = WatchEventType::kBookmark;
    event.resource_version = std::to_string(version);
    cache_->ApplyWatchEvent(std::move(event));
  }

  void BeginList() {
    // Whatever the broken watch had not delivered is missed: the list covers it.
    pending_.clear();
    rv_ += Pick(3) == 0 ? 1 : 0;
    list_version_ = rv_;
    list_items_.clear();
    for (auto& [key, object] : upstream_.CurrentState()) list_items_.push_back(object);
    list_next_ = 0;
    watch_list_ = Pick(3) == 0;
    phase_ = Phase::kListing;
    Note("list: begin at {} ({} objects{})", list_version_, list_items_.size(),
         watch_list_ ? ", WatchList" : "");
    model_->BeginList();
    cache_->BeginList();
  }

  void RelistStep() {
    switch (phase_) {
      case Phase::kWatching:
        Note("watch: ends with 410 Gone, {} events never delivered", pending_.size());
        BeginList();
        return;
      case Phase::kBroken:
        BeginList();
        return;
      case Phase::kListing:
        break;
    }
    if (list_next_ < list_items_.size() || Pick(6) == 0) {
      if (list_next_ > 0 && Pick(10) == 0) {
        Note("list: abort after {} of {} objects", list_next_, list_items_.size());
        ++totals_.relists_aborted;
        model_->AbortList();
        cache_->AbortList();
        phase_ = Phase::kBroken;
        MaybeRead();
        return;
      }
      const std::size_t size = std::min<std::size_t>(Pick(11), list_items_.size() - list_next_);
      std::vector<ObjPtr> page(list_items_.begin() + list_next_,
                               list_items_.begin() + list_next_ + size);
      list_next_ += size;
      const std::string version = watch_list_ ? "" : std::to_string(list_version_);
      Note("list: page [{}] at {:?}", Keys(page), version);
      const uint64_t before = model_->Stats().events_applied;
      model_->ListItems(page, version);
      differences_since_end_list_ += model_->Stats().events_applied - before;
      totals_.relist_differences += model_->Stats().events_applied - before;
      std::vector<ObjectRecord> records;
      for (const ObjPtr& object : page) records.push_back(object->ToRecord());
      cache_->ListItems(std::move(records), version);
      MaybeRead();
      return;
    }
    Note("list: end at {}", list_version_);
    ++totals_.relists;
    if (watch_list_) ++totals_.watch_list_relists;
    const uint64_t cache_version = model_->version();
    const uint64_t before = model_->Stats().events_applied;
    model_->EndList(std::to_string(list_version_));
    differences_since_end_list_ += model_->Stats().events_applied - before;
    totals_.relist_differences += model_->Stats().events_applied - before;
    RecordSpan(cache_version, differences_since_end_list_ == 0);
    differences_since_end_list_ = 0;
    cache_->EndList(std::to_string(list_version_));
    phase_ = Phase::kWatching;
    MaybeRead();
  }

  // A relist took the cache from `cache_version` past versions it never saw: replica clients
  // come from around there. When it found no difference (a short-lived object missed), counts
  // what the run exercised of it. Not the initial list: the cache had no version before it (and
  // "0" is not a version to resume from but a request for a snapshot).
  void RecordSpan(uint64_t cache_version, bool quiet) {
    if (cache_version == 0 || list_version_ <= cache_version + 1) return;
    relist_spans_.push_back({cache_version, list_version_});
    if (relist_spans_.size() > 8) relist_spans_.pop_front();
    if (!quiet) return;
    ++totals_.quiet_relists;
    quiet_gaps_.push_back({cache_version, list_version_});
    if (quiet_gaps_.size() > 8) quiet_gaps_.pop_front();
    for (const Client& client : clients_) {
      if (client.subscription && client.from_version > cache_version &&
          client.from_version < list_version_) {
        ++totals_.waiting_in_quiet_gap;
      }
    }
  }

  // The resource is gone for now (its CRD deleted): not synced, and a relist follows.
  void MarkUnsynced() {
    if (phase_ == Phase::kListing) {
      model_->AbortList();
      cache_->AbortList();
    }
    ++totals_.mark_unsynced;
    const std::string reason = "resource no longer served by the apiserver";
    Note("MarkUnsynced");
    model_->MarkUnsynced(reason);
    cache_->MarkUnsynced(reason);
    pending_.clear();
    phase_ = Phase::kBroken;
  }

  // Around a relist's steps, a reader often looks.
  void MaybeRead() {
    if (Pick(3) == 0) CheckList(Selections()[Pick(Selections().size())]);
    if (Pick(4) == 0) CheckGet(RandomKey());
  }

  // ---- Readers -----------------------------------------------------------------------------

  void ReaderStep() {
    const uint64_t dice = Pick(100);
    if (dice < 12) {
      NewClient();
    } else if (dice < 17) {
      ReplicaClient();
    } else if (dice < 28) {
      Disconnect();
    } else if (dice < 40) {
      if (Client* client = PickClient(/*connected=*/false)) Reconnect(*client);
    } else if (dice < 66) {
      if (Client* client = PickSlowClient()) {
        Note("client {}: pops up to 4", client->number);
        PopSome(*client, 1 + Pick(4));
      }
    } else if (dice < 72) {
      BoundedWait();
    } else if (dice < 84) {
      CheckList(Selections()[Pick(Selections().size())]);
    } else if (dice < 91) {
      CheckGet(RandomKey());
    } else if (dice < 94) {
      StallCheck();
    } else {
      const auto pause = seconds(2 + Pick(40));
      Note("pause {} s", pause.count());
      clock_.Advance(pause);
    }
  }

  Client* PickClient(bool connected) {
    std::vector<Client*> candidates;
    for (Client& client : clients_) {
      if ((client.subscription != nullptr) == connected) candidates.push_back(&client);
    }
    if (candidates.empty()) return nullptr;
    return candidates[Pick(candidates.size())];
  }

  Client* PickSlowClient() {
    std::vector<Client*> candidates;
    for (Client& client : clients_) {
      if (client.subscription && client.slow) candidates.push_back(&client);
    }
    if (candidates.empty()) return nullptr;
    return candidates[Pick(candidates.size())];
  }

  Client& AddClient() {
    if (clients_.size() >= 12) {
      // One leaves for good.
      const std::size_t i = Pick(clients_.size());
      if (clients_[i].subscription) CloseSubscription(clients_[i], "leaves for good");
      clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    Client client;
    client.number = next_client_++;
    client.selection = &Selections()[Pick(Selections().size())];
    client.slow = Pick(5) < 2;
    if (client.slow) {
      client.capacity = 1 + Pick(5);
      client.stall_budget = Pick(4) == 0 ? milliseconds(0) : milliseconds(200 + Pick(5000));
      // Often the same as the stall budget (or below it), else up to 5 s longer.
      client.head_start_stall_budget =
          Pick(3) == 0 ? milliseconds(Pick(300)) : client.stall_budget + milliseconds(Pick(5000));
    }
    client.allow_bookmarks = Pick(2) == 0;
    clients_.push_back(std::move(client));
    return clients_.back();
  }

  void NewClient() {
    Client& client = AddClient();
    Note("client {}: new {} {} capacity {} stall budget {} ms (head start {} ms){}", client.number,
         client.slow ? "slow" : "fast", Describe(*client.selection), client.capacity,
         std::chrono::duration_cast<milliseconds>(client.stall_budget).count(),
         std::chrono::duration_cast<milliseconds>(client.head_start_stall_budget).count(),
         client.allow_bookmarks ? ", bookmarks" : "");
    Snapshot(client);
  }

  // A client that followed another replica, at some version the apiserver had: it holds that
  // state and resumes from it here (possibly ahead of this cache, possibly older than its
  // window).
  void ReplicaClient() {
    uint64_t from = rv_;
    if (!relist_spans_.empty() && Pick(3) == 0) {
      // From the span of a recent relist that went past versions this cache never saw (its ends
      // included).
      const auto [low, high] = relist_spans_[Pick(relist_spans_.size())];
      from = low + Pick(high - low + 1);
    } else if (Pick(5) < 3) {
      const uint64_t low = std::max<uint64_t>(
          {upstream_.floor(), model_->window_start() > 3 ? model_->window_start() - 3 : 0, 100});
      if (low <= rv_) from = low + Pick(rv_ - low + 1);
    }
    ReplicaClientAt(from);
  }

  void ReplicaClientAt(uint64_t from) {
    if (from < upstream_.floor()) return;
    Client& client = AddClient();
    ++totals_.replica_subscribes;
    Note("client {}: from a replica at {} {}", client.number, from, Describe(*client.selection));
    client.held.clear();
    for (auto& [key, object] : upstream_.StateAt(from)) {
      if (client.selection->matches(*object)) client.held[key] = Held{object->uid, object->json};
    }
    client.resume_from = std::to_string(from);
    if (!Resume(client)) Snapshot(client);
  }

  SubscribeOptions OptionsFor(const Client& client, const std::string& resource_version) const {
    SubscribeOptions options;
    options.namespace_name = client.selection->namespace_name;
    options.label_selector = *LabelSelector::Parse(client.selection->labels);
    options.field_selector = *FieldSelector::Parse(client.selection->fields);
    options.resource_version = resource_version;
    options.allow_bookmarks = client.allow_bookmarks;
    options.queue_capacity = client.capacity;
    options.stall_budget = client.stall_budget;
    options.head_start_stall_budget = client.head_start_stall_budget;
    return options;
  }

  ExpectedCache::SubscribeRequest RequestFor(const Client& client,
                                             const std::string& resource_version) const {
    ExpectedCache::SubscribeRequest request;
    request.selection = client.selection;
    request.resource_version = resource_version;
    request.allow_bookmarks = client.allow_bookmarks;
    request.queue_capacity = client.capacity;
    request.stall_budget = client.stall_budget;
    request.head_start_stall_budget = client.head_start_stall_budget;
    return request;
  }

  void Snapshot(Client& client) {
    ++totals_.snapshots;
    client.held.clear();
    client.resume_from.clear();
    client.in_snapshot = true;
    client.from_version = 0;
    client.frontier = 0;
    client.last_point = 0;
    client.started_at = model_->version();
    const std::string version = Pick(4) == 0 ? "0" : "";
    Note("client {}: subscribe {:?} (snapshot)", client.number, version);
    if (!g_config.independent) {
      client.model_id = *model_->Subscribe(RequestFor(client, version)).id;
    }
    absl::StatusOr<std::shared_ptr<Subscription>> actual =
        cache_->Subscribe(OptionsFor(client, version));
    if (!actual.ok()) {
      Fail(fmt::format("client {}: a snapshot Subscribe was refused: {}", client.number,
                       actual.status().ToString()));
    }
    client.subscription = *std::move(actual);
  }

  // Subscribes from client.resume_from; false (and nothing changed) when refused.
  bool Resume(Client& client) {
    const std::string& from = client.resume_from;
    const uint64_t version = std::stoull(from);
    for (const auto& [low, high] : quiet_gaps_) {
      if (low < version && version < high) {
        ++totals_.resumes_in_quiet_gap;
        break;
      }
    }
    ExpectedCache::SubscribeOutcome expected;
    if (g_config.independent) {
      model_->ExpireWindow();  // as its Subscribe would, so that both modes run the same history
    } else {
      expected = model_->Subscribe(RequestFor(client, from));
    }
    absl::StatusOr<std::shared_ptr<Subscription>> actual =
        cache_->Subscribe(OptionsFor(client, from));
    const bool ahead = actual.ok() && version > model_->version();
    Note("client {}: resume from {} (cache at {}, window {}{}): {}", client.number, from,
         model_->version(), model_->window_valid() ? "from " : "invalid, was ",
         model_->window_start(),
         actual.ok() ? (ahead ? "accepted, ahead of the cache" : "accepted")
                     : actual.status().ToString());
    if (!g_config.independent && actual.ok() != expected.id.has_value()) {
      Fail(fmt::format("client {}: resume from {}: the rules say {}, the cache {}", client.number,
                       from, expected.id ? "accept" : "refuse with OUT_OF_RANGE",
                       actual.ok() ? "accepted it" : actual.status().ToString()));
    }
    if (!actual.ok()) {
      if (actual.status().code() != absl::StatusCode::kOutOfRange) {
        Fail(fmt::format("client {}: resume from {} refused with {} instead of OUT_OF_RANGE",
                         client.number, from, actual.status().ToString()));
      }
      ++totals_.resumes_refused;
      return false;
    }
    ++totals_.resumes;
    if (ahead) ++totals_.ahead_subscribes;
    client.subscription = *std::move(actual);
    if (!g_config.independent) client.model_id = *expected.id;
    client.in_snapshot = false;
    client.from_version = version;
    client.frontier = version;
    client.last_point = client.frontier;
    client.started_at = std::min(model_->version(), client.frontier);
    return true;
  }

  void Reconnect(Client& client) {
    if (client.resume_from.empty() || !Resume(client)) Snapshot(client);
  }

  void CloseSubscription(Client& client, const char* why) {
    Note("client {}: closes ({})", client.number, why);
    client.subscription->Close();
    client.subscription.reset();
    if (!g_config.independent) {
      model_->Close(client.model_id);
      model_->Forget(client.model_id);
    }
  }

  void Disconnect() {
    Client* client = PickClient(/*connected=*/true);
    if (!client) return;
    if (Pick(2) == 0) {
      // Reads what has arrived, then leaves: it resumes from the last item.
      PopSome(*client, SIZE_MAX);
      if (client->subscription) CloseSubscription(*client, "after reading everything");
    } else {
      CloseSubscription(*client, "abruptly, dropping what was queued");
    }
  }

  // The service's bounded waits run out: a snapshot subscription still waiting for SYNCED, or
  // one from a version the cache has not reached, ends UNAVAILABLE.
  // The daemon's periodic Cache::CheckStalled: ends the subscribers that had items waiting and
  // popped nothing since a check at least their stall budget ago (dropping what was queued); the
  // clients see the end at their next pop.
  void StallCheck() {
    std::vector<uint64_t> expected;
    if (!g_config.independent) expected = model_->CheckStalled();
    cache_->CheckStalled();
    Note("stall check: the rules end {} subscriber(s)", expected.size());
    totals_.stall_ends += expected.size();
  }

  void BoundedWait() {
    Client* client = PickClient(/*connected=*/true);
    if (!client) return;
    const bool from_version = client->from_version != 0;
    const bool exact = !g_config.independent;
    bool expected = false;
    bool actual = false;
    if (from_version) {
      if (exact) {
        expected = model_->EndIfAheadOfCache(client->model_id, absl::StatusCode::kUnavailable);
      }
      actual =
          client->subscription->EndIfAheadOfCache([](uint64_t version, const std::string& current) {
            return absl::UnavailableError(
                fmt::format("too large resource version: {}, current: {}", version, current));
          });
    } else {
      if (exact) {
        expected = model_->EndIfAwaitingSynced(client->model_id, absl::StatusCode::kUnavailable);
      }
      actual = client->subscription->EndIfAwaitingSynced(
          absl::UnavailableError("the resource has not synced"));
    }
    Note("client {}: bounded wait for {} runs out: {}", client->number,
         from_version ? "the cache to reach its version" : "SYNCED",
         actual ? "ended" : "not waiting");
    if (exact && expected != actual) {
      Fail(fmt::format(
          "client {}: {} returned {}, the rules say {} (cache at {}, subscribed from {:?}, "
          "holding {} objects, {} items pending)",
          client->number, from_version ? "EndIfAheadOfCache" : "EndIfAwaitingSynced", actual,
          expected, model_->version(), client->resume_from, client->held.size(),
          model_->Pending(client->model_id)));
    }
    if (actual) ++totals_.bounded_wait_ends;
  }

  // ---- A client's stream -------------------------------------------------------------------

  // Pops up to `max` items; at the end of the queue, checks the end state.
  void PopSome(Client& client, std::size_t max) {
    for (std::size_t i = 0; i < max; ++i) {
      if (!client.subscription) return;
      if (!PopOne(client)) {
        AtEndOfQueue(client);
        return;
      }
    }
  }

  // One item as the client sees it.
  struct Seen {
    EventType type = EventType::kAdded;
    std::string resource_version;
    uint64_t version = 0;
    bool has_object = false;
    Key key;
    std::string uid;
    std::string json;
  };

  static Seen SeenFrom(const Delivery& delivery) {
    Seen seen;
    seen.type = delivery.type;
    seen.resource_version = delivery.resource_version();
    seen.version = std::stoull(seen.resource_version);
    if (const ObjectRecord* object = delivery.object()) {
      seen.has_object = true;
      seen.key = Key(object->namespace_name.str(), object->name.str());
      seen.uid = object->uid.str();
      seen.json = object->json.str();
    }
    return seen;
  }

  // What the client may conclude from an item, from what the driver knows (not the rules):
  // markers are points; inside a snapshot nothing else is; after it, a change at a version the
  // watch delivered is a live (or replayed) event, anything else a relist's difference.
  Origin Classify(const Client& client, const Seen& seen) const {
    if (seen.type == EventType::kSynced) return Origin::kSynced;
    if (seen.type == EventType::kBookmark) return Origin::kBookmark;
    if (client.in_snapshot) return Origin::kSnapshot;
    return live_versions_.count(seen.version) ? Origin::kLive : Origin::kRelist;
  }

  bool PopOne(Client& client) {
    const bool exact = !g_config.independent;
    std::optional<Delivery> actual = client.subscription->TryPop();
    std::optional<ExpectedDelivery> expected;
    if (exact) expected = model_->Pop(client.model_id);
    if (!actual && !expected) return false;
    const std::string who = fmt::format("client {} {}", client.number, Describe(*client.selection));
    if (!actual) {
      Fail(fmt::format("{}: the stream is empty, the rules say {} comes next (an event lost)", who,
                       Describe(*expected)));
    }
    const std::string got = DescribeActual(*actual);
    if (exact && !expected) {
      Fail(
          fmt::format("{}: received {}, the rules say nothing comes (a duplicate or an event "
                      "the rules do not produce)",
                      who, got));
    }
    ++totals_.deliveries;
    const Seen seen = SeenFrom(*actual);
    const Origin origin = Classify(client, seen);
    if (exact) {
      bool same = seen.type == expected->type &&
                  seen.resource_version == expected->resource_version &&
                  seen.has_object == (expected->object != nullptr);
      if (same && seen.has_object) {
        same = seen.key == expected->object->key && seen.uid == expected->object->uid &&
               seen.json == expected->object->json;
      }
      if (!same) {
        Fail(fmt::format("{}: received {}, the rules say {}", who, got, Describe(*expected)));
      }
      // The classification the independent checks rely on agrees with the rules.
      const Origin want = expected->origin == Origin::kReplay ? Origin::kLive : expected->origin;
      const bool agrees = client.in_snapshot
                              ? (origin == Origin::kSnapshot && want == Origin::kRelist) ||
                                    want == Origin::kSnapshot || want == origin
                              : want == origin;
      if (!agrees) {
        Fail(fmt::format("{}: {} classified as {}, the rules' model says {}", who, got,
                         OriginName(origin), OriginName(expected->origin)));
      }
    }
    Apply(client, seen, origin, who);
    return true;
  }

  static std::string DescribeActual(const Delivery& delivery) {
    const ObjectRecord* object = delivery.object();
    if (!object) {
      return fmt::format("{} rv={}", EventTypeName(delivery.type), delivery.resource_version());
    }
    return fmt::format("{} {}/{} uid={} object_rv={} rv={}", EventTypeName(delivery.type),
                       object->namespace_name.view(), object->name.view(), object->uid.view(),
                       object->resource_version.view(), delivery.resource_version());
  }

  // The client's own view: what a client that replays its stream can check without the rules.
  void Apply(Client& client, const Seen& d, Origin origin, const std::string& who) {
    if (d.has_object) {
      const Key& key = d.key;
      const auto held = client.held.find(key);
      switch (d.type) {
        case EventType::kAdded:
          if (held != client.held.end()) {
            Fail(fmt::format("{}: ADDED {} which it holds (a duplicate)", who, KeyText(key)));
          }
          client.held[key] = Held{d.uid, d.json};
          break;
        case EventType::kModified:
          if (held == client.held.end()) {
            Fail(fmt::format("{}: MODIFIED {} which it lacks (a gap)", who, KeyText(key)));
          }
          if (held->second.uid != d.uid) {
            Fail(fmt::format("{}: MODIFIED {} under another UID (must be DELETED, then ADDED)", who,
                             KeyText(key)));
          }
          held->second.json = d.json;
          break;
        case EventType::kDeleted:
          if (held == client.held.end()) {
            Fail(fmt::format("{}: DELETED {} which it lacks (a gap)", who, KeyText(key)));
          }
          if (held->second.uid != d.uid) {
            Fail(fmt::format("{}: DELETED {} under another UID", who, KeyText(key)));
          }
          client.held.erase(held);
          break;
        default:
          Fail(fmt::format("{}: a {} with an object", who, EventTypeName(d.type)));
      }
    }
    if (d.type == EventType::kSynced) {
      if (!client.in_snapshot) Fail(who + ": a second SYNCED, or one after a resume");
      client.in_snapshot = false;
    }
    if (d.type == EventType::kSynced || !client.resume_from.empty()) {
      client.resume_from = d.resource_version;
    }
    switch (origin) {
      case Origin::kSnapshot:
        return;  // each at its object's own version: no order among them
      case Origin::kRelist:
        if (d.version < client.last_point) {
          Fail(fmt::format("{}: a relist difference at {} after a point at {}", who, d.version,
                           client.last_point));
        }
        client.frontier = std::max(client.frontier, d.version);
        return;
      case Origin::kLive:
      case Origin::kReplay:
      case Origin::kSynced:
      case Origin::kBookmark:
        break;
    }
    if (d.version < client.frontier) {
      Fail(fmt::format("{}: versions went back: {} after {}", who, d.version, client.frontier));
    }
    client.frontier = d.version;
    client.last_point = d.version;
    if (client.resume_from.empty()) return;  // inside a snapshot: not a point yet
    CheckAgainstUpstream(client, d.version, who);
  }

  // At a point the client could resume from, its map is what the apiserver held at that version,
  // through its selection.
  void CheckAgainstUpstream(const Client& client, uint64_t version, const std::string& who) {
    ++totals_.point_checks;
    for (const Key& key : AllKeys()) {
      const ObjPtr want = upstream_.At(key, version);
      const bool selected = want && client.selection->matches(*want);
      const auto held = client.held.find(key);
      if (selected && held == client.held.end()) {
        Fail(fmt::format("{}: at {} it lacks {} uid={} rv={}, which the apiserver held", who,
                         version, KeyText(key), want->uid, want->resource_version));
      }
      if (!selected && held != client.held.end()) {
        Fail(
            fmt::format("{}: at {} it holds {} uid={}, which the apiserver {} (through its "
                        "selection)",
                        who, version, KeyText(key), held->second.uid,
                        want ? "held in another state" : "did not hold"));
      }
      if (selected && held->second.json != want->json) {
        Fail(fmt::format("{}: at {} it holds {} as {}, the apiserver had {}", who, version,
                         KeyText(key), held->second.json, want->json));
      }
    }
    if (client.held.size() > AllKeys().size()) Fail(who + ": holds keys that never existed");
  }

  // The queue is empty: the end (if any) is the expected one, and a subscriber still following
  // the cache holds what the cache holds, through its selection.
  void AtEndOfQueue(Client& client) {
    const std::string who = fmt::format("client {} {}", client.number, Describe(*client.selection));
    const bool exact = !g_config.independent;
    const std::optional<absl::Status> actual = client.subscription->FinalStatus();
    std::optional<absl::StatusCode> expected;
    if (exact) expected = model_->FinalStatus(client.model_id);
    if (exact &&
        (actual.has_value() != expected.has_value() || (actual && actual->code() != *expected))) {
      Fail(fmt::format("{}: final status {}, the rules say {}", who,
                       actual ? actual->ToString() : "none (still open)",
                       expected ? absl::StatusCodeToString(*expected) : "none (still open)"));
    }
    if (!actual) {
      // Still waiting for the cache to reach the version it resumed from: it holds that state.
      if (exact ? model_->AheadOfCache(client.model_id) : client.from_version > model_->version()) {
        return;
      }
      std::map<Key, std::string> want;
      for (const auto& [key, object] : model_->store()) {
        if (client.selection->matches(*object)) want[key] = object->json;
      }
      std::map<Key, std::string> got;
      for (const auto& [key, held] : client.held) got[key] = held.json;
      if (got != want) {
        std::string differences;
        for (const Key& key : AllKeys()) {
          const auto g = got.find(key);
          const auto w = want.find(key);
          if ((g == got.end()) != (w == want.end()) || (g != got.end() && g->second != w->second)) {
            differences += fmt::format(" {} (holds {}, the cache {})", KeyText(key),
                                       g == got.end() ? "nothing" : g->second,
                                       w == want.end() ? "nothing" : w->second);
          }
        }
        Fail(fmt::format("{}: having read everything, it differs from the cache:{}", who,
                         differences));
      }
      return;
    }
    const std::string message(actual->message());
    switch (actual->code()) {
      case absl::StatusCode::kResourceExhausted: {
        ++totals_.fell_behind;
        const std::string& from = client.resume_from;
        if (exact && model_->FellBehindResumeFrom(client.model_id) != from) {
          Fail(fmt::format("{}: the rules say it fell behind at {:?}, but it last received {:?}",
                           who, model_->FellBehindResumeFrom(client.model_id), from));
        }
        const std::string says = from.empty()
                                     ? "before its initial snapshot was complete"
                                     : fmt::format(
                                           "the last event it was sent has resource version {}: "
                                           "resume from it",
                                           from);
        if (message.find(says) == std::string::npos) {
          Fail(fmt::format("{}: fell behind with {:?}, which does not say {:?}", who, message,
                           says));
        }
        break;
      }
      case absl::StatusCode::kOutOfRange:
        ++totals_.ended_out_of_range;
        break;
      case absl::StatusCode::kUnavailable:
        break;
      default:
        Fail(fmt::format("{}: ended with {}", who, actual->ToString()));
    }
    Note("client {}: ended: {}", client.number, actual->ToString());
    client.subscription.reset();
    if (exact) model_->Forget(client.model_id);
    if (Pick(2) == 0) Reconnect(client);
  }

  // ---- Reads -------------------------------------------------------------------------------

  void CheckList(const Selection& selection) {
    absl::StatusOr<ListResult> actual =
        cache_->List(selection.namespace_name, *LabelSelector::Parse(selection.labels),
                     *FieldSelector::Parse(selection.fields));
    if (!actual.ok()) Fail("List failed: " + actual.status().ToString());
    const ExpectedRead expected = model_->List(selection);
    const std::string what = fmt::format("List {}", Describe(selection));
    CheckRead(what, actual->items, actual->resource_version, actual->synced,
              actual->unsynced_reason, expected);
    if (actual->synced) CheckSyncedRead(what, actual->items, actual->resource_version, &selection);
  }

  void CheckGet(const Key& key) {
    const GetResult actual = cache_->Get(key.first, key.second);
    std::vector<std::shared_ptr<const ObjectRecord>> items;
    if (actual.object) items.push_back(actual.object);
    const std::string what = fmt::format("Get {}", KeyText(key));
    CheckRead(what, items, actual.resource_version, actual.synced, actual.unsynced_reason,
              model_->Get(key));
    if (actual.synced) {
      const ObjPtr want = upstream_.At(key, std::stoull(actual.resource_version));
      if ((want != nullptr) != (actual.object != nullptr) ||
          (want && actual.object->json.view() != want->json)) {
        Fail(fmt::format("{}: synced at {} but not what the apiserver held there", what,
                         actual.resource_version));
      }
    }
  }

  void CheckRead(const std::string& what,
                 const std::vector<std::shared_ptr<const ObjectRecord>>& items,
                 const std::string& resource_version, bool synced,
                 const std::string& unsynced_reason, const ExpectedRead& expected) {
    Note("{}: {} items at {:?}, synced={} {}", what, items.size(), resource_version, synced,
         unsynced_reason);
    (synced ? totals_.reads_synced : totals_.reads_unsynced) += 1;
    if (!g_config.independent &&
        (synced != expected.synced || unsynced_reason != expected.unsynced_reason)) {
      Fail(fmt::format("{}: synced={} ({:?}), the rules say synced={} ({:?})", what, synced,
                       unsynced_reason, expected.synced, expected.unsynced_reason));
    }
    if (!g_config.independent && resource_version != expected.resource_version) {
      Fail(fmt::format("{}: resource version {:?}, the model's {:?}", what, resource_version,
                       expected.resource_version));
    }
    bool same = items.size() == expected.items.size();
    for (std::size_t i = 0; same && i < items.size(); ++i) {
      same = items[i]->json.view() == expected.items[i]->json;
    }
    if (!same) {
      Fail(fmt::format("{}: {} items, the model's store has {} (or they differ)", what,
                       items.size(), expected.items.size()));
    }
  }

  // A synced read is one complete state: the apiserver's at the version it reports.
  void CheckSyncedRead(const std::string& what,
                       const std::vector<std::shared_ptr<const ObjectRecord>>& items,
                       const std::string& resource_version, const Selection* selection) {
    std::vector<std::string> want;
    for (const auto& [key, object] : upstream_.StateAt(std::stoull(resource_version))) {
      if (selection->matches(*object)) want.push_back(object->json);
    }
    std::vector<std::string> got;
    for (const auto& item : items) got.emplace_back(item->json.view());
    if (got != want) {
      Fail(fmt::format("{}: synced at {} but not the apiserver's state there (a mixed state?)",
                       what, resource_version));
    }
  }

  void CheckStats() {
    const CacheStats actual = cache_->Stats();
    const ExpectedStats expected = model_->Stats();
    const auto check = [&](const char* field, const auto& got, const auto& want) {
      if (!(got == want)) Fail(fmt::format("Stats.{}: {}, the model's {}", field, got, want));
    };
    check("object_count", actual.object_count, expected.object_count);
    check("subscriber_count", actual.subscriber_count, expected.subscriber_count);
    check("resource_version", actual.resource_version, expected.resource_version);
    check("synced", actual.synced, expected.synced);
    check("unsynced_reason", actual.unsynced_reason, expected.unsynced_reason);
    check("relisting", actual.relisting, expected.relisting);
    check("events_applied", actual.events_applied, expected.events_applied);
    check("subscribers_fell_behind", actual.subscribers_fell_behind,
          expected.subscribers_fell_behind);
    check("queue_high_water", actual.queue_high_water, expected.queue_high_water);
    check("bookmarks_dropped", actual.bookmarks_dropped, expected.bookmarks_dropped);
    check("events_delivered", actual.events_delivered, expected.events_delivered);
    check("object_bytes", actual.object_bytes, expected.object_bytes);
    check("window_events", actual.window_events, expected.window_events);
  }

  // ---- After every action ------------------------------------------------------------------

  void AfterAction() {
    // Fast readers read everything at once.
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      Client& client = clients_[i];
      if (client.subscription && !client.slow) PopSome(client, SIZE_MAX);
    }
    // The model itself: a complete store is the apiserver's state at the cache's version.
    if (model_->complete()) {
      const auto state = upstream_.StateAt(model_->version());
      bool same = state.size() == model_->store().size();
      for (auto it = state.begin(), jt = model_->store().begin(); same && it != state.end();
           ++it, ++jt) {
        same = it->first == jt->first && it->second->json == jt->second->json;
      }
      if (!same) Fail(fmt::format("the model's store is not the state at {}", model_->version()));
    }
    if (!g_config.independent) {
      CheckStats();
      totals_.raised_pushes = model_->raised_pushes();
      totals_.unread_dropped = model_->unread_dropped();
    }
    if (step_ % 2048 == 0) Prune();
  }

  // Forgets history no check can ask about: below the cache's version, every client's start and
  // resume point, and the window's start (a replica client may start there).
  void Prune() {
    uint64_t floor = model_->version();
    if (phase_ == Phase::kListing) floor = std::min(floor, list_version_);
    if (model_->window_valid()) floor = std::min(floor, model_->window_start());
    for (const Client& client : clients_) {
      if (client.subscription) floor = std::min(floor, client.started_at);
      if (!client.resume_from.empty()) {
        const uint64_t from = std::stoull(client.resume_from);
        if (client.subscription || model_->ResumeServable(from)) floor = std::min(floor, from);
      }
    }
    upstream_.Prune(floor);
    while (!relist_spans_.empty() && relist_spans_.front().second < floor) {
      relist_spans_.pop_front();
    }
    live_versions_.erase(live_versions_.begin(), live_versions_.lower_bound(floor));
  }

  enum class Phase { kBroken, kListing, kWatching };

  const uint64_t seed_;
  std::mt19937_64 rng_;
  uint64_t step_ = 0;
  uint64_t names_ = 6;
  FakeClock clock_;
  std::shared_ptr<Cache> cache_;
  std::unique_ptr<ExpectedCache> model_;
  Upstream upstream_;
  uint64_t rv_ = 100;
  uint64_t uids_ = 0;
  struct PendingEvent {
    WatchEventType type;
    ObjPtr object;
    // A re-creation reported without its deletion: the deletion's version (the cache reports it).
    uint64_t unreported_deletion = 0;
  };
  std::deque<PendingEvent> pending_;
  // Versions of the changes the watch delivered (each a live event, alone at its version): what
  // tells a live event from a relist's difference in a stream, without the rules' model.
  std::set<uint64_t> live_versions_;
  Phase phase_ = Phase::kBroken;
  uint64_t list_version_ = 0;
  std::vector<ObjPtr> list_items_;
  std::size_t list_next_ = 0;
  bool watch_list_ = false;
  // The relist's differences so far (a relist can span aborted attempts: the cache's are counted
  // until one completes).
  uint64_t differences_since_end_list_ = 0;
  // Recent relists that took the cache from one version past others it never saw: (its version,
  // the list's), and those that found no difference doing so.
  std::deque<std::pair<uint64_t, uint64_t>> relist_spans_;
  std::deque<std::pair<uint64_t, uint64_t>> quiet_gaps_;
  std::vector<Client> clients_;
  int next_client_ = 1;
  Totals totals_;
  std::deque<std::string> trace_;
};

// Runs seeds [first, first + count) of `steps` each; prints a line per seed when asked.
Totals RunSeeds(uint64_t first, uint64_t count, uint64_t steps, bool print) {
  Totals all;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    const auto start = std::chrono::steady_clock::now();
    Simulation simulation(seed);
    try {
      simulation.Run(steps);
    } catch (const ModelFailure& failure) {
      FAIL(failure.what() << "\nlast actions:\n"
                          << simulation.Trace() << "reproduce: bazel run -c opt "
                          << "//test/core/model:cache_model_test -- --seed " << seed << " --steps "
                          << steps << " --trace");
    }
    all.Add(simulation.totals());
    if (print) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      fmt::print("seed {}: {:.1f} s, {}\n", seed, elapsed, simulation.totals().Describe());
    }
  }
  return all;
}

TEST_CASE("the cache follows the reference model through random histories") {
  const auto start = std::chrono::steady_clock::now();
  const bool bounded = !g_config.seed_given && g_config.seeds == 0;
  const uint64_t seeds = g_config.seeds != 0 ? g_config.seeds : (bounded ? 40 : 1);
  const Totals totals = RunSeeds(g_config.first_seed, seeds, g_config.steps, !bounded);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} seeds from {}, {:.1f} s, 0 failures: {}\n", seeds, g_config.first_seed, elapsed,
             totals.Describe());
  if (bounded && !g_config.independent) {
    // The run exercised what it claims to.
    CHECK(totals.relists_aborted > 50);
    CHECK(totals.watch_list_relists > 100);
    CHECK(totals.resumes > 500);
    CHECK(totals.resumes_refused > 200);
    CHECK(totals.ahead_subscribes > 50);
    CHECK(totals.fell_behind > 100);
    CHECK(totals.ended_out_of_range > 10);
    CHECK(totals.bounded_wait_ends > 20);
    CHECK(totals.stall_ends > 20);
    CHECK(totals.unread_dropped > 10);
    CHECK(totals.raised_pushes > 20);
    CHECK(totals.reads_unsynced > 500);
    // Relists that find no difference past versions the cache never saw, with clients from a
    // replica waiting in between and resuming from in between afterwards.
    CHECK(totals.quiet_relists > 30);
    CHECK(totals.waiting_in_quiet_gap > 15);
    CHECK(totals.resumes_in_quiet_gap > 25);
  }
}

}  // namespace
}  // namespace informerd::core::model

int main(int argc, char* argv[]) {
  using informerd::core::model::g_config;
  Catch::Session session;
  using Catch::clara::Opt;
  auto cli = session.cli() |
             Opt([](uint64_t steps) { g_config.steps = steps; },
                 "steps")["--steps"]("steps per seed (default 1000)") |
             Opt(
                 [](uint64_t seed) {
                   g_config.first_seed = seed;
                   g_config.seed_given = true;
                 },
                 "seed")["--seed"]("the first seed (default 1)") |
             Opt([](uint64_t seeds) { g_config.seeds = seeds; }, "count")["--seeds"](
                 "how many seeds (default: 40 for the bounded run, 1 with --seed)") |
             Opt(g_config.trace)["--trace"]("print every action") |
             Opt(g_config.independent)["--independent"](
                 "only the checks against the apiserver's history (no comparison with the rules' "
                 "model)");
  session.cli(cli);
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  return session.run();
}
