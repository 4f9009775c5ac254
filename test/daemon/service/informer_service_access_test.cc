// Specification of the Informer service's access control (daemon/service/informer_service.*,
// proto/informerd/v1/informerd.proto "Access"): in-process, over real gRPC, with the daemon's own
// TokenReview authenticator and SubjectAccessReview authorizer answered by a scripted apiserver
// (access_test_support.h: alice may read pods in team-a only, bob nothing, admin everything).
// For each caller — alice, bob, no credentials, an invalid token, malformed metadata, reviews
// that fail — Subscribe, List and Get in team-a, in team-b and across all namespaces, and
// ListResources: the exact status, and never an object of team-b (the cache holds team-b's pods
// beside team-a's). A stream whose permission is revoked ends PERMISSION_DENIED with nothing
// delivered after the decision; every call writes its audit line.
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/security/request_authenticator.h"
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
using testing::Names;
using testing::SubscribeTo;
using testing::Text;

const Authorization kAlice = Bearer("alice-token");
const Authorization kBob = Bearer("bob-token");
const Authorization kAdmin = Bearer("admin-token");
const Authorization kNoCredentials = {};

// The service over an all-namespaces pods cache holding team-a's and team-b's pods, and a nodes
// cache.
struct Served {
  explicit Served(AccessHarnessOptions options = {}) : h(std::move(options)) {
    pods = h.harness->AddCache();
    testing::Sync(*pods, {{"team-a", "a1", 5}, {"team-a", "a2", 6}, {"team-b", "b1", 7}}, 10);
    testing::Harness::CacheSpec nodes_spec;
    nodes_spec.resource = testing::NodesResource();
    nodes = h.harness->AddCache(nodes_spec);
    testing::Sync(*nodes, {{"", "n1", 3}}, 4);
  }
  v1::Informer::Stub& stub() { return h.stub(); }

  AccessHarness h;
  std::shared_ptr<core::Cache> pods;
  std::shared_ptr<core::Cache> nodes;
};

// Every way a call can read pods: Subscribe, List, Get (of a1 in team-a, of b1 elsewhere), each
// with `authorization`, in `namespace_name`; the statuses as Text, and whatever events or items
// came back (which must be none when the call failed).
struct Outcome {
  std::string subscribe;
  std::string list;
  std::string get;
  std::vector<std::string> delivered;  // events and items, whatever the status
};

Outcome ReadPods(v1::Informer::Stub& stub, const Authorization& authorization,
                 const std::string& namespace_name) {
  Outcome outcome;
  std::vector<std::string> events;
  outcome.subscribe = Text(
      testing::SubscribeError(stub, authorization, SubscribeTo("pods", namespace_name), &events));
  outcome.delivered = events;
  v1::ListResponse list;
  outcome.list = Text(testing::List(stub, authorization, "pods", namespace_name, &list));
  for (const std::string& name : Names(list)) outcome.delivered.push_back(name);
  v1::GetResponse get;
  outcome.get = Text(testing::Get(stub, authorization, "pods", namespace_name,
                                  namespace_name == "team-a" ? "a1" : "b1", &get));
  if (!get.object().empty()) outcome.delivered.push_back(get.object());
  return outcome;
}

TEST_CASE("alice reads pods in team-a: Subscribe, List and Get are served, with team-a's only") {
  Served s;
  AuthorizedStream stream(s.stub(), kAlice, SubscribeTo("pods", "team-a"));
  CHECK(stream.Read(3) ==
        std::vector<std::string>{"ADDED team-a/a1 rv=5", "ADDED team-a/a2 rv=6", "SYNCED rv=10"});
  // A live event of team-b never reaches the stream; one of team-a does.
  s.pods->ApplyWatchEvent(testing::Added({"team-b", "b2", 11}));
  s.pods->ApplyWatchEvent(testing::Added({"team-a", "a3", 12}));
  CHECK(stream.Read(1) == std::vector<std::string>{"ADDED team-a/a3 rv=12"});
  stream.context().TryCancel();
  stream.Finish();

  v1::ListResponse list;
  CHECK(Text(testing::List(s.stub(), kAlice, "pods", "team-a", &list)) == "OK: ");
  CHECK(Names(list) == std::vector<std::string>{"team-a/a1", "team-a/a2", "team-a/a3"});
  v1::GetResponse get;
  CHECK(Text(testing::Get(s.stub(), kAlice, "po", "team-a", "a1", &get)) == "OK: ");
  CHECK(get.object().find("\"name\":\"a1\"") != std::string::npos);
  // The review asked exactly what the apiserver would check for each read.
  std::vector<std::string> asked;
  for (const auto& post : s.h.reviews.posts()) {
    if (post.path != test::kSubjectAccessReviewsPath) continue;
    auto request = test::ParseAccessReviewRequest(post.body);
    REQUIRE(request.ok());
    const core::ResourceAttributes& a = request->attributes;
    asked.push_back(fmt::format("{} {}/{} ns={} name={} as {} {}", a.verb, a.group, a.resource,
                                a.namespace_name, a.name, request->user.name,
                                fmt::join(request->user.groups, ",")));
  }
  CHECK(asked == std::vector<std::string>{
                     "list /pods ns=team-a name= as alice team-a-readers,system:authenticated",
                     "watch /pods ns=team-a name= as alice team-a-readers,system:authenticated",
                     "get /pods ns=team-a name=a1 as alice team-a-readers,system:authenticated"});
  // One TokenReview: the token's answer is cached.
  CHECK(s.h.TokenReviews() == 1);
}

TEST_CASE("alice: team-b, all namespaces and nodes are PERMISSION_DENIED, and nothing leaks") {
  Served s;
  // Something of team-b is in the cache; a live one arrives while she tries.
  s.pods->ApplyWatchEvent(testing::Added({"team-b", "b2", 11}));

  const Outcome team_b = ReadPods(s.stub(), kAlice, "team-b");
  CHECK(team_b.subscribe ==
        "PERMISSION_DENIED: user \"alice\" cannot list pods in namespace \"team-b\"");
  CHECK(team_b.list ==
        "PERMISSION_DENIED: user \"alice\" cannot list pods in namespace \"team-b\"");
  CHECK(team_b.get ==
        "PERMISSION_DENIED: user \"alice\" cannot get pods \"b1\" in namespace \"team-b\"");
  CHECK(team_b.delivered.empty());

  const Outcome all = ReadPods(s.stub(), kAlice, "");
  CHECK(all.subscribe == "PERMISSION_DENIED: user \"alice\" cannot list pods at the cluster scope");
  CHECK(all.list == "PERMISSION_DENIED: user \"alice\" cannot list pods at the cluster scope");
  CHECK(all.get == "PERMISSION_DENIED: user \"alice\" cannot get pods \"b1\" at the cluster scope");
  CHECK(all.delivered.empty());

  // A cluster-scoped resource is checked cluster-wide, whatever namespace the request names.
  CHECK(Text(testing::List(s.stub(), kAlice, "nodes", "")) ==
        "PERMISSION_DENIED: user \"alice\" cannot list nodes at the cluster scope");
  CHECK(Text(testing::List(s.stub(), kAlice, "nodes", "team-a")) ==
        "PERMISSION_DENIED: user \"alice\" cannot list nodes at the cluster scope");
  // Subscribe needs watch as well as list: both are asked, the first denial answers.
  std::vector<std::string> events;
  CHECK(Text(testing::SubscribeError(s.stub(), kAlice, SubscribeTo("nodes"), &events)) ==
        "PERMISSION_DENIED: user \"alice\" cannot list nodes at the cluster scope");
  CHECK(events.empty());
  // Validation comes after authorization: a bad selector tells her nothing either.
  CHECK(Text(testing::SubscribeError(s.stub(), kAlice, SubscribeTo("pods", "team-b", "a in (b"),
                                     &events)) ==
        "PERMISSION_DENIED: user \"alice\" cannot list pods in namespace \"team-b\"");
}

TEST_CASE("bob, who may read nothing, is denied everything, and ListResources shows him nothing") {
  Served s;
  for (const char* namespace_name : {"team-a", "team-b", ""}) {
    INFO(namespace_name);
    const Outcome outcome = ReadPods(s.stub(), kBob, namespace_name);
    const std::string scope = *namespace_name == '\0'
                                  ? "at the cluster scope"
                                  : fmt::format("in namespace \"{}\"", namespace_name);
    CHECK(outcome.subscribe ==
          fmt::format("PERMISSION_DENIED: user \"bob\" cannot list pods {}", scope));
    CHECK(outcome.list ==
          fmt::format("PERMISSION_DENIED: user \"bob\" cannot list pods {}", scope));
    CHECK(outcome.get ==
          fmt::format(
              "PERMISSION_DENIED: user \"bob\" cannot get pods \"{}\" {}",
              *namespace_name != '\0' && std::string(namespace_name) == "team-a" ? "a1" : "b1",
              scope));
    CHECK(outcome.delivered.empty());
    v1::ListResourcesResponse resources;
    CHECK(Text(testing::ListResources(s.stub(), kBob, namespace_name, &resources)) == "OK: ");
    CHECK(resources.resources().empty());
  }
}

TEST_CASE("no credentials: UNAUTHENTICATED before anything is resolved or reviewed") {
  Served s;
  const int resolutions = s.h.harness->resolver.calls();
  for (const char* namespace_name : {"team-a", "team-b", ""}) {
    const Outcome outcome = ReadPods(s.stub(), kNoCredentials, namespace_name);
    const std::string refused =
        "UNAUTHENTICATED: no credentials: send a bearer token (authorization: Bearer …) or a "
        "client certificate";
    CHECK(outcome.subscribe == refused);
    CHECK(outcome.list == refused);
    CHECK(outcome.get == refused);
    CHECK(outcome.delivered.empty());
    CHECK(Text(testing::ListResources(s.stub(), kNoCredentials, namespace_name)) == refused);
  }
  // Not even whether a resource exists.
  CHECK(Text(testing::List(s.stub(), kNoCredentials, "no-such-thing", "")) ==
        "UNAUTHENTICATED: no credentials: send a bearer token (authorization: Bearer …) or a "
        "client certificate");
  CHECK(s.h.harness->resolver.calls() == resolutions);
  CHECK(s.h.AccessReviews() == 0);
  CHECK(s.h.TokenReviews() == 0);
}

TEST_CASE("an invalid min_resource_version is judged after authentication and authorization") {
  Served s;
  const std::string unauthenticated =
      "UNAUTHENTICATED: no credentials: send a bearer token (authorization: Bearer …) or a "
      "client certificate";
  CHECK(Text(testing::List(s.stub(), kNoCredentials, "pods", "team-a", nullptr, "soon")) ==
        unauthenticated);
  CHECK(Text(testing::Get(s.stub(), kNoCredentials, "pods", "team-a", "a1", nullptr, "soon")) ==
        unauthenticated);
  CHECK(Text(testing::List(s.stub(), kBob, "pods", "team-a", nullptr, "soon")) ==
        "PERMISSION_DENIED: user \"bob\" cannot list pods in namespace \"team-a\"");
  CHECK(Text(testing::Get(s.stub(), kBob, "pods", "team-a", "a1", nullptr, "soon")) ==
        "PERMISSION_DENIED: user \"bob\" cannot get pods \"a1\" in namespace \"team-a\"");
  CHECK_THAT(Text(testing::List(s.stub(), kAlice, "pods", "team-a", nullptr, "soon")),
             Catch::StartsWith("INVALID_ARGUMENT: ") && Catch::Contains("soon"));
  CHECK_THAT(Text(testing::Get(s.stub(), kAlice, "pods", "team-a", "a1", nullptr, "soon")),
             Catch::StartsWith("INVALID_ARGUMENT: ") && Catch::Contains("soon"));
}

// A List page with credentials, `limit` and `continue`.
grpc::Status ListPage(v1::Informer::Stub& stub, const Authorization& authorization, int64_t limit,
                      const std::string& token, v1::ListResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  for (const std::string& value : authorization) context.AddMetadata("authorization", value);
  v1::ListRequest request;
  request.set_resource("pods");
  request.set_namespace_("team-a");
  request.set_limit(limit);
  request.set_continue_(token);
  return stub.List(&context, request, response);
}

TEST_CASE(
    "invalid paging is judged after authentication and authorization; a continue token "
    "grants nothing") {
  Served s;
  v1::ListResponse response;
  for (const auto& [limit, token] :
       std::vector<std::pair<int64_t, std::string>>{{-1, ""}, {5, "not-a-token"}}) {
    INFO(limit << " " << token);
    CHECK(Text(ListPage(s.stub(), kNoCredentials, limit, token, &response)) ==
          "UNAUTHENTICATED: no credentials: send a bearer token (authorization: Bearer …) or a "
          "client certificate");
    CHECK(Text(ListPage(s.stub(), kBob, limit, token, &response)) ==
          "PERMISSION_DENIED: user \"bob\" cannot list pods in namespace \"team-a\"");
    CHECK_THAT(Text(ListPage(s.stub(), kAlice, limit, token, &response)),
               Catch::StartsWith("INVALID_ARGUMENT: "));
  }
  // Alice's pages; Bob with her token is still refused, and every page is authorized.
  v1::ListResponse first;
  REQUIRE(Text(ListPage(s.stub(), kAlice, 1, "", &first)) == "OK: ");
  REQUIRE_FALSE(first.continue_().empty());
  CHECK(Text(ListPage(s.stub(), kBob, 1, first.continue_(), &response)) ==
        "PERMISSION_DENIED: user \"bob\" cannot list pods in namespace \"team-a\"");
  v1::ListResponse second;
  CHECK(Text(ListPage(s.stub(), kAlice, 1, first.continue_(), &second)) == "OK: ");
  CHECK(Names(second) == std::vector<std::string>{"team-a/a2"});
}

TEST_CASE("with anonymous calls allowed, a call without credentials is system:anonymous") {
  AccessHarnessOptions options;
  options.allow_anonymous = true;
  Served s(options);
  CHECK(Text(testing::List(s.stub(), kNoCredentials, "pods", "team-a")) ==
        "PERMISSION_DENIED: user \"system:anonymous\" cannot list pods in namespace \"team-a\"");
  auto request = test::ParseAccessReviewRequest(s.h.reviews.posts().back().body);
  REQUIRE(request.ok());
  CHECK(request->user.groups == std::vector<std::string>{"system:unauthenticated"});
}

TEST_CASE("an invalid token is UNAUTHENTICATED for every call, and is never authorized") {
  Served s;
  const std::string rejected =
      "UNAUTHENTICATED: the bearer token was rejected by the apiserver: invalid bearer token";
  for (const char* namespace_name : {"team-a", ""}) {
    const Outcome outcome = ReadPods(s.stub(), Bearer("stolen-or-made-up"), namespace_name);
    CHECK(outcome.subscribe == rejected);
    CHECK(outcome.list == rejected);
    CHECK(outcome.get == rejected);
    CHECK(outcome.delivered.empty());
  }
  CHECK(Text(testing::ListResources(s.stub(), Bearer("stolen-or-made-up"), "")) == rejected);
  CHECK(s.h.AccessReviews() == 0);
}

TEST_CASE("malformed authorization metadata is UNAUTHENTICATED naming the problem, not the value") {
  Served s;
  const std::vector<std::pair<Authorization, std::string>> cases = {
      {{"Basic YWxpY2U6c2VjcmV0"},
       "malformed authorization metadata: the scheme is not Bearer; expected \"Bearer <token>\""},
      {{"alice-token"},
       "malformed authorization metadata: the scheme is not Bearer; expected \"Bearer <token>\""},
      {{"Bearer "}, "malformed authorization metadata: the bearer token is empty"},
      {{"Bearer alice-token extra"},
       "malformed authorization metadata: expected \"Bearer <token>\" with a single space and a "
       "token without whitespace"},
      {{"Bearer alice-token", "Bearer admin-token"},
       "malformed authorization metadata: the call sent several authorization values; send one"},
  };
  for (const auto& [authorization, message] : cases) {
    INFO(authorization.front());
    const Outcome outcome = ReadPods(s.stub(), authorization, "team-a");
    CHECK(outcome.subscribe == "UNAUTHENTICATED: " + message);
    CHECK(outcome.list == "UNAUTHENTICATED: " + message);
    CHECK(outcome.get == "UNAUTHENTICATED: " + message);
    CHECK(outcome.delivered.empty());
  }
  CHECK(s.h.TokenReviews() == 0);
  CHECK(s.h.AccessReviews() == 0);
}

TEST_CASE("a review that fails (503, timeout) is UNAVAILABLE, never served") {
  Served s;
  SECTION("the TokenReview") {
    s.h.policy.token_reviews_unavailable = true;
    const Outcome outcome = ReadPods(s.stub(), kAlice, "team-a");
    const std::string failed =
        "UNAVAILABLE: cannot verify the bearer token: the TokenReview failed: HTTP 503 Service "
        "Unavailable: etcdserver: leader changed";
    CHECK(outcome.subscribe == failed);
    CHECK(outcome.list == failed);
    CHECK(outcome.get == failed);
    CHECK(outcome.delivered.empty());
    CHECK(Text(testing::ListResources(s.stub(), kAlice, "team-a")) == failed);
    // Not cached: once the apiserver answers again, so does informerd.
    s.h.policy.token_reviews_unavailable = false;
    CHECK(Text(testing::List(s.stub(), kAlice, "pods", "team-a")) == "OK: ");
  }
  SECTION("the SubjectAccessReview: 503") {
    s.h.policy.access_reviews_unavailable = true;
    const Outcome outcome = ReadPods(s.stub(), kAlice, "team-a");
    const std::string failed =
        "UNAVAILABLE: cannot authorize the call: the SubjectAccessReview failed: HTTP 503 Service "
        "Unavailable: etcdserver: leader changed";
    CHECK(outcome.subscribe == failed);
    CHECK(outcome.list == failed);
    CHECK(outcome.get == failed);
    CHECK(outcome.delivered.empty());
    // ListResources does not guess either: no partial answer.
    CHECK(Text(testing::ListResources(s.stub(), kAdmin, "")) == failed);
  }
  SECTION("the SubjectAccessReview: no answer in time") {
    s.h.policy.access_reviews_time_out = true;
    const Outcome outcome = ReadPods(s.stub(), kAdmin, "");
    const std::string failed =
        "UNAVAILABLE: cannot authorize the call: the SubjectAccessReview failed: POST "
        "https://apiserver/apis/authorization.k8s.io/v1/subjectaccessreviews: no answer within 10 "
        "s";
    CHECK(outcome.subscribe == failed);
    CHECK(outcome.list == failed);
    CHECK(outcome.get == failed);
    CHECK(outcome.delivered.empty());
  }
}

TEST_CASE("ListResources shows what the caller may list, cluster-wide or in the namespace asked") {
  Served s;
  // Another informer for team-b's pods only, and one for team-a's.
  testing::Harness::CacheSpec team_b;
  team_b.namespace_name = "team-b";
  testing::Sync(*s.h.harness->AddCache(team_b), {{"team-b", "b1", 7}}, 10);
  testing::Harness::CacheSpec team_a;
  team_a.namespace_name = "team-a";
  testing::Sync(*s.h.harness->AddCache(team_a), {{"team-a", "a1", 5}, {"team-a", "a2", 6}}, 10);

  v1::ListResourcesResponse admin;
  CHECK(Text(testing::ListResources(s.stub(), kAdmin, "", &admin)) == "OK: ");
  CHECK(testing::Describe(admin) ==
        std::vector<std::string>{"pods ns= objects=3", "nodes ns= objects=1",
                                 "pods ns=team-b objects=1", "pods ns=team-a objects=2"});

  // Alice may not list anything cluster-wide.
  v1::ListResourcesResponse cluster_wide;
  CHECK(Text(testing::ListResources(s.stub(), kAlice, "", &cluster_wide)) == "OK: ");
  CHECK(testing::Describe(cluster_wide).empty());
  // In team-a: the informers that answer for team-a; the all-namespaces one without its counts
  // (they would tell about team-b); never team-b's, nor nodes.
  v1::ListResourcesResponse in_team_a;
  CHECK(Text(testing::ListResources(s.stub(), kAlice, "team-a", &in_team_a)) == "OK: ");
  CHECK(testing::Describe(in_team_a) ==
        std::vector<std::string>{"pods ns= objects=0", "pods ns=team-a objects=2"});
  CHECK(in_team_a.resources(0).subscriber_count() == 0);
  v1::ListResourcesResponse in_team_b;
  CHECK(Text(testing::ListResources(s.stub(), kAlice, "team-b", &in_team_b)) == "OK: ");
  CHECK(testing::Describe(in_team_b).empty());
  // The admin in a namespace: the cluster-scoped informers too (checked cluster-wide).
  v1::ListResourcesResponse admin_in_team_a;
  CHECK(Text(testing::ListResources(s.stub(), kAdmin, "team-a", &admin_in_team_a)) == "OK: ");
  CHECK(testing::Describe(admin_in_team_a) == std::vector<std::string>{"pods ns= objects=0",
                                                                       "nodes ns= objects=1",
                                                                       "pods ns=team-a objects=2"});
}

TEST_CASE(
    "a revoked permission ends an open stream PERMISSION_DENIED; nothing after the decision") {
  AccessHarnessOptions options;
  options.allowed_ttl = milliseconds(100);  // the stream is authorized again every 100 ms
  Served s(options);
  AuthorizedStream stream(s.stub(), kAlice, SubscribeTo("pods", "team-a"));
  CHECK(stream.Read(3) ==
        std::vector<std::string>{"ADDED team-a/a1 rv=5", "ADDED team-a/a2 rv=6", "SYNCED rv=10"});
  const std::size_t first_reviews = s.h.AccessReviews();
  CHECK(first_reviews == 2);  // list and watch

  // While the decision stands (the fake clock has not moved), re-authorization is answered from
  // the cache: the stream goes on.
  std::this_thread::sleep_for(milliseconds(350));
  CHECK(s.h.AccessReviews() == first_reviews);
  s.pods->ApplyWatchEvent(testing::Added({"team-a", "a3", 11}));
  CHECK(stream.Read(1) == std::vector<std::string>{"ADDED team-a/a3 rv=11"});

  // The RoleBinding is deleted; the cached decision expires; the next re-authorization asks the
  // apiserver, and the test holds its answer.
  s.h.policy.alice_revoked = true;
  s.h.policy.hold_access_reviews = true;
  s.h.clock.Advance(milliseconds(101));
  REQUIRE(testing::WaitUntil([&] { return s.h.reviews.held() == 2; }));
  // Before the decision the stream still delivers.
  s.pods->ApplyWatchEvent(testing::Added({"team-a", "a4", 12}));
  CHECK(stream.Read(1) == std::vector<std::string>{"ADDED team-a/a4 rv=12"});

  // The decision, made on this thread: io.poll() runs the review's callback here.
  s.h.runner->Pause();
  REQUIRE(s.h.reviews.AnswerNext(test::ReviewCreated(test::SubjectAccessReviewBody(false, "")),
                                 test::kSubjectAccessReviewsPath));
  REQUIRE(s.h.reviews.AnswerNext(test::ReviewCreated(test::SubjectAccessReviewBody(false, "")),
                                 test::kSubjectAccessReviewsPath));
  s.h.io.poll();
  s.h.runner->Resume();
  // After it, nothing is delivered: neither what is queued nor what comes.
  s.pods->ApplyWatchEvent(testing::Added({"team-a", "a5", 13}));
  s.pods->ApplyWatchEvent(testing::Modified({"team-a", "a1", 14}));
  std::vector<std::string> after;
  CHECK(Text(stream.Finish(&after)) ==
        "PERMISSION_DENIED: the stream's permission was revoked: user \"alice\" cannot list pods "
        "in namespace \"team-a\"");
  CHECK(after.empty());
  // A new subscription is refused as well.
  s.h.policy.hold_access_reviews = false;
  std::vector<std::string> events;
  CHECK(Text(testing::SubscribeError(s.stub(), kAlice, SubscribeTo("pods", "team-a"), &events)) ==
        "PERMISSION_DENIED: user \"alice\" cannot list pods in namespace \"team-a\"");
  CHECK(events.empty());
}

TEST_CASE("a re-authorization that cannot be made ends the stream UNAVAILABLE, never open") {
  AccessHarnessOptions options;
  options.allowed_ttl = milliseconds(100);
  Served s(options);
  AuthorizedStream stream(s.stub(), kAlice, SubscribeTo("pods", "team-a"));
  CHECK(stream.Read(3).size() == 3);
  s.h.policy.access_reviews_unavailable = true;
  s.h.clock.Advance(milliseconds(101));
  std::vector<std::string> after;
  CHECK(Text(stream.Finish(&after)) ==
        "UNAVAILABLE: the stream could not be authorized again: cannot authorize the call: the "
        "SubjectAccessReview failed: HTTP 503 Service Unavailable: etcdserver: leader changed");
  CHECK(after.empty());
}

TEST_CASE("every finished call writes one audit line: who, what, the decision and the code") {
  Served s;
  // Each line is written as gRPC reports its call done, which may come just after the client has
  // its answer: the test waits for each before the next call, to read them in order.
  std::size_t lines = 0;
  const auto audited = [&] { return s.h.WaitForAuditLines(++lines).back(); };
  const std::string peer = "peer=\"ipv4:127.0.0.1:PORT\"";

  CHECK(Text(testing::List(s.stub(), kAlice, "po", "team-a")) == "OK: ");
  CHECK(audited() == "user=\"alice\" " + peer +
                         " method=\"List\" resource=\"pods\" namespace=\"team-a\" "
                         "decision=allow code=OK");
  CHECK(
      Text(testing::Get(s.stub(), kAlice, "pods", "team-b", "b1")).rfind("PERMISSION_DENIED", 0) ==
      0);
  CHECK(audited() == "user=\"alice\" " + peer +
                         " method=\"Get\" resource=\"pods\" namespace=\"team-b\" "
                         "decision=deny code=PERMISSION_DENIED");
  CHECK(Text(testing::List(s.stub(), kNoCredentials, "secrets", "")).rfind("UNAUTHENTICATED", 0) ==
        0);
  // Before authentication nothing is resolved: the resource as asked.
  CHECK(audited() == "user=\"\" " + peer +
                         " method=\"List\" resource=\"secrets\" namespace=\"\" "
                         "decision=unauthenticated code=UNAUTHENTICATED");
  CHECK(Text(testing::List(s.stub(), kAdmin, "widgets", "")) ==
        "NOT_FOUND: the server doesn't have a resource type \"widgets\"");
  // Ended before any access decision: error, with the call's code.
  CHECK(audited() == "user=\"admin\" " + peer +
                         " method=\"List\" resource=\"widgets\" namespace=\"\" "
                         "decision=error code=NOT_FOUND");
  s.h.policy.access_reviews_unavailable = true;
  CHECK(Text(testing::List(s.stub(), kBob, "nodes", "")).rfind("UNAVAILABLE", 0) == 0);
  CHECK(audited() == "user=\"bob\" " + peer +
                         " method=\"List\" resource=\"nodes\" namespace=\"\" "
                         "decision=error code=UNAVAILABLE");
  s.h.policy.access_reviews_unavailable = false;
  CHECK(Text(testing::ListResources(s.stub(), kAlice, "team-a")) == "OK: ");
  CHECK(audited() == "user=\"alice\" " + peer +
                         " method=\"ListResources\" resource=\"\" namespace=\"team-a\" "
                         "decision=allow code=OK");
  {
    AuthorizedStream stream(s.stub(), kAlice, SubscribeTo("pods", "team-a"));
    CHECK(stream.Read(3).size() == 3);
    stream.context().TryCancel();
    stream.Finish();
  }
  CHECK(audited() == "user=\"alice\" " + peer +
                         " method=\"Subscribe\" resource=\"pods\" namespace=\"team-a\" "
                         "decision=allow code=CANCELLED");
  // One line per call, no more.
  std::this_thread::sleep_for(milliseconds(100));
  CHECK(s.h.AuditLines().size() == lines);
}

TEST_CASE("a revoked stream's audit line says deny") {
  AccessHarnessOptions options;
  options.allowed_ttl = milliseconds(100);
  Served s(options);
  AuthorizedStream stream(s.stub(), kAlice, SubscribeTo("pods", "team-a"));
  CHECK(stream.Read(3).size() == 3);
  s.h.policy.alice_revoked = true;
  s.h.clock.Advance(milliseconds(101));
  CHECK(stream.Finish().error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(s.h.WaitForAuditLines(1) ==
        std::vector<std::string>{"user=\"alice\" peer=\"ipv4:127.0.0.1:PORT\" "
                                 "method=\"Subscribe\" resource=\"pods\" namespace=\"team-a\" "
                                 "decision=deny code=PERMISSION_DENIED"});
}

TEST_CASE("a client certificate that names no user is refused, not taken as anonymous") {
  RequestAuthenticator authenticator(nullptr, /*allow_anonymous=*/true);
  CallCredentials credentials;
  credentials.certificate_error =
      "the client certificate names no user: its subject has no Common Name (CN)";
  std::optional<absl::StatusOr<core::UserInfo>> answer;
  authenticator.Authenticate(
      credentials, [&](absl::StatusOr<core::UserInfo> user) { answer = std::move(user); });
  REQUIRE(answer.has_value());
  REQUIRE_FALSE(answer->ok());
  CHECK(answer->status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(answer->status().message() ==
        "the client certificate names no user: its subject has no Common Name (CN)");
}

}  // namespace
}  // namespace informerd::daemon
