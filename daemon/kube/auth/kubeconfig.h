// Kubeconfig: kubectl's configuration files, read, merged and resolved exactly as kubectl does,
// into the RestConfig of one context.
//
// Called at start-up by LoadRestConfig (daemon/kube/auth/client_config.h), which decides which files to
// read (--kubeconfig, else $KUBECONFIG, else ~/.kube/config); nothing here runs afterwards except
// the credential sources it creates (owned by the RestConfig). Single-threaded use; the results
// are plain values.
//
// The rules, from k8s.io/client-go/tools/clientcmd (loader.go, client_config.go, validation.go):
//   - Files are merged in order. For clusters, users and contexts the first file that defines a
//     name wins, with its whole entry (a later file's entry of the same name is ignored, not
//     merged field by field); current-context comes from the first file that sets it. Missing
//     files are skipped (LoadKubeconfigFiles); the one file given by --kubeconfig must exist.
//   - Relative paths (certificate-authority, client-certificate, client-key, tokenFile, and an
//     exec command containing a slash) resolve against the directory of the file they are in.
//   - The context is --context, else current-context; its user and cluster must exist.
//   - certificate-authority and certificate-authority-data together are an error, and so is
//     either with insecure-skip-tls-verify; likewise client-certificate with -data, client-key
//     with -data, and a client certificate without a key.
//   - `token` and `tokenFile`: the file's token is used, re-read every minute; `token` is the
//     fallback while the file cannot be read. A client certificate may be combined with a token.
//   - `exec` is used only when the user has no token, token file or client certificate.
//     v1beta1 defaults interactiveMode to IfAvailable; v1 requires it. `Always` is refused:
//     informerd has no terminal.
//   - A plain-http server gets no credentials (kubectl sends none over http).
//   - Unknown keys are ignored, as kubectl ignores them (the format grows with every release and
//     the same files are shared with other tools); known keys with the wrong type are errors.
// Differences, chosen for a daemon: a server without a scheme is an error (kubectl would use
// plain http), and auth-provider, username/password, impersonation (as, as-groups, ...) and
// proxy-url are reported as unsupported when the chosen context uses them, never ignored.
//
// Errors name file and field. Parse errors carry the line and column
// ("/home/u/.kube/config:7:5: users[0].user.token: must be a string"); errors found while
// resolving the chosen context name the file the entry came from and its field
// ("/home/u/.kube/config: users[0].user.client-key: file /x/key.pem: No such file or directory").
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/environment.h"
#include "daemon/kube/auth/exec_plugin.h"
#include "daemon/kube/auth/rest_config.h"

namespace informerd::daemon {

// Where a cluster, user or context was defined.
struct KubeconfigOrigin {
  std::string file;   // the kubeconfig's path as given
  std::string field;  // "users[0].user"
};

struct KubeconfigCluster {
  KubeconfigOrigin origin;
  std::string server;
  std::string certificate_authority;       // path, resolved
  std::string certificate_authority_data;  // decoded bytes
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string proxy_url;
  // extensions[name=client.authentication.k8s.io/exec].extension as JSON, or empty.
  std::string exec_extension_json;
};

struct KubeconfigUser {
  KubeconfigOrigin origin;
  std::string token;
  std::string token_file;               // path, resolved
  std::string client_certificate;       // path, resolved
  std::string client_certificate_data;  // decoded bytes
  std::string client_key;               // path, resolved
  std::string client_key_data;          // decoded bytes
  // Unvalidated until this user is chosen (kubectl validates only what it uses).
  std::optional<ExecConfig> exec;
  // Keys set on this user that informerd does not implement ("auth-provider", "as", ...).
  std::vector<std::string> unsupported_keys;
};

struct KubeconfigContext {
  KubeconfigOrigin origin;
  std::string cluster;
  std::string user;
};

// One file, or several merged.
struct Kubeconfig {
  // The files that were read, in precedence order.
  std::vector<std::string> files;
  std::string current_context;
  std::map<std::string, KubeconfigCluster> clusters;
  std::map<std::string, KubeconfigUser> users;
  std::map<std::string, KubeconfigContext> contexts;

  // Nothing defined at all: kubectl then falls back to in-cluster configuration.
  bool empty() const {
    return current_context.empty() && clusters.empty() && users.empty() && contexts.empty();
  }
};

// Parses one file's text. `path` names it in messages and is the base of relative paths.
absl::StatusOr<Kubeconfig> ParseKubeconfig(std::string_view yaml_text, const std::string& path);

// Reads one file that must exist (--kubeconfig).
absl::StatusOr<Kubeconfig> LoadKubeconfigFile(const std::string& path);

// Reads the files in precedence order ($KUBECONFIG's list, or ~/.kube/config) and merges them.
// Empty and repeated paths are skipped; missing files are skipped and appended to `missing`
// (if not null). A file that exists but cannot be read or parsed is an error.
absl::StatusOr<Kubeconfig> LoadKubeconfigFiles(const std::vector<std::string>& precedence,
                                               std::vector<std::string>* missing);

struct KubeconfigRestOptions {
  // --context; empty = the kubeconfig's current-context.
  std::string context;
  // Base environment of exec plugins (and their $PATH).
  Environment environment;
  WallClock clock = SystemWallClock();
  WarningHandler on_warning;
  std::chrono::milliseconds exec_timeout = std::chrono::seconds(60);
};

// Resolves the chosen context into a RestConfig: reads the files it references (CA, client
// certificate and key, token file) and checks them; creates the credential source (an exec
// plugin is not run until its first Current()).
absl::StatusOr<RestConfig> RestConfigFromKubeconfig(const Kubeconfig& kubeconfig,
                                                    const KubeconfigRestOptions& options);

}  // namespace informerd::daemon
