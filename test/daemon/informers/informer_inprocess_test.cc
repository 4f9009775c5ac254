// The Informer (daemon/informers/informer.*) in-process: a scripted ListWatchClient
// (test/common/scripted_list_watch_client.h) instead of HTTP, fake time and timers, a scripted
// random source, and an io_context the test runs itself. Every request the informer makes is
// checked exactly (path and query, in order), and every wait is a fake timer whose duration is
// checked before the clock is moved past it. No sleeps, no threads. The same informer against the
// fake apiserver over real sockets is test/daemon/informers/informer_test.cc.

// Timer durations print as "1200 milliseconds" in failures.
#define CATCH_CONFIG_ENABLE_CHRONO_STRINGMAKER
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/reflector.h"
#include "daemon/informers/informer.h"
#include "fmt/format.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/captured_log.h"
#include "test/common/fake_clock.h"
#include "test/common/fake_random_source.h"
#include "test/common/fake_timers.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using test::HttpError;
using test::HttpOk;

core::ResolvedResource Pods() {
  core::ResolvedResource pods;
  pods.version = "v1";
  pods.resource = "pods";
  pods.kind = "Pod";
  pods.namespaced = true;
  return pods;
}

std::string Pod(const std::string& name, const std::string& rv) {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}","namespace":"ns","uid":"uid-{}","resourceVersion":"{}"}},"spec":{{}}}})",
      name, name, rv);
}

// A LIST page: the list's resourceVersion, the continue token ("" on the last page), the items.
std::string PodList(const std::string& rv, const std::string& continue_token,
                    const std::vector<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ",") + item;
  return fmt::format(
      R"({{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"{}}},"items":[{}]}})",
      rv, continue_token.empty() ? "" : fmt::format(R"(,"continue":"{}")", continue_token), joined);
}

std::string Event(const std::string& type, const std::string& object) {
  return fmt::format(R"({{"type":"{}","object":{}}})", type, object) + "\n";
}

// An ERROR event as the apiserver sends it when the watch's resourceVersion has been compacted.
std::string ExpiredEvent() {
  return Event(
      "ERROR",
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
      R"json("message":"too old resource version: 10 (15)","reason":"Expired","code":410})json");
}

constexpr char kWatchQuery[] = "/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=";

// One pods informer (all namespaces, pages of 2) over a cache, on a scripted client; it logs to
// `logger` (nullptr: nowhere).
class InProcess {
 public:
  explicit InProcess(std::shared_ptr<spdlog::logger> logger = nullptr) {
    if (!logger) {
      logger =
          std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    }
    InformerOptions options;
    options.resource = Pods();
    options.reflector.page_size = 2;
    options.timers = &timers_;
    options.random = &random_;
    cache_ = core::Cache::Create(core::CacheOptions(), clock_);
    informer_ = Informer::Create(client_, std::move(options), cache_, clock_, std::move(logger));
  }
  ~InProcess() {
    informer_->Stop();
    io_.poll();
  }

  void Run() { io_.poll(); }
  // Moves the fake clock (which fires the timers now due) and runs what that set off.
  void Advance(milliseconds by) {
    timers_.Advance(by);
    io_.poll();
  }

  // Starts the informer and completes the initial sync at resourceVersion 10 with pods a, b
  // (page 1) and c (page 2); the watch from 10 is then open.
  void Sync() {
    informer_->Start();
    Run();
    client_.ScriptGet("/api/v1/pods?limit=2&resourceVersion=0",
                      HttpOk(PodList("10", "c1", {Pod("a", "8"), Pod("b", "9")})));
    Run();
    client_.ScriptGet("/api/v1/pods?limit=2&continue=c1",
                      HttpOk(PodList("10", "", {Pod("c", "10")})));
    Run();
    REQUIRE(client_.open_watches() == 1);
  }

  // name → resourceVersion of what the cache holds.
  std::map<std::string, std::string> Cached() const {
    auto list = cache_->List("", core::LabelSelector(), core::FieldSelector());
    REQUIRE(list.ok());
    std::map<std::string, std::string> out;
    for (const auto& object : list->items) out[object->name.str()] = object->resource_version.str();
    return out;
  }

  std::vector<milliseconds> Armed() const { return timers_.armed_durations(); }

  boost::asio::io_context io_;
  test::ScriptedListWatchClient client_{io_};
  core::FakeClock clock_;
  test::FakeTimers timers_{clock_, client_.strand()};
  // 0.5 unless scripted: watches ask for timeoutSeconds=450, a first backoff waits 1200 ms.
  core::ScriptedRandomSource random_;
  std::shared_ptr<core::Cache> cache_;
  std::shared_ptr<Informer> informer_;
};

TEST_CASE("in-process: the initial LIST is paged with the continue token, then WATCH from its RV") {
  InProcess p;
  p.informer_->Start();
  p.Run();
  CHECK(p.client_.RequestLines() ==
        std::vector<std::string>{"GET /api/v1/pods?limit=2&resourceVersion=0"});
  CHECK_FALSE(p.cache_->Stats().synced);

  p.client_.ScriptGet("/api/v1/pods?limit=2&resourceVersion=0",
                      HttpOk(PodList("10", "c1", {Pod("a", "8"), Pod("b", "9")})));
  p.Run();
  // The next page: the token, no resourceVersion (the token carries the snapshot).
  CHECK(p.client_.RequestLines(1) ==
        std::vector<std::string>{"GET /api/v1/pods?limit=2&continue=c1"});
  CHECK_FALSE(p.cache_->Stats().synced);

  p.client_.ScriptGet("/api/v1/pods?limit=2&continue=c1",
                      HttpOk(PodList("10", "", {Pod("c", "10")})));
  p.Run();
  CHECK(p.client_.RequestLines(2) ==
        std::vector<std::string>{std::string("WATCH ") + kWatchQuery + "10&timeoutSeconds=450"});
  CHECK(p.cache_->Stats().synced);
  CHECK(p.Cached() == std::map<std::string, std::string>{{"a", "8"}, {"b", "9"}, {"c", "10"}});
  const core::ReflectorStatus status = p.informer_->status();
  CHECK(status.synced);
  CHECK(status.state == core::ReflectorState::kWatching);
  CHECK(status.resource_version == "10");
  CHECK(p.timers_.armed().empty());
}

TEST_CASE("in-process: watch events, cut anywhere, are applied to the cache in order") {
  InProcess p;
  p.Sync();
  const std::string events = Event("ADDED", Pod("d", "11")) + Event("MODIFIED", Pod("a", "12")) +
                             Event("DELETED", Pod("b", "13"));
  // Three pieces, cut in the middle of the second event's JSON.
  const std::size_t cut = events.find("MODIFIED") + 20;
  p.client_.LastWatch().Push(events.substr(0, 7));
  p.client_.LastWatch().Push(events.substr(7, cut - 7));
  p.Run();
  CHECK(p.Cached() ==
        std::map<std::string, std::string>{{"a", "8"}, {"b", "9"}, {"c", "10"}, {"d", "11"}});
  p.client_.LastWatch().Push(events.substr(cut));
  p.Run();
  CHECK(p.Cached() == std::map<std::string, std::string>{{"a", "12"}, {"c", "10"}, {"d", "11"}});
  CHECK(p.cache_->Stats().resource_version == "13");
  // Nothing else was asked for: the one watch carries on.
  CHECK(p.client_.requests().size() == 3);
  CHECK(p.client_.open_watches() == 1);
}

TEST_CASE("in-process: a 410 ERROR event in the watch relists at the last RV after one backoff") {
  InProcess p;
  p.Sync();
  p.client_.LastWatch().Push(Event("ADDED", Pod("d", "11")) + ExpiredEvent());
  p.Run();
  // The stream is given up at once; the relist waits one backoff step (800 ms + 0.5 x 800 ms).
  CHECK(p.client_.LastWatch().cancelled());
  CHECK(p.Armed() == std::vector<milliseconds>{milliseconds(1200)});
  CHECK(p.informer_->status().state == core::ReflectorState::kBackingOff);
  const std::size_t before = p.client_.requests().size();
  p.Advance(milliseconds(1199));
  CHECK(p.client_.requests().size() == before);

  p.Advance(milliseconds(1));
  // At the last RV seen (not "0": that could go back in time; not "": the RV is not known to be
  // unavailable for a LIST), paged, since the server showed it pages.
  CHECK(p.client_.RequestLines(before) ==
        std::vector<std::string>{"GET /api/v1/pods?limit=2&resourceVersion=11"});
  p.client_.ScriptGet("/api/v1/pods?limit=2&resourceVersion=11",
                      HttpOk(PodList("20", "", {Pod("a", "8"), Pod("d", "11"), Pod("e", "19")})));
  p.Run();
  CHECK(p.client_.RequestLines(before + 1) ==
        std::vector<std::string>{std::string("WATCH ") + kWatchQuery + "20&timeoutSeconds=450"});
  CHECK(p.Cached() == std::map<std::string, std::string>{{"a", "8"}, {"d", "11"}, {"e", "19"}});
  CHECK(p.informer_->status().relists[static_cast<int>(core::RelistReason::kExpired)] == 1);
}

TEST_CASE("in-process: a watch that breaks waits exactly the backoff the reflector chose") {
  InProcess p;
  p.Sync();
  p.client_.LastWatch().Push(Event("ADDED", Pod("d", "11")));
  p.Run();
  // The next draw is the backoff's jitter: 800 ms + 0.25 x 800 ms.
  p.random_.Script({0.25});
  p.client_.LastWatch().End(test::ConnectionLost());
  p.Run();
  CHECK(p.Armed() == std::vector<milliseconds>{milliseconds(1000)});
  const std::size_t before = p.client_.requests().size();

  p.Advance(milliseconds(999));
  CHECK(p.client_.requests().size() == before);
  CHECK(p.informer_->status().state == core::ReflectorState::kBackingOff);

  p.Advance(milliseconds(1));
  // Watches again from the last RV, no relist.
  CHECK(p.client_.RequestLines(before) ==
        std::vector<std::string>{std::string("WATCH ") + kWatchQuery + "11&timeoutSeconds=450"});
  CHECK(p.client_.open_watches() == 1);
  CHECK(p.informer_->status().relists[static_cast<int>(core::RelistReason::kExpired)] == 0);

  // A second failure doubles the base: 1600 ms + 0.5 x 1600 ms. A 503 answer to the watch
  // itself (no stream) is a failure like a broken one.
  p.client_.LastWatch().End(HttpError(503, "ServiceUnavailable", "apiserver is shutting down"));
  p.Run();
  CHECK(p.Armed() == std::vector<milliseconds>{milliseconds(2400)});
}

TEST_CASE("in-process: a watch cut after its 200 header is a transport failure (UNAVAILABLE)") {
  InProcess p;
  p.Sync();
  p.random_.Script({0.25});
  p.client_.LastWatch().End(test::ConnectionLost("the watch stream was cut before its end"));
  p.Run();
  const core::ReflectorStatus status = p.informer_->status();
  INFO(status.last_error.ToString());
  CHECK(status.last_error.code() == absl::StatusCode::kUnavailable);
  CHECK(status.last_error.message().find("the watch stream was cut before its end") !=
        std::string::npos);
  CHECK(status.last_error.message().find("HTTP 200") == std::string::npos);
}

TEST_CASE("in-process: Stop closes the watch, and cancels a pending backoff") {
  SECTION("while watching") {
    InProcess p;
    p.Sync();
    p.informer_->Stop();
    p.Run();
    CHECK(p.client_.LastWatch().cancelled());
    CHECK(p.informer_->status().state == core::ReflectorState::kStopped);
    // Whatever the stream would still have said goes nowhere.
    p.client_.LastWatch().Push(Event("ADDED", Pod("d", "11")));
    p.Run();
    CHECK(p.Cached().count("d") == 0);
    CHECK(p.client_.requests().size() == 3);
  }
  SECTION("while backing off") {
    InProcess p;
    p.Sync();
    p.client_.LastWatch().End(test::ConnectionLost());
    p.Run();
    REQUIRE(p.Armed().size() == 1);
    p.informer_->Stop();
    p.Run();
    CHECK(p.timers_.armed().empty());
    p.Advance(std::chrono::minutes(10));
    CHECK(p.client_.requests().size() == 3);
    CHECK(p.informer_->status().state == core::ReflectorState::kStopped);
  }
}

TEST_CASE("in-process: a long list logs its progress every 10 s, and how long the sync took") {
  test::CapturedLog log;
  InProcess p(log.logger());
  p.informer_->Start();
  p.Run();
  const auto progress = [&log] { return log.Containing("objects so far"); };
  // Page 1 at once, page 2 just short of 10 s after the list began: nothing to say yet.
  p.client_.ScriptGet("/api/v1/pods?limit=2&resourceVersion=0",
                      HttpOk(PodList("10", "c1", {Pod("a", "1"), Pod("b", "2")})));
  p.Run();
  p.Advance(std::chrono::seconds(10) - milliseconds(1));
  p.client_.ScriptGet("/api/v1/pods?limit=2&continue=c1",
                      HttpOk(PodList("10", "c2", {Pod("c", "3"), Pod("d", "4")})));
  p.Run();
  CHECK(progress().empty());

  // Page 3 at 10 s: every object so far, once.
  p.Advance(milliseconds(1));
  p.client_.ScriptGet("/api/v1/pods?limit=2&continue=c2",
                      HttpOk(PodList("10", "c3", {Pod("e", "5"), Pod("f", "6")})));
  p.Run();
  CHECK(progress() ==
        std::vector<std::string>{"info: pods: initial sync: 6 objects so far (10 s)"});

  // The next line 10 s after that one, not sooner; the last page counts too.
  p.Advance(std::chrono::seconds(9));
  p.client_.ScriptGet("/api/v1/pods?limit=2&continue=c3",
                      HttpOk(PodList("10", "c4", {Pod("g", "7"), Pod("h", "8")})));
  p.Run();
  CHECK(progress().size() == 1);
  p.Advance(std::chrono::seconds(1));
  p.client_.ScriptGet("/api/v1/pods?limit=2&continue=c4",
                      HttpOk(PodList("10", "", {Pod("i", "9"), Pod("j", "10")})));
  p.Run();
  REQUIRE(p.client_.open_watches() == 1);
  CHECK(progress() ==
        std::vector<std::string>{"info: pods: initial sync: 6 objects so far (10 s)",
                                 "info: pods: initial sync: 10 objects so far (20 s)"});
  CHECK(log.Containing("synced") ==
        std::vector<std::string>{
            "info: pods: synced 10 objects at resourceVersion 10 in 20000 ms; watching"});

  // A relist counts afresh, from when it begins (after its backoff), and says it is a relist.
  p.client_.LastWatch().Push(ExpiredEvent());
  p.Run();
  REQUIRE(p.Armed() == std::vector<milliseconds>{milliseconds(1200)});
  p.Advance(milliseconds(1200));
  CHECK(log.Containing("relisting") ==
        std::vector<std::string>{"info: pods: relisting, reason expired (last error: watch: "
                                 "watch ERROR event 410 Expired: too old resource version: 10 "
                                 "(15))"});
  p.Advance(std::chrono::seconds(10));
  p.client_.ScriptGet("/api/v1/pods?limit=2&resourceVersion=10",
                      HttpOk(PodList("20", "r1", {Pod("a", "1"), Pod("b", "2")})));
  p.Run();
  CHECK(progress().size() == 3);
  CHECK(progress().back() == "info: pods: relist: 2 objects so far (10 s)");
}

}  // namespace
}  // namespace informerd::daemon
