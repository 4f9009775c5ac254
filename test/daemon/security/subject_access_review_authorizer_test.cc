// SubjectAccessReviewAuthorizer in-process: a FakeReviewClient answers each SubjectAccessReview
// when the test says, time is a FakeClock. Checks the review request, decisions and their TTLs to
// the millisecond, the cache key (every part of the user and the attributes), the bound, shared
// reviews, failures (Unavailable, never allowed, never cached), the counters and latency.
#include "daemon/security/subject_access_review_authorizer.h"

#include <rapidjson/document.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/user_info.h"
#include "daemon/security/always_allow_authorizer.h"
#include "test/common/fake_clock.h"
#include "test/common/scripted_list_watch_client.h"
#include "test/daemon/security/security_test_support.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

using Outcome = test::Outcome<absl::StatusOr<AccessDecision>>;
using test::Record;

core::UserInfo Alice() {
  core::UserInfo user;
  user.name = "alice";
  user.uid = "uid-1";
  user.groups = {"team-a", "system:authenticated"};
  user.extra = {{"scopes", {"read"}}};
  return user;
}

core::ResourceAttributes ListPods(std::string namespace_name = "team-a") {
  return core::ResourceAttributes{"list", "", "pods", std::move(namespace_name), ""};
}

struct Fixture {
  explicit Fixture(SubjectAccessReviewAuthorizerOptions options = {})
      : authorizer(client, clock, options, test::StringLogger(log, "authz")) {}

  // Outcomes live as long as the fixture: a review left unanswered may still call back.
  const Outcome& Authorize(const core::UserInfo& user, const core::ResourceAttributes& attributes) {
    Outcome& outcome = outcomes.emplace_back();
    authorizer.Authorize(user, attributes, Record(outcome));
    io.poll();
    return outcome;
  }

  void Answer(HttpResult result) {
    client.AnswerLast(std::move(result));
    io.poll();
  }

  // Asks and answers one review; the decision.
  const Outcome& Decide(const core::UserInfo& user, const core::ResourceAttributes& attributes,
                        bool allowed) {
    Outcome& outcome = outcomes.emplace_back();
    authorizer.Authorize(user, attributes, Record(outcome));
    Answer(test::Created(test::SubjectAccessReviewAnswer(allowed, "")));
    return outcome;
  }

  std::deque<Outcome> outcomes;
  boost::asio::io_context io;
  test::FakeReviewClient client{io};
  core::FakeClock clock;
  std::ostringstream log;
  SubjectAccessReviewAuthorizer authorizer;
};

HttpResult Allowed(const std::string& reason = "RBAC: allowed by RoleBinding \"read/team-a\"") {
  return test::Created(test::SubjectAccessReviewAnswer(true, reason));
}
HttpResult Denied(const std::string& reason = "") {
  return test::Created(test::SubjectAccessReviewAnswer(false, reason));
}

TEST_CASE("the review asks about the user's name, uid, groups and extra and the attributes") {
  Fixture f;
  Outcome outcome;
  f.authorizer.Authorize(Alice(), {"get", "apps", "deployments", "team-a", "web"}, Record(outcome));
  REQUIRE(f.client.requests().size() == 1);
  CHECK(f.client.requests()[0].path == "/apis/authorization.k8s.io/v1/subjectaccessreviews");
  rapidjson::Document body;
  body.Parse(f.client.requests()[0].body.c_str());
  REQUIRE(body.IsObject());
  CHECK(std::string(body["kind"].GetString()) == "SubjectAccessReview");
  const auto& spec = body["spec"];
  CHECK(std::string(spec["user"].GetString()) == "alice");
  CHECK(std::string(spec["uid"].GetString()) == "uid-1");
  REQUIRE(spec["groups"].Size() == 2);
  CHECK(std::string(spec["groups"][0].GetString()) == "team-a");
  CHECK(std::string(spec["extra"]["scopes"][0].GetString()) == "read");
  const auto& attributes = spec["resourceAttributes"];
  CHECK(std::string(attributes["verb"].GetString()) == "get");
  CHECK(std::string(attributes["group"].GetString()) == "apps");
  CHECK(std::string(attributes["resource"].GetString()) == "deployments");
  CHECK(std::string(attributes["namespace"].GetString()) == "team-a");
  CHECK(std::string(attributes["name"].GetString()) == "web");
  CHECK(outcome.calls == 0);  // not inside Authorize

  f.Answer(Allowed());
  REQUIRE(outcome.calls == 1);
  REQUIRE(outcome.result.ok());
  CHECK(outcome.result->allowed);
  CHECK(outcome.result->reason == "RBAC: allowed by RoleBinding \"read/team-a\"");
}

TEST_CASE("a denial comes with the apiserver's reason") {
  Fixture f;
  Outcome outcome;
  f.authorizer.Authorize(Alice(), ListPods("team-b"), Record(outcome));
  f.Answer(Denied("no RBAC policy matched"));
  REQUIRE(outcome.result.ok());
  CHECK_FALSE(outcome.result->allowed);
  CHECK(outcome.result->reason == "no RBAC policy matched");
}

TEST_CASE("an allowed decision is cached for five minutes, to the millisecond") {
  Fixture f;
  f.Decide(Alice(), ListPods(), true);
  f.clock.Advance(minutes(5) - milliseconds(1));
  Outcome cached;
  f.authorizer.Authorize(Alice(), ListPods(), Record(cached));
  CHECK(cached.calls == 1);  // inline
  REQUIRE(cached.result.ok());
  CHECK(cached.result->allowed);
  CHECK(f.client.requests().size() == 1);
  CHECK(f.authorizer.stats().cache_hits == 1);
  f.clock.Advance(milliseconds(1));
  CHECK(f.Authorize(Alice(), ListPods()).calls == 0);
  CHECK(f.client.requests().size() == 2);
}

TEST_CASE("a denial is cached for thirty seconds, to the millisecond") {
  Fixture f;
  f.Decide(Alice(), ListPods(), false);
  f.clock.Advance(seconds(30) - milliseconds(1));
  Outcome cached;
  f.authorizer.Authorize(Alice(), ListPods(), Record(cached));
  CHECK(cached.calls == 1);
  REQUIRE(cached.result.ok());
  CHECK_FALSE(cached.result->allowed);
  CHECK(f.client.requests().size() == 1);
  f.clock.Advance(milliseconds(1));
  f.Authorize(Alice(), ListPods());
  CHECK(f.client.requests().size() == 2);
}

TEST_CASE("the TTLs come from the options; zero caches nothing") {
  SubjectAccessReviewAuthorizerOptions options;
  options.allowed_ttl = seconds(2);
  options.denied_ttl = milliseconds(0);
  Fixture f(options);
  f.Decide(Alice(), ListPods("a"), true);
  f.Decide(Alice(), ListPods("b"), false);
  f.Authorize(Alice(), ListPods("b"));
  CHECK(f.client.requests().size() == 3);  // the denial was not cached
  f.client.AnswerLast(Denied());
  f.io.poll();
  f.clock.Advance(seconds(2) - milliseconds(1));
  f.Authorize(Alice(), ListPods("a"));
  CHECK(f.client.requests().size() == 3);
  f.clock.Advance(milliseconds(1));
  f.Authorize(Alice(), ListPods("a"));
  CHECK(f.client.requests().size() == 4);
}

TEST_CASE("a decision is cached for exactly its user and attributes") {
  Fixture f;
  f.Decide(Alice(), {"get", "apps", "deployments", "team-a", "web"}, true);
  using Change = std::function<void(core::UserInfo&, core::ResourceAttributes&)>;
  const Change change = GENERATE(
      Change([](core::UserInfo& u, core::ResourceAttributes&) { u.name = "bob"; }),
      Change([](core::UserInfo& u, core::ResourceAttributes&) { u.uid = "uid-2"; }),
      Change([](core::UserInfo& u, core::ResourceAttributes&) { u.groups.push_back("admins"); }),
      Change([](core::UserInfo& u, core::ResourceAttributes&) { u.groups.pop_back(); }),
      Change([](core::UserInfo& u, core::ResourceAttributes&) { u.extra["scopes"] = {"all"}; }),
      Change([](core::UserInfo& u, core::ResourceAttributes&) { u.extra.clear(); }),
      Change([](core::UserInfo&, core::ResourceAttributes& a) { a.verb = "list"; }),
      Change([](core::UserInfo&, core::ResourceAttributes& a) { a.group = "extensions"; }),
      Change([](core::UserInfo&, core::ResourceAttributes& a) { a.resource = "replicasets"; }),
      Change([](core::UserInfo&, core::ResourceAttributes& a) { a.namespace_name = "team-b"; }),
      Change([](core::UserInfo&, core::ResourceAttributes& a) { a.namespace_name.clear(); }),
      Change([](core::UserInfo&, core::ResourceAttributes& a) { a.name = "api"; }),
      // Fields run together differently: no two questions share a key.
      Change([](core::UserInfo& u, core::ResourceAttributes&) {
        u.groups = {"team-asystem:authenticated"};
      }),
      Change([](core::UserInfo& u, core::ResourceAttributes&) {
        u.groups = {"team-asystem:", "authenticated"};
      }),
      Change([](core::UserInfo& u, core::ResourceAttributes&) {
        u.name = "aliceuid-1";
        u.uid.clear();
      }));
  core::UserInfo user = Alice();
  core::ResourceAttributes attributes{"get", "apps", "deployments", "team-a", "web"};
  change(user, attributes);
  f.Authorize(user, attributes);
  CHECK(f.client.requests().size() == 2);
  // The original question is still answered from the cache.
  f.Authorize(Alice(), {"get", "apps", "deployments", "team-a", "web"});
  CHECK(f.authorizer.stats().cache_hits == 1);
}

TEST_CASE("concurrent identical checks share one review") {
  Fixture f;
  const bool fails = GENERATE(false, true);
  Outcome a, b, other;
  f.authorizer.Authorize(Alice(), ListPods(), Record(a));
  f.authorizer.Authorize(Alice(), ListPods("team-b"), Record(other));
  f.authorizer.Authorize(Alice(), ListPods(), Record(b));
  REQUIRE(f.client.requests().size() == 2);
  CHECK(f.authorizer.stats().shared == 1);
  f.client.Answer(0, fails ? test::ConnectionLost() : Allowed());
  f.io.poll();
  for (Outcome* outcome : {&a, &b}) {
    CHECK(outcome->calls == 1);
    CHECK(outcome->result.ok() == !fails);
  }
  CHECK(other.calls == 0);
}

TEST_CASE("a failed review is Unavailable with the reason, never allowed, and not cached") {
  struct Case {
    const char* what;
    HttpResult result;
    std::string message;
  };
  const Case c = GENERATE(
      Case{"no answer", test::ConnectionLost("connection refused"),
           "cannot authorize the call: the SubjectAccessReview failed: connection refused"},
      Case{"503", test::HttpError(503, "ServiceUnavailable", "the server is shutting down"),
           "cannot authorize the call: the SubjectAccessReview failed: the server is shutting "
           "down"},
      Case{"403",
           test::HttpError(403, "Forbidden",
                           "subjectaccessreviews.authorization.k8s.io is forbidden"),
           "cannot authorize the call: the SubjectAccessReview failed: "
           "subjectaccessreviews.authorization.k8s.io is forbidden"},
      Case{"timeout",
           [] {
             HttpResult r;
             r.status = absl::DeadlineExceededError("timed out after 10s (request timeout)");
             return r;
           }(),
           "cannot authorize the call: the SubjectAccessReview failed: timed out after 10s "
           "(request timeout)"},
      Case{"garbage", test::Created("<html>allowed</html>"),
           "cannot authorize the call: the SubjectAccessReview failed: the SubjectAccessReview "
           "answer is not valid JSON: Invalid value. at byte 0"},
      Case{"no status.allowed", test::Created(R"({"kind":"SubjectAccessReview","status":{}})"),
           ""});
  INFO(c.what);
  Fixture f;
  Outcome outcome;
  f.authorizer.Authorize(Alice(), ListPods(), Record(outcome));
  f.Answer(c.result);
  REQUIRE(outcome.calls == 1);
  REQUIRE_FALSE(outcome.result.ok());
  CHECK(outcome.result.status().code() == absl::StatusCode::kUnavailable);
  if (!c.message.empty()) CHECK(outcome.result.status().message() == c.message);
  CHECK(f.authorizer.stats().errors == 1);
  CHECK(f.authorizer.stats().cache_entries == 0);
  f.Authorize(Alice(), ListPods());
  CHECK(f.client.requests().size() == 2);  // asked again
  CHECK(f.log.str().find("[warning]") != std::string::npos);
}

TEST_CASE("a thousand distinct users keep the decision cache at its bound") {
  SubjectAccessReviewAuthorizerOptions options;
  options.max_cache_entries = 100;
  Fixture f(options);
  for (int i = 0; i < 1000; ++i) {
    core::UserInfo user = Alice();
    user.name = "user-" + std::to_string(i);
    f.Decide(user, ListPods(), false);
  }
  CHECK(f.authorizer.stats().cache_entries == 100);
  core::UserInfo newest = Alice();
  newest.name = "user-999";
  f.Authorize(newest, ListPods());
  CHECK(f.client.requests().size() == 1000);
}

TEST_CASE("the defaults, and recheck_interval is the allowed TTL") {
  SubjectAccessReviewAuthorizerOptions defaults;
  CHECK(defaults.allowed_ttl == minutes(5));
  CHECK(defaults.denied_ttl == seconds(30));
  CHECK(defaults.max_cache_entries == 10000);
  {
    Fixture f;
    CHECK(f.authorizer.recheck_interval() == minutes(5));
  }
  SubjectAccessReviewAuthorizerOptions options;
  options.allowed_ttl = seconds(2);
  {
    Fixture f(options);
    CHECK(f.authorizer.recheck_interval() == seconds(2));
  }
  options.allowed_ttl = milliseconds(0);  // not cached: still re-checked, at the default pace
  {
    Fixture f(options);
    CHECK(f.authorizer.recheck_interval() == minutes(5));
  }
}

TEST_CASE("the counters and the review latency") {
  Fixture f;
  Outcome first;
  f.authorizer.Authorize(Alice(), ListPods(), Record(first));
  f.authorizer.Authorize(Alice(), ListPods(), [](auto) {});
  f.clock.Advance(milliseconds(250));
  f.Answer(Allowed());
  f.Authorize(Alice(), ListPods());  // cached
  f.authorizer.Authorize(Alice(), ListPods("team-b"), [](auto) {});
  f.clock.Advance(milliseconds(50));
  f.Answer(Denied());
  f.authorizer.Authorize(Alice(), ListPods("team-c"), [](auto) {});
  f.clock.Advance(milliseconds(700));
  f.Answer(test::ConnectionLost());
  const AuthorizerStats stats = f.authorizer.stats();
  CHECK(stats.reviews == 3);
  CHECK(stats.shared == 1);
  CHECK(stats.cache_hits == 1);
  CHECK(stats.allowed == 1);
  CHECK(stats.denied == 1);
  CHECK(stats.errors == 1);
  CHECK(stats.review_latency_count == 3);
  CHECK(stats.review_latency_sum == milliseconds(1000));
  CHECK(stats.cache_entries == 2);
}

TEST_CASE("a review answered after the authorizer is gone still reaches its callers") {
  boost::asio::io_context io;
  test::FakeReviewClient client(io);
  core::FakeClock clock;
  std::ostringstream log;
  Outcome outcome;
  {
    SubjectAccessReviewAuthorizer authorizer(client, clock, {}, test::StringLogger(log));
    authorizer.Authorize(Alice(), ListPods(), Record(outcome));
  }
  client.AnswerLast(Allowed());
  io.poll();
  REQUIRE(outcome.calls == 1);
  CHECK(outcome.result.ok());
}

TEST_CASE("AlwaysAllow allows at once and never re-checks") {
  AlwaysAllowAuthorizer authorizer;
  Outcome outcome;
  authorizer.Authorize(core::AnonymousUser(), ListPods(), Record(outcome));
  CHECK(outcome.calls == 1);
  REQUIRE(outcome.result.ok());
  CHECK(outcome.result->allowed);
  CHECK(authorizer.recheck_interval() == milliseconds(0));
}

TEST_CASE(
    "checks from several threads while reviews are answered on another: every caller is "
    "answered once, and each question is reviewed once") {
  Fixture f;
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 250;
  // Namespaces ns-0 ... ns-9: even ones allowed.
  const test::ConcurrentCalls calls = test::CallFromThreads(
      f.client, f.io, kThreads, kCallsPerThread,
      [](const test::FakeReviewClient::Request& request) {
        rapidjson::Document body;
        body.Parse(request.body.c_str());
        const std::string ns = body["spec"]["resourceAttributes"]["namespace"].GetString();
        return (ns.back() - '0') % 2 == 0 ? Allowed() : Denied();
      },
      [&](int i, std::function<void(bool)> done) {
        f.authorizer.Authorize(Alice(), ListPods("ns-" + std::to_string(i % 10)),
                               [done](absl::StatusOr<AccessDecision> decision) {
                                 done(decision.ok() && decision->allowed);
                               });
      });
  CHECK(calls.answered == kThreads * kCallsPerThread);
  CHECK(calls.positive == kThreads * kCallsPerThread / 2);
  const AuthorizerStats stats = f.authorizer.stats();
  CHECK(stats.reviews == 10);
  CHECK(stats.reviews + stats.shared + stats.cache_hits == kThreads * kCallsPerThread);
}

}  // namespace
}  // namespace informerd::daemon
