// LoadRestConfig: decides where informerd's apiserver connection settings come from and loads
// them, as kubectl does (client-go's clientcmd.DeferredLoadingClientConfig):
//   1. --kubeconfig FILE: that file alone; it must exist. Never falls back to in-cluster.
//   2. else $KUBECONFIG, a ':'-separated list merged in order (daemon/kube/auth/kubeconfig.h), missing
//      files skipped;
//   3. else $HOME/.kube/config if it exists;
//   4. if that found nothing (no file, or files defining nothing) and no --context was given:
//      in-cluster configuration when KUBERNETES_SERVICE_HOST/PORT are set (daemon/kube/auth/in_cluster.h);
//   5. else an error that says what was tried.
// Called once by the daemon's main path before the apiserver client starts; single-threaded.
// The environment is a snapshot passed in (daemon/kube/auth/environment.h), never read here directly.
#pragma once

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/environment.h"
#include "daemon/kube/auth/in_cluster.h"
#include "daemon/kube/auth/rest_config.h"

namespace informerd::daemon {

struct ClientConfigOptions {
  // --kubeconfig; empty = search as above.
  std::string kubeconfig_path;
  // --context; empty = the kubeconfig's current-context.
  std::string context;
  Environment environment;
  std::string service_account_dir = kServiceAccountDir;
  WallClock clock = SystemWallClock();
  // Degraded-but-working conditions (a token file that could not be re-read, ...), for the log.
  WarningHandler on_warning;
  // Limit for one run of an exec credential plugin.
  std::chrono::milliseconds exec_timeout = std::chrono::seconds(60);
};

absl::StatusOr<RestConfig> LoadRestConfig(const ClientConfigOptions& options);

}  // namespace informerd::daemon
