// Connection: how informerctl reaches informerd and who it is to it, resolved from the
// connection flags (command_line.h) at run time, once per invocation, before any call.
//
// Resolving reads every file the flags name (CA, client certificate and key, token file,
// kubeconfig) and, for --kubeconfig, resolves the context's user as kubectl does
// (daemon/kube/auth/kubeconfig.h): its token, token file, client certificate, or exec plugin
// (run once, here, without a terminal). The kubeconfig's cluster is only what the exec plugin is
// told about: informerd is a different server from the apiserver, always at --address.
//
// The rules, in the order they are applied:
//   - TLS when --tls, --cacert, --cert, --insecure-skip-tls-verify or --tls-server-name is given,
//     when the address is https://HOST[:PORT] (a gRPC target HOST:PORT, port 443 by default), or
//     when the credentials include a client certificate (which only TLS can present); plaintext
//     otherwise. Without --cacert, TLS trusts gRPC's default roots (the system's, or
//     $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH).
//   - A bearer token goes in the "authorization: Bearer <token>" metadata of every call. It is
//     refused over plaintext unless the address is a unix socket or loopback (localhost,
//     127.0.0.0/8, ::1), the places where informerd itself serves plaintext: anyone on the network
//     could otherwise read a credential that often works against the apiserver too (kubectl
//     likewise sends no credentials to an http:// server).
//   - A token must be visible ASCII (what an HTTP header and the apiserver's bearer token parser
//     carry); a token file's surrounding whitespace is dropped, as client-go does.
// Errors are one line naming the flag and file (or the kubeconfig's file and field) and what is
// wrong; they never contain a token.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cmd/informerctl/command_line.h"
#include "daemon/kube/auth/environment.h"

namespace informerd::ctl {

struct ChannelSettings {
  // The address as the user gave it, for messages.
  std::string address;
  // The gRPC target to dial (an https:// address without its scheme).
  std::string target;
  bool tls = false;
  // PEM CAs to trust; empty = gRPC's default roots. Unused with insecure_skip_tls_verify.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Overrides the name informerd's certificate is checked against (and the SNI sent).
  std::string server_name;
  // The client certificate (chain) and key, both PEM, or both empty.
  std::string client_cert_pem;
  std::string client_key_pem;
  // Empty: no authorization metadata.
  std::string bearer_token;
};

// `environment` is the base environment of a kubeconfig's exec plugin (the process's own).
absl::StatusOr<ChannelSettings> ResolveChannelSettings(const std::string& address,
                                                       const ConnectionFlags& flags,
                                                       const daemon::Environment& environment);

// Whether a gRPC target names this machine only: unix: and unix-abstract: sockets, localhost,
// 127.0.0.0/8 and ::1 (with or without dns:, ipv4:, ipv6: schemes; every address of a list).
bool IsLocalTarget(const std::string& target);

std::shared_ptr<grpc::Channel> OpenChannel(const ChannelSettings& settings);

// Adds the call's credentials (the bearer token, if any) to `context`.
void AddCallCredentials(const ChannelSettings& settings, grpc::ClientContext* context);

}  // namespace informerd::ctl
