#include "daemon/kube/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <exception>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

namespace ssl = boost::asio::ssl;

bool IsIpAddress(const std::string& name) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  return !ec;
}

// OpenSSL's reason for an ssl-category error code, without Boost's decoration.
std::string SslReason(const boost::system::error_code& ec) {
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (reason != nullptr) return reason;
  }
  return ec.message();
}

}  // namespace

absl::StatusOr<std::shared_ptr<ssl::context>> MakeTlsContext(const TlsSettings& tls,
                                                             const Credentials& credentials) {
  if (tls.insecure_skip_tls_verify && !tls.ca_pem.empty()) {
    // client-go refuses this combination too: a CA given and ignored is surely a mistake.
    return absl::InvalidArgumentError(
        "insecure-skip-tls-verify and a certificate authority cannot both be set");
  }
  std::shared_ptr<ssl::context> context;
  try {
    // Throws only if OpenSSL cannot allocate a context; nothing else here throws (error_code
    // overloads throughout).
    context = std::make_shared<ssl::context>(ssl::context::tls_client);
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format("cannot create a TLS context: {}", e.what()));
  }
  // Go's crypto/tls client, which kubectl uses, speaks TLS 1.2 and newer.
  if (SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1) {
    return absl::InternalError("cannot require TLS 1.2 or newer");
  }
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
  if (tls.insecure_skip_tls_verify) {
    context->set_verify_mode(ssl::verify_none, ec);
  } else {
    if (tls.ca_pem.empty()) {
      context->set_default_verify_paths(ec);
      if (ec) {
        return absl::InvalidArgumentError(
            fmt::format("cannot load the system's trusted certificates: {}", SslReason(ec)));
      }
    } else {
      context->add_certificate_authority(boost::asio::buffer(tls.ca_pem), ec);
      if (ec) {
        return absl::InvalidArgumentError(
            fmt::format("the certificate authority is not valid PEM: {}", SslReason(ec)));
      }
    }
    context->set_verify_mode(ssl::verify_peer, ec);
  }
  if (ec) return absl::InternalError(fmt::format("cannot set the verify mode: {}", ec.message()));

  if (credentials.client_cert_pem.empty() != credentials.client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs its private key, and a private key its certificate");
  }
  if (!credentials.client_cert_pem.empty()) {
    context->use_certificate_chain(boost::asio::buffer(credentials.client_cert_pem), ec);
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("the client certificate is not valid PEM: {}", SslReason(ec)));
    }
    context->use_private_key(boost::asio::buffer(credentials.client_key_pem), ssl::context::pem,
                             ec);
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("the client key is not valid PEM: {}", SslReason(ec)));
    }
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError("the client key does not belong to the client certificate");
    }
  }
  return context;
}

std::string TlsVerifyName(const TlsSettings& tls, const ServerUrl& server) {
  return tls.server_name.empty() ? server.host : tls.server_name;
}

absl::Status PrepareTlsConnection(SSL* ssl, const std::string& verify_name, bool insecure) {
  const bool ip = IsIpAddress(verify_name);
  if (!ip && SSL_set_tlsext_host_name(ssl, verify_name.c_str()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        fmt::format("\"{}\" cannot be sent as the TLS server name (SNI)", verify_name));
  }
  if (insecure) return absl::OkStatus();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, verify_name.c_str())
                     : X509_VERIFY_PARAM_set1_host(param, verify_name.c_str(), 0);
  if (set != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        fmt::format("\"{}\" cannot be checked against a server certificate", verify_name));
  }
  return absl::OkStatus();
}

std::string DescribeTlsHandshakeError(const boost::system::error_code& ec, SSL* ssl,
                                      const std::string& authority) {
  std::string reason = SslReason(ec);
  if (ec == ssl::error::stream_truncated || ec == boost::asio::error::eof) {
    reason = "the server closed the connection during the handshake";
  }
  const long verify = ssl == nullptr ? X509_V_OK : SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    return fmt::format("TLS handshake with {} failed: {} ({})", authority, reason,
                       X509_verify_cert_error_string(verify));
  }
  return fmt::format("TLS handshake with {} failed: {}", authority, reason);
}

}  // namespace informerd::daemon
