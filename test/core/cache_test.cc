// Specification of core/cache.* and core/subscription.*: the apiserver watch cache's serving
// rules as docs/kubernetes-semantics.md explains them, one behaviour per test.
#include "core/cache.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "test/common/cache_test_support.h"
#include "test/common/fake_clock.h"

namespace informerd::core {
namespace {

using testing::Added;
using testing::Bookmark;
using testing::Deleted;
using testing::Drain;
using testing::MakeObject;
using testing::Modified;
using testing::Received;

constexpr EventType kAdded = EventType::kAdded;
constexpr EventType kModified = EventType::kModified;
constexpr EventType kDeleted = EventType::kDeleted;
constexpr EventType kBookmark = EventType::kBookmark;
constexpr EventType kSynced = EventType::kSynced;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

Received Change(EventType type, std::string key, std::string uid, std::string object_rv,
                std::string rv) {
  return Received{type, std::move(key), std::move(uid), std::move(object_rv), std::move(rv)};
}
Received Change(EventType type, std::string key, std::string rv) {
  std::string uid = "u-" + key;
  return Received{type, std::move(key), std::move(uid), rv, rv};
}
Received Marker(EventType type, std::string rv) { return Received{type, "", "", "", rv}; }

// A pod with uid "u-ns/name".
ObjectRecord Pod(const std::string& ns, const std::string& name, uint64_t rv,
                 LabelSet labels = {}) {
  return MakeObject(ns, name, "u-" + ns + "/" + name, rv, std::move(labels));
}

SubscribeOptions Options(std::string resource_version = "", std::string labels = "",
                         std::string ns = "") {
  SubscribeOptions options;
  options.namespace_name = std::move(ns);
  options.label_selector = *LabelSelector::Parse(labels);
  options.resource_version = std::move(resource_version);
  return options;
}

struct Harness {
  explicit Harness(CacheOptions options = {}) : cache(Cache::Create(std::move(options), clock)) {}

  void List(std::vector<ObjectRecord> items, uint64_t rv, std::string list_rv = "-") {
    cache->BeginList();
    cache->ListItems(std::move(items), list_rv == "-" ? std::to_string(rv) : list_rv);
    cache->EndList(std::to_string(rv));
  }

  std::shared_ptr<Subscription> Subscribe(SubscribeOptions options) {
    auto subscription = cache->Subscribe(std::move(options));
    if (!subscription.ok()) FAIL("Subscribe failed: " << Message(subscription.status()));
    return *subscription;
  }

  absl::StatusCode SubscribeError(SubscribeOptions options) {
    auto subscription = cache->Subscribe(std::move(options));
    REQUIRE_FALSE(subscription.ok());
    last_error = Message(subscription.status());
    return subscription.status().code();
  }

  FakeClock clock;
  std::shared_ptr<Cache> cache;
  std::string last_error;
};

// ---- Snapshot, resume, window ------------------------------------------------------------------

TEST_CASE("an empty resource version gets the matching objects as ADDED, then SYNCED, then live") {
  Harness h;
  h.List({Pod("ns", "b", 5, {{"app", "web"}}), Pod("ns", "a", 7, {{"app", "web"}}),
          Pod("ns", "c", 6, {{"app", "db"}})},
         10);
  auto sub = h.Subscribe(Options("", "app=web"));
  // Snapshot items carry the objects' own versions; SYNCED the snapshot's.
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/a", "7"),
                                             Change(kAdded, "ns/b", "5"), Marker(kSynced, "10")});
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 11, {{"app", "web"}})));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 12, {{"app", "db"}})));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "e", 13, {{"app", "web"}})));
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kModified, "ns/a", "11"), Change(kAdded, "ns/e", "13")});
  CHECK_FALSE(sub->FinalStatus().has_value());
}

TEST_CASE("resource version \"0\" is served like an empty one: snapshot, then SYNCED") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 4);
  auto sub = h.Subscribe(Options("0"));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/a", "3"), Marker(kSynced, "4")});
}

TEST_CASE("a snapshot subscriber joining between events continues exactly after the snapshot") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 4);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 5)));
  auto sub = h.Subscribe(Options());
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "b", 6)));
  h.cache->ApplyWatchEvent(Deleted(Pod("ns", "a", 7)));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/a", "3"),
                                             Change(kAdded, "ns/b", "5"), Marker(kSynced, "5"),
                                             Change(kModified, "ns/b", "6"),
                                             Change(kDeleted, "ns/a", "7")});
}

TEST_CASE("resuming from X replays the window's events after X, then live events") {
  Harness h;
  h.List({}, 10);
  for (uint64_t rv = 11; rv <= 14; ++rv) {
    h.cache->ApplyWatchEvent(Added(Pod("ns", "p" + std::to_string(rv), rv)));
  }
  auto sub = h.Subscribe(Options("12"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "p15", 15)));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/p13", "13"),
                                             Change(kAdded, "ns/p14", "14"),
                                             Change(kAdded, "ns/p15", "15")});
  // From the latest version: nothing to replay, and no SYNCED (that is for snapshots).
  auto latest = h.Subscribe(Options("15"));
  CHECK(Drain(*latest).empty());
}

TEST_CASE("resume filtering applies the subscriber's selectors to the replayed events") {
  Harness h;
  h.List({Pod("ns", "a", 5, {{"app", "web"}})}, 10);
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 11, {{"app", "db"}})));
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 12, {{"app", "web"}})));
  auto sub = h.Subscribe(Options("10", "app=web"));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kDeleted, "ns/a", "u-ns/a", "5", "11"),
                                             Change(kAdded, "ns/a", "12")});
}

TEST_CASE("a resume point older than the window is OUT_OF_RANGE: expiry by count") {
  CacheOptions options;
  options.window_max_events = 3;
  Harness h(options);
  h.List({}, 10);
  for (uint64_t rv = 11; rv <= 15; ++rv) {
    h.cache->ApplyWatchEvent(Added(Pod("ns", "p" + std::to_string(rv), rv)));
  }
  CHECK(h.SubscribeError(Options("11")) == absl::StatusCode::kOutOfRange);
  CHECK(h.last_error.find("too old resource version: 11") != std::string::npos);
  auto sub = h.Subscribe(Options("12"));
  CHECK(Drain(*sub).size() == 3);
}

TEST_CASE("a resume point older than the window is OUT_OF_RANGE: expiry by age") {
  Harness h;  // 75 s
  h.List({}, 10);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));
  h.clock.Advance(std::chrono::seconds(60));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 12)));
  h.clock.Advance(std::chrono::seconds(20));  // 11 is 80 s old
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  auto sub = h.Subscribe(Options("11"));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/b", "12")});
  CHECK(h.cache->Stats().window_events == 1);
}

TEST_CASE("a non-numeric resource version or an unsupported field is INVALID_ARGUMENT") {
  Harness h;
  h.List({}, 10);
  CHECK(h.SubscribeError(Options("abc")) == absl::StatusCode::kInvalidArgument);
  CHECK(h.last_error == "resource version \"abc\" is not a decimal number");
  SubscribeOptions options = Options();
  options.field_selector = *FieldSelector::Parse("spec.nodeName=n1");
  CHECK(h.SubscribeError(options) == absl::StatusCode::kInvalidArgument);
  CHECK(h.last_error.find("field \"spec.nodeName\" is not supported (supported: metadata.name, "
                          "metadata.namespace)") != std::string::npos);
  const auto listed = h.cache->List("", LabelSelector(), *FieldSelector::Parse("spec.x=1"));
  CHECK(listed.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a resource version ahead of the cache waits: only events after it are delivered") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions options = Options("12");
  options.allow_bookmarks = true;
  auto sub = h.Subscribe(std::move(options));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));
  h.cache->ApplyWatchEvent(Bookmark(12));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 13)));
  h.cache->ApplyWatchEvent(Bookmark(14));
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kAdded, "ns/b", "13"), Marker(kBookmark, "14")});
}

TEST_CASE("a subscriber waiting for a future version is ended with OUT_OF_RANGE by a relist") {
  Harness h;
  h.List({Pod("ns", "a", 5)}, 10);
  auto sub = h.Subscribe(Options("20"));
  h.List({Pod("ns", "a", 15)}, 16);
  CHECK(Drain(*sub).empty());
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kOutOfRange);
}

// ---- Selectors on live events ------------------------------------------------------------------

TEST_CASE("selector transitions: stops matching → DELETED (previous state), starts → ADDED") {
  Harness h;
  h.List({Pod("ns", "a", 5, {{"app", "web"}})}, 10);
  auto web = h.Subscribe(Options("", "app=web"));
  auto all = h.Subscribe(Options(""));
  Drain(*web);
  Drain(*all);
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 11, {{"app", "db"}})));   // stops matching
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 12, {{"app", "db2"}})));  // neither
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 13, {{"app", "web"}})));  // starts matching
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 14, {{"app", "web"}})));  // both
  // The DELETED carries the state that matched (resourceVersion 5 inside) at the change's version
  // (11), as the apiserver's cacher does.
  CHECK(Drain(*web) == std::vector<Received>{Change(kDeleted, "ns/a", "u-ns/a", "5", "11"),
                                             Change(kAdded, "ns/a", "13"),
                                             Change(kModified, "ns/a", "14")});
  CHECK(Drain(*all).size() == 4);
}

TEST_CASE("field selectors on indexed paths filter events and produce transitions too") {
  CacheOptions options;
  options.extra_field_paths = {"spec.nodeName"};
  Harness h(options);
  h.List({MakeObject("ns", "a", "u", 5, {}, {std::nullopt})}, 10);
  SubscribeOptions subscribe = Options();
  subscribe.field_selector = *FieldSelector::Parse("spec.nodeName=n1");
  auto sub = h.Subscribe(std::move(subscribe));
  CHECK(Drain(*sub) == std::vector<Received>{Marker(kSynced, "10")});
  h.cache->ApplyWatchEvent(Modified(MakeObject("ns", "a", "u", 11, {}, {std::string("n1")})));
  h.cache->ApplyWatchEvent(Modified(MakeObject("ns", "a", "u", 12, {}, {std::string("n2")})));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/a", "u", "11", "11"),
                                             Change(kDeleted, "ns/a", "u", "11", "12")});
}

TEST_CASE("DELETED carries the last known object with the deletion's resource version") {
  Harness h;
  h.List({Pod("ns", "a", 5, {{"app", "web"}})}, 10);
  auto sub = h.Subscribe(Options("10", "app=web"));
  // The apiserver sends the deleted object's last state with the deletion's version in it.
  h.cache->ApplyWatchEvent(Deleted(Pod("ns", "a", 12, {{"app", "web"}})));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kDeleted, "ns/a", "12")});
  CHECK(h.cache->Get("ns", "a").object == nullptr);
  // Deleting what is not cached changes nothing and sends nothing.
  h.cache->ApplyWatchEvent(Deleted(Pod("ns", "zz", 13)));
  CHECK(Drain(*sub).empty());
  CHECK(h.cache->Stats().resource_version == "13");
}

TEST_CASE("a watch event with a new UID for a cached key is DELETED then ADDED") {
  Harness h;
  h.List({MakeObject("ns", "a", "old", 5)}, 10);
  auto sub = h.Subscribe(Options("10"));
  h.cache->ApplyWatchEvent(Modified(MakeObject("ns", "a", "new", 12)));
  // The deletion happened between 10 and 12: it gets 11, so each half is its own resume point.
  CHECK(Drain(*sub) == std::vector<Received>{Change(kDeleted, "ns/a", "old", "5", "11"),
                                             Change(kAdded, "ns/a", "new", "12", "12")});
  auto resumed = h.Subscribe(Options("11"));
  CHECK(Drain(*resumed) == std::vector<Received>{Change(kAdded, "ns/a", "new", "12", "12")});
}

TEST_CASE("a UID change with no version left for the deletion ends resuming from before it") {
  Harness h;
  h.List({MakeObject("ns", "a", "old", 5)}, 10);
  auto sub = h.Subscribe(Options("10"));
  h.cache->ApplyWatchEvent(Added(MakeObject("ns", "a", "new", 11)));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kDeleted, "ns/a", "old", "5", "11"),
                                             Change(kAdded, "ns/a", "new", "11", "11")});
  CHECK(h.SubscribeError(Options("11")) == absl::StatusCode::kOutOfRange);
}

// ---- Bookmarks ---------------------------------------------------------------------------------

TEST_CASE("bookmarks advance the resource version and reach only subscribers that asked") {
  Harness h;
  h.List({Pod("ns", "a", 5)}, 10);
  SubscribeOptions with = Options("10");
  with.allow_bookmarks = true;
  auto asked = h.Subscribe(std::move(with));
  auto not_asked = h.Subscribe(Options("10"));
  h.cache->ApplyWatchEvent(Bookmark(20));
  CHECK(Drain(*asked) == std::vector<Received>{Marker(kBookmark, "20")});
  CHECK(Drain(*not_asked).empty());
  CHECK(h.cache->Stats().resource_version == "20");
  CHECK(h.cache->Get("ns", "a").resource_version == "20");
  // An older bookmark changes nothing.
  h.cache->ApplyWatchEvent(Bookmark(15));
  CHECK(Drain(*asked).empty());
  CHECK(h.cache->Stats().resource_version == "20");
  // A bookmark's version is a valid resume point.
  auto resumed = h.Subscribe(Options("20"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 21)));
  CHECK(Drain(*resumed) == std::vector<Received>{Change(kAdded, "ns/b", "21")});
  // SYNCED of a new snapshot uses the bookmark-advanced version.
  auto snapshot = h.Subscribe(Options());
  CHECK(Drain(*snapshot).back() == Marker(kSynced, "21"));
}

TEST_CASE("bookmarks never end a full subscriber, and a newer one replaces a queued one") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions options = Options("10");
  options.allow_bookmarks = true;
  options.queue_capacity = 2;
  auto sub = h.Subscribe(std::move(options));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));
  h.cache->ApplyWatchEvent(Bookmark(12));
  h.cache->ApplyWatchEvent(Bookmark(13));  // replaces 12
  h.cache->ApplyWatchEvent(Bookmark(14));  // replaces 13
  CHECK(sub->pending() == 2);
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kAdded, "ns/a", "11"), Marker(kBookmark, "14")});
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 15)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 16)));
  h.cache->ApplyWatchEvent(Bookmark(17));  // the queue is full: dropped
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kAdded, "ns/b", "15"), Change(kAdded, "ns/c", "16")});
  CHECK_FALSE(sub->FinalStatus().has_value());
}

// ---- Relists -----------------------------------------------------------------------------------

TEST_CASE("a relist delivers the difference with the list's resource version") {
  Harness h;
  h.List({Pod("ns", "keep", 3), Pod("ns", "change", 4), Pod("ns", "gone", 5),
          MakeObject("ns", "recreated", "old-uid", 6)},
         10);
  auto sub = h.Subscribe(Options("10"));
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "keep", 3), Pod("ns", "change", 18)}, "30");
  h.cache->ListItems({MakeObject("ns", "recreated", "new-uid", 25), Pod("ns", "new", 20)}, "30");
  // Applied as found, page by page.
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kModified, "ns/change", "u-ns/change", "18", "30"),
                              Change(kDeleted, "ns/recreated", "old-uid", "6", "30"),
                              Change(kAdded, "ns/recreated", "new-uid", "25", "30"),
                              Change(kAdded, "ns/new", "u-ns/new", "20", "30")});
  h.cache->EndList("30");
  // What the list lacked is deleted with its last known state.
  CHECK(Drain(*sub) == std::vector<Received>{Change(kDeleted, "ns/gone", "u-ns/gone", "5", "30")});
  CHECK_FALSE(sub->FinalStatus().has_value());
  const auto listed = h.cache->List("", LabelSelector(), FieldSelector());
  REQUIRE(listed.ok());
  CHECK(testing::ByKey(listed->items).size() == 4);
  CHECK(listed->resource_version == "30");
  CHECK(h.cache->Get("ns", "recreated").object->uid == "new-uid");
  CHECK(h.cache->Get("ns", "keep").object->resource_version == "3");
}

TEST_CASE("a relist without a known list version stamps differences with the objects' own") {
  Harness h;
  h.List({Pod("ns", "a", 3), MakeObject("ns", "b", "old", 4)}, 10);
  auto sub = h.Subscribe(Options("10"));
  h.cache->BeginList();  // WatchList: the version comes with the final bookmark
  h.cache->ListItems({Pod("ns", "a", 17), MakeObject("ns", "b", "new", 19)}, "");
  h.cache->EndList("30");
  CHECK(Drain(*sub) == std::vector<Received>{Change(kModified, "ns/a", "u-ns/a", "17", "17"),
                                             Change(kDeleted, "ns/b", "old", "4", "19"),
                                             Change(kAdded, "ns/b", "new", "19", "19")});
}

TEST_CASE("after a relist that changed the cache the window restarts at the list's version") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 11)));
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 11), Pod("ns", "c", 25)}, 30);  // nobody subscribed
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  CHECK(h.SubscribeError(Options("11")) == absl::StatusCode::kOutOfRange);
  auto sub = h.Subscribe(Options("30"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 31)));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/d", "31")});
}

TEST_CASE("the list's version is refused as a resume point once its differences went out") {
  // A subscriber cut off in the middle of the differences also holds the list's version;
  // replaying "after" it would skip the rest of them.
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  auto sub = h.Subscribe(Options("10"));
  h.List({Pod("ns", "a", 20), Pod("ns", "b", 21)}, 30);
  CHECK(Drain(*sub).size() == 2);
  CHECK(h.SubscribeError(Options("30")) == absl::StatusCode::kOutOfRange);
  h.cache->ApplyWatchEvent(Bookmark(31));
  auto resumed = h.Subscribe(Options("31"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 32)));
  CHECK(Drain(*resumed) == std::vector<Received>{Change(kAdded, "ns/c", "32")});
}

TEST_CASE("a relist that finds no difference keeps the window") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 11)));
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 11)}, 30);
  auto sub = h.Subscribe(Options("10"));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/b", "11")});
  CHECK(h.cache->Stats().resource_version == "30");
}

TEST_CASE("after a relist that finds no difference, versions between the two are refused") {
  // The cache is at 11; upstream an object was created at 12 and deleted at 20, and the watch
  // broke before delivering either. The relist at 30 finds nothing to change, but a client that
  // saw 12 (from a replica that was ahead) holds an object the cache never had.
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 11)));
  auto waiting = h.Subscribe(Options("12"));
  auto waiting_for_list = h.Subscribe(Options("30"));
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 11)}, 30);
  CHECK(Drain(*waiting).empty());
  REQUIRE(waiting->FinalStatus().has_value());
  CHECK(waiting->FinalStatus()->code() == absl::StatusCode::kOutOfRange);
  CHECK_THAT(std::string(waiting->FinalStatus()->message()),
             Catch::Contains("resource version 12 is ahead of the cache, which relisted from "
                             "the apiserver from 11 to 30"));
  CHECK_FALSE(waiting_for_list->FinalStatus().has_value());
  CHECK(h.SubscribeError(Options("12")) == absl::StatusCode::kOutOfRange);
  CHECK(h.SubscribeError(Options("29")) == absl::StatusCode::kOutOfRange);
  // Either end stays exact: 11 is the cache's own state before the relist, 30 the list's.
  auto from_11 = h.Subscribe(Options("11"));
  auto from_30 = h.Subscribe(Options("30"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 31)));
  CHECK(Drain(*from_11) == std::vector<Received>{Change(kAdded, "ns/c", "31")});
  CHECK(Drain(*from_30) == std::vector<Received>{Change(kAdded, "ns/c", "31")});
  CHECK(Drain(*waiting_for_list) == std::vector<Received>{Change(kAdded, "ns/c", "31")});
}

TEST_CASE("resuming is refused while a relist is changing the cache") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 3)}, "30");  // unchanged: the window still holds
  auto before = h.Subscribe(Options("10"));
  h.cache->ListItems({Pod("ns", "b", 22)}, "30");
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  CHECK(h.last_error.find("relisted") != std::string::npos);
  // A snapshot is still possible; its SYNCED waits for the end of the list.
  auto snapshot = h.Subscribe(Options());
  CHECK(Drain(*snapshot) ==
        std::vector<Received>{Change(kAdded, "ns/a", "3"), Change(kAdded, "ns/b", "22")});
  h.cache->EndList("30");
  CHECK(Drain(*snapshot) == std::vector<Received>{Marker(kSynced, "30")});
  CHECK(Drain(*before) == std::vector<Received>{Change(kAdded, "ns/b", "u-ns/b", "22", "30")});
}

TEST_CASE("an aborted relist keeps what it applied and deletes nothing") {
  Harness h;
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 4)}, 10);
  auto sub = h.Subscribe(Options("10"));
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 20)}, "30");
  h.cache->AbortList();
  CHECK(Drain(*sub) == std::vector<Received>{Change(kModified, "ns/a", "u-ns/a", "20", "30")});
  CHECK(h.cache->Get("ns", "b").object != nullptr);
  CHECK(h.cache->Get("ns", "a").object->resource_version == "20");
  // The store is a mix of two lists until the next one ends: still no resuming.
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  h.List({Pod("ns", "a", 20), Pod("ns", "b", 4)}, 40);
  CHECK(Drain(*sub).empty());
  CHECK(h.cache->Stats().resource_version == "40");
}

// ---- Reads during a relist --------------------------------------------------------------------

// The keys and object versions a List answers: "ns/name@rv".
std::vector<std::string> Listed(const ListResult& listed) {
  std::vector<std::string> keys;
  for (const auto& object : listed.items) {
    keys.push_back(testing::Key(*object) + "@" + object->resource_version.str());
  }
  return keys;
}

constexpr const char* kRelistingSince10 =
    "a relist is replacing the cached objects (since resource version 10)";

TEST_CASE("reads during a relist: the last complete state until it changes the store, then none") {
  Harness h;
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 4)}, 10);
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 3)}, "30");  // no difference yet: the store is unchanged
  auto listed = h.cache->List("", LabelSelector(), FieldSelector());
  REQUIRE(listed.ok());
  CHECK(listed->synced);
  CHECK(listed->unsynced_reason.empty());
  CHECK(listed->resource_version == "10");
  CHECK(Listed(*listed) == std::vector<std::string>{"ns/a@3", "ns/b@4"});
  CHECK(h.cache->Get("ns", "b").synced);
  CHECK(h.cache->Stats().synced);
  CHECK(h.cache->Stats().relisting);

  // The first difference: the store now mixes the two lists (c is from resource version 30, b
  // may be gone upstream). Nothing of it may be read as a state of the cluster.
  h.cache->ListItems({Pod("ns", "c", 22)}, "30");
  listed = h.cache->List("", LabelSelector(), FieldSelector());
  REQUIRE(listed.ok());
  CHECK_FALSE(listed->synced);
  CHECK(listed->unsynced_reason == kRelistingSince10);
  const GetResult got = h.cache->Get("ns", "a");
  CHECK_FALSE(got.synced);
  CHECK(got.unsynced_reason == kRelistingSince10);
  CacheStats stats = h.cache->Stats();
  CHECK_FALSE(stats.synced);
  CHECK(stats.unsynced_reason == kRelistingSince10);
  CHECK(stats.relisting);
  CHECK(stats.resource_version == "10");

  // Complete: exactly the new list, at its version.
  h.cache->EndList("30");
  listed = h.cache->List("", LabelSelector(), FieldSelector());
  REQUIRE(listed.ok());
  CHECK(listed->synced);
  CHECK(listed->unsynced_reason.empty());
  CHECK(listed->resource_version == "30");
  CHECK(Listed(*listed) == std::vector<std::string>{"ns/a@3", "ns/c@22"});
  CHECK(h.cache->Get("ns", "c").synced);
  CHECK(h.cache->Get("ns", "b").object == nullptr);
  stats = h.cache->Stats();
  CHECK(stats.synced);
  CHECK(stats.unsynced_reason.empty());
  CHECK_FALSE(stats.relisting);
}

TEST_CASE("a relist that changes nothing never interrupts reads") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 3)}, "20");
  CHECK(h.cache->List("", LabelSelector(), FieldSelector())->synced);
  h.cache->EndList("20");
  const auto listed = h.cache->List("", LabelSelector(), FieldSelector());
  CHECK(listed->synced);
  CHECK(listed->resource_version == "20");
  // Aborted before any difference: the store was never mixed.
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 3)}, "25");
  h.cache->AbortList();
  CHECK(h.cache->Get("ns", "a").synced);
  CHECK(h.cache->Stats().synced);
  CHECK_FALSE(h.cache->Stats().relisting);
}

TEST_CASE("an aborted relist that changed the store keeps reads refused until a list completes") {
  Harness h;
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 4)}, 10);
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 20)}, "30");
  h.cache->AbortList();
  // a is from the abandoned list, b perhaps long gone: still a mix.
  auto listed = h.cache->List("", LabelSelector(), FieldSelector());
  CHECK_FALSE(listed->synced);
  CHECK(listed->unsynced_reason == kRelistingSince10);
  CHECK_FALSE(h.cache->Get("ns", "b").synced);
  CacheStats stats = h.cache->Stats();
  CHECK_FALSE(stats.synced);
  CHECK(stats.unsynced_reason == kRelistingSince10);
  CHECK(stats.relisting);
  // The next list, even before it changes anything, does not make the mix readable.
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 20)}, "40");
  CHECK_FALSE(h.cache->List("", LabelSelector(), FieldSelector())->synced);
  CHECK(h.cache->Stats().unsynced_reason == kRelistingSince10);
  h.cache->EndList("40");
  listed = h.cache->List("", LabelSelector(), FieldSelector());
  CHECK(listed->synced);
  CHECK(listed->resource_version == "40");
  CHECK(Listed(*listed) == std::vector<std::string>{"ns/a@20"});
  stats = h.cache->Stats();
  CHECK(stats.synced);
  CHECK(stats.unsynced_reason.empty());
  CHECK_FALSE(stats.relisting);
}

TEST_CASE("during the initial list and after MarkUnsynced, reads keep their own reason") {
  Harness h;
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 3)}, "10");
  CHECK(h.cache->Stats().unsynced_reason == "the initial list has not completed");
  CHECK(h.cache->List("", LabelSelector(), FieldSelector())->unsynced_reason ==
        "the initial list has not completed");
  h.cache->EndList("10");
  CHECK(h.cache->Stats().synced);
  h.cache->MarkUnsynced("resource no longer served by the apiserver");
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "b", 12)}, "20");
  CHECK(h.cache->Get("ns", "b").unsynced_reason == "resource no longer served by the apiserver");
  h.cache->EndList("20");
  CHECK(h.cache->Get("ns", "b").synced);
  CHECK(h.cache->Get("ns", "a").object == nullptr);
}

TEST_CASE("EndList without a list in progress deletes nothing") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  h.cache->EndList("20");
  CHECK(h.cache->Get("ns", "a").object != nullptr);
  h.cache->BeginList();
  h.cache->AbortList();
  h.cache->EndList("21");
  CHECK(h.cache->Get("ns", "a").object != nullptr);
  CHECK(h.cache->Stats().resource_version == "21");
}

TEST_CASE("a snapshot taken before the initial list completes gets SYNCED at the list's version") {
  Harness h;
  CHECK_FALSE(h.cache->Stats().synced);
  CHECK(h.cache->Stats().unsynced_reason == "the initial list has not completed");
  auto sub = h.Subscribe(Options());
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 3)}, "10");
  auto mid = h.Subscribe(Options());
  h.cache->ListItems({Pod("ns", "b", 4)}, "10");
  h.cache->EndList("10");
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/a", "u-ns/a", "3", "10"),
                                             Change(kAdded, "ns/b", "u-ns/b", "4", "10"),
                                             Marker(kSynced, "10")});
  CHECK(Drain(*mid) == std::vector<Received>{Change(kAdded, "ns/a", "u-ns/a", "3", "3"),
                                             Change(kAdded, "ns/b", "u-ns/b", "4", "10"),
                                             Marker(kSynced, "10")});
  CHECK(h.cache->Stats().synced);
  // Resuming is impossible before the first list, like any too-old version.
  Harness fresh;
  CHECK(fresh.SubscribeError(Options("5")) == absl::StatusCode::kOutOfRange);
}

TEST_CASE("MarkUnsynced keeps objects and streams; reads say unsynced until the next list") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  auto sub = h.Subscribe(Options("10"));
  h.cache->MarkUnsynced("resource no longer served by the apiserver");
  const CacheStats stats = h.cache->Stats();
  CHECK_FALSE(stats.synced);
  CHECK(stats.unsynced_reason == "resource no longer served by the apiserver");
  CHECK(stats.object_count == 1);
  CHECK_FALSE(h.cache->Get("ns", "a").synced);
  CHECK(h.cache->Get("ns", "a").object != nullptr);
  auto snapshot = h.Subscribe(Options());
  CHECK(Drain(*snapshot) == std::vector<Received>{Change(kAdded, "ns/a", "3")});
  h.List({Pod("ns", "a", 3)}, 20);
  CHECK(Drain(*snapshot) == std::vector<Received>{Marker(kSynced, "20")});
  CHECK(h.cache->Stats().synced);
  CHECK(h.cache->Stats().unsynced_reason.empty());
  CHECK_FALSE(sub->FinalStatus().has_value());
}

TEST_CASE("events with a non-numeric version are applied, but end resuming from before them") {
  Harness h;
  h.List({}, 10);
  auto sub = h.Subscribe(Options("10"));
  ObjectRecord odd = Pod("ns", "a", 0);
  odd.resource_version = "x1";
  h.cache->ApplyWatchEvent(Added(odd));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/a", "u-ns/a", "x1", "x1")});
  CHECK(h.cache->Get("ns", "a").object != nullptr);
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  h.List({odd}, 20);
  CHECK(h.Subscribe(Options("20")) != nullptr);
}

// ---- Window resets (cache.h, "The window after a reset") ---------------------------------------

// A Harness whose cache reports its window resets into `reported`.
struct ResetHarness : Harness {
  explicit ResetHarness(
      std::shared_ptr<std::vector<WindowReset>> into = std::make_shared<std::vector<WindowReset>>())
      : Harness(WithReporter(into)), reported(std::move(into)) {}
  static CacheOptions WithReporter(std::shared_ptr<std::vector<WindowReset>> into) {
    CacheOptions options;
    options.on_window_reset = [into](const WindowReset& reset) { into->push_back(reset); };
    return options;
  }
  uint64_t Resets(WindowResetReason reason) const {
    return cache->Stats().window_resets[static_cast<std::size_t>(reason)];
  }
  std::shared_ptr<std::vector<WindowReset>> reported;
};

ObjectRecord WithVersion(ObjectRecord record, std::string resource_version) {
  record.resource_version = std::move(resource_version);
  return record;
}

TEST_CASE("a refused resume after a reset says what happened, not that the cache is relisting") {
  Harness h;
  h.List({}, 10);
  h.cache->ApplyWatchEvent(Added(WithVersion(Pod("ns", "a", 0), "x1")));
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  CHECK(h.last_error ==
        "too old resource version: 10 (the replay window was reset at resource version 10 because "
        "a watch event's resource version \"x1\" is not a number; it serves resumes again from "
        "the next event or bookmark with a newer resource version); subscribe again without a "
        "resource version");
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 5)));  // older than the cache's 10
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  // The first reset's reason stands while the window waits to restart.
  CHECK(h.last_error.find("\"x1\" is not a number") != std::string::npos);
}

TEST_CASE("each reset is counted by reason and reported once, not again before a restart") {
  ResetHarness h;
  h.List({MakeObject("ns", "a", "old", 5)}, 10);
  CHECK(h.reported->empty());
  h.cache->ApplyWatchEvent(Added(WithVersion(Pod("ns", "b", 0), "x1")));
  h.cache->ApplyWatchEvent(Added(WithVersion(Pod("ns", "c", 0), "x2")));  // still waiting
  CHECK(h.Resets(WindowResetReason::kNonNumericVersion) == 1);
  REQUIRE(h.reported->size() == 1);
  CHECK((*h.reported)[0].reason == WindowResetReason::kNonNumericVersion);
  CHECK((*h.reported)[0].message ==
        "the replay window was reset at resource version 10 because a watch event's resource "
        "version \"x1\" is not a number");
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 11)));  // restarts the window
  h.cache->ApplyWatchEvent(Added(Pod("ns", "e", 9)));   // backwards
  CHECK(h.Resets(WindowResetReason::kVersionWentBackwards) == 1);
  REQUIRE(h.reported->size() == 2);
  CHECK((*h.reported)[1].message ==
        "the replay window was reset at resource version 11 because a watch event's resource "
        "version 9 is older than the cache's, 11");
  h.cache->ApplyWatchEvent(Added(Pod("ns", "f", 12)));  // restarts it
  // Re-created (new UID) at 13, right after 12: no version left for the deletion.
  h.cache->ApplyWatchEvent(Modified(MakeObject("ns", "a", "new", 13)));
  CHECK(h.Resets(WindowResetReason::kUidChangeWithoutVersion) == 1);
  REQUIRE(h.reported->size() == 3);
  CHECK((*h.reported)[2].message ==
        "the replay window was reset at resource version 12 because ns/a was re-created (its UID "
        "changed) at resource version 13, which leaves no version for its deletion after 12");
  h.cache->BeginList();
  h.cache->ListItems({MakeObject("ns", "a", "new", 13)}, "abc");
  h.cache->EndList("abc");
  CHECK(h.Resets(WindowResetReason::kNonNumericListVersion) == 1);
  REQUIRE(h.reported->size() == 4);
  CHECK((*h.reported)[3].reason == WindowResetReason::kNonNumericListVersion);
  CHECK((*h.reported)[3].message.find("the list's resource version \"abc\" is not a number") !=
        std::string::npos);
  // A relist's own emptying of the window is not one of these resets.
  h.List({Pod("ns", "z", 40)}, 50);
  CHECK(h.reported->size() == 4);
  CHECK(h.Resets(WindowResetReason::kNonNumericVersion) == 1);
  CHECK(h.Resets(WindowResetReason::kVersionWentBackwards) == 1);
}

TEST_CASE("a reset window restarts at the next newer event: resumes from it on work, older fail") {
  Harness h;
  h.List({}, 10);
  auto before = h.Subscribe(Options("10"));
  h.cache->ApplyWatchEvent(Added(WithVersion(Pod("ns", "a", 0), "x1")));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 11)));  // newer than anything sent: restarts
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 12)));
  CHECK(Drain(*before) == std::vector<Received>{Change(kAdded, "ns/a", "u-ns/a", "x1", "x1"),
                                                Change(kAdded, "ns/b", "11"),
                                                Change(kAdded, "ns/c", "12")});
  // Whoever holds 11 or later received the unorderable event: served from the window.
  auto from_11 = h.Subscribe(Options("11"));
  CHECK(Drain(*from_11) == std::vector<Received>{Change(kAdded, "ns/c", "12")});
  auto from_12 = h.Subscribe(Options("12"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 13)));
  CHECK(Drain(*from_12) == std::vector<Received>{Change(kAdded, "ns/d", "13")});
  // 10 may be held by a subscriber that never received it: still refused, and why.
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  CHECK(h.last_error ==
        "too old resource version: 10 (oldest available: after 10; the replay window was reset at "
        "resource version 10 because a watch event's resource version \"x1\" is not a number); "
        "subscribe again without a resource version");
  CHECK(h.SubscribeError(Options("9")) == absl::StatusCode::kOutOfRange);
  // A version ahead of the cache waits again, as with any usable window.
  auto ahead = h.Subscribe(Options("20"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "e", 21)));
  CHECK(Drain(*ahead) == std::vector<Received>{Change(kAdded, "ns/e", "21")});
}

TEST_CASE("a reset window restarts only above every version sent, bookmarks included") {
  Harness h;
  h.List({MakeObject("ns", "a", "old", 5)}, 10);
  h.cache->ApplyWatchEvent(Added(MakeObject("ns", "a", "new", 11)));  // UID change, no room
  // The DELETED and the ADDED both went out at 11: a holder of 11 may lack the ADDED.
  h.cache->ApplyWatchEvent(Bookmark(11));  // not newer than 11: no restart
  CHECK(h.SubscribeError(Options("11")) == absl::StatusCode::kOutOfRange);
  CHECK(h.last_error.find("it serves resumes again from the next event or bookmark") !=
        std::string::npos);
  h.cache->ApplyWatchEvent(Bookmark(12));  // newer: restarts after 11
  auto from_12 = h.Subscribe(Options("12"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 13)));
  CHECK(Drain(*from_12) == std::vector<Received>{Change(kAdded, "ns/b", "13")});
  CHECK(h.SubscribeError(Options("11")) == absl::StatusCode::kOutOfRange);
}

TEST_CASE("after a list with a non-numeric version the window restarts above its differences") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  auto sub = h.Subscribe(Options("10"));
  // The list's version is unusable: its differences carry the objects' own versions, which may
  // be above the cache's 10.
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 25), Pod("ns", "b", 18)}, "abc");
  h.cache->EndList("abc");
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kModified, "ns/a", "25"), Change(kAdded, "ns/b", "18")});
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  CHECK(h.last_error.find("the replay window was reset at resource version 10 because the "
                          "list's resource version \"abc\" is not a number") != std::string::npos);
  // 20 is above the cache's version but not above 25, which a subscriber cut off after the
  // first difference holds without having received the second: no restart.
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 20)));
  CHECK(h.SubscribeError(Options("20")) == absl::StatusCode::kOutOfRange);
  CHECK(h.SubscribeError(Options("25")) == absl::StatusCode::kOutOfRange);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 26)));  // restarts after 25
  CHECK(h.SubscribeError(Options("25")) == absl::StatusCode::kOutOfRange);
  auto from_26 = h.Subscribe(Options("26"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "e", 27)));
  CHECK(Drain(*from_26) == std::vector<Received>{Change(kAdded, "ns/e", "27")});
}

TEST_CASE("a list that changes nothing restarts a reset window only if it is newer than all sent") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  const ObjectRecord odd = WithVersion(Pod("ns", "b", 0), "x1");
  h.cache->ApplyWatchEvent(Added(odd));
  // Nothing changed, at the version the unorderable event went out with: a holder of 10 may or
  // may not have received it.
  h.List({Pod("ns", "a", 3), odd}, 10);
  CHECK(h.SubscribeError(Options("10")) == absl::StatusCode::kOutOfRange);
  h.List({Pod("ns", "a", 3), odd}, 11);
  auto sub = h.Subscribe(Options("11"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 12)));
  CHECK(Drain(*sub) == std::vector<Received>{Change(kAdded, "ns/c", "12")});
}

TEST_CASE("a relist that changes the cache restarts a reset window only if newer than all sent") {
  Harness h;
  h.List({MakeObject("ns", "a", "old", 5), Pod("ns", "b", 6)}, 10);
  // Re-created at 11, right after 10: the DELETED and the ADDED both go out at 11, so a
  // subscriber cut off between them holds 11 without the ADDED.
  h.cache->ApplyWatchEvent(Added(MakeObject("ns", "a", "new", 11)));
  // A relist at 11 finds b gone: a difference, sent to nobody, at a version such a subscriber
  // already holds. Resuming from 11 would silently miss a's ADDED and b's DELETED.
  h.List({MakeObject("ns", "a", "new", 11)}, 11);
  CHECK(h.SubscribeError(Options("11")) == absl::StatusCode::kOutOfRange);
  CHECK(h.last_error.find("the replay window was reset at resource version 10") !=
        std::string::npos);
  // The next newer event restarts it after 11, as without the relist.
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 12)));
  CHECK(h.SubscribeError(Options("11")) == absl::StatusCode::kOutOfRange);
  auto from_12 = h.Subscribe(Options("12"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 13)));
  CHECK(Drain(*from_12) == std::vector<Received>{Change(kAdded, "ns/d", "13")});
  // A relist newer than everything sent before it restarts the window at its version (from
  // it, inclusive, as its difference reaches no subscriber).
  from_12->Close();
  h.cache->ApplyWatchEvent(Added(WithVersion(Pod("ns", "e", 0), "x1")));  // reset again
  CHECK(h.SubscribeError(Options("13")) == absl::StatusCode::kOutOfRange);
  h.List({MakeObject("ns", "a", "new", 11), Pod("ns", "c", 12), Pod("ns", "d", 13)}, 20);
  auto from_20 = h.Subscribe(Options("20"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "f", 21)));
  CHECK(Drain(*from_20) == std::vector<Received>{Change(kAdded, "ns/f", "21")});
}

// ---- Slow subscribers --------------------------------------------------------------------------

TEST_CASE(
    "a subscriber over its capacity that reads nothing for the stall budget is ended with "
    "RESOURCE_EXHAUSTED; the others get everything") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions slow_options = Options("10");
  slow_options.queue_capacity = 4;
  auto slow = h.Subscribe(std::move(slow_options));
  auto fast = h.Subscribe(Options("10"));
  const auto apply = [&](uint64_t rv) {
    h.cache->ApplyWatchEvent(Added(Pod("ns", "p" + std::to_string(rv), rv)));
  };
  // Over the capacity from 15 on: queued, and the stall budget (1 s by default) starts.
  for (uint64_t rv = 11; rv <= 16; ++rv) apply(rv);
  h.clock.Advance(std::chrono::milliseconds(999));
  apply(17);
  CHECK(slow->pending() == 7);
  CHECK(h.cache->Stats().subscribers_fell_behind == 0);
  h.clock.Advance(std::chrono::milliseconds(1));
  // A second without a pop: this event ends it instead of being queued, as do the later ones.
  for (uint64_t rv = 18; rv <= 20; ++rv) apply(rv);
  CHECK(Drain(*fast).size() == 10);
  CHECK_FALSE(fast->FinalStatus().has_value());
  // What was queued before the end is still handed out, then the status.
  CHECK_FALSE(slow->FinalStatus().has_value());
  const std::vector<Received> got = Drain(*slow);
  REQUIRE(got.size() == 7);
  CHECK(got.back() == Change(kAdded, "ns/p17", "17"));
  REQUIRE(slow->FinalStatus().has_value());
  CHECK(slow->FinalStatus()->code() == absl::StatusCode::kResourceExhausted);
  CHECK(Message(*slow->FinalStatus()) ==
        "subscriber fell behind: it read nothing for 1000 ms while 7 events waited (its queue "
        "capacity is 4); the last event it was sent has resource version 17: resume from it");
  const CacheStats stats = h.cache->Stats();
  CHECK(stats.subscribers_fell_behind == 1);
  CHECK(stats.subscriber_count == 1);
  CHECK(stats.queue_high_water == 10);
  // It resumes where it stopped, without a gap.
  auto resumed = h.Subscribe(Options("17"));
  CHECK(Drain(*resumed).size() == 3);
}

TEST_CASE("a burst far over the capacity does not end a subscriber that keeps reading") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions options = Options("10");
  options.queue_capacity = 8;
  auto sub = h.Subscribe(std::move(options));
  std::vector<Received> expected;
  std::vector<Received> got;
  // 10 × the capacity, one event after the other; the consumer pops one item after three events
  // in four, and the clock moves 24 s meanwhile, far past the stall budget. The queue grows to a
  // quarter of the burst (past the capacity, within the hard limit of 32) and survives.
  for (uint64_t rv = 11; rv <= 90; ++rv) {
    const std::string name = "p" + std::to_string(rv);
    h.cache->ApplyWatchEvent(Added(Pod("ns", name, rv)));
    expected.push_back(Change(kAdded, "ns/" + name, std::to_string(rv)));
    h.clock.Advance(std::chrono::milliseconds(300));
    if (rv % 4 != 0) {
      std::optional<Delivery> delivery = sub->TryPop();
      REQUIRE(delivery.has_value());
      got.push_back(testing::Flatten(*delivery));
    }
  }
  CHECK(sub->pending() > sub->queue_capacity());
  for (const Received& each : Drain(*sub)) got.push_back(each);
  CHECK(got == expected);
  CHECK_FALSE(sub->FinalStatus().has_value());
  const CacheStats stats = h.cache->Stats();
  CHECK(stats.subscribers_fell_behind == 0);
  CHECK(stats.subscriber_count == 1);
  CHECK(stats.queue_high_water > 8);
  CHECK(stats.queue_high_water < sub->hard_limit());
}

TEST_CASE("a burst reaching the hard limit ends even a subscriber that keeps reading") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions options = Options("10");
  options.queue_capacity = 4;
  auto sub = h.Subscribe(std::move(options));
  REQUIRE(sub->hard_limit() == 4 * Subscription::kHardLimitFactor);
  std::vector<Received> got;
  // One pop per two events: the queue grows by one per two events, with progress all along.
  uint64_t rv = 11;
  for (; rv <= 100; ++rv) {
    if (rv % 2 == 0) {
      std::optional<Delivery> delivery = sub->TryPop();
      REQUIRE(delivery.has_value());
      got.push_back(testing::Flatten(*delivery));
    }
    h.cache->ApplyWatchEvent(Added(Pod("ns", "p" + std::to_string(rv), rv)));
    if (h.cache->Stats().subscribers_fell_behind == 1) break;
  }
  REQUIRE(h.cache->Stats().subscribers_fell_behind == 1);
  // Event `rv` found hard_limit() live events queued and ended it instead.
  CHECK(sub->pending() == sub->hard_limit());
  CHECK(got.size() > sub->queue_capacity());
  for (const Received& each : Drain(*sub)) got.push_back(each);
  REQUIRE(got.size() == static_cast<std::size_t>(rv - 11));
  const std::string last = std::to_string(rv - 1);
  CHECK(got.back() == Change(kAdded, "ns/p" + last, last));
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kResourceExhausted);
  CHECK(Message(*sub->FinalStatus()) ==
        "subscriber fell behind: 16 events waited for it, 4 times its queue capacity of 4; the "
        "last event it was sent has resource version " +
            last + ": resume from it");
}

TEST_CASE(
    "a zero stall budget ends a subscriber at the second event over its capacity without "
    "a pop") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions options = Options("10");
  options.queue_capacity = 2;
  options.stall_budget = std::chrono::seconds(0);
  auto sub = h.Subscribe(std::move(options));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 12)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 13)));  // over: queued
  CHECK(sub->TryPop().has_value());                     // progress
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 14)));  // over, but read since: queued
  h.cache->ApplyWatchEvent(Added(Pod("ns", "e", 15)));  // over, nothing read: ended
  CHECK(Drain(*sub).size() == 3);
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(Message(*sub->FinalStatus()).find("resource version 14: resume from it") !=
        std::string::npos);
  SubscribeOptions negative = Options("10");
  negative.stall_budget = -std::chrono::seconds(1);
  CHECK(h.SubscribeError(std::move(negative)) == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("bookmarks are dropped while a live queue is over its capacity") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions options = Options("10");
  options.allow_bookmarks = true;
  options.queue_capacity = 2;
  auto sub = h.Subscribe(std::move(options));
  for (uint64_t rv = 11; rv <= 14; ++rv) {
    h.cache->ApplyWatchEvent(Added(Pod("ns", "p" + std::to_string(rv), rv)));
  }
  h.cache->ApplyWatchEvent(Bookmark(15));  // 4 queued, over the capacity of 2: dropped
  CHECK(sub->pending() == 4);
  CHECK(sub->TryPop().has_value());
  CHECK(sub->TryPop().has_value());
  h.cache->ApplyWatchEvent(Bookmark(16));  // at the capacity: dropped
  CHECK(sub->TryPop().has_value());
  h.cache->ApplyWatchEvent(Bookmark(17));  // below it: queued
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kAdded, "ns/p14", "14"), Marker(kBookmark, "17")});
  CHECK_FALSE(sub->FinalStatus().has_value());
}

TEST_CASE("a dropped bookmark is reported as dropped and is not a point to resume from") {
  Harness h;
  h.List({}, 10);
  SubscribeOptions options = Options("10");
  options.allow_bookmarks = true;
  options.queue_capacity = 1;
  options.stall_budget = std::chrono::seconds(0);
  auto sub = h.Subscribe(std::move(options));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));  // at the capacity
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 12)));  // over it: queued, the budget starts
  CHECK(h.cache->Stats().bookmarks_dropped == 0);
  h.cache->ApplyWatchEvent(Bookmark(13));  // over the capacity: dropped
  CHECK(h.cache->Stats().bookmarks_dropped == 1);
  CHECK(sub->pending() == 2);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 14)));  // nothing read, no budget: ended
  CHECK(Drain(*sub) ==
        std::vector<Received>{Change(kAdded, "ns/a", "11"), Change(kAdded, "ns/b", "12")});
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kResourceExhausted);
  // The last thing it was sent is 12; the dropped bookmark never reached it.
  CHECK(Message(*sub->FinalStatus()).find("resource version 12: resume from it") !=
        std::string::npos);
  // A bookmark that a subscriber did receive is still not counted.
  SubscribeOptions reading = Options("14");
  reading.allow_bookmarks = true;
  auto fresh = h.Subscribe(std::move(reading));
  h.cache->ApplyWatchEvent(Bookmark(15));
  CHECK(Drain(*fresh) == std::vector<Received>{Marker(kBookmark, "15")});
  CHECK(h.cache->Stats().bookmarks_dropped == 1);
}

TEST_CASE("a snapshot subscriber that falls behind before SYNCED is told to start over") {
  Harness h;
  auto sub = [&] {
    SubscribeOptions options = Options();
    options.queue_capacity = 1;
    return h.Subscribe(std::move(options));
  }();
  // Five differences in one relist, nothing popped in between: the fifth finds the queue at its
  // hard limit (4 × 1).
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 4), Pod("ns", "c", 5), Pod("ns", "d", 6),
          Pod("ns", "e", 7)},
         10);
  Drain(*sub);
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kResourceExhausted);
  CHECK(Message(*sub->FinalStatus()).find("subscribe again without a resource version") !=
        std::string::npos);
}

TEST_CASE("the snapshot and the replayed window do not count against the queue capacity") {
  Harness h;
  std::vector<ObjectRecord> pods;
  for (int i = 0; i < 50; ++i) pods.push_back(Pod("ns", "p" + std::to_string(i), 5));
  h.List(std::move(pods), 10);
  for (uint64_t rv = 11; rv <= 30; ++rv) h.cache->ApplyWatchEvent(Modified(Pod("ns", "p1", rv)));
  SubscribeOptions snapshot = Options();
  snapshot.queue_capacity = 2;
  auto a = h.Subscribe(std::move(snapshot));
  SubscribeOptions resume = Options("10");
  resume.queue_capacity = 2;
  auto b = h.Subscribe(std::move(resume));
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "p2", 31)));
  CHECK(Drain(*a).size() == 52);
  CHECK(Drain(*b).size() == 21);
  CHECK_FALSE(a->FinalStatus().has_value());
  CHECK_FALSE(b->FinalStatus().has_value());
}

// ---- Encoding once -----------------------------------------------------------------------------

TEST_CASE("each event is encoded once per delivered type, whatever the number of subscribers") {
  Harness h;
  h.List({Pod("ns", "a", 3, {{"app", "web"}})}, 10);
  std::vector<std::shared_ptr<Subscription>> subs;
  for (int i = 0; i < 10; ++i) subs.push_back(h.Subscribe(Options("10", i % 2 ? "app=web" : "")));
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 11, {{"app", "db"}})));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 12, {{"app", "web"}})));
  int calls = 0;
  const CacheEvent::Encoder encode = [&](const CacheEvent& event, EventType delivered) {
    ++calls;
    return std::string(EventTypeName(delivered)) + " " + event.resource_version();
  };
  std::vector<std::string> seen;
  for (auto& sub : subs) {
    while (auto delivery = sub->TryPop()) seen.push_back(delivery->Encoded(encode));
  }
  // Event 11: MODIFIED for five, DELETED for five; event 12: ADDED for all ten.
  CHECK(calls == 3);
  CHECK(seen.size() == 20);
  CHECK(std::count(seen.begin(), seen.end(), "DELETED 11") == 5);
}

// ---- Consumer protocol -------------------------------------------------------------------------

TEST_CASE("on_ready fires when an item reaches an empty queue, and once when the stream ends") {
  Harness h;
  h.List({}, 10);
  std::atomic<int> calls{0};
  SubscribeOptions options = Options("10");
  options.queue_capacity = 3;
  options.on_ready = [&] { ++calls; };
  auto sub = h.Subscribe(std::move(options));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));
  CHECK(calls == 1);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 12)));  // not empty: no call
  CHECK(calls == 1);
  Drain(*sub);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "c", 13)));
  CHECK(calls == 2);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "d", 14)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "e", 15)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "f", 16)));  // over the capacity: queued, no call
  CHECK(calls == 2);
  h.clock.Advance(std::chrono::seconds(1));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "g", 17)));  // nothing read for the budget: ended
  CHECK(calls == 3);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "h", 18)));
  CHECK(calls == 3);
}

TEST_CASE("on_ready runs without the cache's lock: the cache stays usable from inside it") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  std::atomic<bool> read_while_notified{false};
  SubscribeOptions options = Options("10");
  Cache* cache = h.cache.get();  // not a shared_ptr: the cache holds on_ready
  options.on_ready = [&, cache] {
    // Another thread takes the cache's lock; under the lock this would time out.
    auto read = std::async(std::launch::async, [cache] { return cache->Stats().object_count; });
    read_while_notified = read.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  };
  auto sub = h.Subscribe(std::move(options));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 11)));
  CHECK(read_while_notified);
}

TEST_CASE("Close is idempotent, drops what is queued and leaves nothing in the cache") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  std::atomic<int> calls{0};
  SubscribeOptions options = Options();
  options.on_ready = [&] { ++calls; };
  auto sub = h.Subscribe(std::move(options));
  CHECK(h.cache->Stats().subscriber_count == 1);
  CHECK(sub->pending() == 2);
  sub->Close();
  sub->Close();
  CHECK(h.cache->Stats().subscriber_count == 0);
  CHECK(sub->pending() == 0);
  CHECK_FALSE(sub->TryPop().has_value());
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kCancelled);
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 11)));
  CHECK(calls == 0);
  // The cache holds no reference to it any more.
  std::weak_ptr<Subscription> weak = sub;
  sub.reset();
  CHECK(weak.expired());
}

TEST_CASE("on_ready may close its own subscription") {
  Harness h;
  h.List({}, 10);
  std::shared_ptr<Subscription> sub;
  SubscribeOptions options = Options("10");
  options.on_ready = [&] { sub->Close(); };
  sub = h.Subscribe(std::move(options));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));
  CHECK(h.cache->Stats().subscriber_count == 0);
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kCancelled);
}

TEST_CASE("Shutdown ends every subscription with its status and refuses new ones") {
  Harness h;
  h.List({}, 10);
  auto sub = h.Subscribe(Options("10"));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "a", 11)));
  h.cache->Shutdown(absl::UnavailableError("informerd is shutting down"));
  CHECK(Drain(*sub).size() == 1);
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kUnavailable);
  CHECK(h.SubscribeError(Options()) == absl::StatusCode::kUnavailable);
  CHECK(h.cache->Stats().subscriber_count == 0);
}

TEST_CASE("destroying the cache ends its subscriptions with UNAVAILABLE; they outlive it safely") {
  auto h = std::make_unique<Harness>();
  h->List({}, 10);
  auto sub = h->Subscribe(Options("10"));
  h.reset();
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kUnavailable);
  sub->Close();
}

// ---- Reads -------------------------------------------------------------------------------------

TEST_CASE("List and Get answer from the cache with its resource version") {
  Harness h;
  h.List({Pod("b", "x", 3, {{"app", "web"}}), Pod("a", "y", 4, {{"app", "web"}}),
          Pod("a", "x", 5, {{"app", "db"}})},
         10);
  const auto listed = h.cache->List("", *LabelSelector::Parse("app=web"), FieldSelector());
  REQUIRE(listed.ok());
  REQUIRE(listed->items.size() == 2);
  CHECK(testing::Key(*listed->items[0]) == "a/y");
  CHECK(testing::Key(*listed->items[1]) == "b/x");
  CHECK(listed->resource_version == "10");
  CHECK(listed->synced);
  const auto in_a = h.cache->List("a", LabelSelector(), FieldSelector());
  CHECK(in_a->items.size() == 2);
  const GetResult got = h.cache->Get("a", "x");
  REQUIRE(got.object != nullptr);
  CHECK(got.object->resource_version == "5");
  CHECK(got.resource_version == "10");
  CHECK(h.cache->Get("a", "nope").object == nullptr);
}

TEST_CASE("Stats counts objects, subscribers and applied events") {
  Harness h;
  h.List({Pod("ns", "a", 3)}, 10);
  auto sub = h.Subscribe(Options());
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 11)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "b", 12)));
  const CacheStats stats = h.cache->Stats();
  CHECK(stats.object_count == 2);
  CHECK(stats.subscriber_count == 1);
  CHECK(stats.resource_version == "12");
  CHECK(stats.synced);
  CHECK(stats.events_applied == 3);  // the initial ADDED and two live events
  CHECK(stats.queue_high_water == 2);
  CHECK(stats.window_events == 2);
  CHECK_FALSE(stats.relisting);
}

TEST_CASE("Stats counts events delivered to subscribers and the JSON bytes cached") {
  Harness h;
  const auto bytes = [](const ObjectRecord& object) { return object.json.size(); };
  h.List({Pod("ns", "a", 3), Pod("ns", "b", 4)}, 10);
  CHECK(h.cache->Stats().object_bytes == bytes(Pod("ns", "a", 3)) + bytes(Pod("ns", "b", 4)));
  auto all = h.Subscribe(Options());
  auto elsewhere = h.Subscribe(Options("", "", "other"));  // matches nothing

  h.cache->ApplyWatchEvent(Modified(Pod("ns", "a", 11, {{"app", "web"}})));
  h.cache->ApplyWatchEvent(Deleted(Pod("ns", "b", 12)));
  CacheStats stats = h.cache->Stats();
  CHECK(stats.object_bytes == bytes(Pod("ns", "a", 11, {{"app", "web"}})));
  // Two live changes, each reaching one subscriber; the snapshot does not count.
  CHECK(stats.events_delivered == 2);

  // A relist: a deleted, c added; both reach `all`.
  h.List({Pod("ns", "c", 13)}, 14);
  stats = h.cache->Stats();
  CHECK(stats.object_bytes == bytes(Pod("ns", "c", 13)));
  CHECK(stats.events_delivered == 4);
}

}  // namespace
}  // namespace informerd::core
