// Specification of the Informer (daemon/informers/informer.*): the reflector's decisions carried
// out over HTTP against the fault-injecting fake apiserver, with the cache as the observable
// result.
#include "daemon/informers/informer.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "core/cache.h"
#include "core/clock.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/api_test_support.h"
#include "test/common/wait_until.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::daemon {
namespace {

using fakeapi::FakeApiServer;
using fakeapi::Fault;
using fakeapi::Verb;
using std::chrono::seconds;
using test::WaitUntil;

core::ResolvedResource Pods() {
  core::ResolvedResource pods;
  pods.version = "v1";
  pods.resource = "pods";
  pods.kind = "Pod";
  pods.namespaced = true;
  return pods;
}

// The initial list and no relist since, for any reason (expired, watch-error, list-error, ...).
void CheckOnlyTheInitialList(const core::ReflectorStatus& status) {
  for (std::size_t i = 0; i < core::kRelistReasonCount; ++i) {
    const auto reason = static_cast<core::RelistReason>(i);
    INFO("relists, reason " << core::RelistReasonName(reason));
    CHECK(status.relists[i] == (reason == core::RelistReason::kInitial ? 1 : 0));
  }
}

// The fake apiserver, a client on its own I/O thread, and one pods informer over a cache.
class Harness {
 public:
  explicit Harness(InformerOptions options = {}, fakeapi::ServerOptions server_options = {}) {
    REQUIRE(server_.Start(server_options).ok());
    RestConfig config;
    auto url = ParseServerUrl(server_.base_url());
    REQUIRE(url.ok());
    config.server = *url;
    config.credentials = std::make_shared<StaticCredentialSource>(Credentials{});
    config.identity = "test";
    auto client = ApiServerClient::Create(io_.io(), std::move(config));
    REQUIRE(client.ok());
    client_ = std::move(*client);
    core::CacheOptions cache_options;
    cache_options.extra_field_paths = options.scan.extra_field_paths;
    cache_ = core::Cache::Create(cache_options, clock_);
    if (options.resource.resource.empty()) options.resource = Pods();
    informer_ = Informer::Create(
        *client_, std::move(options), cache_, clock_,
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }
  ~Harness() {
    informer_->Stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    informer_.reset();
    client_.reset();
  }

  // name → resourceVersion of what the cache holds in namespace "ns".
  std::map<std::string, std::string> Cached() const {
    auto list = cache_->List("", core::LabelSelector(), core::FieldSelector());
    REQUIRE(list.ok());
    std::map<std::string, std::string> out;
    for (const auto& object : list->items) out[object->name.str()] = object->resource_version.str();
    return out;
  }

  // The same, as the fake apiserver holds it.
  std::map<std::string, std::string> Upstream(const std::vector<std::string>& names) {
    std::map<std::string, std::string> out;
    for (const std::string& name : names) {
      auto json = server_.GetObjectJson("pods", "ns", name);
      if (!json.ok()) continue;
      const std::string marker = "\"resourceVersion\":\"";
      const auto at = json->find(marker) + marker.size();
      out[name] = json->substr(at, json->find('"', at) - at);
    }
    return out;
  }

  bool WaitForCache(const std::map<std::string, std::string>& expected) {
    return WaitUntil([&] { return cache_->Stats().synced && Cached() == expected; }, seconds(20));
  }

  // The pods LISTs (watch = false) or WATCHes the fake apiserver has received.
  std::size_t PodRequests(bool watch) const {
    std::size_t count = 0;
    for (const fakeapi::RequestRecord& request : server_.Requests()) {
      if (request.path == "/api/v1/pods" && request.IsWatch() == watch) ++count;
    }
    return count;
  }

  FakeApiServer server_;
  test::IoThread io_;
  core::SteadyClock clock_;
  std::unique_ptr<ApiServerClient> client_;
  std::shared_ptr<core::Cache> cache_;
  std::shared_ptr<Informer> informer_;
};

TEST_CASE("LIST and WATCH paths carry the scope, selectors and reflector parameters, encoded") {
  InformerOptions options;
  options.resource = Pods();
  options.namespace_name = "team-a";
  options.label_selector = "app in (web,api),!canary";
  options.field_selector = "spec.nodeName=n 1";
  core::ListParams list;
  list.resource_version = "0";
  list.limit = 500;
  list.continue_token = "a+b/c=";
  CHECK(Informer::ListPath(options, list) ==
        "/api/v1/namespaces/team-a/pods?labelSelector=app%20in%20%28web%2Capi%29%2C%21canary"
        "&fieldSelector=spec.nodeName%3Dn%201&limit=500&continue=a%2Bb%2Fc%3D&resourceVersion=0");
  core::WatchParams watch;
  watch.resource_version = "42";
  watch.timeout_seconds = 377;
  watch.allow_watch_bookmarks = true;
  options.label_selector.clear();
  options.field_selector.clear();
  CHECK(Informer::WatchPath(options, watch) ==
        "/api/v1/namespaces/team-a/pods?watch=1&allowWatchBookmarks=true&resourceVersion=42"
        "&timeoutSeconds=377");
  watch.send_initial_events = true;
  watch.resource_version_match = "NotOlderThan";
  watch.resource_version.clear();
  options.namespace_name.clear();
  CHECK(Informer::WatchPath(options, watch) ==
        "/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
        "&sendInitialEvents=true&timeoutSeconds=377");
}

TEST_CASE("the informer syncs the initial list, then follows creates, updates and deletes") {
  Harness h;
  for (const char* name : {"a", "b", "c"}) REQUIRE(h.server_.Upsert("pods", "ns", name).ok());
  h.informer_->Start();
  REQUIRE(h.WaitForCache(h.Upstream({"a", "b", "c"})));
  // The status is published after the step that filled the cache: it may lag by a moment.
  CHECK(WaitUntil([&] { return h.informer_->status().synced; }, seconds(20)));

  REQUIRE(h.server_.Upsert("pods", "ns", "d").ok());
  REQUIRE(h.server_.Touch("pods", "ns", "a").ok());
  REQUIRE(h.server_.Delete("pods", "ns", "b").ok());
  CHECK(h.WaitForCache(h.Upstream({"a", "c", "d"})));
  // One LIST, then one watch: nothing was relisted, for any reason, and the watch held.
  const core::ReflectorStatus status = h.informer_->status();
  CheckOnlyTheInitialList(status);
  CHECK(status.watch_restarts == 0);
  CHECK(h.PodRequests(/*watch=*/false) == 1);
  CHECK(h.PodRequests(/*watch=*/true) == 1);
}

TEST_CASE("an expired resource version relists; subscribers get the difference, not a reset") {
  Harness h;
  for (const char* name : {"a", "b", "c"}) REQUIRE(h.server_.Upsert("pods", "ns", name).ok());
  h.informer_->Start();
  REQUIRE(h.WaitForCache(h.Upstream({"a", "b", "c"})));
  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  core::SubscribeOptions subscribe;
  subscribe.resource_version = h.cache_->Stats().resource_version;
  auto subscription = h.cache_->Subscribe(std::move(subscribe));
  REQUIRE(subscription.ok());

  // The informer is cut off (it backs off before watching again); meanwhile things change and
  // etcd history is compacted, so its resource version has expired when it comes back.
  h.server_.DropAllConnections();
  REQUIRE(h.server_.Delete("pods", "ns", "b").ok());
  REQUIRE(h.server_.Recreate("pods", "ns", "c").ok());
  REQUIRE(h.server_.Upsert("pods", "ns", "e").ok());
  h.server_.Compact();
  REQUIRE(h.WaitForCache(h.Upstream({"a", "c", "e"})));
  CHECK(h.informer_->status().relists[static_cast<int>(core::RelistReason::kExpired)] == 1);

  // The subscriber kept its stream and saw exactly the difference: b deleted, c deleted and
  // added again under its new uid, e added; nothing for the unchanged a.
  std::vector<std::string> seen;
  while (auto delivery = (*subscription)->TryPop()) {
    seen.push_back(std::string(core::EventTypeName(delivery->type)) + " " +
                   delivery->object()->name);
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"ADDED c", "ADDED e", "DELETED b", "DELETED c"});
  CHECK_FALSE((*subscription)->FinalStatus().has_value());
}

TEST_CASE("garbage in a watch stream restarts the watch without losing changes") {
  Harness h;
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  h.informer_->Start();
  REQUIRE(h.WaitForCache(h.Upstream({"a"})));
  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  h.server_.InjectFault("pods", Verb::kWatch, Fault::MalformedJson());
  h.server_.EndWatches("pods");
  REQUIRE(h.server_.Upsert("pods", "ns", "b").ok());
  REQUIRE(h.server_.Touch("pods", "ns", "a").ok());
  CHECK(h.WaitForCache(h.Upstream({"a", "b"})));
  CHECK(h.server_.PendingFaults("pods", Verb::kWatch) == 0);
  const core::ReflectorStatus status = h.informer_->status();
  CHECK(std::string(status.last_error.message()).find("malformed") != std::string::npos);
  // The ended watch and the broken one were both re-opened from the last resource version:
  // every WATCH after the first is a restart, and there was no relist (one LIST in all). The
  // garbage came first on its stream, so the changes came through a third watch.
  CheckOnlyTheInitialList(status);
  CHECK(status.watch_restarts >= 2);
  CHECK(h.PodRequests(/*watch=*/true) == 1 + status.watch_restarts);
  CHECK(h.PodRequests(/*watch=*/false) == 1);
}

TEST_CASE("an event over the size limit is skipped, named, and the watch goes on past it") {
  InformerOptions options;
  options.max_event_bytes = 256 << 10;
  Harness h(options);
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  h.informer_->Start();
  REQUIRE(h.WaitForCache(h.Upstream({"a"})));
  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  // The next watch gets a 1 MiB ADDED of default/huge-object (its blob in an annotation, after
  // the name), then the live events.
  h.server_.InjectFault("pods", Verb::kWatch, Fault::HugeObject(std::size_t{1} << 20));
  h.server_.EndWatches("pods");
  REQUIRE(WaitUntil([&] { return h.informer_->upstream_metrics().objects_too_large() == 1; },
                    seconds(20)));
  REQUIRE(h.server_.Upsert("pods", "ns", "b").ok());
  CHECK(h.WaitForCache(h.Upstream({"a", "b"})));
  CHECK(h.server_.PendingFaults("pods", Verb::kWatch) == 0);
  // The watch that carried it is the one that delivered b: no restart, no relist.
  CHECK(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  CHECK(h.PodRequests(/*watch=*/true) == 2);
  const core::ReflectorStatus status = h.informer_->status();
  CheckOnlyTheInitialList(status);
  CHECK(status.watch_restarts == 1);
  INFO(status.skipped_object);
  CHECK_THAT(status.skipped_object,
             Catch::StartsWith("skipping default/huge-object: a watch event of ") &&
                 Catch::EndsWith("bytes, larger than the 262144-byte limit on one object "
                                 "(maxObjectBytes)"));
  CHECK(h.informer_->upstream_metrics().objects_too_large() == 1);
}

TEST_CASE("a connection cut mid-event is retried and the cache converges") {
  Harness h;
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  h.informer_->Start();
  REQUIRE(h.WaitForCache(h.Upstream({"a"})));
  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  h.server_.InjectFault("pods", Verb::kWatch, Fault::CloseMidJson(1));
  h.server_.EndWatches("pods");
  REQUIRE(h.server_.WaitForOpenWatches("pods", 1, seconds(10)));
  for (const char* name : {"b", "c"}) REQUIRE(h.server_.Upsert("pods", "ns", name).ok());
  CHECK(h.WaitForCache(h.Upstream({"a", "b", "c"})));
}

TEST_CASE("a 503 with Retry-After on the LIST delays the sync, then it completes") {
  Harness h;
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  h.server_.InjectFault("pods", Verb::kList, Fault::ServiceUnavailable(1));
  const auto started = std::chrono::steady_clock::now();
  h.informer_->Start();
  REQUIRE(h.WaitForCache(h.Upstream({"a"})));
  CHECK(std::chrono::steady_clock::now() - started >= seconds(1));
  CHECK_FALSE(h.informer_->status().last_error.ok());
}

TEST_CASE("a 404 on the LIST reports the resource gone, retries slowly, and resyncs when back") {
  std::atomic<int> gone_reports{0};
  InformerOptions options;
  options.reflector.gone_retry_interval = seconds(1);
  options.on_resource_gone = [&gone_reports] { ++gone_reports; };
  Harness h(options);
  REQUIRE(h.server_.Upsert("pods", "ns", "a").ok());
  REQUIRE(h.server_.UnregisterResource("pods"));
  h.informer_->Start();
  REQUIRE(WaitUntil([&] { return gone_reports.load() >= 1; }, seconds(10)));
  CHECK(h.informer_->status().resource_gone);
  CHECK(h.informer_->status().state == core::ReflectorState::kGone);
  CHECK_FALSE(h.cache_->Stats().synced);

  // Gone, it asks about once per gone_retry_interval: no backoff storm.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  std::size_t lists = 0;
  for (const fakeapi::RequestRecord& request : h.server_.Requests()) {
    if (request.path == "/api/v1/pods" && !request.IsWatch()) ++lists;
  }
  CHECK(lists >= 2);
  CHECK(lists <= 4);
  CHECK(gone_reports.load() >= 2);  // each failed look is reported

  h.server_.RegisterResource(fakeapi::ResourceType::Pods());
  REQUIRE(h.server_.Upsert("pods", "ns", "b").ok());
  CHECK(h.WaitForCache(h.Upstream({"b"})));
  CHECK_FALSE(h.informer_->status().resource_gone);
}

}  // namespace
}  // namespace informerd::daemon
