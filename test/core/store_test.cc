// Specification of core/store.*: objects keyed by namespace/name, ordered listing, and indexes
// that answer selectors without scanning everything.
#include "core/store.h"

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "test/common/cache_test_support.h"

namespace informerd::core {
namespace {

using testing::MakeObject;

const std::vector<std::string> kPaths = {"spec.nodeName"};

std::shared_ptr<const ObjectRecord> Own(ObjectRecord record) {
  return std::make_shared<const ObjectRecord>(std::move(record));
}

ObjectFilter Filter(std::string namespace_name, std::string_view labels, std::string_view fields) {
  absl::StatusOr<ObjectFilter> filter =
      ObjectFilter::Create(std::move(namespace_name), *LabelSelector::Parse(labels),
                           *FieldSelector::Parse(fields), kPaths);
  REQUIRE(filter.ok());
  return *std::move(filter);
}

std::vector<std::string> Keys(const std::vector<std::shared_ptr<const ObjectRecord>>& objects) {
  std::vector<std::string> keys;
  for (const auto& object : objects) keys.push_back(testing::Key(*object));
  return keys;
}

// 10 namespaces × 100 pods; app = one of 20 values (50 pods each), node = one of 50 (20 pods
// each), pods 0..4 of each namespace carry a rare label.
void Populate(Store& store) {
  for (int ns = 0; ns < 10; ++ns) {
    for (int i = 0; i < 100; ++i) {
      LabelSet labels{{"app", fmt::format("app-{}", (ns * 100 + i) % 20)}};
      if (i < 5)
        labels = LabelSet{{"app", fmt::format("app-{}", (ns * 100 + i) % 20)}, {"rare", "yes"}};
      store.Put(Own(MakeObject(fmt::format("ns-{}", ns), fmt::format("pod-{:03}", i),
                               fmt::format("uid-{}-{}", ns, i), 1, labels,
                               {fmt::format("node-{}", (ns * 100 + i) % 50)})),
                0);
    }
  }
}

// The entries List examined for `filter`, and checks the result against a full scan's.
uint64_t Examined(const Store& store, const ObjectFilter& filter,
                  std::vector<std::shared_ptr<const ObjectRecord>>* result = nullptr) {
  const uint64_t before = store.entries_examined();
  auto listed = store.List(filter);
  const uint64_t examined = store.entries_examined() - before;
  std::vector<std::shared_ptr<const ObjectRecord>> expected;
  for (const auto& object : store.List(ObjectFilter())) {
    if (filter.Matches(*object)) expected.push_back(object);
  }
  CHECK(Keys(listed) == Keys(expected));
  if (result != nullptr) *result = std::move(listed);
  return examined;
}

TEST_CASE("Get finds an object by namespace and name; Remove returns it") {
  Store store(kPaths);
  CHECK(store.Put(Own(MakeObject("ns", "a", "u1", 1)), 0) == nullptr);
  REQUIRE(store.Get("ns", "a") != nullptr);
  CHECK(store.Get("ns", "a")->uid == "u1");
  CHECK(store.Get("ns", "b") == nullptr);
  CHECK(store.Get("other", "a") == nullptr);
  const auto removed = store.Remove("ns", "a");
  REQUIRE(removed != nullptr);
  CHECK(removed->uid == "u1");
  CHECK(store.Get("ns", "a") == nullptr);
  CHECK(store.Remove("ns", "a") == nullptr);
  CHECK(store.size() == 0);
}

TEST_CASE("Put replaces the object with the same key and returns the previous one") {
  Store store(kPaths);
  store.Put(Own(MakeObject("ns", "a", "u1", 1)), 0);
  const auto previous = store.Put(Own(MakeObject("ns", "a", "u1", 2)), 0);
  REQUIRE(previous != nullptr);
  CHECK(previous->resource_version == "1");
  CHECK(store.Get("ns", "a")->resource_version == "2");
  CHECK(store.size() == 1);
}

TEST_CASE("List orders results by namespace then name, whichever index it uses") {
  Store store(kPaths);
  for (const char* ns : {"b", "a", ""}) {
    for (const char* name : {"z", "m", "a"}) {
      store.Put(Own(MakeObject(ns, name, "u", 1, {{"app", "web"}}, {std::string("n1")})), 0);
    }
  }
  const std::vector<std::string> all = {"/a", "/m", "/z", "a/a", "a/m", "a/z", "b/a", "b/m", "b/z"};
  CHECK(Keys(store.List(Filter("", "", ""))) == all);                  // scan
  CHECK(Keys(store.List(Filter("", "app=web", ""))) == all);           // label index
  CHECK(Keys(store.List(Filter("", "", "spec.nodeName=n1"))) == all);  // field index
  CHECK(Keys(store.List(Filter("", "", "metadata.name=m"))) ==
        std::vector<std::string>{"/m", "a/m", "b/m"});
  CHECK(Keys(store.List(Filter("b", "", ""))) == std::vector<std::string>{"b/a", "b/m", "b/z"});
  CHECK(Keys(store.List(Filter("", "", "metadata.namespace="))) ==
        std::vector<std::string>{"/a", "/m", "/z"});
}

TEST_CASE("List without an applicable index scans every entry") {
  Store store(kPaths);
  Populate(store);
  CHECK(Examined(store, Filter("", "", "")) == 1000);
  CHECK(Examined(store, Filter("", "app!=app-1", "")) == 1000);
  CHECK(Examined(store, Filter("", "", "spec.nodeName!=node-1")) == 1000);
  CHECK(Examined(store, Filter("", "app in (app-1,app-2)", "")) == 1000);
}

TEST_CASE("List uses the label index for k=v, k==v and k in (v)") {
  Store store(kPaths);
  Populate(store);
  CHECK(Examined(store, Filter("", "app=app-3", "")) == 50);
  CHECK(Examined(store, Filter("", "app==app-3", "")) == 50);
  CHECK(Examined(store, Filter("", "app in (app-3)", "")) == 50);
  CHECK(Examined(store, Filter("", "rare=yes", "")) == 50);
}

TEST_CASE("List uses the namespace range for the request namespace and metadata.namespace=") {
  Store store(kPaths);
  Populate(store);
  CHECK(Examined(store, Filter("ns-3", "", "")) == 100);
  CHECK(Examined(store, Filter("", "", "metadata.namespace=ns-3")) == 100);
  CHECK(Examined(store, Filter("absent", "", "")) == 0);
}

TEST_CASE("List looks metadata.name= up directly: once, or once per namespace") {
  Store store(kPaths);
  Populate(store);
  std::vector<std::shared_ptr<const ObjectRecord>> result;
  CHECK(Examined(store, Filter("ns-4", "", "metadata.name=pod-007"), &result) == 1);
  CHECK(Keys(result) == std::vector<std::string>{"ns-4/pod-007"});
  CHECK(Examined(store, Filter("", "", "metadata.name=pod-007"), &result) == 10);
  CHECK(result.size() == 10);
  CHECK(Examined(store, Filter("", "", "metadata.name=absent")) == 0);
}

TEST_CASE("List uses the index of a configured extra field path") {
  Store store(kPaths);
  Populate(store);
  CHECK(Examined(store, Filter("", "", "spec.nodeName=node-7")) == 20);
}

TEST_CASE("List picks the most selective of the applicable indexes") {
  Store store(kPaths);
  Populate(store);
  // Namespace: 100, app: 50, node: 20, rare: 50.
  CHECK(Examined(store, Filter("ns-2", "app=app-0", "")) == 50);
  CHECK(Examined(store, Filter("ns-2", "app=app-0", "spec.nodeName=node-0")) == 20);
  CHECK(Examined(store, Filter("ns-2", "rare=yes,app=app-0", "metadata.name=pod-001")) == 1);
  // An index with no entry for the value proves the result empty without examining anything.
  CHECK(Examined(store, Filter("", "app=nope", "spec.nodeName=node-1")) == 0);
  CHECK(Examined(store, Filter("", "nokey=x", "")) == 0);
}

TEST_CASE("a label change moves the object between label index entries") {
  Store store(kPaths);
  store.Put(Own(MakeObject("ns", "a", "u", 1, {{"app", "web"}, {"tier", "fe"}})), 0);
  store.Put(Own(MakeObject("ns", "a", "u", 2, {{"app", "api"}, {"tier", "fe"}})), 0);
  CHECK(Examined(store, Filter("", "app=web", "")) == 0);
  CHECK(Keys(store.List(Filter("", "app=api", ""))) == std::vector<std::string>{"ns/a"});
  CHECK(Keys(store.List(Filter("", "tier=fe", ""))) == std::vector<std::string>{"ns/a"});
  store.Remove("ns", "a");
  CHECK(Examined(store, Filter("", "app=api", "")) == 0);
  CHECK(Examined(store, Filter("", "tier=fe", "")) == 0);
}

TEST_CASE("an extra field change moves the object between field index entries") {
  Store store(kPaths);
  store.Put(Own(MakeObject("ns", "a", "u", 1, {}, {std::nullopt})), 0);
  // Absent is indexed as "", which is what a field selector compares it as.
  CHECK(Keys(store.List(Filter("", "", "spec.nodeName="))) == std::vector<std::string>{"ns/a"});
  store.Put(Own(MakeObject("ns", "a", "u", 2, {}, {std::string("n1")})), 0);
  CHECK(Examined(store, Filter("", "", "spec.nodeName=")) == 0);
  CHECK(Keys(store.List(Filter("", "", "spec.nodeName=n1"))) == std::vector<std::string>{"ns/a"});
}

// A paged List (core/cache.h, "Paged lists") reads the store a page at a time: after the
// previous page's last key, at most `max` objects, whatever plan answers the filter.
TEST_CASE(
    "List after a key and at most max pages through exactly what one List returns, with "
    "every plan") {
  Store store(kPaths);
  Populate(store);
  const ObjectFilter filter = GENERATE(as<ObjectFilter>{}, Filter("", "", ""),       // scan
                                       Filter("ns-3", "", ""),                       // namespace
                                       Filter("", "", "metadata.namespace=ns-4"),    // namespace
                                       Filter("ns-2", "", "metadata.name=pod-007"),  // point
                                       Filter("", "", "metadata.name=pod-042"),  // each namespace
                                       Filter("", "app=app-3", ""),              // label index
                                       Filter("", "", "spec.nodeName=node-7"),   // field index
                                       Filter("", "app=app-3,rare=yes", ""),     // fewer
                                       Filter("absent", "", ""));                // nothing
  const std::size_t max = GENERATE(1u, 7u, 50u);
  const std::vector<std::string> all = Keys(store.List(filter));
  std::vector<std::string> paged;
  std::optional<ObjectKey> after;
  for (int pages = 0; pages < 1100; ++pages) {
    const auto page = store.List(filter, after ? &*after : nullptr, max);
    REQUIRE(page.size() <= max);
    for (const auto& object : page) paged.push_back(testing::Key(*object));
    if (page.size() < max) break;
    after = ObjectKey{page.back()->namespace_name.str(), page.back()->name.str()};
  }
  CHECK(paged == all);
}

TEST_CASE("a paged List of the namespace range starts after the key, not at the namespace") {
  Store store(kPaths);
  Populate(store);
  const ObjectKey before_namespace{"ns-2", "zzz"};
  CHECK(Keys(store.List(Filter("ns-3", "", ""), &before_namespace, 2)) ==
        std::vector<std::string>{"ns-3/pod-000", "ns-3/pod-001"});
  const ObjectKey inside{"ns-3", "pod-097"};
  CHECK(Keys(store.List(Filter("ns-3", "", ""), &inside, 5)) ==
        std::vector<std::string>{"ns-3/pod-098", "ns-3/pod-099"});
  const ObjectKey past{"ns-4", ""};
  CHECK(store.List(Filter("ns-3", "", ""), &past, 5).empty());
  // A page of a scan stops at `max`: it examines no more than it returns.
  const uint64_t examined = store.entries_examined();
  CHECK(store.List(Filter("", "", ""), &inside, 10).size() == 10);
  CHECK(store.entries_examined() - examined == 10);
}

TEST_CASE("RemoveUnstamped removes exactly the entries a list did not stamp, in key order") {
  Store store(kPaths);
  for (const char* name : {"d", "c", "b", "a"}) store.Put(Own(MakeObject("ns", name, "u", 1)), 1);
  // A new list (stamp 2) delivers b (unchanged: only stamped) and c (replaced).
  CHECK(store.Stamp("ns", "b", 2));
  CHECK_FALSE(store.Stamp("ns", "zz", 2));
  store.Put(Own(MakeObject("ns", "c", "u", 2)), 2);
  const auto removed = store.RemoveUnstamped(2);
  CHECK(Keys(removed) == std::vector<std::string>{"ns/a", "ns/d"});
  CHECK(Keys(store.List(ObjectFilter())) == std::vector<std::string>{"ns/b", "ns/c"});
  CHECK(Examined(store, Filter("ns", "", "")) == 2);
}

}  // namespace
}  // namespace informerd::core
