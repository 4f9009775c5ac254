// Specification of the limits on what one client can make the Informer service hold
// (daemon/service/client_limits.h), over real gRPC:
//   * Subscribe streams per user (--max-subscriptions-per-user) and in total
//     (--max-subscriptions): the next one is refused RESOURCE_EXHAUSTED naming the limit, before
//     any snapshot work, while other users still get in; a place is given back when its stream
//     ends, however it ends (the client cancels, the subscription fails, the daemon ends it),
//     and before the client can read the final status.
//   * Selectors' length (--max-selector-bytes) and number of requirements
//     (--max-selector-requirements), on Subscribe and List, label and field selectors alike: a
//     20,000-clause selector is refused INVALID_ARGUMENT naming the limit, quickly, and the
//     daemon goes on serving everyone else.
// Users come from access_test_support.h's scripted apiserver: alice may read pods in team-a,
// admin everything.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/service/client_limits.h"
#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"
#include "test/daemon/service/access_test_support.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using testing::AccessHarness;
using testing::AccessHarnessOptions;
using testing::Authorization;
using testing::AuthorizedStream;
using testing::Bearer;
using testing::SubscribeTo;
using testing::Text;
using Strings = std::vector<std::string>;
using SteadyClock = std::chrono::steady_clock;

const Authorization kAlice = Bearer("alice-token");
const Authorization kAdmin = Bearer("admin-token");

// alice's snapshot of team-a's pods.
const Strings kTeamASnapshot = {"ADDED team-a/a1 rv=5", "ADDED team-a/a2 rv=6", "SYNCED rv=10"};

// The service with the given subscription limits over a pods cache (team-a's and team-b's pods)
// and a nodes cache.
struct Served {
  Served(std::size_t max_total, std::size_t max_per_user) : h(Options(max_total, max_per_user)) {
    pods = h.harness->AddCache();
    testing::Sync(*pods, {{"team-a", "a1", 5}, {"team-a", "a2", 6}, {"team-b", "b1", 7}}, 10);
    testing::Harness::CacheSpec nodes_spec;
    nodes_spec.resource = testing::NodesResource();
    nodes = h.harness->AddCache(nodes_spec);
    testing::Sync(*nodes, {{"", "n1", 3}}, 4);
  }

  static AccessHarnessOptions Options(std::size_t max_total, std::size_t max_per_user) {
    AccessHarnessOptions options;
    options.service.max_subscriptions = max_total;
    options.service.max_subscriptions_per_user = max_per_user;
    return options;
  }

  v1::Informer::Stub& stub() { return h.stub(); }
  ClientLimitStats stats() const { return h.harness->service->client_limit_stats(); }

  // A stream of alice's on team-a's pods, read up to its SYNCED: open and holding its place.
  std::unique_ptr<AuthorizedStream> OpenAlice() {
    auto stream = std::make_unique<AuthorizedStream>(stub(), kAlice, SubscribeTo("pods", "team-a"));
    CHECK(stream->Read(3) == kTeamASnapshot);
    return stream;
  }
  // A stream of admin's on the nodes, read up to its SYNCED.
  std::unique_ptr<AuthorizedStream> OpenAdminNodes() {
    auto stream = std::make_unique<AuthorizedStream>(stub(), kAdmin, SubscribeTo("nodes"));
    CHECK(stream->Read(2) == Strings{"ADDED n1 rv=3", "SYNCED rv=4"});
    return stream;
  }
  // The status of a Subscribe expected to fail, and that nothing came before it.
  std::string Refused(const Authorization& authorization, const v1::SubscribeRequest& request) {
    Strings events;
    const std::string status =
        Text(testing::SubscribeError(stub(), authorization, request, &events));
    CHECK(events.empty());
    return status;
  }

  AccessHarness h;
  std::shared_ptr<core::Cache> pods;
  std::shared_ptr<core::Cache> nodes;
};

const char kAliceOverLimit[] =
    "RESOURCE_EXHAUSTED: too many subscriptions for user \"alice\": 3 open "
    "(--max-subscriptions-per-user=3); close one or retry later";

TEST_CASE("a user's subscription past --max-subscriptions-per-user is refused; others get in",
          "[limits][subscriptions]") {
  Served s(/*max_total=*/100, /*max_per_user=*/3);
  std::vector<std::unique_ptr<AuthorizedStream>> alice;
  for (int i = 0; i < 3; ++i) alice.push_back(s.OpenAlice());
  CHECK(s.pods->Stats().subscriber_count == 3);

  // The fourth: refused before any subscription is made for it (no snapshot, no subscriber).
  CHECK(s.Refused(kAlice, SubscribeTo("pods", "team-a")) == kAliceOverLimit);
  CHECK(s.pods->Stats().subscriber_count == 3);
  // Refused whatever it asks for, once admitted: the limit is the user's, not the resource's.
  CHECK(s.Refused(kAlice, SubscribeTo("deployments.apps", "team-a")) ==
        "NOT_FOUND: deployments.apps in namespace team-a is not served by this informerd "
        "(configured: pods, nodes)");
  CHECK(s.Refused(kAlice, SubscribeTo("pods", "team-a")) == kAliceOverLimit);
  // Admission comes first: what alice may not read is still PERMISSION_DENIED, not a count.
  CHECK_THAT(s.Refused(kAlice, SubscribeTo("pods", "team-b")),
             Catch::StartsWith("PERMISSION_DENIED: "));

  // Another user still gets in, and alice's open streams go on.
  auto admin = s.OpenAdminNodes();
  s.pods->ApplyWatchEvent(testing::Added({"team-a", "a3", 11}));
  for (auto& stream : alice) CHECK(stream->Read(1) == Strings{"ADDED team-a/a3 rv=11"});
  // List and Get are not subscriptions.
  CHECK(Text(testing::List(s.stub(), kAlice, "pods", "team-a")) == "OK: ");

  const ClientLimitStats stats = s.stats();
  CHECK(stats.subscriptions_open == 4);
  CHECK(stats.subscriptions_largest_user == 3);
  CHECK(stats.refused_max_subscriptions_per_user == 2);
  CHECK(stats.refused_max_subscriptions == 0);
}

TEST_CASE("--max-subscriptions caps the streams of all users together", "[limits][subscriptions]") {
  Served s(/*max_total=*/4, /*max_per_user=*/3);
  std::vector<std::unique_ptr<AuthorizedStream>> open;
  for (int i = 0; i < 3; ++i) open.push_back(s.OpenAlice());
  open.push_back(s.OpenAdminNodes());
  CHECK(s.Refused(kAdmin, SubscribeTo("nodes")) ==
        "RESOURCE_EXHAUSTED: too many subscriptions: 4 open in total (--max-subscriptions=4); "
        "close one or retry later");
  // When both are reached, the total is named.
  CHECK(s.Refused(kAlice, SubscribeTo("pods", "team-a")) ==
        "RESOURCE_EXHAUSTED: too many subscriptions: 4 open in total (--max-subscriptions=4); "
        "close one or retry later");
  const ClientLimitStats stats = s.stats();
  CHECK(stats.subscriptions_open == 4);
  CHECK(stats.refused_max_subscriptions == 2);
  CHECK(stats.refused_max_subscriptions_per_user == 0);
  // A place freed by one user is anyone's.
  open.back()->context().TryCancel();
  CHECK(open.back()->Finish().error_code() == grpc::StatusCode::CANCELLED);
  REQUIRE(testing::WaitUntil([&] { return s.stats().subscriptions_open == 3; }));
  auto admin = s.OpenAdminNodes();
  CHECK(s.stats().subscriptions_open == 4);
}

TEST_CASE("a place is given back when its stream ends, however it ends",
          "[limits][subscriptions]") {
  Served s(/*max_total=*/100, /*max_per_user=*/3);
  std::vector<std::unique_ptr<AuthorizedStream>> alice;
  for (int i = 0; i < 3; ++i) alice.push_back(s.OpenAlice());
  REQUIRE(s.Refused(kAlice, SubscribeTo("pods", "team-a")) == kAliceOverLimit);

  SECTION("the client cancels") {
    alice.front()->context().TryCancel();
    CHECK(alice.front()->Finish().error_code() == grpc::StatusCode::CANCELLED);
    alice.erase(alice.begin());
    // The server learns of the cancellation a moment after the client.
    REQUIRE(testing::WaitUntil([&] { return s.stats().subscriptions_open == 2; }));
    alice.push_back(s.OpenAlice());
    CHECK(s.Refused(kAlice, SubscribeTo("pods", "team-a")) == kAliceOverLimit);
    // Cancelling every stream frees every place: none is leaked.
    for (auto& stream : alice) stream->context().TryCancel();
    alice.clear();
    CHECK(testing::WaitUntil([&] { return s.stats().subscriptions_open == 0; }));
  }
  SECTION("the daemon ends it: the place is free before the client reads the status") {
    // admin: three streams on the nodes, whose cache then stops (as when its resource is gone).
    std::vector<std::unique_ptr<AuthorizedStream>> admin;
    for (int i = 0; i < 3; ++i) admin.push_back(s.OpenAdminNodes());
    s.nodes->Shutdown(absl::UnavailableError("nodes stopped being served"));
    for (auto& stream : admin) {
      CHECK(Text(stream->Finish()) == "UNAVAILABLE: nodes stopped being served");
      // No waiting: the place was given back before the status was sent.
      auto again = std::make_unique<AuthorizedStream>(s.stub(), kAdmin, SubscribeTo("pods"));
      CHECK(again->Read(4) == Strings{"ADDED team-a/a1 rv=5", "ADDED team-a/a2 rv=6",
                                      "ADDED team-b/b1 rv=7", "SYNCED rv=10"});
      stream = std::move(again);
    }
    CHECK(s.stats().subscriptions_open == 6);
  }
  SECTION("the subscription fails after admission: its place is not kept") {
    // Three cancelled so that alice has room for failures; each must give its place back.
    for (auto& stream : alice) stream->context().TryCancel();
    alice.clear();
    REQUIRE(testing::WaitUntil([&] { return s.stats().subscriptions_open == 0; }));
    for (int i = 0; i < 5; ++i) {
      // Admitted (alice may watch team-a's pods), then the cache refuses the version.
      CHECK(s.Refused(kAlice, SubscribeTo("pods", "team-a", "", "", "abc")) ==
            "INVALID_ARGUMENT: resource version \"abc\" is not a decimal number");
      CHECK(s.stats().subscriptions_open == 0);
    }
    for (int i = 0; i < 3; ++i) alice.push_back(s.OpenAlice());
    CHECK(s.Refused(kAlice, SubscribeTo("pods", "team-a")) == kAliceOverLimit);
  }
  SECTION("the daemon shuts down") {
    s.h.harness->service->Shutdown();
    for (auto& stream : alice) {
      CHECK(Text(stream->Finish()) == "UNAVAILABLE: informerd is shutting down");
    }
    CHECK(s.stats().subscriptions_open == 0);
  }
}

TEST_CASE("0 means no subscription limit", "[limits][subscriptions]") {
  Served s(/*max_total=*/0, /*max_per_user=*/0);
  std::vector<std::unique_ptr<AuthorizedStream>> alice;
  for (int i = 0; i < 20; ++i) alice.push_back(s.OpenAlice());
  CHECK(s.stats().subscriptions_open == 20);
  CHECK(s.stats().subscriptions_largest_user == 20);
}

// ---- Selectors ----------------------------------------------------------------------------------

// `count` requirements joined by commas: `term`, `term`, ...
std::string Clauses(std::size_t count, const std::string& term) {
  std::string text = term;
  for (std::size_t i = 1; i < count; ++i) text += "," + term;
  return text;
}

struct SelectorCase {
  std::string label_selector;
  std::string field_selector;
};

milliseconds Since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
}

// How List of all pods answers `selectors`, as one status text; `names` gets what it listed.
std::string ListStatus(testing::Harness& harness, const SelectorCase& selectors,
                       Strings* names = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ListRequest request;
  request.set_resource("pods");
  request.set_label_selector(selectors.label_selector);
  request.set_field_selector(selectors.field_selector);
  v1::ListResponse response;
  const std::string status = Text(harness.stub->List(&context, request, &response));
  if (names) *names = testing::Names(response);
  return status;
}

// How Subscribe and List answer `selectors` that must be refused (one status text each), and how
// long the slower took.
struct Answers {
  std::string subscribe;
  std::string list;
  milliseconds slowest{0};
};

Answers Refusals(testing::Harness& harness, const SelectorCase& selectors) {
  Answers answers;
  const SteadyClock::time_point start = SteadyClock::now();
  answers.subscribe = Text(testing::SubscribeError(
      *harness.stub, SubscribeTo("pods", "", selectors.label_selector, selectors.field_selector)));
  const milliseconds subscribe_took = Since(start);
  const SteadyClock::time_point list_start = SteadyClock::now();
  answers.list = ListStatus(harness, selectors);
  answers.slowest = std::max(subscribe_took, Since(list_start));
  return answers;
}

TEST_CASE("a 20,000-clause selector is refused at once, naming the limit", "[limits][selectors]") {
  // Defaults: 4096 bytes, 64 requirements. A stream open beforehand must not notice anything.
  testing::Harness harness;
  auto pods = harness.AddCache();
  testing::Sync(*pods, {{"default", "p1", 5, {{"app", "web"}}, "n1"}}, 10);
  testing::Stream watcher(*harness.stub, SubscribeTo("pods"));
  CHECK(testing::Describe(watcher.Read(2)) == Strings{"ADDED default/p1 rv=5", "SYNCED rv=10"});

  Answers answers = Refusals(harness, {Clauses(20000, "a"), ""});  // 39,999 bytes
  const std::string label_refusal =
      "INVALID_ARGUMENT: label selector is 39999 bytes long; at most 4096 are accepted "
      "(--max-selector-bytes=4096)";
  CHECK(answers.subscribe == label_refusal);
  CHECK(answers.list == label_refusal);
  CHECK(answers.slowest < milliseconds(2000));
  answers = Refusals(harness, {"", Clauses(20000, "metadata.name=a")});
  const std::string field_refusal =
      "INVALID_ARGUMENT: field selector is 319999 bytes long; at most 4096 are accepted "
      "(--max-selector-bytes=4096)";
  CHECK(answers.subscribe == field_refusal);
  CHECK(answers.list == field_refusal);
  CHECK(answers.slowest < milliseconds(2000));

  // Short but too many: 65 requirements in 129 bytes.
  answers = Refusals(harness, {Clauses(65, "a"), ""});
  const std::string too_many =
      "INVALID_ARGUMENT: label selector has 65 requirements; at most 64 are accepted "
      "(--max-selector-requirements=64)";
  CHECK(answers.subscribe == too_many);
  CHECK(answers.list == too_many);
  answers = Refusals(harness, {"", Clauses(65, "metadata.name!=x")});
  CHECK(answers.subscribe ==
        "INVALID_ARGUMENT: field selector has 65 requirements; at most 64 are accepted "
        "(--max-selector-requirements=64)");
  CHECK(answers.list == answers.subscribe);
  // 64 are accepted, for both.
  Strings names;
  CHECK(ListStatus(harness, {Clauses(64, "app"), ""}, &names) == "OK: ");
  CHECK(names == Strings{"default/p1"});
  CHECK(ListStatus(harness, {"", Clauses(64, "metadata.name!=x")}, &names) == "OK: ");
  CHECK(names == Strings{"default/p1"});
  // The daemon goes on: the open stream gets the next event, new calls are answered.
  pods->ApplyWatchEvent(testing::Added({"default", "p2", 11}));
  CHECK(testing::Describe(watcher.Read(1)) == Strings{"ADDED default/p2 rv=11"});
  CHECK(ListStatus(harness, {"app=web", "spec.nodeName=n1"}, &names) == "OK: ");
  CHECK(names == Strings{"default/p1"});

  const ClientLimitStats stats = harness.service->client_limit_stats();
  CHECK(stats.refused_max_selector_bytes == 4);
  CHECK(stats.refused_max_selector_requirements == 4);
}

TEST_CASE("with the byte limit raised, a 20,000-clause selector is refused by its count",
          "[limits][selectors]") {
  testing::HarnessOptions options;
  options.service.max_selector_bytes = std::size_t{1} << 20;
  testing::Harness harness(options);
  auto pods = harness.AddCache();
  testing::Sync(*pods, {{"default", "p1", 5}}, 10);
  // Counted, not parsed: a selector that is also malformed past its first clause is refused for
  // its count just the same.
  for (const std::string& labels :
       {Clauses(20000, "a"), Clauses(20000, "a in (b,c)"), Clauses(20000, "a") + ",)(=!"}) {
    const Answers answers = Refusals(harness, {labels, ""});
    const std::string refusal = fmt::format(
        "INVALID_ARGUMENT: label selector has {} requirements; at most 64 are accepted "
        "(--max-selector-requirements=64)",
        labels.back() == '!' ? 20001 : 20000);
    CHECK(answers.subscribe == refusal);
    CHECK(answers.list == refusal);
    CHECK(answers.slowest < milliseconds(2000));
  }
  const Answers answers = Refusals(harness, {"", Clauses(20000, "spec.nodeName=n1")});
  CHECK(answers.subscribe ==
        "INVALID_ARGUMENT: field selector has 20000 requirements; at most 64 are accepted "
        "(--max-selector-requirements=64)");
  CHECK(answers.list == answers.subscribe);
  CHECK(answers.slowest < milliseconds(2000));
  CHECK(ListStatus(harness, {"", ""}) == "OK: ");
}

}  // namespace
}  // namespace informerd::daemon
