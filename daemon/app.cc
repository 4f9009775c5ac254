#include "daemon/app.h"

#include <pthread.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <utility>

#include "daemon/kube/auth/client_config.h"
#include "daemon/kube/auth/environment.h"
#include "daemon/listen_address.h"
#include "daemon/security/always_allow_authorizer.h"
#include "daemon/service/server_credentials.h"
#include "daemon/version.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd::daemon {
namespace {

// How long the gRPC server waits for calls still running at shutdown before cancelling them.
constexpr std::chrono::seconds kShutdownGracePeriod{5};

const char* SignalName(int signal_number) {
  return signal_number == SIGTERM ? "SIGTERM" : "SIGINT";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(const Options& options) {
  std::unique_ptr<Daemon> daemon(new Daemon(options));
  absl::Status built = daemon->Build(options);
  if (!built.ok()) return built;
  return daemon;
}

Daemon::Daemon(const Options& options)
    : logging_(options.log_format, options.log_level),
      logger_(logging_.For("informerd")),
      readiness_timer_(io_),
      signals_(io_, SIGINT, SIGTERM) {}

absl::Status Daemon::Build(const Options& options) {
  logger_->info("informerd {} starting", kVersion);

  auto config = LoadConfigFile(options.config_path);
  if (!config.ok()) return config.status();
  config_ = *std::move(config);
  logger_->info("config {}: {} resource(s)", options.config_path, config_.resources.size());

  // The gRPC port's security, checked before anything connects anywhere: plaintext on an
  // address other hosts can reach, or a TLS file that is missing or broken, stops start-up here.
  auto listen_address = ParseListenAddress(options.listen_address);
  if (!listen_address.ok()) return listen_address.status();
  ServerTransportOptions transport_options;
  transport_options.tls_cert_file = options.tls_cert_file;
  transport_options.tls_private_key_file = options.tls_private_key_file;
  transport_options.client_ca_file = options.client_ca_file;
  transport_options.reload_interval = options.tls_reload_interval;
  transport_options.insecure_allow_plaintext = options.insecure_allow_plaintext;
  auto transport = MakeServerTransport(*listen_address, transport_options);
  if (!transport.ok()) return transport.status();
  if (transport->exposed_plaintext) {
    logger_->warn("gRPC transport: {}", transport->description);
  } else {
    logger_->info("gRPC transport: {}", transport->description);
  }

  ClientConfigOptions client_config;
  client_config.kubeconfig_path = options.kubeconfig_path;
  client_config.context = options.context;
  client_config.environment = Environment::FromProcess();
  client_config.on_warning = [logger = logging_.For("credentials")](const absl::Status& status) {
    logger->warn("{}", std::string(status.message()));
  };
  auto rest_config = LoadRestConfig(client_config);
  if (!rest_config.ok()) return rest_config.status();
  logger_->info("apiserver {} as {}", rest_config->server.ToString(), rest_config->identity);

  // The ingest threads' clients copy the RestConfig, and so share its credential source (one
  // token file watch, one exec plugin run for all) and TLS settings; each has its own connection
  // pool, credential thread and strand.
  auto client = ApiServerClient::Create(io_, *rest_config);
  if (!client.ok()) return client.status();
  client_ = *std::move(client);
  for (std::size_t i = 1; i < options.ingest_threads; ++i) {
    ingest_io_.push_back(std::make_unique<boost::asio::io_context>(1));
    auto ingest = ApiServerClient::Create(*ingest_io_.back(), *rest_config);
    if (!ingest.ok()) return ingest.status();
    ingest_clients_.push_back(*std::move(ingest));
  }
  if (options.ingest_threads > 1) {
    logger_->info("ingest: {} threads, each with its own apiserver connections",
                  options.ingest_threads);
  }
  BuildAccessControl(options);
  discovery_ = std::make_unique<Discovery>(*client_, clock_);

  resolver_ = std::make_unique<DiscoveryResourceResolver>(*discovery_);
  InformerServiceOptions service_options;
  service_options.logger = logging_.For("service");
  service_options.subscriber_queue_capacity = config_.subscriber_queue_capacity;
  service_options.subscriber_snapshot_stall_budget = config_.subscriber_snapshot_stall_budget;
  service_options.on_demand_resources = config_.on_demand_resources;
  service_options.max_on_demand_informers = config_.max_on_demand_informers;
  service_options.subscribe_sync_wait = options.subscribe_sync_wait;
  service_options.future_version_wait = options.subscribe_future_version_wait;
  service_options.max_list_response_bytes = options.max_list_response_bytes;
  service_options.max_list_response_objects = options.max_list_response_objects;
  service_options.max_subscriptions = options.max_subscriptions;
  service_options.max_subscriptions_per_user = options.max_subscriptions_per_user;
  service_options.max_selector_bytes = options.max_selector_bytes;
  service_options.max_selector_requirements = options.max_selector_requirements;
  service_options.rpc_threads = options.rpc_threads;
  service_options.rpc_thread_nice = options.rpc_nice;
  service_ =
      std::make_unique<InformerService>(*resolver_, registry_, *access_control_, service_options);

  SharedInformerFactoryOptions informer_options = InformerFactoryOptions(config_);
  informer_options.registry = &registry_;
  if (!ingest_clients_.empty()) {
    informer_options.ingest_clients.push_back(client_.get());
    for (const auto& ingest : ingest_clients_) {
      informer_options.ingest_clients.push_back(ingest.get());
    }
  }
  informers_ = SharedInformerFactory::Create(*client_, *discovery_, clock_, config_.resources,
                                             informer_options, nullptr, logging_.For("informer"));

  // The metrics port: /metrics, /healthz, and /readyz with the same readiness as gRPC health; the
  // probe port: /healthz and /readyz alone, for the kubelet, on connections of its own. Bound
  // before the gRPC port, so that a start-up failure here leaves no gRPC call running.
  status_sources_.readiness = [this] {
    if (shutting_down_) return Readiness{false, {"informerd is shutting down"}};
    return daemon::CheckReadiness(*informers_);
  };
  status_sources_.metrics = [this] {
    MetricsSnapshot snapshot =
        CollectMetrics(*informers_, status_sources_.readiness(), &grpc_requests_);
    {
      const ClientLimitStats stats = service_->client_limit_stats();
      ClientLimitMetrics& limits = snapshot.client_limits.emplace();
      limits.subscriptions_open = stats.subscriptions_open;
      limits.subscriptions_largest_user = stats.subscriptions_largest_user;
      limits.refused_max_subscriptions = stats.refused_max_subscriptions;
      limits.refused_max_subscriptions_per_user = stats.refused_max_subscriptions_per_user;
      limits.refused_max_selector_bytes = stats.refused_max_selector_bytes;
      limits.refused_max_selector_requirements = stats.refused_max_selector_requirements;
    }
    {
      const ListStats stats = service_->list_stats();
      ListMetrics& lists = snapshot.lists.emplace();
      lists.refused_max_bytes = stats.refused_bytes;
      lists.refused_max_objects = stats.refused_objects;
      lists.pages = stats.pages;
      lists.pages_cut_at_bytes = stats.pages_cut_at_bytes;
      lists.continues_expired = stats.continues_expired;
    }
    if (token_reviews_) {
      const TokenReviewStats stats = token_reviews_->stats();
      TokenReviewMetrics& tokens = snapshot.token_reviews.emplace();
      tokens.authenticated = stats.authenticated;
      tokens.rejected = stats.rejected;
      tokens.errors = stats.errors;
      tokens.cache_hits = stats.cache_hits;
      tokens.shared = stats.shared;
      tokens.refused_unreviewed = stats.refused_without_review;
      tokens.cache_entries = stats.cache_entries;
    }
    if (access_reviews_) {
      const AuthorizerStats stats = access_reviews_->stats();
      AccessReviewMetrics& access = snapshot.access_reviews.emplace();
      access.allowed = stats.allowed;
      access.denied = stats.denied;
      access.errors = stats.errors;
      access.cache_hits = stats.cache_hits;
      access.shared = stats.shared;
      access.cache_entries = stats.cache_entries;
      access.latency_seconds_sum = std::chrono::duration<double>(stats.review_latency_sum).count();
      access.latency_count = stats.review_latency_count;
    }
    if (const GrpcServer* server = server_for_metrics_.load(std::memory_order_acquire)) {
      const ConnectionGateStats stats = server->connection_stats();
      GrpcConnectionMetrics& connections = snapshot.grpc_connections.emplace();
      connections.open = stats.open;
      connections.max_connections = stats.max_connections;
      connections.accepted = stats.accepted;
      connections.refused_max_connections = stats.refused;
      connections.refused_peer_closing = stats.refused_peer_closing;
      connections.closed_calls_in_flight = stats.closed_calls_in_flight;
      connections.calls_in_flight = stats.calls;
    }
    snapshot.http_listeners.push_back(ListenerMetrics("metrics", metrics_http_.Snapshot()));
    if (probe_server_) {
      snapshot.http_listeners.push_back(ListenerMetrics("probes", probe_http_.Snapshot()));
    }
    return RenderPrometheus(snapshot);
  };
  // The probe port first: the metrics port's scrapes read probe_server_.
  HttpServerOptions http_options;
  http_options.header_timeout = options.http_header_timeout;
  http_options.idle_timeout = options.http_idle_timeout;
  if (!options.probe_listen_address.empty()) {
    HttpServerOptions probe_options = http_options;
    probe_options.max_connections = options.probe_max_connections;
    probe_options.counters = &probe_http_;
    probe_options.name = "probes";
    probe_options.flag = "--probe-listen";
    auto started = HttpServer::Start(
        options.probe_listen_address,
        [this](const HttpRequest& request) { return ServeProbeRequest(status_sources_, request); },
        logging_.For("probes"), probe_options);
    if (!started.ok()) return started.status();
    probe_server_ = *std::move(started);
  }
  if (!options.metrics_listen_address.empty()) {
    HttpServerOptions metrics_options = http_options;
    metrics_options.max_connections = options.metrics_max_connections;
    metrics_options.counters = &metrics_http_;
    auto started = HttpServer::Start(
        options.metrics_listen_address,
        [this](const HttpRequest& request) { return ServeStatusRequest(status_sources_, request); },
        logging_.For("metrics"), metrics_options);
    if (!started.ok()) return started.status();
    metrics_server_ = *std::move(started);
  }

  GrpcServerOptions server_options;
  server_options.unix_socket_mode = options.listen_socket_mode;
  // What informerd means to send at most: a List answer, or one object (a Get, an event, a
  // page's only item) with its message's few other fields.
  server_options.max_send_message_bytes = static_cast<int>(std::min<std::size_t>(
      std::max(options.max_list_response_bytes, config_.max_object_bytes) + (1 << 20), INT_MAX));
  // The transport limits (daemon/service/connection_gate.h, grpc_server.h).
  server_options.max_connections = options.grpc_max_connections;
  server_options.max_calls_per_connection = options.grpc_max_calls_per_connection;
  server_options.max_concurrent_streams = static_cast<int>(options.grpc_max_concurrent_streams);
  server_options.max_connection_age = options.grpc_max_connection_age;
  server_options.max_connection_age_grace = options.grpc_max_connection_age_grace;
  server_options.min_client_ping_interval = options.grpc_keepalive_min_time;
  server_options.handshake_timeout = options.grpc_handshake_timeout;
  server_options.call_thread_nice = options.rpc_nice;
  server_options.health_service_names = {informerd::v1::Informer::service_full_name()};
  server_options.on_call_done = [this](std::string_view method, int code) {
    grpc_requests_.Count(method, code);
  };
  auto server = GrpcServer::Start(options.listen_address, std::move(transport->credentials),
                                  {service_.get()}, logging_.For("grpc"), server_options);
  if (!server.ok()) return server.status();
  server_ = *std::move(server);
  server_for_metrics_.store(server_.get(), std::memory_order_release);

  return absl::OkStatus();
}

void Daemon::BuildAccessControl(const Options& options) {
  // A bearer token is reviewed whenever --authentication-token-webhook is on, whatever the
  // authorization mode: even with AlwaysAllow (loopback, the sidecar's socket) a call with a
  // token that is not valid is refused rather than served as anonymous, and the audit line names
  // who called.
  if (options.authentication_token_webhook) {
    TokenReviewAuthenticatorOptions token_options;
    token_options.audiences = options.authentication_token_audiences;
    token_options.authenticated_ttl = options.authentication_token_webhook_cache_ttl;
    token_reviews_ = std::make_unique<TokenReviewAuthenticator>(
        *client_, clock_, std::move(token_options), logging_.For("authentication"));
  }
  authenticator_ =
      std::make_unique<RequestAuthenticator>(token_reviews_.get(), options.anonymous_auth);
  if (options.authorization_mode == AuthorizationMode::kWebhook) {
    SubjectAccessReviewAuthorizerOptions authorizer_options;
    authorizer_options.allowed_ttl = options.authorization_webhook_cache_authorized_ttl;
    authorizer_options.denied_ttl = options.authorization_webhook_cache_unauthorized_ttl;
    auto reviews = std::make_unique<SubjectAccessReviewAuthorizer>(
        *client_, clock_, authorizer_options, logging_.For("authorization"));
    access_reviews_ = reviews.get();
    authorizer_ = std::move(reviews);
  } else {
    authorizer_ = std::make_unique<AlwaysAllowAuthorizer>();
  }
  std::shared_ptr<spdlog::logger> audit;
  if (options.audit_log) {
    audit = logging_.For("audit");
    // The audit trail is switched by --audit-log alone: a quieter --log-level keeps it.
    if (audit->level() > spdlog::level::info) audit->set_level(spdlog::level::info);
  }
  access_control_ =
      std::make_unique<AccessControl>(*authenticator_, *authorizer_, std::move(audit));
  logger_->info(
      "access control: bearer tokens {}, client certificates {}, anonymous calls {}, "
      "authorization {}, audit log {}",
      options.authentication_token_webhook ? "reviewed by the apiserver (TokenReview)" : "refused",
      options.client_ca_file.empty() ? "not asked for" : "verified against --client-ca-file",
      options.anonymous_auth ? "allowed (system:anonymous)" : "refused",
      options.authorization_mode == AuthorizationMode::kWebhook
          ? "by the apiserver (SubjectAccessReview)"
          : "AlwaysAllow (every caller may read everything)",
      options.audit_log ? "on" : "off");
}

Daemon::~Daemon() {
  if (shutdown_thread_.joinable()) shutdown_thread_.join();
  signals_.cancel();
  StopIngestThreads();
  // The parts may have left handlers queued (a cancelled timer's or watch's completion, a post
  // to the strand). Run them now, on this thread, while everything they may touch still exists,
  // rather than have them destroyed, or run, after what they borrow is gone. The factory's stop
  // runs on the main io_context and posts each informer's to its own: poll them all until none
  // has anything left.
  if (informers_) informers_->Stop();
  for (std::size_t ran = 1; ran > 0;) {
    io_.restart();
    ran = io_.poll();
    for (const auto& io : ingest_io_) {
      io->restart();
      ran += io->poll();
    }
  }
}

void Daemon::StopIngestThreads() {
  ingest_work_.clear();
  for (const auto& io : ingest_io_) io->stop();
  for (std::thread& thread : ingest_threads_) thread.join();
  ingest_threads_.clear();
}

absl::Status Daemon::Run() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
    if (!ec) OnSignal(signal_number);
  });
  for (std::size_t i = 0; i < ingest_io_.size(); ++i) {
    ingest_work_.push_back(boost::asio::make_work_guard(*ingest_io_[i]));
    ingest_threads_.emplace_back([&io = *ingest_io_[i], name = fmt::format("ingest-{}", i + 1)] {
      // As top -H and /proc/PID/task/*/comm show it (the main thread is ingest thread 0).
      pthread_setname_np(pthread_self(), name.c_str());
      io.run();
    });
  }
  informers_->Start();
  CheckReadiness();
  io_.run();
  if (shutdown_thread_.joinable()) shutdown_thread_.join();
  // The informers stopped before the gRPC server's grace period (BeginShutdown).
  StopIngestThreads();
  logger_->info("informerd stopped");
  return absl::OkStatus();
}

void Daemon::OnSignal(int signal_number) {
  if (signalled_) {
    logger_->warn("received {} again during shutdown, exiting now", SignalName(signal_number));
    logger_->flush();
    std::_Exit(1);
  }
  signalled_ = true;
  logger_->info("received {}, shutting down", SignalName(signal_number));
  // Listen on: a second signal during the grace period must not be swallowed.
  signals_.async_wait([this](const boost::system::error_code& ec, int next_signal) {
    if (!ec) OnSignal(next_signal);
  });
  BeginShutdown();
}

void Daemon::BeginShutdown() {
  if (shutting_down_.exchange(true)) return;
  readiness_timer_.cancel();
  server_->SetServing(false);
  // Open streams end with UNAVAILABLE (retry elsewhere) instead of being cut at the grace
  // period; waiting List/Get calls end too.
  service_->Shutdown();
  informers_->Stop();
  // Queued behind the informers' Stop on the same strand: subscriptions have ended by then, so
  // streams finish promptly and the grace period is only for stragglers. The server's Shutdown
  // blocks until every call has finished, and a call still resolving its resource finishes on
  // the strand: so it waits on its own thread while this one keeps running the strand.
  boost::asio::post(client_->strand(), [this] {
    shutdown_thread_ = std::thread([this] {
      server_->Shutdown(kShutdownGracePeriod);
      io_.stop();
    });
  });
}

void Daemon::CheckReadiness() {
  // A handler already queued when the timer is cancelled still runs with success: once
  // shutting down, health stays NOT_SERVING.
  if (shutting_down_) return;
  server_->SetServing(informers_->AllReady());
  readiness_timer_.expires_after(std::chrono::milliseconds(500));
  readiness_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) CheckReadiness();
  });
}

SharedInformerFactoryOptions InformerFactoryOptions(const Config& config) {
  SharedInformerFactoryOptions options;
  options.max_event_bytes = config.max_object_bytes;
  options.reflector.max_staleness = config.max_staleness;
  options.allow_on_demand = config.allow_on_demand;
  options.on_demand_grace_period = config.on_demand_grace_period;
  return options;
}

absl::Status RunDaemon(const Options& options) {
  auto daemon = Daemon::Create(options);
  if (!daemon.ok()) return daemon.status();
  return (*daemon)->Run();
}

}  // namespace informerd::daemon
