// Freshness, as the daemon wires it: config `maxStaleness` → InformerFactoryOptions (daemon/app.h)
// → every informer's reflector → readiness (SharedInformerFactory::AllReady, which the daemon
// polls for gRPC health, and /readyz through CheckReadiness), /metrics'
// informerd_resource_staleness_seconds and ListResources' staleness_seconds and condition.
// Upstream is scripted (test/common/in_process_factory.h: discovery, LIST and WATCH answered by
// the test, fake clock and timers); the service is the real one over a real gRPC server
// (test/common/informer_service_test_support.h); /readyz and /metrics are served as the metrics
// port serves them (daemon/admin/status_endpoints.h).
#define CATCH_CONFIG_ENABLE_CHRONO_STRINGMAKER
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/admin/http_server.h"
#include "daemon/admin/metrics.h"
#include "daemon/admin/status_endpoints.h"
#include "daemon/app.h"
#include "daemon/config.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/in_process_factory.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using test::HttpError;
using test::HttpOk;
using test::InProcessFactory;
using test::PodJson;
using test::PodListJson;
using test::WatchEventLine;
using testing::Harness;
using testing::HarnessOptions;

constexpr char kPodsList[] = "/api/v1/pods?limit=500&resourceVersion=0";
constexpr char kStalenessSeries[] =
    R"(informerd_resource_staleness_seconds{group="",version="v1",resource="pods",watch_namespace=""})";
constexpr char kForbidden[] =
    "pods is forbidden: User \"system:serviceaccount:infra:informerd\" cannot watch resource "
    "\"pods\" in API group \"\" at the cluster scope";

Config Parse(const std::string& text) {
  absl::StatusOr<Config> config = ParseConfig(text, "informerd.yaml");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  return *std::move(config);
}

// The value of `series` in the exposition `text`; "<missing>" when no line has it.
std::string Value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  const std::string prefix = series + " ";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "<missing>";
}

// The factory built from `config` as the daemon builds it, the service serving its registry,
// and the metrics port's /readyz and /metrics over it (daemon/app.cc's sources).
struct Daemon {
  explicit Daemon(const Config& config)
      : upstream(config.resources, InformerFactoryOptions(config)), harness([this] {
          HarnessOptions options;
          options.registry = &upstream.registry_;
          return options;
        }()) {
    sources.readiness = [this] { return CheckReadiness(*upstream.factory_); };
    sources.metrics = [this] {
      return RenderPrometheus(CollectMetrics(*upstream.factory_, sources.readiness(), nullptr));
    };
  }

  // Starts the factory, answers discovery and the pods LIST (two pods at resourceVersion 10),
  // and has the apiserver accept the watch that follows.
  void SyncAndWatch() {
    upstream.factory_->Start();
    upstream.Run();
    upstream.ServeDiscovery(false);
    upstream.client_.ScriptGet(
        kPodsList, HttpOk(PodListJson("10", "", {PodJson("a", "8"), PodJson("b", "9")})));
    upstream.Run();
    REQUIRE(upstream.client_.open_watches() == 1);
    upstream.client_.LastWatch().Open();
    upstream.Run();
  }

  // Moves the clock by `by`, answering 403 to every watch the informer opens meanwhile (its
  // backoff timer fires, it watches again, the apiserver refuses).
  void RefuseWatchesFor(milliseconds by) {
    while (by > milliseconds::zero()) {
      const std::vector<test::FakeTimers::Armed> armed = upstream.timers_.armed();
      REQUIRE(armed.size() == 1);  // the informer's backoff
      const auto left =
          std::chrono::duration_cast<milliseconds>(armed[0].deadline - upstream.clock_.Now());
      const milliseconds step = std::min(left, by);
      upstream.Advance(step);
      by -= step;
      if (step == left) {
        REQUIRE(upstream.client_.open_watches() == 1);
        upstream.client_.LastWatch().End(HttpError(403, "Forbidden", kForbidden));
        upstream.Run();
      }
    }
  }
  // Lets the pending backoff run out; the watch that follows is accepted.
  void AcceptNextWatch() {
    const std::vector<test::FakeTimers::Armed> armed = upstream.timers_.armed();
    REQUIRE(armed.size() == 1);
    upstream.Advance(
        std::chrono::duration_cast<milliseconds>(armed[0].deadline - upstream.clock_.Now()));
    REQUIRE(upstream.client_.open_watches() == 1);
    upstream.client_.LastWatch().Open();
    upstream.Run();
  }

  HttpResponse Readyz() const {
    return ServeStatusRequest(sources, HttpRequest{"GET", "/readyz", /*from_loopback=*/true});
  }
  std::string Metrics() const {
    return ServeStatusRequest(sources, HttpRequest{"GET", "/metrics"}).body;
  }
  v1::ResourceInfo PodsInfo() {
    grpc::ClientContext context;
    v1::ListResourcesResponse resources;
    const grpc::Status status =
        harness.stub->ListResources(&context, v1::ListResourcesRequest(), &resources);
    REQUIRE(status.ok());
    REQUIRE(resources.resources_size() == 1);
    return resources.resources(0);
  }
  grpc::Status ListPods(v1::ListResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::ListRequest request;
    request.set_resource("pods");
    return harness.stub->List(&context, request, response);
  }

  InProcessFactory upstream;
  Harness harness;
  StatusSources sources;
};

TEST_CASE(
    "freshness: a watch refused with 403 over and over makes the data stale; past maxStaleness "
    "the daemon is not ready, naming the 403; an accepted watch makes it fresh and ready again") {
  Daemon d(Parse("maxStaleness: 5m\nresources:\n  - resource: pods\n"));
  d.SyncAndWatch();
  CHECK(d.upstream.factory_->AllReady());
  CHECK(d.Readyz().status == 200);
  CHECK(Value(d.Metrics(), kStalenessSeries) == "0");
  CHECK(d.PodsInfo().staleness_seconds() == 0);

  // The watch ends at its timeout after 7 quiet minutes (confirmed until then); the RBAC rules
  // changed meanwhile and every rewatch is refused.
  d.upstream.Advance(minutes(7));
  CHECK(d.upstream.factory_->AllReady());
  d.upstream.client_.LastWatch().End(HttpOk(""));
  d.upstream.Run();
  REQUIRE(d.upstream.client_.open_watches() == 1);
  d.upstream.client_.LastWatch().End(HttpError(403, "Forbidden", kForbidden));
  d.upstream.Run();

  // Within the bound: stale data, still ready (a 403 on the way is no reason yet).
  d.RefuseWatchesFor(minutes(5));
  CHECK(Value(d.Metrics(), kStalenessSeries) == "300");
  CHECK(d.PodsInfo().staleness_seconds() == 300);
  CHECK(d.upstream.factory_->AllReady());
  CHECK(d.Readyz().status == 200);

  // Past it: not ready, with the 403 in the reason, everywhere.
  d.RefuseWatchesFor(seconds(1));
  const std::string stale =
      std::string(
          "no update confirmed by the apiserver for 301 s, longer than maxStaleness "
          "(300 s): watch: HTTP 403 Forbidden: ") +
      kForbidden;
  CHECK_FALSE(d.upstream.factory_->AllReady());  // gRPC health: NOT_SERVING
  const HttpResponse not_ready = d.Readyz();
  CHECK(not_ready.status == 503);
  CHECK(not_ready.body == "not ready:\n  pods (all namespaces): " + stale + "\n");
  std::string metrics = d.Metrics();
  CHECK(Value(metrics, kStalenessSeries) == "301");
  CHECK(Value(metrics, "informerd_ready") == "0");
  v1::ResourceInfo info = d.PodsInfo();
  CHECK(info.staleness_seconds() == 301);
  CHECK(info.condition() == stale);
  CHECK(info.synced());
  // List and Get still answer from the cache.
  v1::ListResponse listed;
  const grpc::Status list_status = d.ListPods(&listed);
  CHECK(list_status.error_message() == "");
  CHECK(listed.items_size() == 2);

  // An hour later, the same.
  d.RefuseWatchesFor(minutes(60));
  CHECK(Value(d.Metrics(), kStalenessSeries) == "3901");
  CHECK_FALSE(d.upstream.factory_->AllReady());

  // RBAC fixed: the next watch is accepted; fresh and ready at once.
  d.AcceptNextWatch();
  CHECK(d.upstream.factory_->AllReady());
  CHECK(d.Readyz().status == 200);
  metrics = d.Metrics();
  CHECK(Value(metrics, kStalenessSeries) == "0");
  CHECK(Value(metrics, "informerd_ready") == "1");
  info = d.PodsInfo();
  CHECK(info.staleness_seconds() == 0);
  CHECK(info.condition() == "");
}

TEST_CASE("freshness: maxStaleness 0 never makes the daemon unready for staleness") {
  Daemon d(Parse("maxStaleness: 0\nresources:\n  - resource: pods\n"));
  d.SyncAndWatch();
  d.upstream.client_.LastWatch().End(HttpError(403, "Forbidden", kForbidden));
  d.upstream.Run();
  d.RefuseWatchesFor(minutes(120));
  CHECK(d.upstream.factory_->AllReady());
  CHECK(d.Readyz().status == 200);
  // The staleness is still reported, and the condition still names the failure.
  CHECK(Value(d.Metrics(), kStalenessSeries) == "7200");
  const v1::ResourceInfo info = d.PodsInfo();
  CHECK(info.staleness_seconds() == 7200);
  CHECK(info.condition() == std::string("watch: HTTP 403 Forbidden: ") + kForbidden);
}

TEST_CASE("freshness: an open watch with nothing to say keeps the data fresh, by default 5m") {
  Daemon d(Parse("resources:\n  - resource: pods\n"));
  d.SyncAndWatch();
  d.upstream.Advance(minutes(9));  // longer than maxStaleness, and no event or bookmark at all
  CHECK(d.upstream.factory_->AllReady());
  CHECK(d.Readyz().status == 200);
  CHECK(Value(d.Metrics(), kStalenessSeries) == "0");
  CHECK(d.PodsInfo().staleness_seconds() == 0);

  // A watch whose headers have not come is not open: the data dates from the previous one.
  d.upstream.client_.LastWatch().End(HttpOk(""));  // its timeout ran out: confirmed until now
  d.upstream.Run();
  REQUIRE(d.upstream.client_.open_watches() == 1);
  d.upstream.Advance(seconds(90));
  CHECK(Value(d.Metrics(), kStalenessSeries) == "90");
  // Bytes prove it open too (an event, or the headers' empty piece).
  d.upstream.client_.LastWatch().Push(WatchEventLine("MODIFIED", PodJson("a", "11")));
  d.upstream.Run();
  CHECK(Value(d.Metrics(), kStalenessSeries) == "0");
  d.upstream.Advance(minutes(6));
  CHECK(Value(d.Metrics(), kStalenessSeries) == "0");
  CHECK(d.upstream.factory_->AllReady());
}

TEST_CASE(
    "readiness: a relist in progress (410 Gone) keeps the daemon ready while List/Get wait; "
    "ListResources says the cache is not synced, and why") {
  Daemon d(Parse("resources:\n  - resource: pods\n"));
  d.SyncAndWatch();
  REQUIRE(d.upstream.factory_->AllReady());
  // etcd was compacted past the watch's version: the apiserver ends it with 410, and the
  // informer relists. Its first page already differs from the cache (a changed, at 15).
  d.upstream.client_.LastWatch().Push(WatchEventLine(
      "ERROR",
      R"json({"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old )json"
      R"json(resource version: 10 (12)","reason":"Expired","code":410})json"));
  d.upstream.Run();
  d.upstream.client_.ScriptGet("/api/v1/pods",
                               HttpOk(PodListJson("20", "page2", {PodJson("a", "15")})));
  for (int i = 0; i < 10 && d.upstream.client_.RequestLines(0).back().find("continue=page2") ==
                                std::string::npos;
       ++i) {
    const std::vector<test::FakeTimers::Armed> armed = d.upstream.timers_.armed();
    if (armed.empty()) {
      d.upstream.Run();
      continue;
    }
    d.upstream.Advance(
        std::chrono::duration_cast<milliseconds>(armed[0].deadline - d.upstream.clock_.Now()));
  }
  REQUIRE_THAT(d.upstream.client_.RequestLines(0).back(), Catch::Contains("continue=page2"));
  v1::ResourceInfo info = d.PodsInfo();
  CHECK_FALSE(info.synced());
  // The condition names why it relists.
  CHECK(info.condition() ==
        "watch: watch ERROR event 410 Expired: too old resource version: 10 (12)");
  // Ready all along: the relist is the cache bringing itself up to date, not a failure.
  CHECK(d.upstream.factory_->AllReady());
  CHECK(d.Readyz().status == 200);
  CHECK(Value(d.Metrics(), "informerd_ready") == "1");

  d.upstream.client_.ScriptGet("/api/v1/pods", HttpOk(PodListJson("20", "", {PodJson("b", "9")})));
  d.upstream.Run();
  info = d.PodsInfo();
  CHECK(info.synced());
  CHECK(info.resource_version() == "20");
  CHECK(d.upstream.factory_->AllReady());
}

TEST_CASE("freshness: before the first sync there is no staleness series, and no stale reason") {
  Daemon d(Parse("resources:\n  - resource: pods\n"));
  d.upstream.factory_->Start();
  d.upstream.Run();
  d.upstream.ServeDiscovery(false);
  d.upstream.Advance(minutes(10));  // the LIST is never answered
  CHECK(Value(d.Metrics(), kStalenessSeries) == "<missing>");
  const HttpResponse not_ready = d.Readyz();
  CHECK(not_ready.status == 503);
  CHECK(not_ready.body.find("maxStaleness") == std::string::npos);
  CHECK(d.PodsInfo().staleness_seconds() == 0);
}

}  // namespace
}  // namespace informerd::daemon
