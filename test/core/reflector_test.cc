// Specification of core/reflector.*: the list/relist/watch state machine, driven input by input
// with a recording sink, a fake clock and scripted randomness. Each scenario names the
// client-go rule it checks (k8s.io/client-go/tools/cache/reflector.go, tools/pager/pager.go).
#include "core/reflector.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/http_status.h"
#include "test/common/fake_clock.h"
#include "test/common/fake_random_source.h"
#include "test/common/recording_sink.h"

namespace Catch {
template <>
struct StringMaker<informerd::core::ReflectorAction> {
  static std::string convert(const informerd::core::ReflectorAction& action) {
    return informerd::core::DescribeAction(action);
  }
};
}  // namespace Catch

namespace informerd::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Calls = std::vector<std::string>;

// ---- Inputs ------------------------------------------------------------------------------

ObjectRecord Obj(const std::string& name, const std::string& rv) {
  ObjectRecord object;
  object.namespace_name = "shop";
  object.name = name;
  object.uid = "uid-" + name;
  object.resource_version = rv;
  object.json = R"({"metadata":{"name":")" + name + R"(","resourceVersion":")" + rv + R"("}})";
  return object;
}

ListPage Page(const std::string& rv, const std::string& continue_token,
              std::vector<ObjectRecord> items) {
  ListPage page;
  page.metadata.resource_version = rv;
  page.metadata.continue_token = continue_token;
  page.items = std::move(items);
  return page;
}

WatchEvent Event(WatchEventType type, ObjectRecord object) {
  WatchEvent event;
  event.type = type;
  event.object = std::move(object);
  return event;
}
WatchEvent Added(const std::string& name, const std::string& rv) {
  return Event(WatchEventType::kAdded, Obj(name, rv));
}
WatchEvent Modified(const std::string& name, const std::string& rv) {
  return Event(WatchEventType::kModified, Obj(name, rv));
}
WatchEvent Deleted(const std::string& name, const std::string& rv) {
  return Event(WatchEventType::kDeleted, Obj(name, rv));
}
WatchEvent Bookmark(const std::string& rv, bool initial_events_end = false) {
  WatchEvent event;
  event.type = WatchEventType::kBookmark;
  event.resource_version = rv;
  event.initial_events_end = initial_events_end;
  return event;
}
KubeStatus Status(int32_t code, const std::string& reason, const std::string& message) {
  KubeStatus status;
  status.code = code;
  status.status = "Failure";
  status.reason = reason;
  status.message = message;
  return status;
}
WatchEvent ErrorEvent(int32_t code, const std::string& reason, const std::string& message) {
  WatchEvent event;
  event.type = WatchEventType::kError;
  event.status = Status(code, reason, message);
  return event;
}
template <typename... E>
std::vector<WatchEvent> Events(E... events) {
  std::vector<WatchEvent> list;
  (list.push_back(std::move(events)), ...);
  return list;
}

const ApiError kExpired =
    ApiError::Http(410, Status(410, "Expired", "too old resource version: 5 (9)"));
const ApiError kTooLarge =
    ApiError::Http(504, Status(504, "Timeout", "Too large resource version: 90, current: 12"));
const ApiError kRefused = ApiError::Transport("connect: connection refused");

// ---- Expected actions --------------------------------------------------------------------

ReflectorAction List(const std::string& rv, int64_t limit, const std::string& continue_token = "") {
  return ListAction{ListParams{rv, "", limit, continue_token}};
}
// With ScriptedRandomSource's default draw of 0.5, timeoutSeconds is 300 x 1.5.
ReflectorAction Watch(const std::string& rv, int64_t timeout_seconds = 450) {
  return WatchAction{WatchParams{rv, "", timeout_seconds, true, false}};
}
ReflectorAction WatchList(const std::string& rv, int64_t timeout_seconds = 450) {
  return WatchAction{WatchParams{rv, "NotOlderThan", timeout_seconds, true, true}};
}
ReflectorAction Wait(int64_t ms) { return WaitAction{milliseconds(ms)}; }
const ReflectorAction kIdle = IdleAction{};

// ---- The harness -------------------------------------------------------------------------

struct Harness {
  explicit Harness(ReflectorOptions options = {})
      : reflector(std::move(options), sink, clock, random) {}

  // Start, one-page list at `rv` with `names`, watch open: the usual starting point.
  void SyncAt(const std::string& rv, std::vector<ObjectRecord> items = {}) {
    REQUIRE(reflector.Start() == List("0", 500));
    REQUIRE(reflector.OnListPage(Page(rv, "", std::move(items))) == Watch(rv));
    REQUIRE(reflector.OnWatchStarted() == kIdle);
    sink.TakeCalls();
  }

  FakeClock clock;
  ScriptedRandomSource random;
  RecordingSink sink;
  Reflector reflector;
};

ReflectorOptions WatchListOptions() {
  ReflectorOptions options;
  options.use_watch_list = true;
  return options;
}

// ---- Initial sync ------------------------------------------------------------------------

TEST_CASE(
    "the first list asks for resourceVersion 0 with limit 500, then watches from the "
    "list's RV with bookmarks") {
  Harness h;
  CHECK(h.reflector.state() == ReflectorState::kNotStarted);
  CHECK(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.state() == ReflectorState::kListing);
  CHECK(h.reflector.OnListPage(Page("10", "", {Obj("a", "7"), Obj("b", "9")})) == Watch("10"));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a,b; rv=10)", "EndList(10)"});
  CHECK(h.reflector.state() == ReflectorState::kWatching);
  CHECK(h.reflector.resource_version() == "10");
  CHECK(h.reflector.synced());
  CHECK(h.reflector.relist_count(RelistReason::kInitial) == 1);
  CHECK(h.sink.violations().empty());
}

TEST_CASE(
    "three pages are one BeginList, three ListItems and one EndList at the list's RV; "
    "continue requests carry no resourceVersion") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.OnListPage(Page("10", "c1", {Obj("a", "3")})) == List("", 500, "c1"));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=10)"});
  CHECK(h.reflector.OnListPage(Page("10", "c2", {Obj("b", "4")})) == List("", 500, "c2"));
  CHECK(h.sink.TakeCalls() == Calls{"ListItems(b; rv=10)"});
  CHECK_FALSE(h.reflector.synced());
  CHECK(h.reflector.OnListPage(Page("10", "", {Obj("c", "5")})) == Watch("10"));
  CHECK(h.sink.TakeCalls() == Calls{"ListItems(c; rv=10)", "EndList(10)"});
  CHECK(h.reflector.synced());
  CHECK(h.reflector.relist_count(RelistReason::kInitial) == 1);
}

TEST_CASE("the RV the list ends at is the first page's, which the continue token is bound to") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  REQUIRE(h.reflector.OnListPage(Page("10", "c1", {Obj("a", "3")})) == List("", 500, "c1"));
  CHECK(h.reflector.OnListPage(Page("", "", {Obj("b", "4")})) == Watch("10"));
  CHECK(h.sink.TakeCalls() ==
        Calls{"BeginList", "ListItems(a; rv=10)", "ListItems(b; rv=10)", "EndList(10)"});
}

TEST_CASE("an empty list still begins and ends, so the sink deletes what it held") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.OnListPage(Page("10", "", {})) == Watch("10"));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(; rv=10)", "EndList(10)"});
}

// ---- Relists and pagination --------------------------------------------------------------

TEST_CASE("a relist at the last RV asks for no limit, so the watch cache can serve it") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "11"))) == kIdle);
  CHECK(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == Wait(1200));
  CHECK(h.reflector.OnTimer() == List("11", 0));
}

TEST_CASE("a list at RV 0 that came in pages makes every later relist paginate too") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  REQUIRE(h.reflector.OnListPage(Page("10", "c1", {Obj("a", "3")})) == List("", 500, "c1"));
  REQUIRE(h.reflector.OnListPage(Page("10", "", {Obj("b", "4")})) == Watch("10"));
  CHECK(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == Wait(1200));
  CHECK(h.reflector.OnTimer() == List("10", 500));
}

TEST_CASE("an expired continue token restarts the whole list at the requested RV, unpaginated") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  REQUIRE(h.reflector.OnListPage(Page("10", "c1", {Obj("a", "3")})) == List("", 500, "c1"));
  // pager.go: fall back to a full list (no limit, no continue) at the requested RV.
  CHECK(h.reflector.OnListFailed(ApiError::Http(
            410, Status(410, "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result."))) == List("0", 0));
  CHECK(h.reflector.OnListPage(Page("14", "", {Obj("a", "3"), Obj("b", "12")})) == Watch("14"));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=10)", "AbortList", "BeginList",
                                    "ListItems(a,b; rv=14)", "EndList(14)"});
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 1);
  CHECK(h.sink.violations().empty());
  // The server did paginate at RV 0 (client-go's paginatedResult): relists keep paginating.
  REQUIRE(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == Wait(1200));
  CHECK(h.reflector.OnTimer() == List("14", 500));
}

TEST_CASE(
    "a relist at the last RV that fails as expired falls back at once to a consistent "
    "read (RV \"\"), then relists at the last RV again after that succeeds") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(h.reflector.OnWatchEvents(Events(Modified("a", "20"))) == kIdle);
  REQUIRE(h.reflector.OnWatchEnded(kExpired, true) == Wait(1200));
  REQUIRE(h.reflector.OnTimer() == List("20", 0));
  CHECK(h.reflector.OnListFailed(kExpired) == List("", 500));
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 2);
  CHECK(h.reflector.OnListPage(Page("30", "", {Obj("a", "25")})) == Watch("30"));

  // isLastSyncResourceVersionUnavailable is cleared by the successful list.
  REQUIRE(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == Wait(2400));
  CHECK(h.reflector.OnTimer() == List("30", 0));
}

TEST_CASE("a list at an RV the server has not reached yet (too large) falls back to RV \"\"") {
  Harness h;
  h.SyncAt("90");
  REQUIRE(h.reflector.OnWatchEnded(kExpired, false) == Wait(1200));
  REQUIRE(h.reflector.OnTimer() == List("90", 0));
  CHECK(h.reflector.OnListFailed(kTooLarge) == List("", 500));
}

TEST_CASE("a consistent list (RV \"\") that fails as expired backs off instead of looping") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(h.reflector.OnWatchEnded(kExpired, false) == Wait(1200));
  REQUIRE(h.reflector.OnTimer() == List("10", 0));
  REQUIRE(h.reflector.OnListFailed(kExpired) == List("", 500));
  CHECK(h.reflector.OnListFailed(kExpired) == Wait(2400));
  CHECK(h.reflector.state() == ReflectorState::kBackingOff);
  // Still unavailable: the retry is a consistent read again.
  CHECK(h.reflector.OnTimer() == List("", 500));
}

TEST_CASE("a failed list aborts the pages delivered so far and retries after a backoff") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  REQUIRE(h.reflector.OnListPage(Page("10", "c1", {Obj("a", "3")})) == List("", 500, "c1"));
  CHECK(h.reflector.OnListFailed(ApiError::Http(500, Status(500, "InternalError", "etcd down"))) ==
        Wait(1200));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=10)", "AbortList"});
  CHECK(h.reflector.state() == ReflectorState::kBackingOff);
  CHECK(h.reflector.consecutive_failures() == 1);
  CHECK(h.reflector.OnTimer() == List("0", 500));
  CHECK(h.reflector.relist_count(RelistReason::kListError) == 1);
}

TEST_CASE("a list that fails before its first page costs the sink nothing") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.OnListFailed(kRefused) == Wait(1200));
  CHECK(h.sink.TakeCalls().empty());
}

// ---- Watch events ------------------------------------------------------------------------

TEST_CASE("watch events reach the sink in order and each one moves the RV") {
  Harness h;
  h.SyncAt("10", {Obj("a", "5")});
  CHECK(h.reflector.OnWatchEvents(Events(Added("b", "11"), Modified("a", "12"))) == kIdle);
  CHECK(h.reflector.OnWatchEvents(Events(Deleted("b", "13"))) == kIdle);
  CHECK(h.sink.TakeCalls() == Calls{"ADDED b@11", "MODIFIED a@12", "DELETED b@13"});
  CHECK(h.reflector.resource_version() == "13");
  CHECK(h.sink.violations().empty());
}

TEST_CASE("bookmarks move the RV without touching objects, and the next watch resumes there") {
  Harness h;
  h.SyncAt("10", {Obj("a", "5")});
  CHECK(h.reflector.OnWatchEvents(Events(Bookmark("50"))) == kIdle);
  CHECK(h.reflector.resource_version() == "50");
  CHECK(h.sink.TakeCalls() == Calls{"BOOKMARK 50"});
  CHECK(h.sink.objects().size() == 1);
  h.clock.Advance(seconds(450));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, true) == Watch("50"));
}

TEST_CASE("the watch timeout is drawn from [300 s, 600 s)") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  h.random.Script({0.0});
  CHECK(h.reflector.OnListPage(Page("10", "", {})) == Watch("10", 300));
  h.clock.Advance(seconds(300));
  h.random.Script({0.999999});
  CHECK(h.reflector.OnWatchEnded(std::nullopt, false) == Watch("10", 599));
}

TEST_CASE("a watch that ends normally is re-opened from the last RV at once, without a relist") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "11"))) == kIdle);
  h.clock.Advance(seconds(450));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, true) == Watch("11"));
  CHECK(h.reflector.watch_restarts() == 1);
  // A quiet watch that lasted is healthy too.
  h.clock.Advance(seconds(450));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, false) == Watch("11"));
  CHECK(h.reflector.watch_restarts() == 2);
  CHECK(h.sink.TakeCalls() == Calls{"ADDED a@11"});
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 0);
  CHECK(h.reflector.consecutive_failures() == 0);
}

TEST_CASE(
    "a watch that closes within a second with no events is a failure: back off, then "
    "re-watch from the same RV") {
  Harness h;
  h.SyncAt("10");
  h.clock.Advance(milliseconds(300));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, false) == Wait(1200));
  CHECK(h.reflector.state() == ReflectorState::kBackingOff);
  CHECK(h.reflector.consecutive_failures() == 1);
  CHECK(std::string(h.reflector.last_error().message()).find("very short watch") !=
        std::string::npos);
  CHECK(h.reflector.OnTimer() == Watch("10"));
  CHECK(h.reflector.watch_restarts() == 1);
  CHECK(h.sink.TakeCalls().empty());
}

TEST_CASE("a watch that closes within a second after delivering events is not a failure") {
  Harness h;
  h.SyncAt("10");
  h.clock.Advance(milliseconds(300));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, true) == Watch("10"));
}

// ---- 410: relist -------------------------------------------------------------------------

TEST_CASE(
    "an ERROR event 410 Expired relists at the last RV after one backoff step; the "
    "events before it in the same batch are applied") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEvents(Events(Added("a", "11"), Modified("a", "12"),
                                         ErrorEvent(410, "Expired", "too old resource version"))) ==
        Wait(1200));
  CHECK(h.sink.TakeCalls() == Calls{"ADDED a@11", "MODIFIED a@12"});
  CHECK(h.reflector.state() == ReflectorState::kBackingOff);
  CHECK(h.reflector.OnTimer() == List("12", 0));
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 1);
  CHECK(h.reflector.OnListPage(Page("40", "", {Obj("a", "30")})) == Watch("40"));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=40)", "EndList(40)"});
}

TEST_CASE("an ERROR event with reason Gone (servers before 1.18) relists like Expired") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Gone", "too old resource version"))) ==
        Wait(1200));
  CHECK(h.reflector.OnTimer() == List("10", 0));
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 1);
}

TEST_CASE("HTTP 410 on the watch request relists at the last RV") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEnded(ApiError::Http(410), false) == Wait(1200));
  CHECK(h.reflector.OnTimer() == List("10", 0));
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 1);
}

TEST_CASE("events after an ERROR event in the same batch are not applied") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEvents(
            Events(ErrorEvent(410, "Expired", "too old"), Added("a", "11"))) == Wait(1200));
  CHECK(h.sink.TakeCalls().empty());
  CHECK(h.reflector.resource_version() == "10");
}

// ---- Other watch failures: re-watch, no relist -------------------------------------------

TEST_CASE(
    "connection refused on the watch backs off and re-watches from the last RV, no "
    "relist") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "11"))) == kIdle);
  CHECK(h.reflector.OnWatchEnded(kRefused, true) == Wait(1200));
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kUnavailable);
  CHECK(h.reflector.OnTimer() == Watch("11"));
  CHECK(h.reflector.OnWatchEnded(kRefused, false) == Wait(2400));
  CHECK(h.reflector.OnTimer() == Watch("11"));
  CHECK(h.sink.TakeCalls() == Calls{"ADDED a@11"});
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 0);
  CHECK(h.reflector.relist_count(RelistReason::kWatchError) == 0);
  CHECK(h.reflector.watch_restarts() == 2);
}

TEST_CASE("an ERROR event other than 410 backs off and re-watches without relisting") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEvents(Events(ErrorEvent(500, "InternalError", "etcd leader lost"))) ==
        Wait(1200));
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kInternal);
  CHECK(std::string(h.reflector.last_error().message()) ==
        "watch: watch ERROR event 500 InternalError: etcd leader lost");
  CHECK(h.reflector.OnTimer() == Watch("10"));
}

TEST_CASE("404 on the watch relists after a backoff, and the relist tells whether it is gone") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEnded(ApiError::Http(404, Status(404, "NotFound", "not found")),
                                 false) == Wait(1200));
  CHECK(h.reflector.OnTimer() == List("10", 0));
  CHECK(h.reflector.relist_count(RelistReason::kWatchError) == 1);
}

// ---- Backoff, Retry-After, credentials ---------------------------------------------------

TEST_CASE("repeated failures back off exponentially, and 2 minutes of health reset the backoff") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEnded(kRefused, false) == Wait(1200));  // 800 x 1.5
  CHECK(h.reflector.OnTimer() == Watch("10"));
  CHECK(h.reflector.OnWatchEnded(kRefused, false) == Wait(2400));  // 1600 x 1.5
  CHECK(h.reflector.OnTimer() == Watch("10"));
  h.random.Script({0.0});  // the lower bound of the jitter
  CHECK(h.reflector.OnWatchEnded(kRefused, false) == Wait(3200));
  CHECK(h.reflector.OnTimer() == Watch("10"));
  h.random.Script({0.999999});  // the upper bound
  CHECK(h.reflector.OnWatchEnded(kRefused, false) == Wait(12799));
  CHECK(h.reflector.consecutive_failures() == 4);
  CHECK(h.reflector.OnTimer() == Watch("10"));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "11"))) == kIdle);
  CHECK(h.reflector.consecutive_failures() == 0);

  // Healthy for over 2 minutes: the next failure starts from 800 ms again.
  h.clock.Advance(seconds(121));
  CHECK(h.reflector.OnWatchEnded(kRefused, true) == Wait(1200));
}

TEST_CASE("backoff is not reset by a success alone: failures within 2 minutes keep growing it") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEnded(kRefused, false) == Wait(1200));
  CHECK(h.reflector.OnTimer() == Watch("10"));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "11"))) == kIdle);
  h.clock.Advance(seconds(60));
  CHECK(h.reflector.OnWatchEnded(kRefused, true) == Wait(2400));
}

TEST_CASE("Retry-After on 429 makes the wait at least that long") {
  Harness h;
  h.SyncAt("10");
  const ApiError throttled =
      ApiError::Http(429, Status(429, "TooManyRequests", "too many requests"), seconds(7));
  CHECK(h.reflector.OnWatchEnded(throttled, false) == Wait(7000));
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kResourceExhausted);
  CHECK(h.reflector.OnTimer() == Watch("10"));
  // A Retry-After shorter than the backoff does not shorten it.
  CHECK(h.reflector.OnWatchEnded(
            ApiError::Http(429, Status(429, "TooManyRequests", "slow down"), seconds(1)), false) ==
        Wait(2400));
}

TEST_CASE("Retry-After on 503 is honoured on lists too, and bounded by max_retry_after") {
  ReflectorOptions options;
  options.max_retry_after = seconds(60);
  Harness h(options);
  REQUIRE(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.OnListFailed(ApiError::Http(503, std::nullopt, seconds(20))) == Wait(20000));
  CHECK(h.reflector.OnTimer() == List("0", 500));
  CHECK(h.reflector.OnListFailed(ApiError::Http(503, std::nullopt, seconds(3600))) == Wait(60000));
}

TEST_CASE("Retry-After is only honoured with 429 and 503") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.OnListFailed(ApiError::Http(500, std::nullopt, seconds(20))) == Wait(1200));
}

TEST_CASE(
    "401 and 403 keep retrying with backoff, report the failing credentials, and a "
    "success clears the report") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.OnListFailed(ApiError::Http(
            403, Status(403, "Forbidden",
                        "pods is forbidden: User \"system:anonymous\" cannot list resource "
                        "\"pods\""))) == Wait(1200));
  CHECK(h.reflector.auth_failing());
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kPermissionDenied);
  CHECK(std::string(h.reflector.last_error().message()) ==
        "list: HTTP 403 Forbidden: pods is forbidden: User \"system:anonymous\" cannot list "
        "resource \"pods\"");
  CHECK(h.reflector.OnTimer() == List("0", 500));
  CHECK(h.reflector.OnListFailed(
            ApiError::Http(401, Status(401, "Unauthorized", "Unauthorized"))) == Wait(2400));
  CHECK(h.reflector.auth_failing());
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kUnauthenticated);
  CHECK(h.reflector.consecutive_failures() == 2);
  CHECK(h.reflector.OnTimer() == List("0", 500));
  CHECK(h.reflector.OnListPage(Page("10", "", {})) == Watch("10"));
  CHECK_FALSE(h.reflector.auth_failing());
  CHECK(h.reflector.consecutive_failures() == 0);
  // The last error stays visible after recovery.
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("403 on the watch re-watches after a backoff and reports the credentials") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.OnWatchEnded(ApiError::Http(403, Status(403, "Forbidden", "forbidden")),
                                 false) == Wait(1200));
  CHECK(h.reflector.auth_failing());
  CHECK(h.reflector.OnTimer() == Watch("10"));
}

// ---- 404: the resource is gone -----------------------------------------------------------

TEST_CASE(
    "404 on the list marks the resource gone and unsynced, retries every gone interval, "
    "and starts over with a list when it is back") {
  Harness h;
  h.SyncAt("10", {Obj("a", "5")});
  // The CRD is deleted: the watch ends, re-watching finds nothing, the relist finds nothing.
  CHECK(h.reflector.OnWatchEnded(ApiError::Http(404), false) == Wait(1200));
  CHECK(h.reflector.OnTimer() == List("10", 0));
  CHECK(h.reflector.OnListFailed(ApiError::Http(404, Status(404, "NotFound",
                                                            "the server could not find the "
                                                            "requested resource"))) == Wait(30000));
  CHECK(h.sink.TakeCalls() == Calls{"MarkUnsynced(resource no longer served by the apiserver)"});
  CHECK(h.reflector.resource_gone());
  CHECK_FALSE(h.reflector.synced());
  CHECK(h.reflector.state() == ReflectorState::kGone);
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kNotFound);

  // Still gone: try again later, without telling the sink again.
  CHECK(h.reflector.OnTimer() == List("10", 0));
  CHECK(h.reflector.OnListFailed(ApiError::Http(404)) == Wait(30000));
  CHECK(h.sink.TakeCalls().empty());

  // Back (the CRD was re-created): a full list, then a watch.
  CHECK(h.reflector.OnTimer() == List("10", 0));
  CHECK(h.reflector.OnListPage(Page("60", "", {Obj("b", "55")})) == Watch("60"));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(b; rv=60)", "EndList(60)"});
  CHECK_FALSE(h.reflector.resource_gone());
  CHECK(h.reflector.synced());
  CHECK(h.reflector.state() == ReflectorState::kWatching);
  CHECK(h.reflector.relist_count(RelistReason::kRediscovery) == 2);
  CHECK(h.sink.objects().size() == 1);
}

TEST_CASE("404 on the first list is gone too, with its own retry interval") {
  ReflectorOptions options;
  options.gone_retry_interval = seconds(5);
  Harness h(options);
  REQUIRE(h.reflector.Start() == List("0", 500));
  CHECK(h.reflector.OnListFailed(ApiError::Http(404)) == Wait(5000));
  CHECK(h.reflector.resource_gone());
  CHECK(h.reflector.OnTimer() == List("0", 500));
}

TEST_CASE("404 on a continue page abandons the partial list before going gone") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  REQUIRE(h.reflector.OnListPage(Page("10", "c1", {Obj("a", "3")})) == List("", 500, "c1"));
  CHECK(h.reflector.OnListFailed(ApiError::Http(404)) == Wait(30000));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=10)", "AbortList",
                                    "MarkUnsynced(resource no longer served by the apiserver)"});
  CHECK(h.sink.violations().empty());
}

// ---- WatchList ---------------------------------------------------------------------------

TEST_CASE(
    "WatchList: initial ADDED events go to the sink as list items in their batches, the "
    "initial-events-end bookmark ends the list, and the same stream goes on live") {
  Harness h(WatchListOptions());
  CHECK(h.reflector.Start() == WatchList(""));
  CHECK(h.reflector.state() == ReflectorState::kListing);
  CHECK(h.reflector.OnWatchStarted() == kIdle);
  CHECK(h.reflector.OnWatchEvents(Events(Added("a", "3"), Added("b", "7"))) == kIdle);
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a,b; rv=)"});
  CHECK_FALSE(h.reflector.synced());
  CHECK(h.reflector.resource_version().empty());
  CHECK(h.reflector.OnWatchEvents(
            Events(Added("c", "8"), Bookmark("20", true), Modified("a", "21"))) == kIdle);
  CHECK(h.sink.TakeCalls() == Calls{"ListItems(c; rv=)", "EndList(20)", "MODIFIED a@21"});
  CHECK(h.reflector.synced());
  CHECK(h.reflector.state() == ReflectorState::kWatching);
  CHECK(h.reflector.resource_version() == "21");
  CHECK(h.reflector.relist_count(RelistReason::kInitial) == 1);
  CHECK(h.sink.violations().empty());

  // When the stream times out, a plain watch follows from the last RV.
  h.clock.Advance(seconds(450));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, true) == Watch("21"));
}

TEST_CASE("WatchList: an empty initial state is just the bookmark") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  CHECK(h.reflector.OnWatchEvents(Events(Bookmark("20", true))) == kIdle);
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "EndList(20)"});
  CHECK(h.reflector.synced());
}

TEST_CASE("WatchList: a bookmark without the end annotation does not end the initial state") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  CHECK(h.reflector.OnWatchEvents(Events(Added("a", "3"), Bookmark("15"))) == kIdle);
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=)"});
  CHECK_FALSE(h.reflector.synced());
  CHECK(h.reflector.resource_version().empty());
}

TEST_CASE("WatchList rejected with 422 (servers before 1.27) falls back to LIST for good") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  CHECK(h.reflector.OnWatchEnded(
            ApiError::Http(422, Status(422, "Invalid",
                                       "ListOptions.meta.k8s.io \"\" is invalid: "
                                       "resourceVersionMatch: Forbidden: resourceVersionMatch "
                                       "is forbidden for watch")),
            false) == List("0", 500));
  CHECK_FALSE(h.reflector.using_watch_list());
  CHECK(h.reflector.relist_count(RelistReason::kWatchListFallback) == 1);
  REQUIRE(h.reflector.OnListPage(Page("10", "", {Obj("a", "3")})) == Watch("10"));
  // Later relists are plain LISTs too.
  REQUIRE(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == Wait(1200));
  CHECK(h.reflector.OnTimer() == List("10", 0));
}

TEST_CASE("WatchList rejected with 400 falls back to LIST as well") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  CHECK(h.reflector.OnWatchEnded(ApiError::Http(400), false) == List("0", 500));
}

TEST_CASE(
    "WatchList ignored by the server (a MODIFIED before the end bookmark) abandons the "
    "partial state and falls back to LIST") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "3"))) == kIdle);
  CHECK(h.reflector.OnWatchEvents(Events(Added("b", "4"), Modified("a", "9"))) == List("0", 500));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=)", "AbortList"});
  CHECK_FALSE(h.reflector.using_watch_list());
  CHECK(h.sink.violations().empty());
}

TEST_CASE(
    "WatchList ignored by the server (no bookmark, then a pause in the events) falls back "
    "to LIST") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "3"))) == kIdle);
  h.clock.Advance(seconds(2));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("b", "4"))) == kIdle);
  h.clock.Advance(seconds(10));
  CHECK(h.reflector.OnWatchEvents(Events(Added("c", "12"))) == List("0", 500));
  CHECK(h.sink.TakeCalls() ==
        Calls{"BeginList", "ListItems(a; rv=)", "ListItems(b; rv=)", "AbortList"});
}

TEST_CASE(
    "WatchList stream that runs to its timeout without the bookmark (the server ignored "
    "sendInitialEvents) falls back to LIST") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "3"))) == kIdle);
  h.clock.Advance(seconds(450));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, true) == List("0", 500));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=)", "AbortList"});
  CHECK_FALSE(h.reflector.using_watch_list());
}

TEST_CASE(
    "WatchList stream closed cleanly early, before its bookmark (an apiserver shutting "
    "down), is retried as WatchList after a backoff") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "3"))) == kIdle);
  h.clock.Advance(seconds(20));
  CHECK(h.reflector.OnWatchEnded(std::nullopt, true) == Wait(1200));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=)", "AbortList"});
  CHECK(h.reflector.using_watch_list());
  CHECK(h.reflector.consecutive_failures() == 1);
  CHECK(h.reflector.OnTimer() == WatchList(""));
}

TEST_CASE("WatchList cut by a transport error is retried as WatchList after a backoff") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "3"))) == kIdle);
  CHECK(h.reflector.OnWatchEnded(ApiError::Transport("connection reset by peer"), true) ==
        Wait(1200));
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=)", "AbortList"});
  CHECK(h.reflector.using_watch_list());
  CHECK(h.reflector.OnTimer() == WatchList(""));
}

TEST_CASE(
    "WatchList: after a 410 the relist is a WatchList at the last RV, and if that RV has "
    "expired too, a WatchList at RV \"\" at once") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  REQUIRE(h.reflector.OnWatchEvents(Events(Added("a", "3"), Bookmark("20", true))) == kIdle);
  REQUIRE(h.reflector.OnWatchEvents(Events(Modified("a", "22"))) == kIdle);
  CHECK(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == Wait(1200));
  CHECK(h.reflector.OnTimer() == WatchList("22"));
  CHECK(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == WatchList(""));
  CHECK(h.reflector.relist_count(RelistReason::kExpired) == 2);
  CHECK(h.reflector.OnWatchEvents(Events(Added("a", "30"), Bookmark("31", true))) == kIdle);
  CHECK(h.reflector.resource_version() == "31");
  h.sink.TakeCalls();
  // Available again: the next relist resumes at the last RV.
  CHECK(h.reflector.OnWatchEnded(kExpired, true) == Wait(2400));
  CHECK(h.reflector.OnTimer() == WatchList("31"));
}

TEST_CASE("WatchList: 404 marks the resource gone, like a list") {
  Harness h(WatchListOptions());
  REQUIRE(h.reflector.Start() == WatchList(""));
  CHECK(h.reflector.OnWatchEnded(ApiError::Http(404), false) == Wait(30000));
  CHECK(h.reflector.resource_gone());
  CHECK(h.reflector.OnTimer() == WatchList(""));
}

// ---- Stop and late inputs ----------------------------------------------------------------

TEST_CASE("Stop abandons a list in progress, and every later input answers Stopped") {
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  REQUIRE(h.reflector.OnListPage(Page("10", "c1", {Obj("a", "3")})) == List("", 500, "c1"));
  const ReflectorAction stopped = StoppedAction{"informer removed from the configuration"};
  CHECK(h.reflector.Stop("informer removed from the configuration") == stopped);
  CHECK(h.sink.TakeCalls() == Calls{"BeginList", "ListItems(a; rv=10)", "AbortList"});
  CHECK(h.reflector.state() == ReflectorState::kStopped);
  CHECK(h.reflector.OnListPage(Page("10", "", {Obj("b", "4")})) == stopped);
  CHECK(h.reflector.OnTimer() == stopped);
  CHECK(h.reflector.OnWatchEvents(Events(Added("c", "11"))) == stopped);
  CHECK(h.reflector.Start() == stopped);
  CHECK(h.reflector.Stop("again") == stopped);
  CHECK(h.sink.TakeCalls().empty());
}

TEST_CASE("Stop while watching leaves the sink alone") {
  Harness h;
  h.SyncAt("10");
  CHECK(h.reflector.Stop() == ReflectorAction{StoppedAction{"stop requested"}});
  CHECK(h.sink.TakeCalls().empty());
}

TEST_CASE("inputs for a request the reflector has moved past change nothing") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(h.reflector.OnWatchEvents(Events(ErrorEvent(410, "Expired", "too old"))) == Wait(1200));
  // The driver closes the stream; anything still in flight from it is ignored.
  CHECK(h.reflector.OnWatchEvents(Events(Added("a", "11"))) == kIdle);
  CHECK(h.reflector.OnWatchEnded(kRefused, true) == kIdle);
  CHECK(h.reflector.OnListPage(Page("11", "", {})) == kIdle);
  CHECK(h.reflector.OnListFailed(kRefused) == kIdle);
  CHECK(h.reflector.Start() == kIdle);
  CHECK(h.reflector.state() == ReflectorState::kBackingOff);
  CHECK(h.sink.TakeCalls().empty());
  CHECK(h.reflector.OnTimer() == List("10", 0));
  CHECK(h.reflector.OnTimer() == kIdle);  // a second, stale timer
}

// ---- Status ------------------------------------------------------------------------------

TEST_CASE("status() reports state, RV, the last error, relists by reason and watch restarts") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(h.reflector.OnWatchEnded(kRefused, false) == Wait(1200));
  ReflectorStatus status = h.reflector.status();
  CHECK(status.state == ReflectorState::kBackingOff);
  CHECK(std::string(ReflectorStateName(status.state)) == "backing-off");
  CHECK(status.resource_version == "10");
  CHECK(status.synced);
  CHECK_FALSE(status.resource_gone);
  CHECK_FALSE(status.auth_failing);
  CHECK_FALSE(status.using_watch_list);
  CHECK(std::string(status.last_error.message()) ==
        "watch: transport error: connect: connection refused");
  CHECK(status.consecutive_failures == 1);
  CHECK(status.relists[static_cast<std::size_t>(RelistReason::kInitial)] == 1);
  REQUIRE(h.reflector.OnTimer() == Watch("10"));
  REQUIRE(h.reflector.OnWatchEnded(kExpired, false) == Wait(2400));
  REQUIRE(h.reflector.OnTimer() == List("10", 0));
  status = h.reflector.status();
  CHECK(status.state == ReflectorState::kListing);
  CHECK(status.watch_restarts == 1);
  CHECK(status.consecutive_failures == 2);
  CHECK(status.relists[static_cast<std::size_t>(RelistReason::kExpired)] == 1);
  CHECK(std::string(RelistReasonName(RelistReason::kExpired)) == "expired");
}

// ---- Values ------------------------------------------------------------------------------

TEST_CASE("actions describe themselves for logs") {
  CHECK(DescribeAction(List("0", 500)) == "List{resourceVersion=\"0\" limit=500}");
  CHECK(DescribeAction(List("", 500, "tok")) ==
        "List{resourceVersion=\"\" limit=500 continue=\"tok\"}");
  CHECK(DescribeAction(Watch("10", 300)) ==
        "Watch{resourceVersion=\"10\" timeoutSeconds=300 allowWatchBookmarks}");
  CHECK(DescribeAction(WatchList("", 300)) ==
        "Watch{resourceVersion=\"\" timeoutSeconds=300 allowWatchBookmarks sendInitialEvents "
        "resourceVersionMatch=NotOlderThan}");
  CHECK(DescribeAction(Wait(1200)) == "Wait{1200ms}");
  CHECK(DescribeAction(kIdle) == "Idle");
  CHECK(DescribeAction(ReflectorAction{StoppedAction{"bye"}}) == "Stopped{bye}");
}

// The API client maps the same HTTP answers with the same table (HttpResult::status), so an
// error reads the same in a Get()'s result and in the reflector's status.
TEST_CASE("a failed list reports the code of core/http_status.h's table for its HTTP status") {
  for (int http_status :
       {400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500, 501, 502, 503, 504, 507}) {
    INFO(http_status);
    Harness h;
    REQUIRE(h.reflector.Start() == List("0", 500));
    ApiError error = ApiError::Http(http_status);  // A proxy's answer: no Status body.
    error.message = "from a proxy";
    h.reflector.OnListFailed(error);
    CHECK(absl::StatusCodeToString(h.reflector.last_error().code()) ==
          absl::StatusCodeToString(StatusCodeForHttpError(http_status)));
  }
  Harness h;
  REQUIRE(h.reflector.Start() == List("0", 500));
  ApiError bad_gateway = ApiError::Http(502);
  bad_gateway.message = "Bad Gateway";
  CHECK(h.reflector.OnListFailed(bad_gateway) == Wait(1200));
  CHECK(h.reflector.last_error().code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(h.reflector.last_error().message()) == "list: HTTP 502: Bad Gateway");
}

TEST_CASE("a watch ERROR event reports the code of the table for its Status code") {
  for (int code : {405, 500, 501, 502, 503}) {
    INFO(code);
    Harness h;
    h.SyncAt("10");
    h.reflector.OnWatchEvents(Events(ErrorEvent(code, "", "scripted")));
    CHECK(absl::StatusCodeToString(h.reflector.last_error().code()) ==
          absl::StatusCodeToString(StatusCodeForHttpError(code)));
  }
}

TEST_CASE("an ApiError describes itself with the server's Status message and maps to a code") {
  CHECK(kExpired.code() == 410);
  CHECK(kExpired.Describe() == "HTTP 410 Expired: too old resource version: 5 (9)");
  CHECK(kExpired.ToStatus().code() == absl::StatusCode::kOutOfRange);
  CHECK(kRefused.Describe() == "transport error: connect: connection refused");
  CHECK(kRefused.ToStatus().code() == absl::StatusCode::kUnavailable);
  ApiError proxy = ApiError::Http(502);
  proxy.message = "Bad Gateway";
  CHECK(proxy.Describe() == "HTTP 502: Bad Gateway");
  CHECK(ApiError::WatchErrorEvent(Status(410, "Gone", "too old")).Describe() ==
        "watch ERROR event 410 Gone: too old");
  CHECK(kTooLarge.ToStatus().code() == absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace informerd::core
