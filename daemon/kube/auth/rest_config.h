// RestConfig: where the apiserver is and how to talk to it: URL, TLS settings, credentials, and
// who we are (for error messages). informerd's counterpart of client-go's rest.Config.
//
// Produced once at start-up by LoadRestConfig (daemon/kube/auth/client_config.h) from a kubeconfig or the
// in-cluster service account, then handed to the apiserver client, which owns it for the life
// of the daemon. The values are immutable; `credentials` is shared and thread-safe (it may
// refresh itself: token files are re-read, exec plugins re-run).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "daemon/kube/auth/credentials.h"

namespace informerd::daemon {

// A parsed kubeconfig `server`: "https://host:port/optional/prefix".
struct ServerUrl {
  std::string scheme;  // "https" or "http"
  // Without brackets: "10.0.0.1", "::1", "api.example.com".
  std::string host;
  // The URL's port, or the scheme's default (443, 80).
  uint16_t port = 0;
  // Prepended to every request path: "" or, behind a proxy such as Rancher's,
  // "/k8s/clusters/c-abc" (never a trailing slash).
  std::string path_prefix;

  // "host:port", with an IPv6 host in brackets: what to connect to and send as Host.
  std::string Authority() const;
  // "https://host:port/prefix".
  std::string ToString() const;
};

// Accepts http and https URLs with a host, an optional port and an optional path; a query or
// fragment is dropped (as client-go does). A URL without a scheme is an error: kubectl would
// fall back to plain http, sending no credentials, which is never what a daemon should do
// silently. Messages describe the problem without naming the field; callers add that.
absl::StatusOr<ServerUrl> ParseServerUrl(std::string_view text);

struct TlsSettings {
  // PEM certificates to trust; empty = the system's trust store.
  std::string ca_pem;
  // Accept any server certificate (kubeconfig insecure-skip-tls-verify). Never with ca_pem.
  bool insecure_skip_tls_verify = false;
  // SNI and the name to verify the server certificate against, when it is not the URL's host.
  std::string server_name;
};

struct RestConfig {
  ServerUrl server;
  TlsSettings tls;
  // Never null. For an http server it yields empty credentials (kubectl sends none over http).
  std::shared_ptr<CredentialSource> credentials;
  // For messages: `user "alice" (context "dev" in /home/u/.kube/config)` or
  // `service account (in-cluster)`.
  std::string identity;
};

}  // namespace informerd::daemon
