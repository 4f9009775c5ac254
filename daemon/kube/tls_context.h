// TLS for connections to the apiserver: the client-side ssl::context (which servers to trust,
// which client certificate to present) and the per-connection settings (SNI and the name the
// server certificate must carry), with OpenSSL's reasons in handshake errors.
//
// Data flow: the apiserver client (daemon/kube/apiserver_client.*) builds one context from the
// RestConfig's TlsSettings and the Credentials of the moment, and builds another only when the
// client certificate changes (an exec plugin or a kubeconfig reload rotated it). Before each
// handshake it calls PrepareTlsConnection on that connection's SSL object, and turns a failed
// handshake into a message with DescribeTlsHandshakeError. Verification never falls back to
// insecure: only TlsSettings::insecure_skip_tls_verify (kubeconfig insecure-skip-tls-verify)
// turns it off.
//
// Threads: pure functions over OpenSSL objects. A context is immutable once built and may be
// shared by connections on any thread; an SSL object belongs to its connection's strand.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"

namespace informerd::daemon {

// A TLS 1.2+ client context: trusts tls.ca_pem (every certificate in it), or the system's trust
// store when it is empty; verifies the peer unless tls.insecure_skip_tls_verify; presents
// credentials' client certificate chain and key when it has them. Errors (InvalidArgument) say
// which PEM is wrong and why, in OpenSSL's words.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeTlsContext(
    const TlsSettings& tls, const Credentials& credentials);

// The name sent as SNI and checked against the server certificate: tls.server_name (kubeconfig
// tls-server-name) when set, else the URL's host, as client-go does.
std::string TlsVerifyName(const TlsSettings& tls, const ServerUrl& server);

// Per connection, before the handshake. SNI carries `verify_name` unless it is an IP address
// (RFC 6066 forbids literal addresses there). Unless `insecure`, OpenSSL itself checks the
// certificate against `verify_name` during the handshake: its DNS names (no partial wildcards),
// or its IP addresses when `verify_name` is one. This is OpenSSL's X509_VERIFY_PARAM host check
// rather than a verify callback such as asio::ssl::host_name_verification (which Boost 1.74 has)
// because a callback's rejection leaves OpenSSL's verify result at "ok", whereas the built-in
// check reports "hostname mismatch" / "IP address mismatch", which the error message then names.
absl::Status PrepareTlsConnection(SSL* ssl, const std::string& verify_name, bool insecure);

// "TLS handshake with 127.0.0.1:6443 failed: certificate verify failed (unable to get local
// issuer certificate)": `ec` from the handshake, and OpenSSL's certificate verification result
// in parentheses when verification is what failed.
std::string DescribeTlsHandshakeError(const boost::system::error_code& ec, SSL* ssl,
                                      const std::string& authority);

}  // namespace informerd::daemon
