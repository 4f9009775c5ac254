// In-cluster configuration: the apiserver and credentials of the pod informerd runs in.
//
// Chosen by LoadRestConfig (daemon/kube/auth/client_config.h) when no kubeconfig is given or found and
// KUBERNETES_SERVICE_HOST/PORT are set, as client-go's rest.InClusterConfig() and kubectl do.
// Runs once at start-up; the token source it creates is owned by the RestConfig and thread-safe.
//
//   server  https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (an IPv6 host bracketed)
//   CA      <dir>/ca.crt                        (client-go only logs a missing CA and then fails
//                                                 every TLS handshake; here it is an error)
//   token   <dir>/token, re-read at least every minute and after Invalidate(): kubelet rotates
//           bound service-account tokens in place; when a re-read fails the last good token
//           stays in use and the failure goes to on_warning (daemon/kube/auth/credentials.h,
//           FileTokenSource)
// where <dir> is /var/run/secrets/kubernetes.io/serviceaccount unless a test says otherwise.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/environment.h"
#include "daemon/kube/auth/rest_config.h"

namespace informerd::daemon {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct InClusterOptions {
  Environment environment;
  std::string service_account_dir = kServiceAccountDir;
  WallClock clock = SystemWallClock();
  WarningHandler on_warning;
};

// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are both set (and not empty).
bool InClusterEnvironmentSet(const Environment& environment);

// Fails, naming the variable or file, if the variables are missing or malformed or the token or
// CA cannot be read.
absl::StatusOr<RestConfig> LoadInClusterConfig(const InClusterOptions& options);

}  // namespace informerd::daemon
