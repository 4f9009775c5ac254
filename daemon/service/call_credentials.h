// What a gRPC call presented to prove who is calling, read from its server context for the
// service's authentication (daemon/security/authenticator.h):
//   - the `authorization` metadata (a bearer token, normally), exactly as sent; sending it more
//     than once makes the call's credentials malformed, never "the first one wins";
//   - on an mTLS connection, the client certificate gRPC verified against --client-ca-file (the
//     auth context's x509_pem_cert), mapped to a user as the apiserver maps one (CN = user,
//     O = groups; daemon/security/x509_identity.h). A certificate that names no user is
//     reported in certificate_error: the caller meant it as its identity;
//   - the peer's address, for the audit line.
// Nothing is checked here beyond that: RequestAuthenticator decides.
//
// Threads: on the thread running the RPC's handler, while the context is alive (gRPC builds the
// auth context lazily, without a lock).
#pragma once

#include <grpcpp/grpcpp.h>

#include "daemon/security/authenticator.h"

namespace informerd::daemon {

// The metadata key of a bearer token (gRPC metadata keys are lower case).
inline constexpr char kAuthorizationMetadata[] = "authorization";

CallCredentials ReadCallCredentials(const grpc::ServerContextBase& context);

}  // namespace informerd::daemon
