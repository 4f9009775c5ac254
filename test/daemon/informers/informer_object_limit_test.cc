// The Informer's limit on one object (InformerOptions::max_event_bytes, config maxObjectBytes)
// for LIST items, in-process: a scripted ListWatchClient, fake time and timers. A LIST page with
// an item over the limit fails the list, which is reported (status, log) and retried after
// backoff like any failed list, with the relist reason list-error; a list whose items fit then
// syncs. The same limit on watch events is in informer_test.cc; the path from the config file
// to both is test/daemon/config_wiring_test.cc.

// Timer durations print as "1200 milliseconds" in failures.
#define CATCH_CONFIG_ENABLE_CHRONO_STRINGMAKER
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/reflector.h"
#include "daemon/informers/informer.h"
#include "fmt/format.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "test/common/fake_clock.h"
#include "test/common/fake_random_source.h"
#include "test/common/fake_timers.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using test::HttpOk;

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

std::string PodList(const std::string& rv, const std::vector<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ",") + item;
  return fmt::format(
      R"({{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"}},"items":[{}]}})",
      rv, joined);
}

constexpr char kList[] = "/api/v1/pods?limit=500&resourceVersion=0";

class InProcess {
 public:
  InProcess() {
    InformerOptions options;
    options.resource = Pods();
    options.max_event_bytes = kLimit;
    options.timers = &timers_;
    options.random = &random_;
    cache_ = core::Cache::Create(core::CacheOptions(), clock_);
    log_->set_pattern("%l: %v");
    informer_ = Informer::Create(client_, std::move(options), cache_, clock_,
                                 std::make_shared<spdlog::logger>("test", log_));
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
  std::vector<std::string> Log() const { return log_->last_formatted(); }

  boost::asio::io_context io_;
  test::ScriptedListWatchClient client_{io_};
  core::FakeClock clock_;
  test::FakeTimers timers_{clock_, client_.strand()};
  // 0.5 unless scripted: a first backoff waits 1200 ms.
  core::ScriptedRandomSource random_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_ =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  std::shared_ptr<core::Cache> cache_;
  std::shared_ptr<Informer> informer_;
};

TEST_CASE("a LIST item over max_event_bytes fails the list, reported, and it is retried") {
  InProcess p;
  const std::string small = Pod("a", "8");
  const std::string large = Pod("big", "9", kLimit);
  REQUIRE(small.size() <= kLimit);
  REQUIRE(large.size() > kLimit);
  const std::string expected_error = fmt::format(
      "LIST response with an oversized item: list page: items[1] (ns/big) is {} bytes, larger "
      "than the 1024-byte limit on one object",
      large.size());

  p.informer_->Start();
  p.Run();
  p.client_.ScriptGet(kList, HttpOk(PodList("10", {small, large})));
  p.Run();

  // Reported: the informer's status (what ListResources, /readyz and List's UNAVAILABLE say), a
  // warning, and no watch; nothing of the page reached the cache.
  const core::ReflectorStatus status = p.informer_->status();
  CHECK(status.last_error.code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(status.last_error.message()) == "list: transport error: " + expected_error);
  CHECK(status.consecutive_failures == 1);
  CHECK_FALSE(status.synced);
  CHECK(p.client_.open_watches() == 0);
  CHECK(p.cache_->Stats().object_count == 0);
  CHECK_FALSE(p.cache_->Stats().synced);
  const std::vector<std::string> log = p.Log();
  CHECK(std::find(log.begin(), log.end(), "warning: pods: " + expected_error + "\n") != log.end());

  // Retried after the backoff, as a list-error relist.
  CHECK(p.timers_.armed_durations() == std::vector<milliseconds>{milliseconds(1200)});
  const std::size_t before = p.client_.requests().size();
  p.Advance(milliseconds(1200));
  CHECK(p.client_.RequestLines(before) == std::vector<std::string>{std::string("GET ") + kList});
  CHECK(p.informer_->status().relists[static_cast<std::size_t>(core::RelistReason::kListError)] ==
        1);

  // Items that fit: it syncs and watches.
  const std::string at_limit = Pod("big", "9", 2 * kLimit - large.size());
  REQUIRE(at_limit.size() == kLimit);
  p.client_.ScriptGet(kList, HttpOk(PodList("10", {small, at_limit})));
  p.Run();
  CHECK(p.informer_->status().synced);
  CHECK(p.cache_->Stats().object_count == 2);
  CHECK(p.client_.open_watches() == 1);
}

}  // namespace
}  // namespace informerd::daemon
