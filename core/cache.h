// Cache: one informer's serving half. It receives what the reflector lists and watches
// (it is the ReflectorSink), keeps the objects in an indexed Store, keeps a replay window of
// recent events, and fans every change out to any number of subscribers, each with its own
// filter and bounded queue. The apiserver's watch cache is the model: Cache is cacher.go,
// Store + EventWindow are watch_cache.go, Subscription is cache_watcher.go.
//
// Data flow: Reflector (core/reflector.*) → Cache (this) → Subscription queues → RPC layer
// (daemon/), which also calls List, Get and Stats for the unary RPCs and ListResources.
//
// Ownership and threads: the daemon owns each Cache through a std::shared_ptr (Create);
// subscriptions refer back to it weakly, so either may go first. The ReflectorSink methods are
// called from one thread (the reflector's); Subscribe, List, Get, Stats and Shutdown from any
// thread (gRPC's). One std::shared_mutex orders everything: event application and subscriber
// registration take it exclusively, List/Get/Stats share it. Each subscription also has a small
// mutex of its own for its queue, so its consumer never waits for the cache's lock; on_ready
// callbacks run after the cache's lock is released.
//
// The rules, after the apiserver's watch cache (explained in docs/kubernetes-semantics.md, "The
// watch cache's serving rules", "The replay window" and "A relist is not a reset for
// subscribers"):
//  * Resource versions are compared as unsigned 64-bit numbers, as the cacher does.
//  * Subscribe without a resource version (or "0", which the cacher also answers from its
//    cache): the matching objects as ADDED, then SYNCED at the snapshot's resource version,
//    then live events. The snapshot is taken and the subscriber registered under the exclusive
//    lock, so live events continue exactly where the snapshot ends. Before the cache is synced
//    (or while a relist is changing it) the snapshot is of what the cache holds, followed by the
//    events that complete it, and SYNCED comes when the list ends, at the list's version.
//  * Subscribe from version X: the window's events after X, then live events. X older than the
//    window: OUT_OF_RANGE ("too old resource version", the cacher's 410). X newer than the cache
//    (a client coming from a replica that is ahead): the subscription is accepted and waits,
//    receiving only events after X; the cacher waits too, but gives up after 3 s, which here is
//    left to the caller (close the subscription at a deadline if wanted).
//  * Per subscriber, a MODIFIED object that starts matching arrives as ADDED, one that stops
//    matching as DELETED (carrying the previous state, the one that matched, with the change's
//    resource version as the event's: as the cacher does since Kubernetes 1.9; the JSON inside
//    is not rewritten, so its own metadata.resourceVersion is the previous one). DELETED carries
//    the last known object at the deletion's resource version.
//  * Upstream bookmarks advance the cache's resource version and are forwarded to subscribers
//    that asked for them (never blocking: see subscription.h).
//  * A subscriber that is not keeping up is ended with RESOURCE_EXHAUSTED, never waited for: its
//    live queue may grow past queue_capacity through a burst while it keeps reading, but not
//    when it reads nothing for stall_budget (head_start_stall_budget while its snapshot or
//    replay is not all read; the cache's clock; checked as events are pushed
//    and, for subscribers no event reaches, by CheckStalled), nor past its live limit, the hard
//    limit raised while it reads its snapshot or replay (subscription.h, "Bounded memory").
//  * A relist is not a reset: BeginList/ListItems/EndList turn the new list into differences
//    (ADDED, MODIFIED, DELETED; a changed UID is DELETED then ADDED) against the cache, applied
//    and fanned out as they are found, page by page, so the resource is never held twice.
//    Unchanged objects (same UID and resourceVersion) produce nothing. The events carry the
//    list's resource version; when the list's version is not known yet (a WatchList stream
//    learns it only at its final bookmark), the object's own resourceVersion (for the DELETED
//    half of a UID change, the new object's). Objects absent from the list are DELETED at
//    EndList with the list's version.
//  * The window during and after a relist: differences are not events the window can replay
//    (they share one version, or carry object versions out of order), so the first difference
//    empties the window and resuming is refused (OUT_OF_RANGE) until EndList, where the window
//    restarts at the list's version. If differences went out to subscribers, a subscriber that
//    stopped in the middle of them holds the list's version too, and "after it" would skip the
//    rest: then the list's version itself is refused, and resuming needs a later event or
//    bookmark. A subscriber still waiting for a future version when differences start is ended
//    with OUT_OF_RANGE. A relist that finds no difference keeps the window as it was: nothing
//    changed that it would have to replay. But if its version L is above the cache's V, the
//    cache knows nothing of what happened between them (an object created and deleted there):
//    resuming from a version strictly between V and L is refused, and a subscriber waiting for
//    such a version is ended with OUT_OF_RANGE (both hold a state the cache never had).
//  * A live ADDED/MODIFIED whose UID differs from the cached object's (the watch reported the
//    re-creation but not the deletion) is delivered as DELETED then ADDED. The deletion had a
//    version of its own, between the previous event and this one: the DELETED carries this
//    event's version minus one, so that each half is its own resume point.
//  * An upstream event whose resource version is not a number, or goes backwards (or a UID
//    change with no version left for the deletion), and a list whose resource version is not a
//    number, are applied and delivered, but the window cannot order them: the window is reset
//    and restarts by itself (below). Each reset is counted (CacheStats::window_resets) and
//    reported (CacheOptions::on_window_reset), and refusals say what happened.
//  * MarkUnsynced keeps objects and subscribers; List/Get report synced=false (the RPC layer
//    answers UNAVAILABLE); new snapshot subscribers get SYNCED after the next EndList.
//  * Reads during a relist. The store is never held twice, so from the first difference a relist
//    applies until the EndList that completes a relist it is a mix of two states: objects newer
//    than the version the cache reports, objects already deleted upstream. Readers must not see
//    it: List, Get and Stats report synced=false with the reason "a relist is replacing the
//    cached objects (since resource version X)", X being the version of the last complete
//    state, and the RPC layer waits (as the apiserver's cacher makes readers wait while it is not
//    ready) until the list's EndList. An aborted relist keeps what it applied, so the store
//    stays mixed and reads stay refused until a later EndList. A relist that has applied no
//    difference yet leaves the store as it was: reads go on being served that state. Before the
//    first sync, and after MarkUnsynced, the reason is theirs.
//
// The window after a reset. Resuming from V is sound only if whoever holds V has received every
// change up to V, and the window holds every change after V. A change the window cannot order
// breaks the first half for the versions sent before it: its own version is unusable (the
// event is delivered with the cache's version, or shares one with the other half of a UID
// change), so a subscriber holding one of those versions may or may not have received it. So
// the window is reset, and resuming is refused (OUT_OF_RANGE) until an event or bookmark arrives
// whose version is above `high`, the largest version sent so far (of any change, a relist's
// differences included, and the cache's own, which bookmarks and SYNCED markers carry). The
// window then restarts after `high`, `high` itself excluded, and that event goes into it. This
// is sound: every version sent before that event is at most `high` (after the reset, events
// at or below `high` and bookmarks not above it do not restart it), so whoever holds a version
// above `high` received it after the unorderable change, and every change from that event on is
// in the window (another unorderable one resets it again). Versions up to `high` stay refused,
// older ones included: nothing tells a holder that missed the unorderable change from one that
// did not. A relist also restarts the window (at the list's version, as after any relist) if
// the list is newer than every version sent before its differences; one no newer leaves the
// window waiting to restart. A relist under way takes precedence: the window does not restart by
// itself between BeginList and EndList.
//
// Paged lists. A List may be read in pages (ListChunk: a limit, and a cursor to continue from),
// and every page of one list is read from the same state, the one at the first page's resource
// version V, as the apiserver serves every page of a paged list from one etcd revision. The cache
// holds only its current state, and keeps no copy per list: a page continued from V is the
// current state with the changes made after V undone, which the replay window holds (each
// change's previous state, or nothing for a creation). That costs the cache nothing per list,
// so no client can pin memory by starting lists it never finishes, and a list can be continued
// for as long as the window reaches back to V: while the resource has changed less since than
// the window holds (CacheOptions::window_max_events changes, none older than window_max_age),
// indefinitely on a quiet resource. After that, or once the cache's history was broken (a relist
// that changed the cache, a window reset: the window's generation changes), or on another cache
// (each Cache has a random id: another replica, a restart, an informer started again), a
// continued page is OUT_OF_RANGE, the apiserver's 410 Expired for a continue token whose
// revision was compacted: the list must start again. Never an inconsistent page.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cache_event.h"
#include "core/clock.h"
#include "core/defaults.h"
#include "core/event_window.h"
#include "core/field_selector.h"
#include "core/label_selector.h"
#include "core/object_filter.h"
#include "core/object_record.h"
#include "core/reflector_sink.h"
#include "core/store.h"
#include "core/subscription.h"
#include "core/watch_event_decoder.h"

namespace informerd::core {

// A reset of the replay window other than a relist's (CacheOptions::on_window_reset).
struct WindowReset {
  WindowResetReason reason = WindowResetReason::kNonNumericVersion;
  // What happened, as refused resumes quote it; for example: the replay window was reset at
  // resource version 12 because a watch event's resource version "x1" is not a number; it
  // serves resumes again from the next event or bookmark with a newer resource version.
  std::string message;
};

struct CacheOptions {
  // The configured extra field paths, in the order of ObjectRecord::extra_fields (the same list
  // as ScanOptions::extra_field_paths). Each is indexed and usable in field selectors.
  std::vector<std::string> extra_field_paths;
  // Replay window bounds (see event_window.h).
  std::size_t window_max_events = 10000;
  std::chrono::steady_clock::duration window_max_age = std::chrono::seconds(75);
  // Told of each reset of the replay window other than a relist's ("The window after a reset"
  // above): once when the window stops being usable, not again for further unorderable changes
  // before it restarts. Called on the reflector's thread after the cache's lock is released;
  // must be quick; may read the cache. Optional. core/ has no logger: the daemon logs it.
  std::function<void(const WindowReset&)> on_window_reset;
};

struct SubscribeOptions {
  // "" for all namespaces.
  std::string namespace_name;
  LabelSelector label_selector;
  FieldSelector field_selector;
  // "" or "0": snapshot, SYNCED, live. A number X: events after X. Anything else is
  // INVALID_ARGUMENT.
  std::string resource_version;
  bool allow_bookmarks = false;
  // The live queue's soft bound (see subscription.h, "Bounded memory"). At least 1. The hard
  // bound is Subscription::kHardLimitFactor times it.
  std::size_t queue_capacity = kDefaultSubscriberQueueCapacity;
  // How long the live queue may stay over queue_capacity with nothing popped before the
  // subscriber is ended as fallen behind (checked when an event is pushed), and how long any
  // item may wait with nothing popped (Cache::CheckStalled). Not negative; zero ends it at the
  // second event pushed over the capacity without a pop in between. 1 s: far
  // more than one write to a reading client takes, and, as for the cacher's budget, small
  // against the memory a stalled reader would otherwise pin.
  std::chrono::steady_clock::duration stall_budget = std::chrono::seconds(1);
  // The same budget while items of the subscriber's initial snapshot or replayed window wait
  // (subscription.h, "Not reading at all"); at least stall_budget (a smaller value counts as
  // stall_budget). 10 s: far more than the gaps of several seconds between one stream's writes
  // measured while a thousand snapshots are written at once on two cores, and still a bound on how
  // long a subscriber that stops reading pins its snapshot.
  std::chrono::steady_clock::duration head_start_stall_budget = std::chrono::seconds(10);
  // See subscription.h, "Consumer protocol".
  std::function<void()> on_ready;
};

// Which state a List read ("Paged lists" above): enough for a later page to read it again.
struct ListState {
  // The cache that read it (Cache::id()).
  uint64_t cache_id = 0;
  // Its replay window's generation at the time (EventWindow::generation()).
  uint64_t generation = 0;
  // The cache's resource version, as a number.
  uint64_t version = 0;
};

// Where a continued page starts: the list's state, and the last object of the previous page.
struct ListCursor {
  ListState state;
  ObjectKey after;
};

// What part of a List to read: a chunk, as kubectl's --chunk-size calls a page (core::ListPage
// is a page of the apiserver's LIST: list_decoder.h).
struct ListChunk {
  // At most this many items (0: every matching object); ListResult::more says whether more
  // follow.
  std::size_t limit = 0;
  // Continue a list: the items after `after` in the state `state` ("Paged lists" above).
  // Without it, the list starts at the beginning of the current state.
  std::optional<ListCursor> from;
};

struct ListResult {
  // Ordered by namespace, then name.
  std::vector<std::shared_ptr<const ObjectRecord>> items;
  // With a limit: more matching objects follow the last item (continue after it, from `state`).
  bool more = false;
  // The state read; its version is resource_version's (when that is a number).
  ListState state;
  // The cache's resource version at the moment of the read.
  std::string resource_version;
  // The items are one complete state, the one at resource_version: false before the first sync,
  // after MarkUnsynced, and while a relist is replacing the cached objects ("Reads during a
  // relist" above). Not synced, the items must not be served.
  bool synced = false;
  // Why not synced (CacheStats::unsynced_reason); empty when synced.
  std::string unsynced_reason;
};

struct GetResult {
  // nullptr when no such object is cached.
  std::shared_ptr<const ObjectRecord> object;
  std::string resource_version;
  // As for ListResult.
  bool synced = false;
  std::string unsynced_reason;
};

// For ListResources and metrics.
struct CacheStats {
  std::size_t object_count = 0;
  std::size_t subscriber_count = 0;
  // Empty before the first sync.
  std::string resource_version;
  // As ListResult::synced: the cache holds one complete state (so it is false while a relist is
  // replacing the cached objects).
  bool synced = false;
  // Why the cache is not synced (MarkUnsynced's reason, that the initial list has not completed,
  // or that a relist is replacing the cached objects since a version); empty when synced.
  std::string unsynced_reason;
  // A list is in progress (between BeginList and EndList/AbortList), or an aborted one left the
  // store changed and no list has completed since.
  bool relisting = false;
  // After Shutdown: the status it was given (readers must not serve this cache any more).
  std::optional<absl::Status> shut_down;
  // ADDED/MODIFIED/DELETED events produced (live and from relists).
  uint64_t events_applied = 0;
  // Subscribers ended because they fell behind (stall budget or hard limit).
  uint64_t subscribers_fell_behind = 0;
  // The longest any live queue has been (it may exceed the capacity: subscription.h).
  std::size_t queue_high_water = 0;
  // Bookmarks not queued for a subscriber because its live queue was at or over its capacity
  // (bookmarks are optional: subscription.h).
  uint64_t bookmarks_dropped = 0;
  // Events queued for subscribers: one per subscriber an ADDED/MODIFIED/DELETED reaches
  // (snapshots, replays, bookmarks and SYNCED markers are not counted).
  uint64_t events_delivered = 0;
  // The JSON bytes of the cached objects: nearly all of the cache's memory.
  std::size_t object_bytes = 0;
  // Events in the replay window.
  std::size_t window_events = 0;
  // Resets of the replay window other than a relist's, by reason (WindowReset).
  std::array<uint64_t, kWindowResetReasonCount> window_resets{};
};

class Cache final : public ReflectorSink, public std::enable_shared_from_this<Cache> {
 public:
  // `clock` must outlive the cache.
  static std::shared_ptr<Cache> Create(CacheOptions options, const Clock& clock);
  // Ends every subscription with UNAVAILABLE.
  ~Cache() override;
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // ReflectorSink: the reflector's thread.
  void BeginList() override;
  void ListItems(std::vector<ObjectRecord> items,
                 const std::string& list_resource_version) override;
  void EndList(const std::string& resource_version) override;
  void AbortList() override;
  void ApplyWatchEvent(WatchEvent event) override;
  void MarkUnsynced(const std::string& reason) override;

  // Any thread. INVALID_ARGUMENT for an unsupported field or a non-numeric resource version,
  // OUT_OF_RANGE when the version cannot be replayed, the shutdown status after Shutdown.
  absl::StatusOr<std::shared_ptr<Subscription>> Subscribe(SubscribeOptions options);
  // INVALID_ARGUMENT for an unsupported field. With `page.from` ("Paged lists" above): the
  // page of the state at page.from->state.version, synced and with that resource version, or
  // OUT_OF_RANGE when this cache can no longer read that state (the message says why and to
  // list again from the start); it is read whether or not the cache is synced now.
  absl::StatusOr<ListResult> List(std::string namespace_name, LabelSelector label_selector,
                                  const FieldSelector& field_selector,
                                  const ListChunk& page = {}) const;
  GetResult Get(std::string_view namespace_name, std::string_view name) const;
  CacheStats Stats() const;
  const std::vector<std::string>& extra_field_paths() const { return extra_field_paths_; }
  // Random, fixed for the cache's life: tells its list states from another cache's.
  uint64_t id() const { return id_; }

  // Ends every subscription with `status` (UNAVAILABLE when the daemon stops or the resource is
  // no longer served) and refuses new ones with it.
  void Shutdown(const absl::Status& status);

  // The stall rule's timer (subscription.h, "Not reading at all"): ends with RESOURCE_EXHAUSTED,
  // dropping what was queued, each subscription that has had items waiting and popped nothing
  // since a call at least its stall budget ago that already found them waiting; counted with
  // the subscribers that fell behind. A subscriber that fell behind as an event was pushed keeps
  // its queue to read; one that does not read it is treated the same way (its queue dropped, its
  // status naming the last item it popped). Meant for a timer thread, every period P: a
  // subscriber is then ended within its stall budget plus 2P of its last pop. Holds the cache's
  // shared lock while it looks at each subscription (a mutex and a few comparisons each), the
  // exclusive one only to unregister those it ended and to look at those that fell behind.
  // Returns whether any subscription is left to check: false stops the checks (the caller stops
  // calling) until StartStallChecks says to start again.
  bool CheckStalled();
  // True for exactly one caller once subscriptions exist and no checks run: that caller must
  // call CheckStalled periodically until it returns false. Cheap (an atomic); any thread, after
  // Subscribe.
  bool StartStallChecks();

  // For tests: entries the store has tested against filters (see Store::entries_examined).
  uint64_t store_entries_examined() const;

 private:
  class Token {
    friend class Cache;
    Token() {}  // user-provided, so that `{}` cannot make one outside Cache
  };

 public:
  // Use Create: subscriptions need the cache to be owned by a shared_ptr.
  Cache(Token, CacheOptions options, const Clock& clock);

 private:
  friend class Subscription;
  using Wakeups = std::vector<std::pair<std::shared_ptr<Subscription>, bool>>;

  // All with mu_ held exclusively.
  std::shared_ptr<const ObjectRecord> Own(ObjectRecord record) const;
  void Emit(const std::shared_ptr<const CacheEvent>& event, bool from_relist, Wakeups& wakeups);
  void EmitChange(EventType type, const std::string& resource_version, uint64_t version,
                  std::shared_ptr<const ObjectRecord> object,
                  std::shared_ptr<const ObjectRecord> prev, bool from_relist, Wakeups& wakeups);
  void EmitBookmark(const std::string& resource_version, uint64_t version, Wakeups& wakeups);
  void MarkRelistDirty(Wakeups& wakeups);
  // The store holds one complete state: synced, and no relist has changed it since its last
  // EndList. Otherwise, why not.
  bool Complete() const { return synced_ && !relist_dirty_; }
  std::string IncompleteReason() const;
  // Window resets other than a relist's ("The window after a reset" above).
  using WindowResets = std::vector<WindowReset>;
  // The window cannot order a change: resets it, saying `what` happened. Counted, and added to
  // `resets`, unless the window was already waiting to restart.
  void ResetWindow(WindowResetReason reason, const std::string& what, WindowResets& resets);
  // Restarts a reset window if `version` is above every version sent so far.
  void MaybeRestartWindow(uint64_t version);
  // Invalidates the window with the pending reset's message (window_reset_ must be set).
  void InvalidateForReset();
  // The largest version sent so far: `high` above.
  uint64_t HighestVersionSent() const;
  void BeginListLocked();
  // mu_ held (shared is enough): the items after `cursor.after` in the state at
  // cursor.state.version, at most `max` of them (0: all); OUT_OF_RANGE when that state can no
  // longer be read.
  absl::Status ReadHistory(const ObjectFilter& filter, const ListCursor& cursor, std::size_t max,
                           std::vector<std::shared_ptr<const ObjectRecord>>& items) const;
  void Prune();
  // Store mutations that keep object_bytes_ current.
  void PutObject(const std::shared_ptr<const ObjectRecord>& record);
  std::shared_ptr<const ObjectRecord> RemoveObject(std::string_view namespace_name,
                                                   std::string_view name);
  // Without mu_.
  static void Wake(Wakeups& wakeups);
  void Report(const WindowResets& resets) const;
  void Unregister(const Subscription& subscription);

  const std::vector<std::string> extra_field_paths_;
  const uint64_t id_;
  const Clock& clock_;
  const std::function<void(const WindowReset&)> on_window_reset_;

  mutable std::shared_mutex mu_;
  // Everything below is guarded by mu_.
  Store store_;
  EventWindow window_;
  std::vector<std::shared_ptr<Subscription>> subscriptions_;
  uint64_t next_subscription_id_ = 1;
  // The cache's resource version: the last event's or bookmark's, or the last list's.
  uint64_t version_ = 0;
  std::string resource_version_;
  bool synced_ = false;
  std::string unsynced_reason_ = "the initial list has not completed";
  // Between BeginList and EndList/AbortList.
  bool relisting_ = false;
  // The list in progress stamps the store's entries with this.
  uint64_t list_stamp_ = 0;
  // A relist has changed the store since the last EndList (survives AbortList: the changes
  // stay).
  bool relist_dirty_ = false;
  // With relist_dirty_: the cache's resource version when the relist first changed the store,
  // the version of the last complete state (for the reason readers are given).
  std::string relist_dirty_since_;
  // ... and some of those changes reached a subscriber.
  bool relist_delivered_ = false;
  bool shut_down_ = false;
  absl::Status shutdown_status_;
  // Someone calls CheckStalled periodically (StartStallChecks). Set by StartStallChecks, cleared
  // under the exclusive lock when CheckStalled finds no subscription, so that a subscriber
  // registered after that clearing finds it cleared.
  std::atomic<bool> stall_checks_running_{false};
  // Subscriptions that fell behind as an event was pushed (unregistered, their queues kept for
  // them to read), until CheckStalled finds them read to the end or drops what is left.
  std::vector<std::weak_ptr<Subscription>> fell_behind_unread_;
  // The largest version() of any change emitted so far, a relist's differences included.
  uint64_t max_change_version_ = 0;
  // While the window waits to restart after a reset other than a relist's: what happened.
  std::optional<std::string> window_reset_;
  // With window_reset_: HighestVersionSent() when the relist under way first changed the cache.
  // A list no newer than it cannot restart the window (see "The window after a reset").
  uint64_t reset_high_before_relist_ = 0;
  std::array<uint64_t, kWindowResetReasonCount> window_resets_{};
  uint64_t events_applied_ = 0;
  uint64_t fell_behind_ = 0;
  std::size_t queue_high_water_ = 0;
  uint64_t bookmarks_dropped_ = 0;
  uint64_t events_delivered_ = 0;
  std::size_t object_bytes_ = 0;
};

}  // namespace informerd::core
