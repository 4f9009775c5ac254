#include "daemon/app.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <functional>
#include <thread>

#include "core/clock.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/client_config.h"
#include "daemon/config.h"
#include "daemon/kube/discovery.h"
#include "daemon/kube/auth/environment.h"
#include "daemon/service/grpc_server.h"
#include "daemon/admin/http_server.h"
#include "daemon/service/informer_service.h"
#include "daemon/logging.h"
#include "daemon/admin/metrics.h"
#include "daemon/informers/shared_informer_factory.h"
#include "daemon/informers/discovery_resource_resolver.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/admin/status_endpoints.h"
#include "daemon/version.h"
#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd::daemon {

absl::Status RunDaemon(const Options& options) {
  const Logging logging(options.log_format, options.log_level);
  auto logger = logging.For("informerd");
  logger->info("informerd {} starting", kVersion);

  auto config = LoadConfigFile(options.config_path);
  if (!config.ok()) return config.status();
  logger->info("config {}: {} resource(s)", options.config_path, config->resources.size());

  ClientConfigOptions client_config;
  client_config.kubeconfig_path = options.kubeconfig_path;
  client_config.context = options.context;
  client_config.environment = Environment::FromProcess();
  client_config.on_warning = [logger = logging.For("credentials")](const absl::Status& status) {
    logger->warn("{}", std::string(status.message()));
  };
  auto rest_config = LoadRestConfig(client_config);
  if (!rest_config.ok()) return rest_config.status();
  logger->info("apiserver {} as {}", rest_config->server.ToString(), rest_config->identity);

  // The main thread runs this io_context: the apiserver client, every informer and their timers
  // live on the client's strand; gRPC serves from its own threads.
  boost::asio::io_context io;
  // Signals are caught before anything starts, so a SIGTERM that arrives during start-up is
  // handled once the loop runs instead of killing the process mid-way.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);

  auto client = ApiServerClient::Create(io, *std::move(rest_config));
  if (!client.ok()) return client.status();
  const core::SteadyClock clock;
  Discovery discovery(**client, clock);
  SharedInformerFactoryOptions informer_options;
  informer_options.max_event_bytes = config->max_object_bytes;

  // What the gRPC service serves: every informer is added to the registry as it starts.
  ResourceRegistry registry;
  DiscoveryResourceResolver resolver(discovery);
  InformerServiceOptions service_options;
  service_options.logger = logging.For("service");
  service_options.subscriber_queue_capacity = config->subscriber_queue_capacity;
  InformerService informer_service(resolver, registry, service_options);
  // SharedInformerFactory keeps the registry current: informers as they start, placeholders for
  // resources gone upstream, on-demand informers (allowOnDemand) while they have readers.
  informer_options.registry = &registry;
  informer_options.allow_on_demand = config->allow_on_demand;
  informer_options.on_demand_grace_period = config->on_demand_grace_period;
  auto informers = SharedInformerFactory::Create(**client, discovery, clock, config->resources,
                                             informer_options, nullptr, logging.For("informer"));

  GrpcRequestCounters grpc_requests;
  GrpcServerOptions server_options;
  server_options.health_service_names = {informerd::v1::Informer::service_full_name()};
  server_options.on_call_done = [&grpc_requests](std::string_view method, int code) {
    grpc_requests.Count(method, code);
  };
  auto server = GrpcServer::Start(options.listen_address, {&informer_service}, logging.For("grpc"),
                                  server_options);
  if (!server.ok()) return server.status();

  // The metrics port: /metrics, /healthz, and /readyz with the same readiness as gRPC health.
  std::atomic<bool> shutting_down{false};
  StatusSources status_sources;
  status_sources.readiness = [&] {
    if (shutting_down) return Readiness{false, {"informerd is shutting down"}};
    return CheckReadiness(*informers);
  };
  status_sources.metrics = [&] {
    return RenderPrometheus(CollectMetrics(*informers, status_sources.readiness(), &grpc_requests));
  };
  std::unique_ptr<HttpServer> metrics_server;
  if (!options.metrics_listen_address.empty()) {
    auto started = HttpServer::Start(
        options.metrics_listen_address,
        [&status_sources](const HttpRequest& request) {
          return ServeStatusRequest(status_sources, request);
        },
        logging.For("metrics"));
    if (!started.ok()) return started.status();
    metrics_server = *std::move(started);
  }
  informers->Start();

  // Readiness (gRPC health): every configured resource has synced. Looked at twice a second.
  boost::asio::steady_timer readiness_timer(io);
  std::function<void()> check_readiness = [&] {
    // A handler already queued when the timer is cancelled still runs with success: once
    // shutting down, health stays NOT_SERVING.
    if (shutting_down) return;
    (*server)->SetServing(informers->AllSynced());
    readiness_timer.expires_after(std::chrono::milliseconds(500));
    readiness_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) check_readiness();
    });
  };
  check_readiness();

  std::thread shutdown_thread;
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    logger->info("received {}, shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
    readiness_timer.cancel();
    shutting_down = true;
    (*server)->SetServing(false);
    // Open streams end with UNAVAILABLE (retry elsewhere) instead of being cut at the grace
    // period; waiting List/Get calls end too.
    informer_service.Shutdown();
    informers->Stop();
    // Queued behind the informers' Stop on the same strand: subscriptions have ended by then, so
    // streams finish promptly and the grace period is only for stragglers. The server's Shutdown
    // blocks until every call has finished, and a call still resolving its resource finishes on
    // the strand: so it waits on its own thread while this one keeps running the strand.
    boost::asio::post((*client)->strand(), [&] {
      shutdown_thread = std::thread([&] {
        (*server)->Shutdown(std::chrono::seconds(5));
        io.stop();
      });
    });
  });
  io.run();
  if (shutdown_thread.joinable()) shutdown_thread.join();
  logger->info("informerd stopped");
  return absl::OkStatus();
}

}  // namespace informerd::daemon
