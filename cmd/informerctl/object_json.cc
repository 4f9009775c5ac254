// Reading and validating objects' JSON text; see object_json.h.
#include "cmd/informerctl/object_json.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cstring>

#include "fmt/format.h"

namespace informerd::ctl {
namespace {

std::string StringMember(const rapidjson::Value& object, const char* key) {
  const auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsString()) return "";
  return std::string(member->value.GetString(), member->value.GetStringLength());
}

}  // namespace

absl::StatusOr<ObjectMeta> ReadObjectMeta(std::string_view json) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (document.HasParseError()) {
    return absl::InvalidArgumentError(
        fmt::format("object is not JSON (at offset {}: {})", document.GetErrorOffset(),
                    rapidjson::GetParseError_En(document.GetParseError())));
  }
  if (!document.IsObject()) return absl::InvalidArgumentError("object is not a JSON object");
  ObjectMeta meta;
  const auto metadata = document.FindMember("metadata");
  if (metadata != document.MemberEnd() && metadata->value.IsObject()) {
    meta.namespace_name = StringMember(metadata->value, "namespace");
    meta.name = StringMember(metadata->value, "name");
    meta.creation_timestamp = StringMember(metadata->value, "creationTimestamp");
  }
  return meta;
}

absl::Status ValidateJson(std::string_view json) {
  const std::string text(json);
  rapidjson::StringStream stream(text.c_str());
  rapidjson::Reader reader;
  rapidjson::BaseReaderHandler<> ignore;
  const rapidjson::ParseResult result = reader.Parse<internal::kVerbatimParseFlags>(stream, ignore);
  if (result.IsError()) {
    return absl::InvalidArgumentError(fmt::format("not JSON (at offset {}: {})", result.Offset(),
                                                  rapidjson::GetParseError_En(result.Code())));
  }
  if (text.size() != std::strlen(text.c_str())) {
    return absl::InvalidArgumentError("not JSON: contains a NUL byte");
  }
  return absl::OkStatus();
}

}  // namespace informerd::ctl
