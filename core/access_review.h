// The apiserver's review APIs as JSON, without any transport: the TokenReview that turns a
// bearer token into a user (authentication.k8s.io/v1) and the SubjectAccessReview that asks
// whether a user may do something (authorization.k8s.io/v1). informerd delegates both decisions
// to the apiserver, as kube-apiserver's aggregated servers and the kubelet do: the request bodies
// are built here and the answers parsed here; daemon/security/ sends them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/user_info.h"

namespace informerd::core {

// Requests are built as Go's encoding would write them (empty fields left out). JSON strings must
// be Unicode: a byte that is not part of well-formed UTF-8 is sent as U+FFFD, so that a garbage
// token still makes a valid request, which the apiserver then answers "not authenticated".
//
// A TokenReview request for `token`; `audiences` empty means the apiserver's own audiences.
std::string BuildTokenReview(std::string_view token, const std::vector<std::string>& audiences);

struct TokenReviewResult {
  bool authenticated = false;
  UserInfo user;  // when authenticated
  // The audiences the token is valid for, as the apiserver answered (a subset of those asked).
  std::vector<std::string> audiences;
  // The apiserver's status.error, when it gave one (never contains the token).
  std::string error;
};

// Parses a TokenReview answer (HTTP 201). InvalidArgument, naming what is wrong, for a body that
// is not a TokenReview with a status, or that says "authenticated" without a user name (nobody
// can be authorized as an empty name). Error messages name fields, never quote values: the
// apiserver's answer echoes spec.token.
absl::StatusOr<TokenReviewResult> ParseTokenReview(std::string_view body);

// A SubjectAccessReview request asking whether `user` may do `attributes`.
std::string BuildSubjectAccessReview(const UserInfo& user, const ResourceAttributes& attributes);

struct AccessReviewResult {
  bool allowed = false;
  // status.denied: an explicit denial (no other authorizer may allow it); informational here.
  bool denied = false;
  // status.reason: why, in the authorizer's words (RBAC's "" on a plain denial).
  std::string reason;
  // status.evaluationError: the authorizer could not evaluate everything; a decision stands.
  std::string evaluation_error;
};

// Parses a SubjectAccessReview answer (HTTP 201). InvalidArgument for a body that is not one: no
// status, no status.allowed (the apiserver always writes it), a field of the wrong JSON type, or
// allowed and denied both true.
absl::StatusOr<AccessReviewResult> ParseSubjectAccessReview(std::string_view body);

}  // namespace informerd::core
