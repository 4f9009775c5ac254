// SharedInformerFactory against a real kube-apiserver 1.20 (test/cluster): a CRD that informerd
// watches is deleted with kubectl (its subscribers end with UNAVAILABLE, the registry reports
// it gone) and created again (the informer relists and serves the new objects).
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/cache.h"
#include "core/clock.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/discovery.h"
#include "daemon/kube/auth/file_contents.h"
#include "daemon/informers/shared_informer_factory.h"
#include "daemon/informers/resource_registry.h"
#include "spdlog/sinks/null_sink.h"
#include "test/cluster/cluster_fixture.h"
#include "test/common/api_test_support.h"
#include "test/common/wait_until.h"

namespace informerd::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kCrd[] = R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
)";

std::string Widget(const std::string& name) {
  return "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: " + name +
         "\n  namespace: default\n";
}

void Kubectl(const TestCluster& cluster, const std::vector<std::string>& args) {
  absl::StatusOr<SubprocessResult> result = cluster.Kubectl(Identity::kAdminToken, args);
  REQUIRE(result.ok());
  INFO(result->err);
  REQUIRE(result->exit_code == 0);
}

void ApplyCrd(const TestCluster& cluster) {
  absl::Status applied = cluster.ApplyYaml(kCrd);
  INFO(applied.ToString());
  REQUIRE(applied.ok());
  Kubectl(cluster,
          {"wait", "--for=condition=established", "--timeout=60s", "crd/widgets.example.com"});
}

// Apply retried: right after the CRD is established, the REST mapping may lag a moment.
void ApplyWidget(const TestCluster& cluster, const std::string& name) {
  absl::Status applied;
  for (int attempt = 0; attempt < 40; ++attempt) {
    applied = cluster.ApplyYaml(Widget(name));
    if (applied.ok()) return;
    std::this_thread::sleep_for(milliseconds(250));
  }
  INFO(applied.ToString());
  REQUIRE(applied.ok());
}

std::vector<std::string> CachedNames(const core::Cache& cache) {
  auto list = cache.List("", core::LabelSelector(), core::FieldSelector());
  REQUIRE(list.ok());
  std::vector<std::string> names;
  for (const auto& item : list->items) names.push_back(item->name.str());
  return names;
}

TEST_CASE("a watched CRD deleted with kubectl stops cleanly and serves again once re-created",
          "[cluster]") {
  absl::StatusOr<std::unique_ptr<TestCluster>> started = TestCluster::Start();
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  TestCluster& cluster = **started;
  ApplyCrd(cluster);
  ApplyWidget(cluster, "w1");

  IoThread io;
  absl::StatusOr<std::string> ca = daemon::ReadFileContents(cluster.ca_file());
  REQUIRE(ca.ok());
  daemon::Credentials credentials;
  credentials.bearer_token = cluster.token(Identity::kAdminToken);
  auto client = daemon::ApiServerClient::Create(
      io.io(), MakeRestConfig(cluster.url(), *ca,
                              std::make_shared<daemon::StaticCredentialSource>(credentials),
                              "user \"admin\""));
  REQUIRE(client.ok());
  core::SteadyClock clock;
  daemon::DiscoveryOptions discovery_options;
  discovery_options.min_refresh_interval = milliseconds(200);
  daemon::Discovery discovery(**client, clock, discovery_options);
  daemon::ResourceRegistry registry;
  daemon::SharedInformerFactoryOptions options;
  options.registry = &registry;
  options.retry_interval = milliseconds(500);
  options.reflector.gone_retry_interval = seconds(1);
  daemon::ResourceConfig entry;
  entry.resource = "widgets";
  auto informers = daemon::SharedInformerFactory::Create(
      **client, discovery, clock, {entry}, options, nullptr,
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  informers->Start();
  REQUIRE(WaitUntil([&] { return informers->AllSynced(); }, seconds(60)));
  REQUIRE(registry.Entries().size() == 1);
  std::shared_ptr<const daemon::ServedResource> served = registry.Entries()[0];
  CHECK(CachedNames(*served->cache) == std::vector<std::string>{"w1"});
  auto subscription = served->cache->Subscribe(core::SubscribeOptions());
  REQUIRE(subscription.ok());

  // Deleted: the subscriber is ended with UNAVAILABLE (after the DELETED events of the objects
  // the apiserver removed first, if the watch saw them), and the entry reports the resource gone.
  Kubectl(cluster, {"delete", "crd", "widgets.example.com", "--timeout=60s"});
  std::optional<absl::Status> final_status;
  REQUIRE(WaitUntil(
      [&] {
        while ((*subscription)->TryPop()) {
        }
        final_status = (*subscription)->FinalStatus();
        return final_status.has_value();
      },
      seconds(60)));
  CHECK(final_status->code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(final_status->message()).find("stopped being served") != std::string::npos);
  REQUIRE(registry.Entries().size() == 1);
  served = registry.Entries()[0];
  CHECK(served->status().resource_gone);
  CHECK(served->cache->Stats().object_count == 0);
  CHECK_FALSE(informers->AllSynced());

  // Created again, with a new object: the informer relists and serves it.
  ApplyCrd(cluster);
  ApplyWidget(cluster, "w2");
  REQUIRE(WaitUntil(
      [&] {
        if (!informers->AllSynced()) return false;
        served = registry.Entries()[0];
        return CachedNames(*served->cache) == std::vector<std::string>{"w2"};
      },
      seconds(60)));
  CHECK_FALSE(served->status().resource_gone);

  informers->Stop();
  std::this_thread::sleep_for(milliseconds(100));
}

}  // namespace
}  // namespace informerd::test
