// daemon/admin/status_endpoints.*'s /metrics and /readyz over a running SharedInformerFactory,
// in-process (test/common/in_process_factory.h): the status sources are built as daemon/app.cc
// builds them, the factory and its informers are driven through the scripted client and fake
// timers, and every series is read from the rendered text of a GET /metrics, so the whole path
// (informer status and cache stats → CollectMetrics → RenderPrometheus → the response) is checked
// with values the test caused. The same collection over the fake apiserver, one informer at a
// time, is status_endpoints_test.cc; the exposition of hand-built values is metrics_test.cc.

// Timer durations print as "1200 milliseconds" in failures.
#define CATCH_CONFIG_ENABLE_CHRONO_STRINGMAKER
#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "core/reflector.h"
#include "daemon/admin/http_server.h"
#include "daemon/admin/metrics.h"
#include "daemon/admin/status_endpoints.h"
#include "daemon/informers/shared_informer_factory.h"
#include "test/common/in_process_factory.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::ConfigEntry;
using test::HttpError;
using test::HttpOk;
using test::PodJson;
using test::PodListJson;
using test::WatchEventLine;

const std::string kPods = R"(group="",version="v1",resource="pods",watch_namespace="")";
const std::string kWidgets =
    R"(group="example.com",version="v1",resource="widgets",watch_namespace="")";

// `name{labels}`, or `name{labels,extra}`: a series as RenderPrometheus writes it.
std::string Series(const std::string& name, const std::string& labels,
                   const std::string& extra = "") {
  return name + "{" + labels + (extra.empty() ? "" : "," + extra) + "}";
}

// The value of `series` (a metric name with its labels, as rendered) in the exposition `text`;
// "<missing>" when no line has it, "<repeated>" when more than one does.
std::string Value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  const std::string prefix = series + " ";
  std::string found = "<missing>";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    found = found == "<missing>" ? line.substr(prefix.size()) : "<repeated>";
  }
  return found;
}

std::string Relists(const std::string& text, const std::string& labels, core::RelistReason reason) {
  return Value(text, Series("informerd_relists_total", labels,
                            std::string("reason=\"") + core::RelistReasonName(reason) + "\""));
}

// The factory in-process, and its /metrics and /readyz as the daemon serves them.
class Scraped : public test::InProcessFactory {
 public:
  Scraped(std::vector<ResourceConfig> entries, SharedInformerFactoryOptions options)
      : InProcessFactory(std::move(entries), std::move(options)) {
    // daemon/app.cc's sources, without its override while shutting down.
    sources_.readiness = [this] { return CheckReadiness(*factory_); };
    sources_.metrics = [this] {
      return RenderPrometheus(CollectMetrics(*factory_, sources_.readiness(), &grpc_requests_));
    };
  }

  // The body of GET /metrics.
  std::string Metrics() const {
    const HttpResponse response = ServeStatusRequest(sources_, HttpRequest{"GET", "/metrics"});
    REQUIRE(response.status == 200);
    CHECK(response.content_type == kPrometheusContentType);
    return response.body;
  }
  // As a client on this host asks: from loopback, so the reasons are listed.
  HttpResponse Readyz() const {
    return ServeStatusRequest(sources_, HttpRequest{"GET", "/readyz", /*from_loopback=*/true});
  }

 private:
  GrpcRequestCounters grpc_requests_;
  StatusSources sources_;
};

TEST_CASE(
    "in-process /metrics: ready and resources_pending follow the configured entries, and "
    "each running informer has its series") {
  Scraped f({ConfigEntry("pods"), ConfigEntry("widgets")}, SharedInformerFactoryOptions());
  f.factory_->Start();
  f.Run();
  f.ServeDiscovery(/*with_widgets=*/false);
  // pods runs (its LIST is waiting); the widgets CRD is not installed yet.
  REQUIRE(f.client_.WaitingGets() ==
          std::vector<std::string>{"/api/v1/pods?limit=500&resourceVersion=0"});
  std::string text = f.Metrics();
  CHECK(Value(text, "informerd_ready") == "0");
  CHECK(Value(text, "informerd_resources_pending") == "1");
  CHECK(Value(text, Series("informerd_resource_synced", kPods)) == "0");
  CHECK(Value(text, Series("informerd_resource_objects", kPods)) == "0");
  CHECK(Value(text, Series("informerd_resource_version", kPods)) == "<missing>");
  CHECK(text.find("resource=\"widgets\"") == std::string::npos);
  CHECK(f.Readyz().status == 503);

  // pods syncs; widgets is still pending, so the daemon is not ready.
  f.client_.ScriptGet("/api/v1/pods",
                      HttpOk(PodListJson("10", "", {PodJson("a", "8"), PodJson("b", "9")})));
  f.Run();
  text = f.Metrics();
  CHECK(Value(text, "informerd_ready") == "0");
  CHECK(Value(text, "informerd_resources_pending") == "1");
  CHECK(Value(text, Series("informerd_resource_synced", kPods)) == "1");
  CHECK(Value(text, Series("informerd_resource_objects", kPods)) == "2");
  CHECK(Value(text, Series("informerd_resource_object_bytes", kPods)) ==
        std::to_string(f.factory_->Entries().at(0).cache->Stats().object_bytes));
  CHECK(Value(text, Series("informerd_resource_version", kPods)) == "10");
  CHECK(Relists(text, kPods, core::RelistReason::kInitial) == "1");
  CHECK(Value(text, Series("informerd_upstream_list_objects_total", kPods)) == "2");
  CHECK(Value(text, Series("informerd_events_applied_total", kPods)) == "2");
  const HttpResponse not_ready = f.Readyz();
  CHECK(not_ready.status == 503);
  CHECK(not_ready.body.find("widgets: ") != std::string::npos);

  // The CRD is installed; the next lookup (30 s later) starts widgets: nothing pending, but the
  // daemon is ready only once widgets has synced too.
  f.Advance(seconds(30));
  f.ServeDiscovery(/*with_widgets=*/true);
  text = f.Metrics();
  CHECK(Value(text, "informerd_resources_pending") == "0");
  CHECK(Value(text, "informerd_ready") == "0");
  CHECK(Value(text, Series("informerd_resource_synced", kWidgets)) == "0");
  f.client_.ScriptGet("/apis/example.com/v1/widgets", HttpOk(test::WidgetListJson("11")));
  f.Run();
  text = f.Metrics();
  CHECK(Value(text, "informerd_ready") == "1");
  CHECK(Value(text, "informerd_resources_pending") == "0");
  CHECK(Value(text, Series("informerd_resource_synced", kWidgets)) == "1");
  CHECK(Value(text, Series("informerd_resource_version", kWidgets)) == "11");
  CHECK(Value(text, Series("informerd_resource_synced", kPods)) == "1");
  CHECK(f.Readyz().status == 200);
}

TEST_CASE(
    "in-process /metrics: relists by reason, events applied and the replay window, as a "
    "running informer counts them") {
  SharedInformerFactoryOptions options;
  options.reflector.use_watch_list = true;
  Scraped f({ConfigEntry("pods")}, options);
  f.factory_->Start();
  f.Run();
  f.ServeDiscovery(/*with_widgets=*/false);
  REQUIRE(f.client_.open_watches() == 1);
  REQUIRE(f.client_.LastWatch().path_and_query().find("sendInitialEvents=true") !=
          std::string::npos);
  const auto relists = [&f](core::RelistReason reason) {
    return Relists(f.Metrics(), kPods, reason);
  };
  CHECK(relists(core::RelistReason::kInitial) == "1");
  CHECK(relists(core::RelistReason::kWatchListFallback) == "0");

  // The apiserver rejects WatchList: a plain LIST at once.
  f.client_.LastWatch().End(HttpError(422, "Invalid", "sendInitialEvents: Forbidden"));
  f.Run();
  REQUIRE(f.client_.WaitingGets() ==
          std::vector<std::string>{"/api/v1/pods?limit=500&resourceVersion=0"});
  CHECK(relists(core::RelistReason::kWatchListFallback) == "1");
  CHECK(Value(f.Metrics(), Series("informerd_upstream_errors_total", kPods, "code=\"422\"")) ==
        "1");

  // That LIST fails: another after one backoff step.
  f.client_.ScriptGet("/api/v1/pods", HttpError(500, "InternalError", "etcd is unhappy"));
  f.Run();
  REQUIRE(f.Armed() == std::vector<milliseconds>{milliseconds(1200)});
  CHECK(relists(core::RelistReason::kListError) == "0");
  f.Advance(milliseconds(1200));
  REQUIRE(f.client_.WaitingGets().size() == 1);
  CHECK(relists(core::RelistReason::kListError) == "1");

  // It succeeds: two objects applied, an empty replay window; then three live changes.
  f.client_.ScriptGet("/api/v1/pods",
                      HttpOk(PodListJson("10", "", {PodJson("a", "8"), PodJson("b", "9")})));
  f.Run();
  REQUIRE(f.client_.open_watches() == 1);
  std::string text = f.Metrics();
  CHECK(Value(text, "informerd_ready") == "1");
  CHECK(Value(text, Series("informerd_events_applied_total", kPods)) == "2");
  CHECK(Value(text, Series("informerd_replay_window_events", kPods)) == "0");
  f.client_.LastWatch().Push(WatchEventLine("ADDED", PodJson("c", "11")) +
                             WatchEventLine("MODIFIED", PodJson("a", "12")) +
                             WatchEventLine("DELETED", PodJson("b", "13")));
  f.Run();
  text = f.Metrics();
  CHECK(Value(text, Series("informerd_events_applied_total", kPods)) == "5");
  CHECK(Value(text, Series("informerd_replay_window_events", kPods)) == "3");
  CHECK(Value(text, Series("informerd_resource_objects", kPods)) == "2");
  CHECK(Value(text, Series("informerd_upstream_events_total", kPods, "type=\"ADDED\"")) == "1");
  CHECK(Value(text, Series("informerd_upstream_events_total", kPods, "type=\"MODIFIED\"")) == "1");
  CHECK(Value(text, Series("informerd_upstream_events_total", kPods, "type=\"DELETED\"")) == "1");

  // The watch answers 404: a relist (not a rewatch) after a backoff, counted as watch-error.
  f.client_.LastWatch().End(HttpError(404, "NotFound", "the server could not find it"));
  f.Run();
  REQUIRE(f.Armed().size() == 1);
  CHECK(relists(core::RelistReason::kWatchError) == "0");
  f.Advance(f.Armed()[0]);
  REQUIRE(f.client_.WaitingGets() == std::vector<std::string>{"/api/v1/pods?resourceVersion=13"});
  CHECK(relists(core::RelistReason::kWatchError) == "1");

  // The LIST answers 404 too: gone (discovery is asked and still lists pods, so the informer
  // stays), unsynced, and looked at again after gone_retry_interval: a rediscovery relist.
  f.client_.ScriptGet("/api/v1/pods", HttpError(404, "NotFound", "the server could not find it"));
  f.Run();
  f.ServeDiscovery(/*with_widgets=*/false);
  REQUIRE(f.factory_->Entries().size() == 1);
  REQUIRE(f.Armed() == std::vector<milliseconds>{seconds(30)});
  text = f.Metrics();
  CHECK(Value(text, "informerd_ready") == "0");
  CHECK(Value(text, Series("informerd_resource_synced", kPods)) == "0");
  CHECK(Value(text, Series("informerd_upstream_errors_total", kPods, "code=\"404\"")) == "2");
  CHECK(Relists(text, kPods, core::RelistReason::kRediscovery) == "0");
  f.Advance(seconds(30));
  REQUIRE(f.client_.WaitingGets() == std::vector<std::string>{"/api/v1/pods?resourceVersion=13"});
  f.client_.ScriptGet(
      "/api/v1/pods",
      HttpOk(PodListJson("20", "", {PodJson("a", "12"), PodJson("c", "11"), PodJson("d", "20")})));
  f.Run();

  // Every reason, exactly.
  text = f.Metrics();
  CHECK(Value(text, "informerd_ready") == "1");
  CHECK(Value(text, "informerd_resources_pending") == "0");
  CHECK(Relists(text, kPods, core::RelistReason::kInitial) == "1");
  CHECK(Relists(text, kPods, core::RelistReason::kExpired) == "0");
  CHECK(Relists(text, kPods, core::RelistReason::kWatchError) == "1");
  CHECK(Relists(text, kPods, core::RelistReason::kListError) == "1");
  CHECK(Relists(text, kPods, core::RelistReason::kWatchListFallback) == "1");
  CHECK(Relists(text, kPods, core::RelistReason::kRediscovery) == "1");
  CHECK(Value(text, Series("informerd_events_applied_total", kPods)) == "6");
  CHECK(Value(text, Series("informerd_resource_objects", kPods)) == "3");
}

TEST_CASE("in-process /metrics: objects over maxObjectBytes are counted, the resource ready") {
  SharedInformerFactoryOptions options;
  options.max_event_bytes = PodJson("a", "8").size();
  Scraped f({ConfigEntry("pods")}, options);
  f.factory_->Start();
  f.Run();
  f.ServeDiscovery(/*with_widgets=*/false);
  f.client_.ScriptGet("/api/v1/pods",
                      HttpOk(PodListJson("10", "", {PodJson("a", "8"), PodJson("big-1", "9")})));
  f.Run();
  std::string text = f.Metrics();
  CHECK(Value(text, "informerd_ready") == "1");
  CHECK(Value(text, Series("informerd_objects_too_large_total", kPods)) == "1");
  CHECK(Value(text, Series("informerd_resource_objects", kPods)) == "1");
  f.client_.LastWatch().Push(WatchEventLine("MODIFIED", PodJson("big-2", "11")));
  f.Run();
  text = f.Metrics();
  CHECK(Value(text, Series("informerd_objects_too_large_total", kPods)) == "2");
  CHECK(Value(text, "informerd_ready") == "1");
}

}  // namespace
}  // namespace informerd::daemon
