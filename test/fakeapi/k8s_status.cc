#include "test/fakeapi/k8s_status.h"

#include "fmt/format.h"
#include "test/fakeapi/json_writer.h"

namespace informerd::fakeapi {

std::string ApiStatus::ToJson() const {
  JsonWriter w;
  w.StartObject();
  w.Key("kind");
  w.String("Status");
  w.Key("apiVersion");
  w.String("v1");
  w.Key("metadata");
  w.StartObject();
  w.EndObject();
  w.Key("status");
  w.String("Failure");
  w.Key("message");
  w.String(message);
  w.Key("reason");
  w.String(reason);
  const bool has_details = !details_name.empty() || !details_group.empty() ||
                           !details_kind.empty() || !causes.empty() || retry_after_seconds > 0;
  if (has_details) {
    w.Key("details");
    w.StartObject();
    if (!details_name.empty()) {
      w.Key("name");
      w.String(details_name);
    }
    if (!details_group.empty()) {
      w.Key("group");
      w.String(details_group);
    }
    if (!details_kind.empty()) {
      w.Key("kind");
      w.String(details_kind);
    }
    if (!causes.empty()) {
      w.Key("causes");
      w.StartArray();
      for (const Cause& c : causes) {
        w.StartObject();
        w.Key("reason");
        w.String(c.reason);
        w.Key("message");
        w.String(c.message);
        w.Key("field");
        w.String(c.field);
        w.EndObject();
      }
      w.EndArray();
    }
    if (retry_after_seconds > 0) {
      w.Key("retryAfterSeconds");
      w.Int(retry_after_seconds);
    }
    w.EndObject();
  }
  w.Key("code");
  w.Int(code);
  w.EndObject();
  return w.Take();
}

ApiStatus NotFoundStatus(const std::string& plural, const std::string& group,
                         const std::string& name) {
  ApiStatus s;
  s.code = 404;
  s.reason = "NotFound";
  const std::string qualified = group.empty() ? plural : fmt::format("{}.{}", plural, group);
  s.message = fmt::format("{} \"{}\" not found", qualified, name);
  s.details_name = name;
  s.details_group = group;
  s.details_kind = plural;
  return s;
}

ApiStatus PathNotFoundStatus() {
  ApiStatus s;
  s.code = 404;
  s.reason = "NotFound";
  s.message = "the server could not find the requested resource";
  return s;
}

ApiStatus BadRequestStatus(const std::string& message) {
  ApiStatus s;
  s.code = 400;
  s.reason = "BadRequest";
  s.message = message;
  return s;
}

ApiStatus InvalidListOptionsStatus(const std::vector<FieldError>& errors) {
  // errors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "ListOptions"}, "", errs):
  // one error prints bare, several print as an aggregate "[a, b]".
  std::string aggregate;
  if (errors.size() == 1) {
    aggregate = errors[0].Error();
  } else {
    aggregate = "[";
    for (std::size_t i = 0; i < errors.size(); ++i) {
      if (i) aggregate += ", ";
      aggregate += errors[i].Error();
    }
    aggregate += "]";
  }
  ApiStatus s;
  s.code = 422;
  s.reason = "Invalid";
  s.message = fmt::format("ListOptions.meta.k8s.io \"\" is invalid: {}", aggregate);
  s.details_group = "meta.k8s.io";
  s.details_kind = "ListOptions";
  for (const FieldError& e : errors) s.causes.push_back({e.reason, e.body, e.field});
  return s;
}

ApiStatus TooOldResourceVersionStatus(std::uint64_t requested, std::uint64_t oldest) {
  ApiStatus s;
  s.code = 410;
  s.reason = "Expired";
  s.message = fmt::format("too old resource version: {} ({})", requested, oldest);
  return s;
}

ApiStatus ExpiredContinueStatus() {
  ApiStatus s;
  s.code = 410;
  s.reason = "Expired";
  s.message =
      "The provided continue parameter is too old to display a consistent list result. You can "
      "start a new list without the continue parameter.";
  return s;
}

ApiStatus ExpiredListStatus() {
  ApiStatus s;
  s.code = 410;
  s.reason = "Expired";
  s.message = "The resourceVersion for the provided list is too old.";
  return s;
}

ApiStatus UnauthorizedStatus() {
  ApiStatus s;
  s.code = 401;
  s.reason = "Unauthorized";
  s.message = "Unauthorized";
  return s;
}

ApiStatus TooManyRequestsStatus(int retry_after_seconds) {
  ApiStatus s;
  s.code = 429;
  s.reason = "TooManyRequests";
  s.message = "Too many requests, please try again later.";
  s.retry_after_seconds = retry_after_seconds;
  return s;
}

ApiStatus ServiceUnavailableStatus(int retry_after_seconds) {
  ApiStatus s;
  s.code = 503;
  s.reason = "ServiceUnavailable";
  s.message = "The server is currently unable to handle the request";
  s.retry_after_seconds = retry_after_seconds;
  return s;
}

ApiStatus MethodNotAllowedStatus(const std::string& method) {
  ApiStatus s;
  s.code = 405;
  s.reason = "MethodNotAllowed";
  s.message = fmt::format("the fake apiserver does not allow this method on the requested "
                          "resource: {}", method);
  return s;
}

ApiStatus NotAcceptableStatus() {
  ApiStatus s;
  s.code = 406;
  s.reason = "NotAcceptable";
  s.message = "only the following media types are accepted: application/json";
  return s;
}

ApiStatus TooLargeResourceVersionStatus(std::uint64_t requested, std::uint64_t current) {
  ApiStatus s;
  s.code = 504;
  s.reason = "Timeout";
  // errors.NewTimeoutError puts "Timeout: " before the message.
  s.message =
      fmt::format("Timeout: Too large resource version: {}, current: {}", requested, current);
  s.causes.push_back({"ResourceVersionTooLarge", "Too large resource version", ""});
  s.retry_after_seconds = 1;
  return s;
}

ApiStatus GenericStatus(int code, const std::string& reason, const std::string& message) {
  ApiStatus s;
  s.code = code;
  s.reason = reason;
  s.message = message;
  return s;
}

}  // namespace informerd::fakeapi
