#include "test/fakeapi/list_options.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::fakeapi {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size()) {
        return absl::InvalidArgumentError(fmt::format("invalid URL escape in \"{}\"", text));
      }
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(fmt::format("invalid URL escape in \"{}\"", text));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// strconv.ParseBool, which the apiserver's query decoding uses.
std::optional<bool> ParseGoBool(std::string_view text) {
  if (text == "1" || text == "t" || text == "T" || text == "true" || text == "TRUE" ||
      text == "True") {
    return true;
  }
  if (text == "0" || text == "f" || text == "F" || text == "false" || text == "FALSE" ||
      text == "False") {
    return false;
  }
  return std::nullopt;
}

std::optional<std::int64_t> ParseInt64(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::string copy(text);
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(copy.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return value;
}

FieldError Forbidden(const std::string& field, const std::string& detail) {
  return FieldError{field, "FieldValueForbidden", "Forbidden: " + detail};
}

FieldError NotSupported(const std::string& field, const std::string& value,
                        const std::vector<std::string>& supported) {
  std::string list;
  for (const std::string& s : supported) {
    if (!list.empty()) list += ", ";
    list += fmt::format("\"{}\"", s);
  }
  return FieldError{field, "FieldValueNotSupported",
                    fmt::format("Unsupported value: \"{}\": supported values: {}", value, list)};
}

}  // namespace

absl::StatusOr<RequestTarget> ParseTarget(std::string_view target) {
  RequestTarget out;
  const std::size_t question = target.find('?');
  auto path = PercentDecode(target.substr(0, question));
  if (!path.ok()) return path.status();
  out.path = std::move(*path);
  // Paths are compared segment by segment; a trailing slash names the same collection.
  while (out.path.size() > 1 && out.path.back() == '/') out.path.pop_back();
  if (question == std::string_view::npos) return out;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq));
    if (!key.ok()) return key.status();
    std::string value;
    if (eq != std::string_view::npos) {
      auto decoded = PercentDecode(pair.substr(eq + 1));
      if (!decoded.ok()) return decoded.status();
      value = std::move(*decoded);
    }
    out.query.emplace(std::move(*key), std::move(value));
  }
  return out;
}

absl::StatusOr<ListOptions> ParseListOptions(const std::map<std::string, std::string>& query) {
  ListOptions options;
  auto get = [&](const char* name) -> const std::string* {
    auto it = query.find(name);
    return it == query.end() ? nullptr : &it->second;
  };
  auto get_bool = [&](const char* name, bool& out) -> absl::Status {
    if (const std::string* v = get(name)) {
      // An empty value counts as unset, as Go's query decoding treats it.
      if (v->empty()) return absl::OkStatus();
      auto parsed = ParseGoBool(*v);
      if (!parsed) {
        return absl::InvalidArgumentError(
            fmt::format("strconv.ParseBool: parsing \"{}\": invalid syntax", *v));
      }
      out = *parsed;
    }
    return absl::OkStatus();
  };
  if (auto s = get_bool("watch", options.watch); !s.ok()) return s;
  if (auto s = get_bool("allowWatchBookmarks", options.allow_watch_bookmarks); !s.ok()) return s;
  if (const std::string* v = get("sendInitialEvents"); v && !v->empty()) {
    auto parsed = ParseGoBool(*v);
    if (!parsed) {
      return absl::InvalidArgumentError(
          fmt::format("strconv.ParseBool: parsing \"{}\": invalid syntax", *v));
    }
    options.send_initial_events = *parsed;
  }
  if (const std::string* v = get("resourceVersion")) options.resource_version = *v;
  if (const std::string* v = get("resourceVersionMatch")) options.resource_version_match = *v;
  if (const std::string* v = get("continue")) options.continue_token = *v;
  if (const std::string* v = get("labelSelector")) options.label_selector = *v;
  if (const std::string* v = get("fieldSelector")) options.field_selector = *v;
  if (const std::string* v = get("limit"); v && !v->empty()) {
    auto parsed = ParseInt64(*v);
    if (!parsed) {
      return absl::InvalidArgumentError(
          fmt::format("strconv.ParseInt: parsing \"{}\": invalid syntax", *v));
    }
    options.limit = *parsed;
  }
  if (const std::string* v = get("timeoutSeconds"); v && !v->empty()) {
    auto parsed = ParseInt64(*v);
    if (!parsed) {
      return absl::InvalidArgumentError(
          fmt::format("strconv.ParseInt: parsing \"{}\": invalid syntax", *v));
    }
    options.timeout_seconds = *parsed;
  }
  return options;
}

std::vector<FieldError> ValidateListOptions(ListOptions& options, WatchListSupport support) {
  std::vector<FieldError> errors;
  const std::string& match = options.resource_version_match;
  if (options.watch && support == WatchListSupport::kIgnoredLikeAncientServer) {
    options.send_initial_events.reset();
    options.resource_version_match.clear();
    return errors;
  }
  if (options.watch && support == WatchListSupport::kRejectedLikeOldServer) {
    // 1.19-1.26 did not know sendInitialEvents: the query decoder dropped it.
    options.send_initial_events.reset();
  }
  if (options.watch && support == WatchListSupport::kEnabled) {
    // validateWatchOptions, Kubernetes 1.27+.
    if (options.send_initial_events && match != "NotOlderThan") {
      errors.push_back(Forbidden("resourceVersionMatch",
                                 "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"));
    }
    if (!match.empty()) {
      if (!options.send_initial_events) {
        errors.push_back(Forbidden("resourceVersionMatch",
                                   "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"));
      }
      if (match != "NotOlderThan") {
        errors.push_back(NotSupported("resourceVersionMatch", match, {"NotOlderThan"}));
      }
      if (!options.continue_token.empty()) {
        errors.push_back(Forbidden("resourceVersionMatch",
                                   "resourceVersionMatch is forbidden when continue is provided"));
      }
    }
    return errors;
  }
  if (!options.watch && options.send_initial_events && support == WatchListSupport::kEnabled) {
    errors.push_back(Forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"));
  }
  // The 1.19-1.26 rules for lists and watches alike (and 1.27+ for lists).
  if (!match.empty()) {
    if (options.watch) {
      errors.push_back(Forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden for watch"));
    }
    if (options.resource_version.empty()) {
      errors.push_back(Forbidden("resourceVersionMatch",
                                 "resourceVersionMatch is forbidden unless resourceVersion is provided"));
    }
    if (!options.continue_token.empty()) {
      errors.push_back(Forbidden("resourceVersionMatch",
                                 "resourceVersionMatch is forbidden when continue is provided"));
    }
    if (match != "Exact" && match != "NotOlderThan") {
      errors.push_back(NotSupported("resourceVersionMatch", match, {"Exact", "NotOlderThan", ""}));
    }
    if (match == "Exact" && options.resource_version == "0") {
      errors.push_back(Forbidden("resourceVersionMatch",
                                 "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""));
    }
  }
  return errors;
}

std::optional<std::uint64_t> ParseResourceVersion(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace informerd::fakeapi
