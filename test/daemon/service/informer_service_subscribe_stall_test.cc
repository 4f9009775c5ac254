// Subscribe streams whose client reads nothing, over a real gRPC server: the service's periodic
// stall check (core::Cache::CheckStalled on its TimerThread) ends them even when no event ever
// arrives, within the snapshot's budget (subscriber_snapshot_stall_budget) while their snapshot
// waits, frees what was queued for them, and leaves the other readers alone.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using testing::Harness;
using testing::HarnessOptions;
using testing::ObjectSpec;
using testing::Stream;
using testing::SubscribeTo;
using testing::Sync;
using testing::WaitUntil;

TEST_CASE(
    "a client that reads nothing of its snapshot on a quiet resource is ended within the "
    "snapshot's stall budget; the others keep their streams",
    "[subscribe][slow]") {
  HarnessOptions options;
  options.service.subscriber_snapshot_stall_budget = std::chrono::seconds(3);
  Harness harness(options);
  auto cache = harness.AddCache();
  // 300 objects of 8 KiB: a 2.4 MiB snapshot, far more than a stream window holds.
  constexpr int kObjects = 300;
  std::vector<ObjectSpec> objects;
  for (int i = 0; i < kObjects; ++i) {
    ObjectSpec object{"default", fmt::format("p{:03}", i), static_cast<uint64_t>(1 + i)};
    object.padding = 8 << 10;
    objects.push_back(object);
  }
  Sync(*cache, objects, 1000);

  // A reader, which reads its snapshot and then waits on the quiet resource.
  Stream reader(*harness.stub, SubscribeTo("pods"));
  REQUIRE(reader.Read(kObjects + 1).size() == kObjects + 1);

  // The client that reads nothing has its own connection, with a fixed 64 KiB stream window (no
  // BDP probing): the server's writes to it stall almost at once.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto channel = harness.NewChannel(args);
  auto stub = v1::Informer::NewStub(channel);
  const auto subscribed = std::chrono::steady_clock::now();
  Stream idle(*stub, SubscribeTo("pods"));
  idle.WaitSubscribed();
  REQUIRE(WaitUntil([&] { return cache->Stats().subscriber_count == 2; }));

  // No event ever comes. Ended after the snapshot's budget (3 s, not the 1 s budget of a
  // subscriber past its snapshot) and within it plus two check periods (250 ms each), give or
  // take this machine's scheduling.
  REQUIRE(WaitUntil([&] { return cache->Stats().subscriber_count == 1; }));
  const auto ended_after = std::chrono::steady_clock::now() - subscribed;
  CHECK(ended_after >= std::chrono::seconds(3));
  CHECK(ended_after < std::chrono::seconds(7));
  CHECK(cache->Stats().subscribers_fell_behind == 1);

  // The client, reading at last: what the server had written before it stalled (a part of the
  // snapshot), then RESOURCE_EXHAUSTED saying to start over.
  std::vector<v1::Event> got;
  const grpc::Status status = idle.Finish(&got);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(got.size() < static_cast<std::size_t>(kObjects));
  CHECK_THAT(status.error_message(),
             Catch::StartsWith("subscriber fell behind before its initial snapshot was complete: "
                               "it read nothing for 3000 ms while ") &&
                 Catch::EndsWith("subscribe again without a resource version"));

  // The reader, which had nothing waiting, is still there and gets what comes next.
  CHECK(cache->Stats().subscriber_count == 1);
  ObjectSpec added{"default", "new", 1001};
  cache->ApplyWatchEvent(testing::Added(added));
  const std::vector<v1::Event> next = reader.Read(1);
  CHECK(testing::Describe(next) == std::vector<std::string>{"ADDED default/new rv=1001"});
  reader.context().TryCancel();
  CHECK(WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
}

}  // namespace
}  // namespace informerd::daemon
