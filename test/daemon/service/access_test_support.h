// Test support for the Informer service's access control (informer_service_access_test.cc and
// informer_service_on_demand_access_test.cc): the service over real gRPC with the daemon's own
// authentication and authorization (TokenReviewAuthenticator, SubjectAccessReviewAuthorizer,
// RequestAuthenticator, AccessControl), whose reviews a ScriptedReviewClient answers from a
// policy the test changes while calls run; an audit sink the test reads; client helpers that
// send credentials.
//
// The policy (what the apiserver's RBAC would say):
//   tokens   "alice-token" → alice (group team-a-readers), "bob-token" → bob, "admin-token" →
//            admin; any other token is "invalid bearer token".
//   alice    list, watch and get pods and deployments.apps in namespace team-a; nothing else.
//   bob      nothing.
//   admin    everything.
// Reviews can be made to fail (HTTP 503, or the client's timeout) or be held for the test to
// answer by hand.
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/user_info.h"
#include "daemon/security/access_control.h"
#include "daemon/security/request_authenticator.h"
#include "daemon/security/subject_access_review_authorizer.h"
#include "daemon/security/token_review_authenticator.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/informer_service_test_support.h"
#include "test/common/scripted_review_client.h"

namespace informerd::daemon::testing {

// A core::Clock that moves only when the test says so, readable from any thread (the review
// caches read it on gRPC's threads and the review client's).
class SharedFakeClock final : public core::Clock {
 public:
  TimePoint Now() const override;
  void Advance(std::chrono::nanoseconds by) { offset_ += by.count(); }

 private:
  std::atomic<int64_t> offset_{0};
};

// Runs an io_context on a thread of its own. Pause() stops it, so that the test runs the
// handlers itself (io.poll()) at a moment it chooses; Resume() starts it again.
class IoRunner {
 public:
  explicit IoRunner(boost::asio::io_context& io);
  ~IoRunner();
  void Pause();
  void Resume();

 private:
  boost::asio::io_context& io_;
  std::thread thread_;
};

// Every line logged to it, without decoration.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines();

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override;
  void flush_() override {}

 private:
  std::vector<std::string> lines_;  // guarded by the base's mutex_
};

// How the reviews are answered; changed by the test while calls run.
struct ReviewPolicy {
  std::atomic<bool> alice_revoked{false};
  // Fail every TokenReview / SubjectAccessReview: 503 from the apiserver, or no answer within
  // the client's timeout.
  std::atomic<bool> token_reviews_unavailable{false};
  std::atomic<bool> access_reviews_unavailable{false};
  std::atomic<bool> access_reviews_time_out{false};
  // Hold every SubjectAccessReview for the test to answer (ScriptedReviewClient::AnswerNext).
  std::atomic<bool> hold_access_reviews{false};
};

// The decision the policy gives (allowed, or RBAC's plain denial).
core::AccessReviewResult Decide(const ReviewPolicy& policy, const core::UserInfo& user,
                                const core::ResourceAttributes& attributes);

struct AccessHarnessOptions {
  InformerServiceOptions service;
  // How long the authorizer caches an allowed decision: also how often an open Subscribe is
  // authorized again.
  std::chrono::milliseconds allowed_ttl{std::chrono::minutes(5)};
  bool allow_anonymous = false;
};

class AccessHarness {
 public:
  explicit AccessHarness(AccessHarnessOptions options = {});
  ~AccessHarness();

  v1::Informer::Stub& stub() { return *harness->stub; }
  // The audit lines so far, with the peer's port replaced by PORT.
  std::vector<std::string> AuditLines();
  // Waits until `count` audit lines have been written; returns them.
  std::vector<std::string> WaitForAuditLines(std::size_t count);
  std::size_t AccessReviews() const { return reviews.CountPosts(test::kSubjectAccessReviewsPath); }
  std::size_t TokenReviews() const { return reviews.CountPosts(test::kTokenReviewsPath); }

  boost::asio::io_context io;
  test::ScriptedReviewClient reviews{io};
  SharedFakeClock clock;
  ReviewPolicy policy;
  std::shared_ptr<LineSink> audit_sink = std::make_shared<LineSink>();
  std::unique_ptr<TokenReviewAuthenticator> tokens;
  std::unique_ptr<SubjectAccessReviewAuthorizer> authorizer;
  std::unique_ptr<RequestAuthenticator> authenticator;
  std::unique_ptr<AccessControl> access;
  std::unique_ptr<IoRunner> runner;
  // Last: shut down first, while the reviews can still be answered.
  std::unique_ptr<Harness> harness;
};

// ---- Calls with credentials -------------------------------------------------------------------

// The authorization metadata values a call sends (none: no credentials).
using Authorization = std::vector<std::string>;
Authorization Bearer(const std::string& token);

// "PERMISSION_DENIED: <message>", "OK: ": a status as one comparable string.
std::string Text(const grpc::Status& status);

grpc::Status List(v1::Informer::Stub& stub, const Authorization& authorization,
                  const std::string& resource, const std::string& namespace_name,
                  v1::ListResponse* response = nullptr,
                  const std::string& min_resource_version = "");
grpc::Status Get(v1::Informer::Stub& stub, const Authorization& authorization,
                 const std::string& resource, const std::string& namespace_name,
                 const std::string& name, v1::GetResponse* response = nullptr,
                 const std::string& min_resource_version = "");
grpc::Status ListResources(v1::Informer::Stub& stub, const Authorization& authorization,
                           const std::string& namespace_name,
                           v1::ListResourcesResponse* response = nullptr);
// The names of a List answer's objects ("team-a/a1"), in order.
std::vector<std::string> Names(const v1::ListResponse& response);
// "pods ns= objects=3": one line per ListResources entry.
std::vector<std::string> Describe(const v1::ListResourcesResponse& response);

// A Subscribe with credentials, read synchronously.
class AuthorizedStream {
 public:
  AuthorizedStream(v1::Informer::Stub& stub, const Authorization& authorization,
                   const v1::SubscribeRequest& request);
  std::optional<v1::Event> Next();
  std::vector<std::string> Read(std::size_t count);
  // Reads to the end; the events read on the way are appended to `rest`.
  grpc::Status Finish(std::vector<std::string>* rest = nullptr);
  grpc::ClientContext& context() { return context_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader_;
};

// A Subscribe that the test expects to fail: its status, and the events that came before (which
// should be none).
grpc::Status SubscribeError(v1::Informer::Stub& stub, const Authorization& authorization,
                            const v1::SubscribeRequest& request, std::vector<std::string>* events);

}  // namespace informerd::daemon::testing
