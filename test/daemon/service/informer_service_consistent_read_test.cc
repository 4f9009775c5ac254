// Specification of List and Get (daemon/service/unary_calls.cc) against a cache that is changing
// under them, over a real gRPC server: a relist that is replacing the cached objects is waited
// for, never served half-done, and min_resource_version makes a read wait until the cache has
// reached a version (reading one's own write), or answers "too large resource version".
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/object_scanner.h"
#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using testing::Harness;
using testing::HarnessOptions;
using testing::ObjectSpec;
using testing::Sync;
using testing::WaitUntil;
using Strings = std::vector<std::string>;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

struct ListOutcome {
  grpc::Status status;
  v1::ListResponse response;
  SteadyClock::duration took{};
};

ListOutcome List(v1::Informer::Stub& stub, const std::string& min_resource_version = "",
                 milliseconds deadline = milliseconds(20000)) {
  v1::ListRequest request;
  request.set_resource("pods");
  request.set_min_resource_version(min_resource_version);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  ListOutcome outcome;
  const auto start = SteadyClock::now();
  outcome.status = stub.List(&context, request, &outcome.response);
  outcome.took = SteadyClock::now() - start;
  return outcome;
}

struct GetOutcome {
  grpc::Status status;
  v1::GetResponse response;
  SteadyClock::duration took{};
};

GetOutcome Get(v1::Informer::Stub& stub, const std::string& name,
               const std::string& min_resource_version = "",
               milliseconds deadline = milliseconds(20000)) {
  v1::GetRequest request;
  request.set_resource("pods");
  request.set_namespace_("default");
  request.set_name(name);
  request.set_min_resource_version(min_resource_version);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  GetOutcome outcome;
  const auto start = SteadyClock::now();
  outcome.status = stub.Get(&context, request, &outcome.response);
  outcome.took = SteadyClock::now() - start;
  return outcome;
}

// "namespace/name@resourceVersion" of each listed object, read from its JSON.
Strings Listed(const v1::ListResponse& response) {
  Strings listed;
  for (const std::string& item : response.items()) {
    core::ScanOptions options;
    core::ObjectScanner scanner(options);
    absl::StatusOr<core::ObjectRecord> scanned = scanner.Scan(item);
    REQUIRE(scanned.ok());
    listed.push_back(
        fmt::format("{}/{}@{}", scanned->namespace_name, scanned->name, scanned->resource_version));
  }
  return listed;
}

// A cache registered for pods whose informer status is looked at (by a waiting call, each time
// it finds the cache not ready for it) and counted: how tests tell that a call is waiting.
struct Fixture {
  explicit Fixture(HarnessOptions options = {}) : harness(std::move(options)) {
    Harness::CacheSpec spec;
    spec.status = [this] {
      ++looks;
      return core::ReflectorStatus();
    };
    cache = harness.AddCache(spec);
  }

  // Waits until a call in progress has looked at the cache `count` more times.
  bool Waiting(int count = 2) const {
    const int before = looks.load();
    return WaitUntil([&] { return looks.load() >= before + count; });
  }

  std::atomic<int> looks{0};
  Harness harness;
  std::shared_ptr<core::Cache> cache;
};

const ObjectSpec kWeb1{"default", "web-1", 4};
const ObjectSpec kDb1{"default", "db-1", 5};

// ---- Reads during a relist ---------------------------------------------------------------------

TEST_CASE("List and Get during a relist that changed the cache wait for it to complete",
          "[relist]") {
  Fixture f;
  Sync(*f.cache, {kWeb1, kDb1}, 10);
  REQUIRE(List(*f.harness.stub).status.ok());

  f.cache->BeginList();
  f.cache->ListItems({testing::Object(kWeb1)}, "30");  // unchanged

  SECTION("before the relist changes anything, the previous complete state is served at once") {
    const ListOutcome outcome = List(*f.harness.stub);
    REQUIRE(outcome.status.ok());
    CHECK(outcome.response.resource_version() == "10");
    CHECK(Listed(outcome.response) == Strings{"default/db-1@5", "default/web-1@4"});
    CHECK(outcome.took < milliseconds(2000));
    f.cache->EndList("30");
  }
  SECTION("a List waiting through the relist answers exactly the new state after EndList") {
    f.cache->ListItems({testing::Object({"default", "web-1", 20})}, "30");
    ListOutcome listed;
    GetOutcome got;
    std::atomic<int> answered{0};
    std::thread list_client([&] {
      listed = List(*f.harness.stub, "", milliseconds(10000));
      ++answered;
    });
    std::thread get_client([&] {
      got = Get(*f.harness.stub, "web-1", "", milliseconds(10000));
      ++answered;
    });
    CHECK(f.Waiting(4));
    // Another page, then the end: still nothing answered until the list is complete.
    f.cache->ListItems({testing::Object({"default", "web-2", 25})}, "30");
    CHECK(f.Waiting(4));
    CHECK(answered.load() == 0);
    f.cache->EndList("30");
    list_client.join();
    get_client.join();
    REQUIRE(listed.status.ok());
    CHECK(listed.response.resource_version() == "30");
    // db-1 was not in the new list: gone; web-1 at its new version; web-2 new.
    CHECK(Listed(listed.response) == Strings{"default/web-1@20", "default/web-2@25"});
    REQUIRE(got.status.ok());
    CHECK(got.response.object() == testing::Object({"default", "web-1", 20}).json);
    CHECK(got.response.resource_version() == "30");
  }
  SECTION("a relist that does not complete in time is UNAVAILABLE, naming the relist") {
    f.cache->ListItems({testing::Object({"default", "web-2", 25})}, "30");
    const ListOutcome listed = List(*f.harness.stub, "", milliseconds(800));
    CHECK(listed.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(listed.status.error_message() ==
          "pods has not synced yet: a relist is replacing the cached objects (since resource "
          "version 10)");
    CHECK(listed.took >= milliseconds(500));
    CHECK(listed.took < milliseconds(800));
    const GetOutcome got = Get(*f.harness.stub, "db-1", "", milliseconds(500));
    CHECK(got.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(got.status.error_message() == listed.status.error_message());
    // An aborted relist leaves the mix: still refused, until a list completes.
    f.cache->AbortList();
    CHECK(List(*f.harness.stub, "", milliseconds(400)).status.error_code() ==
          grpc::StatusCode::UNAVAILABLE);
    Sync(*f.cache, {kDb1}, 40);
    const ListOutcome after = List(*f.harness.stub);
    REQUIRE(after.status.ok());
    CHECK(after.response.resource_version() == "40");
    CHECK(Listed(after.response) == Strings{"default/db-1@5"});
  }
}

// ---- min_resource_version ----------------------------------------------------------------------

TEST_CASE("min_resource_version: a read waits until the cache has reached it", "[consistent]") {
  Fixture f;
  Sync(*f.cache, {kWeb1}, 10);

  SECTION("List") {
    ListOutcome outcome;
    std::atomic<bool> answered{false};
    std::thread client([&] {
      outcome = List(*f.harness.stub, "15", milliseconds(10000));
      answered = true;
    });
    CHECK(f.Waiting());
    f.cache->ApplyWatchEvent(testing::Added({"default", "web-2", 12}));
    CHECK(f.Waiting());
    CHECK_FALSE(answered.load());
    f.cache->ApplyWatchEvent(testing::Added({"default", "web-3", 16}));
    client.join();
    REQUIRE(outcome.status.ok());
    CHECK(outcome.response.resource_version() == "16");
    CHECK(Listed(outcome.response) ==
          Strings{"default/web-1@4", "default/web-2@12", "default/web-3@16"});
  }
  SECTION("Get reads its own write: an object created at X, asked for at X") {
    // Without min_resource_version the cache has not seen it yet.
    CHECK(Get(*f.harness.stub, "new").status.error_code() == grpc::StatusCode::NOT_FOUND);
    GetOutcome outcome;
    std::thread client([&] { outcome = Get(*f.harness.stub, "new", "17", milliseconds(10000)); });
    CHECK(f.Waiting());
    f.cache->ApplyWatchEvent(testing::Added({"default", "new", 17}));
    client.join();
    REQUIRE(outcome.status.ok());
    CHECK(outcome.response.object() == testing::Object({"default", "new", 17}).json);
    CHECK(outcome.response.resource_version() == "17");
  }
  SECTION("a bookmark reaching it is enough") {
    ListOutcome outcome;
    std::thread client([&] { outcome = List(*f.harness.stub, "20", milliseconds(10000)); });
    CHECK(f.Waiting());
    f.cache->ApplyWatchEvent(testing::Bookmark(25));
    client.join();
    REQUIRE(outcome.status.ok());
    CHECK(outcome.response.resource_version() == "25");
  }
  SECTION("a version the cache has reached, \"0\" and \"\" answer at once") {
    for (const std::string min : {"", "0", "5", "10", "0010"}) {
      INFO("min_resource_version \"" << min << "\"");
      const ListOutcome listed = List(*f.harness.stub, min, milliseconds(5000));
      REQUIRE(listed.status.ok());
      CHECK(listed.response.resource_version() == "10");
      CHECK(listed.took < milliseconds(2000));
      const GetOutcome got = Get(*f.harness.stub, "web-1", min, milliseconds(5000));
      REQUIRE(got.status.ok());
      CHECK(got.response.resource_version() == "10");
    }
  }
}

TEST_CASE("min_resource_version not reached in time: UNAVAILABLE, too large resource version",
          "[consistent]") {
  SECTION("at the call's deadline, naming both versions") {
    Fixture f;
    Sync(*f.cache, {kWeb1}, 10);
    const ListOutcome listed = List(*f.harness.stub, "100", milliseconds(800));
    CHECK(listed.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(listed.status.error_message() ==
          "too large resource version: 100, current: 10: the cache of pods has not reached it "
          "in time; retry");
    CHECK(listed.took >= milliseconds(500));
    CHECK(listed.took < milliseconds(800));
    const GetOutcome got = Get(*f.harness.stub, "web-1", "11", milliseconds(500));
    CHECK(got.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(got.status.error_message() ==
          "too large resource version: 11, current: 10: the cache of pods has not reached it "
          "in time; retry");
  }
  SECTION("after max_sync_wait, even with a later deadline") {
    HarnessOptions options;
    options.service.max_sync_wait = milliseconds(300);
    Fixture f(options);
    Sync(*f.cache, {kWeb1}, 10);
    const ListOutcome listed = List(*f.harness.stub, "100", milliseconds(20000));
    CHECK(listed.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(listed.took < milliseconds(3000));
    const GetOutcome got = Get(*f.harness.stub, "web-1", "100", milliseconds(20000));
    CHECK(got.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(got.took < milliseconds(3000));
  }
  SECTION("a cache that has not synced says so too") {
    Fixture f;
    const ListOutcome listed = List(*f.harness.stub, "5", milliseconds(500));
    CHECK(listed.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(listed.status.error_message() ==
          "too large resource version: 5, current: none: the cache of pods has not reached it "
          "in time; retry (pods has not synced yet: the initial list has not completed)");
  }
}

TEST_CASE("min_resource_version that is not a decimal number is INVALID_ARGUMENT",
          "[consistent][errors]") {
  Fixture f;
  Sync(*f.cache, {kWeb1}, 10);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc", "is not a decimal number"},
      {"-1", "is not a decimal number"},
      {" 5", "is not a decimal number"},
      {"1.5", "is not a decimal number"},
      {"18446744073709551616", "is larger than 2^64-1"},
  };
  for (const auto& [min, why] : cases) {
    INFO("min_resource_version \"" << min << "\"");
    const std::string message =
        fmt::format("min_resource_version: resource version \"{}\" {}", min, why);
    const ListOutcome listed = List(*f.harness.stub, min);
    CHECK(listed.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(listed.status.error_message() == message);
    const GetOutcome got = Get(*f.harness.stub, "web-1", min);
    CHECK(got.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(got.status.error_message() == message);
  }
}

}  // namespace
}  // namespace informerd::daemon
