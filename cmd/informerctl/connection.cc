// Resolving the connection flags and opening the channel; see connection.h.
#include "cmd/informerctl/connection.h"

#include <arpa/inet.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "daemon/kube/auth/kubeconfig.h"
#include "fmt/format.h"

namespace informerd::ctl {
namespace {

// The whole file, or an error naming the flag and the file.
absl::StatusOr<std::string> ReadFlagFile(const std::string& flag, const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::FailedPreconditionError(
        fmt::format("--{} {}: {}", flag, path, std::strerror(errno)));
  }
  std::string text;
  char buffer[8192];
  std::size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, read);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    return absl::FailedPreconditionError(
        fmt::format("--{} {}: {}", flag, path, std::strerror(error)));
  }
  return text;
}

// A PEM file must hold at least one block of the expected kind: gRPC would only say, at the
// handshake, that something did not load.
absl::Status CheckPem(const std::string& flag, const std::string& path, const std::string& text,
                      bool private_key) {
  const bool ok = private_key ? absl::StrContains(text, "-----BEGIN ") &&
                                    absl::StrContains(text, "PRIVATE KEY-----")
                              : absl::StrContains(text, "-----BEGIN CERTIFICATE-----");
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format("--{} {}: no PEM {} in it", flag, path,
                                                   private_key ? "private key" : "certificate"));
}

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path,
                                    bool private_key) {
  absl::StatusOr<std::string> text = ReadFlagFile(flag, path);
  if (!text.ok()) return text.status();
  if (absl::Status status = CheckPem(flag, path, *text, private_key); !status.ok()) return status;
  return text;
}

// Visible ASCII only: what an HTTP/2 header value and the apiserver's "Bearer <token>" parsing
// (split on spaces) carry intact.
absl::Status CheckToken(const std::string& source, const std::string& token) {
  if (token.empty())
    return absl::FailedPreconditionError(fmt::format("{}: the token is empty", source));
  for (const char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: the token contains a space, a control character or non-ASCII, which a bearer "
          "token cannot carry",
          source));
    }
  }
  return absl::OkStatus();
}

// The credentials of the kubeconfig context's user.
absl::Status ResolveKubeconfig(const ConnectionFlags& flags, const daemon::Environment& environment,
                               ChannelSettings* settings) {
  // Its errors name --kubeconfig already.
  absl::StatusOr<daemon::Kubeconfig> kubeconfig = daemon::LoadKubeconfigFile(flags.kubeconfig);
  if (!kubeconfig.ok()) return kubeconfig.status();
  // informerctl never connects to the kubeconfig's cluster, so a proxy for it is irrelevant.
  const std::string context_name =
      flags.context.empty() ? kubeconfig->current_context : flags.context;
  if (auto context = kubeconfig->contexts.find(context_name);
      context != kubeconfig->contexts.end()) {
    if (auto cluster = kubeconfig->clusters.find(context->second.cluster);
        cluster != kubeconfig->clusters.end()) {
      cluster->second.proxy_url.clear();
    }
  }
  daemon::KubeconfigRestOptions options;
  options.context = flags.context;
  options.environment = environment;
  options.on_warning = [](const absl::Status& warning) {
    std::fprintf(stderr, "informerctl: warning: %s\n", std::string(warning.message()).c_str());
  };
  absl::StatusOr<daemon::RestConfig> rest = daemon::RestConfigFromKubeconfig(*kubeconfig, options);
  if (!rest.ok()) {
    return absl::Status(rest.status().code(),
                        fmt::format("--kubeconfig: {}", std::string(rest.status().message())));
  }
  absl::StatusOr<std::shared_ptr<const daemon::Credentials>> credentials =
      rest->credentials->Current();
  if (!credentials.ok()) {
    return absl::Status(
        credentials.status().code(),
        fmt::format("--kubeconfig: {}", std::string(credentials.status().message())));
  }
  if ((*credentials)->empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "--kubeconfig: {} has no credentials: no token, token file, client certificate or exec "
        "plugin{}",
        rest->identity,
        rest->server.scheme == "http"
            ? " used (its cluster's server is plain http, to which kubectl sends none)"
            : ""));
  }
  if (!(*credentials)->bearer_token.empty()) {
    if (absl::Status status = CheckToken(fmt::format("--kubeconfig: {}", rest->identity),
                                         (*credentials)->bearer_token);
        !status.ok()) {
      return status;
    }
  }
  settings->bearer_token = (*credentials)->bearer_token;
  settings->client_cert_pem = (*credentials)->client_cert_pem;
  settings->client_key_pem = (*credentials)->client_key_pem;
  return absl::OkStatus();
}

// "host:port" → "host"; "[v6]:port" → "v6"; a bare IPv6 address or host stays as it is.
std::string HostOf(const std::string& authority) {
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    return close == std::string::npos ? authority : authority.substr(1, close - 1);
  }
  const std::size_t colon = authority.find(':');
  if (colon == std::string::npos || authority.find(':', colon + 1) != std::string::npos) {
    return authority;
  }
  return authority.substr(0, colon);
}

bool IsLoopbackHost(const std::string& host) {
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
  }
  return false;
}

// https://HOST[:PORT][/] → HOST:PORT (443 by default); nullopt-like empty string when not https.
absl::StatusOr<std::string> HttpsTarget(const std::string& address) {
  std::string rest = address.substr(std::string("https://").size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find_first_of("/?#@") != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format(
        "--address {}: an https address is https://HOST[:PORT], without a path", address));
  }
  const bool bracketed = rest.front() == '[';
  const std::size_t after_host = bracketed ? rest.find(']') : rest.find(':');
  if (bracketed && after_host == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("--address {}: unclosed [", address));
  }
  const bool has_port = bracketed ? after_host + 1 < rest.size() : after_host != std::string::npos;
  return has_port ? rest : rest + ":443";
}

}  // namespace

bool IsLocalTarget(const std::string& target) {
  if (absl::StartsWith(target, "unix:") || absl::StartsWith(target, "unix-abstract:")) return true;
  std::string rest = target;
  if (absl::StartsWith(rest, "ipv4:") || absl::StartsWith(rest, "ipv6:")) {
    rest = rest.substr(5);
    if (absl::StartsWith(rest, "//")) {
      const std::size_t slash = rest.find('/', 2);
      rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
    }
    if (rest.empty()) return false;
    for (absl::string_view address : absl::StrSplit(rest, ',')) {
      if (!IsLoopbackHost(HostOf(std::string(address)))) return false;
    }
    return true;
  }
  if (absl::StartsWith(rest, "dns:")) {
    rest = rest.substr(4);
    if (absl::StartsWith(rest, "//")) {  // dns://[authority]/host:port
      const std::size_t slash = rest.find('/', 2);
      if (slash == std::string::npos) return false;
      rest = rest.substr(slash + 1);
    }
  }
  return IsLoopbackHost(HostOf(rest));
}

absl::StatusOr<ChannelSettings> ResolveChannelSettings(const std::string& address,
                                                       const ConnectionFlags& flags,
                                                       const daemon::Environment& environment) {
  ChannelSettings settings;
  settings.address = address;
  settings.target = address;
  if (absl::StartsWith(absl::AsciiStrToLower(address), "https://")) {
    absl::StatusOr<std::string> target = HttpsTarget(address);
    if (!target.ok()) return target.status();
    settings.target = *target;
    settings.tls = true;
  }
  settings.insecure_skip_tls_verify = flags.insecure_skip_tls_verify;
  settings.server_name = flags.tls_server_name;
  if (flags.tls || flags.insecure_skip_tls_verify || !flags.ca_file.empty() ||
      !flags.cert_file.empty() || !flags.tls_server_name.empty()) {
    settings.tls = true;
  }
  if (!flags.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("cacert", flags.ca_file, false);
    if (!ca.ok()) return ca.status();
    settings.ca_pem = *std::move(ca);
  }
  if (!flags.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem("cert", flags.cert_file, false);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("key", flags.key_file, true);
    if (!key.ok()) return key.status();
    settings.client_cert_pem = *std::move(cert);
    settings.client_key_pem = *std::move(key);
  }
  if (!flags.token.empty()) {
    if (absl::Status status = CheckToken("--token", flags.token); !status.ok()) return status;
    settings.bearer_token = flags.token;
  } else if (!flags.token_file.empty()) {
    absl::StatusOr<std::string> text = ReadFlagFile("token-file", flags.token_file);
    if (!text.ok()) return text.status();
    const std::string token(absl::StripAsciiWhitespace(*text));
    if (absl::Status status = CheckToken(fmt::format("--token-file {}", flags.token_file), token);
        !status.ok()) {
      return status;
    }
    settings.bearer_token = token;
  } else if (!flags.kubeconfig.empty()) {
    if (absl::Status status = ResolveKubeconfig(flags, environment, &settings); !status.ok()) {
      return status;
    }
  }
  // Only TLS can present a client certificate.
  if (!settings.client_cert_pem.empty()) settings.tls = true;
  if (!settings.bearer_token.empty() && !settings.tls && !IsLocalTarget(settings.target)) {
    return absl::FailedPreconditionError(fmt::format(
        "refusing to send a bearer token in plaintext to {}: use TLS (--cacert FILE, or --tls), "
        "or a loopback address or unix socket (for example through kubectl port-forward)",
        address));
  }
  return settings;
}

std::shared_ptr<grpc::Channel> OpenChannel(const ChannelSettings& settings) {
  grpc::ChannelArguments arguments;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!settings.tls) {
    credentials = grpc::InsecureChannelCredentials();
  } else if (settings.insecure_skip_tls_verify) {
    // No CA, no name check: the handshake accepts any certificate (kubectl's flag of the same
    // name). A client certificate is still presented.
    grpc::experimental::TlsChannelCredentialsOptions options;
    options.set_verify_server_certs(false);
    options.set_check_call_host(false);
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    if (!settings.client_cert_pem.empty()) {
      options.set_certificate_provider(
          std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
              std::vector<grpc::experimental::IdentityKeyCertPair>{
                  {settings.client_key_pem, settings.client_cert_pem}}));
      options.watch_identity_key_cert_pairs();
    }
    credentials = grpc::experimental::TlsCredentials(options);
  } else {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = settings.ca_pem;
    options.pem_private_key = settings.client_key_pem;
    options.pem_cert_chain = settings.client_cert_pem;
    credentials = grpc::SslCredentials(options);
  }
  if (settings.tls && !settings.server_name.empty()) {
    arguments.SetSslTargetNameOverride(settings.server_name);
  }
  return grpc::CreateCustomChannel(settings.target, credentials, arguments);
}

void AddCallCredentials(const ChannelSettings& settings, grpc::ClientContext* context) {
  if (!settings.bearer_token.empty()) {
    context->AddMetadata("authorization", "Bearer " + settings.bearer_token);
  }
}

}  // namespace informerd::ctl
