// Specification of core::Subscription's bounded waits (EndIfAwaitingSynced, EndIfAheadOfCache):
// the service's timers end a subscription that still waits for SYNCED or for a future resource
// version, and never one that has what it waited for.
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cache.h"
#include "fmt/format.h"
#include "test/common/cache_test_support.h"
#include "test/common/fake_clock.h"

namespace informerd::core {
namespace {

using testing::Added;
using testing::Drain;
using testing::MakeObject;

ObjectRecord Pod(const std::string& name, uint64_t rv) {
  return MakeObject("default", name, "u-" + name, rv);
}

SubscribeOptions From(std::string resource_version, int* ready_calls = nullptr) {
  SubscribeOptions options;
  options.resource_version = std::move(resource_version);
  if (ready_calls) options.on_ready = [ready_calls] { ++*ready_calls; };
  return options;
}

// The status a waiting subscription is ended with in these tests.
absl::Status TooLarge(uint64_t version, const std::string& current) {
  return absl::UnavailableError(fmt::format("too large: {}, current: {}", version, current));
}

std::vector<std::string> Types(const std::vector<testing::Received>& received) {
  std::vector<std::string> types;
  for (const testing::Received& r : received) {
    types.push_back(fmt::format("{} {} rv={}", EventTypeName(r.type), r.key, r.resource_version));
  }
  return types;
}

struct Fixture {
  FakeClock clock;
  std::shared_ptr<Cache> cache = Cache::Create(CacheOptions{}, clock);

  void Sync(const std::vector<ObjectRecord>& items, uint64_t rv) {
    cache->BeginList();
    cache->ListItems(items, fmt::format("{}", rv));
    cache->EndList(fmt::format("{}", rv));
  }
};

TEST_CASE("EndIfAwaitingSynced ends a snapshot subscription the cache has not synced for",
          "[subscription][wait]") {
  Fixture f;
  // A partial initial list: the cache holds a, but has not synced.
  f.cache->BeginList();
  f.cache->ListItems({Pod("a", 5)}, "10");
  int ready = 0;
  auto subscription = *f.cache->Subscribe(From("", &ready));
  CHECK(f.cache->Stats().subscriber_count == 1);

  CHECK(subscription->EndIfAwaitingSynced(absl::UnavailableError("not synced in time")));
  CHECK(ready == 1);  // told, so that its consumer pumps the end out
  CHECK(f.cache->Stats().subscriber_count == 0);
  // The snapshot it had is still delivered, then the status.
  CHECK_FALSE(subscription->FinalStatus().has_value());
  CHECK(Types(Drain(*subscription)) == std::vector<std::string>{"ADDED default/a rv=5"});
  REQUIRE(subscription->FinalStatus().has_value());
  CHECK(*subscription->FinalStatus() == absl::UnavailableError("not synced in time"));
  // Once: the list that completes later reaches it no more, and a second call does nothing.
  f.cache->EndList("10");
  CHECK(Drain(*subscription).empty());
  CHECK_FALSE(subscription->EndIfAwaitingSynced(absl::UnavailableError("again")));
  CHECK(*subscription->FinalStatus() == absl::UnavailableError("not synced in time"));
}

TEST_CASE("EndIfAwaitingSynced leaves a subscription whose SYNCED was queued",
          "[subscription][wait]") {
  Fixture f;
  SECTION("synced when it subscribed") {
    f.Sync({Pod("a", 5)}, 10);
    auto subscription = *f.cache->Subscribe(From(""));
    CHECK_FALSE(subscription->EndIfAwaitingSynced(absl::UnavailableError("x")));
    CHECK(Types(Drain(*subscription)) ==
          std::vector<std::string>{"ADDED default/a rv=5", "SYNCED  rv=10"});
  }
  SECTION("synced after it subscribed, not yet read, and unsynced again since") {
    auto subscription = *f.cache->Subscribe(From(""));
    f.Sync({Pod("a", 5)}, 10);
    f.cache->MarkUnsynced("the resource is being checked again");
    CHECK_FALSE(subscription->EndIfAwaitingSynced(absl::UnavailableError("x")));
    // The initial list's item arrives as an event at the list's version.
    CHECK(Types(Drain(*subscription)) ==
          std::vector<std::string>{"ADDED default/a rv=10", "SYNCED  rv=10"});
  }
  SECTION("a subscription from a resource version never waits for SYNCED") {
    f.Sync({}, 10);
    auto subscription = *f.cache->Subscribe(From("10"));
    f.cache->MarkUnsynced("the resource is being checked again");
    CHECK_FALSE(subscription->EndIfAwaitingSynced(absl::UnavailableError("x")));
    CHECK_FALSE(subscription->FinalStatus().has_value());
  }
  // Still live.
  CHECK(f.cache->Stats().subscriber_count == 1);
}

TEST_CASE("EndIfAheadOfCache ends a subscription from a version the cache has not reached",
          "[subscription][wait]") {
  Fixture f;
  f.Sync({}, 10);
  int ready = 0;
  auto subscription = *f.cache->Subscribe(From("20", &ready));
  f.cache->ApplyWatchEvent(Added(Pod("p15", 15)));
  f.cache->ApplyWatchEvent(Added(Pod("p19", 19)));

  CHECK(subscription->EndIfAheadOfCache(TooLarge));
  CHECK(ready == 1);
  CHECK(f.cache->Stats().subscriber_count == 0);
  // Nothing was sent: only the status, with X and the cache's version.
  CHECK(Drain(*subscription).empty());
  REQUIRE(subscription->FinalStatus().has_value());
  CHECK(*subscription->FinalStatus() == absl::UnavailableError("too large: 20, current: 19"));
  // Later events do not reach it.
  f.cache->ApplyWatchEvent(Added(Pod("p21", 21)));
  CHECK(Drain(*subscription).empty());
  CHECK_FALSE(subscription->EndIfAheadOfCache(TooLarge));
}

TEST_CASE("EndIfAheadOfCache leaves a subscription once the cache has reached its version",
          "[subscription][wait]") {
  Fixture f;
  f.Sync({}, 10);
  SECTION("reached exactly (an event at X itself is not delivered)") {
    auto subscription = *f.cache->Subscribe(From("20"));
    f.cache->ApplyWatchEvent(Added(Pod("p20", 20)));
    CHECK_FALSE(subscription->EndIfAheadOfCache(TooLarge));
    CHECK(Drain(*subscription).empty());
    f.cache->ApplyWatchEvent(Added(Pod("p21", 21)));
    CHECK(Types(Drain(*subscription)) == std::vector<std::string>{"ADDED default/p21 rv=21"});
    CHECK(f.cache->Stats().subscriber_count == 1);
  }
  SECTION("reached by a bookmark") {
    auto subscription = *f.cache->Subscribe(From("20"));
    f.cache->ApplyWatchEvent(testing::Bookmark(25));
    CHECK_FALSE(subscription->EndIfAheadOfCache(TooLarge));
    CHECK(f.cache->Stats().subscriber_count == 1);
  }
  SECTION("never ahead: from the current version, or a snapshot") {
    auto current = *f.cache->Subscribe(From("10"));
    CHECK_FALSE(current->EndIfAheadOfCache(TooLarge));
    auto snapshot = *f.cache->Subscribe(From(""));
    CHECK_FALSE(snapshot->EndIfAheadOfCache(TooLarge));
    CHECK(f.cache->Stats().subscriber_count == 2);
  }
}

TEST_CASE("the bounded waits do nothing after Close or once the cache is gone",
          "[subscription][wait]") {
  FakeClock clock;
  std::shared_ptr<Cache> cache = Cache::Create(CacheOptions{}, clock);
  auto closed = *cache->Subscribe(From(""));
  closed->Close();
  CHECK_FALSE(closed->EndIfAwaitingSynced(absl::UnavailableError("x")));
  CHECK(*closed->FinalStatus() == absl::CancelledError("subscription closed by the subscriber"));

  auto orphan = *cache->Subscribe(From(""));
  cache.reset();
  CHECK_FALSE(orphan->EndIfAwaitingSynced(absl::UnavailableError("x")));
  REQUIRE(orphan->FinalStatus().has_value());
  CHECK(orphan->FinalStatus()->code() == absl::StatusCode::kUnavailable);
  CHECK(orphan->FinalStatus()->message() != "x");
}

}  // namespace
}  // namespace informerd::core
