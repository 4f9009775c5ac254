#include "daemon/service/call_credentials.h"

#include <grpc/grpc_security_constants.h>

#include <string>

#include "daemon/security/x509_identity.h"

namespace informerd::daemon {

CallCredentials ReadCallCredentials(const grpc::ServerContextBase& context) {
  CallCredentials credentials;
  credentials.peer = context.peer();

  const auto& metadata = context.client_metadata();
  const auto [first, last] = metadata.equal_range(kAuthorizationMetadata);
  if (first != last) {
    if (std::next(first) != last) {
      // Which one a proxy or the apiserver would read is anybody's guess: refuse them all.
      credentials.malformed = "the call sent several authorization values; send one";
    } else {
      credentials.authorization = std::string(first->second.data(), first->second.size());
    }
  }

  // Present only on a TLS connection whose client sent a certificate that the handshake
  // verified against the client CAs (gRPC fails the handshake otherwise).
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth) {
    const std::vector<grpc::string_ref> pems =
        auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (!pems.empty()) {
      absl::StatusOr<core::UserInfo> user =
          UserFromCertificatePem(std::string_view(pems.front().data(), pems.front().size()));
      if (user.ok()) {
        credentials.certificate_user = *std::move(user);
      } else {
        credentials.certificate_error = std::string(user.status().message());
      }
    }
  }
  return credentials;
}

}  // namespace informerd::daemon
