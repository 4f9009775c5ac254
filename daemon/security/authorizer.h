// Authorizer: may this user do this? informerd never decides on its own what a caller may read:
// with --authorization-mode=Webhook every check is a SubjectAccessReview answered by the
// apiserver's authorizers (RBAC, ...), cached for a while (SubjectAccessReviewAuthorizer); with
// AlwaysAllow (loopback and unix-socket deployments such as the sidecar) everything is allowed.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "core/user_info.h"

namespace informerd::daemon {

struct AccessDecision {
  bool allowed = false;
  // The authorizer's reason, when it gave one.
  std::string reason;
};

class Authorizer {
 public:
  // The decision, or Unavailable when none could be had (the review failed or timed out: the
  // message says why). A caller treats an error as a denial it reports as UNAVAILABLE.
  using Callback = std::function<void(absl::StatusOr<AccessDecision>)>;

  virtual ~Authorizer() = default;

  // Calls `done` exactly once, inline when the answer is known at once (cached, AlwaysAllow),
  // else later on another thread.
  virtual void Authorize(const core::UserInfo& user, const core::ResourceAttributes& attributes,
                         Callback done) = 0;

  // How long an allowed decision stands: a long-lived Subscribe is authorized again this often
  // and ended with PERMISSION_DENIED when the permission is gone. Zero: decisions never change
  // (AlwaysAllow), no re-check.
  virtual std::chrono::milliseconds recheck_interval() const = 0;
};

}  // namespace informerd::daemon
