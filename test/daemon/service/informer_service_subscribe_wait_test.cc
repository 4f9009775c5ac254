// Specification of Subscribe's bounded waits (daemon/service/subscribe_stream.cc) over a real gRPC
// server: a snapshot stream whose resource does not sync within subscribe_sync_wait ends
// UNAVAILABLE saying why, and one from a resource version the cache does not reach within
// future_version_wait ends UNAVAILABLE "too large resource version", nothing sent; streams that
// get what they waited for in time go on past those times. The waits are short here, real time
// (the service's TimerThread runs on the steady clock): each test checks the end came no sooner
// than the wait, and that a stream that got what it waited for outlives the wait.
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using testing::Added;
using testing::Bookmark;
using testing::Describe;
using testing::Harness;
using testing::HarnessOptions;
using testing::ObjectSpec;
using testing::Stream;
using testing::SubscribeTo;
using testing::Sync;
using Strings = std::vector<std::string>;
using SteadyClock = std::chrono::steady_clock;

// Different, so that a stream waiting with the other's wait shows.
constexpr milliseconds kSyncWait{1500};
constexpr milliseconds kFutureWait{800};
// How long past a wait a test keeps a stream that must outlive it.
constexpr milliseconds kPastTheWait{700};
// Every stream's deadline: well past the waits, so that only the service ends a stream early.
constexpr milliseconds kStreamDeadline{15000};

HarnessOptions ShortWaits() {
  HarnessOptions options;
  options.service.subscribe_sync_wait = kSyncWait;
  options.service.future_version_wait = kFutureWait;
  return options;
}

// The time since `start`; compared through count(), which Catch2 prints.
milliseconds Since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
}

TEST_CASE(
    "a snapshot stream whose resource never syncs ends UNAVAILABLE after the wait, saying why",
    "[subscribe][wait]") {
  Harness harness(ShortWaits());
  core::ReflectorStatus upstream;
  std::mutex upstream_mu;
  Harness::CacheSpec spec;
  spec.status = [&] {
    std::lock_guard<std::mutex> lock(upstream_mu);
    return upstream;
  };
  auto cache = harness.AddCache(spec);
  {
    std::lock_guard<std::mutex> lock(upstream_mu);
    upstream.consecutive_failures = 4;
    upstream.last_error = absl::PermissionDeniedError("HTTP 403 Forbidden: pods is forbidden");
  }

  SECTION("nothing cached") {
    const SteadyClock::time_point start = SteadyClock::now();
    Stream stream(*harness.stub, SubscribeTo("pods"), kStreamDeadline);
    std::vector<v1::Event> events;
    const grpc::Status status = stream.Finish(&events);
    const milliseconds took = Since(start);
    CHECK(events.empty());
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(status.error_message() ==
          "pods has not synced within 1500ms: the initial list has not completed (last error "
          "from the apiserver: HTTP 403 Forbidden: pods is forbidden); retry");
    // Not before the wait; and well before the stream's own deadline.
    CHECK(took.count() >= kSyncWait.count());
    CHECK(took.count() < (kStreamDeadline - milliseconds(5000)).count());
    CHECK(testing::WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
  }
  SECTION("part of an initial list cached: that part, no SYNCED, then the end") {
    cache->BeginList();
    cache->ListItems({testing::Object({"default", "a", 5})}, "");
    const SteadyClock::time_point start = SteadyClock::now();
    Stream stream(*harness.stub, SubscribeTo("pods"), kStreamDeadline);
    std::vector<v1::Event> events;
    const grpc::Status status = stream.Finish(&events);
    CHECK(Since(start).count() >= kSyncWait.count());
    CHECK(Describe(events) == Strings{"ADDED default/a rv=5"});
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK_THAT(status.error_message(),
               Catch::StartsWith("pods has not synced within 1500ms: the initial list has not "
                                 "completed (last error from the apiserver: HTTP 403"));
  }
}

TEST_CASE("a snapshot stream whose resource syncs within the wait goes on past it",
          "[subscribe][wait]") {
  Harness harness(ShortWaits());
  auto cache = harness.AddCache();
  const SteadyClock::time_point start = SteadyClock::now();
  Stream stream(*harness.stub, SubscribeTo("pods"), kStreamDeadline);
  stream.WaitSubscribed();
  std::this_thread::sleep_for(milliseconds(200));
  Sync(*cache, {{"default", "a", 5}}, 10);
  CHECK(Describe(stream.Read(2)) == Strings{"ADDED default/a rv=10", "SYNCED rv=10"});

  SECTION("synced since") {}
  SECTION("unsynced again before the wait is over: it got SYNCED, so the wait is over for it") {
    cache->MarkUnsynced("resource no longer served by the apiserver");
  }
  std::this_thread::sleep_until(start + kSyncWait + kPastTheWait);
  cache->ApplyWatchEvent(Added({"default", "b", 11}));
  CHECK(Describe(stream.Read(1)) == Strings{"ADDED default/b rv=11"});
  CHECK(cache->Stats().subscriber_count == 1);
}

TEST_CASE("a snapshot stream of a synced resource, and a resumed one, outlive the sync wait",
          "[subscribe][wait]") {
  Harness harness(ShortWaits());
  auto cache = harness.AddCache();
  Sync(*cache, {{"default", "a", 5}}, 10);
  const SteadyClock::time_point start = SteadyClock::now();
  Stream snapshot(*harness.stub, SubscribeTo("pods"), kStreamDeadline);
  Stream resumed(*harness.stub, SubscribeTo("pods", "", "", "", "10"), kStreamDeadline);
  CHECK(Describe(snapshot.Read(2)) == Strings{"ADDED default/a rv=5", "SYNCED rv=10"});
  resumed.WaitSubscribed();
  std::this_thread::sleep_until(start + kSyncWait + kPastTheWait);
  cache->ApplyWatchEvent(Added({"default", "b", 11}));
  CHECK(Describe(snapshot.Read(1)) == Strings{"ADDED default/b rv=11"});
  CHECK(Describe(resumed.Read(1)) == Strings{"ADDED default/b rv=11"});
  CHECK(cache->Stats().subscriber_count == 2);
}

TEST_CASE("a stream from a resource version the cache does not reach in time: too large",
          "[subscribe][wait]") {
  Harness harness(ShortWaits());
  auto cache = harness.AddCache();
  Sync(*cache, {}, 10);
  v1::SubscribeRequest request = SubscribeTo("pods", "", "", "", "20");
  request.set_allow_bookmarks(true);
  const SteadyClock::time_point start = SteadyClock::now();
  Stream stream(*harness.stub, request, kStreamDeadline);
  stream.WaitSubscribed();
  // The cache moves, but not as far as 20: nothing of this is for the stream.
  cache->ApplyWatchEvent(Added({"default", "p15", 15}));
  cache->ApplyWatchEvent(Bookmark(17));
  cache->ApplyWatchEvent(Added({"default", "p19", 19}));

  std::vector<v1::Event> events;
  const grpc::Status status = stream.Finish(&events);
  const milliseconds took = Since(start);
  CHECK(Describe(events) == Strings{});
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(status.error_message() ==
        "too large resource version: 20, current: 19: the cache of pods has not reached it "
        "within 800ms; retry");
  CHECK(took.count() >= kFutureWait.count());
  CHECK(took.count() < (kStreamDeadline - milliseconds(5000)).count());
  CHECK(testing::WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
}

TEST_CASE("a stream from a resource version the cache reaches within the wait goes on past it",
          "[subscribe][wait]") {
  Harness harness(ShortWaits());
  auto cache = harness.AddCache();
  Sync(*cache, {}, 10);
  const SteadyClock::time_point start = SteadyClock::now();
  Stream stream(*harness.stub, SubscribeTo("pods", "", "", "", "20"), kStreamDeadline);
  stream.WaitSubscribed();
  cache->ApplyWatchEvent(Added({"default", "p15", 15}));
  SECTION("reached exactly, and nothing more until after the wait") {
    cache->ApplyWatchEvent(Added({"default", "p20", 20}));
    std::this_thread::sleep_until(start + kFutureWait + kPastTheWait);
    cache->ApplyWatchEvent(Added({"default", "p21", 21}));
    CHECK(Describe(stream.Read(1)) == Strings{"ADDED default/p21 rv=21"});
  }
  SECTION("passed: the events after it, then live ones after the wait") {
    cache->ApplyWatchEvent(Added({"default", "p21", 21}));
    cache->ApplyWatchEvent(Added({"default", "p22", 22}));
    CHECK(Describe(stream.Read(2)) ==
          Strings{"ADDED default/p21 rv=21", "ADDED default/p22 rv=22"});
    std::this_thread::sleep_until(start + kFutureWait + kPastTheWait);
    cache->ApplyWatchEvent(Added({"default", "p23", 23}));
    CHECK(Describe(stream.Read(1)) == Strings{"ADDED default/p23 rv=23"});
  }
  CHECK(cache->Stats().subscriber_count == 1);
}

TEST_CASE("zero waits: streams wait as long as it takes", "[subscribe][wait]") {
  HarnessOptions options;
  options.service.subscribe_sync_wait = milliseconds::zero();
  options.service.future_version_wait = milliseconds::zero();
  Harness harness(options);
  auto unsynced = harness.AddCache();
  Stream snapshot(*harness.stub, SubscribeTo("pods"), kStreamDeadline);
  snapshot.WaitSubscribed();
  std::this_thread::sleep_for(milliseconds(500));
  Sync(*unsynced, {}, 10);
  CHECK(Describe(snapshot.Read(1)) == Strings{"SYNCED rv=10"});
  Stream future(*harness.stub, SubscribeTo("pods", "", "", "", "20"), kStreamDeadline);
  future.WaitSubscribed();
  std::this_thread::sleep_for(milliseconds(500));
  unsynced->ApplyWatchEvent(Added({"default", "p21", 21}));
  CHECK(Describe(future.Read(1)) == Strings{"ADDED default/p21 rv=21"});
}

}  // namespace
}  // namespace informerd::daemon
