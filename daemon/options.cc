#include "daemon/options.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "daemon/config.h"
#include "daemon/listen_address.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace po = boost::program_options;
namespace {

// host:port with a numeric port up to 65535 (the host is checked when it is bound).
bool IsHostPort(const std::string& address) {
  const auto colon = address.rfind(':');
  return colon != std::string::npos && colon != 0 && colon + 1 != address.size() &&
         address.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
         address.size() - colon - 1 <= 5 && std::stoul(address.substr(colon + 1)) <= 65535;
}

// The longest duration flag: a day, as for the configuration's durations.
constexpr std::chrono::hours kMaxDuration{24};

// "true" or "false" (a bare --flag means true), into `out`.
absl::Status ParseBool(const char* flag, const std::string& text, bool* out) {
  if (text == "true") {
    *out = true;
  } else if (text == "false") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(fmt::format("--{}: \"{}\" is not true or false", flag, text));
  }
  return absl::OkStatus();
}

// A Go-style duration ("30s", "5m", "1h30m"; 0 allowed) up to a day, into `out`.
absl::Status ParseDurationFlag(const char* flag, const std::string& text,
                               std::chrono::milliseconds* out) {
  const std::optional<std::chrono::milliseconds> value = ParseDuration(text);
  if (!value || *value > kMaxDuration) {
    return absl::InvalidArgumentError(
        fmt::format("--{}: \"{}\" is not a duration such as 30s, 5m or 1h30m (units h, m, s, "
                    "ms), at most 24h",
                    flag, text));
  }
  *out = *value;
  return absl::OkStatus();
}

// The largest count flag: far beyond any limit that would still protect the daemon.
constexpr std::size_t kMaxCount = 1000000000;

// A decimal count from `minimum` to kMaxCount, into `out`.
absl::Status ParseCountFlag(const char* flag, const std::string& text, std::size_t minimum,
                            std::size_t* out) {
  const bool digits = !text.empty() && text.size() <= 10 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  const std::size_t value = digits ? std::stoull(text) : 0;
  if (!digits || value < minimum || value > kMaxCount) {
    return absl::InvalidArgumentError(fmt::format(
        "--{}: \"{}\" is not a whole number from {} to {}", flag, text, minimum, kMaxCount));
  }
  *out = value;
  return absl::OkStatus();
}

// An octal file mode such as 0660 or 660 (permission bits only).
std::optional<unsigned> ParseFileMode(const std::string& text) {
  if (text.empty() || text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos) {
    return std::nullopt;
  }
  const unsigned mode = static_cast<unsigned>(std::stoul(text, nullptr, 8));
  if (mode > 0777) return std::nullopt;
  return mode;
}

// The transport and access-control flags as given, checked once the command line is read.
struct FlagText {
  std::string max_list_response_bytes = std::to_string(core::kDefaultMaxListResponseBytes);
  std::string max_list_response_objects = std::to_string(core::kDefaultMaxListResponseObjects);
  std::string tls_reload_interval = "60s";
  std::string listen_socket_mode = "0660";
  bool listen_socket_mode_given = false;
  std::string insecure_allow_plaintext = "false";
  std::string token_webhook = "true";
  std::string token_webhook_cache_ttl = "2m";
  std::string token_audiences;
  std::string anonymous_auth;      // empty: the authorization mode's default
  std::string authorization_mode;  // empty: by the listen address
  std::string authorized_ttl = "5m";
  std::string unauthorized_ttl = "30s";
  std::string audit_log = "true";
  std::string subscribe_sync_wait = "30s";
  std::string subscribe_future_version_wait = "3s";
  std::string metrics_max_connections = "64";
  std::string probe_max_connections = "16";
  std::string ingest_threads;  // empty: DefaultIngestThreads()
  std::string http_header_timeout = "5s";
  std::string http_idle_timeout = "2m";
  std::string max_subscriptions = std::to_string(core::kDefaultMaxSubscriptions);
  std::string max_subscriptions_per_user = std::to_string(core::kDefaultMaxSubscriptionsPerUser);
  std::string max_selector_bytes = std::to_string(core::kDefaultMaxSelectorBytes);
  std::string max_selector_requirements = std::to_string(core::kDefaultMaxSelectorRequirements);
  std::string rpc_threads = std::to_string(core::kDefaultRpcThreads);
  std::string rpc_nice = "10";
  std::string grpc_max_connections = "1000";
  std::string grpc_max_calls_per_connection = "200";
  std::string grpc_max_concurrent_streams = "100";
  std::string grpc_max_connection_age = "30m";
  std::string grpc_max_connection_age_grace = "5m";
  std::string grpc_keepalive_min_time = "10s";
  std::string grpc_handshake_timeout = "20s";
};

// --grpc-*: the gRPC port's transport limits.
absl::Status ApplyGrpcLimitFlags(const FlagText& text, Options& options) {
  if (absl::Status parsed = ParseCountFlag("grpc-max-connections", text.grpc_max_connections, 1,
                                           &options.grpc_max_connections);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed =
          ParseCountFlag("grpc-max-concurrent-streams", text.grpc_max_concurrent_streams, 1,
                         &options.grpc_max_concurrent_streams);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed =
          ParseCountFlag("grpc-max-calls-per-connection", text.grpc_max_calls_per_connection, 0,
                         &options.grpc_max_calls_per_connection);
      !parsed.ok()) {
    return parsed;
  }
  if (options.grpc_max_calls_per_connection != 0 &&
      options.grpc_max_calls_per_connection < options.grpc_max_concurrent_streams) {
    return absl::InvalidArgumentError(fmt::format(
        "--grpc-max-calls-per-connection: {} is below --grpc-max-concurrent-streams ({}): a "
        "client using the streams it is allowed would be disconnected (0 turns the check off)",
        options.grpc_max_calls_per_connection, options.grpc_max_concurrent_streams));
  }
  for (const auto& [flag, given, out] :
       {std::tuple{"grpc-max-connection-age", &text.grpc_max_connection_age,
                   &options.grpc_max_connection_age},
        std::tuple{"grpc-max-connection-age-grace", &text.grpc_max_connection_age_grace,
                   &options.grpc_max_connection_age_grace},
        std::tuple{"grpc-keepalive-min-time", &text.grpc_keepalive_min_time,
                   &options.grpc_keepalive_min_time},
        std::tuple{"grpc-handshake-timeout", &text.grpc_handshake_timeout,
                   &options.grpc_handshake_timeout}}) {
    if (absl::Status parsed = ParseDurationFlag(flag, *given, out); !parsed.ok()) return parsed;
  }
  for (const auto& [flag, given, value] :
       {std::tuple{"grpc-keepalive-min-time", &text.grpc_keepalive_min_time,
                   options.grpc_keepalive_min_time},
        std::tuple{"grpc-handshake-timeout", &text.grpc_handshake_timeout,
                   options.grpc_handshake_timeout}}) {
    if (value <= std::chrono::milliseconds::zero()) {
      return absl::InvalidArgumentError(
          fmt::format("--{}: \"{}\" must be more than 0s", flag, *given));
    }
  }
  return absl::OkStatus();
}

// --max-subscriptions*, --max-selector-*.
absl::Status ApplyClientLimitFlags(const FlagText& text, Options& options) {
  if (absl::Status parsed = ParseCountFlag("max-subscriptions", text.max_subscriptions, 0,
                                           &options.max_subscriptions);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed =
          ParseCountFlag("max-subscriptions-per-user", text.max_subscriptions_per_user, 0,
                         &options.max_subscriptions_per_user);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed = ParseCountFlag("max-selector-bytes", text.max_selector_bytes, 1,
                                           &options.max_selector_bytes);
      !parsed.ok()) {
    return parsed;
  }
  return ParseCountFlag("max-selector-requirements", text.max_selector_requirements, 1,
                        &options.max_selector_requirements);
}

// The most --rpc-threads: far more than the cores of any node informerd runs on.
constexpr std::size_t kMaxRpcThreads = 256;

// --rpc-threads.
absl::Status ApplyRpcThreadsFlag(const FlagText& text, Options& options) {
  std::size_t threads = 0;
  if (!ParseCountFlag("rpc-threads", text.rpc_threads, 1, &threads).ok() ||
      threads > kMaxRpcThreads) {
    return absl::InvalidArgumentError(
        fmt::format("--rpc-threads: \"{}\" is not a whole number from 1 to {}", text.rpc_threads,
                    kMaxRpcThreads));
  }
  options.rpc_threads = threads;
  std::size_t nice = 0;
  if (!ParseCountFlag("rpc-nice", text.rpc_nice, 0, &nice).ok() || nice > 19) {
    return absl::InvalidArgumentError(
        fmt::format("--rpc-nice: \"{}\" is not a whole number from 0 to 19", text.rpc_nice));
  }
  options.rpc_nice = static_cast<int>(nice);
  return absl::OkStatus();
}

// The most --ingest-threads: a thread per core of a large node, far more than informers need.
constexpr std::size_t kMaxIngestThreads = 64;

// --ingest-threads.
absl::Status ApplyIngestThreadsFlag(const FlagText& text, Options& options) {
  if (text.ingest_threads.empty()) return absl::OkStatus();
  std::size_t threads = 0;
  if (!ParseCountFlag("ingest-threads", text.ingest_threads, 1, &threads).ok() ||
      threads > kMaxIngestThreads) {
    return absl::InvalidArgumentError(
        fmt::format("--ingest-threads: \"{}\" is not a whole number from 1 to {}",
                    text.ingest_threads, kMaxIngestThreads));
  }
  options.ingest_threads = threads;
  return absl::OkStatus();
}

// --probe-listen, and the HTTP ports' limits: --*-max-connections, --http-*-timeout.
absl::Status ApplyHttpFlags(const FlagText& text, Options& options) {
  if (options.probe_listen_address == "none") options.probe_listen_address.clear();
  if (!options.probe_listen_address.empty() && !IsHostPort(options.probe_listen_address)) {
    return absl::InvalidArgumentError(
        fmt::format("--probe-listen: \"{}\" is not HOST:PORT or none (for example 0.0.0.0:9091)",
                    options.probe_listen_address));
  }
  if (!options.probe_listen_address.empty() &&
      options.probe_listen_address == options.metrics_listen_address &&
      options.probe_listen_address.substr(options.probe_listen_address.rfind(':')) != ":0") {
    return absl::InvalidArgumentError(fmt::format(
        "--probe-listen and --metrics-listen are both {}: the probe port needs a port of its own "
        "(or --probe-listen none)",
        options.probe_listen_address));
  }
  if (absl::Status parsed = ParseCountFlag("metrics-max-connections", text.metrics_max_connections,
                                           1, &options.metrics_max_connections);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed = ParseCountFlag("probe-max-connections", text.probe_max_connections, 1,
                                           &options.probe_max_connections);
      !parsed.ok()) {
    return parsed;
  }
  const auto positive_duration = [](const char* flag, const std::string& given,
                                    std::chrono::milliseconds* out) {
    if (absl::Status parsed = ParseDurationFlag(flag, given, out); !parsed.ok()) return parsed;
    if (*out <= std::chrono::milliseconds::zero()) {
      return absl::InvalidArgumentError(
          fmt::format("--{}: \"{}\" must be more than 0s", flag, given));
    }
    return absl::OkStatus();
  };
  if (absl::Status parsed = positive_duration("http-header-timeout", text.http_header_timeout,
                                              &options.http_header_timeout);
      !parsed.ok()) {
    return parsed;
  }
  return positive_duration("http-idle-timeout", text.http_idle_timeout, &options.http_idle_timeout);
}

// --max-list-response-*.
absl::Status ApplyListFlags(const FlagText& text, Options& options) {
  if (absl::Status parsed = ParseCountFlag("max-list-response-bytes", text.max_list_response_bytes,
                                           1, &options.max_list_response_bytes);
      !parsed.ok()) {
    return parsed;
  }
  return ParseCountFlag("max-list-response-objects", text.max_list_response_objects, 1,
                        &options.max_list_response_objects);
}

// --tls-*, --client-ca-file, --listen-socket-mode, --insecure-allow-plaintext.
absl::Status ApplyTransportFlags(const FlagText& text, const ListenAddress& listen,
                                 Options& options) {
  if (options.tls_cert_file.empty() != options.tls_private_key_file.empty()) {
    return absl::InvalidArgumentError(
        options.tls_cert_file.empty()
            ? "--tls-private-key-file needs --tls-cert-file (the certificate it is the key of)"
            : "--tls-cert-file needs --tls-private-key-file (the certificate's private key)");
  }
  const bool tls = !options.tls_cert_file.empty();
  if (!options.client_ca_file.empty() && !tls) {
    return absl::InvalidArgumentError(
        "--client-ca-file needs --tls-cert-file and --tls-private-key-file: client certificates "
        "are only sent over TLS");
  }
  std::chrono::milliseconds reload{0};
  if (absl::Status parsed =
          ParseDurationFlag("tls-reload-interval", text.tls_reload_interval, &reload);
      !parsed.ok()) {
    return parsed;
  }
  if (reload < std::chrono::seconds(1) || reload % std::chrono::seconds(1) != reload.zero()) {
    return absl::InvalidArgumentError(
        fmt::format("--tls-reload-interval: \"{}\" must be a whole number of seconds, at least 1s",
                    text.tls_reload_interval));
  }
  options.tls_reload_interval = std::chrono::duration_cast<std::chrono::seconds>(reload);
  const std::optional<unsigned> mode = ParseFileMode(text.listen_socket_mode);
  if (!mode) {
    return absl::InvalidArgumentError(
        fmt::format("--listen-socket-mode: \"{}\" is not an octal file mode such as 0660",
                    text.listen_socket_mode));
  }
  if (text.listen_socket_mode_given && !listen.is_unix()) {
    return absl::InvalidArgumentError(
        fmt::format("--listen-socket-mode applies to a unix socket (--listen unix:PATH), not to "
                    "\"{}\"",
                    options.listen_address));
  }
  options.listen_socket_mode = *mode;
  if (absl::Status parsed = ParseBool("insecure-allow-plaintext", text.insecure_allow_plaintext,
                                      &options.insecure_allow_plaintext);
      !parsed.ok()) {
    return parsed;
  }
  if (options.insecure_allow_plaintext && tls) {
    return absl::InvalidArgumentError(
        "--insecure-allow-plaintext contradicts --tls-cert-file: the gRPC port serves TLS");
  }
  return absl::OkStatus();
}

// --authentication-*, --anonymous-auth, --authorization-*, --audit-log.
absl::Status ApplyAccessFlags(const FlagText& text, const ListenAddress& listen, Options& options) {
  if (absl::Status parsed = ParseBool("authentication-token-webhook", text.token_webhook,
                                      &options.authentication_token_webhook);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed =
          ParseDurationFlag("authentication-token-webhook-cache-ttl", text.token_webhook_cache_ttl,
                            &options.authentication_token_webhook_cache_ttl);
      !parsed.ok()) {
    return parsed;
  }
  if (!text.token_audiences.empty()) {
    for (absl::string_view audience : absl::StrSplit(text.token_audiences, ',')) {
      if (audience.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("--authentication-token-audiences: \"{}\" has an empty audience",
                        text.token_audiences));
      }
      options.authentication_token_audiences.emplace_back(audience);
    }
  }
  if (text.authorization_mode.empty()) {
    options.authorization_mode =
        listen.IsLocal() ? AuthorizationMode::kAlwaysAllow : AuthorizationMode::kWebhook;
  } else if (text.authorization_mode == "AlwaysAllow") {
    options.authorization_mode = AuthorizationMode::kAlwaysAllow;
  } else if (text.authorization_mode == "Webhook") {
    options.authorization_mode = AuthorizationMode::kWebhook;
  } else {
    return absl::InvalidArgumentError(
        fmt::format("--authorization-mode: \"{}\" is not one of AlwaysAllow, Webhook",
                    text.authorization_mode));
  }
  options.anonymous_auth = options.authorization_mode == AuthorizationMode::kAlwaysAllow;
  if (!text.anonymous_auth.empty()) {
    if (absl::Status parsed =
            ParseBool("anonymous-auth", text.anonymous_auth, &options.anonymous_auth);
        !parsed.ok()) {
      return parsed;
    }
  }
  if (absl::Status parsed =
          ParseDurationFlag("authorization-webhook-cache-authorized-ttl", text.authorized_ttl,
                            &options.authorization_webhook_cache_authorized_ttl);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed =
          ParseDurationFlag("authorization-webhook-cache-unauthorized-ttl", text.unauthorized_ttl,
                            &options.authorization_webhook_cache_unauthorized_ttl);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed = ParseBool("audit-log", text.audit_log, &options.audit_log);
      !parsed.ok()) {
    return parsed;
  }
  // With no way to authenticate, Webhook authorization would refuse every call.
  if (options.authorization_mode == AuthorizationMode::kWebhook &&
      !options.authentication_token_webhook && options.client_ca_file.empty() &&
      !options.anonymous_auth) {
    return absl::InvalidArgumentError(
        "--authorization-mode=Webhook with --authentication-token-webhook=false, no "
        "--client-ca-file and no --anonymous-auth would refuse every call: enable one of them");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Options> ParseOptions(int argc, const char* const* argv) {
  Options options;
  std::string log_format = "text";
  FlagText text;
  po::options_description described(
      "informerd: one shared Kubernetes watch per resource, served over gRPC.\n\n"
      "Usage: informerd --config FILE [flags]\n\nFlags");
  // clang-format off
  described.add_options()
      ("config", po::value(&options.config_path)->value_name("FILE"),
       "YAML file listing the resources to inform on (required; see deploy/config/)")
      ("kubeconfig", po::value(&options.kubeconfig_path)->value_name("FILE"),
       "kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster config)")
      ("context", po::value(&options.context)->value_name("NAME"),
       "kubeconfig context (default: its current-context)")
      ("listen", po::value(&options.listen_address)->value_name("HOST:PORT"),
       "gRPC listen address: HOST:PORT (port 0 picks a free port) or a unix socket, "
       "unix:PATH or unix:///ABS/PATH (default 127.0.0.1:50051)")
      ("metrics-listen", po::value(&options.metrics_listen_address)->value_name("HOST:PORT"),
       "address for /metrics, /healthz and /readyz (default 0.0.0.0:9090; \"none\" turns it off)")
      ("probe-listen", po::value(&options.probe_listen_address)->value_name("HOST:PORT"),
       "address for the kubelet's probes only, /healthz and /readyz, with connections of their "
       "own (default 0.0.0.0:9091; \"none\" turns it off)")
      ("metrics-max-connections", po::value(&text.metrics_max_connections)->value_name("N"),
       "connections open at once on the metrics port; at the limit a new one closes the one "
       "waiting longest for its client (default 64)")
      ("probe-max-connections", po::value(&text.probe_max_connections)->value_name("N"),
       "connections open at once on the probe port, likewise (default 16)")
      ("ingest-threads", po::value(&text.ingest_threads)->value_name("N"),
       "threads that run the informers (watch I/O, decoding, cache updates), each with its own "
       "apiserver connections; each informer runs on the one with the fewest when it starts "
       "(1 to 64; 1 runs everything on the main thread; default the CPUs, at most 8)")
      ("http-header-timeout", po::value(&text.http_header_timeout)->value_name("DURATION"),
       "both HTTP ports: a request must arrive whole within this long of its first byte, and a "
       "new connection must start one within it; slower clients (slowloris) are cut (default 5s)")
      ("http-idle-timeout", po::value(&text.http_idle_timeout)->value_name("DURATION"),
       "both HTTP ports: a kept-alive connection with no new request for this long is closed "
       "(default 2m)")
      ("log-level", po::value(&options.log_level)->value_name("LEVEL"),
       "trace, debug, info, warn or error (default info)")
      ("log-format", po::value(&log_format)->value_name("FORMAT"),
       "text or json (default text)")
      ("tls-cert-file", po::value(&options.tls_cert_file)->value_name("FILE"),
       "serve gRPC over TLS with this PEM certificate (chain); needs --tls-private-key-file; "
       "re-read every --tls-reload-interval")
      ("tls-private-key-file", po::value(&options.tls_private_key_file)->value_name("FILE"),
       "the PEM private key of --tls-cert-file")
      ("client-ca-file", po::value(&options.client_ca_file)->value_name("FILE"),
       "with TLS: verify client certificates against these PEM CAs (a verified certificate is "
       "an identity: CN = user, O = groups); clients without one may still use a bearer token")
      ("tls-reload-interval", po::value(&text.tls_reload_interval)->value_name("DURATION"),
       "how often the TLS files are re-read for rotated contents (default 60s; whole seconds, "
       "at least 1s)")
      ("listen-socket-mode", po::value(&text.listen_socket_mode)->value_name("MODE"),
       "with --listen unix:PATH: the socket file's permissions, octal (default 0660: the "
       "daemon's user and group may connect)")
      ("insecure-allow-plaintext",
       po::value(&text.insecure_allow_plaintext)->value_name("BOOL")->implicit_value("true"),
       "allow plaintext gRPC on a TCP address other than loopback (refused otherwise: anyone "
       "who reaches the port could read the traffic)")
      ("authentication-token-webhook",
       po::value(&text.token_webhook)->value_name("BOOL")->implicit_value("true"),
       "verify bearer tokens with a TokenReview against the apiserver (default true)")
      ("authentication-token-webhook-cache-ttl",
       po::value(&text.token_webhook_cache_ttl)->value_name("DURATION"),
       "how long a token's TokenReview answer is cached (default 2m)")
      ("authentication-token-audiences", po::value(&text.token_audiences)->value_name("LIST"),
       "comma-separated audiences a token must have one of (default: the apiserver's)")
      ("anonymous-auth", po::value(&text.anonymous_auth)->value_name("BOOL")->implicit_value("true"),
       "calls without credentials are system:anonymous instead of refused UNAUTHENTICATED "
       "(default: true with --authorization-mode=AlwaysAllow, false with Webhook)")
      ("authorization-mode", po::value(&text.authorization_mode)->value_name("MODE"),
       "AlwaysAllow or Webhook (each call authorized by a SubjectAccessReview); default "
       "Webhook, or AlwaysAllow when --listen is loopback or a unix socket")
      ("authorization-webhook-cache-authorized-ttl",
       po::value(&text.authorized_ttl)->value_name("DURATION"),
       "how long an allowed SubjectAccessReview answer is cached; also how often an open "
       "Subscribe is re-authorized (default 5m)")
      ("authorization-webhook-cache-unauthorized-ttl",
       po::value(&text.unauthorized_ttl)->value_name("DURATION"),
       "how long a denied SubjectAccessReview answer is cached (default 30s)")
      ("audit-log", po::value(&text.audit_log)->value_name("BOOL")->implicit_value("true"),
       "log one line per finished call: caller, method, resource, namespace, decision, status "
       "(default true)")
      ("max-list-response-bytes", po::value(&text.max_list_response_bytes)->value_name("N"),
       "the largest List answer, in encoded bytes: a page stops before it (with a continue "
       "token), a List without limit or continue that would exceed it is refused "
       "RESOURCE_EXHAUSTED (default 4128768, 4 MiB less 64 KiB: under gRPC's default 4 MiB "
       "receive limit)")
      ("max-list-response-objects", po::value(&text.max_list_response_objects)->value_name("N"),
       "the most objects in one List answer, likewise (default 10000)")
      ("subscribe-sync-wait", po::value(&text.subscribe_sync_wait)->value_name("DURATION"),
       "how long a Subscribe without a resource version waits for its resource's sync before "
       "it ends UNAVAILABLE saying why (default 30s; 0s: as long as it takes)")
      ("subscribe-future-version-wait",
       po::value(&text.subscribe_future_version_wait)->value_name("DURATION"),
       "how long a Subscribe from a resource version the cache has not reached waits for it "
       "before it ends UNAVAILABLE \"too large resource version\" (default 3s; 0s: as long as "
       "it takes)")
      ("max-subscriptions", po::value(&text.max_subscriptions)->value_name("N"),
       "Subscribe streams open at once in total; past it, a new one is refused "
       "RESOURCE_EXHAUSTED (default 10000; 0: no limit)")
      ("max-subscriptions-per-user", po::value(&text.max_subscriptions_per_user)->value_name("N"),
       "Subscribe streams one user (the authenticated name; every anonymous caller is one "
       "user) may have open at once (default 5000; 0: no limit)")
      ("max-selector-bytes", po::value(&text.max_selector_bytes)->value_name("N"),
       "the longest label or field selector a request may carry, in bytes; longer is "
       "INVALID_ARGUMENT (default 4096)")
      ("max-selector-requirements", po::value(&text.max_selector_requirements)->value_name("N"),
       "the most comma-separated requirements in one label or field selector; more is "
       "INVALID_ARGUMENT (default 64)")
      ("rpc-threads", po::value(&text.rpc_threads)->value_name("N"),
       "threads of the gRPC service's own that run a call's work once a review or discovery "
       "answers and the Subscribe streams' writes as events arrive, so that the thread applying "
       "the watches never does (1 to 256; default 2)")
      ("rpc-nice", po::value(&text.rpc_nice)->value_name("N"),
       "the nice value of the threads that serve clients (gRPC's and --rpc-threads), so that "
       "applying the watches gets the cores first when both want them (0 to 19; 0: the same "
       "priority; default 10)")
      ("grpc-max-connections", po::value(&text.grpc_max_connections)->value_name("N"),
       "gRPC connections open at once; another is closed as soon as it is accepted (default "
       "1000)")
      ("grpc-max-concurrent-streams",
       po::value(&text.grpc_max_concurrent_streams)->value_name("N"),
       "calls (HTTP/2 streams) one gRPC connection may have open at once; gRPC clients queue "
       "the rest (default 100)")
      ("grpc-max-calls-per-connection",
       po::value(&text.grpc_max_calls_per_connection)->value_name("N"),
       "calls in flight on one gRPC connection (streams the client reset included) beyond which "
       "it is closed: a stream-reset flood (default 200; 0: not checked)")
      ("grpc-max-connection-age", po::value(&text.grpc_max_connection_age)->value_name("DURATION"),
       "a gRPC connection is sent GOAWAY at about this age, so that clients spread over "
       "replicas (default 30m; 0s: no limit)")
      ("grpc-max-connection-age-grace",
       po::value(&text.grpc_max_connection_age_grace)->value_name("DURATION"),
       "how long calls still open at the age may go on before the connection is closed and they "
       "end UNAVAILABLE; a Subscribe resumes from its last resource version (default 5m; 0s: no "
       "limit)")
      ("grpc-keepalive-min-time", po::value(&text.grpc_keepalive_min_time)->value_name("DURATION"),
       "the most frequent keepalive pings a gRPC client may send; 3 sooner than this in a row "
       "and the connection is sent GOAWAY too_many_pings (default 10s; clients are told to ping "
       "every 30s or more: keep it at or below that)")
      ("grpc-handshake-timeout", po::value(&text.grpc_handshake_timeout)->value_name("DURATION"),
       "how long a new gRPC connection has to finish its TLS handshake and send its HTTP/2 "
       "settings before it is closed (default 20s)")
      ("version", "print the version and exit")
      ("help", "print this help and exit");
  // clang-format on

  po::variables_map values;
  try {
    // Positional arguments are not accepted: every setting has a name.
    const po::positional_options_description no_positionals;
    po::store(
        po::command_line_parser(argc, argv).options(described).positional(no_positionals).run(),
        values);
    po::notify(values);
  } catch (const po::error& e) {
    return absl::InvalidArgumentError(fmt::format("{} (see informerd --help)", e.what()));
  }

  if (values.count("help")) {
    std::ostringstream help;
    help << described;
    options.action = Options::Action::kPrintHelp;
    options.help_text = help.str();
    return options;
  }
  if (values.count("version")) {
    options.action = Options::Action::kPrintVersion;
    return options;
  }
  if (options.config_path.empty()) {
    return absl::InvalidArgumentError(
        "--config is required: a YAML file listing the resources to inform on "
        "(example: deploy/config/informerd.yaml)");
  }
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (kLevels.count(options.log_level) == 0) {
    return absl::InvalidArgumentError(fmt::format(
        "--log-level: \"{}\" is not one of trace, debug, info, warn, error", options.log_level));
  }
  if (log_format == "text") {
    options.log_format = LogFormat::kText;
  } else if (log_format == "json") {
    options.log_format = LogFormat::kJson;
  } else {
    return absl::InvalidArgumentError(
        fmt::format("--log-format: \"{}\" is not one of text, json", log_format));
  }
  text.listen_socket_mode_given = values.count("listen-socket-mode") > 0;
  const absl::StatusOr<ListenAddress> listen = ParseListenAddress(options.listen_address);
  if (!listen.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("--listen: {}", std::string(listen.status().message())));
  }
  if (options.metrics_listen_address == "none") options.metrics_listen_address.clear();
  if (!options.metrics_listen_address.empty() && !IsHostPort(options.metrics_listen_address)) {
    return absl::InvalidArgumentError(
        fmt::format("--metrics-listen: \"{}\" is not HOST:PORT or none (for example 0.0.0.0:9090)",
                    options.metrics_listen_address));
  }

  if (absl::Status status = ApplyHttpFlags(text, options); !status.ok()) return status;
  if (absl::Status status = ApplyListFlags(text, options); !status.ok()) return status;
  if (absl::Status status = ApplyTransportFlags(text, *listen, options); !status.ok()) {
    return status;
  }
  if (absl::Status status = ApplyAccessFlags(text, *listen, options); !status.ok()) return status;
  if (absl::Status parsed = ParseDurationFlag("subscribe-sync-wait", text.subscribe_sync_wait,
                                              &options.subscribe_sync_wait);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status parsed =
          ParseDurationFlag("subscribe-future-version-wait", text.subscribe_future_version_wait,
                            &options.subscribe_future_version_wait);
      !parsed.ok()) {
    return parsed;
  }
  if (absl::Status status = ApplyClientLimitFlags(text, options); !status.ok()) return status;
  if (absl::Status status = ApplyGrpcLimitFlags(text, options); !status.ok()) return status;
  if (absl::Status status = ApplyIngestThreadsFlag(text, options); !status.ok()) return status;
  if (absl::Status status = ApplyRpcThreadsFlag(text, options); !status.ok()) return status;
  return options;
}

std::size_t DefaultIngestThreads() {
  const unsigned cpus = std::thread::hardware_concurrency();
  return std::clamp<std::size_t>(cpus, 1, 8);
}

}  // namespace informerd::daemon
