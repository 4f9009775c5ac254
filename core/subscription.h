// Subscription: one subscriber's stream out of the cache (the cacher's cacheWatcher): its filter,
// its bounded queue of Deliveries, and how it ends.
//
// Data flow: Cache::Subscribe (core/cache.h) creates it, fills it with the initial snapshot or
// the replayed window, and from then on pushes each event the subscriber's filter lets through,
// under the cache's lock, on the reflector's thread. The consumer, normally the gRPC writer for
// one Subscribe call, pops on its own thread with TryPop and is told when to look again through
// `on_ready`. Ownership is shared: the cache holds the subscription while it is live, the
// consumer holds it until it is done with it; Close (or the end of the stream) unregisters it
// from the cache, which then holds nothing of it.
//
// Bounded memory (a subscriber that cannot keep up is ended, never waited for; see
// docs/kubernetes-semantics.md, "Slow watchers are closed"): `queue_capacity` is
// a soft bound on the live queue, `hard_limit()` (kHardLimitFactor × capacity) a hard one. The
// events arrive in bursts (a relist's deletions all at once, a chunk of watch events microseconds
// apart) while the consumer has one write in flight, so a queue that is over its capacity for a
// moment says nothing about the reader; one that stays over it without being read from does. So,
// like the cacher, which gives a blocked watcher a time budget before closing it, a live event
// pushed into a queue at or over its capacity is still queued while the consumer keeps
// popping, and the subscription is ended with RESOURCE_EXHAUSTED ("fell behind") instead, never
// blocking the cache, when either
//  * the queue is over its capacity and nothing has been popped for `stall_budget` (measured with
//    the cache's clock from when the queue went over its capacity or, after that, from the last
//    push that found items popped since the one before), or
//  * the live queue reaches its limit, however fast it is being read: hard_limit() (4096 events
//    at the default capacity of 1024), which bounds memory and the largest burst a subscriber
//    survives, raised while the subscriber reads its head start (below).
// A zero `stall_budget` ends a subscriber whose queue is over its capacity at the second event
// pushed without a pop in between. The events already queued are still handed out, so the
// subscriber can resume from the last one it received; if it reads nothing of them for the stall
// budget, the timer's check below drops them too.
//
// Not reading at all (the timer's check): the rules above act only when an event is pushed, so a
// subscriber that stops reading on a quiet resource would hold its queue and its snapshot for
// ever. The daemon therefore calls Cache::CheckStalled periodically (every few hundred
// milliseconds, on a timer thread, never the reflector's), which ends with RESOURCE_EXHAUSTED any
// subscription that has items waiting (snapshot, replayed or live, whatever their number) and has
// popped nothing since a check at least its budget earlier that already found items waiting:
// it is ended between the budget and the budget plus two check periods after its last pop (or
// after its items started waiting), never sooner. Such a subscriber is not reading, so what is
// queued for it is dropped at once (that is the memory it held), and the status names the resume
// point of the last item it popped, or says to subscribe again without a resource version if
// that was inside its initial snapshot.
//
// The budget is `stall_budget` once the subscriber has its head start (below) behind it, and the
// longer `head_start_stall_budget` while any of it waits, for both rules. The head start is the
// heavy phase: when hundreds of subscribers connect at once, the server writes hundreds of
// snapshots together, each stream waits its turn for the server's CPU and for its connection, and
// a gap of seconds between two of a stream's items says nothing about its reader. The cacher
// likewise never ends a watcher for reading its initial events slowly, only for letting live
// events pile up; here the live limit (below) still ends a reader slower than the events at once,
// and one that stops is ended within the longer budget.
//
// The head start: the initial snapshot's objects, the replayed window's events and SYNCED
// markers do not count against the capacity: they exist whatever the subscriber's pace. The
// snapshot costs the subscriber one pointer to each stored object (16 bytes per object, the
// records themselves shared with the store; test/core:subscription_memory_test measures it),
// released when its last item is popped, and each object's record as it was at the snapshot,
// which outlives the store's newer copy until that item is popped; a live event queued costs
// about 34 bytes (its event is shared). A lazy snapshot (an iterator over a copy-on-write version
// of the store) would save the array but not the records it pins, and needs a persistent store:
// at 800 KB for 50,000 objects, for at most as long as the subscriber keeps reading, the array is
// kept. While a subscriber works through a large head start, live events pile up behind it, and
// a fixed hard limit would end (and end again after every resubscribe: a livelock) a subscriber
// that reads a large snapshot on a busy resource at any pace. So every head-start item the
// subscriber pops (an uncounted item: snapshot object, replayed event, SYNCED) raises its live
// queue's limit by one, until it has popped every uncounted item queued and its live queue is back
// within its capacity (room again for a burst), when the limit returns to hard_limit(). The live
// events waiting are those that arrived minus the live ones popped, so the raised limit holds
// exactly while the subscriber keeps a reasonable pace, defined as: the items it has popped since
// it subscribed (head start and live) are more than the live events that have arrived for it minus
// hard_limit(). In words, it reads at least as fast as the events arrive, give or take a burst of
// hard_limit(): a reader of a 50,000-object snapshot at 400 items/s while 200 events/s arrive
// finishes the snapshot after 125 s with 25,000 events behind it and works them off; one slower
// than the events is ended once it has fallen hard_limit() items behind them (it could never catch
// up), and one that stops is ended by the stall rules. Memory stays bounded all along: the items
// waiting for a subscriber never exceed its head start plus hard_limit().
//
// Bookmarks are optional (the cacher drops them for a watcher that is not ready) and never end a
// subscription: one that arrives while the queue is at or over its capacity is dropped, and a
// newer one replaces a queued one.
//
// Consumer protocol: call TryPop until it returns nothing; then, if FinalStatus() has a value,
// the stream is over; otherwise wait for on_ready and try again. on_ready is called when an item
// arrives in an empty queue and once when the subscription ends; never under the cache's lock,
// never concurrently with itself, possibly from the reflector's thread before Subscribe returns.
// It must be quick and must not block (post to the consumer's own executor). After Close returns
// it is never called again, and it is released when the subscription ends or is closed; until
// then the cache holds it, so it must not hold the cache (capture a weak or plain pointer).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/cache_event.h"
#include "core/clock.h"
#include "core/object_filter.h"
#include "core/object_record.h"

namespace informerd::core {

class Cache;

class Subscription {
 public:
  // Only the Cache creates subscriptions (the token is its to make).
  class Token {
    friend class Cache;
    Token() {}  // user-provided, so that `{}` cannot make one outside Cache
  };
  // The hard limit on queued live events, as a multiple of the capacity (see above).
  static constexpr std::size_t kHardLimitFactor = 4;

  Subscription(Token, std::weak_ptr<Cache> cache, uint64_t id, ObjectFilter filter,
               bool allow_bookmarks, std::size_t queue_capacity,
               std::chrono::steady_clock::duration stall_budget,
               std::chrono::steady_clock::duration head_start_stall_budget,
               std::function<void()> on_ready,
               std::vector<std::shared_ptr<const ObjectRecord>> snapshot);
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription();

  // The next item, or nothing when none is waiting (or after Close). Never blocks on the cache.
  std::optional<Delivery> TryPop();

  // nullopt while more items may come. Once the subscription has ended and everything queued
  // before the end has been popped: why it ended. RESOURCE_EXHAUSTED: it fell behind (the
  // message says from which resource version to resume; when the timer's check ended it, what
  // was queued was dropped, so the status comes next); whatever status the cache was shut
  // down with (UNAVAILABLE); OUT_OF_RANGE: it was waiting for a future resource version and a
  // relist made that impossible to honour; CANCELLED after Close.
  std::optional<absl::Status> FinalStatus() const;

  // Ends the subscription from the consumer's side and drops whatever is queued; unregisters it
  // from the cache. Idempotent; may be called from any thread, including from on_ready.
  void Close();

  // Bounded waits (the cacher's: a watch does not wait forever for what may never come). Each
  // ends the subscription with a status of the caller's, but only while it is still waiting,
  // decided under the cache's lock, so never after what it waited for has been queued: such a
  // subscription ends as any other (what is queued stays poppable, then FinalStatus is the
  // status; on_ready is called), is unregistered from the cache, and the call returns true.
  // Otherwise (it has what it waited for, it never waited, it has ended, or the cache is gone)
  // nothing changes and the call returns false. Any thread, but not from on_ready, and not with
  // the consumer's own lock held if on_ready takes it.
  //
  // A snapshot subscription whose SYNCED marker has not been queued: the cache has not held one
  // consistent state (completed a list) since it subscribed. Its snapshot items, if any, are still
  // delivered before the end.
  bool EndIfAwaitingSynced(const absl::Status& status);
  // A subscription from a resource version the cache has not reached: nothing has been queued
  // for it. The status is `make_status(X, current)` (X the subscription's resource version,
  // current the cache's), called under the cache's lock: it must be quick.
  bool EndIfAheadOfCache(
      const std::function<absl::Status(uint64_t version, const std::string& current)>& make_status);

  uint64_t id() const { return id_; }
  const ObjectFilter& filter() const { return filter_; }
  bool allow_bookmarks() const { return allow_bookmarks_; }
  std::size_t queue_capacity() const { return capacity_; }
  std::chrono::steady_clock::duration stall_budget() const { return stall_budget_; }
  std::chrono::steady_clock::duration head_start_stall_budget() const {
    return head_start_stall_budget_;
  }
  // kHardLimitFactor × queue_capacity (saturating).
  std::size_t hard_limit() const { return hard_limit_; }
  // The live queue's limit now: hard_limit() plus the head-start items popped while reading a
  // head start (see "The head start" above), saturating.
  std::size_t live_limit() const;
  // Items waiting: snapshot, replayed and live.
  std::size_t pending() const;

 private:
  friend class Cache;

  // What a push did. kQueued and kQueuedIntoEmpty: the delivery is queued (into an empty queue:
  // the consumer must be woken). kDropped: a bookmark was not queued (PushBookmark only).
  // kFull: a live event was refused, the subscriber fell behind (Push only). kEnded: nothing
  // was queued, the subscription had already ended.
  enum class PushResult { kQueued, kQueuedIntoEmpty, kDropped, kFull, kEnded };
  struct Queued {
    Delivery delivery;
    // Counts against the capacity (live events), or not (replayed events and markers).
    bool counted;
  };
  // What the timer's check took from a subscription it ended, to be destroyed after the cache's
  // lock is released: dropping a large snapshot may free many records.
  struct Dropped {
    std::vector<std::shared_ptr<const ObjectRecord>> snapshot;
    std::deque<Queued> queue;
  };

  // The Cache's side; called with the cache's lock held.
  // Queues `delivery`. A counted push is refused (kFull, nothing queued) when the live queue is at
  // its limit (LiveLimitLocked), or at or over its capacity with nothing popped for the stall
  // budget by `now` (the cache's clock; see above).
  PushResult Push(Delivery delivery, bool counted, Clock::TimePoint now);
  // A bookmark: replaces a bookmark still queued last; otherwise dropped (kDropped: nothing
  // queued, the resume point unchanged) when the live queue is at or over its capacity.
  PushResult PushBookmark(Delivery delivery);
  // Ends the subscription with `status` (the queued items stay poppable); false when it had
  // already ended.
  bool End(absl::Status status);
  // Ends it with RESOURCE_EXHAUSTED, saying where to resume (after a push returned kFull).
  bool EndFellBehind();
  // The timer's check ("Not reading at all" above) at `now` (the cache's clock). When the
  // subscription has had items waiting and popped nothing since a check at least the stall
  // budget ago, moves what was queued into `dropped` and ends it with RESOURCE_EXHAUSTED
  // (kDropped); one that had already fallen behind (Push) gets that status anew, naming the last
  // item popped instead of the last queued. kDone: it has ended and nothing waits (or it is
  // closed): nothing is left for the check to do. Called with the cache's lock held (shared is
  // enough: only this subscription's own state changes).
  enum class StallCheck { kNotStalled, kDropped, kDone };
  StallCheck CheckIfStalled(Clock::TimePoint now, Dropped& dropped);
  // The live queue's length.
  std::size_t counted() const;
  // With mu_ held: live_limit().
  std::size_t LiveLimitLocked() const;
  // With mu_ held: the stall rules' budget now (head_start_stall_budget_ while head-start items
  // wait, else stall_budget_; see "Not reading at all").
  std::chrono::steady_clock::duration StallBudgetLocked() const;
  // With mu_ held, after a pop: the head start's raise of the limit ends once no uncounted item
  // is waiting and the live queue is back within its capacity.
  void MaybeEndHeadStartLocked();
  // Calls on_ready; `last` when the subscription has ended (on_ready is then released). Called
  // without the cache's lock.
  void Notify(bool last);
  // The bounded waits' common part: `status_if_waiting` says, under the cache's exclusive lock,
  // with what status to end the subscription, or nothing when it is not waiting.
  bool EndIfWaiting(
      const std::function<std::optional<absl::Status>(const Cache& cache)>& status_if_waiting);

  const std::weak_ptr<Cache> cache_;
  const uint64_t id_;
  const ObjectFilter filter_;
  const bool allow_bookmarks_;
  const std::size_t capacity_;
  const std::chrono::steady_clock::duration stall_budget_;
  const std::chrono::steady_clock::duration head_start_stall_budget_;
  const std::size_t hard_limit_;

  // Guarded by the Cache's lock (only the Cache reads or writes them).
  // Deliver only events with a version above this: a subscriber that asked for a resource
  // version the cache has not reached yet waits for it this way.
  uint64_t min_version_ = 0;
  // A snapshot subscriber whose SYNCED marker waits for the cache to be synced.
  bool awaiting_synced_ = false;

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::vector<std::shared_ptr<const ObjectRecord>> snapshot_;
  std::size_t snapshot_next_ = 0;
  std::deque<Queued> queue_;
  std::size_t counted_ = 0;
  // Uncounted items in queue_ (replayed events, SYNCED markers).
  std::size_t uncounted_queued_ = 0;
  // Head-start items popped, which raise the live queue's limit ("The head start" above).
  std::size_t head_start_popped_ = 0;
  // Whether the last kFull was for the live limit (not the stall budget), and the head start's
  // raise of the limit then, for the message.
  bool full_at_limit_ = false;
  std::size_t full_head_start_ = 0;
  // The budget the last kFull for the stall budget used, for the message.
  std::chrono::steady_clock::duration full_stall_budget_{};
  // Items popped so far (progress), and its value when `stall_since_` was last set.
  uint64_t pops_ = 0;
  uint64_t pops_at_stall_since_ = 0;
  // While the live queue is at or over its capacity: when it got there, or the last push that
  // saw progress since; the stall budget runs from it. Cleared by a push below the capacity.
  std::optional<Clock::TimePoint> stall_since_;
  bool ended_ = false;
  bool closed_ = false;
  absl::Status status_;
  // The resource version a subscriber that has received everything queued so far can resume
  // from; empty while it has none (a snapshot not yet followed by SYNCED).
  std::string resume_from_;
  // The same for what has been popped so far (what the timer's check names when it drops the
  // rest).
  std::string popped_resume_from_;
  // The timer's check: when a check found items waiting with no pop since the previous look
  // (nothing popped since then: pops_ is still pops_at_check_since_). Cleared when nothing waits.
  std::optional<Clock::TimePoint> check_since_;
  uint64_t pops_at_check_since_ = 0;

  // Serializes on_ready calls, and lets Close wait for one in progress. Recursive so that
  // on_ready may call Close.
  std::recursive_mutex callback_mu_;
  std::shared_ptr<const std::function<void()>> on_ready_;  // guarded by callback_mu_
};

}  // namespace informerd::core
