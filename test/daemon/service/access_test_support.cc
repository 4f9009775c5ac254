#include "test/daemon/service/access_test_support.h"

#include <spdlog/sinks/null_sink.h>

#include <catch2/catch.hpp>
#include <regex>
#include <utility>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon::testing {
namespace {

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

core::UserInfo User(const std::string& name, std::vector<std::string> groups = {}) {
  core::UserInfo user;
  user.name = name;
  user.uid = "uid-" + name;
  user.groups = std::move(groups);
  return user;
}

bool IsReadVerb(const std::string& verb) {
  return verb == "list" || verb == "watch" || verb == "get";
}

void Prepare(grpc::ClientContext& context, const Authorization& authorization) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  for (const std::string& value : authorization) context.AddMetadata("authorization", value);
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "OTHER";
  }
}

}  // namespace

SharedFakeClock::TimePoint SharedFakeClock::Now() const {
  // Away from the epoch, so that "long ago" arithmetic in the code under test cannot underflow.
  return TimePoint{} + std::chrono::hours(24) + std::chrono::nanoseconds(offset_.load());
}

IoRunner::IoRunner(boost::asio::io_context& io) : io_(io) { Resume(); }

IoRunner::~IoRunner() { Pause(); }

void IoRunner::Pause() {
  if (!thread_.joinable()) return;
  io_.stop();
  thread_.join();
  io_.restart();
}

void IoRunner::Resume() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { io_.run(); });
}

std::vector<std::string> LineSink::lines() {
  std::lock_guard<std::mutex> lock(mutex_);
  return lines_;
}

void LineSink::sink_it_(const spdlog::details::log_msg& message) {
  lines_.emplace_back(message.payload.data(), message.payload.size());
}

core::AccessReviewResult Decide(const ReviewPolicy& policy, const core::UserInfo& user,
                                const core::ResourceAttributes& attributes) {
  core::AccessReviewResult result;
  if (user.name == "admin") {
    result.allowed = true;
    result.reason = "RBAC: allowed by ClusterRoleBinding \"admin\"";
  } else if (user.name == "alice" && !policy.alice_revoked.load() &&
             attributes.namespace_name == "team-a" && IsReadVerb(attributes.verb) &&
             ((attributes.group.empty() && attributes.resource == "pods") ||
              (attributes.group == "apps" && attributes.resource == "deployments"))) {
    result.allowed = true;
    result.reason = "RBAC: allowed by RoleBinding \"readers/team-a\"";
  }
  return result;
}

AccessHarness::AccessHarness(AccessHarnessOptions options) {
  tokens = std::make_unique<TokenReviewAuthenticator>(
      reviews, clock, TokenReviewAuthenticatorOptions(), NullLogger());
  SubjectAccessReviewAuthorizerOptions authorizer_options;
  authorizer_options.allowed_ttl = options.allowed_ttl;
  authorizer = std::make_unique<SubjectAccessReviewAuthorizer>(reviews, clock, authorizer_options,
                                                               NullLogger());
  authenticator = std::make_unique<RequestAuthenticator>(tokens.get(), options.allow_anonymous);
  access = std::make_unique<AccessControl>(*authenticator, *authorizer,
                                           std::make_shared<spdlog::logger>("audit", audit_sink));

  test::ReviewAnswers answers;
  answers.tokens = {{"alice-token", User("alice", {"team-a-readers"})},
                    {"bob-token", User("bob")},
                    {"admin-token", User("admin", {"system:masters"})}};
  answers.decide = [this](const core::UserInfo& user, const core::ResourceAttributes& attributes) {
    return Decide(policy, user, attributes);
  };
  test::ScriptedReviewClient::Responder play = test::AnswerReviews(std::move(answers));
  reviews.SetResponder(
      [this, play](const std::string& path, const std::string& body) -> std::optional<HttpResult> {
        const bool access_review = path == test::kSubjectAccessReviewsPath;
        if ((access_review && policy.access_reviews_unavailable) ||
            (!access_review && policy.token_reviews_unavailable)) {
          HttpResult result;
          result.http_status = 503;
          result.status =
              absl::UnavailableError("HTTP 503 Service Unavailable: etcdserver: leader changed");
          return result;
        }
        if (access_review && policy.access_reviews_time_out) {
          HttpResult result;
          result.status = absl::DeadlineExceededError(
              "POST https://apiserver/apis/authorization.k8s.io/v1/subjectaccessreviews: no answer "
              "within 10 s");
          return result;
        }
        if (access_review && policy.hold_access_reviews) return std::nullopt;
        return play(path, body);
      });
  runner = std::make_unique<IoRunner>(io);

  HarnessOptions harness_options;
  harness_options.service = std::move(options.service);
  harness_options.access_control = access.get();
  harness = std::make_unique<Harness>(std::move(harness_options));
}

AccessHarness::~AccessHarness() {
  runner->Resume();
  harness.reset();
  runner.reset();
}

std::vector<std::string> AccessHarness::AuditLines() {
  static const std::regex kPort(R"(peer="ipv4:127\.0\.0\.1:\d+")");
  std::vector<std::string> lines;
  for (const std::string& line : audit_sink->lines()) {
    lines.push_back(std::regex_replace(line, kPort, "peer=\"ipv4:127.0.0.1:PORT\""));
  }
  return lines;
}

std::vector<std::string> AccessHarness::WaitForAuditLines(std::size_t count) {
  // The line is written when gRPC reports the call done, which may come just after the client
  // has its answer.
  const bool arrived = WaitUntil([&] { return audit_sink->lines().size() >= count; });
  INFO("audit lines: " << audit_sink->lines().size() << " of " << count);
  REQUIRE(arrived);
  return AuditLines();
}

Authorization Bearer(const std::string& token) { return {"Bearer " + token}; }

std::string Text(const grpc::Status& status) {
  return fmt::format("{}: {}", CodeName(status.error_code()), status.error_message());
}

grpc::Status List(v1::Informer::Stub& stub, const Authorization& authorization,
                  const std::string& resource, const std::string& namespace_name,
                  v1::ListResponse* response, const std::string& min_resource_version) {
  grpc::ClientContext context;
  Prepare(context, authorization);
  v1::ListRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_min_resource_version(min_resource_version);
  v1::ListResponse ignored;
  return stub.List(&context, request, response ? response : &ignored);
}

grpc::Status Get(v1::Informer::Stub& stub, const Authorization& authorization,
                 const std::string& resource, const std::string& namespace_name,
                 const std::string& name, v1::GetResponse* response,
                 const std::string& min_resource_version) {
  grpc::ClientContext context;
  Prepare(context, authorization);
  v1::GetRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_name(name);
  request.set_min_resource_version(min_resource_version);
  v1::GetResponse ignored;
  return stub.Get(&context, request, response ? response : &ignored);
}

grpc::Status ListResources(v1::Informer::Stub& stub, const Authorization& authorization,
                           const std::string& namespace_name, v1::ListResourcesResponse* response) {
  grpc::ClientContext context;
  Prepare(context, authorization);
  v1::ListResourcesRequest request;
  request.set_namespace_(namespace_name);
  v1::ListResourcesResponse ignored;
  return stub.ListResources(&context, request, response ? response : &ignored);
}

std::vector<std::string> Names(const v1::ListResponse& response) {
  static const std::regex kMetadata(R"re("name":"([^"]*)",(?:"namespace":"([^"]*)",)?)re");
  std::vector<std::string> names;
  for (const std::string& item : response.items()) {
    std::smatch match;
    if (!std::regex_search(item, match, kMetadata)) {
      names.push_back(item);
    } else if (match[2].matched) {
      names.push_back(fmt::format("{}/{}", match[2].str(), match[1].str()));
    } else {
      names.push_back(match[1].str());
    }
  }
  return names;
}

std::vector<std::string> Describe(const v1::ListResourcesResponse& response) {
  std::vector<std::string> lines;
  for (const v1::ResourceInfo& info : response.resources()) {
    const std::string name =
        info.group().empty() ? info.resource() : info.resource() + "." + info.group();
    lines.push_back(fmt::format("{} ns={} objects={}{}", name, info.namespace_(),
                                info.object_count(), info.on_demand() ? " on-demand" : ""));
  }
  return lines;
}

AuthorizedStream::AuthorizedStream(v1::Informer::Stub& stub, const Authorization& authorization,
                                   const v1::SubscribeRequest& request) {
  Prepare(context_, authorization);
  reader_ = stub.Subscribe(&context_, request);
}

std::optional<v1::Event> AuthorizedStream::Next() {
  v1::Event event;
  if (!reader_->Read(&event)) return std::nullopt;
  return event;
}

std::vector<std::string> AuthorizedStream::Read(std::size_t count) {
  std::vector<std::string> events;
  while (events.size() < count) {
    std::optional<v1::Event> event = Next();
    if (!event) {
      FAIL_CHECK(fmt::format("the stream ended after {} of {} events: {}", events.size(), count,
                             Text(reader_->Finish())));
      break;
    }
    events.push_back(testing::Describe(*event));
  }
  return events;
}

grpc::Status AuthorizedStream::Finish(std::vector<std::string>* rest) {
  while (std::optional<v1::Event> event = Next()) {
    if (rest) rest->push_back(testing::Describe(*event));
  }
  return reader_->Finish();
}

grpc::Status SubscribeError(v1::Informer::Stub& stub, const Authorization& authorization,
                            const v1::SubscribeRequest& request, std::vector<std::string>* events) {
  AuthorizedStream stream(stub, authorization, request);
  return stream.Finish(events);
}

}  // namespace informerd::daemon::testing
