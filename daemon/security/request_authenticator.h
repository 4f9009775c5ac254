// RequestAuthenticator: the daemon's Authenticator, from the configured parts, deciding on a
// call's credentials in this order:
//   1. unusable `authorization` metadata (CallCredentials::malformed, or not "Bearer <token>";
//      the scheme is case-insensitive, as the apiserver reads it) → Unauthenticated
//      "malformed authorization metadata: <what is wrong>", never quoting the value;
//   2. a bearer token → the TokenReviewAuthenticator's answer, or, without one
//      (--authentication-token-webhook=false), Unauthenticated "bearer tokens are not accepted
//      (--authentication-token-webhook=false)". A call that sends a token is judged by its token
//      alone: a rejected token is not rescued by a client certificate on the same connection,
//      so a caller never acts as another identity than the one it meant to use;
//   3. a verified client certificate → its user (CallCredentials::certificate_user), or
//      Unauthenticated with CallCredentials::certificate_error when it names no user;
//   4. nothing → system:anonymous in system:unauthenticated when anonymous calls are allowed
//      (--anonymous-auth), else Unauthenticated "no credentials: send a bearer token
//      (authorization: Bearer …) or a client certificate".
//
// Threads: any; see Authenticator. `tokens`, when given, must outlive this object.
#pragma once

#include "daemon/security/authenticator.h"
#include "daemon/security/token_review_authenticator.h"

namespace informerd::daemon {

class RequestAuthenticator final : public Authenticator {
 public:
  // `tokens`: null when bearer tokens are not accepted.
  RequestAuthenticator(TokenReviewAuthenticator* tokens, bool allow_anonymous);

  void Authenticate(const CallCredentials& credentials, Callback done) override;

 private:
  TokenReviewAuthenticator* const tokens_;
  const bool allow_anonymous_;
};

}  // namespace informerd::daemon
