// Specification of the base64 and PEM checks (daemon/kube/auth/pem.*).
#include "daemon/kube/auth/pem.h"

#include <catch2/catch.hpp>
#include <string>

#include "test/common/temp_dir.h"

namespace informerd::daemon {
namespace {

using testing::ReadAll;
using testing::TestData;

TEST_CASE("base64 as Go's StdEncoding: padding required, line breaks skipped") {
  CHECK(DecodeBase64("").value().empty());
  CHECK(DecodeBase64("QQ==").value() == "A");
  CHECK(DecodeBase64("QUI=").value() == "AB");
  CHECK(DecodeBase64("QUJD").value() == "ABC");
  CHECK(DecodeBase64("QUJD\r\nREVG").value() == "ABCDEF");
  for (const char* bad : {"QQ", "QUI", "Q===", "QQ==QQ==", "QR==", "QU J", "QUJ-", "QQ=A"}) {
    INFO(bad);
    CHECK_FALSE(DecodeBase64(bad).ok());
  }
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n < 6; ++n) {
    CHECK(DecodeBase64(EncodeBase64(all_bytes.substr(0, n))).value() == all_bytes.substr(0, n));
  }
  CHECK(DecodeBase64(EncodeBase64(all_bytes)).value() == all_bytes);
}

TEST_CASE("PEM checks: certificates, and a key that belongs to its certificate") {
  const std::string ca = ReadAll(TestData("ca.crt"));
  const std::string cert = ReadAll(TestData("client.crt"));
  CHECK(CheckCertificatesPem(ca).ok());
  CHECK(CheckCertificatesPem(cert + ca).ok());
  CHECK(CheckCertificatesPem("hello").message() == "holds no PEM certificate");
  std::string truncated = ca.substr(0, 100) + ca.substr(ca.size() - 30);
  CHECK_FALSE(CheckCertificatesPem(truncated).ok());

  CHECK(CheckClientKeyPair(cert, ReadAll(TestData("client.key"))).ok());
  CHECK(CheckClientKeyPair(cert, ReadAll(TestData("other.key"))).message() ==
        "the client key does not match the client certificate");
  CHECK(CheckClientKeyPair(cert, cert).message() == "client key: holds no PEM private key");
  CHECK(CheckClientKeyPair("x", ReadAll(TestData("client.key"))).message() ==
        "client certificate: holds no PEM certificate");
}

}  // namespace
}  // namespace informerd::daemon
