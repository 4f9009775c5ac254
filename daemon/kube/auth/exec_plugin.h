// ExecCredentialSource: credentials from a client-go exec credential plugin (kubeconfig
// `users[].user.exec`), such as `aws eks get-token`, `gke-gcloud-auth-plugin` or `kubelogin`.
//
// Made by the kubeconfig loader (daemon/kube/auth/kubeconfig.*) and owned through the RestConfig's
// shared_ptr; the apiserver client calls Current() and Invalidate() from any thread. The plugin
// is run lazily, on the first Current(), then again when its credentials have expired
// (status.expirationTimestamp) or after Invalidate(); runs are serialized by a lock, so many
// callers wait for one run. Semantics follow client-go's
// k8s.io/client-go/plugin/pkg/client/auth/exec/exec.go and the client.authentication.k8s.io v1
// and v1beta1 ExecCredential types:
//   - the plugin gets the daemon's environment plus `exec.env`, and KUBERNETES_EXEC_INFO holding
//     an ExecCredential whose spec says interactive=false and, with provideClusterInfo, carries
//     the cluster (server, tls-server-name, insecure-skip-tls-verify, certificate-authority-data,
//     and the cluster extension "client.authentication.k8s.io/exec" as spec.cluster.config);
//   - stdin is /dev/null: a daemon has no terminal (interactiveMode Always is rejected at load);
//   - stdout must be an ExecCredential of the configured apiVersion with a status holding a
//     token, or a client certificate and key, or both;
//   - no shell: the command is run directly (posix_spawn), looked up in $PATH when it has no
//     slash, within a time limit (60 s by default), after which its process group is killed.
// Unlike client-go, a failed run is an error even if older credentials have not expired yet:
// Current() is only asked to run the plugin when those were expired or rejected. The error
// carries the plugin's stderr and the kubeconfig's installHint.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/environment.h"

namespace informerd::daemon {

inline constexpr char kExecCredentialV1[] = "client.authentication.k8s.io/v1";
inline constexpr char kExecCredentialV1beta1[] = "client.authentication.k8s.io/v1beta1";

// A kubeconfig user's `exec` section, validated (daemon/kube/auth/kubeconfig.cc) and with a relative
// command path already resolved against the kubeconfig's directory.
struct ExecConfig {
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string api_version;  // kExecCredentialV1 or kExecCredentialV1beta1
  std::string install_hint;
  bool provide_cluster_info = false;
  std::string interactive_mode;  // "Never" or "IfAvailable"
};

// ExecCredential spec.cluster, sent when provideClusterInfo is set.
struct ExecClusterInfo {
  std::string server;
  std::string tls_server_name;
  bool insecure_skip_tls_verify = false;
  std::string ca_pem;
  // The cluster's "client.authentication.k8s.io/exec" extension as JSON, or empty.
  std::string config_json;
};

class ExecCredentialSource : public CredentialSource {
 public:
  struct Options {
    ExecConfig exec;
    ExecClusterInfo cluster;
    // The plugin's base environment (normally the daemon's own) and where $PATH comes from.
    Environment environment;
    // Prefixes error messages: `user "alice" (context "dev" in /home/u/.kube/config)`.
    std::string identity;
    WallClock clock;
    std::chrono::milliseconds timeout = std::chrono::seconds(60);
  };

  explicit ExecCredentialSource(Options options);

  absl::StatusOr<std::shared_ptr<const Credentials>> Current() override;
  void Invalidate(const std::shared_ptr<const Credentials>& rejected) override;

 private:
  absl::StatusOr<Credentials> Run() const;

  const Options options_;
  std::mutex mu_;                              // also serializes plugin runs
  std::shared_ptr<const Credentials> cached_;  // guarded by mu_
  bool invalidated_ = false;                   // guarded by mu_
};

// The KUBERNETES_EXEC_INFO value for a run.
std::string ExecInfoJson(const ExecConfig& exec, const ExecClusterInfo& cluster);

// Decodes a plugin's stdout. Messages describe the problem without a prefix.
absl::StatusOr<Credentials> ParseExecCredential(std::string_view json,
                                                std::string_view api_version);

// RFC 3339 ("2024-05-01T12:00:00Z", "2024-05-01T14:00:00.5+02:00"), as metav1.Time accepts it.
absl::StatusOr<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

}  // namespace informerd::daemon
