// Specification of List's pages and response bounds (informerd.proto, List; unary_calls.cc) over
// a real gRPC server: `limit` and `continue` as the apiserver's, every page of a list read from
// the first page's state, an expired continue OUT_OF_RANGE, invalid tokens INVALID_ARGUMENT, pages
// cut at --max-list-response-bytes, and an unpaged List over a bound refused RESOURCE_EXHAUSTED
// rather than failing in the client (gRPC's default 4 MiB receive limit).
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/object_scanner.h"
#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using testing::Harness;
using testing::HarnessOptions;
using testing::ObjectSpec;
using testing::Sync;

struct ListOutcome {
  grpc::Status status;
  v1::ListResponse response;
};

struct ListArgs {
  std::string resource = "pods";
  std::string namespace_name;
  std::string label_selector;
  int64_t limit = 0;
  std::string continue_token;
  std::string min_resource_version;
};

ListArgs Args(std::string namespace_name, std::string label_selector = "") {
  ListArgs args;
  args.namespace_name = std::move(namespace_name);
  args.label_selector = std::move(label_selector);
  return args;
}

ListOutcome List(v1::Informer::Stub& stub, const ListArgs& args) {
  v1::ListRequest request;
  request.set_resource(args.resource);
  request.set_namespace_(args.namespace_name);
  request.set_label_selector(args.label_selector);
  request.set_limit(args.limit);
  request.set_continue_(args.continue_token);
  request.set_min_resource_version(args.min_resource_version);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  ListOutcome outcome;
  outcome.status = stub.List(&context, request, &outcome.response);
  return outcome;
}

// "namespace/name" → resourceVersion, read from the items' JSON.
std::map<std::string, std::string> Objects(const std::vector<std::string>& items) {
  std::map<std::string, std::string> objects;
  for (const std::string& item : items) {
    core::ScanOptions options;
    core::ObjectScanner scanner(options);
    absl::StatusOr<core::ObjectRecord> record = scanner.Scan(item);
    REQUIRE(record.ok());
    objects[fmt::format("{}/{}", record->namespace_name.view(), record->name.view())] =
        record->resource_version.str();
  }
  return objects;
}

// Every page of a list with `args` (limit set), and the items they held.
struct Paged {
  std::vector<v1::ListResponse> pages;
  std::vector<std::string> items;
};
Paged ListAll(
    v1::Informer::Stub& stub, ListArgs args, const std::function<void()>& between_pages = [] {}) {
  Paged paged;
  do {
    ListOutcome outcome = List(stub, args);
    INFO(outcome.status.error_message());
    REQUIRE(outcome.status.ok());
    paged.items.insert(paged.items.end(), outcome.response.items().begin(),
                       outcome.response.items().end());
    args.continue_token = outcome.response.continue_();
    paged.pages.push_back(std::move(outcome.response));
    between_pages();
  } while (!args.continue_token.empty());
  return paged;
}

std::vector<ObjectSpec> Pods(int count, std::size_t padding) {
  std::vector<ObjectSpec> pods;
  for (int i = 0; i < count; ++i) {
    ObjectSpec pod(fmt::format("ns-{}", i % 5), fmt::format("pod-{:04}", i), 100 + i,
                   {{"app", i % 2 == 0 ? "web" : "db"}});
    pod.padding = padding;
    pods.push_back(std::move(pod));
  }
  return pods;
}

TEST_CASE(
    "2,000 pods of about 4 KB in pages of 500 while the cache changes: exactly the state "
    "at the first page's resource version, every page readable with gRPC's default limit",
    "[list][pages]") {
  Harness harness;
  auto cache = harness.AddCache();
  std::vector<ObjectSpec> pods = Pods(2000, 4000);
  Sync(*cache, pods, 5000);
  std::map<std::string, std::string> expected;
  for (const ObjectSpec& pod : pods) {
    expected[fmt::format("{}/{}", pod.namespace_name, pod.name)] =
        std::to_string(pod.resource_version);
  }
  REQUIRE(expected.size() == 2000);

  uint64_t rv = 5000;
  int page_number = 0;
  ListArgs args;
  args.limit = 500;
  Paged paged = ListAll(*harness.stub, args, [&] {
    // Between pages: objects behind and ahead of the cursor modified and deleted, new ones.
    ++page_number;
    for (int i = 0; i < 2000; i += 97) {
      ObjectSpec pod = pods[(i + page_number * 13) % 2000];
      pod.resource_version = ++rv;
      cache->ApplyWatchEvent(page_number % 2 == 0 ? testing::Modified(pod) : testing::Deleted(pod));
    }
    cache->ApplyWatchEvent(
        testing::Added(ObjectSpec("ns-0", fmt::format("new-{}", page_number), ++rv)));
  });
  REQUIRE(paged.pages.size() >= 4);
  for (const v1::ListResponse& page : paged.pages) {
    CHECK(page.resource_version() == "5000");
    CHECK(page.items_size() <= 500);
    CHECK(page.ByteSizeLong() <= 4u << 20);
  }
  CHECK(paged.pages.back().continue_().empty());
  CHECK(paged.items.size() == 2000);
  CHECK(Objects(paged.items) == expected);
}

TEST_CASE(
    "a List without limit whose answer would not fit is RESOURCE_EXHAUSTED naming the "
    "bound, where a default client used to fail on its own 4 MiB limit",
    "[list][bounds]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, Pods(2000, 4000), 5000);
  const ListOutcome unpaged = List(*harness.stub, ListArgs());
  CHECK(unpaged.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Said by informerd, not by the client's receive limit ("Received message larger than max").
  CHECK_THAT(unpaged.status.error_message(),
             Catch::StartsWith("the list of pods (all namespaces) would take ") &&
                 Catch::Contains("bytes, more than the 4128768 one answer may hold "
                                 "(--max-list-response-bytes=4128768); list it in pages with "
                                 "limit and continue"));
  // A namespace's share fits.
  const ListOutcome one_namespace = List(*harness.stub, Args("ns-1"));
  CHECK(one_namespace.status.ok());
  CHECK(one_namespace.response.items_size() == 400);
  CHECK(one_namespace.response.continue_().empty());
  CHECK(harness.service->list_stats().refused_bytes == 1);
}

TEST_CASE(
    "pages stop at the byte bound with a continue; an object larger than the bound goes "
    "alone on its page; an unpaged List over the bound is refused",
    "[list][bounds]") {
  HarnessOptions options;
  options.service.max_list_response_bytes = 20000;
  Harness harness(options);
  auto cache = harness.AddCache();
  std::vector<ObjectSpec> pods = Pods(40, 1500);
  pods[17].padding = 50000;  // alone over the bound
  Sync(*cache, pods, 500);
  ListArgs args;
  args.limit = 100;
  const Paged paged = ListAll(*harness.stub, args);
  CHECK(paged.items.size() == 40);
  int alone = 0;
  for (std::size_t i = 0; i < paged.pages.size(); ++i) {
    const v1::ListResponse& page = paged.pages[i];
    REQUIRE(page.items_size() >= 1);
    if (page.ByteSizeLong() > 20000) {
      CHECK(page.items_size() == 1);
      ++alone;
    }
    if (i + 1 < paged.pages.size()) CHECK_FALSE(page.continue_().empty());
  }
  CHECK(alone == 1);
  CHECK(paged.pages.size() > 3);
  CHECK(harness.service->list_stats().pages == paged.pages.size());
  CHECK(harness.service->list_stats().pages_cut_at_bytes >= paged.pages.size() - 1);
  const ListOutcome unpaged = List(*harness.stub, ListArgs());
  CHECK(unpaged.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK_THAT(unpaged.status.error_message(), Catch::Contains("(--max-list-response-bytes=20000)"));
}

TEST_CASE(
    "an unpaged List over the object bound is RESOURCE_EXHAUSTED; a limit above it gives "
    "pages of the bound",
    "[list][bounds]") {
  HarnessOptions options;
  options.service.max_list_response_objects = 10;
  Harness harness(options);
  auto cache = harness.AddCache();
  Sync(*cache, Pods(25, 0), 500);
  const ListOutcome unpaged = List(*harness.stub, ListArgs());
  CHECK(unpaged.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(unpaged.status.error_message() ==
        "the list of pods (all namespaces) has more than 10 objects, the most one answer may "
        "hold (--max-list-response-objects=10); list it in pages with limit and continue");
  CHECK(harness.service->list_stats().refused_objects == 1);
  // Exactly at the bound is fine.
  CHECK(List(*harness.stub, Args("", "app=web")).status.error_code() ==
        grpc::StatusCode::RESOURCE_EXHAUSTED);           // 13 match
  CHECK(List(*harness.stub, Args("ns-0")).status.ok());  // 5
  ListArgs args;
  args.limit = 1000;
  const Paged paged = ListAll(*harness.stub, args);
  CHECK(paged.pages.size() == 3);
  CHECK(paged.pages[0].items_size() == 10);
  CHECK(paged.items.size() == 25);
}

TEST_CASE(
    "a continue token the cache can no longer serve is OUT_OF_RANGE, never a page of "
    "another state",
    "[list][pages]") {
  Harness harness;
  Harness::CacheSpec spec;
  spec.cache.window_max_events = 5;
  auto cache = harness.AddCache(spec);
  Sync(*cache, Pods(10, 0), 500);
  ListArgs args;
  args.limit = 4;
  const ListOutcome first = List(*harness.stub, args);
  REQUIRE(first.status.ok());
  REQUIRE_FALSE(first.response.continue_().empty());
  for (uint64_t rv = 501; rv <= 506; ++rv) {
    cache->ApplyWatchEvent(testing::Added(ObjectSpec("ns-9", fmt::format("late-{}", rv), rv)));
  }
  args.continue_token = first.response.continue_();
  const ListOutcome next = List(*harness.stub, args);
  CHECK(next.status.error_code() == grpc::StatusCode::OUT_OF_RANGE);
  CHECK(next.status.error_message() ==
        "continue: the list's state at resource version 500 is no longer available (the "
        "resource has changed more since than informerd's replay window holds; it reaches back "
        "to resource version 501); re-list from the start, without continue");
  CHECK(harness.service->list_stats().continues_expired == 1);
}

TEST_CASE("a continue token from another informerd is OUT_OF_RANGE", "[list][pages]") {
  Harness one;
  Harness other;
  Sync(*one.AddCache(), Pods(10, 0), 500);
  Sync(*other.AddCache(), Pods(10, 0), 500);
  ListArgs args;
  args.limit = 4;
  const ListOutcome first = List(*other.stub, args);
  REQUIRE(first.status.ok());
  args.continue_token = first.response.continue_();
  const ListOutcome next = List(*one.stub, args);
  CHECK(next.status.error_code() == grpc::StatusCode::OUT_OF_RANGE);
  CHECK_THAT(next.status.error_message(),
             Catch::Contains("the list was started on another cache: another informerd replica"));
}

TEST_CASE(
    "a continued page does not wait for a relist: one that changed the cache makes it "
    "OUT_OF_RANGE at once",
    "[list][pages]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, Pods(10, 0), 500);
  ListArgs args;
  args.limit = 4;
  const ListOutcome first = List(*harness.stub, args);
  REQUIRE(first.status.ok());
  // A relist that has changed the cache and not ended: a first page would wait for its end.
  cache->BeginList();
  cache->ListItems({testing::Object(ObjectSpec("ns-0", "pod-0000", 600))}, "600");
  args.continue_token = first.response.continue_();
  const auto start = std::chrono::steady_clock::now();
  const ListOutcome next = List(*harness.stub, args);
  CHECK(next.status.error_code() == grpc::StatusCode::OUT_OF_RANGE);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("a continued page is read even while the resource is not synced", "[list][pages]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, Pods(10, 0), 500);
  ListArgs args;
  args.limit = 4;
  const ListOutcome first = List(*harness.stub, args);
  REQUIRE(first.status.ok());
  // A relist that has not changed anything yet keeps the cache's state and history.
  cache->BeginList();
  args.continue_token = first.response.continue_();
  const ListOutcome next = List(*harness.stub, args);
  CHECK(next.status.ok());
  CHECK(next.response.items_size() == 4);
  CHECK(next.response.resource_version() == "500");
}

TEST_CASE("invalid paging is INVALID_ARGUMENT", "[list][pages][errors]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, Pods(10, 0), 500);
  harness.resolver.Add("po", testing::PodsResource());
  ListArgs args;
  args.limit = 4;
  args.label_selector = "app=web";
  const ListOutcome first = List(*harness.stub, args);
  REQUIRE(first.status.ok());
  const std::string token = first.response.continue_();
  REQUIRE_FALSE(token.empty());

  const auto refused = [&](ListArgs changed, const std::string& message) {
    const ListOutcome outcome = List(*harness.stub, changed);
    CHECK(outcome.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(outcome.status.error_message(), Catch::StartsWith(message));
  };
  ListArgs garbage = args;
  garbage.continue_token = "!!not a token";
  refused(garbage, "continue: not a continue token of this list (not base64)");
  ListArgs truncated = args;
  truncated.continue_token = token.substr(0, token.size() / 2);
  refused(truncated, "continue: not a continue token of this list");
  ListArgs other_selector = args;
  other_selector.continue_token = token;
  other_selector.label_selector = "app=db";
  refused(other_selector, "continue: the token is of another list");
  ListArgs other_namespace = args;
  other_namespace.continue_token = token;
  other_namespace.namespace_name = "ns-1";
  refused(other_namespace, "continue: the token is of another list");
  ListArgs negative = args;
  negative.limit = -1;
  refused(negative, "limit: must not be negative, got -1");
  ListArgs with_version = args;
  with_version.continue_token = token;
  with_version.min_resource_version = "500";
  refused(with_version, "min_resource_version cannot be given with continue");
  // Another name for the same resource is the same list.
  ListArgs short_name = args;
  short_name.resource = "po";
  short_name.continue_token = token;
  CHECK(List(*harness.stub, short_name).status.ok());
}

TEST_CASE("a limit of 0 with a continue token reads the rest, up to the bounds", "[list][pages]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, Pods(10, 0), 500);
  ListArgs args;
  args.limit = 3;
  const ListOutcome first = List(*harness.stub, args);
  REQUIRE(first.status.ok());
  args.limit = 0;
  args.continue_token = first.response.continue_();
  const ListOutcome rest = List(*harness.stub, args);
  REQUIRE(rest.status.ok());
  CHECK(rest.response.items_size() == 7);
  CHECK(rest.response.continue_().empty());
}

}  // namespace
}  // namespace informerd::daemon
