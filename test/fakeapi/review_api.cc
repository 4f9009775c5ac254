#include "test/fakeapi/review_api.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "fmt/format.h"
#include "test/fakeapi/json_writer.h"
#include "test/fakeapi/k8s_status.h"

namespace informerd::fakeapi {
namespace {

constexpr char kAuthenticationGroupVersion[] = "authentication.k8s.io/v1";
constexpr char kAuthorizationGroupVersion[] = "authorization.k8s.io/v1";

SimpleReply StatusReply(const ApiStatus& status) {
  SimpleReply reply;
  reply.status = status.code;
  reply.body = status.ToJson();
  return reply;
}

SimpleReply Created(std::string body) {
  SimpleReply reply;
  reply.status = 201;
  reply.body = std::move(body);
  return reply;
}

// The apiserver decodes JSON, YAML and protobuf; the fake, JSON only.
bool IsJson(const std::string& content_type) {
  std::string media = content_type.substr(0, content_type.find(';'));
  media.erase(
      std::remove_if(media.begin(), media.end(), [](unsigned char c) { return std::isspace(c); }),
      media.end());
  std::transform(media.begin(), media.end(), media.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return media == "application/json";
}

ApiStatus UnsupportedMediaType(const std::string& content_type) {
  return GenericStatus(415, "UnsupportedMediaType",
                       fmt::format("the body of the request was in an unknown format - accepted "
                                   "media types include: application/json (got \"{}\")",
                                   content_type));
}

std::string Str(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return "";
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::vector<std::string> Strings(const rapidjson::Value& object, const char* name) {
  std::vector<std::string> out;
  if (!object.IsObject()) return out;
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsArray()) return out;
  for (const auto& item : it->value.GetArray()) {
    if (item.IsString()) out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

// Parses the body as an object of `kind` in `group_version`, or says why not, in the apiserver's
// words for a body its decoder cannot place.
std::optional<SimpleReply> ParseReview(const std::string& content_type, const std::string& body,
                                       const char* kind, const char* group_version,
                                       rapidjson::Document& document) {
  if (!IsJson(content_type)) return StatusReply(UnsupportedMediaType(content_type));
  document.Parse(body.data(), body.size());
  const std::string unrecognized =
      fmt::format("the object provided is unrecognized (must be of type {})", kind);
  if (document.HasParseError()) {
    return StatusReply(BadRequestStatus(
        fmt::format("{}: couldn't get version/kind; json parse error: {}", unrecognized,
                    rapidjson::GetParseError_En(document.GetParseError()))));
  }
  const std::string actual_kind = Str(document, "kind");
  const std::string actual_version = Str(document, "apiVersion");
  if (actual_kind.empty() || actual_version.empty()) {
    return StatusReply(BadRequestStatus(
        fmt::format("{}: Object 'Kind' or 'apiVersion' is missing", unrecognized)));
  }
  if (actual_kind != kind || actual_version != group_version) {
    return StatusReply(BadRequestStatus(
        fmt::format("{}: {}, Kind={}", unrecognized, actual_version, actual_kind)));
  }
  return std::nullopt;
}

// The review as the apiserver answers it: the request's spec, and the status.
void WriteHeader(JsonWriter& w, const char* kind, const char* group_version,
                 const rapidjson::Value& spec) {
  w.Key("kind");
  w.String(kind);
  w.Key("apiVersion");
  w.String(group_version);
  w.Key("metadata");
  w.StartObject();
  w.Key("creationTimestamp");
  w.Null();
  w.EndObject();
  w.Key("spec");
  spec.Accept(w);
}

void StringArray(JsonWriter& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const std::string& value : values) w.String(value);
  w.EndArray();
}

ApiStatus InvalidAccessReview(const std::string& field, const std::string& value,
                              const std::string& detail) {
  const std::string cause = fmt::format("Invalid value: \"{}\": {}", value, detail);
  ApiStatus status =
      GenericStatus(422, "Invalid",
                    fmt::format("SubjectAccessReview.authorization.k8s.io \"\" is invalid: {}: {}",
                                field, cause));
  status.details_group = "authorization.k8s.io";
  status.details_kind = "SubjectAccessReview";
  status.causes.push_back({"FieldValueInvalid", cause, field});
  return status;
}

}  // namespace

std::vector<ResourceType> ReviewResourceTypes() {
  ResourceType token_reviews;
  token_reviews.group = "authentication.k8s.io";
  token_reviews.version = "v1";
  token_reviews.plural = "tokenreviews";
  token_reviews.singular = "";
  token_reviews.kind = "TokenReview";
  token_reviews.namespaced = false;
  token_reviews.verbs = {"create"};
  ResourceType access_reviews = token_reviews;
  access_reviews.group = "authorization.k8s.io";
  access_reviews.plural = "subjectaccessreviews";
  access_reviews.kind = "SubjectAccessReview";
  return {token_reviews, access_reviews};
}

SimpleReply ServeTokenReview(const ReviewTable& table, const std::string& content_type,
                             const std::string& body) {
  rapidjson::Document review;
  if (auto refused =
          ParseReview(content_type, body, "TokenReview", kAuthenticationGroupVersion, review)) {
    return *std::move(refused);
  }
  static const rapidjson::Value kNoSpec(rapidjson::kObjectType);
  auto spec_member = review.FindMember("spec");
  const rapidjson::Value& spec = spec_member != review.MemberEnd() && spec_member->value.IsObject()
                                     ? spec_member->value
                                     : kNoSpec;
  const std::string token = Str(spec, "token");
  if (token.empty()) {
    return StatusReply(BadRequestStatus("token is required for TokenReview in authentication"));
  }
  const TokenReviewOutcome outcome = table.ReviewToken(token, Strings(spec, "audiences"));

  JsonWriter w;
  w.StartObject();
  WriteHeader(w, "TokenReview", kAuthenticationGroupVersion, spec);
  w.Key("status");
  w.StartObject();
  if (outcome.authenticated) {
    w.Key("authenticated");
    w.Bool(true);
  }
  w.Key("user");
  w.StartObject();
  if (outcome.authenticated) {
    w.Key("username");
    w.String(outcome.user.username);
    if (!outcome.user.uid.empty()) {
      w.Key("uid");
      w.String(outcome.user.uid);
    }
    if (!outcome.user.groups.empty()) {
      w.Key("groups");
      StringArray(w, outcome.user.groups);
    }
    if (!outcome.user.extra.empty()) {
      w.Key("extra");
      w.StartObject();
      for (const auto& [key, values] : outcome.user.extra) {
        w.Key(key);
        StringArray(w, values);
      }
      w.EndObject();
    }
  }
  w.EndObject();
  if (outcome.authenticated) {
    w.Key("audiences");
    StringArray(w, outcome.audiences);
  } else {
    w.Key("error");
    w.String(outcome.error);
  }
  w.EndObject();
  w.EndObject();
  return Created(w.Take());
}

SimpleReply ServeSubjectAccessReview(const ReviewTable& table, const std::string& content_type,
                                     const std::string& body) {
  rapidjson::Document review;
  if (auto refused = ParseReview(content_type, body, "SubjectAccessReview",
                                 kAuthorizationGroupVersion, review)) {
    return *std::move(refused);
  }
  static const rapidjson::Value kNoSpec(rapidjson::kObjectType);
  auto spec_member = review.FindMember("spec");
  const rapidjson::Value& spec = spec_member != review.MemberEnd() && spec_member->value.IsObject()
                                     ? spec_member->value
                                     : kNoSpec;
  auto resource_member = spec.FindMember("resourceAttributes");
  const bool has_resource =
      resource_member != spec.MemberEnd() && resource_member->value.IsObject();
  const bool has_non_resource =
      spec.HasMember("nonResourceAttributes") && spec["nonResourceAttributes"].IsObject();
  if (has_resource == has_non_resource) {
    return StatusReply(InvalidAccessReview(
        "spec.resourceAttributes", "null",
        "exactly one of nonResourceAttributes or resourceAttributes must be specified"));
  }
  AccessQuery query;
  query.user = Str(spec, "user");
  query.groups = Strings(spec, "groups");
  if (query.user.empty() && query.groups.empty()) {
    return StatusReply(
        InvalidAccessReview("spec.user", "", "at least one of user or group must be specified"));
  }
  AccessAnswer answer;  // Non-resource requests: no rule answers them; denied.
  if (has_resource) {
    const rapidjson::Value& attributes = resource_member->value;
    query.verb = Str(attributes, "verb");
    query.group = Str(attributes, "group");
    query.resource = Str(attributes, "resource");
    query.namespace_name = Str(attributes, "namespace");
    query.name = Str(attributes, "name");
    answer = table.ReviewAccess(query);
  }

  JsonWriter w;
  w.StartObject();
  WriteHeader(w, "SubjectAccessReview", kAuthorizationGroupVersion, spec);
  w.Key("status");
  w.StartObject();
  w.Key("allowed");
  w.Bool(answer.allowed);
  if (answer.denied && !answer.allowed) {
    w.Key("denied");
    w.Bool(true);
  }
  if (!answer.reason.empty()) {
    w.Key("reason");
    w.String(answer.reason);
  }
  if (!answer.evaluation_error.empty()) {
    w.Key("evaluationError");
    w.String(answer.evaluation_error);
  }
  w.EndObject();
  w.EndObject();
  return Created(w.Take());
}

SimpleReply MalformedReviewReply(const std::string& path) {
  const bool token = path == kTokenReviewPath;
  return Created(fmt::format(R"({{"kind":"{}","apiVersion":"{}","status":{{"allowed":tr)",
                             token ? "TokenReview" : "SubjectAccessReview",
                             token ? kAuthenticationGroupVersion : kAuthorizationGroupVersion));
}

}  // namespace informerd::fakeapi
