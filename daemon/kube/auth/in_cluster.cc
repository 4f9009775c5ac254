#include "daemon/kube/auth/in_cluster.h"

#include "absl/status/status.h"
#include "daemon/kube/auth/file_contents.h"
#include "daemon/kube/auth/pem.h"
#include "fmt/format.h"

namespace informerd::daemon {

bool InClusterEnvironmentSet(const Environment& environment) {
  return !environment.Get("KUBERNETES_SERVICE_HOST").empty() &&
         !environment.Get("KUBERNETES_SERVICE_PORT").empty();
}

absl::StatusOr<RestConfig> LoadInClusterConfig(const InClusterOptions& options) {
  const std::string host = options.environment.Get("KUBERNETES_SERVICE_HOST");
  const std::string port = options.environment.Get("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both "
        "be set");
  }
  // net.JoinHostPort in client-go: an IPv6 address goes in brackets.
  const std::string url = host.find(':') != std::string::npos
                              ? fmt::format("https://[{}]:{}", host, port)
                              : fmt::format("https://{}:{}", host, port);
  absl::StatusOr<ServerUrl> server = ParseServerUrl(url);
  if (!server.ok()) {
    return absl::InvalidArgumentError(fmt::format(
        "in-cluster configuration: KUBERNETES_SERVICE_HOST={} KUBERNETES_SERVICE_PORT={}: {}", host,
        port, std::string(server.status().message())));
  }
  RestConfig config;
  config.server = *std::move(server);
  config.identity = "service account (in-cluster)";

  const std::string ca_file = fmt::format("{}/ca.crt", options.service_account_dir);
  absl::StatusOr<std::string> ca = ReadFileContents(ca_file);
  if (!ca.ok()) {
    return absl::Status(ca.status().code(), fmt::format("in-cluster configuration: {}",
                                                        std::string(ca.status().message())));
  }
  if (absl::Status check = CheckCertificatesPem(*ca); !check.ok()) {
    return absl::InvalidArgumentError(fmt::format("in-cluster configuration: file {}: {}", ca_file,
                                                  std::string(check.message())));
  }
  config.tls.ca_pem = *std::move(ca);

  FileTokenSource::Options token;
  token.path = fmt::format("{}/token", options.service_account_dir);
  token.description = "in-cluster service-account token";
  token.clock = options.clock;
  token.on_warning = options.on_warning;
  absl::StatusOr<std::shared_ptr<FileTokenSource>> source = FileTokenSource::Create(token);
  if (!source.ok()) return source.status();
  config.credentials = *std::move(source);
  return config;
}

}  // namespace informerd::daemon
