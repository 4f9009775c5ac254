// Specification of core/cache_event.*: which object a delivery carries, and encoding once.
#include "core/cache_event.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test/common/cache_test_support.h"

namespace informerd::core {
namespace {

using testing::MakeObject;

TEST_CASE("a MODIFIED delivered as DELETED carries the previous state; others the event's object") {
  auto before = std::make_shared<const ObjectRecord>(MakeObject("ns", "a", "u", 1));
  auto after = std::make_shared<const ObjectRecord>(MakeObject("ns", "a", "u", 2));
  const CacheEvent modified(EventType::kModified, "2", 2, after, before);
  CHECK(modified.ObjectFor(EventType::kModified) == after.get());
  CHECK(modified.ObjectFor(EventType::kAdded) == after.get());
  CHECK(modified.ObjectFor(EventType::kDeleted) == before.get());
  const CacheEvent deleted(EventType::kDeleted, "3", 3, after, before);
  CHECK(deleted.ObjectFor(EventType::kDeleted) == after.get());
  const CacheEvent bookmark(EventType::kBookmark, "4", 4);
  CHECK(bookmark.ObjectFor(EventType::kBookmark) == nullptr);
}

TEST_CASE("Encoded calls the encoder once per delivered type, even from many threads at once") {
  const CacheEvent event(EventType::kModified, "7", 7,
                         std::make_shared<const ObjectRecord>(MakeObject("ns", "a", "u", 7)),
                         std::make_shared<const ObjectRecord>(MakeObject("ns", "a", "u", 6)));
  std::atomic<int> calls{0};
  const CacheEvent::Encoder encode = [&](const CacheEvent& e, EventType delivered) {
    ++calls;
    return std::string(EventTypeName(delivered)) + "@" + e.resource_version() + ":" +
           e.ObjectFor(delivered)->resource_version;
  };
  std::vector<std::thread> threads;
  std::vector<const std::string*> results(16);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      results[i] = &event.Encoded(i % 2 == 0 ? EventType::kModified : EventType::kDeleted, encode);
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(calls == 2);
  for (int i = 0; i < 16; ++i) {
    CHECK(*results[i] == (i % 2 == 0 ? "MODIFIED@7:7" : "DELETED@7:6"));
    // The same bytes, not equal copies.
    CHECK(results[i] == results[i % 2]);
  }
}

}  // namespace
}  // namespace informerd::core
