// UserFromCertificatePem with certificates made here with OpenSSL's API: the subject's CN is the
// user, each O a group, plus system:authenticated as the apiserver adds it; names in any ASN.1
// string type come out as UTF-8; what is not a certificate, or names no user, is refused.
#include "daemon/security/x509_identity.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/user_info.h"

namespace informerd::daemon {
namespace {

struct NameEntry {
  int nid;
  std::string value;
  int type = MBSTRING_UTF8;  // or a V_ASN1_* type: `value` is then stored as raw bytes
};

// A self-signed EC certificate whose subject holds `subject`, in that order, as PEM.
std::string CertificatePem(const std::vector<NameEntry>& subject) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  REQUIRE(key);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  REQUIRE(cert);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const NameEntry& entry : subject) {
    REQUIRE(X509_NAME_add_entry_by_NID(name, entry.nid, entry.type,
                                       reinterpret_cast<const unsigned char*>(entry.value.data()),
                                       static_cast<int>(entry.value.size()), -1, 0) == 1);
  }
  X509_set_issuer_name(cert.get(), name);
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) != 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  REQUIRE(PEM_write_bio_X509(bio.get(), cert.get()) == 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

using Groups = std::vector<std::string>;

TEST_CASE("the CN is the user and each O a group, in order, plus system:authenticated") {
  const absl::StatusOr<core::UserInfo> user =
      UserFromCertificatePem(CertificatePem({{NID_countryName, "DE"},
                                             {NID_organizationName, "team-a"},
                                             {NID_organizationalUnitName, "not-a-group"},
                                             {NID_organizationName, "system:masters"},
                                             {NID_commonName, "alice"}}));
  REQUIRE(user.ok());
  CHECK(user->name == "alice");
  CHECK(user->groups == Groups{"team-a", "system:masters", "system:authenticated"});
  CHECK(user->uid.empty());
  CHECK(user->extra.empty());
}

TEST_CASE("a certificate without O is in system:authenticated only") {
  const absl::StatusOr<core::UserInfo> user =
      UserFromCertificatePem(CertificatePem({{NID_commonName, "bob"}}));
  REQUIRE(user.ok());
  CHECK(user->name == "bob");
  CHECK(user->groups == Groups{"system:authenticated"});
}

TEST_CASE("system:authenticated is added as the apiserver adds it") {
  SECTION("not twice") {
    auto user = UserFromCertificatePem(CertificatePem(
        {{NID_organizationName, "system:authenticated"}, {NID_commonName, "alice"}}));
    REQUIRE(user.ok());
    CHECK(user->groups == Groups{"system:authenticated"});
  }
  SECTION("not to a user in system:unauthenticated") {
    auto user = UserFromCertificatePem(CertificatePem(
        {{NID_organizationName, "system:unauthenticated"}, {NID_commonName, "alice"}}));
    REQUIRE(user.ok());
    CHECK(user->groups == Groups{"system:unauthenticated"});
  }
  SECTION("not to system:anonymous") {
    auto user = UserFromCertificatePem(CertificatePem({{NID_commonName, "system:anonymous"}}));
    REQUIRE(user.ok());
    CHECK(user->name == "system:anonymous");
    CHECK(user->groups.empty());
  }
}

TEST_CASE("with several CNs the last one is the user, as Go's crypto/x509 reads the subject") {
  auto user =
      UserFromCertificatePem(CertificatePem({{NID_commonName, "first"}, {NID_commonName, "last"}}));
  REQUIRE(user.ok());
  CHECK(user->name == "last");
}

TEST_CASE("names come out as UTF-8 whatever their ASN.1 string type") {
  // "élise" as a UTF8String, and as a BMPString (UCS-2, big-endian); "team" as a
  // PrintableString.
  auto user = UserFromCertificatePem(
      CertificatePem({{NID_organizationName, std::string("\0t\0e\0a\0m", 8), V_ASN1_BMPSTRING},
                      {NID_organizationName, "team-b", V_ASN1_PRINTABLESTRING},
                      {NID_commonName, std::string("\0\xe9\0l\0i\0s\0e", 10), V_ASN1_BMPSTRING}}));
  REQUIRE(user.ok());
  CHECK(user->name == "\xc3\xa9lise");
  CHECK(user->groups == Groups{"team", "team-b", "system:authenticated"});

  auto utf8 = UserFromCertificatePem(CertificatePem({{NID_commonName, "\xc3\xa9lise"}}));
  REQUIRE(utf8.ok());
  CHECK(utf8->name == "\xc3\xa9lise");
}

TEST_CASE("of a chain, the first certificate is the caller's") {
  const std::string chain = CertificatePem({{NID_commonName, "leaf"}}) +
                            CertificatePem({{NID_commonName, "intermediate"}});
  auto user = UserFromCertificatePem(chain);
  REQUIRE(user.ok());
  CHECK(user->name == "leaf");
}

TEST_CASE("a certificate that names no user is refused") {
  const std::string pem = GENERATE(
      CertificatePem({{NID_organizationName, "team-a"}}),
      CertificatePem({{NID_commonName, "", V_ASN1_UTF8STRING}, {NID_organizationName, "team-a"}}),
      CertificatePem({{NID_commonName, "alice"}, {NID_commonName, "", V_ASN1_UTF8STRING}}));
  CHECK(UserFromCertificatePem(pem).status() ==
        absl::UnauthenticatedError(
            "the client certificate names no user: its subject has no Common Name (CN)"));
}

TEST_CASE("what is not a PEM certificate is refused") {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const std::string key_pem(data, static_cast<std::size_t>(BIO_get_mem_data(bio.get(), &data)));
  const std::string certificate = CertificatePem({{NID_commonName, "alice"}});

  const std::string pem =
      GENERATE_COPY(std::string(""), std::string("hello"), key_pem,
                    certificate.substr(0, certificate.size() / 2),  // truncated
                    std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
  CHECK(UserFromCertificatePem(pem).status() ==
        absl::UnauthenticatedError(
            "the client certificate cannot be read: not a PEM-encoded X.509 certificate"));
}

}  // namespace
}  // namespace informerd::daemon
