// Options: informerd's command-line flags, parsed without side effects.
//
// Called once from cmd/informerd/main.cc before anything starts. Parsing never prints or exits:
// it returns either the options to run with, a request to print help or the version, or an
// InvalidArgument status whose message is the one-line error for the user. Flags are checked
// alone and together (a client CA without TLS, a certificate without its key); files are not
// read here (the daemon checks them at start-up).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/defaults.h"

namespace informerd::daemon {

enum class LogFormat { kText, kJson };

// --authorization-mode: who decides what a caller may read.
enum class AuthorizationMode {
  // Every authenticated (or anonymous, if allowed) caller may read everything informerd caches.
  kAlwaysAllow,
  // The apiserver decides each call (a SubjectAccessReview for the caller), as the kubelet does.
  kWebhook,
};

// --ingest-threads' default: the CPUs std::thread::hardware_concurrency() reports, 1 to 8 (one
// when it reports none).
std::size_t DefaultIngestThreads();

struct Options {
  enum class Action { kRun, kPrintHelp, kPrintVersion };
  Action action = Action::kRun;
  // The text for kPrintHelp.
  std::string help_text;

  std::string config_path;
  // Empty: $KUBECONFIG, then ~/.kube/config, then in-cluster config (see README).
  std::string kubeconfig_path;
  // Empty: the kubeconfig's current-context.
  std::string context;
  // Threads that run the informers (--ingest-threads): each an io_context with an apiserver
  // client of its own, the main thread's among them; every informer lives on one of them, the
  // least loaded when it starts. 1 to 64; 1 is everything on the main thread. Default
  // DefaultIngestThreads().
  std::size_t ingest_threads = DefaultIngestThreads();
  // The gRPC server's address: host:port (port 0 picks one) or unix:PATH / unix:///ABS/PATH (see
  // daemon/listen_address.h). Loopback by default: safe for a sidecar.
  std::string listen_address = "127.0.0.1:50051";
  // host:port for the metrics port (/metrics, /healthz, /readyz); empty when disabled
  // (--metrics-listen none). All interfaces by default: Prometheus and the kubelet's probes
  // reach a pod at its IP. Port 0 picks one.
  std::string metrics_listen_address = "0.0.0.0:9090";
  // host:port for the probe port (/healthz and /readyz only, for the kubelet), with connections
  // of its own so that nothing done to the metrics port can fail the probes; empty when
  // disabled (--probe-listen none). All interfaces by default, as the kubelet probes a pod at
  // its IP; 9091, beside the metrics port. Port 0 picks one.
  std::string probe_listen_address = "0.0.0.0:9091";
  // --- The HTTP ports' limits (daemon/admin/http_server.h) ---
  // Connections open at once on each port, at least 1. At the limit a new connection closes the
  // one waiting longest for its client. Defaults 64 and 16.
  std::size_t metrics_max_connections = 64;
  std::size_t probe_max_connections = 16;
  // Both ports: a request must arrive whole within this long of its first byte (and a new
  // connection must start one within it); a kept-alive connection with no new request for
  // http_idle_timeout is closed. More than zero. Defaults 5 s and 2 min.
  std::chrono::milliseconds http_header_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds http_idle_timeout{std::chrono::minutes(2)};
  // trace, debug, info, warn, error.
  std::string log_level = "info";
  LogFormat log_format = LogFormat::kText;

  // --- Transport (daemon/service/server_credentials.h) ---
  // Serve TLS with this PEM certificate chain and private key (both or neither); re-read every
  // tls_reload_interval, so that rotated files are picked up without a restart.
  std::string tls_cert_file;
  std::string tls_private_key_file;
  // With TLS: verify client certificates against these PEM CAs (a client may still connect
  // without one). Empty: client certificates are not asked for.
  std::string client_ca_file;
  // Whole seconds, at least 1 s. Default 60 s.
  std::chrono::seconds tls_reload_interval{60};
  // The socket file's permissions when listening on a unix socket. Default 0660: the daemon's
  // user and group.
  unsigned listen_socket_mode = 0660;
  // Allows plaintext on a TCP address that is not loopback (refused at start-up otherwise).
  bool insecure_allow_plaintext = false;

  // --- The gRPC port's transport limits (GrpcServerOptions; daemon/service/connection_gate.h) ---
  // Connections open at once; the next is closed at once. At least 1. Default 1000.
  std::size_t grpc_max_connections = 1000;
  // Calls in flight on one TCP connection beyond which it is closed (a client resetting streams
  // faster than they finish). 0: not checked; otherwise at least grpc_max_concurrent_streams.
  // Default 200.
  std::size_t grpc_max_calls_per_connection = 200;
  // Streams one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); gRPC
  // clients queue calls beyond it. At least 1. Default 100.
  std::size_t grpc_max_concurrent_streams = 100;
  // A connection is sent GOAWAY at about this age; calls still open get the grace, then the
  // connection is closed. Zero: no limit. Defaults 30 minutes and 5 minutes.
  std::chrono::milliseconds grpc_max_connection_age{std::chrono::minutes(30)};
  std::chrono::milliseconds grpc_max_connection_age_grace{std::chrono::minutes(5)};
  // Client keepalive pings more frequent than this (3 in a row without data between) get the
  // connection GOAWAY too_many_pings. More than 0. Default 10 s.
  std::chrono::milliseconds grpc_keepalive_min_time{std::chrono::seconds(10)};
  // How long a new connection has to finish its TLS handshake and send its HTTP/2 settings.
  // More than 0. Default 20 s.
  std::chrono::milliseconds grpc_handshake_timeout{std::chrono::seconds(20)};

  // --- Authentication (parsed here; used by the service's access control) ---
  // Verify bearer tokens with a TokenReview against the apiserver. Default true.
  bool authentication_token_webhook = true;
  // How long a token's review is cached. Default 2 minutes.
  std::chrono::milliseconds authentication_token_webhook_cache_ttl{std::chrono::minutes(2)};
  // The audiences a token must have one of; empty: the apiserver's own.
  std::vector<std::string> authentication_token_audiences;
  // Callers without credentials are system:anonymous instead of refused. Default: true with
  // AlwaysAllow, false with Webhook.
  bool anonymous_auth = false;

  // --- Authorization (parsed here; used by the service's access control) ---
  // Default: Webhook, unless the listen address is loopback or a unix socket (AlwaysAllow).
  AuthorizationMode authorization_mode = AuthorizationMode::kAlwaysAllow;
  // How long the apiserver's answers are cached: allowed (also how often a long Subscribe is
  // re-authorized) default 5 minutes, denied default 30 s. Zero: not cached.
  std::chrono::milliseconds authorization_webhook_cache_authorized_ttl{std::chrono::minutes(5)};
  std::chrono::milliseconds authorization_webhook_cache_unauthorized_ttl{std::chrono::seconds(30)};
  // One info line per finished call on the "audit" logger. Default true.
  bool audit_log = true;

  // --- List's answers (InformerServiceOptions) ---
  // The largest List answer, in encoded bytes and in objects; at least 1 each. A page stops at
  // either (with a continue token); a List without limit or continue over one is
  // RESOURCE_EXHAUSTED naming the flag. Defaults 4128768 (4 MiB less 64 KiB: under gRPC's
  // default 4 MiB receive limit) and 10000.
  std::size_t max_list_response_bytes = core::kDefaultMaxListResponseBytes;
  std::size_t max_list_response_objects = core::kDefaultMaxListResponseObjects;

  // --- Subscribe's bounded waits (InformerServiceOptions) ---
  // How long a Subscribe without a resource version waits for its resource's sync before it ends
  // with UNAVAILABLE saying why (the upstream error). Zero: as long as it takes. Default 30 s.
  std::chrono::milliseconds subscribe_sync_wait{std::chrono::seconds(30)};
  // How long a Subscribe from a resource version the cache has not reached waits for it before
  // it ends with UNAVAILABLE "too large resource version" (the apiserver's watch cache waits
  // 3 s). Zero: as long as it takes. Default 3 s.
  std::chrono::milliseconds subscribe_future_version_wait{std::chrono::seconds(3)};

  // --- What one client can make the service hold (InformerServiceOptions; client_limits.h) ---
  // Subscribe streams open at once, in total and for one user; 0: no limit. Over either, a new
  // Subscribe is RESOURCE_EXHAUSTED naming the flag. Defaults 10000 and 5000.
  std::size_t max_subscriptions = core::kDefaultMaxSubscriptions;
  std::size_t max_subscriptions_per_user = core::kDefaultMaxSubscriptionsPerUser;
  // The longest label or field selector a request may carry, in bytes, and the most
  // requirements in one; at least 1 each. Over either, INVALID_ARGUMENT naming the flag.
  // Defaults 4096 and 64.
  std::size_t max_selector_bytes = core::kDefaultMaxSelectorBytes;
  std::size_t max_selector_requirements = core::kDefaultMaxSelectorRequirements;

  // --- The gRPC service's own threads (InformerServiceOptions::rpc_threads) ---
  // They run what a call does once a review or the resolver answers (resolution, snapshots, List
  // and Get copies, on-demand starts) and the Subscribe streams' writes as events arrive, so that
  // the thread applying the watches never does. 1 to 256; default 2.
  std::size_t rpc_threads = core::kDefaultRpcThreads;
  // The nice value of the threads that serve clients (gRPC's, as they handle calls, and the
  // service's own): 0 to 19, default 10. Above 0 they get the cores only after ingest when both
  // want them; 0 keeps them at ingest's priority.
  int rpc_nice = 10;
};

absl::StatusOr<Options> ParseOptions(int argc, const char* const* argv);

}  // namespace informerd::daemon
