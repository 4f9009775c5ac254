// Specification of InformerService's unary RPCs (daemon/service/informer_service.*) over a real
// gRPC server: List, Get and ListResources, every error they answer, and how List and Get wait for
// a resource's initial sync.
#include "daemon/service/informer_service.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/object_scanner.h"
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
using Strings = std::vector<std::string>;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

struct ListOutcome {
  grpc::Status status;
  v1::ListResponse response;
  SteadyClock::duration took{};
};

ListOutcome List(v1::Informer::Stub& stub, const std::string& resource,
                 const std::string& namespace_name = "", const std::string& label_selector = "",
                 const std::string& field_selector = "",
                 milliseconds deadline = milliseconds(20000)) {
  v1::ListRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_label_selector(label_selector);
  request.set_field_selector(field_selector);
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
};

GetOutcome Get(v1::Informer::Stub& stub, const std::string& resource,
               const std::string& namespace_name, const std::string& name,
               milliseconds deadline = milliseconds(20000)) {
  v1::GetRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_name(name);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  GetOutcome outcome;
  outcome.status = stub.Get(&context, request, &outcome.response);
  return outcome;
}

// The names of the listed objects, "namespace/name", read from their JSON.
Strings Names(const v1::ListResponse& response) {
  Strings names;
  for (const std::string& item : response.items()) {
    const core::ObjectRecord record = [&] {
      core::ScanOptions options;
      core::ObjectScanner scanner(options);
      absl::StatusOr<core::ObjectRecord> scanned = scanner.Scan(item);
      REQUIRE(scanned.ok());
      return std::move(*scanned);
    }();
    names.push_back(record.namespace_name.empty()
                        ? record.name.str()
                        : fmt::format("{}/{}", record.namespace_name, record.name));
  }
  return names;
}

const std::vector<ObjectSpec> kPods = {
    {"default", "web-1", 4, {{"app", "web"}}, "n1"},
    {"default", "db-1", 5, {{"app", "db"}}, "n2"},
    {"other", "web-2", 6, {{"app", "web"}}, "n2"},
    {"default", "web-0", 7, {{"app", "web"}}, "n1"},
};

TEST_CASE("List answers the cached objects that match, ordered by namespace and name", "[list]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, kPods, 10);

  const ListOutcome all = List(*harness.stub, "pods");
  REQUIRE(all.status.ok());
  CHECK(Names(all.response) ==
        Strings{"default/db-1", "default/web-0", "default/web-1", "other/web-2"});
  CHECK(all.response.resource_version() == "10");
  CHECK(all.response.items(0) == testing::Object(kPods[1]).json);

  CHECK(Names(List(*harness.stub, "po", "default").response) ==
        Strings{"default/db-1", "default/web-0", "default/web-1"});
  CHECK(Names(List(*harness.stub, "pods", "", "app=web").response) ==
        Strings{"default/web-0", "default/web-1", "other/web-2"});
  CHECK(Names(List(*harness.stub, "pods", "", "app=web", "spec.nodeName=n2").response) ==
        Strings{"other/web-2"});
  CHECK(Names(List(*harness.stub, "pods", "default", "", "metadata.name!=web-0").response) ==
        Strings{"default/db-1", "default/web-1"});
  const ListOutcome none = List(*harness.stub, "pods", "nowhere");
  CHECK(none.status.ok());
  CHECK(none.response.items().empty());

  cache->ApplyWatchEvent(testing::Added({"default", "new", 11}));
  CHECK(List(*harness.stub, "pods").response.resource_version() == "11");
}

TEST_CASE("List's errors", "[list][errors]") {
  HarnessOptions options;
  options.max_receive_message_bytes = 32 << 20;
  Harness harness(options);
  Harness::CacheSpec in_default;
  in_default.namespace_name = "default";
  Sync(*harness.AddCache(in_default), kPods, 10);
  Harness::CacheSpec nodes;
  nodes.resource = testing::NodesResource();
  Sync(*harness.AddCache(nodes), {{"", "n1", 3}}, 4);

  const auto check = [&](const ListOutcome& outcome, grpc::StatusCode code,
                         const std::string& message) {
    CHECK(outcome.status.error_code() == code);
    CHECK(outcome.status.error_message() == message);
  };
  check(List(*harness.stub, "gadgets"), grpc::StatusCode::NOT_FOUND,
        "the server doesn't have a resource type \"gadgets\"");
  CHECK(List(*harness.stub, "ambiguous").status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  check(List(*harness.stub, "pods"), grpc::StatusCode::NOT_FOUND,
        "pods is not served by this informerd (configured: pods in namespace default, nodes)");
  check(List(*harness.stub, "pods", "kube-system"), grpc::StatusCode::NOT_FOUND,
        "pods in namespace kube-system is not served by this informerd (configured: pods in "
        "namespace default, nodes)");
  check(List(*harness.stub, "deployments.apps"), grpc::StatusCode::NOT_FOUND,
        "deployments.apps is not served by this informerd (configured: pods in namespace "
        "default, nodes)");
  check(List(*harness.stub, "nodes", "default"), grpc::StatusCode::INVALID_ARGUMENT,
        "nodes is cluster-scoped: namespace must be empty, got \"default\"");
  const ListOutcome bad_labels = List(*harness.stub, "pods", "default", "app in (web");
  CHECK(bad_labels.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(bad_labels.status.error_message(),
             Catch::StartsWith("label selector \"app in (web\""));
  const ListOutcome bad_fields = List(*harness.stub, "pods", "default", "", "spec.nodeName");
  CHECK(bad_fields.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(bad_fields.status.error_message(),
             Catch::StartsWith("field selector \"spec.nodeName\""));
  const ListOutcome unsupported = List(*harness.stub, "pods", "default", "", "spec.foo=x");
  CHECK(unsupported.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(unsupported.status.error_message(), Catch::Contains("spec.foo"));
  // Ten megabytes take a while to cross (gRPC's flow control; sanitizers): a long deadline.
  check(List(*harness.stub, "pods", "default", "", std::string(10 << 20, '='), milliseconds(60000)),
        grpc::StatusCode::INVALID_ARGUMENT,
        "field selector is 10485760 bytes long; at most 4096 are accepted "
        "(--max-selector-bytes=4096)");
  // And the server goes on serving.
  CHECK(List(*harness.stub, "pods", "default").response.items_size() == 3);
  CHECK(List(*harness.stub, "nodes").response.items_size() == 1);
}

TEST_CASE("List picks the informer that answers for the namespace", "[list]") {
  Harness harness;
  // All namespaces but only app=web, and one namespace with everything.
  Harness::CacheSpec filtered;
  filtered.label_selector = "app=web";
  auto front = harness.AddCache(filtered);
  Sync(*front, {kPods[0], kPods[2], kPods[3]}, 10);
  Harness::CacheSpec in_default;
  in_default.namespace_name = "default";
  auto whole = harness.AddCache(in_default);
  Sync(*whole, {kPods[0], kPods[1], kPods[3]}, 10);

  CHECK(Names(List(*harness.stub, "pods", "default").response) ==
        Strings{"default/db-1", "default/web-0", "default/web-1"});
  CHECK(Names(List(*harness.stub, "pods").response) ==
        Strings{"default/web-0", "default/web-1", "other/web-2"});
  CHECK(Names(List(*harness.stub, "pods", "other").response) == Strings{"other/web-2"});

  SECTION("entries come and go at run time") {
    REQUIRE(harness.registry.Remove(harness.ids[whole]));
    CHECK(Names(List(*harness.stub, "pods", "default").response) ==
          Strings{"default/web-0", "default/web-1"});
    REQUIRE(harness.registry.Remove(harness.ids[front]));
    CHECK(List(*harness.stub, "pods", "default").status.error_code() ==
          grpc::StatusCode::NOT_FOUND);
    Harness::CacheSpec again;
    Sync(*harness.AddCache(again), {kPods[1]}, 20);
    CHECK(Names(List(*harness.stub, "pods", "default").response) == Strings{"default/db-1"});
  }
}

TEST_CASE("List before the initial sync waits for it until the call's deadline", "[list][sync]") {
  Harness harness;
  std::atomic<int> status_calls{0};
  core::ReflectorStatus upstream;
  std::mutex upstream_mu;
  Harness::CacheSpec spec;
  spec.status = [&] {
    ++status_calls;
    std::lock_guard<std::mutex> lock(upstream_mu);
    return upstream;
  };
  auto cache = harness.AddCache(spec);

  SECTION("UNAVAILABLE, with the reason, shortly before the deadline") {
    const ListOutcome outcome = List(*harness.stub, "pods", "", "", "", milliseconds(1000));
    CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(outcome.status.error_message() ==
          "pods has not synced yet: the initial list has not completed");
    CHECK(outcome.took >= milliseconds(700));
    CHECK(outcome.took < milliseconds(1000));
  }
  SECTION("the reason includes the upstream error while the informer keeps failing") {
    {
      std::lock_guard<std::mutex> lock(upstream_mu);
      upstream.consecutive_failures = 3;
      upstream.last_error = absl::PermissionDeniedError("HTTP 403 Forbidden: pods is forbidden");
    }
    const ListOutcome outcome = List(*harness.stub, "pods", "", "", "", milliseconds(500));
    CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(outcome.status.error_message() ==
          "pods has not synced yet: the initial list has not completed (last error from the "
          "apiserver: HTTP 403 Forbidden: pods is forbidden)");
  }
  SECTION("a resource gone from the apiserver is UNAVAILABLE at once") {
    {
      std::lock_guard<std::mutex> lock(upstream_mu);
      upstream.resource_gone = true;
    }
    const ListOutcome outcome = List(*harness.stub, "pods", "", "", "", milliseconds(5000));
    CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(outcome.status.error_message() == "pods is no longer served by the apiserver");
    CHECK(outcome.took < milliseconds(2500));
  }
  SECTION("a sync that completes in time answers the List") {
    ListOutcome outcome;
    std::thread client(
        [&] { outcome = List(*harness.stub, "pods", "", "", "", milliseconds(10000)); });
    REQUIRE(WaitUntil([&] { return status_calls.load() >= 3; }));  // it is polling
    Sync(*cache, kPods, 10);
    client.join();
    REQUIRE(outcome.status.ok());
    CHECK(outcome.response.items_size() == 4);
    CHECK(outcome.response.resource_version() == "10");
  }
  SECTION("a cache marked unsynced again makes List wait again") {
    Sync(*cache, kPods, 10);
    CHECK(List(*harness.stub, "pods").status.ok());
    cache->MarkUnsynced("the resource is being rediscovered");
    const ListOutcome outcome = List(*harness.stub, "pods", "", "", "", milliseconds(400));
    CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(outcome.status.error_message() ==
          "pods has not synced yet: the resource is being rediscovered");
  }
  SECTION("a client that goes away stops the waiting") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status;
    std::thread client([&] {
      v1::ListRequest request;
      request.set_resource("pods");
      v1::ListResponse response;
      status = harness.stub->List(&context, request, &response);
    });
    REQUIRE(WaitUntil([&] { return status_calls.load() >= 2; }));
    context.TryCancel();
    client.join();
    CHECK(status.error_code() == grpc::StatusCode::CANCELLED);
    std::this_thread::sleep_for(milliseconds(200));  // the next look notices
    const int after_cancel = status_calls.load();
    std::this_thread::sleep_for(milliseconds(400));
    CHECK(status_calls.load() == after_cancel);
  }
  SECTION("a cache shut down under a waiting List ends it with the cache's status") {
    ListOutcome outcome;
    std::thread client(
        [&] { outcome = List(*harness.stub, "pods", "", "", "", milliseconds(20000)); });
    REQUIRE(WaitUntil([&] { return status_calls.load() >= 2; }));
    cache->Shutdown(absl::UnavailableError("pods stopped being served by the apiserver"));
    client.join();
    CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(outcome.status.error_message() == "pods stopped being served by the apiserver");
    CHECK(outcome.took < milliseconds(5000));
  }
  SECTION("a synced cache that was shut down is not served") {
    Sync(*cache, kPods, 10);
    REQUIRE(List(*harness.stub, "pods").status.ok());
    cache->Shutdown(absl::UnavailableError("pods stopped being served by the apiserver"));
    const ListOutcome outcome = List(*harness.stub, "pods");
    CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(outcome.status.error_message() == "pods stopped being served by the apiserver");
  }
  SECTION("informerd shutting down ends a waiting List") {
    ListOutcome outcome;
    std::thread client(
        [&] { outcome = List(*harness.stub, "pods", "", "", "", milliseconds(20000)); });
    REQUIRE(WaitUntil([&] { return status_calls.load() >= 2; }));
    harness.service->Shutdown();
    client.join();
    CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(outcome.status.error_message() == "informerd is shutting down");
    CHECK(outcome.took < milliseconds(5000));
    CHECK(List(*harness.stub, "pods").status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_CASE("Get reads one object", "[get]") {
  Harness harness;
  auto pods = harness.AddCache();
  Sync(*pods, kPods, 10);
  Harness::CacheSpec nodes;
  nodes.resource = testing::NodesResource();
  Sync(*harness.AddCache(nodes), {{"", "n1", 3}}, 4);

  const GetOutcome found = Get(*harness.stub, "pods", "default", "web-1");
  REQUIRE(found.status.ok());
  CHECK(found.response.object() == testing::Object(kPods[0]).json);
  CHECK(found.response.resource_version() == "10");
  const GetOutcome node = Get(*harness.stub, "nodes", "", "n1");
  REQUIRE(node.status.ok());
  CHECK(node.response.object() == testing::Object({"", "n1", 3}).json);
  CHECK(node.response.resource_version() == "4");

  const auto check = [&](const GetOutcome& outcome, grpc::StatusCode code,
                         const std::string& message) {
    CHECK(outcome.status.error_code() == code);
    CHECK(outcome.status.error_message() == message);
  };
  check(Get(*harness.stub, "pods", "default", "missing"), grpc::StatusCode::NOT_FOUND,
        "pods \"missing\" not found in namespace \"default\"");
  check(Get(*harness.stub, "pods", "", "web-1"), grpc::StatusCode::NOT_FOUND,
        "pods \"web-1\" not found: pods is namespaced and no namespace was given");
  check(Get(*harness.stub, "nodes", "", "n9"), grpc::StatusCode::NOT_FOUND,
        "nodes \"n9\" not found");
  check(Get(*harness.stub, "pods", "default", ""), grpc::StatusCode::INVALID_ARGUMENT,
        "name must not be empty");
  check(Get(*harness.stub, "nodes", "default", "n1"), grpc::StatusCode::INVALID_ARGUMENT,
        "nodes is cluster-scoped: namespace must be empty, got \"default\"");
  check(Get(*harness.stub, "gadgets", "default", "x"), grpc::StatusCode::NOT_FOUND,
        "the server doesn't have a resource type \"gadgets\"");
  check(Get(*harness.stub, "deployments", "default", "x"), grpc::StatusCode::NOT_FOUND,
        "deployments.apps in namespace default is not served by this informerd (configured: "
        "pods, nodes)");
}

TEST_CASE("Get before the initial sync waits for it", "[get][sync]") {
  Harness harness;
  // A waiting Get looks at the informer's status each time it finds the cache not synced.
  std::atomic<int> status_calls{0};
  Harness::CacheSpec spec;
  spec.status = [&] {
    ++status_calls;
    return core::ReflectorStatus();
  };
  auto cache = harness.AddCache(spec);
  cache->ApplyWatchEvent(testing::Added({"default", "early", 3}));  // cached, but not synced

  const GetOutcome unavailable = Get(*harness.stub, "pods", "default", "early", milliseconds(500));
  CHECK(unavailable.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(unavailable.status.error_message() ==
        "pods has not synced yet: the initial list has not completed");

  GetOutcome outcome;
  std::atomic<bool> answered{false};
  const int before = status_calls.load();
  std::thread client([&] {
    outcome = Get(*harness.stub, "pods", "default", "web-1", milliseconds(10000));
    answered = true;
  });
  // It is waiting: it has found the cache not synced twice, and has not answered.
  CHECK(WaitUntil([&] { return status_calls.load() >= before + 2; }));
  CHECK_FALSE(answered.load());
  Sync(*cache, kPods, 10);
  client.join();
  REQUIRE(outcome.status.ok());
  CHECK(outcome.response.object() == testing::Object(kPods[0]).json);
}

TEST_CASE("ListResources describes every informer", "[listresources]") {
  Harness harness;
  auto pods = harness.AddCache();
  Sync(*pods, kPods, 10);
  Harness::CacheSpec deployments;
  deployments.resource = testing::DeploymentsResource();
  deployments.namespace_name = "default";
  deployments.label_selector = "team=a";
  deployments.field_selector = "metadata.name!=x";
  deployments.status = [] {
    core::ReflectorStatus status;
    status.consecutive_failures = 2;
    status.last_error =
        absl::PermissionDeniedError("HTTP 403 Forbidden: deployments.apps is forbidden");
    return status;
  };
  harness.AddCache(deployments);
  Harness::CacheSpec nodes;
  nodes.resource = testing::NodesResource();
  nodes.status = [] {
    core::ReflectorStatus status;
    status.resource_gone = true;
    status.consecutive_failures = 1;
    status.last_error = absl::NotFoundError("HTTP 404 Not Found");
    return status;
  };
  Sync(*harness.AddCache(nodes), {}, 4);
  Harness::CacheSpec recovered;
  recovered.resource = testing::PodsResource();
  recovered.namespace_name = "other";
  recovered.status = [] {
    core::ReflectorStatus status;
    status.consecutive_failures = 0;  // failed once, healthy since
    status.last_error = absl::UnavailableError("connection refused");
    return status;
  };
  harness.AddCache(recovered);

  Stream stream(*harness.stub, SubscribeTo("pods"));
  stream.Read(5);

  grpc::ClientContext context;
  v1::ListResourcesResponse response;
  REQUIRE(harness.stub->ListResources(&context, v1::ListResourcesRequest(), &response).ok());
  REQUIRE(response.resources_size() == 4);

  const v1::ResourceInfo& p = response.resources(0);
  CHECK(p.group().empty());
  CHECK(p.version() == "v1");
  CHECK(p.resource() == "pods");
  CHECK(p.kind() == "Pod");
  CHECK(p.namespaced());
  CHECK(p.namespace_().empty());
  CHECK(p.synced());
  CHECK(p.resource_version() == "10");
  CHECK(p.object_count() == 4);
  CHECK(p.subscriber_count() == 1);
  CHECK(p.condition().empty());

  const v1::ResourceInfo& d = response.resources(1);
  CHECK(d.group() == "apps");
  CHECK(d.resource() == "deployments");
  CHECK(d.kind() == "Deployment");
  CHECK(d.namespace_() == "default");
  CHECK(d.label_selector() == "team=a");
  CHECK(d.field_selector() == "metadata.name!=x");
  CHECK_FALSE(d.synced());
  CHECK(d.resource_version().empty());
  CHECK(d.object_count() == 0);
  CHECK(d.condition() == "HTTP 403 Forbidden: deployments.apps is forbidden");

  const v1::ResourceInfo& n = response.resources(2);
  CHECK(n.resource() == "nodes");
  CHECK_FALSE(n.namespaced());
  CHECK(n.condition() == "resource no longer served by the apiserver");

  CHECK(response.resources(3).namespace_() == "other");
  CHECK(response.resources(3).condition().empty());
}

}  // namespace
}  // namespace informerd::daemon
