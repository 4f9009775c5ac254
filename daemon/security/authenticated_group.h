// system:authenticated, added as kube-apiserver adds it to every authenticated user
// (k8s.io/apiserver's AuthenticatedGroupAdder, which also wraps the delegated authenticators of
// aggregated servers): to every user except system:anonymous, unless the user already is in
// system:authenticated or in system:unauthenticated. RBAC bindings to system:authenticated
// therefore mean here what they mean to the apiserver.
#pragma once

#include <algorithm>

#include "core/user_info.h"

namespace informerd::daemon {

inline void AddAuthenticatedGroup(core::UserInfo& user) {
  if (user.name == core::kAnonymousUser) return;
  const bool has_either = std::any_of(user.groups.begin(), user.groups.end(), [](const auto& g) {
    return g == core::kAuthenticatedGroup || g == core::kUnauthenticatedGroup;
  });
  if (!has_either) user.groups.push_back(core::kAuthenticatedGroup);
}

}  // namespace informerd::daemon
