// AlwaysAllowAuthorizer: --authorization-mode=AlwaysAllow, for deployments where whoever can
// reach the listen address may read everything informerd caches: a loopback address or a unix
// socket shared with one trusted process (the sidecar). Every check is allowed, inline; nothing is
// ever re-checked.
#pragma once

#include <chrono>

#include "daemon/security/authorizer.h"

namespace informerd::daemon {

class AlwaysAllowAuthorizer final : public Authorizer {
 public:
  void Authorize(const core::UserInfo&, const core::ResourceAttributes&, Callback done) override {
    done(AccessDecision{true, ""});
  }
  std::chrono::milliseconds recheck_interval() const override {
    return std::chrono::milliseconds::zero();
  }
};

}  // namespace informerd::daemon
