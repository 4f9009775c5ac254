#include "test/fakeapi/tls_material.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::fakeapi {
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

absl::Status OpenSslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return absl::InternalError(fmt::format("{}: {}", what, text));
}

absl::StatusOr<PkeyPtr> NewKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return OpenSslError("EC key generation");
  return key;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
  if (!ext) return OpenSslError(fmt::format("X509 extension {}={}", OBJ_nid2sn(nid), value));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return OpenSslError("X509_add_ext");
  return absl::OkStatus();
}

// A certificate for `subject_key`, signed by `issuer_key` (itself, for the CA).
absl::StatusOr<X509Ptr> NewCertificate(EVP_PKEY* subject_key, const char* common_name,
                                       X509* issuer, EVP_PKEY* issuer_key, long serial,
                                       bool is_ca) {
  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);  // v3.
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  // A minute of slack for clocks, valid for a day.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("informerd tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  absl::Status status;
  if (is_ca) {
    status.Update(AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE"));
    status.Update(AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
    status.Update(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  } else {
    status.Update(AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE"));
    status.Update(AddExtension(cert.get(), signer, NID_key_usage,
                               "critical,digitalSignature,keyEncipherment"));
    status.Update(AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth"));
    status.Update(AddExtension(cert.get(), signer, NID_subject_alt_name,
                               "DNS:localhost,IP:127.0.0.1,IP:::1"));
    status.Update(AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  if (!status.ok()) return status;
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return OpenSslError("X509_sign");
  return cert;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("PEM_write_bio_X509");
  return BioText(bio.get());
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  return BioText(bio.get());
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot read {} file {}", what, path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<TlsMaterial> GenerateTlsMaterial() {
  auto ca_key = NewKey();
  if (!ca_key.ok()) return ca_key.status();
  auto ca = NewCertificate(ca_key->get(), "informerd-fakeapi-ca", nullptr, ca_key->get(), 1, true);
  if (!ca.ok()) return ca.status();
  auto server_key = NewKey();
  if (!server_key.ok()) return server_key.status();
  auto server = NewCertificate(server_key->get(), "localhost", ca->get(), ca_key->get(), 2, false);
  if (!server.ok()) return server.status();
  TlsMaterial material;
  auto ca_pem = CertPem(ca->get());
  auto cert_pem = CertPem(server->get());
  auto key_pem = KeyPem(server_key->get());
  if (!ca_pem.ok()) return ca_pem.status();
  if (!cert_pem.ok()) return cert_pem.status();
  if (!key_pem.ok()) return key_pem.status();
  material.ca_pem = std::move(*ca_pem);
  material.cert_pem = std::move(*cert_pem);
  material.key_pem = std::move(*key_pem);
  return material;
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
