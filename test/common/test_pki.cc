#include "test/common/test_pki.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace informerd::daemon::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

[[noreturn]] void Fail(const std::string& what) {
  char text[256] = "no OpenSSL error";
  if (const unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, text, sizeof text);
  }
  ERR_clear_error();
  throw std::runtime_error(what + ": " + text);
}

PkeyPtr NewKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) Fail("EC key generation");
  return key;
}

void AddExtension(X509* certificate, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_nconf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) Fail(std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
  const int added = X509_add_ext(certificate, extension, -1);
  X509_EXTENSION_free(extension);
  if (added == 0) Fail("X509_add_ext");
}

void AddName(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) == 0) {
    Fail(std::string("name entry ") + field);
  }
}

enum class Role { kCa, kServer, kClient };

// A certificate for `key`, signed by `issuer`/`issuer_key` (itself when issuer is null).
X509Ptr NewCertificate(EVP_PKEY* key, const std::string& common_name,
                       const std::vector<std::string>& organizations, X509* issuer,
                       EVP_PKEY* issuer_key, long serial, Role role) {
  X509Ptr certificate(X509_new());
  if (!certificate) Fail("X509_new");
  X509_set_version(certificate.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 24 * 3600);
  X509_set_pubkey(certificate.get(), key);
  X509_NAME* name = X509_get_subject_name(certificate.get());
  for (const std::string& organization : organizations) AddName(name, "O", organization);
  // An empty common name: a subject without CN (a certificate that names no user).
  if (!common_name.empty()) AddName(name, "CN", common_name);
  X509* signer = issuer != nullptr ? issuer : certificate.get();
  X509_set_issuer_name(certificate.get(), X509_get_subject_name(signer));
  switch (role) {
    case Role::kCa:
      AddExtension(certificate.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
      AddExtension(certificate.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
      AddExtension(certificate.get(), signer, NID_subject_key_identifier, "hash");
      break;
    case Role::kServer:
    case Role::kClient:
      AddExtension(certificate.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
      AddExtension(certificate.get(), signer, NID_key_usage, "critical,digitalSignature");
      AddExtension(certificate.get(), signer, NID_ext_key_usage,
                   role == Role::kServer ? "serverAuth" : "clientAuth");
      if (role == Role::kServer) {
        AddExtension(certificate.get(), signer, NID_subject_alt_name,
                     "DNS:localhost,IP:127.0.0.1,IP:::1");
      }
      AddExtension(certificate.get(), signer, NID_authority_key_identifier, "keyid:always");
      break;
  }
  if (X509_sign(certificate.get(), issuer_key, EVP_sha256()) == 0) Fail("X509_sign");
  return certificate;
}

std::string Text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string CertificatePem(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), certificate) == 0) Fail("PEM_write_bio_X509");
  return Text(bio.get());
}

std::string KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 0) {
    Fail("PEM_write_bio_PrivateKey");
  }
  return Text(bio.get());
}

}  // namespace

struct TestCa::Impl {
  PkeyPtr key;
  X509Ptr certificate;
};

TestCa::TestCa(const std::string& common_name) : impl_(std::make_unique<Impl>()) {
  impl_->key = NewKey();
  impl_->certificate = NewCertificate(impl_->key.get(), common_name, {"informerd tests"}, nullptr,
                                      impl_->key.get(), 1, Role::kCa);
  certificate_pem_ = CertificatePem(impl_->certificate.get());
}

TestCa::~TestCa() = default;
TestCa::TestCa(TestCa&&) noexcept = default;
TestCa& TestCa::operator=(TestCa&&) noexcept = default;

KeyAndCertificate TestCa::IssueServer(const std::string& common_name, long serial) const {
  PkeyPtr key = NewKey();
  X509Ptr certificate = NewCertificate(key.get(), common_name, {}, impl_->certificate.get(),
                                       impl_->key.get(), serial, Role::kServer);
  return {CertificatePem(certificate.get()), KeyPem(key.get())};
}

KeyAndCertificate TestCa::IssueClient(const std::string& common_name,
                                      const std::vector<std::string>& organizations) const {
  static std::atomic<long> serial{1000};
  PkeyPtr key = NewKey();
  X509Ptr certificate =
      NewCertificate(key.get(), common_name, organizations, impl_->certificate.get(),
                     impl_->key.get(), ++serial, Role::kClient);
  return {CertificatePem(certificate.get()), KeyPem(key.get())};
}

void ReplaceFile(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".new";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + temporary + " to " + path);
  }
}

}  // namespace informerd::daemon::testing
