// Credentials and CredentialSource: what the apiserver client presents to authenticate, and
// where it comes from at the moment of each request.
//
// A RestConfig (daemon/kube/auth/rest_config.h) holds one CredentialSource, made by the kubeconfig or
// in-cluster loader (daemon/kube/auth/kubeconfig.*, daemon/kube/auth/in_cluster.*). The apiserver client calls
// Current() before each request or connection, and Invalidate() with the credentials the server
// answered 401 to. Sources here: fixed credentials, and a bearer token read from a file that is
// re-read every minute (kubeconfig `tokenFile`, the in-cluster service-account token, which
// kubelet rotates); the exec-plugin source is in daemon/kube/auth/exec_plugin.h.
//
// Threads: every CredentialSource is safe to call from several threads at once; a source that has
// to do I/O does it in the calling thread, under its own lock, so concurrent callers wait for one
// refresh instead of starting several (as client-go's exec authenticator does).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace informerd::daemon {

// Wall-clock time, injected so that token re-reads and exec-credential expiry are tested
// without sleeping. Wall clock rather than steady, because ExecCredential expiry is an
// RFC 3339 timestamp.
using WallClock = std::function<std::chrono::system_clock::time_point()>;
WallClock SystemWallClock();

// Receives degraded-but-working conditions worth a warning in the log (for example: a token file
// could not be re-read and the last good token is still in use). Called in the thread that
// noticed, with the source's lock held: it must not call back into the source.
using WarningHandler = std::function<void(const absl::Status&)>;

struct Credentials {
  // Sent as "Authorization: Bearer <token>" when not empty.
  std::string bearer_token;
  // A PEM chain and its PEM private key for TLS client authentication; both or neither.
  std::string client_cert_pem;
  std::string client_key_pem;
  // When an exec plugin said these stop working; the source refreshes them after it.
  std::optional<std::chrono::system_clock::time_point> expiry;

  bool empty() const { return bearer_token.empty() && client_cert_pem.empty(); }
};

class CredentialSource {
 public:
  virtual ~CredentialSource() = default;

  // The credentials to use now. May block (reading a file, running an exec plugin) and fail (an
  // exec plugin that cannot run); never returns null. The same pointer is returned until the
  // credentials are refreshed, so callers can tell a rotation by the pointer and compare the
  // contents to decide whether it matters (a new client certificate needs new connections).
  virtual absl::StatusOr<std::shared_ptr<const Credentials>> Current() = 0;

  // The server answered 401 to `rejected`: the next Current() fetches fresh credentials, unless
  // they have already changed since `rejected` was handed out (many requests failing at once
  // cause one refresh, not many). A null `rejected` always forces a refresh. Sources whose
  // credentials cannot change ignore it.
  virtual void Invalidate(const std::shared_ptr<const Credentials>& rejected) = 0;
};

// Fixed credentials: a kubeconfig `token` and/or client certificate, or none at all (anonymous,
// or a plain-http server, to which kubectl sends no credentials either).
class StaticCredentialSource : public CredentialSource {
 public:
  explicit StaticCredentialSource(Credentials credentials)
      : credentials_(std::make_shared<const Credentials>(std::move(credentials))) {}

  absl::StatusOr<std::shared_ptr<const Credentials>> Current() override { return credentials_; }
  void Invalidate(const std::shared_ptr<const Credentials>&) override {}

 private:
  const std::shared_ptr<const Credentials> credentials_;
};

// A bearer token kept in a file, as client-go's cachedFileTokenSource reads it
// (k8s.io/client-go/transport/token_source.go): the file is re-read when the token is older
// than `refresh_period` (one minute) and after Invalidate(); surrounding whitespace is trimmed;
// an empty file counts as a failed read. When a re-read fails the last good token stays in use,
// the failure goes to `on_warning`, and the next attempt waits for the next period (or the next
// Invalidate()), so a missing file does not turn every request into a read and a log line.
class FileTokenSource : public CredentialSource {
 public:
  struct Options {
    std::string path;
    // Names the token in messages, e.g. "/home/u/.kube/config: users[0].user.tokenFile".
    std::string description;
    // Used until the file has been read once, and while it cannot be: kubeconfig `token` given
    // beside `tokenFile` (client-go prefers the file's contents whenever it can read them).
    std::string fallback_token;
    // Client certificate presented together with the token, if the kubeconfig user has one.
    std::string client_cert_pem;
    std::string client_key_pem;
    std::chrono::system_clock::duration refresh_period = std::chrono::minutes(1);
    WallClock clock;
    WarningHandler on_warning;
  };

  // Reads the file once. Fails, naming `description` and the file, if it cannot be read and
  // there is no fallback token; with a fallback, the failure is a warning.
  static absl::StatusOr<std::shared_ptr<FileTokenSource>> Create(Options options);

  absl::StatusOr<std::shared_ptr<const Credentials>> Current() override;
  void Invalidate(const std::shared_ptr<const Credentials>& rejected) override;

 private:
  explicit FileTokenSource(Options options) : options_(std::move(options)) {}

  // Reads the file; on success replaces current_, on failure keeps it and warns.
  absl::Status RefreshLocked();

  const Options options_;
  std::mutex mu_;
  std::shared_ptr<const Credentials> current_;       // guarded by mu_
  std::chrono::system_clock::time_point last_read_;  // guarded by mu_: last attempt
  bool invalidated_ = false;                         // guarded by mu_
};

}  // namespace informerd::daemon
