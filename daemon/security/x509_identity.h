// The identity a verified client certificate carries, mapped as kube-apiserver maps one
// (--client-ca-file): the subject's Common Name is the user name and each Organization a group,
// plus system:authenticated (core::AddAuthenticatedGroup). No uid and no extra: x509 carries
// neither.
//
// The certificate has already been verified by the TLS handshake against --client-ca-file (gRPC
// hands over only verified peers); this reads the subject and checks nothing else. Pure function
// of its input, any thread.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "core/user_info.h"

namespace informerd::daemon {

// `pem`: a PEM certificate; when there are several, the first, which is the peer's own in the
// chain gRPC's GRPC_X509_PEM_CERT_PROPERTY_NAME gives. Names come out as UTF-8 whatever their
// ASN.1 string type. When the subject holds several CNs the last one is the user, as Go's
// crypto/x509 (and so the apiserver) reads it; the Organizations keep their order.
//
// Errors, Unauthenticated (the certificate was presented as the caller's identity): the text is
// not a PEM certificate, or the subject has no Common Name or an empty one (the apiserver
// refuses such a certificate too: an empty user name is nobody).
absl::StatusOr<core::UserInfo> UserFromCertificatePem(std::string_view pem);

}  // namespace informerd::daemon
