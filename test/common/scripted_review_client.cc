#include "test/common/scripted_review_client.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/post.hpp>
#include <utility>

#include "core/http_status.h"
#include "fmt/format.h"

namespace informerd::test {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void String(Writer& w, const std::string& value) {
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void StringArray(Writer& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const std::string& value : values) String(w, value);
  w.EndArray();
}

void Header(Writer& w, const char* kind, const char* api_version) {
  w.Key("kind");
  w.String(kind);
  w.Key("apiVersion");
  w.String(api_version);
  w.Key("metadata");
  w.StartObject();
  w.Key("creationTimestamp");
  w.Null();
  w.EndObject();
}

std::string Take(const rapidjson::StringBuffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<rapidjson::Document> ParseRequest(std::string_view body, const char* kind) {
  rapidjson::Document document;
  document.Parse(body.data(), body.size());
  if (document.HasParseError() || !document.IsObject()) {
    return absl::InvalidArgumentError(fmt::format("the {} request is not a JSON object", kind));
  }
  auto found = document.FindMember("kind");
  if (found == document.MemberEnd() || !found->value.IsString() ||
      std::string_view(found->value.GetString()) != kind) {
    return absl::InvalidArgumentError(fmt::format("the request is not a {}", kind));
  }
  if (!document.HasMember("spec") || !document["spec"].IsObject()) {
    return absl::InvalidArgumentError(fmt::format("the {} request has no spec", kind));
  }
  return document;
}

std::string Str(const rapidjson::Value& object, const char* name) {
  auto found = object.FindMember(name);
  if (found == object.MemberEnd() || !found->value.IsString()) return "";
  return std::string(found->value.GetString(), found->value.GetStringLength());
}

std::vector<std::string> Strs(const rapidjson::Value& value) {
  std::vector<std::string> out;
  if (!value.IsArray()) return out;
  for (const auto& item : value.GetArray()) {
    if (item.IsString()) out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

std::vector<std::string> StrsMember(const rapidjson::Value& object, const char* name) {
  auto found = object.FindMember(name);
  if (found == object.MemberEnd()) return {};
  return Strs(found->value);
}

daemon::HttpResult BadRequest(const std::string& message) {
  daemon::HttpResult result;
  result.http_status = 400;
  core::KubeStatus status;
  status.code = 400;
  status.status = "Failure";
  status.reason = "BadRequest";
  status.message = message;
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("kind");
  w.String("Status");
  w.Key("apiVersion");
  w.String("v1");
  w.Key("status");
  w.String("Failure");
  w.Key("message");
  String(w, message);
  w.Key("reason");
  w.String("BadRequest");
  w.Key("code");
  w.Int(400);
  w.EndObject();
  result.body = Take(buffer);
  result.status = absl::Status(core::StatusCodeForHttpError(400), message);
  result.kube_status = std::move(status);
  return result;
}

}  // namespace

// ---- ScriptedReviewClient ---------------------------------------------------------------

ScriptedReviewClient::ScriptedReviewClient(boost::asio::io_context& io)
    : strand_(boost::asio::make_strand(io)), work_(boost::asio::make_work_guard(io)) {}

ScriptedReviewClient::~ScriptedReviewClient() {
  // Held callbacks may hold the objects under test; let them go first.
  std::lock_guard<std::mutex> lock(mu_);
  callbacks_.clear();
}

void ScriptedReviewClient::Post(std::string path, std::string json_body, PostCallback done) {
  Responder respond;
  std::size_t index = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    index = posts_.size();
    posts_.push_back(PostRecord{path, json_body, false});
    callbacks_.push_back(std::move(done));
    for (auto it = scripts_.begin(); it != scripts_.end(); ++it) {
      if (it->path == path) {
        daemon::HttpResult result = std::move(it->result);
        scripts_.erase(it);
        AnswerLocked(index, std::move(result));
        return;
      }
    }
    respond = respond_;
  }
  // The responder runs outside the lock: it may read the client (posts(), CountPosts()).
  if (!respond) return;
  std::optional<daemon::HttpResult> result = respond(path, json_body);
  if (result) Answer(index, *std::move(result));
}

void ScriptedReviewClient::ScriptPost(std::string path, daemon::HttpResult result) {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t i = 0; i < posts_.size(); ++i) {
    if (!posts_[i].answered && posts_[i].path == path) return AnswerLocked(i, std::move(result));
  }
  scripts_.push_back(Script{std::move(path), std::move(result)});
}

void ScriptedReviewClient::SetResponder(Responder respond) {
  std::lock_guard<std::mutex> lock(mu_);
  respond_ = std::move(respond);
}

bool ScriptedReviewClient::Answer(std::size_t index, daemon::HttpResult result) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= posts_.size() || posts_[index].answered) return false;
  AnswerLocked(index, std::move(result));
  return true;
}

bool ScriptedReviewClient::AnswerNext(daemon::HttpResult result, std::string_view path) {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t i = 0; i < posts_.size(); ++i) {
    if (!posts_[i].answered && (path.empty() || posts_[i].path == path)) {
      AnswerLocked(i, std::move(result));
      return true;
    }
  }
  return false;
}

void ScriptedReviewClient::AnswerLocked(std::size_t index, daemon::HttpResult result) {
  posts_[index].answered = true;
  PostCallback done = std::move(callbacks_[index]);
  callbacks_[index] = nullptr;
  // Posted, never called inline: the contract says callbacks run on the strand, later.
  boost::asio::post(strand_, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

std::vector<ScriptedReviewClient::PostRecord> ScriptedReviewClient::posts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return posts_;
}

std::size_t ScriptedReviewClient::CountPosts(std::string_view path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const PostRecord& post : posts_) n += post.path == path ? 1 : 0;
  return n;
}

std::size_t ScriptedReviewClient::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t n = 0;
  for (const PostRecord& post : posts_) n += post.answered ? 0 : 1;
  return n;
}

std::size_t ScriptedReviewClient::unused_scripts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scripts_.size();
}

// ---- Answers ----------------------------------------------------------------------------

daemon::HttpResult ReviewCreated(std::string body) {
  daemon::HttpResult result;
  result.http_status = 201;
  result.body = std::move(body);
  return result;
}

std::string TokenReviewAuthenticatedBody(const core::UserInfo& user,
                                         const std::vector<std::string>& audiences,
                                         const std::string& token) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Header(w, "TokenReview", "authentication.k8s.io/v1");
  w.Key("spec");
  w.StartObject();
  w.Key("token");
  String(w, token);
  w.EndObject();
  w.Key("status");
  w.StartObject();
  w.Key("authenticated");
  w.Bool(true);
  w.Key("user");
  w.StartObject();
  w.Key("username");
  String(w, user.name);
  if (!user.uid.empty()) {
    w.Key("uid");
    String(w, user.uid);
  }
  if (!user.groups.empty()) {
    w.Key("groups");
    StringArray(w, user.groups);
  }
  if (!user.extra.empty()) {
    w.Key("extra");
    w.StartObject();
    for (const auto& [key, values] : user.extra) {
      w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      StringArray(w, values);
    }
    w.EndObject();
  }
  w.EndObject();
  w.Key("audiences");
  StringArray(w, audiences);
  w.EndObject();
  w.EndObject();
  return Take(buffer);
}

std::string TokenReviewUnauthenticatedBody(const std::string& error, const std::string& token) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Header(w, "TokenReview", "authentication.k8s.io/v1");
  w.Key("spec");
  w.StartObject();
  w.Key("token");
  String(w, token);
  w.EndObject();
  w.Key("status");
  w.StartObject();
  w.Key("user");
  w.StartObject();
  w.EndObject();
  if (!error.empty()) {
    w.Key("error");
    String(w, error);
  }
  w.EndObject();
  w.EndObject();
  return Take(buffer);
}

std::string SubjectAccessReviewBody(bool allowed, const std::string& reason,
                                    const std::string& evaluation_error) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Header(w, "SubjectAccessReview", "authorization.k8s.io/v1");
  w.Key("spec");
  w.StartObject();
  w.EndObject();
  w.Key("status");
  w.StartObject();
  w.Key("allowed");
  w.Bool(allowed);
  if (!reason.empty()) {
    w.Key("reason");
    String(w, reason);
  }
  if (!evaluation_error.empty()) {
    w.Key("evaluationError");
    String(w, evaluation_error);
  }
  w.EndObject();
  w.EndObject();
  return Take(buffer);
}

// ---- Requests read back -----------------------------------------------------------------

absl::StatusOr<TokenReviewRequest> ParseTokenReviewRequest(std::string_view body) {
  absl::StatusOr<rapidjson::Document> document = ParseRequest(body, "TokenReview");
  if (!document.ok()) return document.status();
  const rapidjson::Value& spec = (*document)["spec"];
  TokenReviewRequest request;
  request.token = Str(spec, "token");
  request.audiences = StrsMember(spec, "audiences");
  return request;
}

absl::StatusOr<AccessReviewRequest> ParseAccessReviewRequest(std::string_view body) {
  absl::StatusOr<rapidjson::Document> document = ParseRequest(body, "SubjectAccessReview");
  if (!document.ok()) return document.status();
  const rapidjson::Value& spec = (*document)["spec"];
  AccessReviewRequest request;
  request.user.name = Str(spec, "user");
  request.user.uid = Str(spec, "uid");
  request.user.groups = StrsMember(spec, "groups");
  if (auto extra = spec.FindMember("extra"); extra != spec.MemberEnd() && extra->value.IsObject()) {
    for (const auto& member : extra->value.GetObject()) {
      request.user.extra[std::string(member.name.GetString(), member.name.GetStringLength())] =
          Strs(member.value);
    }
  }
  auto attributes = spec.FindMember("resourceAttributes");
  if (attributes == spec.MemberEnd() || !attributes->value.IsObject()) {
    return absl::InvalidArgumentError("the SubjectAccessReview request has no resourceAttributes");
  }
  const rapidjson::Value& a = attributes->value;
  request.attributes.verb = Str(a, "verb");
  request.attributes.group = Str(a, "group");
  request.attributes.resource = Str(a, "resource");
  request.attributes.namespace_name = Str(a, "namespace");
  request.attributes.name = Str(a, "name");
  return request;
}

ScriptedReviewClient::Responder AnswerReviews(ReviewAnswers answers) {
  return [answers = std::move(answers)](
             const std::string& path,
             const std::string& body) -> std::optional<daemon::HttpResult> {
    if (path == kTokenReviewsPath) {
      absl::StatusOr<TokenReviewRequest> request = ParseTokenReviewRequest(body);
      if (!request.ok()) return BadRequest(std::string(request.status().message()));
      auto found = answers.tokens.find(request->token);
      if (found == answers.tokens.end()) {
        return ReviewCreated(TokenReviewUnauthenticatedBody("invalid bearer token"));
      }
      const std::vector<std::string> audiences =
          request->audiences.empty() ? std::vector<std::string>{"https://kubernetes.default.svc"}
                                     : request->audiences;
      return ReviewCreated(TokenReviewAuthenticatedBody(found->second, audiences));
    }
    if (path == kSubjectAccessReviewsPath) {
      absl::StatusOr<AccessReviewRequest> request = ParseAccessReviewRequest(body);
      if (!request.ok()) return BadRequest(std::string(request.status().message()));
      core::AccessReviewResult decision;
      if (answers.decide) decision = answers.decide(request->user, request->attributes);
      return ReviewCreated(
          SubjectAccessReviewBody(decision.allowed, decision.reason, decision.evaluation_error));
    }
    return std::nullopt;
  };
}

}  // namespace informerd::test
