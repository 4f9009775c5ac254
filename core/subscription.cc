#include "core/subscription.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "core/cache.h"
#include "fmt/format.h"

namespace informerd::core {

Subscription::Subscription(Token, std::weak_ptr<Cache> cache, uint64_t id, ObjectFilter filter,
                           bool allow_bookmarks, std::size_t queue_capacity,
                           std::chrono::steady_clock::duration stall_budget,
                           std::chrono::steady_clock::duration head_start_stall_budget,
                           std::function<void()> on_ready,
                           std::vector<std::shared_ptr<const ObjectRecord>> snapshot)
    : cache_(std::move(cache)),
      id_(id),
      filter_(std::move(filter)),
      allow_bookmarks_(allow_bookmarks),
      capacity_(queue_capacity),
      stall_budget_(stall_budget),
      head_start_stall_budget_(std::max(stall_budget, head_start_stall_budget)),
      hard_limit_(queue_capacity > std::numeric_limits<std::size_t>::max() / kHardLimitFactor
                      ? std::numeric_limits<std::size_t>::max()
                      : queue_capacity * kHardLimitFactor),
      snapshot_(std::move(snapshot)) {
  // The store's List grows its vector by doubling: up to twice the pointers the snapshot needs,
  // held until its last item is popped (subscription_memory_test).
  snapshot_.shrink_to_fit();
  if (on_ready) {
    on_ready_ = std::make_shared<const std::function<void()>>(std::move(on_ready));
  }
}

Subscription::~Subscription() = default;

std::optional<Delivery> Subscription::TryPop() {
  std::shared_ptr<const ObjectRecord> snapshot_object;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return std::nullopt;
    if (snapshot_next_ < snapshot_.size()) {
      ++pops_;
      ++head_start_popped_;
      snapshot_object = std::move(snapshot_[snapshot_next_++]);
      if (snapshot_next_ == snapshot_.size()) {
        // Release the (now empty) array as soon as the snapshot is out.
        std::vector<std::shared_ptr<const ObjectRecord>>().swap(snapshot_);
        snapshot_next_ = 0;
      }
      MaybeEndHeadStartLocked();
    } else if (!queue_.empty()) {
      Queued front = std::move(queue_.front());
      queue_.pop_front();
      ++pops_;
      if (front.counted) {
        --counted_;
      } else {
        --uncounted_queued_;
        ++head_start_popped_;
      }
      // The same rule as resume_from_'s in Push, one item at a time.
      if (front.delivery.type == EventType::kSynced || !popped_resume_from_.empty()) {
        popped_resume_from_ = front.delivery.resource_version();
      }
      MaybeEndHeadStartLocked();
      return std::move(front.delivery);
    } else {
      return std::nullopt;
    }
  }
  // A snapshot item is an ADDED at the object's own resource version (informerd.proto: "for the
  // events of an initial snapshot, the object's own"). Built here, outside the lock, one at a
  // time, so a large snapshot costs pointers until it is read.
  std::string resource_version(snapshot_object->resource_version);
  return Delivery{EventType::kAdded,
                  std::make_shared<const CacheEvent>(EventType::kAdded, std::move(resource_version),
                                                     0, std::move(snapshot_object), nullptr)};
}

std::optional<absl::Status> Subscription::FinalStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ended_) return std::nullopt;
  if (!closed_ && (snapshot_next_ < snapshot_.size() || !queue_.empty())) return std::nullopt;
  return status_;
}

void Subscription::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    std::vector<std::shared_ptr<const ObjectRecord>>().swap(snapshot_);
    snapshot_next_ = 0;
    std::deque<Queued>().swap(queue_);
    counted_ = 0;
    uncounted_queued_ = 0;
    head_start_popped_ = 0;
    if (!ended_) {
      ended_ = true;
      status_ = absl::CancelledError("subscription closed by the subscriber");
    }
  }
  {
    // Waits for an on_ready call in progress on another thread; none starts after this.
    std::lock_guard<std::recursive_mutex> lock(callback_mu_);
    on_ready_.reset();
  }
  if (const std::shared_ptr<Cache> cache = cache_.lock()) cache->Unregister(*this);
}

std::size_t Subscription::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return (snapshot_.size() - snapshot_next_) + queue_.size();
}

std::size_t Subscription::counted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counted_;
}

std::size_t Subscription::live_limit() const {
  std::lock_guard<std::mutex> lock(mu_);
  return LiveLimitLocked();
}

std::size_t Subscription::LiveLimitLocked() const {
  return head_start_popped_ > std::numeric_limits<std::size_t>::max() - hard_limit_
             ? std::numeric_limits<std::size_t>::max()
             : hard_limit_ + head_start_popped_;
}

std::chrono::steady_clock::duration Subscription::StallBudgetLocked() const {
  const bool head_start_waiting = snapshot_next_ < snapshot_.size() || uncounted_queued_ != 0;
  return head_start_waiting ? head_start_stall_budget_ : stall_budget_;
}

void Subscription::MaybeEndHeadStartLocked() {
  if (head_start_popped_ != 0 && snapshot_next_ >= snapshot_.size() && uncounted_queued_ == 0 &&
      counted_ <= capacity_) {
    head_start_popped_ = 0;
  }
}

Subscription::PushResult Subscription::Push(Delivery delivery, bool counted, Clock::TimePoint now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ended_) return PushResult::kEnded;
  if (counted) {
    if (counted_ < capacity_) {
      stall_since_.reset();
    } else if (counted_ >= LiveLimitLocked()) {
      full_at_limit_ = true;
      full_head_start_ = head_start_popped_;
      return PushResult::kFull;
    } else if (!stall_since_ || pops_ != pops_at_stall_since_) {
      // Just went over the capacity, or the consumer has popped since: the budget starts now.
      stall_since_ = now;
      pops_at_stall_since_ = pops_;
    } else if (const auto budget = StallBudgetLocked(); now - *stall_since_ >= budget) {
      full_at_limit_ = false;
      full_stall_budget_ = budget;
      return PushResult::kFull;
    }
  }
  const bool was_empty = snapshot_next_ >= snapshot_.size() && queue_.empty();
  if (delivery.type == EventType::kSynced || !resume_from_.empty()) {
    // Resuming is possible from a SYNCED marker and from anything after one (or after the
    // resource version a resumed subscription started from).
    resume_from_ = delivery.resource_version();
  }
  queue_.push_back(Queued{std::move(delivery), counted});
  if (counted) {
    ++counted_;
  } else {
    ++uncounted_queued_;
  }
  return was_empty ? PushResult::kQueuedIntoEmpty : PushResult::kQueued;
}

Subscription::PushResult Subscription::PushBookmark(Delivery delivery) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ended_) return PushResult::kEnded;
  if (!queue_.empty() && queue_.back().delivery.type == EventType::kBookmark) {
    // Only the newest point matters: replace rather than grow.
    queue_.back().delivery = std::move(delivery);
    if (!resume_from_.empty()) resume_from_ = queue_.back().delivery.resource_version();
    return PushResult::kQueued;
  }
  // Bookmarks are optional: dropped, and so not a point to resume from (resume_from_ stays).
  if (counted_ >= capacity_) return PushResult::kDropped;
  const bool was_empty = snapshot_next_ >= snapshot_.size() && queue_.empty();
  if (!resume_from_.empty()) resume_from_ = delivery.resource_version();
  queue_.push_back(Queued{std::move(delivery), true});
  ++counted_;
  return was_empty ? PushResult::kQueuedIntoEmpty : PushResult::kQueued;
}

bool Subscription::End(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ended_) return false;
  ended_ = true;
  status_ = std::move(status);
  return true;
}

bool Subscription::EndFellBehind() {
  std::lock_guard<std::mutex> lock(mu_);
  if (ended_) return false;
  ended_ = true;
  // Which of the two limits it hit (Push): the live limit, or the stall budget over capacity.
  std::string why;
  if (full_at_limit_ && full_head_start_ == 0) {
    why = fmt::format("{} events waited for it, {} times its queue capacity of {}", counted_,
                      kHardLimitFactor, capacity_);
  } else if (full_at_limit_) {
    why = fmt::format(
        "{} events waited for it, {} times its queue capacity of {} plus the {} items of its "
        "snapshot or replay it has read: it reads more slowly than the events arrive",
        counted_, kHardLimitFactor, capacity_, full_head_start_);
  } else {
    why = fmt::format(
        "it read nothing for {} ms while {} events waited (its queue capacity is {})",
        std::chrono::duration_cast<std::chrono::milliseconds>(full_stall_budget_).count(), counted_,
        capacity_);
  }
  if (resume_from_.empty()) {
    status_ = absl::ResourceExhaustedError(
        fmt::format("subscriber fell behind before its initial snapshot was complete: {}; "
                    "subscribe again without a resource version",
                    why));
  } else {
    status_ = absl::ResourceExhaustedError(
        fmt::format("subscriber fell behind: {}; the last event it was sent has resource "
                    "version {}: resume from it",
                    why, resume_from_));
  }
  return true;
}

Subscription::StallCheck Subscription::CheckIfStalled(Clock::TimePoint now, Dropped& dropped) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t waiting = (snapshot_.size() - snapshot_next_) + queue_.size();
  // Only a subscriber that fell behind is told where to resume; any other end stands as it is.
  if (ended_ &&
      (closed_ || waiting == 0 || status_.code() != absl::StatusCode::kResourceExhausted)) {
    return StallCheck::kDone;
  }
  if (waiting == 0) {
    check_since_.reset();
    return StallCheck::kNotStalled;
  }
  if (!check_since_ || pops_ != pops_at_check_since_) {
    // Items wait, and this is the first look at them or the consumer has popped since the last
    // one (at some time in between, so count from now: never too early).
    check_since_ = now;
    pops_at_check_since_ = pops_;
    return StallCheck::kNotStalled;
  }
  const auto budget = StallBudgetLocked();
  if (now - *check_since_ < budget) return StallCheck::kNotStalled;
  // Ended now, or (fallen behind already) its status named the last item queued, which it will
  // not receive now: either way the status names what it was given.
  ended_ = true;
  const std::string why =
      fmt::format("it read nothing for {} ms while {} items waited for it",
                  std::chrono::duration_cast<std::chrono::milliseconds>(budget).count(), waiting);
  if (popped_resume_from_.empty()) {
    status_ = absl::ResourceExhaustedError(
        fmt::format("subscriber fell behind before its initial snapshot was complete: {}; "
                    "subscribe again without a resource version",
                    why));
  } else {
    status_ = absl::ResourceExhaustedError(
        fmt::format("subscriber fell behind: {}; the last event it was sent has resource "
                    "version {}: resume from it",
                    why, popped_resume_from_));
  }
  // Nobody is reading them: the memory goes now, not when (if ever) the consumer pops.
  dropped.snapshot.swap(snapshot_);
  snapshot_next_ = 0;
  dropped.queue.swap(queue_);
  counted_ = 0;
  uncounted_queued_ = 0;
  head_start_popped_ = 0;
  return StallCheck::kDropped;
}

bool Subscription::EndIfAwaitingSynced(const absl::Status& status) {
  return EndIfWaiting([this, &status](const Cache&) -> std::optional<absl::Status> {
    if (!awaiting_synced_) return std::nullopt;
    return status;
  });
}

bool Subscription::EndIfAheadOfCache(
    const std::function<absl::Status(uint64_t version, const std::string& current)>& make_status) {
  return EndIfWaiting([this, &make_status](const Cache& cache) -> std::optional<absl::Status> {
    // Events up to min_version_ are skipped, so nothing has been queued while it is ahead.
    if (min_version_ <= cache.version_) return std::nullopt;
    return make_status(min_version_, cache.resource_version_);
  });
}

bool Subscription::EndIfWaiting(
    const std::function<std::optional<absl::Status>(const Cache& cache)>& status_if_waiting) {
  const std::shared_ptr<Cache> cache = cache_.lock();
  // A cache that is gone has ended its subscriptions.
  if (!cache) return false;
  // The cache's reference, once unregistered: this lives at least until Notify returns.
  std::shared_ptr<Subscription> registered;
  {
    std::unique_lock<std::shared_mutex> lock(cache->mu_);
    std::optional<absl::Status> status = status_if_waiting(*cache);
    if (!status || !End(*std::move(status))) return false;
    // Unregistered, as the cache prunes the subscriptions it ends.
    std::vector<std::shared_ptr<Subscription>>& all = cache->subscriptions_;
    const auto it = std::find_if(all.begin(), all.end(),
                                 [this](const auto& each) { return each.get() == this; });
    if (it != all.end()) {
      registered = std::move(*it);
      all.erase(it);
    }
  }
  Notify(/*last=*/true);
  return true;
}

void Subscription::Notify(bool last) {
  std::lock_guard<std::recursive_mutex> lock(callback_mu_);
  // A copy: on_ready may call Close, which releases on_ready_.
  const std::shared_ptr<const std::function<void()>> on_ready = on_ready_;
  if (last) on_ready_.reset();
  if (on_ready && *on_ready) (*on_ready)();
}

}  // namespace informerd::core
