// Server credentials: how the gRPC port is secured, decided once at start-up from the flags.
//
//   - TLS (--tls-cert-file and --tls-private-key-file): gRPC's TLS server credentials with a file
//     watcher that re-reads both files (and the client CA) every `reload_interval`. A change
//     applies to connections made after it; open connections, and the streams on them, keep the
//     certificate they were made with. Rotate by replacing the files atomically, as Kubernetes
//     does for a mounted Secret: a key and certificate that do not match, read between two
//     writes, fail new handshakes until the next reload.
//   - With --client-ca-file: clients are asked for a certificate. One signed by a CA in that file
//     is verified and becomes visible to the service in the call's auth context
//     (x509_pem_cert, x509_common_name); one signed by any other CA fails the handshake; a
//     client without one connects all the same (it may authenticate with a bearer token).
//   - Plaintext otherwise, allowed only where nobody else can listen in: a loopback address or a
//     unix socket, unless `insecure_allow_plaintext`.
//
// The files are checked here (they exist, parse, and the key is the certificate's), because gRPC's
// watcher only logs a problem and then fails every handshake. The checks name the flag, the file
// and what is wrong, on one line.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/listen_address.h"

namespace informerd::daemon {

struct ServerTransportOptions {
  std::string tls_cert_file;         // PEM certificate chain, the server's first
  std::string tls_private_key_file;  // PEM private key (unencrypted)
  std::string client_ca_file;        // PEM CA certificates; empty: no client certificates
  std::chrono::seconds reload_interval{60};
  bool insecure_allow_plaintext = false;
};

struct ServerTransport {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // For the log: "plaintext (a local address)", or "TLS with FILE (CN=..., expires ...); ...".
  std::string description;
  // Plaintext on an address other hosts can reach (--insecure-allow-plaintext): worth a warning.
  bool exposed_plaintext = false;
};

// InvalidArgument for plaintext on a reachable TCP address (naming the address and the two ways
// out) and for a TLS file that is missing, unreadable or not what it should be.
absl::StatusOr<ServerTransport> MakeServerTransport(const ListenAddress& address,
                                                    const ServerTransportOptions& options);

}  // namespace informerd::daemon
