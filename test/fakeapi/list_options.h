// Request targets and the list/watch query parameters of the Kubernetes API (metav1.ListOptions).
//
// Pure functions, called by the request handler on the I/O thread. Validation follows
// k8s.io/apimachinery/pkg/apis/meta/internalversion/validation: the rules of Kubernetes 1.27+
// (WatchList: `sendInitialEvents` with `resourceVersionMatch=NotOlderThan`), or those of
// 1.19-1.26, where `sendInitialEvents` is an unknown parameter (ignored) and any
// `resourceVersionMatch` on a watch is forbidden (HTTP 422 Invalid), or those of servers older
// than 1.19, which know neither parameter and ignore both.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace informerd::fakeapi {

// A request target split into its path and its percent-decoded query parameters.
struct RequestTarget {
  std::string path;
  std::map<std::string, std::string> query;  // The first value of each parameter.
};
absl::StatusOr<RequestTarget> ParseTarget(std::string_view target);

// How the server treats WatchList requests (sendInitialEvents=true).
enum class WatchListSupport {
  kEnabled,                  // Kubernetes 1.27+ with the WatchList feature.
  kRejectedLikeOldServer,    // Kubernetes 1.19-1.26: 422 "resourceVersionMatch is forbidden for watch".
  kIgnoredLikeAncientServer, // Kubernetes < 1.19: both parameters ignored, a plain watch.
};

struct ListOptions {
  bool watch = false;
  bool allow_watch_bookmarks = false;
  std::string resource_version;  // Empty: unset.
  std::string resource_version_match;
  std::optional<bool> send_initial_events;
  std::int64_t limit = 0;
  std::string continue_token;
  std::optional<std::int64_t> timeout_seconds;
  std::string label_selector;
  std::string field_selector;
};

// Fails (InvalidArgument, for a 400 BadRequest) on a malformed boolean or integer.
absl::StatusOr<ListOptions> ParseListOptions(const std::map<std::string, std::string>& query);

// One entry of a 422 Invalid Status's details.causes.
struct FieldError {
  std::string field;   // "resourceVersionMatch".
  std::string reason;  // "FieldValueForbidden", "FieldValueNotSupported".
  std::string body;    // "Forbidden: resourceVersionMatch is forbidden for watch".
  std::string Error() const { return field + ": " + body; }
};

// Applies the rules of the emulated server version. Under kIgnoredLikeAncientServer a watch's
// sendInitialEvents and resourceVersionMatch are cleared in `options` first.
std::vector<FieldError> ValidateListOptions(ListOptions& options, WatchListSupport support);

// Parses an RV as the watch cache does: an unsigned 64-bit etcd revision.
std::optional<std::uint64_t> ParseResourceVersion(std::string_view text);

}  // namespace informerd::fakeapi
