// The ScriptedReviewClient's own contract (test/common/scripted_review_client.h): POSTs recorded,
// answered by script, responder or by hand, always later on the strand; and AnswerReviews reads
// the bodies core/access_review builds and answers in shapes core/access_review parses.
#include "test/common/scripted_review_client.h"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/access_review.h"
#include "core/user_info.h"

namespace informerd::test {
namespace {

// Collects the answers a caller receives.
struct Answers {
  std::vector<daemon::HttpResult> results;
  daemon::ReviewClient::PostCallback Callback() {
    return [this](daemon::HttpResult result) { results.push_back(std::move(result)); };
  }
};

core::UserInfo Alice() {
  core::UserInfo alice;
  alice.name = "alice";
  alice.uid = "uid-alice";
  alice.groups = {"devs", core::kAuthenticatedGroup};
  alice.extra = {{"scopes", {"a", "b"}}};
  return alice;
}

TEST_CASE("a POST without a script or responder is held and recorded until answered") {
  boost::asio::io_context io;
  ScriptedReviewClient client(io);
  Answers answers;
  client.Post(kTokenReviewsPath, "{\"a\":1}", answers.Callback());
  client.Post(kSubjectAccessReviewsPath, "{\"b\":2}", answers.Callback());
  io.poll();
  CHECK(answers.results.empty());
  CHECK(client.held() == 2);
  const std::vector<ScriptedReviewClient::PostRecord> posts = client.posts();
  REQUIRE(posts.size() == 2);
  CHECK(posts[0].path == kTokenReviewsPath);
  CHECK(posts[0].body == "{\"a\":1}");
  CHECK(client.CountPosts(kSubjectAccessReviewsPath) == 1);

  // Answered by path, oldest first; the callback runs only when the io_context does.
  REQUIRE(client.AnswerNext(ReviewCreated("sar"), kSubjectAccessReviewsPath));
  CHECK(answers.results.empty());
  io.poll();
  REQUIRE(answers.results.size() == 1);
  CHECK(answers.results[0].body == "sar");
  CHECK(answers.results[0].http_status == 201);
  CHECK(answers.results[0].status.ok());

  CHECK(client.Answer(0, ReviewCreated("token")));
  CHECK_FALSE(client.Answer(0, ReviewCreated("again")));
  CHECK_FALSE(client.AnswerNext(ReviewCreated("none left")));
  io.poll();
  REQUIRE(answers.results.size() == 2);
  CHECK(answers.results[1].body == "token");
  CHECK(client.held() == 0);
}

TEST_CASE("scripts answer the next POST to their path, in order, before any responder") {
  boost::asio::io_context io;
  ScriptedReviewClient client(io);
  client.ScriptPost(kTokenReviewsPath, ReviewCreated("first"));
  client.ScriptPost(kTokenReviewsPath, ReviewCreated("second"));
  client.SetResponder([](const std::string&, const std::string&) {
    return std::optional<daemon::HttpResult>(ReviewCreated("responder"));
  });
  Answers answers;
  for (int i = 0; i < 3; ++i) client.Post(kTokenReviewsPath, "{}", answers.Callback());
  // Not inside Post().
  CHECK(answers.results.empty());
  io.poll();
  REQUIRE(answers.results.size() == 3);
  CHECK(answers.results[0].body == "first");
  CHECK(answers.results[1].body == "second");
  CHECK(answers.results[2].body == "responder");
  CHECK(client.unused_scripts() == 0);

  // A script written while a POST to its path is held answers that POST.
  client.SetResponder(nullptr);
  client.Post(kSubjectAccessReviewsPath, "{}", answers.Callback());
  client.ScriptPost(kSubjectAccessReviewsPath, ReviewCreated("late"));
  io.poll();
  REQUIRE(answers.results.size() == 4);
  CHECK(answers.results[3].body == "late");
}

TEST_CASE("AnswerReviews plays the apiserver for the bodies core/access_review builds") {
  boost::asio::io_context io;
  ScriptedReviewClient client(io);
  ReviewAnswers table;
  table.tokens["alice-token"] = Alice();
  table.decide = [](const core::UserInfo& user, const core::ResourceAttributes& attributes) {
    core::AccessReviewResult result;
    result.allowed = user.name == "alice" && attributes.verb == "list" &&
                     attributes.resource == "pods" && attributes.namespace_name == "team-a";
    if (result.allowed) result.reason = "RBAC: allowed";
    return result;
  };
  client.SetResponder(AnswerReviews(table));
  Answers answers;

  client.Post(kTokenReviewsPath, core::BuildTokenReview("alice-token", {"informerd"}),
              answers.Callback());
  client.Post(kTokenReviewsPath, core::BuildTokenReview("alice-token", {}), answers.Callback());
  client.Post(kTokenReviewsPath, core::BuildTokenReview("who", {}), answers.Callback());
  const core::ResourceAttributes list_pods_a{"list", "", "pods", "team-a", ""};
  const core::ResourceAttributes list_pods_b{"list", "", "pods", "team-b", ""};
  client.Post(kSubjectAccessReviewsPath, core::BuildSubjectAccessReview(Alice(), list_pods_a),
              answers.Callback());
  client.Post(kSubjectAccessReviewsPath, core::BuildSubjectAccessReview(Alice(), list_pods_b),
              answers.Callback());
  client.Post(kSubjectAccessReviewsPath, "not json", answers.Callback());
  io.poll();
  REQUIRE(answers.results.size() == 6);

  absl::StatusOr<core::TokenReviewResult> token = core::ParseTokenReview(answers.results[0].body);
  REQUIRE(token.ok());
  CHECK(token->authenticated);
  CHECK(token->user == Alice());
  CHECK(token->audiences == std::vector<std::string>{"informerd"});
  token = core::ParseTokenReview(answers.results[1].body);
  REQUIRE(token.ok());
  CHECK(token->audiences == std::vector<std::string>{"https://kubernetes.default.svc"});
  token = core::ParseTokenReview(answers.results[2].body);
  REQUIRE(token.ok());
  CHECK_FALSE(token->authenticated);
  CHECK(token->error == "invalid bearer token");

  absl::StatusOr<core::AccessReviewResult> access =
      core::ParseSubjectAccessReview(answers.results[3].body);
  REQUIRE(access.ok());
  CHECK(access->allowed);
  CHECK(access->reason == "RBAC: allowed");
  access = core::ParseSubjectAccessReview(answers.results[4].body);
  REQUIRE(access.ok());
  CHECK_FALSE(access->allowed);

  CHECK(answers.results[5].http_status == 400);
  CHECK(answers.results[5].status.code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(answers.results[5].kube_status.has_value());
  CHECK(answers.results[5].kube_status->reason == "BadRequest");
}

TEST_CASE("the requests read back are what core/access_review wrote") {
  absl::StatusOr<TokenReviewRequest> token =
      ParseTokenReviewRequest(core::BuildTokenReview("t\"1", {"a", "b"}));
  REQUIRE(token.ok());
  CHECK(token->token == "t\"1");
  CHECK(token->audiences == std::vector<std::string>{"a", "b"});

  const core::ResourceAttributes get_pod{"get", "apps", "deployments", "team-a", "web"};
  absl::StatusOr<AccessReviewRequest> access =
      ParseAccessReviewRequest(core::BuildSubjectAccessReview(Alice(), get_pod));
  REQUIRE(access.ok());
  CHECK(access->user == Alice());
  CHECK(access->attributes == get_pod);

  CHECK_FALSE(ParseTokenReviewRequest(core::BuildSubjectAccessReview(Alice(), get_pod)).ok());
  CHECK_FALSE(ParseAccessReviewRequest("{}").ok());
}

TEST_CASE("a decision table left empty denies everything") {
  boost::asio::io_context io;
  ScriptedReviewClient client(io);
  client.SetResponder(AnswerReviews({}));
  Answers answers;
  client.Post(kSubjectAccessReviewsPath,
              core::BuildSubjectAccessReview(core::AnonymousUser(), {"list", "", "pods", "", ""}),
              answers.Callback());
  io.poll();
  REQUIRE(answers.results.size() == 1);
  absl::StatusOr<core::AccessReviewResult> access =
      core::ParseSubjectAccessReview(answers.results[0].body);
  REQUIRE(access.ok());
  CHECK_FALSE(access->allowed);
}

}  // namespace
}  // namespace informerd::test
