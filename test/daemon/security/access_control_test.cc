// AccessControl with a scripted Authenticator and Authorizer: Check = authenticate, then every
// check allowed; the first denial (in the order asked) is PERMISSION_DENIED with what was checked
// and the apiserver's reason; a failed check UNAVAILABLE, never allowed; a denial wins over a
// failure. And the audit line: its exact text, escaping, and the switch.
#include "daemon/security/access_control.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/user_info.h"
#include "test/daemon/security/security_test_support.h"

namespace informerd::daemon {
namespace {

// Answers with `result`, inline, or when the test says if `hold` is set.
class ScriptedAuthenticator final : public Authenticator {
 public:
  void Authenticate(const CallCredentials&, Callback done) override {
    if (hold) return held.push_back(std::move(done));
    done(result);
  }
  absl::StatusOr<core::UserInfo> result = absl::UnauthenticatedError("no credentials");
  bool hold = false;
  std::vector<Callback> held;
};

// Holds every check until the test answers it (or answers inline when `inline_answer` is set).
class ScriptedAuthorizer final : public Authorizer {
 public:
  struct Check {
    core::UserInfo user;
    core::ResourceAttributes attributes;
    Callback done;
  };
  void Authorize(const core::UserInfo& user, const core::ResourceAttributes& attributes,
                 Callback done) override {
    if (inline_answer) return done(*inline_answer);
    checks.push_back(Check{user, attributes, std::move(done)});
  }
  std::chrono::milliseconds recheck_interval() const override { return std::chrono::seconds(7); }

  void Answer(std::size_t index, absl::StatusOr<AccessDecision> answer) {
    checks.at(index).done(std::move(answer));
  }

  std::optional<absl::StatusOr<AccessDecision>> inline_answer;
  std::vector<Check> checks;
};

core::UserInfo Alice() {
  core::UserInfo user;
  user.name = "alice";
  user.groups = {"system:authenticated"};
  return user;
}

std::vector<core::ResourceAttributes> ListAndWatchPods(const std::string& namespace_name) {
  return {{"list", "", "pods", namespace_name, ""}, {"watch", "", "pods", namespace_name, ""}};
}

AccessDecision Allow() { return AccessDecision{true, "RBAC: allowed"}; }
AccessDecision Deny(std::string reason = "") { return AccessDecision{false, std::move(reason)}; }

struct Outcome {
  int calls = 0;
  absl::StatusOr<core::UserInfo> result = absl::UnknownError("not called");
};

struct Fixture {
  Fixture() { authenticator.result = Alice(); }

  // The outcome of a Check, filled in when it completes (outcomes live as long as the fixture).
  Outcome& Check(std::vector<core::ResourceAttributes> needed) {
    Outcome& outcome = outcomes.emplace_back();
    access.Check(CallCredentials{}, std::move(needed),
                 [&outcome](absl::StatusOr<core::UserInfo> r) {
                   ++outcome.calls;
                   outcome.result = std::move(r);
                 });
    return outcome;
  }

  std::deque<Outcome> outcomes;
  ScriptedAuthenticator authenticator;
  ScriptedAuthorizer authorizer;
  std::ostringstream log;
  AccessControl access{authenticator, authorizer, test::StringLogger(log, "audit")};
};

TEST_CASE("an authenticated caller allowed every check gets its user") {
  Fixture f;
  Outcome outcome;
  f.access.Check(CallCredentials{}, ListAndWatchPods("team-a"),
                 [&](absl::StatusOr<core::UserInfo> r) {
                   ++outcome.calls;
                   outcome.result = std::move(r);
                 });
  // Both checks are asked at once, for the authenticated user.
  REQUIRE(f.authorizer.checks.size() == 2);
  CHECK(f.authorizer.checks[0].user == Alice());
  CHECK(f.authorizer.checks[0].attributes == ListAndWatchPods("team-a")[0]);
  CHECK(f.authorizer.checks[1].attributes == ListAndWatchPods("team-a")[1]);
  f.authorizer.Answer(1, Allow());
  CHECK(outcome.calls == 0);  // waits for every answer
  f.authorizer.Answer(0, Allow());
  REQUIRE(outcome.calls == 1);
  REQUIRE(outcome.result.ok());
  CHECK(*outcome.result == Alice());
}

TEST_CASE("answers known at once are given inline") {
  Fixture f;
  f.authorizer.inline_answer = Allow();
  const Outcome& outcome = f.Check(ListAndWatchPods("team-a"));
  CHECK(outcome.calls == 1);
  CHECK(outcome.result.ok());
}

TEST_CASE(
    "the first denial, in the order asked, is PERMISSION_DENIED naming the check and the "
    "apiserver's reason") {
  Fixture f;
  Outcome& outcome = f.Check(ListAndWatchPods("team-b"));
  f.authorizer.Answer(1, Deny("no RBAC policy matched"));
  f.authorizer.Answer(0, Deny());
  REQUIRE(outcome.calls == 1);
  CHECK(outcome.result.status() ==
        absl::PermissionDeniedError("user \"alice\" cannot list pods in namespace \"team-b\""));

  Outcome& second = f.Check(ListAndWatchPods("team-b"));
  f.authorizer.Answer(2, Allow());
  f.authorizer.Answer(3, Deny("no RBAC policy matched"));
  CHECK(second.result.status() ==
        absl::PermissionDeniedError(
            "user \"alice\" cannot watch pods in namespace \"team-b\": no RBAC policy matched"));
}

TEST_CASE("cluster-scope and named checks are described as the apiserver does") {
  Fixture f;
  f.authorizer.inline_answer = Deny();
  CHECK(f.Check({{"watch", "apps", "deployments", "", ""}}).result.status() ==
        absl::PermissionDeniedError(
            "user \"alice\" cannot watch deployments.apps at the cluster scope"));
  CHECK(f.Check({{"get", "", "pods", "team-b", "web-1"}}).result.status() ==
        absl::PermissionDeniedError(
            "user \"alice\" cannot get pods \"web-1\" in namespace \"team-b\""));
}

TEST_CASE("a check that failed is UNAVAILABLE, never allowed; a denial wins over a failure") {
  Fixture f;
  const absl::Status failure = absl::UnavailableError(
      "cannot authorize the call: the SubjectAccessReview failed: connection refused");
  Outcome& outcome = f.Check(ListAndWatchPods("team-a"));
  f.authorizer.Answer(0, Allow());
  f.authorizer.Answer(1, failure);
  CHECK(outcome.result.status() == failure);

  Outcome& denied = f.Check(ListAndWatchPods("team-a"));
  f.authorizer.Answer(2, failure);
  f.authorizer.Answer(3, Deny());
  CHECK(denied.result.status().code() == absl::StatusCode::kPermissionDenied);

  // Whatever code an authorizer used, a failed check is reported as UNAVAILABLE.
  Outcome& internal = f.Check({ListAndWatchPods("team-a")[0]});
  f.authorizer.Answer(4, absl::InternalError("broken"));
  CHECK(internal.result.status() == absl::UnavailableError("broken"));
}

TEST_CASE("an unauthenticated or unverifiable caller is refused before any check") {
  Fixture f;
  const absl::Status status =
      GENERATE(absl::UnauthenticatedError("the bearer token was rejected by the apiserver"),
               absl::UnavailableError("cannot verify the bearer token: the TokenReview failed: x"));
  f.authenticator.result = status;
  const Outcome& outcome = f.Check(ListAndWatchPods("team-a"));
  CHECK(outcome.calls == 1);
  CHECK(outcome.result.status() == status);
  CHECK(f.authorizer.checks.empty());
}

TEST_CASE("Authorize alone: the re-check of a running stream; nothing to check is allowed") {
  Fixture f;
  std::optional<absl::Status> result;
  f.access.Authorize(Alice(), {}, [&](absl::Status s) { result = s; });
  REQUIRE(result);
  CHECK(result->ok());
  result.reset();
  f.access.Authorize(Alice(), ListAndWatchPods("team-a"), [&](absl::Status s) { result = s; });
  f.authorizer.Answer(0, Allow());
  f.authorizer.Answer(1, Deny());
  REQUIRE(result);
  CHECK(*result ==
        absl::PermissionDeniedError("user \"alice\" cannot watch pods in namespace \"team-a\""));
  CHECK(f.access.recheck_interval() == std::chrono::seconds(7));
}

TEST_CASE("answers arriving on several threads at once: judged once, when the last is in") {
  for (int round = 0; round < 200; ++round) {
    Fixture f;
    std::vector<core::ResourceAttributes> needed;
    for (int i = 0; i < 4; ++i)
      needed.push_back({"list", "", "pods", "ns-" + std::to_string(i), ""});
    const Outcome& outcome = f.Check(needed);
    REQUIRE(f.authorizer.checks.size() == 4);
    std::vector<std::thread> answerers;
    for (std::size_t i = 0; i < 4; ++i) {
      answerers.emplace_back([&f, i] { f.authorizer.Answer(i, i == 2 ? Deny() : Allow()); });
    }
    for (std::thread& answerer : answerers) answerer.join();
    REQUIRE(outcome.calls == 1);
    CHECK(outcome.result.status() ==
          absl::PermissionDeniedError("user \"alice\" cannot list pods in namespace \"ns-2\""));
  }
}

TEST_CASE("a Check answered after the AccessControl is gone still completes") {
  ScriptedAuthenticator authenticator;
  authenticator.hold = true;
  ScriptedAuthorizer authorizer;
  authorizer.inline_answer = Allow();
  Outcome outcome;
  {
    AccessControl access(authenticator, authorizer, nullptr);
    access.Check(CallCredentials{}, ListAndWatchPods("team-a"),
                 [&outcome](absl::StatusOr<core::UserInfo> r) {
                   ++outcome.calls;
                   outcome.result = std::move(r);
                 });
  }
  REQUIRE(authenticator.held.size() == 1);
  authenticator.held[0](Alice());
  REQUIRE(outcome.calls == 1);
  REQUIRE(outcome.result.ok());
  CHECK(*outcome.result == Alice());
}

TEST_CASE("the audit line") {
  Fixture f;
  AuditRecord record;
  record.user = "alice";
  record.peer = "ipv4:10.0.0.7:51234";
  record.method = "List";
  record.resource = "pods";
  record.namespace_name = "team-b";
  record.decision = AuditDecision::kDeny;
  record.code = absl::StatusCode::kPermissionDenied;
  f.access.Audit(record);
  CHECK(f.log.str() ==
        "[info] [audit] user=\"alice\" peer=\"ipv4:10.0.0.7:51234\" method=\"List\" "
        "resource=\"pods\" namespace=\"team-b\" decision=deny code=PERMISSION_DENIED\n");
  CHECK(f.access.audit_enabled());

  // A name cannot forge fields or lines.
  record.user = "eve\" decision=allow\nuser=\"x";
  record.decision = AuditDecision::kAllow;
  record.code = absl::StatusCode::kNotFound;
  CHECK(FormatAuditRecord(record) ==
        "user=\"eve\\\" decision=allow\\nuser=\\\"x\" peer=\"ipv4:10.0.0.7:51234\" "
        "method=\"List\" resource=\"pods\" namespace=\"team-b\" decision=allow code=NOT_FOUND");
}

TEST_CASE("auditing off writes nothing") {
  ScriptedAuthenticator authenticator;
  ScriptedAuthorizer authorizer;
  AccessControl access(authenticator, authorizer, nullptr);
  CHECK_FALSE(access.audit_enabled());
  access.Audit(AuditRecord{});  // no logger, no crash
}

TEST_CASE("the decision an access check's result stands for") {
  CHECK(AuditDecisionFor(absl::OkStatus()) == AuditDecision::kAllow);
  CHECK(AuditDecisionFor(absl::UnauthenticatedError("")) == AuditDecision::kUnauthenticated);
  CHECK(AuditDecisionFor(absl::PermissionDeniedError("")) == AuditDecision::kDeny);
  CHECK(AuditDecisionFor(absl::UnavailableError("")) == AuditDecision::kError);
  CHECK(std::string(AuditDecisionName(AuditDecision::kAllow)) == "allow");
  CHECK(std::string(AuditDecisionName(AuditDecision::kDeny)) == "deny");
  CHECK(std::string(AuditDecisionName(AuditDecision::kError)) == "error");
  CHECK(std::string(AuditDecisionName(AuditDecision::kUnauthenticated)) == "unauthenticated");
}

}  // namespace
}  // namespace informerd::daemon
