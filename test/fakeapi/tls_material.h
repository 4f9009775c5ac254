// TlsMaterial: the certificates the fake apiserver serves HTTPS with: a self-signed CA and a
// server certificate it signed (SAN: localhost, 127.0.0.1, ::1), made at start by the tests' PKI
// (test/common/test_pki.h), or read from PEM files. Clients verify the server with `ca_pem`, as
// they do a cluster's `certificate-authority-data`.
//
// Produced once by FakeApiServer::Start (or the load binary) on the calling thread; immutable.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace informerd::fakeapi {

struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;  // The server certificate.
  std::string key_pem;   // The server's private key.
};

// An EC P-256 CA ("informerd-fakeapi-ca") and a server certificate for localhost, valid for a
// day; Internal if OpenSSL fails.
absl::StatusOr<TlsMaterial> GenerateTlsMaterial();

// Reads the three PEM files; errors name the file.
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const std::string& ca_file,
                                            const std::string& cert_file,
                                            const std::string& key_file);

}  // namespace informerd::fakeapi
