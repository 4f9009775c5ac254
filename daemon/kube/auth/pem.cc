#include "daemon/kube/auth/pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "fmt/format.h"

namespace informerd::daemon {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

BioPtr MemoryBio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Counts the certificates in `pem`; an error if a CERTIFICATE block does not parse.
absl::StatusOr<int> CountCertificates(std::string_view pem) {
  BioPtr bio = MemoryBio(pem);
  int count = 0;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert) {
      ++count;
      continue;
    }
    const unsigned long error = ERR_peek_last_error();
    ERR_clear_error();
    // "No start line" just means no further CERTIFICATE block: the normal end.
    if (error == 0 || ERR_GET_REASON(error) == PEM_R_NO_START_LINE) break;
    return absl::InvalidArgumentError(
        fmt::format("certificate {} does not parse ({})", count + 1,
                    ERR_reason_error_string(error) ? ERR_reason_error_string(error) : "bad PEM"));
  }
  return count;
}

}  // namespace

absl::StatusOr<std::string> DecodeBase64(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t accumulator = 0;
  int bits = 0;
  std::size_t symbols = 0;  // alphabet characters and '=' seen, for the padding rule
  int padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      ++symbols;
      continue;
    }
    const int value = Base64Value(c);
    if (value < 0 || padding > 0) {
      return absl::InvalidArgumentError(
          fmt::format("not valid base64 (unexpected character at offset {})", i));
    }
    ++symbols;
    accumulator = (accumulator << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((accumulator >> bits) & 0xff));
    }
  }
  // Padded groups of four, at most two '=', and no stray bits: "QQ==" but not "QQ" or "QR==".
  if (symbols % 4 != 0 || padding > 2 || (padding > 0 && bits / 2 != padding) ||
      (accumulator & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("not valid base64 (bad length or padding)");
  }
  return out;
}

std::string EncodeBase64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

absl::Status CheckCertificatesPem(std::string_view pem) {
  absl::StatusOr<int> count = CountCertificates(pem);
  if (!count.ok()) return count.status();
  if (*count == 0) return absl::InvalidArgumentError("holds no PEM certificate");
  return absl::OkStatus();
}

absl::Status CheckClientKeyPair(std::string_view cert_pem, std::string_view key_pem) {
  if (absl::Status certs = CheckCertificatesPem(cert_pem); !certs.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("client certificate: {}", std::string(certs.message())));
  }
  BioPtr cert_bio = MemoryBio(cert_pem);
  X509Ptr leaf(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  BioPtr key_bio = MemoryBio(key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) return absl::InvalidArgumentError("client key: holds no PEM private key");
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the client key does not match the client certificate");
  }
  return absl::OkStatus();
}

}  // namespace informerd::daemon
