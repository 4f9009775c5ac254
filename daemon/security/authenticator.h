// Authenticator: who is calling. A gRPC call carries at most two credentials — a bearer token in
// its `authorization` metadata and, on an mTLS connection, a verified client certificate — and
// the daemon's configured authenticators turn them into a core::UserInfo the way kube-apiserver
// does: the certificate's CN is the user and its O fields the groups; a token is reviewed by the
// apiserver (TokenReview). A call with neither is anonymous if that is allowed, else refused.
//
// Implementations: RequestAuthenticator (request_authenticator.h) combines the configured parts;
// tests use fakes. The service calls Authenticate before it resolves anything, so an
// unauthenticated caller learns nothing, not even whether a resource exists.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/user_info.h"

namespace informerd::daemon {

// What one call presented, read from its gRPC context on the handler's thread
// (daemon/service/call_credentials.h).
struct CallCredentials {
  // The `authorization` metadata's value, exactly as sent (it may be malformed); absent when the
  // call had none. More than one value is an error the reader reports in `malformed`.
  std::optional<std::string> authorization;
  // Set when the metadata was present but unusable (several values, not "Bearer <token>"): the
  // reason, without the value.
  std::string malformed;
  // The identity of the connection's verified client certificate (mTLS), when there is one.
  std::optional<core::UserInfo> certificate_user;
  // Set instead when the connection's verified client certificate names no user (no Common
  // Name): why, as x509_identity.h says it. The caller presented it as its identity, so the
  // call is refused rather than treated as anonymous.
  std::string certificate_error;
  // The peer's address, for the audit line ("ipv4:10.0.0.7:51234", "unix:").
  std::string peer;
};

class Authenticator {
 public:
  // The user, or: Unauthenticated (no credentials and anonymous calls not allowed, a malformed
  // header, a token the apiserver rejected — the message says which, never the token), or
  // Unavailable (the TokenReview could not be made: the message says why; never "fail open").
  using Callback = std::function<void(absl::StatusOr<core::UserInfo>)>;

  virtual ~Authenticator() = default;

  // Calls `done` exactly once, inline when the answer is known at once (cached, certificate,
  // anonymous), else later on another thread.
  virtual void Authenticate(const CallCredentials& credentials, Callback done) = 0;
};

}  // namespace informerd::daemon
