// Specification of the reflector's freshness (core/reflector.h, ReflectorStatus::watch_open,
// confirmed_at, staleness and stale): how stale the cached data may be, measured with the
// injected clock. An open watch keeps it current; otherwise it dates from the last confirmation
// (a list's end, an event or bookmark, the end of a watch that worked), and past
// ReflectorOptions::max_staleness the status says why it is stale, naming the upstream error.
// Durations and optionals print as values in failures.
#define CATCH_CONFIG_ENABLE_CHRONO_STRINGMAKER
#define CATCH_CONFIG_ENABLE_OPTIONAL_STRINGMAKER
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/reflector.h"
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
using std::chrono::minutes;
using std::chrono::seconds;
using Duration = Clock::TimePoint::duration;

ObjectRecord Obj(const std::string& name, const std::string& rv) {
  ObjectRecord object;
  object.namespace_name = "shop";
  object.name = name;
  object.uid = "uid-" + name;
  object.resource_version = rv;
  object.json = R"({"metadata":{"name":")" + name + R"(","resourceVersion":")" + rv + R"("}})";
  return object;
}

ListPage Page(const std::string& rv, std::vector<ObjectRecord> items = {}) {
  ListPage page;
  page.metadata.resource_version = rv;
  page.items = std::move(items);
  return page;
}

std::vector<WatchEvent> Modified(const std::string& name, const std::string& rv) {
  WatchEvent event;
  event.type = WatchEventType::kModified;
  event.object = Obj(name, rv);
  std::vector<WatchEvent> events;
  events.push_back(std::move(event));
  return events;
}

std::vector<WatchEvent> Bookmark(const std::string& rv, bool initial_events_end = false) {
  WatchEvent event;
  event.type = WatchEventType::kBookmark;
  event.resource_version = rv;
  event.initial_events_end = initial_events_end;
  std::vector<WatchEvent> events;
  events.push_back(std::move(event));
  return events;
}

std::vector<WatchEvent> InitialAdded(const std::string& name, const std::string& rv) {
  WatchEvent event;
  event.type = WatchEventType::kAdded;
  event.object = Obj(name, rv);
  std::vector<WatchEvent> events;
  events.push_back(std::move(event));
  return events;
}

KubeStatus Status(int32_t code, const std::string& reason, const std::string& message) {
  KubeStatus status;
  status.code = code;
  status.status = "Failure";
  status.reason = reason;
  status.message = message;
  return status;
}

const char kForbiddenMessage[] =
    "pods is forbidden: User \"system:serviceaccount:infra:informerd\" cannot watch resource "
    "\"pods\" in API group \"\" at the cluster scope";
const ApiError kForbidden = ApiError::Http(403, Status(403, "Forbidden", kForbiddenMessage));
const ApiError kExpired = ApiError::Http(410, Status(410, "Expired", "too old resource version"));
const ApiError kReset = ApiError::Transport("read: connection reset by peer");

// With ScriptedRandomSource's default draw of 0.5, timeoutSeconds is 300 x 1.5.
ReflectorAction Watch(const std::string& rv) {
  return WatchAction{WatchParams{rv, "", 450, true, false}};
}

struct Harness {
  explicit Harness(ReflectorOptions options = {})
      : reflector(std::move(options), sink, clock, random) {}

  // Start, a one-page list at `rv`, the watch opened and accepted.
  void SyncAt(const std::string& rv) {
    REQUIRE(std::holds_alternative<ListAction>(reflector.Start()));
    REQUIRE(reflector.OnListPage(Page(rv)) == Watch(rv));
    REQUIRE(std::holds_alternative<IdleAction>(reflector.OnWatchStarted()));
  }
  std::optional<Duration> Staleness() const { return reflector.status().staleness; }
  std::string Stale() const { return reflector.status().stale; }

  FakeClock clock;
  ScriptedRandomSource random;
  RecordingSink sink;
  Reflector reflector;
};

TEST_CASE("before the first sync there is no staleness: not synced is its own state") {
  Harness h;
  CHECK_FALSE(h.Staleness().has_value());
  REQUIRE(std::holds_alternative<ListAction>(h.reflector.Start()));
  h.clock.Advance(minutes(20));
  CHECK_FALSE(h.Staleness().has_value());
  CHECK(h.Stale().empty());
  // A list that keeps failing (403) never makes the resource "stale": it is not synced.
  REQUIRE(std::holds_alternative<WaitAction>(h.reflector.OnListFailed(kForbidden)));
  h.clock.Advance(minutes(20));
  CHECK_FALSE(h.Staleness().has_value());
  CHECK(h.Stale().empty());
}

TEST_CASE(
    "an open watch keeps the data current however quiet it is; before the apiserver accepts it, "
    "the data dates from the list's end") {
  Harness h;
  REQUIRE(std::holds_alternative<ListAction>(h.reflector.Start()));
  h.clock.Advance(seconds(30));  // a long list
  REQUIRE(h.reflector.OnListPage(Page("10")) == Watch("10"));
  CHECK_FALSE(h.reflector.status().watch_open);
  CHECK(h.Staleness() == Duration::zero());
  h.clock.Advance(seconds(2));  // the watch's headers take their time
  CHECK(h.Staleness() == seconds(2));
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchStarted()));
  CHECK(h.reflector.status().watch_open);
  CHECK(h.Staleness() == Duration::zero());
  // Hours without an event or a bookmark: still current, as long as the watch is open.
  h.clock.Advance(minutes(90));
  CHECK(h.Staleness() == Duration::zero());
  CHECK(h.Stale().empty());
}

TEST_CASE(
    "a watch that keeps failing with 403: staleness grows from the moment the open watch broke, "
    "past maxStaleness the status says so with the 403, and a watch that opens again makes it "
    "current") {
  Harness h;  // maxStaleness: the default 5 minutes
  h.SyncAt("10");
  h.clock.Advance(minutes(7));
  // The open watch ends at its timeout, confirming the data until now; meanwhile the apiserver's
  // RBAC changed, and the rewatch is refused.
  REQUIRE(h.reflector.OnWatchEnded(std::nullopt, false) == Watch("10"));
  REQUIRE(h.reflector.OnWatchEnded(kForbidden, false) ==
          ReflectorAction(WaitAction{milliseconds(1200)}));
  CHECK_FALSE(h.reflector.status().watch_open);
  CHECK(h.Staleness() == Duration::zero());

  // Every rewatch is refused: none of them was ever open, so none confirms anything.
  Duration since_break{};
  milliseconds wait(1200);
  while (since_break + wait < minutes(5)) {
    h.clock.Advance(wait);
    since_break += wait;
    REQUIRE(h.reflector.OnTimer() == Watch("10"));
    const ReflectorAction next = h.reflector.OnWatchEnded(kForbidden, false);
    REQUIRE(std::holds_alternative<WaitAction>(next));
    wait = std::get<WaitAction>(next).duration;
    CHECK(h.Staleness() == since_break);
    CHECK(h.Stale().empty());
  }
  REQUIRE(since_break > minutes(2));  // several rewatches were refused
  h.clock.Advance(minutes(5) - since_break);
  CHECK(h.Staleness() == minutes(5));
  CHECK(h.Stale().empty());  // not past the bound yet

  h.clock.Advance(seconds(1));
  const ReflectorStatus stale = h.reflector.status();
  CHECK(stale.staleness == minutes(5) + seconds(1));
  CHECK(stale.synced);
  CHECK(stale.stale ==
        std::string("no update confirmed by the apiserver for 301 s, longer than maxStaleness "
                    "(300 s): watch: HTTP 403 Forbidden: ") +
            kForbiddenMessage);

  // RBAC fixed: the next watch is accepted, and the data is current again.
  REQUIRE(h.reflector.OnTimer() == Watch("10"));
  CHECK(h.Staleness() == minutes(5) + seconds(1));  // not accepted yet
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchStarted()));
  CHECK(h.Staleness() == Duration::zero());
  CHECK(h.Stale().empty());
  // The accepted watch ends the failure: nothing is left to explain.
  CHECK(h.reflector.status().current_error().ok());
  CHECK_FALSE(h.reflector.status().auth_failing);
}

TEST_CASE("with maxStaleness 0 the data is never called stale, though its staleness is reported") {
  ReflectorOptions options;
  options.max_staleness = Duration::zero();
  Harness h(options);
  h.SyncAt("10");
  REQUIRE(std::holds_alternative<WaitAction>(h.reflector.OnWatchEnded(kForbidden, false)));
  h.clock.Advance(std::chrono::hours(48));
  CHECK(h.Staleness() == std::chrono::hours(48));
  CHECK(h.Stale().empty());
}

TEST_CASE(
    "events and bookmarks confirm the data, and the end of a watch that worked confirms it up to "
    "that moment; a very short watch does not") {
  Harness h;
  h.SyncAt("10");
  h.clock.Advance(minutes(2));
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchEvents(Bookmark("12"))));
  h.clock.Advance(minutes(3));
  // The server's timeoutSeconds ran out: a clean end, confirmed up to now; rewatch at once.
  REQUIRE(h.reflector.OnWatchEnded(std::nullopt, true) == Watch("12"));
  CHECK(h.Staleness() == Duration::zero());
  h.clock.Advance(milliseconds(300));
  CHECK(h.Staleness() == milliseconds(300));
  // That watch is accepted and closed at once with nothing in it: a failure, which confirms
  // nothing (the apiserver may close every watch like that while its data moves on).
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchStarted()));
  CHECK(h.Staleness() == Duration::zero());
  h.clock.Advance(milliseconds(100));
  REQUIRE(std::holds_alternative<WaitAction>(h.reflector.OnWatchEnded(std::nullopt, false)));
  CHECK(h.Staleness() == milliseconds(400));
  h.clock.Advance(milliseconds(1200));
  REQUIRE(h.reflector.OnTimer() == Watch("12"));
  // An event shows the stream is open even without OnWatchStarted.
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchEvents(Modified("a", "13"))));
  CHECK(h.reflector.status().watch_open);
  CHECK(h.Staleness() == Duration::zero());
  h.clock.Advance(seconds(40));
  // Cut mid-stream: the open watch delivered until now.
  REQUIRE(std::holds_alternative<WaitAction>(h.reflector.OnWatchEnded(kReset, true)));
  h.clock.Advance(seconds(3));
  CHECK(h.Staleness() == seconds(3));
}

TEST_CASE("a relist after 410 keeps the data dated from the broken watch until the list ends") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(std::holds_alternative<WaitAction>(h.reflector.OnWatchEnded(kExpired, false)));
  h.clock.Advance(milliseconds(1200));
  REQUIRE(std::holds_alternative<ListAction>(h.reflector.OnTimer()));
  h.clock.Advance(minutes(6));  // a very long relist
  CHECK(h.Staleness() == minutes(6) + milliseconds(1200));
  // The 410 stays the current failure until a list succeeds: the reason names it.
  CHECK_THAT(h.Stale(), Catch::StartsWith("no update confirmed by the apiserver for 361 s, longer "
                                          "than maxStaleness (300 s): watch: HTTP 410 Expired"));
  REQUIRE(h.reflector.OnListPage(Page("20")) == Watch("20"));
  CHECK(h.Staleness() == Duration::zero());
  CHECK(h.Stale().empty());
}

TEST_CASE("a WatchList relist confirms nothing before its initial-events-end bookmark") {
  ReflectorOptions options;
  options.use_watch_list = true;
  Harness h(options);
  REQUIRE(std::holds_alternative<WatchAction>(h.reflector.Start()));
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchStarted()));
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchEvents(InitialAdded("a", "5"))));
  CHECK_FALSE(h.Staleness().has_value());
  REQUIRE(std::holds_alternative<IdleAction>(
      h.reflector.OnWatchEvents(Bookmark("10", /*initial_events_end=*/true))));
  CHECK(h.reflector.status().watch_open);
  CHECK(h.Staleness() == Duration::zero());

  // The stream breaks; the WatchList relist's stream is open, but its initial events are not in.
  h.clock.Advance(minutes(1));
  REQUIRE(std::holds_alternative<WaitAction>(h.reflector.OnWatchEnded(kExpired, true)));
  h.clock.Advance(milliseconds(1200));
  REQUIRE(std::holds_alternative<WatchAction>(h.reflector.OnTimer()));
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchStarted()));
  REQUIRE(std::holds_alternative<IdleAction>(h.reflector.OnWatchEvents(InitialAdded("a", "5"))));
  h.clock.Advance(seconds(2));
  CHECK_FALSE(h.reflector.status().watch_open);
  CHECK(h.Staleness() == milliseconds(3200));
  REQUIRE(std::holds_alternative<IdleAction>(
      h.reflector.OnWatchEvents(Bookmark("20", /*initial_events_end=*/true))));
  CHECK(h.Staleness() == Duration::zero());
}

TEST_CASE("a status copy read later is refreshed to the time it is read") {
  Harness h;
  h.SyncAt("10");
  REQUIRE(std::holds_alternative<WaitAction>(h.reflector.OnWatchEnded(kForbidden, false)));
  ReflectorStatus copy = h.reflector.status();
  CHECK(copy.staleness == Duration::zero());
  h.clock.Advance(minutes(7));
  copy.RefreshFreshness(h.clock.Now(), minutes(5));
  CHECK(copy.staleness == minutes(7));
  CHECK_THAT(copy.stale, Catch::Contains("for 420 s, longer than maxStaleness (300 s): watch: "
                                         "HTTP 403 Forbidden"));
  copy.RefreshFreshness(h.clock.Now(), minutes(10));
  CHECK(copy.stale.empty());
}

}  // namespace
}  // namespace informerd::core
