// Specification of core/expiring_cache.h: entries expire after their own TTL (by the injected
// clock), the least recently used entry goes once the bound is passed, and those evictions are
// counted; a Put replaces; a TTL of zero or less caches nothing.
#include "core/expiring_cache.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test/common/fake_clock.h"

namespace informerd::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

using Cache = ExpiringCache<std::string, int>;

TEST_CASE("an entry is there until its TTL has passed, then gone") {
  FakeClock clock;
  Cache cache(clock, 10);
  CHECK(cache.Get("a") == std::nullopt);
  cache.Put("a", 1, seconds(10));
  CHECK(cache.Get("a") == 1);
  clock.Advance(seconds(10) - nanoseconds(1));
  CHECK(cache.Get("a") == 1);
  // At exactly its expiry the entry is no longer served.
  clock.Advance(nanoseconds(1));
  CHECK(cache.Get("a") == std::nullopt);
}

TEST_CASE("each entry has its own TTL (allowed decisions live longer than denials)") {
  FakeClock clock;
  Cache cache(clock, 10);
  cache.Put("allowed", 1, minutes(5));
  cache.Put("denied", 0, seconds(30));
  clock.Advance(seconds(30));
  CHECK(cache.Get("denied") == std::nullopt);
  CHECK(cache.Get("allowed") == 1);
  clock.Advance(minutes(5) - seconds(30));
  CHECK(cache.Get("allowed") == std::nullopt);
}

TEST_CASE("an expired entry is removed when it is looked up") {
  FakeClock clock;
  Cache cache(clock, 10);
  cache.Put("a", 1, seconds(1));
  cache.Put("b", 2, minutes(1));
  CHECK(cache.size() == 2);
  clock.Advance(seconds(1));
  CHECK(cache.Get("a") == std::nullopt);
  CHECK(cache.size() == 1);
  // Expiry is not an eviction.
  CHECK(cache.evictions() == 0);
}

TEST_CASE("past the bound the least recently used entry goes, and each eviction is counted") {
  FakeClock clock;
  Cache cache(clock, 3);
  cache.Put("a", 1, minutes(1));
  cache.Put("b", 2, minutes(1));
  cache.Put("c", 3, minutes(1));
  CHECK(cache.size() == 3);
  CHECK(cache.evictions() == 0);

  // A lookup makes "a" the most recently used: "b" is now the oldest.
  CHECK(cache.Get("a") == 1);
  cache.Put("d", 4, minutes(1));
  CHECK(cache.size() == 3);
  CHECK(cache.evictions() == 1);
  CHECK(cache.Get("b") == std::nullopt);
  CHECK(cache.Get("a") == 1);
  CHECK(cache.Get("c") == 3);
  CHECK(cache.Get("d") == 4);

  // Order is now a (oldest), c, d: two more new keys push out a and c.
  cache.Put("e", 5, minutes(1));
  cache.Put("f", 6, minutes(1));
  CHECK(cache.evictions() == 3);
  CHECK(cache.Get("a") == std::nullopt);
  CHECK(cache.Get("c") == std::nullopt);
  CHECK(cache.Get("d") == 4);
}

TEST_CASE("a thousand distinct keys cost no more than the bound") {
  FakeClock clock;
  Cache cache(clock, 100);
  for (int i = 0; i < 1000; ++i) cache.Put("token-hash-" + std::to_string(i), i, seconds(10));
  CHECK(cache.size() == 100);
  CHECK(cache.evictions() == 900);
  // The newest survive.
  CHECK(cache.Get("token-hash-999") == 999);
  CHECK(cache.Get("token-hash-900") == 900);
  CHECK(cache.Get("token-hash-899") == std::nullopt);
}

TEST_CASE("a bound of zero keeps one entry") {
  FakeClock clock;
  Cache cache(clock, 0);
  cache.Put("a", 1, minutes(1));
  CHECK(cache.Get("a") == 1);
  cache.Put("b", 2, minutes(1));
  CHECK(cache.size() == 1);
  CHECK(cache.Get("b") == 2);
  CHECK(cache.Get("a") == std::nullopt);
}

TEST_CASE("Put replaces the value and the TTL, and makes the entry the most recently used") {
  FakeClock clock;
  Cache cache(clock, 2);
  cache.Put("a", 1, seconds(10));
  cache.Put("b", 2, seconds(10));
  cache.Put("a", 10, minutes(1));
  CHECK(cache.size() == 2);
  CHECK(cache.evictions() == 0);
  CHECK(cache.Get("a") == 10);

  // The new TTL counts from the replacement.
  clock.Advance(seconds(30));
  CHECK(cache.Get("a") == 10);
  CHECK(cache.Get("b") == std::nullopt);

  // "a" was refreshed after "b", so a new key pushes out "b", not "a".
  cache.Put("b", 2, minutes(1));
  cache.Put("a", 11, minutes(1));
  cache.Put("c", 3, minutes(1));
  CHECK(cache.Get("a") == 11);
  CHECK(cache.Get("b") == std::nullopt);
}

TEST_CASE("a TTL of zero or less stores nothing") {
  FakeClock clock;
  Cache cache(clock, 10);
  cache.Put("zero", 1, nanoseconds(0));
  cache.Put("negative", 2, seconds(-1));
  CHECK(cache.size() == 0);
  CHECK(cache.Get("zero") == std::nullopt);
  CHECK(cache.Get("negative") == std::nullopt);
}

TEST_CASE(
    "a TTL of zero or less drops what was stored under the key: a newer answer that must "
    "not be cached never leaves an older one in force") {
  FakeClock clock;
  Cache cache(clock, 10);
  cache.Put("alice list pods", 1, minutes(5));
  // Denials are not cached (TTL 0), and the key was just denied.
  cache.Put("alice list pods", 0, nanoseconds(0));
  CHECK(cache.Get("alice list pods") == std::nullopt);
  CHECK(cache.size() == 0);
  CHECK(cache.evictions() == 0);
}

TEST_CASE("callers on several threads at once (the mutex; run under TSan)") {
  SteadyClock clock;
  Cache cache(clock, 64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string key = std::to_string((i * 7 + t) % 100);
        cache.Put(key, i, milliseconds(i % 3));
        (void)cache.Get(key);
        (void)cache.size();
        (void)cache.evictions();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(cache.size() <= 64);
}

}  // namespace
}  // namespace informerd::core
