// TokenReviewAuthenticator in-process: a FakeReviewClient answers each TokenReview when the test
// says, time is a FakeClock. Checks the review request, the user, the cache (TTLs to the
// millisecond, the bound, shared reviews), failures (never authenticated, never cached), the
// exact messages, and that no message or log line ever carries the token.
#include "daemon/security/token_review_authenticator.h"

#include <rapidjson/document.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/user_info.h"
#include "test/common/fake_clock.h"
#include "test/common/scripted_list_watch_client.h"
#include "test/daemon/security/security_test_support.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

using Outcome = test::Outcome<absl::StatusOr<core::UserInfo>>;
using test::Record;

TokenReviewAuthenticatorOptions WithAudiences(std::vector<std::string> audiences) {
  TokenReviewAuthenticatorOptions options;
  options.audiences = std::move(audiences);
  return options;
}

struct Fixture {
  explicit Fixture(TokenReviewAuthenticatorOptions options = WithAudiences({"informerd"}))
      : tokens(client, clock, std::move(options), test::StringLogger(log, "authn")) {}

  // Authenticates `token` and runs whatever is ready.
  // The outcome lives as long as the fixture: a review left unanswered may still call back.
  const Outcome& Authenticate(const std::string& token) {
    Outcome& outcome = outcomes.emplace_back();
    tokens.Authenticate(token, Record(outcome));
    io.poll();
    return outcome;
  }

  // Answers the newest review and runs the callbacks.
  void Answer(HttpResult result) {
    client.AnswerLast(std::move(result));
    io.poll();
  }

  std::deque<Outcome> outcomes;
  boost::asio::io_context io;
  test::FakeReviewClient client{io};
  core::FakeClock clock;
  std::ostringstream log;
  TokenReviewAuthenticator tokens;
};

const test::ReviewedUser kAlice{"alice", "uid-1", {"team-a", "system:authenticated"}, {}};

HttpResult AuthenticatedAlice() {
  return test::Created(test::TokenReviewAuthenticated(kAlice, {"informerd"}));
}

HttpResult Rejected(const std::string& error = "invalid bearer token") {
  return test::Created(test::TokenReviewUnauthenticated(error));
}

TEST_CASE(
    "the TokenReview carries the token and the configured audiences; the answer's user is "
    "the caller, with system:authenticated added") {
  Fixture f(WithAudiences({"informerd", "informerd.example.com"}));
  Outcome outcome;
  f.tokens.Authenticate("token-1", Record(outcome));
  REQUIRE(f.client.requests().size() == 1);
  CHECK(f.client.requests()[0].path == "/apis/authentication.k8s.io/v1/tokenreviews");
  rapidjson::Document body;
  body.Parse(f.client.requests()[0].body.c_str());
  REQUIRE(body.IsObject());
  CHECK(std::string(body["kind"].GetString()) == "TokenReview");
  CHECK(std::string(body["spec"]["token"].GetString()) == "token-1");
  REQUIRE(body["spec"]["audiences"].Size() == 2);
  CHECK(std::string(body["spec"]["audiences"][0].GetString()) == "informerd");
  CHECK(std::string(body["spec"]["audiences"][1].GetString()) == "informerd.example.com");
  CHECK(outcome.calls == 0);  // not inside Authenticate

  test::ReviewedUser bob{"bob", "uid-2", {"team-b"}, {{"scopes", {"a", "b"}}}};
  f.Answer(test::Created(test::TokenReviewAuthenticated(bob, {"informerd.example.com"})));
  REQUIRE(outcome.calls == 1);
  REQUIRE(outcome.result.ok());
  CHECK(outcome.result->name == "bob");
  CHECK(outcome.result->uid == "uid-2");
  CHECK(outcome.result->groups == std::vector<std::string>{"team-b", "system:authenticated"});
  CHECK(outcome.result->extra ==
        std::map<std::string, std::vector<std::string>>{{"scopes", {"a", "b"}}});
}

TEST_CASE("without configured audiences the request names none and any audience is accepted") {
  Fixture f(WithAudiences({}));
  Outcome outcome;
  f.tokens.Authenticate("token-1", Record(outcome));
  rapidjson::Document body;
  body.Parse(f.client.requests()[0].body.c_str());
  CHECK_FALSE(body["spec"].HasMember("audiences"));
  f.Answer(test::Created(
      test::TokenReviewAuthenticated(kAlice, {"https://kubernetes.default.svc.cluster.local"})));
  REQUIRE(outcome.result.ok());
  CHECK(outcome.result->name == "alice");
  // Already in system:authenticated: not added twice.
  CHECK(outcome.result->groups == std::vector<std::string>{"team-a", "system:authenticated"});
}

TEST_CASE("a token whose audiences include none of the configured ones is rejected") {
  Fixture f(WithAudiences({"informerd", "informerd.example.com"}));
  const auto wrong = GENERATE(std::vector<std::string>{},
                              std::vector<std::string>{"https://kubernetes.default.svc"});
  Outcome outcome;
  f.tokens.Authenticate("token-1", Record(outcome));
  f.Answer(test::Created(test::TokenReviewAuthenticated(kAlice, wrong)));
  REQUIRE(outcome.calls == 1);
  CHECK(outcome.result.status() ==
        absl::UnauthenticatedError("the bearer token was rejected by the apiserver: the token is "
                                   "not valid for any of the audiences \"informerd\", "
                                   "\"informerd.example.com\""));
  CHECK(f.tokens.stats().rejected == 1);
}

TEST_CASE("an authenticated token is cached for two minutes, to the millisecond") {
  Fixture f;
  f.tokens.Authenticate("token-1", [](auto) {});
  f.Answer(AuthenticatedAlice());

  f.clock.Advance(minutes(2) - milliseconds(1));
  Outcome cached;
  f.tokens.Authenticate("token-1", Record(cached));
  CHECK(cached.calls == 1);  // inline
  REQUIRE(cached.result.ok());
  CHECK(cached.result->name == "alice");
  CHECK(f.client.requests().size() == 1);
  CHECK(f.tokens.stats().cache_hits == 1);

  f.clock.Advance(milliseconds(1));
  const Outcome& expired = f.Authenticate("token-1");
  CHECK(expired.calls == 0);
  CHECK(f.client.requests().size() == 2);
}

TEST_CASE("a rejected token is cached for ten seconds, to the millisecond, with its message") {
  Fixture f;
  Outcome first;
  f.tokens.Authenticate("bad", Record(first));
  f.Answer(Rejected("[invalid bearer token, square/go-jose: error in cryptographic primitive]"));
  const absl::Status expected = absl::UnauthenticatedError(
      "the bearer token was rejected by the apiserver: [invalid bearer token, square/go-jose: "
      "error in cryptographic primitive]");
  CHECK(first.result.status() == expected);

  f.clock.Advance(seconds(10) - milliseconds(1));
  Outcome cached;
  f.tokens.Authenticate("bad", Record(cached));
  CHECK(cached.calls == 1);
  CHECK(cached.result.status() == expected);
  CHECK(f.client.requests().size() == 1);

  f.clock.Advance(milliseconds(1));
  f.Authenticate("bad");
  CHECK(f.client.requests().size() == 2);
}

TEST_CASE("a rejection without status.error says only that it was rejected") {
  Fixture f;
  Outcome outcome;
  f.tokens.Authenticate("bad", Record(outcome));
  f.Answer(Rejected(""));
  CHECK(outcome.result.status() ==
        absl::UnauthenticatedError("the bearer token was rejected by the apiserver"));
}

TEST_CASE("the TTLs come from the options") {
  TokenReviewAuthenticatorOptions options = WithAudiences({"informerd"});
  options.authenticated_ttl = seconds(5);
  options.unauthenticated_ttl = seconds(1);
  Fixture f(options);
  f.tokens.Authenticate("good", [](auto) {});
  f.Answer(AuthenticatedAlice());
  f.tokens.Authenticate("bad", [](auto) {});
  f.Answer(Rejected());
  f.clock.Advance(seconds(1));
  f.Authenticate("good");
  f.Authenticate("bad");
  CHECK(f.client.requests().size() == 3);  // "bad" again
  f.clock.Advance(seconds(4));
  f.Authenticate("good");
  CHECK(f.client.requests().size() == 4);
}

TEST_CASE("a failed review is Unavailable with the reason, is never a user, and is not cached") {
  struct Case {
    const char* what;
    HttpResult result;
    std::string message;
  };
  const Case c = GENERATE(
      Case{"no answer", test::ConnectionLost("connection refused"),
           "cannot verify the bearer token: the TokenReview failed: connection refused"},
      Case{"503", test::HttpError(503, "ServiceUnavailable", "the server is shutting down"),
           "cannot verify the bearer token: the TokenReview failed: the server is shutting down"},
      Case{"403", test::HttpError(403, "Forbidden", "tokenreviews is forbidden"),
           "cannot verify the bearer token: the TokenReview failed: tokenreviews is forbidden"},
      Case{"timeout",
           [] {
             HttpResult r;
             r.status = absl::DeadlineExceededError("timed out after 10s (request timeout)");
             return r;
           }(),
           "cannot verify the bearer token: the TokenReview failed: timed out after 10s (request "
           "timeout)"},
      Case{"garbage", test::Created("<html>hello</html>"),
           "cannot verify the bearer token: the TokenReview failed: the TokenReview answer is not "
           "valid JSON: Invalid value. at byte 0"});
  INFO(c.what);
  Fixture f;
  Outcome outcome;
  f.tokens.Authenticate("token-1", Record(outcome));
  f.Answer(c.result);
  REQUIRE(outcome.calls == 1);
  CHECK(outcome.result.status() == absl::UnavailableError(c.message));
  CHECK(f.tokens.stats().errors == 1);
  CHECK(f.tokens.stats().cache_entries == 0);

  const Outcome& again = f.Authenticate("token-1");
  CHECK(again.calls == 0);
  CHECK(f.client.requests().size() == 2);  // reviewed again
}

TEST_CASE("concurrent calls with the same uncached token share one review, success or failure") {
  Fixture f;
  const bool fails = GENERATE(false, true);
  Outcome a, b, c, other;
  f.tokens.Authenticate("token-1", Record(a));
  f.tokens.Authenticate("token-1", Record(b));
  f.tokens.Authenticate("token-2", Record(other));
  f.tokens.Authenticate("token-1", Record(c));
  REQUIRE(f.client.requests().size() == 2);
  CHECK(f.tokens.stats().shared == 2);
  f.client.Answer(0, fails ? test::ConnectionLost() : AuthenticatedAlice());
  f.io.poll();
  for (Outcome* outcome : {&a, &b, &c}) {
    CHECK(outcome->calls == 1);
    CHECK(outcome->result.ok() == !fails);
  }
  CHECK(other.calls == 0);
  // The next call after the review: from the cache, or a new review after a failure.
  f.Authenticate("token-1");
  CHECK(f.client.requests().size() == (fails ? 3u : 2u));
}

TEST_CASE("a thousand distinct invalid tokens keep the cache at its bound") {
  TokenReviewAuthenticatorOptions options = WithAudiences({"informerd"});
  options.max_cache_entries = 100;
  Fixture f(options);
  for (int i = 0; i < 1000; ++i) {
    f.tokens.Authenticate("invalid-" + std::to_string(i), [](auto) {});
    f.Answer(Rejected());
  }
  CHECK(f.tokens.stats().rejected == 1000);
  CHECK(f.tokens.stats().cache_entries == 100);
  // The newest are kept, the oldest went.
  f.Authenticate("invalid-999");
  CHECK(f.client.requests().size() == 1000);
  f.Authenticate("invalid-0");
  CHECK(f.client.requests().size() == 1001);
}

TEST_CASE("the default bound and TTLs") {
  TokenReviewAuthenticatorOptions options;
  CHECK(options.max_cache_entries == 10000);
  CHECK(options.authenticated_ttl == minutes(2));
  CHECK(options.unauthenticated_ttl == seconds(10));
  CHECK(options.audiences.empty());
  CHECK(kMaxBearerTokenBytes == 16384);
}

TEST_CASE("a token longer than the bound, or empty, is refused without a review") {
  Fixture f;
  f.Authenticate(std::string(kMaxBearerTokenBytes, 'a'));
  CHECK(f.client.requests().size() == 1);  // at the bound: reviewed

  Outcome too_long;
  f.tokens.Authenticate(std::string(kMaxBearerTokenBytes + 1, 'a'), Record(too_long));
  CHECK(too_long.calls == 1);
  CHECK(too_long.result.status() ==
        absl::UnauthenticatedError("the bearer token is longer than 16384 bytes (it has 16385)"));
  Outcome mebibyte;
  f.tokens.Authenticate(std::string(1 << 20, 'a'), Record(mebibyte));
  CHECK(mebibyte.result.status().code() == absl::StatusCode::kUnauthenticated);
  Outcome empty;
  f.tokens.Authenticate("", Record(empty));
  CHECK(empty.result.status() == absl::UnauthenticatedError("the bearer token is empty"));
  CHECK(f.client.requests().size() == 1);
  CHECK(f.tokens.stats().refused_without_review == 3);
}

TEST_CASE("logs name a token by an 8-hex-digit hash prefix, never by its value") {
  CHECK(TokenHashPrefix("abc") == "sha256:ba7816bf");  // FIPS 180-2's test vector

  Fixture f;
  const std::string token = "eyJhbGciOiJSUzI1NiJ9.secret-claims.signature";
  // The apiserver echoes the token in its answers; an error text might quote it.
  f.tokens.Authenticate(token, [](auto) {});
  f.Answer(test::Created(test::TokenReviewAuthenticated(kAlice, {"informerd"}, token)));
  f.clock.Advance(minutes(3));
  Outcome rejected;
  f.tokens.Authenticate(token, Record(rejected));
  f.Answer(test::Created(test::TokenReviewUnauthenticated("token " + token + " expired", token)));
  f.clock.Advance(minutes(3));
  Outcome failed;
  f.tokens.Authenticate(token, Record(failed));
  f.Answer(test::HttpError(500, "InternalError", "cannot review " + token));
  Outcome garbage;
  f.clock.Advance(minutes(3));
  f.tokens.Authenticate(token, Record(garbage));
  f.Answer(test::Created("{\"status\":\"" + token + "\"}"));

  CHECK(rejected.result.status().message() ==
        "the bearer token was rejected by the apiserver: token <token> expired");
  CHECK(failed.result.status().message() ==
        "cannot verify the bearer token: the TokenReview failed: cannot review <token>");
  CHECK(garbage.result.status().code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(garbage.result.status().message()).find(token) == std::string::npos);
  const std::string log = f.log.str();
  INFO(log);
  CHECK(log.find("eyJhbGci") == std::string::npos);
  CHECK(log.find(TokenHashPrefix(token)) != std::string::npos);
  CHECK(log.find("[warning]") != std::string::npos);  // failures are logged
}

TEST_CASE("the counters") {
  Fixture f;
  f.tokens.Authenticate("good", [](auto) {});
  f.tokens.Authenticate("good", [](auto) {});
  f.Answer(AuthenticatedAlice());
  f.Authenticate("good");
  f.tokens.Authenticate("bad", [](auto) {});
  f.Answer(Rejected());
  f.tokens.Authenticate("broken", [](auto) {});
  f.Answer(test::ConnectionLost());
  f.Authenticate("");
  const TokenReviewStats stats = f.tokens.stats();
  CHECK(stats.reviews == 3);
  CHECK(stats.shared == 1);
  CHECK(stats.cache_hits == 1);
  CHECK(stats.authenticated == 1);
  CHECK(stats.rejected == 1);
  CHECK(stats.errors == 1);
  CHECK(stats.refused_without_review == 1);
  CHECK(stats.cache_entries == 2);
}

TEST_CASE("a review answered after the authenticator is gone still reaches its callers") {
  boost::asio::io_context io;
  test::FakeReviewClient client(io);
  core::FakeClock clock;
  std::ostringstream log;
  Outcome outcome;
  {
    TokenReviewAuthenticator tokens(client, clock, {}, test::StringLogger(log));
    tokens.Authenticate("token-1", Record(outcome));
  }
  client.AnswerLast(AuthenticatedAlice());
  io.poll();
  REQUIRE(outcome.calls == 1);
  CHECK(outcome.result.ok());
}

TEST_CASE(
    "calls from several threads while reviews are answered on another: every caller is "
    "answered once, and each token is reviewed once") {
  Fixture f;
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 250;
  // Even tokens are valid, odd ones not.
  const test::ConcurrentCalls calls = test::CallFromThreads(
      f.client, f.io, kThreads, kCallsPerThread,
      [](const test::FakeReviewClient::Request& request) {
        rapidjson::Document body;
        body.Parse(request.body.c_str());
        const std::string token = body["spec"]["token"].GetString();
        return (token.back() - '0') % 2 == 0 ? AuthenticatedAlice() : Rejected();
      },
      [&](int i, std::function<void(bool)> done) {
        f.tokens.Authenticate("token-" + std::to_string(i % 10),
                              [done](absl::StatusOr<core::UserInfo> user) { done(user.ok()); });
      });
  CHECK(calls.answered == kThreads * kCallsPerThread);
  CHECK(calls.positive == kThreads * kCallsPerThread / 2);
  const TokenReviewStats stats = f.tokens.stats();
  CHECK(stats.reviews == 10);
  CHECK(stats.reviews + stats.shared + stats.cache_hits == kThreads * kCallsPerThread);
}

}  // namespace
}  // namespace informerd::daemon
