// Test PKI: CAs, server certificates (SAN localhost, 127.0.0.1, ::1) and client certificates
// (CN = user, O = groups, as the apiserver reads them), made with OpenSSL's C API when the test
// runs (EC P-256, valid from a minute ago for a day). For the gRPC transport tests, informerctl's
// and the e2e tests over TLS, and the fake apiserver's HTTPS (test/fakeapi/tls_material.h).
// Failures throw std::runtime_error, which Catch reports as the test's failure (the fake
// apiserver turns it into a Status).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace informerd::daemon::testing {

struct KeyAndCertificate {
  std::string certificate_pem;
  std::string private_key_pem;
};

class TestCa {
 public:
  explicit TestCa(const std::string& common_name);
  ~TestCa();
  TestCa(TestCa&&) noexcept;
  TestCa& operator=(TestCa&&) noexcept;

  const std::string& certificate_pem() const { return certificate_pem_; }

  // A server certificate with this subject CN and serial number, and a new key.
  KeyAndCertificate IssueServer(const std::string& common_name, long serial) const;
  // A client certificate (extended key usage clientAuth); an empty `common_name` leaves the CN
  // out of the subject.
  KeyAndCertificate IssueClient(const std::string& common_name,
                                const std::vector<std::string>& organizations) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::string certificate_pem_;
};

// Writes `text` to a temporary file beside `path` and renames it over `path`: readers see the
// old contents or the new, never a mix.
void ReplaceFile(const std::string& path, const std::string& text);

}  // namespace informerd::daemon::testing
