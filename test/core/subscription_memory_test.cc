// What a subscriber costs in memory beyond the records it shares with the cache (subscription.h,
// "Bounded memory"): the bytes a Subscribe snapshot of 50,000 objects allocates for that one
// subscriber, and the bytes per live event queued for it. Measured by counting what the global
// operator new hands out and gets back in this binary (malloc_usable_size, so allocator rounding
// is included), around the call that makes the subscriber; the figures are printed (the README
// quotes them) and bounded, so that a change that makes snapshots copy more fails here.
#include <malloc.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/cache.h"
#include "fmt/format.h"
#include "test/common/cache_test_support.h"
#include "test/common/fake_clock.h"

namespace {

std::atomic<int64_t> g_live_bytes{0};

void* Allocate(std::size_t size) {
  void* pointer = std::malloc(size == 0 ? 1 : size);
  if (pointer == nullptr) throw std::bad_alloc();
  g_live_bytes.fetch_add(static_cast<int64_t>(malloc_usable_size(pointer)),
                         std::memory_order_relaxed);
  return pointer;
}

void Release(void* pointer) noexcept {
  if (pointer == nullptr) return;
  g_live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(pointer)),
                         std::memory_order_relaxed);
  std::free(pointer);
}

}  // namespace

void* operator new(std::size_t size) { return Allocate(size); }
void* operator new[](std::size_t size) { return Allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return Allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return Allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* pointer) noexcept { Release(pointer); }
void operator delete[](void* pointer) noexcept { Release(pointer); }
void operator delete(void* pointer, std::size_t) noexcept { Release(pointer); }
void operator delete[](void* pointer, std::size_t) noexcept { Release(pointer); }
void operator delete(void* pointer, const std::nothrow_t&) noexcept { Release(pointer); }
void operator delete[](void* pointer, const std::nothrow_t&) noexcept { Release(pointer); }

namespace informerd::core {
namespace {

using testing::Added;
using testing::MakeObject;

constexpr int kObjects = 50000;

ObjectRecord Pod(int index, uint64_t rv) {
  const std::string name = fmt::format("p{:05}", index);
  return MakeObject("default", name, "u-" + name, rv);
}

struct Fixture {
  Fixture() {
    std::vector<ObjectRecord> items;
    items.reserve(kObjects);
    for (int i = 0; i < kObjects; ++i) items.push_back(Pod(i, 2));
    cache->BeginList();
    cache->ListItems(std::move(items), "10");
    cache->EndList("10");
  }
  FakeClock clock;
  std::shared_ptr<Cache> cache = Cache::Create(CacheOptions{}, clock);
};

TEST_CASE("a snapshot costs its subscriber 16 bytes per object while it is read, nothing after",
          "[subscription][memory]") {
  Fixture f;
  const int64_t before = g_live_bytes.load();
  absl::StatusOr<std::shared_ptr<Subscription>> sub = f.cache->Subscribe(SubscribeOptions{});
  REQUIRE(sub.ok());
  const int64_t cost = g_live_bytes.load() - before;
  const double per_object = static_cast<double>(cost) / kObjects;
  std::printf("snapshot of %d objects: %lld bytes for the subscriber, %.2f bytes per object\n",
              kObjects, static_cast<long long>(cost), per_object);
  // One shared_ptr per object (16 bytes), and a few kilobytes for the subscription itself (its
  // filter, its queue's first block, the SYNCED marker queued after the snapshot).
  CHECK(cost <= int64_t{16} * kObjects + 4096);

  // Half read: the array stays until the last item is out (the records already sent are
  // released: their slots are empty).
  for (int i = 0; i < kObjects / 2; ++i) REQUIRE((*sub)->TryPop().has_value());
  CHECK(g_live_bytes.load() - before <= int64_t{16} * kObjects + 4096);
  for (int i = kObjects / 2; i < kObjects; ++i) REQUIRE((*sub)->TryPop().has_value());
  // All read (SYNCED is still queued): the array is gone.
  const int64_t after_snapshot = g_live_bytes.load() - before;
  std::printf("after the snapshot is read: %lld bytes\n", static_cast<long long>(after_snapshot));
  CHECK(after_snapshot <= 4096);
  (*sub)->Close();
}

TEST_CASE("a live event queued for a subscriber costs it about 32 bytes",
          "[subscription][memory]") {
  Fixture f;
  absl::StatusOr<std::shared_ptr<Subscription>> reader = f.cache->Subscribe(SubscribeOptions{});
  REQUIRE(reader.ok());
  while ((*reader)->TryPop()) {
  }
  constexpr int kEvents = 4000;
  uint64_t rv = 10;
  // The same kind of events twice (new objects: the store and the window grow alike), first
  // with only the reader, then with a subscriber that reads nothing as well.
  const auto apply = [&] {
    const int64_t before = g_live_bytes.load();
    for (int i = 0; i < kEvents; ++i) {
      ++rv;
      f.cache->ApplyWatchEvent(Added(Pod(kObjects + static_cast<int>(rv), rv)));
      while ((*reader)->TryPop()) {
      }
    }
    return g_live_bytes.load() - before;
  };
  const int64_t alone = apply();
  SubscribeOptions options;
  options.resource_version = std::to_string(rv);
  options.queue_capacity = kEvents;  // the hard limit (4x) is never reached
  absl::StatusOr<std::shared_ptr<Subscription>> idle = f.cache->Subscribe(std::move(options));
  REQUIRE(idle.ok());
  const int64_t with_idle = apply();
  REQUIRE((*idle)->pending() == static_cast<std::size_t>(kEvents));
  const double per_event = static_cast<double>(with_idle - alone) / kEvents;
  std::printf("a queued live event: %.2f bytes for its subscriber\n", per_event);
  CHECK(per_event <= 40);
  (*idle)->Close();
  (*reader)->Close();
}

}  // namespace
}  // namespace informerd::core
