#include "core/access_review.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <cstddef>
#include <string>
#include <utility>

#include "fmt/format.h"

namespace informerd::core {
namespace {

constexpr char kTokenReviewApiVersion[] = "authentication.k8s.io/v1";
constexpr char kSubjectAccessReviewApiVersion[] = "authorization.k8s.io/v1";
constexpr char kTokenReviewAnswer[] = "the TokenReview answer";
constexpr char kAccessReviewAnswer[] = "the SubjectAccessReview answer";

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// ---- Building.

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// The length of the well-formed UTF-8 sequence at the start of `text` (Unicode's table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 if it is ill-formed.
std::size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char second_low = 0x80;
  unsigned char second_high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_low = 0xA0;
    if (lead == 0xED) second_high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_low = 0x90;
    if (lead == 0xF4) second_high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  if (byte(1) < second_low || byte(1) > second_high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (!IsContinuation(byte(i))) return 0;
  }
  return length;
}

// JSON strings are Unicode text; RapidJSON's writer copies bytes as they are, so an ill-formed
// byte would make the whole request invalid JSON (and the apiserver answer 400, which reads as
// "the review failed" rather than "this token is no good"). Each ill-formed byte becomes U+FFFD:
// a token carrying one cannot be a valid token either way, and the apiserver then says so.
std::string ValidUtf8(std::string_view text) {
  std::string valid;
  valid.reserve(text.size());
  while (!text.empty()) {
    const std::size_t length = Utf8SequenceLength(text);
    if (length == 0) {
      valid += "\xEF\xBF\xBD";
      text.remove_prefix(1);
    } else {
      valid.append(text.data(), length);
      text.remove_prefix(length);
    }
  }
  return valid;
}

void WriteString(Writer& writer, std::string_view text) {
  const std::string valid = ValidUtf8(text);
  writer.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
}

void WriteKey(Writer& writer, std::string_view text) {
  const std::string valid = ValidUtf8(text);
  writer.Key(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
}

void WriteStringArray(Writer& writer, const std::vector<std::string>& items) {
  writer.StartArray();
  for (const std::string& item : items) WriteString(writer, item);
  writer.EndArray();
}

// A member written only when non-empty, as Go's `omitempty` does.
void WriteOptional(Writer& writer, const char* key, const std::string& value) {
  if (value.empty()) return;
  writer.Key(key);
  WriteString(writer, value);
}

void WriteHeader(Writer& writer, const char* api_version, const char* kind) {
  writer.Key("apiVersion");
  writer.String(api_version);
  writer.Key("kind");
  writer.String(kind);
}

// ---- Parsing. Messages name the field and what is wrong with it, never its value: the
// apiserver echoes the TokenReview's spec.token in its answer.

absl::Status Invalid(std::string_view what, std::string_view problem) {
  return absl::InvalidArgumentError(fmt::format("{} {}", what, problem));
}

absl::StatusOr<rapidjson::Document> ParseObject(std::string_view body, std::string_view what) {
  rapidjson::Document document;
  document.Parse(body.data(), body.size());
  if (document.HasParseError()) {
    return Invalid(what, fmt::format("is not valid JSON: {} at byte {}",
                                     rapidjson::GetParseError_En(document.GetParseError()),
                                     document.GetErrorOffset()));
  }
  if (!document.IsObject()) return Invalid(what, "is not a JSON object");
  return document;
}

// The member `name` of `object`; nullptr when absent or JSON null (Go reads null as "unset").
const rapidjson::Value* Member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

// Names a kind in a message only when it looks like one (a short identifier), so that nothing
// else the body holds can reach a log line.
std::string DescribeKind(const rapidjson::Value& kind) {
  if (!kind.IsString() || kind.GetStringLength() == 0 || kind.GetStringLength() > 64) {
    return "not";
  }
  for (rapidjson::SizeType i = 0; i < kind.GetStringLength(); ++i) {
    if (!std::isalnum(static_cast<unsigned char>(kind.GetString()[i]))) return "not";
  }
  return fmt::format("a {}, not", kind.GetString());
}

// The answer's kind, when it has one, must be `kind` (a Status object is the usual impostor).
absl::Status ExpectKind(const rapidjson::Value& document, const char* kind, std::string_view what) {
  const rapidjson::Value* actual = Member(document, "kind");
  if (actual == nullptr) return absl::OkStatus();
  if (actual->IsString() &&
      std::string_view(actual->GetString(), actual->GetStringLength()) == std::string_view(kind)) {
    return absl::OkStatus();
  }
  return Invalid(what, fmt::format("is {} a {}", DescribeKind(*actual), kind));
}

// Reads an optional member of a given JSON type; absent (or null) leaves `out` as it is.
absl::Status ReadString(const rapidjson::Value& object, const char* name, std::string_view path,
                        std::string_view what, std::string& out) {
  const rapidjson::Value* value = Member(object, name);
  if (value == nullptr) return absl::OkStatus();
  if (!value->IsString()) return Invalid(what, fmt::format("has a {} that is not a string", path));
  out.assign(value->GetString(), value->GetStringLength());
  return absl::OkStatus();
}

absl::Status ReadBool(const rapidjson::Value& object, const char* name, std::string_view path,
                      std::string_view what, bool& out) {
  const rapidjson::Value* value = Member(object, name);
  if (value == nullptr) return absl::OkStatus();
  if (!value->IsBool()) return Invalid(what, fmt::format("has a {} that is not a boolean", path));
  out = value->GetBool();
  return absl::OkStatus();
}

absl::Status ReadStringArray(const rapidjson::Value& value, std::string_view path,
                             std::string_view what, std::vector<std::string>& out) {
  if (!value.IsArray()) {
    return Invalid(what, fmt::format("has a {} that is not an array", path));
  }
  out.clear();
  for (const rapidjson::Value& item : value.GetArray()) {
    if (!item.IsString()) {
      return Invalid(what, fmt::format("has a {} with an item that is not a string", path));
    }
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return absl::OkStatus();
}

absl::Status ReadOptionalStringArray(const rapidjson::Value& object, const char* name,
                                     std::string_view path, std::string_view what,
                                     std::vector<std::string>& out) {
  const rapidjson::Value* value = Member(object, name);
  if (value == nullptr) return absl::OkStatus();
  return ReadStringArray(*value, path, what, out);
}

absl::StatusOr<const rapidjson::Value*> StatusMember(const rapidjson::Value& document,
                                                     std::string_view what) {
  const rapidjson::Value* status = Member(document, "status");
  if (status == nullptr) return Invalid(what, "has no status");
  if (!status->IsObject()) return Invalid(what, "has a status that is not an object");
  return status;
}

absl::Status ReadUser(const rapidjson::Value& status, std::string_view what, UserInfo& user) {
  const rapidjson::Value* value = Member(status, "user");
  if (value == nullptr) return Invalid(what, "is authenticated but has no status.user");
  if (!value->IsObject()) return Invalid(what, "has a status.user that is not an object");
  if (absl::Status s = ReadString(*value, "username", "status.user.username", what, user.name);
      !s.ok()) {
    return s;
  }
  // An authenticated nobody cannot be authorized as anybody; refuse it rather than guess.
  if (user.name.empty()) return Invalid(what, "is authenticated but status.user.username is empty");
  if (absl::Status s = ReadString(*value, "uid", "status.user.uid", what, user.uid); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ReadOptionalStringArray(*value, "groups", "status.user.groups", what, user.groups);
      !s.ok()) {
    return s;
  }
  const rapidjson::Value* extra = Member(*value, "extra");
  if (extra == nullptr) return absl::OkStatus();
  if (!extra->IsObject()) return Invalid(what, "has a status.user.extra that is not an object");
  for (const auto& member : extra->GetObject()) {
    std::vector<std::string> values;
    if (!member.value.IsNull()) {
      if (absl::Status s = ReadStringArray(member.value, "status.user.extra value", what, values);
          !s.ok()) {
        return s;
      }
    }
    user.extra[std::string(member.name.GetString(), member.name.GetStringLength())] =
        std::move(values);
  }
  return absl::OkStatus();
}

}  // namespace

std::string BuildTokenReview(std::string_view token, const std::vector<std::string>& audiences) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  WriteHeader(writer, kTokenReviewApiVersion, "TokenReview");
  writer.Key("spec");
  writer.StartObject();
  writer.Key("token");
  WriteString(writer, token);
  if (!audiences.empty()) {
    writer.Key("audiences");
    WriteStringArray(writer, audiences);
  }
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<TokenReviewResult> ParseTokenReview(std::string_view body) {
  constexpr std::string_view what = kTokenReviewAnswer;
  absl::StatusOr<rapidjson::Document> document = ParseObject(body, what);
  if (!document.ok()) return document.status();
  if (absl::Status kind = ExpectKind(*document, "TokenReview", what); !kind.ok()) return kind;
  absl::StatusOr<const rapidjson::Value*> status = StatusMember(*document, what);
  if (!status.ok()) return status.status();

  TokenReviewResult result;
  if (absl::Status s =
          ReadBool(**status, "authenticated", "status.authenticated", what, result.authenticated);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadString(**status, "error", "status.error", what, result.error); !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadOptionalStringArray(**status, "audiences", "status.audiences", what,
                                               result.audiences);
      !s.ok()) {
    return s;
  }
  // The apiserver answers an unauthenticated token with an empty "user": {}; only an
  // authenticated answer's user means anything.
  if (result.authenticated) {
    if (absl::Status s = ReadUser(**status, what, result.user); !s.ok()) return s;
  }
  return result;
}

std::string BuildSubjectAccessReview(const UserInfo& user, const ResourceAttributes& attributes) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  WriteHeader(writer, kSubjectAccessReviewApiVersion, "SubjectAccessReview");
  writer.Key("spec");
  writer.StartObject();
  writer.Key("resourceAttributes");
  writer.StartObject();
  WriteOptional(writer, "namespace", attributes.namespace_name);
  WriteOptional(writer, "verb", attributes.verb);
  WriteOptional(writer, "group", attributes.group);
  WriteOptional(writer, "resource", attributes.resource);
  WriteOptional(writer, "name", attributes.name);
  writer.EndObject();
  WriteOptional(writer, "user", user.name);
  if (!user.groups.empty()) {
    writer.Key("groups");
    WriteStringArray(writer, user.groups);
  }
  if (!user.extra.empty()) {
    writer.Key("extra");
    writer.StartObject();
    for (const auto& [key, values] : user.extra) {
      WriteKey(writer, key);
      WriteStringArray(writer, values);
    }
    writer.EndObject();
  }
  WriteOptional(writer, "uid", user.uid);
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<AccessReviewResult> ParseSubjectAccessReview(std::string_view body) {
  constexpr std::string_view what = kAccessReviewAnswer;
  absl::StatusOr<rapidjson::Document> document = ParseObject(body, what);
  if (!document.ok()) return document.status();
  if (absl::Status kind = ExpectKind(*document, "SubjectAccessReview", what); !kind.ok()) {
    return kind;
  }
  absl::StatusOr<const rapidjson::Value*> status = StatusMember(*document, what);
  if (!status.ok()) return status.status();

  AccessReviewResult result;
  // The apiserver always writes status.allowed (it has no omitempty); an answer without it is
  // not one to act on.
  if (Member(**status, "allowed") == nullptr) return Invalid(what, "has no status.allowed");
  if (absl::Status s = ReadBool(**status, "allowed", "status.allowed", what, result.allowed);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadBool(**status, "denied", "status.denied", what, result.denied);
      !s.ok()) {
    return s;
  }
  if (result.allowed && result.denied) {
    return Invalid(what, "has both status.allowed and status.denied true");
  }
  if (absl::Status s = ReadString(**status, "reason", "status.reason", what, result.reason);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadString(**status, "evaluationError", "status.evaluationError", what,
                                  result.evaluation_error);
      !s.ok()) {
    return s;
  }
  return result;
}

}  // namespace informerd::core
