// Specification of daemon/admin/status_endpoints.*'s metrics collection: one informer over the
// fault-injecting fake apiserver, its counters read as /metrics would, after faults.
#include "daemon/admin/status_endpoints.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/cache.h"
#include "core/clock.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/informers/informer.h"
#include "daemon/admin/metrics.h"
#include "daemon/kube/auth/rest_config.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/api_test_support.h"
#include "test/fakeapi/fake_api_server.h"
#include "test/common/wait_until.h"

namespace informerd::daemon {
namespace {

using fakeapi::Fault;
using fakeapi::Verb;
using std::chrono::seconds;
using test::WaitUntil;

// The fake apiserver and one pods informer (all namespaces) over a cache, as SharedInformerFactory
// would run it.
class Harness {
 public:
  Harness() {
    REQUIRE(server_.Start().ok());
    RestConfig config;
    auto url = ParseServerUrl(server_.base_url());
    REQUIRE(url.ok());
    config.server = *url;
    config.credentials = std::make_shared<StaticCredentialSource>(Credentials{});
    config.identity = "test";
    auto client = ApiServerClient::Create(io_.io(), std::move(config));
    REQUIRE(client.ok());
    client_ = std::move(*client);
    running_.config.resource = "pods";
    running_.resource.version = "v1";
    running_.resource.resource = "pods";
    running_.resource.kind = "Pod";
    running_.resource.namespaced = true;
    running_.cache = core::Cache::Create({}, clock_);
    InformerOptions options;
    options.resource = running_.resource;
    running_.informer = Informer::Create(
        *client_, std::move(options), running_.cache, clock_,
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }
  ~Harness() {
    running_.informer->Stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    running_.informer.reset();
    client_.reset();
  }

  ResourceMetrics Metrics() const {
    std::optional<ResourceMetrics> metrics = CollectResourceMetrics(running_);
    REQUIRE(metrics.has_value());
    return *metrics;
  }

  // The series as /metrics shows them.
  std::string Rendered() const {
    MetricsSnapshot snapshot;
    snapshot.resources.push_back(Metrics());
    return RenderPrometheus(snapshot);
  }

  bool WaitForSynced(std::size_t objects) {
    return WaitUntil(
        [&] {
          const core::CacheStats stats = running_.cache->Stats();
          return stats.synced && stats.object_count == objects;
        },
        seconds(20));
  }

  fakeapi::FakeApiServer server_;
  test::IoThread io_;
  core::SteadyClock clock_;
  std::unique_ptr<ApiServerClient> client_;
  RunningInformer running_;
};

const char kPods[] = "group=\"\",version=\"v1\",resource=\"pods\",watch_namespace=\"\"";

TEST_CASE("after a sync: objects, bytes, resource version, one initial list, LIST objects") {
  Harness h;
  for (const char* name : {"a", "b", "c"}) REQUIRE(h.server_.Upsert("pods", "ns", name).ok());
  h.running_.informer->Start();
  REQUIRE(h.WaitForSynced(3));

  const ResourceMetrics metrics = h.Metrics();
  CHECK(metrics.resource == "pods");
  CHECK(metrics.synced);
  CHECK(metrics.objects == 3);
  std::size_t json_bytes = 0;
  auto list = h.running_.cache->List("", core::LabelSelector(), core::FieldSelector());
  REQUIRE(list.ok());
  for (const auto& object : list->items) json_bytes += object->json.size();
  CHECK(metrics.object_bytes == json_bytes);
  REQUIRE(metrics.resource_version.has_value());
  CHECK(std::to_string(*metrics.resource_version) == h.running_.cache->Stats().resource_version);
  CHECK(metrics.relists[static_cast<std::size_t>(core::RelistReason::kInitial)] == 1);
  CHECK(metrics.list_objects_received == 3);
  CHECK(metrics.upstream_errors.empty());

  const std::string text = h.Rendered();
  CHECK(text.find(std::string("informerd_resource_objects{") + kPods + "} 3\n") !=
        std::string::npos);
  CHECK(text.find(std::string("informerd_relists_total{") + kPods + ",reason=\"initial\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("watch events are counted by type as received, and as delivered to subscribers") {
  Harness h;
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  h.running_.informer->Start();
  REQUIRE(h.WaitForSynced(1));
  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  auto subscription = h.running_.cache->Subscribe(core::SubscribeOptions());
  REQUIRE(subscription.ok());

  REQUIRE(h.server_.Upsert("pods", "ns", "b").ok());
  REQUIRE(h.server_.Touch("pods", "ns", "a").ok());
  REQUIRE(h.server_.Delete("pods", "ns", "b").ok());
  REQUIRE(WaitUntil([&] { return h.Metrics().events_delivered == 3; }, seconds(20)));
  const ResourceMetrics metrics = h.Metrics();
  CHECK(metrics.events_received[static_cast<std::size_t>(core::WatchEventType::kAdded)] == 1);
  CHECK(metrics.events_received[static_cast<std::size_t>(core::WatchEventType::kModified)] == 1);
  CHECK(metrics.events_received[static_cast<std::size_t>(core::WatchEventType::kDeleted)] == 1);
  CHECK(metrics.subscribers == 1);
  CHECK(metrics.queue_high_water >= 1);
  CHECK(metrics.objects == 1);
}

TEST_CASE("the cache's replay window resets are collected by reason") {
  Harness h;
  const auto reason = static_cast<std::size_t>(core::WindowResetReason::kNonNumericListVersion);
  CHECK(h.Metrics().window_resets[reason] == 0);
  h.running_.cache->EndList("not-a-number");  // a list whose version the window cannot use
  const ResourceMetrics metrics = h.Metrics();
  CHECK(metrics.window_resets[reason] == 1);
  uint64_t total = 0;
  for (const uint64_t count : metrics.window_resets) total += count;
  CHECK(total == 1);
}

TEST_CASE("a 410 ERROR event relists: relists{reason=expired}, an ERROR event, a 410 error") {
  Harness h;
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  h.running_.informer->Start();
  REQUIRE(h.WaitForSynced(1));
  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  h.server_.InjectFault("pods", Verb::kWatch, Fault::ExpiredEvent());
  h.server_.EndWatches("pods");
  const auto expired = static_cast<std::size_t>(core::RelistReason::kExpired);
  REQUIRE(WaitUntil([&] { return h.Metrics().relists[expired] == 1; }, seconds(20)));
  REQUIRE(h.WaitForSynced(1));

  const ResourceMetrics metrics = h.Metrics();
  CHECK(metrics.events_received[static_cast<std::size_t>(core::WatchEventType::kError)] == 1);
  CHECK(metrics.upstream_errors.at(410) == 1);
  const std::string text = h.Rendered();
  CHECK(text.find(std::string("informerd_relists_total{") + kPods + ",reason=\"expired\"} 1\n") !=
        std::string::npos);
  CHECK(text.find(std::string("informerd_upstream_errors_total{") + kPods + ",code=\"410\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("a 503 on the LIST and a cut watch count as upstream errors by code") {
  Harness h;
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  h.server_.InjectFault("pods", Verb::kList, Fault::ServiceUnavailable(1));
  h.running_.informer->Start();
  REQUIRE(h.WaitForSynced(1));
  CHECK(h.Metrics().upstream_errors.at(503) == 1);

  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  h.server_.InjectFault("pods", Verb::kWatch, Fault::CloseMidJson(0));
  h.server_.EndWatches("pods");
  REQUIRE(WaitUntil([&] { return h.Metrics().upstream_errors.count(0) == 1; }, seconds(20)));
  REQUIRE(WaitUntil([&] { return h.Metrics().watch_restarts >= 1; }, seconds(20)));
  CHECK(h.Rendered().find(std::string("informerd_upstream_errors_total{") + kPods +
                          ",code=\"transport\"} 1\n") != std::string::npos);
}

TEST_CASE("a stopped informer has no series") {
  Harness h;
  h.running_.informer->Start();
  REQUIRE(h.WaitForSynced(0));
  CHECK(CollectResourceMetrics(h.running_).has_value());
  h.running_.informer->Stop();
  CHECK(WaitUntil([&] { return !CollectResourceMetrics(h.running_).has_value(); }, seconds(10)));
}

}  // namespace
}  // namespace informerd::daemon
