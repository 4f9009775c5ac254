// Every object the Informer puts in the cache carries kind and apiVersion, however it arrived,
// in-process: a scripted ListWatchClient, fake time and timers. The apiserver writes a LIST's
// items without them (the list names the kind once) and a watch event's object with them; a Get
// after the initial LIST, after a watch MODIFIED and after a relist shows the same kind and
// apiVersion, and so do a subscriber's snapshot and events. A custom resource's list is written
// with its keys sorted, its kind after its items: the resource's kind stands in. The decoder's
// own rules are test/core/list_decoder_test.cc; against a real apiserver,
// test/e2e/object_shape_cluster_test.cc.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cache.h"
#include "daemon/informers/informer.h"
#include "fmt/format.h"
#include "rapidjson/document.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/fake_clock.h"
#include "test/common/fake_random_source.h"
#include "test/common/fake_timers.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::daemon {
namespace {

using test::HttpOk;
using Strings = std::vector<std::string>;

// An object's kind and apiVersion as "Kind apiVersion" ("<none>" for one that is missing).
std::string TypeOf(std::string_view json) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  INFO(json);
  REQUIRE(!document.HasParseError());
  REQUIRE(document.IsObject());
  const auto member = [&](const char* name) -> std::string {
    const auto found = document.FindMember(name);
    if (found == document.MemberEnd() || !found->value.IsString()) return "<none>";
    return found->value.GetString();
  };
  return member("kind") + " " + member("apiVersion");
}

class InProcess {
 public:
  explicit InProcess(core::ResolvedResource resource) {
    InformerOptions options;
    options.resource = std::move(resource);
    options.timers = &timers_;
    options.random = &random_;
    cache_ = core::Cache::Create(core::CacheOptions(), clock_);
    informer_ = Informer::Create(
        client_, std::move(options), cache_, clock_,
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }
  ~InProcess() {
    informer_->Stop();
    io_.poll();
  }
  void Run() { io_.poll(); }
  void Advance(std::chrono::milliseconds by) {
    timers_.Advance(by);
    io_.poll();
  }
  // The cached object's kind and apiVersion, "" if it is not cached.
  std::string CachedType(const std::string& ns, const std::string& name) const {
    const core::GetResult got = cache_->Get(ns, name);
    return got.object ? TypeOf(got.object->json.view()) : "";
  }
  std::string CachedVersion(const std::string& ns, const std::string& name) const {
    const core::GetResult got = cache_->Get(ns, name);
    return got.object ? got.object->resource_version.str() : "";
  }

  boost::asio::io_context io_;
  test::ScriptedListWatchClient client_{io_};
  core::FakeClock clock_;
  test::FakeTimers timers_{clock_, client_.strand()};
  core::ScriptedRandomSource random_;
  std::shared_ptr<core::Cache> cache_;
  std::shared_ptr<Informer> informer_;
};

core::ResolvedResource Pods() {
  core::ResolvedResource pods;
  pods.version = "v1";
  pods.resource = "pods";
  pods.kind = "Pod";
  pods.namespaced = true;
  return pods;
}

// A pod as a typed LIST writes its items (no kind, no apiVersion) and as a watch event writes
// its object (kind and apiVersion first).
std::string ListedPod(const std::string& name, const std::string& rv) {
  return fmt::format(
      R"({{"metadata":{{"name":"{}","namespace":"ns","uid":"uid-{}","resourceVersion":"{}",)"
      R"("labels":{{"app":"web"}}}},"spec":{{"nodeName":"n1"}}}})",
      name, name, rv);
}
std::string WatchedPod(const std::string& name, const std::string& rv) {
  return R"({"kind":"Pod","apiVersion":"v1",)" + ListedPod(name, rv).substr(1);
}
std::string PodList(const std::string& rv, const Strings& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ",") + item;
  return fmt::format(
      R"({{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"}},"items":[{}]}})",
      rv, joined);
}
std::string Event(const std::string& type, const std::string& object) {
  return fmt::format(R"({{"type":"{}","object":{}}})", type, object) + "\n";
}

// What a subscriber has received: "TYPE name Kind apiVersion" ("SYNCED" alone).
Strings Drain(core::Subscription& subscription) {
  Strings out;
  while (std::optional<core::Delivery> delivery = subscription.TryPop()) {
    const core::ObjectRecord* object = delivery->object();
    out.push_back(object ? fmt::format("{} {} {}", core::EventTypeName(delivery->type),
                                       object->name.str(), TypeOf(object->json.view()))
                         : core::EventTypeName(delivery->type));
  }
  return out;
}

TEST_CASE("a pod has the same kind and apiVersion after a LIST, a watch event and a relist") {
  InProcess p(Pods());
  p.informer_->Start();
  p.Run();
  p.client_.ScriptGet("/api/v1/pods", HttpOk(PodList("10", {ListedPod("web-1", "8")})));
  p.Run();
  REQUIRE(p.client_.open_watches() == 1);
  auto subscription = p.cache_->Subscribe(core::SubscribeOptions());
  REQUIRE(subscription.ok());

  // After the LIST: filled in from the list ("PodList" → "Pod"), at the start of the JSON.
  CHECK(p.CachedType("ns", "web-1") == "Pod v1");
  CHECK(p.cache_->Get("ns", "web-1").object->json == WatchedPod("web-1", "8"));
  CHECK(Drain(**subscription) == Strings{"ADDED web-1 Pod v1", "SYNCED"});

  // After a label change, as the watch delivers it: the same.
  p.client_.LastWatch().Push(Event("MODIFIED", WatchedPod("web-1", "11")) +
                             Event("ADDED", WatchedPod("web-2", "12")));
  p.Run();
  REQUIRE(p.CachedVersion("ns", "web-1") == "11");
  CHECK(p.CachedType("ns", "web-1") == "Pod v1");
  CHECK(Drain(**subscription) == Strings{"MODIFIED web-1 Pod v1", "ADDED web-2 Pod v1"});

  // A relist (the watch's version expired): its differences too.
  p.client_.LastWatch().Push(
      Event("ERROR", R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
                     R"("message":"too old resource version","reason":"Expired","code":410})"));
  p.Run();
  p.client_.ScriptGet("/api/v1/pods",
                      HttpOk(PodList("20", {ListedPod("web-1", "15"), ListedPod("web-3", "19")})));
  p.Advance(p.timers_.armed_durations().at(0));
  REQUIRE(p.CachedVersion("ns", "web-1") == "15");
  CHECK(p.CachedType("ns", "web-1") == "Pod v1");
  CHECK(p.CachedType("ns", "web-3") == "Pod v1");
  CHECK(Drain(**subscription) ==
        Strings{"MODIFIED web-1 Pod v1", "ADDED web-3 Pod v1", "DELETED web-2 Pod v1"});
}

TEST_CASE("a custom resource's list, kind after its items: the resource's kind stands in") {
  core::ResolvedResource crontabs;
  crontabs.group = "stable.example.com";
  crontabs.version = "v1";
  crontabs.resource = "crontabs";
  crontabs.kind = "CronTab";
  crontabs.namespaced = true;
  InProcess p(crontabs);
  p.informer_->Start();
  p.Run();
  // As the apiserver writes a custom resource list: a map with sorted keys. Its items normally
  // carry kind and apiVersion (stored with them); c-2 does not.
  p.client_.ScriptGet(
      "/apis/stable.example.com/v1/crontabs",
      HttpOk(
          R"({"apiVersion":"stable.example.com/v1","items":[)"
          R"({"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"c-1",)"
          R"("namespace":"ns","uid":"u1","resourceVersion":"5"},"spec":{"cronSpec":"* * * * *"}},)"
          R"({"metadata":{"name":"c-2","namespace":"ns","uid":"u2","resourceVersion":"6"}}],)"
          R"("kind":"CronTabList","metadata":{"continue":"","resourceVersion":"7"}})"));
  p.Run();
  REQUIRE(p.informer_->status().synced);
  CHECK(p.CachedType("ns", "c-1") == "CronTab stable.example.com/v1");
  CHECK(p.CachedType("ns", "c-2") == "CronTab stable.example.com/v1");
  // An item that had them is served byte for byte.
  CHECK(p.cache_->Get("ns", "c-1").object->json ==
        R"({"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"c-1",)"
        R"("namespace":"ns","uid":"u1","resourceVersion":"5"},"spec":{"cronSpec":"* * * * *"}})");

  p.client_.LastWatch().Push(
      Event("MODIFIED",
            R"({"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"c-2",)"
            R"("namespace":"ns","uid":"u2","resourceVersion":"8"}})"));
  p.Run();
  REQUIRE(p.CachedVersion("ns", "c-2") == "8");
  CHECK(p.CachedType("ns", "c-2") == "CronTab stable.example.com/v1");
}

}  // namespace
}  // namespace informerd::daemon
