#include "test/fakeapi/tls_material.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "test/common/test_pki.h"

namespace informerd::fakeapi {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot read {} file {}", what, path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<TlsMaterial> GenerateTlsMaterial() {
  try {
    const daemon::testing::TestCa ca("informerd-fakeapi-ca");
    daemon::testing::KeyAndCertificate server = ca.IssueServer("localhost", 2);
    TlsMaterial material;
    material.ca_pem = ca.certificate_pem();
    material.cert_pem = std::move(server.certificate_pem);
    material.key_pem = std::move(server.private_key_pem);
    return material;
  } catch (const std::runtime_error& e) {
    return absl::InternalError(e.what());
  }
}

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const std::string& ca_file,
                                            const std::string& cert_file,
                                            const std::string& key_file) {
  TlsMaterial material;
  auto ca = ReadFile(ca_file, "CA certificate");
  if (!ca.ok()) return ca.status();
  auto cert = ReadFile(cert_file, "server certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(key_file, "server key");
  if (!key.ok()) return key.status();
  material.ca_pem = std::move(*ca);
  material.cert_pem = std::move(*cert);
  material.key_pem = std::move(*key);
  return material;
}

}  // namespace informerd::fakeapi
