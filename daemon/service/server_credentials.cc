#include "daemon/service/server_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// "--tls-cert-file /etc/tls/tls.crt: <problem>".
absl::Status FileError(const char* flag, const std::string& path, const std::string& problem) {
  return absl::InvalidArgumentError(fmt::format("--{} {}: {}", flag, path, problem));
}

// OpenSSL's reason for the last failure (without its library and function codes), and clears
// the error queue.
std::string OpenSslReason() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown error";
}

absl::StatusOr<std::string> ReadFile(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileError(flag, path, fmt::format("cannot read it: {}", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return FileError(flag, path, fmt::format("cannot read it: {}", std::strerror(errno)));
  if (text.str().empty()) return FileError(flag, path, "the file is empty");
  return text.str();
}

// Every certificate in a PEM file; at least one.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(const char* flag, const std::string& path,
                                                       const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<X509Ptr> certificates;
  ERR_clear_error();
  while (true) {
    X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (certificate) {
      certificates.push_back(std::move(certificate));
      continue;
    }
    const unsigned long code = ERR_peek_last_error();
    const bool no_more =
        ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
    if (no_more && !certificates.empty()) {
      ERR_clear_error();
      return certificates;
    }
    if (no_more) {
      ERR_clear_error();
      return FileError(flag, path,
                       "no PEM certificate in it (expected \"-----BEGIN CERTIFICATE-----\")");
    }
    return FileError(flag, path,
                     fmt::format("certificate {} is not a valid PEM certificate: {}",
                                 certificates.size() + 1, OpenSslReason()));
  }
}

// OpenSSL asks for a passphrase on the terminal when a key is encrypted and no callback is given;
// a daemon has nobody to ask.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<PkeyPtr> ParsePrivateKey(const std::string& path, const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ERR_clear_error();
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    const std::string reason = OpenSslReason();
    if (pem.find("ENCRYPTED") != std::string::npos) {
      return FileError("tls-private-key-file", path,
                       "the key is encrypted; informerd needs it unencrypted");
    }
    return FileError("tls-private-key-file", path,
                     fmt::format("not a PEM private key ({})", reason));
  }
  return key;
}

// "CN=informerd.example, expires 2025-03-01 12:00:00 GMT".
std::string Describe(X509* certificate) {
  std::string name = "no common name";
  char common_name[256];
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, common_name,
                                sizeof common_name) > 0) {
    name = fmt::format("CN={}", common_name);
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  std::string expires = "unknown";
  if (bio && ASN1_TIME_print(bio.get(), X509_get0_notAfter(certificate)) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    expires.assign(data, static_cast<std::size_t>(size));
  }
  return fmt::format("{}, expires {}", name, expires);
}

absl::StatusOr<ServerTransport> MakeTls(const ServerTransportOptions& options) {
  auto cert_pem = ReadFile("tls-cert-file", options.tls_cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  auto certificates = ParseCertificates("tls-cert-file", options.tls_cert_file, *cert_pem);
  if (!certificates.ok()) return certificates.status();
  auto key_pem = ReadFile("tls-private-key-file", options.tls_private_key_file);
  if (!key_pem.ok()) return key_pem.status();
  auto key = ParsePrivateKey(options.tls_private_key_file, *key_pem);
  if (!key.ok()) return key.status();
  X509* leaf = certificates->front().get();
  if (X509_check_private_key(leaf, key->get()) != 1) {
    ERR_clear_error();
    return FileError("tls-private-key-file", options.tls_private_key_file,
                     fmt::format("not the private key of the certificate in --tls-cert-file {}",
                                 options.tls_cert_file));
  }
  std::string clients = "client certificates not requested";
  if (!options.client_ca_file.empty()) {
    auto ca_pem = ReadFile("client-ca-file", options.client_ca_file);
    if (!ca_pem.ok()) return ca_pem.status();
    auto cas = ParseCertificates("client-ca-file", options.client_ca_file, *ca_pem);
    if (!cas.ok()) return cas.status();
    clients = fmt::format("client certificates verified against {} ({} CA certificate(s))",
                          options.client_ca_file, cas->size());
  }

  // The watcher reads the files once now and then every reload_interval on a thread of its own;
  // the credentials hold it for as long as the server uses them.
  const auto interval = static_cast<unsigned int>(options.reload_interval.count());
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.tls_private_key_file, options.tls_cert_file, options.client_ca_file, interval);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (options.client_ca_file.empty()) {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    tls.watch_root_certs();
    // Asked for, verified when sent, not required: a client may use a bearer token instead.
    tls.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  ServerTransport transport;
  transport.credentials = grpc::experimental::TlsServerCredentials(tls);
  if (!transport.credentials) {
    return absl::InternalError("gRPC could not create TLS server credentials");
  }
  transport.description =
      fmt::format("TLS with {} ({}); {}; files re-read every {}s", options.tls_cert_file,
                  Describe(leaf), clients, options.reload_interval.count());
  return transport;
}

}  // namespace

absl::StatusOr<ServerTransport> MakeServerTransport(const ListenAddress& address,
                                                    const ServerTransportOptions& options) {
  if (!options.tls_cert_file.empty() || !options.tls_private_key_file.empty()) {
    return MakeTls(options);
  }
  if (!options.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--client-ca-file needs --tls-cert-file and --tls-private-key-file");
  }
  if (!address.IsLocal() && !options.insecure_allow_plaintext) {
    return absl::InvalidArgumentError(fmt::format(
        "--listen {}: refusing plaintext gRPC on an address other hosts can reach; serve TLS "
        "with --tls-cert-file and --tls-private-key-file, or accept plaintext with "
        "--insecure-allow-plaintext",
        address.text));
  }
  ServerTransport transport;
  transport.credentials = grpc::InsecureServerCredentials();
  transport.exposed_plaintext = !address.IsLocal();
  transport.description = transport.exposed_plaintext
                              ? "plaintext on an address other hosts can reach "
                                "(--insecure-allow-plaintext)"
                              : "plaintext (a local address)";
  return transport;
}

}  // namespace informerd::daemon
