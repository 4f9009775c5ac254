// Specification of core/cache.*'s paged lists ("Paged lists" in cache.h) and of the continue
// token (core/list_continue.*): every page of one list is read from the state at the first
// page's resource version, whatever changes in between, and a page whose state the cache can no
// longer read is OUT_OF_RANGE, never an inconsistent page.
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/list_continue.h"
#include "fmt/format.h"
#include "test/common/cache_test_support.h"
#include "test/common/fake_clock.h"

namespace informerd::core {
namespace {

using testing::Added;
using testing::Deleted;
using testing::MakeObject;
using testing::Modified;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

ObjectRecord Pod(const std::string& ns, const std::string& name, uint64_t rv, LabelSet labels = {},
                 const std::string& uid_suffix = "") {
  return MakeObject(ns, name, "u-" + ns + "/" + name + uid_suffix, rv, std::move(labels));
}

struct Harness {
  explicit Harness(CacheOptions options = {}) : cache(Cache::Create(std::move(options), clock)) {}

  void List(std::vector<ObjectRecord> items, uint64_t rv) {
    cache->BeginList();
    cache->ListItems(std::move(items), std::to_string(rv));
    cache->EndList(std::to_string(rv));
  }

  absl::StatusOr<ListResult> Page(std::size_t limit, const std::optional<ListCursor>& from,
                                  const std::string& labels = "", const std::string& ns = "") {
    ListChunk page;
    page.limit = limit;
    page.from = from;
    return cache->List(ns, *LabelSelector::Parse(labels), *FieldSelector::Parse(""), page);
  }

  FakeClock clock;
  std::shared_ptr<Cache> cache;
};

std::optional<ListCursor> Next(const ListResult& page) {
  if (!page.more) return std::nullopt;
  const ObjectRecord& last = *page.items.back();
  return ListCursor{page.state, ObjectKey{last.namespace_name.str(), last.name.str()}};
}

// key → JSON.
std::map<std::string, std::string> Contents(
    const std::vector<std::shared_ptr<const ObjectRecord>>& items) {
  return testing::ByKey(items);
}

std::vector<std::string> Keys(const std::vector<std::shared_ptr<const ObjectRecord>>& items) {
  std::vector<std::string> keys;
  for (const auto& item : items) keys.push_back(testing::Key(*item));
  return keys;
}

TEST_CASE(
    "a limit cuts the list into pages, each continuing after the last key, all at one "
    "resource version") {
  Harness h;
  h.List({Pod("a", "p1", 1), Pod("a", "p2", 2), Pod("b", "p1", 3), Pod("b", "p2", 4),
          Pod("c", "p1", 5)},
         10);
  auto first = h.Page(2, std::nullopt);
  REQUIRE(first.ok());
  CHECK(Keys(first->items) == std::vector<std::string>{"a/p1", "a/p2"});
  CHECK(first->more);
  CHECK(first->synced);
  CHECK(first->resource_version == "10");
  CHECK(first->state.cache_id == h.cache->id());
  CHECK(first->state.version == 10);
  auto second = h.Page(2, Next(*first));
  REQUIRE(second.ok());
  CHECK(Keys(second->items) == std::vector<std::string>{"b/p1", "b/p2"});
  CHECK(second->more);
  CHECK(second->resource_version == "10");
  auto third = h.Page(2, Next(*second));
  REQUIRE(third.ok());
  CHECK(Keys(third->items) == std::vector<std::string>{"c/p1"});
  CHECK_FALSE(third->more);
  // A page that ends exactly at the last object says there is no more: no empty last page.
  auto exact = h.Page(5, std::nullopt);
  REQUIRE(exact.ok());
  CHECK(exact->items.size() == 5);
  CHECK_FALSE(exact->more);
  // No limit: everything, as before.
  auto all = h.Page(0, std::nullopt);
  REQUIRE(all.ok());
  CHECK(all->items.size() == 5);
  CHECK_FALSE(all->more);
}

// The scenario the apiserver's paged lists promise: 2,000 objects in pages of 500 while the
// resource changes between pages (objects behind and ahead of the cursor modified, deleted,
// created, re-created under a new UID, labels changed so that they start or stop matching) give
// exactly the state at the first page's version.
TEST_CASE(
    "paging through 2,000 objects in pages of 500 while writes happen gives exactly the "
    "state at the first page's version") {
  const std::string selector = GENERATE(std::string(""), std::string("tier=web"));
  Harness h;
  std::vector<ObjectRecord> items;
  uint64_t rv = 0;
  for (int i = 0; i < 2000; ++i) {
    items.push_back(Pod(fmt::format("ns-{}", i % 7), fmt::format("pod-{:04}", i), ++rv,
                        {{"tier", i % 3 == 0 ? "db" : "web"}}));
  }
  h.List(std::move(items), rv);
  // The state at the first page's version, read in one piece at the same moment.
  auto reference = h.Page(0, std::nullopt, selector);
  REQUIRE(reference.ok());
  const std::map<std::string, std::string> expected = Contents(reference->items);

  std::mt19937 random(7);
  const auto write_some = [&] {
    for (int n = 0; n < 150; ++n) {
      const int i = static_cast<int>(random() % 2300);  // some never existed at the version
      const std::string ns = fmt::format("ns-{}", i % 7);
      const std::string name = fmt::format("pod-{:04}", i);
      const LabelSet labels{{"tier", random() % 2 == 0 ? "db" : "web"}};
      const auto cached = h.cache->Get(ns, name).object;
      switch (random() % 4) {
        case 0:
          if (cached) h.cache->ApplyWatchEvent(Deleted(Pod(ns, name, ++rv)));
          break;
        case 1:
          // Re-created under a new UID: DELETED then ADDED.
          h.cache->ApplyWatchEvent(
              Added(Pod(ns, name, rv += 2, labels, fmt::format("-again-{}", rv))));
          break;
        default:
          if (cached) {
            ObjectRecord changed = MakeObject(ns, name, cached->uid.str(), ++rv, labels);
            h.cache->ApplyWatchEvent(Modified(std::move(changed)));
          } else {
            h.cache->ApplyWatchEvent(Added(Pod(ns, name, ++rv, labels)));
          }
      }
    }
  };

  std::vector<std::shared_ptr<const ObjectRecord>> paged;
  std::optional<ListCursor> from;
  int pages = 0;
  do {
    auto page = h.Page(500, from, selector);
    INFO(Message(page.status()));
    REQUIRE(page.ok());
    CHECK(page->resource_version == reference->resource_version);
    CHECK(page->items.size() <= 500);
    paged.insert(paged.end(), page->items.begin(), page->items.end());
    from = Next(*page);
    ++pages;
    write_some();
  } while (from);
  CHECK(pages == static_cast<int>((expected.size() + 499) / 500));
  // Ordered, no duplicates, and exactly the state at the version.
  CHECK(std::is_sorted(paged.begin(), paged.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a->namespace_name.view(), a->name.view()) <
           std::make_pair(b->namespace_name.view(), b->name.view());
  }));
  CHECK(paged.size() == expected.size());
  CHECK(Contents(paged) == expected);
  // The cache really did move on.
  auto now = h.Page(0, std::nullopt, selector);
  REQUIRE(now.ok());
  CHECK(Contents(now->items) != expected);
}

TEST_CASE("a continued page reads the objects deleted since and leaves out those created since") {
  Harness h;
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2), Pod("ns", "c", 3), Pod("ns", "d", 4)}, 10);
  auto first = h.Page(1, std::nullopt);
  REQUIRE(first.ok());
  h.cache->ApplyWatchEvent(Deleted(Pod("ns", "b", 11)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "bb", 12)));
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "c", 13)));
  h.cache->ApplyWatchEvent(Added(Pod("ns", "e", 14)));
  auto rest = h.Page(0, Next(*first));
  REQUIRE(rest.ok());
  CHECK(Keys(rest->items) == std::vector<std::string>{"ns/b", "ns/c", "ns/d"});
  CHECK(rest->items[1]->resource_version == "3");  // c as it was at 10
  CHECK(rest->resource_version == "10");
  CHECK_FALSE(rest->more);
}

TEST_CASE(
    "a continued page is OUT_OF_RANGE once the replay window no longer reaches back to "
    "the list's version") {
  CacheOptions options;
  options.window_max_events = 10;
  Harness h(options);
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2), Pod("ns", "c", 3)}, 10);
  auto first = h.Page(1, std::nullopt);
  REQUIRE(first.ok());
  // Ten changes: the window still holds every change since 10.
  for (uint64_t rv = 11; rv <= 20; ++rv) h.cache->ApplyWatchEvent(Added(Pod("x", "p", rv)));
  auto second = h.Page(1, Next(*first));
  REQUIRE(second.ok());
  CHECK(Keys(second->items) == std::vector<std::string>{"ns/b"});
  // One more: the first change since 10 has left it.
  h.cache->ApplyWatchEvent(Modified(Pod("x", "p", 21)));
  auto third = h.Page(1, Next(*second));
  REQUIRE_FALSE(third.ok());
  CHECK(third.status().code() == absl::StatusCode::kOutOfRange);
  CHECK(Message(third.status()) ==
        "continue: the list's state at resource version 10 is no longer available (the "
        "resource has changed more since than informerd's replay window holds; it reaches back "
        "to resource version 11); re-list from the start, without continue");
}

TEST_CASE(
    "a continued page is OUT_OF_RANGE once the window's changes are older than its age "
    "limit") {
  CacheOptions options;
  options.window_max_age = std::chrono::seconds(75);
  Harness h(options);
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2)}, 10);
  auto first = h.Page(1, std::nullopt);
  REQUIRE(first.ok());
  h.cache->ApplyWatchEvent(Added(Pod("x", "p", 11)));
  // A quiet resource: nothing pushes the change out, the list can be continued much later.
  h.clock.Advance(std::chrono::minutes(10));
  CHECK(h.Page(1, Next(*first)).ok());
  // The next change expires the old one.
  h.cache->ApplyWatchEvent(Modified(Pod("x", "p", 12)));
  auto late = h.Page(1, Next(*first));
  REQUIRE_FALSE(late.ok());
  CHECK(late.status().code() == absl::StatusCode::kOutOfRange);
}

TEST_CASE(
    "a relist that changed the cache makes a list's continued pages OUT_OF_RANGE; one that "
    "changed nothing does not") {
  Harness h;
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2), Pod("ns", "c", 3)}, 10);
  auto first = h.Page(1, std::nullopt);
  REQUIRE(first.ok());
  // The same objects at a later version: no difference, the window keeps its history.
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2), Pod("ns", "c", 3)}, 15);
  auto second = h.Page(1, Next(*first));
  REQUIRE(second.ok());
  CHECK(Keys(second->items) == std::vector<std::string>{"ns/b"});
  CHECK(second->resource_version == "10");
  // A relist that changes an object the list has not reached yet.
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2), Pod("ns", "c", 17)}, 20);
  auto third = h.Page(1, Next(*second));
  REQUIRE_FALSE(third.ok());
  CHECK(third.status().code() == absl::StatusCode::kOutOfRange);
  CHECK(Message(third.status()) ==
        "continue: the list's state at resource version 10 is no longer available (the cache "
        "has since been relisted from the apiserver, or its history of changes was reset); "
        "re-list from the start, without continue");
  // While a relist is changing the cache too, before it ends.
  auto again = h.Page(1, std::nullopt);
  REQUIRE(again.ok());
  h.cache->BeginList();
  h.cache->ListItems({Pod("ns", "a", 21)}, "22");
  auto during = h.Page(1, Next(*again));
  REQUIRE_FALSE(during.ok());
  CHECK(during.status().code() == absl::StatusCode::kOutOfRange);
}

// The window restarts at the list's version after a relist, so it alone would let a page read
// "the state at 10" again; but that is no longer the state the first page was read from.
TEST_CASE(
    "a relist at the list's own version that changed the cache makes continued pages "
    "OUT_OF_RANGE") {
  Harness h;
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2), Pod("ns", "c", 3)}, 10);
  auto first = h.Page(1, std::nullopt);
  REQUIRE(first.ok());
  h.List({Pod("ns", "a", 1), Pod("ns", "c", 3)}, 10);
  auto next = h.Page(1, Next(*first));
  REQUIRE_FALSE(next.ok());
  CHECK(next.status().code() == absl::StatusCode::kOutOfRange);
}

TEST_CASE("a window reset (a change the window cannot order) makes continued pages OUT_OF_RANGE") {
  Harness h;
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2)}, 10);
  auto first = h.Page(1, std::nullopt);
  REQUIRE(first.ok());
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "b", 5)));  // goes backwards
  auto next = h.Page(1, Next(*first));
  REQUIRE_FALSE(next.ok());
  CHECK(next.status().code() == absl::StatusCode::kOutOfRange);
}

TEST_CASE("a cursor from another cache is OUT_OF_RANGE, even at a version this one could read") {
  Harness h;
  Harness other;
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2)}, 10);
  other.List({Pod("ns", "a", 1), Pod("ns", "b", 2)}, 10);
  CHECK(h.cache->id() != other.cache->id());
  auto first = other.Page(1, std::nullopt);
  REQUIRE(first.ok());
  auto next = h.Page(1, Next(*first));
  REQUIRE_FALSE(next.ok());
  CHECK(next.status().code() == absl::StatusCode::kOutOfRange);
  CHECK(Message(next.status()) ==
        "continue: the list's state at resource version 10 is no longer available (the list "
        "was started on another cache: another informerd replica, or before informerd or the "
        "resource's informer restarted); re-list from the start, without continue");
}

TEST_CASE("continued pages of a filtered list use the state at the version for the filter too") {
  Harness h;
  h.List({Pod("ns", "a", 1, {{"app", "web"}}), Pod("ns", "b", 2, {{"app", "web"}}),
          Pod("ns", "c", 3, {{"app", "db"}}), Pod("other", "d", 4, {{"app", "web"}})},
         10);
  auto first = h.Page(1, std::nullopt, "app=web", "ns");
  REQUIRE(first.ok());
  CHECK(Keys(first->items) == std::vector<std::string>{"ns/a"});
  // b stops matching, c starts matching: neither shows in the list at 10 as it is now.
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "b", 11, {{"app", "db"}})));
  h.cache->ApplyWatchEvent(Modified(Pod("ns", "c", 12, {{"app", "web"}})));
  auto rest = h.Page(10, Next(*first), "app=web", "ns");
  REQUIRE(rest.ok());
  CHECK(Keys(rest->items) == std::vector<std::string>{"ns/b"});
  CHECK(rest->items[0]->resource_version == "2");
  CHECK_FALSE(rest->more);
}

TEST_CASE("a continued page is served while the cache is not synced, from its history") {
  Harness h;
  h.List({Pod("ns", "a", 1), Pod("ns", "b", 2)}, 10);
  auto first = h.Page(1, std::nullopt);
  REQUIRE(first.ok());
  h.cache->MarkUnsynced("resource no longer served by the apiserver");
  auto next = h.Page(1, Next(*first));
  REQUIRE(next.ok());
  CHECK(next->synced);
  CHECK(Keys(next->items) == std::vector<std::string>{"ns/b"});
}

// ---- The continue token ---------------------------------------------------------------------

TEST_CASE("a continue token round-trips") {
  ListContinue token;
  token.cursor.state = ListState{
      0xfedcba9876543210ULL,
      3,
      123456789,
  };
  token.cursor.after = ObjectKey{"kube-system", "coredns-5d78c9869d-abcde"};
  token.query = ListQueryHash({"v1/pods", "kube-system", "app=x", ""});
  const std::string encoded = EncodeListContinue(token);
  CHECK(encoded.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
        std::string::npos);
  auto decoded = DecodeListContinue(encoded);
  REQUIRE(decoded.ok());
  CHECK(decoded->cursor.state.cache_id == token.cursor.state.cache_id);
  CHECK(decoded->cursor.state.generation == 3);
  CHECK(decoded->cursor.state.version == 123456789);
  CHECK(decoded->cursor.after.namespace_name == "kube-system");
  CHECK(decoded->cursor.after.name == "coredns-5d78c9869d-abcde");
  CHECK(decoded->query == token.query);
  // Cluster-scoped objects have no namespace.
  token.cursor.after = ObjectKey{"", "node-1"};
  decoded = DecodeListContinue(EncodeListContinue(token));
  REQUIRE(decoded.ok());
  CHECK(decoded->cursor.after.namespace_name.empty());
  CHECK(decoded->cursor.after.name == "node-1");
}

TEST_CASE("anything but a token informerd encoded is INVALID_ARGUMENT") {
  const std::string bad = GENERATE(std::string("not base64!"), std::string("aGVsbG8"),
                                   std::string("aTEKMQoyCjMKNApucwo"),    // no name
                                   std::string("aTEKeAoyCjMKNApucwpu"),   // non-numeric id
                                   std::string("aTIKMQoyCjMKNApucwpu"));  // another format
  auto decoded = DecodeListContinue(bad);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(decoded.status()).rfind("continue: not a continue token of this list", 0) == 0);
}

TEST_CASE("the forged tokens above differ from a valid one only in the part named") {
  auto valid = DecodeListContinue("aTEKMQoyCjMKNApucwpu");
  REQUIRE(valid.ok());
  CHECK(valid->cursor.after.name == "n");
}

TEST_CASE("the query hash tells requests apart") {
  CHECK(ListQueryHash({"pods", "ns", "a=b", ""}) == ListQueryHash({"pods", "ns", "a=b", ""}));
  CHECK(ListQueryHash({"pods", "ns", "a=b", ""}) != ListQueryHash({"pods", "ns", "", "a=b"}));
  CHECK(ListQueryHash({"ab", "c"}) != ListQueryHash({"a", "bc"}));
  // Stable across builds and processes: a pinned value.
  CHECK(ListQueryHash({}) == 14695981039346656037ULL);
}

}  // namespace
}  // namespace informerd::core
