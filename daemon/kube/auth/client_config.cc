#include "daemon/kube/auth/client_config.h"

#include <vector>

#include "absl/status/status.h"
#include "daemon/kube/auth/kubeconfig.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace informerd::daemon {
namespace {

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    parts.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

KubeconfigRestOptions RestOptions(const ClientConfigOptions& options) {
  KubeconfigRestOptions rest;
  rest.context = options.context;
  rest.environment = options.environment;
  rest.clock = options.clock;
  rest.on_warning = options.on_warning;
  rest.exec_timeout = options.exec_timeout;
  return rest;
}

}  // namespace

absl::StatusOr<RestConfig> LoadRestConfig(const ClientConfigOptions& options) {
  if (!options.kubeconfig_path.empty()) {
    absl::StatusOr<Kubeconfig> kubeconfig = LoadKubeconfigFile(options.kubeconfig_path);
    if (!kubeconfig.ok()) return kubeconfig.status();
    return RestConfigFromKubeconfig(*kubeconfig, RestOptions(options));
  }

  // What was searched, for the error at the end.
  std::string tried;
  std::vector<std::string> precedence;
  const std::string kubeconfig_variable = options.environment.Get("KUBECONFIG");
  if (!kubeconfig_variable.empty()) {
    precedence = SplitList(kubeconfig_variable);
    tried = fmt::format("$KUBECONFIG={}", kubeconfig_variable);
  } else if (const std::string home = options.environment.Get("HOME"); !home.empty()) {
    precedence.push_back(fmt::format("{}/.kube/config", home));
    tried = precedence.back();
  } else {
    tried = "$KUBECONFIG and $HOME are not set";
  }
  std::vector<std::string> missing;
  absl::StatusOr<Kubeconfig> kubeconfig = LoadKubeconfigFiles(precedence, &missing);
  if (!kubeconfig.ok()) return kubeconfig.status();
  if (!kubeconfig->empty()) return RestConfigFromKubeconfig(*kubeconfig, RestOptions(options));

  if (!missing.empty()) tried += fmt::format(" (missing: {})", fmt::join(missing, ", "));
  if (!kubeconfig->files.empty()) {
    tried += fmt::format(" (defining nothing: {})", fmt::join(kubeconfig->files, ", "));
  }
  if (!options.context.empty()) {
    return absl::NotFoundError(
        fmt::format("context \"{}\" was asked for, but no kubeconfig was found; tried {}",
                    options.context, tried));
  }
  if (InClusterEnvironmentSet(options.environment)) {
    InClusterOptions in_cluster;
    in_cluster.environment = options.environment;
    in_cluster.service_account_dir = options.service_account_dir;
    in_cluster.clock = options.clock;
    in_cluster.on_warning = options.on_warning;
    return LoadInClusterConfig(in_cluster);
  }
  return absl::NotFoundError(fmt::format(
      "no kubeconfig found and not running in a cluster: tried {}; KUBERNETES_SERVICE_HOST and "
      "KUBERNETES_SERVICE_PORT are not set. Pass --kubeconfig, set KUBECONFIG, or run in a pod",
      tried));
}

}  // namespace informerd::daemon
