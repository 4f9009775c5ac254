#include "daemon/security/x509_identity.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace informerd::daemon {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};

// The entry's value as UTF-8, or nullopt when OpenSSL cannot convert it.
std::optional<std::string> EntryUtf8(const X509_NAME_ENTRY* entry) {
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  if (length < 0) return std::nullopt;
  std::string value(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return value;
}

}  // namespace

absl::StatusOr<core::UserInfo> UserFromCertificatePem(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("cannot read the client certificate: out of memory");
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::UnauthenticatedError(
        "the client certificate cannot be read: not a PEM-encoded X.509 certificate");
  }
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  core::UserInfo user;
  bool has_common_name = false;
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    if (nid != NID_commonName && nid != NID_organizationName) continue;
    std::optional<std::string> value = EntryUtf8(entry);
    if (!value) {
      ERR_clear_error();
      return absl::UnauthenticatedError(
          "the client certificate's subject holds a name that is not a valid string");
    }
    if (nid == NID_commonName) {
      user.name = *std::move(value);
      has_common_name = true;
    } else {
      user.groups.push_back(*std::move(value));
    }
  }
  if (!has_common_name || user.name.empty()) {
    return absl::UnauthenticatedError(
        "the client certificate names no user: its subject has no Common Name (CN)");
  }
  core::AddAuthenticatedGroup(user);
  return user;
}

}  // namespace informerd::daemon
