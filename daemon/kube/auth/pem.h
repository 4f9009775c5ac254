// PEM and base64 checks for TLS material found in kubeconfigs, service-account directories and
// exec-plugin output.
//
// Loading (daemon/kube/auth/kubeconfig.*, daemon/kube/auth/in_cluster.*, daemon/kube/auth/exec_plugin.*) checks certificates
// and keys as soon as it reads them, so that a wrong file or a truncated -data field is reported
// with the kubeconfig file and field it came from, not later as an anonymous TLS failure. client-go
// does the same checks when it builds its transport (certutil.NewPoolFromBytes,
// tls.X509KeyPair). Pure functions over OpenSSL; any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace informerd::daemon {

// Standard base64 with padding, as Go's encoding/base64.StdEncoding decodes kubeconfig []byte
// fields: '\r' and '\n' are skipped, anything else outside the alphabet is an error.
absl::StatusOr<std::string> DecodeBase64(std::string_view text);
std::string EncodeBase64(std::string_view bytes);

// At least one certificate, and every CERTIFICATE block parses. Messages say what is wrong,
// without a prefix.
absl::Status CheckCertificatesPem(std::string_view pem);

// A certificate chain and the private key of its first certificate.
absl::Status CheckClientKeyPair(std::string_view cert_pem, std::string_view key_pem);

}  // namespace informerd::daemon
