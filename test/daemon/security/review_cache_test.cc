// Specification of daemon/security/review_cache.h: a cached result answers inline; callers with
// the same key share the one review in flight and are all answered by its Finish, in the order
// they came, outside the lock; a verdict decides the TTL (to the nanosecond), failures are never
// cached; the bound; the counters and the review latency; callers on several threads.
#include "daemon/security/review_cache.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "test/common/fake_clock.h"
#include "test/daemon/security/security_test_support.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

using Result = absl::StatusOr<std::string>;
using Cache = ReviewCache<std::string, Result>;
using Lookup = Cache::Lookup;
using Outcome = test::Outcome<Result>;
using test::Record;

ReviewCacheOptions Options(nanoseconds positive_ttl = seconds(10),
                           nanoseconds negative_ttl = seconds(1), std::size_t max_entries = 100) {
  return ReviewCacheOptions{positive_ttl, negative_ttl, max_entries};
}

struct Fixture {
  explicit Fixture(ReviewCacheOptions options = Options()) : cache(clock, options) {}

  // Awaits `key`; the outcome lives as long as the fixture.
  Lookup Await(const std::string& key, Outcome** outcome = nullptr) {
    Outcome& recorded = outcomes.emplace_back();
    if (outcome != nullptr) *outcome = &recorded;
    return cache.Await(key, Record(recorded));
  }

  // Awaits `key`, which must need a review, and finishes it.
  void Review(const std::string& key, ReviewVerdict verdict, const Result& result) {
    REQUIRE(Await(key) == Lookup::kReview);
    cache.Finish(key, verdict, result);
  }

  core::FakeClock clock;
  Cache cache;
  std::deque<Outcome> outcomes;
};

TEST_CASE("the first caller reviews; callers with the same key wait for that review") {
  Fixture f;
  Outcome *first = nullptr, *second = nullptr, *third = nullptr, *other = nullptr;
  CHECK(f.Await("a", &first) == Lookup::kReview);
  CHECK(f.Await("a", &second) == Lookup::kShared);
  CHECK(f.Await("b", &other) == Lookup::kReview);
  CHECK(f.Await("a", &third) == Lookup::kShared);
  for (Outcome* outcome : {first, second, third, other}) CHECK(outcome->calls == 0);

  f.cache.Finish("a", ReviewVerdict::kPositive, Result("alice"));
  for (Outcome* outcome : {first, second, third}) {
    CHECK(outcome->calls == 1);
    CHECK(outcome->result == Result("alice"));
  }
  CHECK(other->calls == 0);  // another key, still in flight
  const ReviewCacheStats stats = f.cache.stats();
  CHECK(stats.reviews == 2);
  CHECK(stats.shared == 2);
}

TEST_CASE("a review's callers are answered in the order they came") {
  Fixture f;
  std::vector<int> order;
  REQUIRE(f.cache.Await("a", [&](Result) { order.push_back(1); }) == Lookup::kReview);
  f.cache.Await("a", [&](Result) { order.push_back(2); });
  f.cache.Await("a", [&](Result) { order.push_back(3); });
  f.cache.Finish("a", ReviewVerdict::kNegative, Result("x"));
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("a cached result answers inline, without a review") {
  Fixture f;
  f.Review("a", ReviewVerdict::kPositive, Result("alice"));
  Outcome* cached = nullptr;
  CHECK(f.Await("a", &cached) == Lookup::kCached);
  CHECK(cached->calls == 1);
  CHECK(cached->result == Result("alice"));
  CHECK(f.cache.stats().cache_hits == 1);
  CHECK(f.cache.stats().reviews == 1);
}

TEST_CASE("a positive result is cached for positive_ttl and a negative one for negative_ttl") {
  Fixture f(Options(seconds(10), seconds(1)));
  f.Review("yes", ReviewVerdict::kPositive, Result("alice"));
  f.Review("no", ReviewVerdict::kNegative, absl::UnauthenticatedError("rejected"));
  f.clock.Advance(seconds(1) - nanoseconds(1));
  CHECK(f.Await("no") == Lookup::kCached);
  CHECK(f.outcomes.back().result.status() == absl::UnauthenticatedError("rejected"));
  f.clock.Advance(nanoseconds(1));
  CHECK(f.Await("no") == Lookup::kReview);
  f.clock.Advance(seconds(9) - nanoseconds(1));
  CHECK(f.Await("yes") == Lookup::kCached);
  f.clock.Advance(nanoseconds(1));
  CHECK(f.Await("yes") == Lookup::kReview);
}

TEST_CASE("a failed review reaches its callers and is not cached; the next caller reviews") {
  Fixture f;
  Outcome *first = nullptr, *second = nullptr;
  f.Await("a", &first);
  f.Await("a", &second);
  f.cache.Finish("a", ReviewVerdict::kFailed, absl::UnavailableError("no answer"));
  for (Outcome* outcome : {first, second}) {
    CHECK(outcome->calls == 1);
    CHECK(outcome->result.status() == absl::UnavailableError("no answer"));
  }
  CHECK(f.cache.stats().cache_entries == 0);
  CHECK(f.Await("a") == Lookup::kReview);
}

TEST_CASE("a verdict whose TTL is zero is not cached") {
  Fixture f(Options(seconds(10), nanoseconds(0)));
  f.Review("a", ReviewVerdict::kNegative, Result("denied"));
  CHECK(f.Await("a") == Lookup::kReview);
  f.cache.Finish("a", ReviewVerdict::kPositive, Result("allowed"));
  CHECK(f.cache.stats().cache_entries == 1);
}

TEST_CASE("the cache keeps at most max_entries results, the most recently used") {
  Fixture f(Options(seconds(10), seconds(10), 3));
  for (const char* key : {"a", "b", "c", "d"}) {
    f.Review(key, ReviewVerdict::kPositive, Result(key));
  }
  CHECK(f.cache.stats().cache_entries == 3);
  CHECK(f.Await("d") == Lookup::kCached);
  CHECK(f.Await("a") == Lookup::kReview);
}

TEST_CASE("callbacks run outside the lock: they may call back into the cache") {
  Fixture f;
  Lookup again = Lookup::kReview;
  REQUIRE(f.cache.Await("a", [&](Result) { again = f.Await("a"); }) == Lookup::kReview);
  f.cache.Finish("a", ReviewVerdict::kPositive, Result("alice"));
  CHECK(again == Lookup::kCached);
  std::uint64_t hits = 0;
  CHECK(f.cache.Await("a", [&](Result) { hits = f.cache.stats().cache_hits; }) == Lookup::kCached);
  CHECK(hits == 2);
}

TEST_CASE("the counters and the review latency, from Await to Finish") {
  Fixture f;
  f.Await("a");
  f.Await("a");
  f.clock.Advance(milliseconds(250));
  f.cache.Finish("a", ReviewVerdict::kPositive, Result("alice"));
  f.Await("a");
  f.Await("b");
  f.clock.Advance(milliseconds(50));
  f.cache.Finish("b", ReviewVerdict::kNegative, Result("denied"));
  f.Await("c");
  f.clock.Advance(milliseconds(700));
  f.cache.Finish("c", ReviewVerdict::kFailed, absl::UnavailableError("no answer"));
  const ReviewCacheStats stats = f.cache.stats();
  CHECK(stats.reviews == 3);
  CHECK(stats.shared == 1);
  CHECK(stats.cache_hits == 1);
  CHECK(stats.positive == 1);
  CHECK(stats.negative == 1);
  CHECK(stats.failed == 1);
  CHECK(stats.review_latency_count == 3);
  CHECK(stats.review_latency_sum == milliseconds(1000));
  CHECK(stats.cache_entries == 2);
}

TEST_CASE(
    "callers on several threads while reviews finish on another: one review per key, every "
    "caller answered once") {
  Fixture f;
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 500;
  std::mutex mu;
  std::vector<std::string> to_review;
  std::atomic<int> answered{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kThreads; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const std::string key = "key-" + std::to_string(i % 10);
        if (f.cache.Await(key, [&](Result) { ++answered; }) == Lookup::kReview) {
          std::lock_guard<std::mutex> lock(mu);
          to_review.push_back(key);
        }
      }
    });
  }
  std::thread reviewer([&] {
    while (answered < kThreads * kCallsPerThread) {
      std::vector<std::string> keys;
      {
        std::lock_guard<std::mutex> lock(mu);
        keys.swap(to_review);
      }
      for (const std::string& key : keys)
        f.cache.Finish(key, ReviewVerdict::kPositive, Result(key));
      std::this_thread::yield();
    }
  });
  for (std::thread& caller : callers) caller.join();
  reviewer.join();
  CHECK(answered == kThreads * kCallsPerThread);
  const ReviewCacheStats stats = f.cache.stats();
  CHECK(stats.reviews == 10);
  CHECK(stats.reviews + stats.shared + stats.cache_hits == kThreads * kCallsPerThread);
}

}  // namespace
}  // namespace informerd::daemon
