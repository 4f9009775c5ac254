// ReviewCache: what TokenReviewAuthenticator and SubjectAccessReviewAuthorizer keep around the
// reviews they ask the apiserver for: the results by key (a bounded ExpiringCache), the callers
// waiting for a review in flight (concurrent callers with the same key share one review), and
// the counters for /metrics. The owner computes the key, posts the review and judges the answer;
// this class decides nothing about what a review means.
//
// Protocol, per caller: Await(key, done).
//   kCached: a result was cached; `done` has already run, inline.
//   kShared: a review for `key` is in flight; `done` will run when it finishes.
//   kReview: nothing cached or in flight; `done` waits, and the caller must now post the review
//            and call Finish(key, verdict, result) exactly once, whatever happens to it.
// Finish caches `result` by its verdict (kPositive for positive_ttl, kNegative for negative_ttl,
// kFailed never) and then runs every callback waiting for `key`, in the order they came.
//
// Threads: every member may be called from any thread (one mutex); Await from the callers'
// threads, Finish typically from the review client's strand. Callbacks run outside the lock, on
// the thread that called Await (kCached) or Finish, so they may call back into this object.
// `clock` must outlive this object; an owner that may be destroyed before its reviews finish
// keeps this object alive until they have (the security classes hold it in shared state).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/expiring_cache.h"

namespace informerd::daemon {

// How a review ended, which decides whether and how long its result is cached.
enum class ReviewVerdict {
  kPositive,  // authenticated, allowed: cached for positive_ttl
  kNegative,  // rejected, denied: cached for negative_ttl
  kFailed,    // no decision (no answer, an error, a malformed answer): never cached
};

struct ReviewCacheOptions {
  // A ttl <= 0: such results are not cached (and replace nothing older).
  std::chrono::nanoseconds positive_ttl{0};
  std::chrono::nanoseconds negative_ttl{0};
  std::size_t max_entries = 10000;
};

// Counters, monotonic except cache_entries.
struct ReviewCacheStats {
  std::uint64_t cache_hits = 0;  // Await answered from the cache
  std::uint64_t reviews = 0;     // Await returned kReview
  std::uint64_t shared = 0;      // Await returned kShared
  std::uint64_t positive = 0;    // reviews finished, by verdict
  std::uint64_t negative = 0;
  std::uint64_t failed = 0;
  // From Await returning kReview to its Finish, summed over every finished review.
  std::chrono::nanoseconds review_latency_sum{0};
  std::uint64_t review_latency_count = 0;
  std::size_t cache_entries = 0;
};

template <typename Key, typename Result, typename Hash = std::hash<Key>>
class ReviewCache {
 public:
  using Callback = std::function<void(Result)>;

  enum class Lookup { kCached, kShared, kReview };

  ReviewCache(const core::Clock& clock, ReviewCacheOptions options)
      : clock_(clock), options_(options), cache_(clock, options.max_entries) {}
  ReviewCache(const ReviewCache&) = delete;
  ReviewCache& operator=(const ReviewCache&) = delete;

  Lookup Await(const Key& key, Callback done) {
    std::unique_lock<std::mutex> lock(mu_);
    if (std::optional<Result> cached = cache_.Get(key)) {
      ++stats_.cache_hits;
      lock.unlock();
      done(*std::move(cached));
      return Lookup::kCached;
    }
    auto [review, first] = in_flight_.try_emplace(key);
    review->second.waiters.push_back(std::move(done));
    if (!first) {
      ++stats_.shared;
      return Lookup::kShared;
    }
    ++stats_.reviews;
    review->second.started = clock_.Now();
    return Lookup::kReview;
  }

  // Once per Await that returned kReview, with the same key.
  void Finish(const Key& key, ReviewVerdict verdict, const Result& result) {
    std::vector<Callback> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      switch (verdict) {
        case ReviewVerdict::kPositive:
          ++stats_.positive;
          cache_.Put(key, result, options_.positive_ttl);
          break;
        case ReviewVerdict::kNegative:
          ++stats_.negative;
          cache_.Put(key, result, options_.negative_ttl);
          break;
        case ReviewVerdict::kFailed:
          ++stats_.failed;
          break;
      }
      auto found = in_flight_.find(key);
      if (found != in_flight_.end()) {
        stats_.review_latency_sum += clock_.Now() - found->second.started;
        ++stats_.review_latency_count;
        waiters = std::move(found->second.waiters);
        in_flight_.erase(found);
      }
    }
    for (Callback& waiter : waiters) waiter(result);
  }

  ReviewCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    ReviewCacheStats stats = stats_;
    stats.cache_entries = cache_.size();
    return stats;
  }

 private:
  struct InFlight {
    core::Clock::TimePoint started;
    std::vector<Callback> waiters;  // in the order they came
  };

  const core::Clock& clock_;
  const ReviewCacheOptions options_;
  mutable std::mutex mu_;
  core::ExpiringCache<Key, Result, Hash> cache_;
  std::unordered_map<Key, InFlight, Hash> in_flight_;
  ReviewCacheStats stats_;
};

}  // namespace informerd::daemon
