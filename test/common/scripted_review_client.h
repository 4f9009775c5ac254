// ScriptedReviewClient: a daemon::ReviewClient (daemon/kube/review_client.h) whose answers the test
// gives, for in-process tests of whatever asks the apiserver for TokenReviews and
// SubjectAccessReviews (daemon/security, and the service above it). No sockets: every POST is
// recorded (path and body), and answered in one of three ways, in this order of precedence:
//
//   ScriptPost(path, result)  the next POST to `path` gets `result` (scripts for one path are
//                             used in the order written);
//   SetResponder(respond)     `respond` decides from the path and body (AnswerReviews() builds
//                             one from a table of tokens and a decision function); it may return
//                             nullopt to leave the POST held;
//   otherwise                 the POST is held until the test answers it (Answer, AnswerNext).
//
// An answer is posted to the client's strand (on the test's io_context) and reaches the caller
// when that io_context runs: never inside Post(), ScriptPost() or Answer(). The client keeps the
// io_context from running out of work, so io.poll() can be called again and again.
//
// Threads: Post() may be called from any thread (gRPC's, in service tests); every other member
// too. One mutex; callbacks run on the strand, outside it.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/access_review.h"
#include "core/user_info.h"
#include "daemon/kube/review_client.h"

namespace informerd::test {

inline constexpr char kTokenReviewsPath[] = "/apis/authentication.k8s.io/v1/tokenreviews";
inline constexpr char kSubjectAccessReviewsPath[] =
    "/apis/authorization.k8s.io/v1/subjectaccessreviews";

class ScriptedReviewClient final : public daemon::ReviewClient {
 public:
  struct PostRecord {
    std::string path;
    std::string body;
    bool answered = false;
  };
  using Responder = std::function<std::optional<daemon::HttpResult>(const std::string& path,
                                                                    const std::string& body)>;

  explicit ScriptedReviewClient(boost::asio::io_context& io);
  ~ScriptedReviewClient() override;
  ScriptedReviewClient(const ScriptedReviewClient&) = delete;
  ScriptedReviewClient& operator=(const ScriptedReviewClient&) = delete;

  // daemon::ReviewClient.
  void Post(std::string path, std::string json_body, PostCallback done) override;
  Strand strand() const override { return strand_; }

  // The next POST to `path` (exactly) gets `result`; a POST to `path` already held gets it now.
  void ScriptPost(std::string path, daemon::HttpResult result);
  // Answers POSTs no script matches; nullptr (the default) holds them all.
  void SetResponder(Responder respond);

  // Answers held POST `index` (an index into posts()); false if it was answered already.
  bool Answer(std::size_t index, daemon::HttpResult result);
  // Answers the oldest held POST (to `path`, when given); false if none is held.
  bool AnswerNext(daemon::HttpResult result, std::string_view path = {});

  // Every POST, oldest first (a copy: other threads may post meanwhile).
  std::vector<PostRecord> posts() const;
  // POSTs to `path`, answered or not.
  std::size_t CountPosts(std::string_view path) const;
  // POSTs not answered yet.
  std::size_t held() const;
  std::size_t unused_scripts() const;

 private:
  struct Script {
    std::string path;
    daemon::HttpResult result;
  };
  void AnswerLocked(std::size_t index, daemon::HttpResult result);

  Strand strand_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  mutable std::mutex mu_;
  std::vector<PostRecord> posts_;
  std::vector<PostCallback> callbacks_;  // Parallel to posts_; emptied when answered.
  std::deque<Script> scripts_;
  Responder respond_;
};

// ---- Answers in the apiserver's shapes (kube-apiserver 1.20: 201 Created, the review's spec
// echoed back, the status filled in).

// A 201 Created answer with `body`, as the apiserver answers a review.
daemon::HttpResult ReviewCreated(std::string body);
// A TokenReview answer: authenticated as `user`, valid for `audiences`; `token` is echoed in
// spec.token, as the apiserver does.
std::string TokenReviewAuthenticatedBody(const core::UserInfo& user,
                                         const std::vector<std::string>& audiences,
                                         const std::string& token = "");
// A TokenReview answer: not authenticated, with status.error `error`.
std::string TokenReviewUnauthenticatedBody(const std::string& error = "invalid bearer token",
                                           const std::string& token = "");
// A SubjectAccessReview answer.
std::string SubjectAccessReviewBody(bool allowed, const std::string& reason = "",
                                    const std::string& evaluation_error = "");

// ---- What a request asked, read back from its body (the body core/access_review built).

struct TokenReviewRequest {
  std::string token;
  std::vector<std::string> audiences;
};
absl::StatusOr<TokenReviewRequest> ParseTokenReviewRequest(std::string_view body);

struct AccessReviewRequest {
  core::UserInfo user;
  core::ResourceAttributes attributes;
};
absl::StatusOr<AccessReviewRequest> ParseAccessReviewRequest(std::string_view body);

// A Responder that plays the apiserver from a table: TokenReviews by `tokens` (token → user;
// the audiences asked are answered as valid, or the apiserver's own when none were asked; an
// unknown token is "invalid bearer token"), SubjectAccessReviews by `decide` (default: deny
// everything, as RBAC does without a binding). A body it cannot read gets the apiserver's 400.
struct ReviewAnswers {
  std::map<std::string, core::UserInfo> tokens;
  std::function<core::AccessReviewResult(const core::UserInfo&, const core::ResourceAttributes&)>
      decide;
};
ScriptedReviewClient::Responder AnswerReviews(ReviewAnswers answers);

}  // namespace informerd::test
