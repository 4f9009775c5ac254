// The Informer's limit on one object (InformerOptions::max_event_bytes, config maxObjectBytes),
// in-process: a scripted ListWatchClient, fake time and timers. An object over the limit, as a
// LIST item or as a watch event, is skipped and the list or watch goes on without it: no retry,
// no restart (either would meet the same object again, forever). The cache stops holding it (a
// list leaves it out, so its end deletes it; a watch event deletes it, DELETED to subscribers
// with the last state the cache had, at the event's resource version), the resource version
// moves past it, each skip is counted, and it is logged at warn once until it fits again. The
// path from the config file to the limit is test/daemon/config_wiring_test.cc.

// Timer durations print as "1200 milliseconds" in failures.
#define CATCH_CONFIG_ENABLE_CHRONO_STRINGMAKER
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/reflector.h"
#include "daemon/informers/informer.h"
#include "fmt/format.h"
#include "test/common/captured_log.h"
#include "test/common/fake_clock.h"
#include "test/common/fake_random_source.h"
#include "test/common/fake_timers.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using test::HttpOk;
using Strings = std::vector<std::string>;

constexpr std::size_t kLimit = 1024;

core::ResolvedResource Pods() {
  core::ResolvedResource pods;
  pods.version = "v1";
  pods.resource = "pods";
  pods.kind = "Pod";
  pods.namespaced = true;
  return pods;
}

// A pod whose JSON is `padding` bytes longer than the smallest.
std::string Pod(const std::string& name, const std::string& rv, std::size_t padding = 0) {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}","namespace":"ns","uid":"uid-{}","resourceVersion":"{}"}},"spec":{{"filler":"{}"}}}})",
      name, name, rv, std::string(padding, 'x'));
}
std::string Big(const std::string& rv) { return Pod("big", rv, kLimit); }

std::string PodList(const std::string& rv, const std::vector<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ",") + item;
  return fmt::format(
      R"({{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"}},"items":[{}]}})",
      rv, joined);
}

std::string Event(const std::string& type, const std::string& object) {
  return fmt::format(R"({{"type":"{}","object":{}}})", type, object) + "\n";
}

std::string Expired() {
  return Event("ERROR", R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
                        R"("message":"too old resource version","reason":"Expired","code":410})");
}

constexpr char kList[] = "/api/v1/pods?limit=500&resourceVersion=0";
constexpr char kWatchFrom[] =
    "WATCH /api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=";

class InProcess {
 public:
  explicit InProcess(bool use_watch_list = false) {
    InformerOptions options;
    options.resource = Pods();
    options.max_event_bytes = kLimit;
    options.reflector.use_watch_list = use_watch_list;
    options.timers = &timers_;
    options.random = &random_;
    cache_ = core::Cache::Create(core::CacheOptions(), clock_);
    informer_ = Informer::Create(client_, std::move(options), cache_, clock_, log_.logger());
  }
  ~InProcess() {
    informer_->Stop();
    io_.poll();
  }

  void Run() { io_.poll(); }
  void Advance(milliseconds by) {
    timers_.Advance(by);
    io_.poll();
  }
  // Starts and completes the initial sync with `items` at resourceVersion 10.
  void Sync(const std::vector<std::string>& items) {
    informer_->Start();
    Run();
    client_.ScriptGet(kList, HttpOk(PodList("10", items)));
    Run();
    REQUIRE(informer_->status().synced);
    REQUIRE(client_.open_watches() == 1);
  }
  std::optional<std::string> CachedVersion(const std::string& name) const {
    const core::GetResult got = cache_->Get("ns", name);
    if (!got.object) return std::nullopt;
    return got.object->resource_version.str();
  }
  uint64_t TooLarge() const { return informer_->upstream_metrics().objects_too_large(); }
  Strings Warnings() const { return log_.Containing("warning: pods: skipping"); }
  // Every request so far, with each WATCH cut after its resourceVersion.
  Strings Requests() const {
    Strings lines = client_.RequestLines();
    for (std::string& line : lines) {
      if (line.rfind("WATCH ", 0) == 0) line = line.substr(0, line.find("&timeoutSeconds"));
    }
    return lines;
  }

  boost::asio::io_context io_;
  test::ScriptedListWatchClient client_{io_};
  core::FakeClock clock_;
  test::FakeTimers timers_{clock_, client_.strand()};
  core::ScriptedRandomSource random_;
  test::CapturedLog log_;
  std::shared_ptr<core::Cache> cache_;
  std::shared_ptr<Informer> informer_;
};

std::string ListSkip(std::size_t bytes) {
  return fmt::format(
      "skipping ns/big: a LIST item of {} bytes, larger than the 1024-byte limit on one object "
      "(maxObjectBytes)",
      bytes);
}
std::string WatchSkip(std::size_t bytes) {
  return fmt::format(
      "skipping ns/big: a watch event of {} bytes, larger than the 1024-byte limit on one object "
      "(maxObjectBytes)",
      bytes);
}
std::string Warning(const std::string& skip) {
  return "warning: pods: " + skip + "; it is not served until it fits";
}

// What a subscriber receives, as "TYPE name@resourceVersion".
Strings Drain(core::Subscription& subscription) {
  Strings out;
  while (std::optional<core::Delivery> delivery = subscription.TryPop()) {
    const core::ObjectRecord* object = delivery->object();
    out.push_back(fmt::format("{} {}@{}", core::EventTypeName(delivery->type),
                              object ? object->name.str() : "", delivery->resource_version()));
  }
  return out;
}

TEST_CASE("a LIST item over the limit is skipped: one LIST, one WATCH, the object absent") {
  InProcess p;
  const std::string small = Pod("a", "8");
  const std::string large = Big("9");
  REQUIRE(small.size() <= kLimit);
  REQUIRE(large.size() > kLimit);

  p.Sync({small, large});

  // No retry: the list completed without it and the watch started from the list's version.
  CHECK(p.Requests() == Strings{std::string("GET ") + kList, std::string(kWatchFrom) + "10"});
  CHECK(p.timers_.armed_durations().empty());
  const core::ReflectorStatus status = p.informer_->status();
  CHECK(status.last_error.ok());
  CHECK(status.consecutive_failures == 0);
  CHECK(status.relists[static_cast<std::size_t>(core::RelistReason::kListError)] == 0);
  CHECK(p.cache_->Stats().synced);
  CHECK(p.cache_->Stats().resource_version == "10");
  CHECK(p.CachedVersion("a") == "8");
  CHECK_FALSE(p.CachedVersion("big").has_value());
  // Counted, logged once naming it, its size and the limit, and in the status.
  CHECK(p.TooLarge() == 1);
  CHECK(p.informer_->upstream_metrics().list_objects() == 2);
  CHECK(p.Warnings() == Strings{Warning(ListSkip(large.size()))});
  CHECK(status.skipped_object == ListSkip(large.size()));
}

TEST_CASE("a relist that skips a cached object deletes it; it is logged once until it fits") {
  InProcess p;
  p.Sync({Pod("a", "8"), Pod("big", "9")});
  auto subscription = p.cache_->Subscribe(core::SubscribeOptions());
  REQUIRE(subscription.ok());
  CHECK(Drain(**subscription) == Strings{"ADDED a@8", "ADDED big@9", "SYNCED @10"});

  // 410 → relist, in which big is over the limit: the list's end deletes it as absent.
  const auto relist = [&](const std::string& rv, const std::string& big) {
    p.client_.LastWatch().Push(Expired());
    p.Run();
    p.client_.ScriptGet("/api/v1/pods", HttpOk(PodList(rv, {Pod("a", "8"), big})));
    p.Advance(p.timers_.armed_durations().back());
    REQUIRE(p.client_.open_watches() == 1);
  };
  relist("12", Big("11"));
  CHECK_FALSE(p.CachedVersion("big").has_value());
  CHECK(Drain(**subscription) == Strings{"DELETED big@12"});
  CHECK(p.TooLarge() == 1);
  CHECK(p.Warnings() == Strings{Warning(ListSkip(Big("11").size()))});
  CHECK(p.informer_->status().skipped_object == ListSkip(Big("11").size()));

  // Still too large at the next relist: counted, not logged again.
  relist("14", Big("13"));
  CHECK(p.TooLarge() == 2);
  CHECK(p.Warnings().size() == 1);

  // It fits again: served, and the status no longer names it.
  relist("16", Pod("big", "15"));
  CHECK(p.CachedVersion("big") == "15");
  CHECK(Drain(**subscription) == Strings{"ADDED big@16"});
  CHECK(p.informer_->status().skipped_object.empty());

  // Too large once more: a new episode, logged again.
  relist("18", Big("17"));
  CHECK(p.Warnings().size() == 2);
  CHECK(p.TooLarge() == 3);
}

TEST_CASE(
    "a watch event over the limit is skipped: the cached object is deleted, the watch "
    "goes on past it") {
  InProcess p;
  p.Sync({Pod("a", "8"), Pod("big", "9")});
  auto subscription = p.cache_->Subscribe(core::SubscribeOptions());
  REQUIRE(subscription.ok());
  Drain(**subscription);
  test::ScriptedWatch& watch = p.client_.LastWatch();

  watch.Push(Event("MODIFIED", Big("11")) + Event("MODIFIED", Pod("a", "12")));
  p.Run();
  // The watch was not restarted: still one LIST and one WATCH, and it is open.
  CHECK(watch.open());
  CHECK(p.Requests() == Strings{std::string("GET ") + kList, std::string(kWatchFrom) + "10"});
  CHECK(p.informer_->status().last_error.ok());
  // The cache no longer holds big: DELETED, with the last state it had, at the event's version;
  // the event after it was applied.
  CHECK_FALSE(p.CachedVersion("big").has_value());
  CHECK(p.CachedVersion("a") == "12");
  {
    std::optional<core::Delivery> deleted = (*subscription)->TryPop();
    REQUIRE(deleted.has_value());
    CHECK(deleted->type == core::EventType::kDeleted);
    CHECK(deleted->resource_version() == "11");
    CHECK(deleted->object()->json == Pod("big", "9"));
  }
  CHECK(Drain(**subscription) == Strings{"MODIFIED a@12"});
  CHECK(p.TooLarge() == 1);
  const std::string skip = WatchSkip(Event("MODIFIED", Big("11")).size() - 1);
  CHECK(p.Warnings() == Strings{Warning(skip)});
  CHECK(p.informer_->status().skipped_object == skip);

  // Not cached any more: only its version counts. Counted, not logged again.
  watch.Push(Event("MODIFIED", Big("13")));
  p.Run();
  CHECK(p.cache_->Stats().resource_version == "13");
  CHECK(p.informer_->status().resource_version == "13");
  CHECK(Drain(**subscription).empty());
  CHECK(p.TooLarge() == 2);
  CHECK(p.Warnings().size() == 1);

  // The next watch resumes after it.
  watch.End(HttpOk(""));
  p.Run();
  CHECK(p.Requests().back() == std::string(kWatchFrom) + "13");

  // It fits again: served, and no longer named; too large again: a new episode.
  p.client_.LastWatch().Push(Event("MODIFIED", Pod("big", "14")));
  p.Run();
  CHECK(p.CachedVersion("big") == "14");
  CHECK(p.informer_->status().skipped_object.empty());
  p.client_.LastWatch().Push(Event("MODIFIED", Big("15")));
  p.Run();
  CHECK_FALSE(p.CachedVersion("big").has_value());
  CHECK(p.Warnings().size() == 2);
  CHECK(p.TooLarge() == 3);
}

TEST_CASE("a WatchList's initial event over the limit is left out of the initial state") {
  InProcess p(/*use_watch_list=*/true);
  p.informer_->Start();
  p.Run();
  REQUIRE(p.client_.watches().size() == 1);
  p.client_.LastWatch().Push(
      Event("ADDED", Pod("a", "8")) + Event("ADDED", Big("9")) +
      Event("BOOKMARK", R"({"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"10",)"
                        R"("annotations":{"k8s.io/initial-events-end":"true"}}})"));
  p.Run();
  // Synced on the same stream: no fallback to LIST, no new watch.
  CHECK(p.informer_->status().synced);
  CHECK(p.informer_->status().using_watch_list);
  CHECK(p.client_.requests().size() == 1);
  CHECK(p.client_.LastWatch().open());
  CHECK(p.CachedVersion("a") == "8");
  CHECK_FALSE(p.CachedVersion("big").has_value());
  CHECK(p.TooLarge() == 1);
  CHECK(p.Warnings().size() == 1);
}

}  // namespace
}  // namespace informerd::daemon
