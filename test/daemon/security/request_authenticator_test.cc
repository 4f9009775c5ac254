// RequestAuthenticator: which credential decides, the exact Unauthenticated messages (never
// quoting the metadata's value), and tokens handed to a TokenReviewAuthenticator whose reviews a
// FakeReviewClient answers.
#include "daemon/security/request_authenticator.h"

#include <rapidjson/document.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <deque>
#include <optional>
#include <sstream>
#include <string>

#include "core/user_info.h"
#include "daemon/security/token_review_authenticator.h"
#include "test/common/fake_clock.h"
#include "test/common/scripted_list_watch_client.h"
#include "test/daemon/security/security_test_support.h"

namespace informerd::daemon {
namespace {

using Outcome = test::Outcome<absl::StatusOr<core::UserInfo>>;
using test::Record;

core::UserInfo CertificateUser() {
  core::UserInfo user;
  user.name = "cert-user";
  user.groups = {"team-c", "system:authenticated"};
  return user;
}

CallCredentials WithAuthorization(std::string value) {
  CallCredentials credentials;
  credentials.authorization = std::move(value);
  return credentials;
}

struct Fixture {
  explicit Fixture(bool accept_tokens = true, bool allow_anonymous = false)
      : tokens(client, clock, {}, test::StringLogger(log)),
        authenticator(accept_tokens ? &tokens : nullptr, allow_anonymous) {}

  // The outcome lives as long as the fixture: a review left unanswered may still call back.
  const Outcome& Authenticate(const CallCredentials& credentials) {
    Outcome& outcome = outcomes.emplace_back();
    authenticator.Authenticate(credentials, Record(outcome));
    io.poll();
    return outcome;
  }

  // The token the newest TokenReview asked about.
  std::string ReviewedToken() const {
    REQUIRE(!client.requests().empty());
    rapidjson::Document body;
    body.Parse(client.requests().back().body.c_str());
    return body["spec"]["token"].GetString();
  }

  std::deque<Outcome> outcomes;
  boost::asio::io_context io;
  test::FakeReviewClient client{io};
  core::FakeClock clock;
  std::ostringstream log;
  TokenReviewAuthenticator tokens;
  RequestAuthenticator authenticator;
};

absl::Status Malformed(const std::string& why) {
  return absl::UnauthenticatedError("malformed authorization metadata: " + why);
}

TEST_CASE("metadata the reader found unusable is refused with its reason") {
  Fixture f;
  CallCredentials credentials;
  credentials.malformed = "2 values";
  credentials.certificate_user = CertificateUser();
  const Outcome& outcome = f.Authenticate(credentials);
  CHECK(outcome.calls == 1);
  CHECK(outcome.result.status() == Malformed("2 values"));
  CHECK(f.client.requests().empty());
}

TEST_CASE("an authorization value that is not \"Bearer <token>\" is refused without quoting it") {
  struct Case {
    std::string value;
    absl::Status status;
  };
  const Case c = GENERATE(
      Case{"", Malformed("the value is empty; expected \"Bearer <token>\"")},
      Case{"   ", Malformed("the value is empty; expected \"Bearer <token>\"")},
      Case{"Basic YWxpY2U6c2VjcmV0",
           Malformed("the scheme is not Bearer; expected \"Bearer <token>\"")},
      // A token sent without its scheme: never echoed.
      Case{"eyJhbGciOiJSUzI1NiJ9.secret",
           Malformed("the scheme is not Bearer; expected \"Bearer <token>\"")},
      Case{"Bearertoken", Malformed("the scheme is not Bearer; expected \"Bearer <token>\"")},
      Case{"Bearer", Malformed("the bearer token is empty")},
      Case{"Bearer ", Malformed("the bearer token is empty")},
      Case{"Bearer  secret", Malformed("expected \"Bearer <token>\" with a single space and a "
                                       "token without whitespace")},
      Case{"Bearer secret extra", Malformed("expected \"Bearer <token>\" with a single space and "
                                            "a token without whitespace")});
  INFO(c.value);
  Fixture f;
  const Outcome& outcome = f.Authenticate(WithAuthorization(c.value));
  CHECK(outcome.calls == 1);
  CHECK(outcome.result.status() == c.status);
  CHECK(f.client.requests().empty());
}

TEST_CASE(
    "the scheme is case-insensitive and surrounding whitespace is ignored, as the "
    "apiserver reads the header") {
  const std::string value = GENERATE("Bearer secret", "bearer secret", "BEARER secret",
                                     "  Bearer secret\t", "bEaReR secret");
  INFO(value);
  Fixture f;
  Outcome outcome;
  f.authenticator.Authenticate(WithAuthorization(value), Record(outcome));
  REQUIRE(f.client.requests().size() == 1);
  CHECK(f.ReviewedToken() == "secret");
  f.client.AnswerLast(
      test::Created(test::TokenReviewAuthenticated({"alice", "", {"team-a"}, {}}, {})));
  f.io.poll();
  REQUIRE(outcome.calls == 1);
  REQUIRE(outcome.result.ok());
  CHECK(outcome.result->name == "alice");
}

TEST_CASE("a call that sends a token is judged by its token, even with a certificate") {
  Fixture f;
  CallCredentials credentials = WithAuthorization("Bearer revoked-token-1");
  credentials.certificate_user = CertificateUser();
  Outcome outcome;
  f.authenticator.Authenticate(credentials, Record(outcome));
  REQUIRE(f.client.requests().size() == 1);
  f.client.AnswerLast(test::Created(test::TokenReviewUnauthenticated("token revoked")));
  f.io.poll();
  CHECK(
      outcome.result.status() ==
      absl::UnauthenticatedError("the bearer token was rejected by the apiserver: token revoked"));

  Outcome unavailable;
  f.authenticator.Authenticate(WithAuthorization("Bearer other"), Record(unavailable));
  f.client.AnswerLast(test::ConnectionLost("connection refused"));
  f.io.poll();
  CHECK(unavailable.result.status() ==
        absl::UnavailableError(
            "cannot verify the bearer token: the TokenReview failed: connection refused"));
}

TEST_CASE("without a token authenticator a token is refused, even with a certificate") {
  Fixture f(/*accept_tokens=*/false, /*allow_anonymous=*/true);
  CallCredentials credentials = WithAuthorization("Bearer secret");
  credentials.certificate_user = CertificateUser();
  const Outcome& outcome = f.Authenticate(credentials);
  CHECK(outcome.calls == 1);
  CHECK(outcome.result.status() ==
        absl::UnauthenticatedError(
            "bearer tokens are not accepted (--authentication-token-webhook=false)"));
  // Malformed metadata is still reported as such.
  CHECK(f.Authenticate(WithAuthorization("Basic x")).result.status() ==
        Malformed("the scheme is not Bearer; expected \"Bearer <token>\""));
}

TEST_CASE("a 1 MiB token is refused before any review") {
  Fixture f;
  const Outcome& outcome = f.Authenticate(WithAuthorization("Bearer " + std::string(1 << 20, 'x')));
  CHECK(outcome.calls == 1);
  CHECK(outcome.result.status() ==
        absl::UnauthenticatedError("the bearer token is longer than 16384 bytes (it has 1048576)"));
  CHECK(f.client.requests().empty());
}

TEST_CASE("without a token, a verified client certificate is the caller") {
  const bool anonymous = GENERATE(false, true);
  Fixture f(true, anonymous);
  CallCredentials credentials;
  credentials.certificate_user = CertificateUser();
  const Outcome& outcome = f.Authenticate(credentials);
  CHECK(outcome.calls == 1);
  REQUIRE(outcome.result.ok());
  CHECK(*outcome.result == CertificateUser());
  CHECK(f.client.requests().empty());
}

TEST_CASE("a verified client certificate that names no user is refused, never anonymous") {
  Fixture f(true, /*allow_anonymous=*/true);
  CallCredentials credentials;
  credentials.certificate_error =
      "the client certificate names no user: its subject has no Common Name (CN)";
  const Outcome& outcome = f.Authenticate(credentials);
  CHECK(outcome.calls == 1);
  CHECK(outcome.result.status() ==
        absl::UnauthenticatedError(
            "the client certificate names no user: its subject has no Common Name (CN)"));
  // A token on the same call still decides.
  credentials.authorization = "Bearer secret";
  f.Authenticate(credentials);
  CHECK(f.client.requests().size() == 1);
}

TEST_CASE("without credentials: anonymous when allowed, else refused") {
  SECTION("allowed") {
    Fixture f(true, /*allow_anonymous=*/true);
    const Outcome& outcome = f.Authenticate(CallCredentials{});
    CHECK(outcome.calls == 1);
    REQUIRE(outcome.result.ok());
    CHECK(outcome.result->name == "system:anonymous");
    CHECK(outcome.result->groups == std::vector<std::string>{"system:unauthenticated"});
  }
  SECTION("not allowed") {
    const bool accept_tokens = GENERATE(false, true);
    Fixture f(accept_tokens, /*allow_anonymous=*/false);
    const Outcome& outcome = f.Authenticate(CallCredentials{});
    CHECK(outcome.calls == 1);
    CHECK(outcome.result.status() ==
          absl::UnauthenticatedError("no credentials: send a bearer token (authorization: Bearer "
                                     "…) or a client certificate"));
  }
}

}  // namespace
}  // namespace informerd::daemon
