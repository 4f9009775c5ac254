// Daemon: informerd's process, from parsed options to a clean exit. It owns every part (the
// apiserver client, discovery, the informers, the registry, the gRPC service and server, the
// metrics port), builds them in dependency order, runs them, and takes them down in reverse.
//
// Threads: Run() is called (through RunDaemon, from cmd/informerd/main.cc) on the main thread,
// which becomes the daemon's Asio I/O thread: the main apiserver client, discovery, the security
// reviews, the informer factory's own timers and the readiness timer live on that client's strand
// of that io_context, and SIGTERM/SIGINT are handled there. With --ingest-threads N above 1,
// Run() starts N-1 more threads, each running an io_context with an apiserver client of its own
// (sharing the main client's credential source); every informer lives on one of the N clients,
// the least loaded when it starts (SharedInformerFactoryOptions::ingest_clients).
// gRPC serves from its own threads, the metrics port from one of its own. A graceful
// shutdown's blocking gRPC Shutdown runs on a thread of its own (see BeginShutdown()).
//
// Shutdown (the first SIGTERM or SIGINT): health goes NOT_SERVING and /readyz 503,
// open Subscribe streams and waiting List/Get calls end with UNAVAILABLE, every informer stops,
// then the gRPC server gets a grace period for stragglers and Run() returns OK. A second
// SIGTERM/SIGINT during that grace period exits the process at once with status 1 (an operator
// pressing Ctrl-C twice, or a kubelet that has waited long enough, means it).
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clock.h"
#include "daemon/admin/http_server.h"
#include "daemon/admin/metrics.h"
#include "daemon/admin/status_endpoints.h"
#include "daemon/config.h"
#include "daemon/informers/discovery_resource_resolver.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/informers/shared_informer_factory.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/discovery.h"
#include "daemon/logging.h"
#include "daemon/options.h"
#include "daemon/security/access_control.h"
#include "daemon/security/authorizer.h"
#include "daemon/security/request_authenticator.h"
#include "daemon/security/subject_access_review_authorizer.h"
#include "daemon/security/token_review_authenticator.h"
#include "daemon/service/grpc_server.h"
#include "daemon/service/informer_service.h"

namespace informerd::daemon {

class Daemon {
 public:
  // Reads the configuration and the apiserver credentials, builds every part and binds the
  // gRPC and metrics ports; nothing runs yet. Errors are start-up errors (bad config, broken
  // kubeconfig, port in use) whose message names what was wrong.
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(const Options& options);
  // Stops the informers and runs the io_context's ready handlers (completions of what Stop
  // cancelled) while every part still exists, then destroys the parts in the reverse of their
  // declaration order. Operations still in flight (a GET awaiting its answer) are not waited
  // for: their handlers are destroyed with the io_context, and hold only shared state of their
  // own.
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts the informers and serves until shut down; returns OK after a graceful shutdown. On
  // the calling thread, once.
  absl::Status Run();

 private:
  explicit Daemon(const Options& options);
  absl::Status Build(const Options& options);
  // The authenticator, authorizer and access control from the flags (client_ must exist).
  void BuildAccessControl(const Options& options);
  // On the I/O thread.
  void OnSignal(int signal_number);
  void BeginShutdown();
  void CheckReadiness();
  // Stops the ingest threads' io_contexts and joins the threads (their queued handlers stay for
  // the destructor). Idempotent; on the main thread.
  void StopIngestThreads();

  // Declared in dependency order: each member may borrow any member declared before it, never
  // one after it. C++ destroys members in reverse, so everything is destroyed before what it
  // borrows — the metrics server (which reads the informers) before the informers, the
  // informers before the registry, discovery and client they use, and the io_context, whose
  // queued handlers may still hold parts of them, last.
  const Logging logging_;
  std::shared_ptr<spdlog::logger> logger_;
  const core::SteadyClock clock_;
  Config config_;
  boost::asio::io_context io_;
  // The extra ingest threads' io_contexts (--ingest-threads minus the main thread), and what
  // keeps each running while it has nothing to do; run by ingest_threads_.
  std::vector<std::unique_ptr<boost::asio::io_context>> ingest_io_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      ingest_work_;
  std::unique_ptr<ApiServerClient> client_;
  // One client per ingest_io_ entry; with client_, where the informers run.
  std::vector<std::unique_ptr<ApiServerClient>> ingest_clients_;
  // Who is calling and what they may read, decided by the apiserver through client_ (TokenReview,
  // SubjectAccessReview): what the gRPC service asks before it reads anything for a call.
  // Null with --authentication-token-webhook=false.
  std::unique_ptr<TokenReviewAuthenticator> token_reviews_;
  std::unique_ptr<RequestAuthenticator> authenticator_;
  // SubjectAccessReviewAuthorizer (--authorization-mode=Webhook; also access_reviews_, for its
  // metrics) or AlwaysAllowAuthorizer.
  std::unique_ptr<Authorizer> authorizer_;
  const SubjectAccessReviewAuthorizer* access_reviews_ = nullptr;
  std::unique_ptr<AccessControl> access_control_;
  std::unique_ptr<Discovery> discovery_;
  // What the gRPC service serves: every informer is added as it starts.
  ResourceRegistry registry_;
  std::unique_ptr<DiscoveryResourceResolver> resolver_;
  std::unique_ptr<InformerService> service_;
  // Keeps the registry current: configured informers as they start, placeholders for resources
  // gone upstream, on-demand informers while they have readers.
  std::shared_ptr<SharedInformerFactory> informers_;
  GrpcRequestCounters grpc_requests_;
  std::unique_ptr<GrpcServer> server_;
  // server_ for the metrics port's scrapes, which may run before it is set: published once it
  // exists.
  std::atomic<const GrpcServer*> server_for_metrics_{nullptr};
  std::atomic<bool> shutting_down_{false};
  // The HTTP ports' connection counters, which /metrics shows.
  HttpServerCounters metrics_http_;
  HttpServerCounters probe_http_;
  StatusSources status_sources_;
  // The probe port (--probe-listen): before the metrics port, whose scrapes look at it.
  std::unique_ptr<HttpServer> probe_server_;
  std::unique_ptr<HttpServer> metrics_server_;
  // Readiness (gRPC health): every configured resource has synced and is not staler than
  // maxStaleness (SharedInformerFactory::AllReady). Looked at twice a second.
  boost::asio::steady_timer readiness_timer_;
  // Runs the gRPC server's blocking Shutdown (see BeginShutdown); joined by Run().
  std::thread shutdown_thread_;
  // Run ingest_io_, one each; started by Run(), stopped and joined by StopIngestThreads().
  std::vector<std::thread> ingest_threads_;
  // Last, as its handler uses the parts above; still constructed (in the constructor) before
  // Build() starts anything, so a signal during start-up is handled once the loop runs instead
  // of killing the process mid-way.
  boost::asio::signal_set signals_;
  bool signalled_ = false;  // I/O thread only
};

// Create, then Run: main's whole job.
absl::Status RunDaemon(const Options& options);

// What the configuration's top-level keys set in the informers' options: maxObjectBytes (the
// limit on one watch event or LIST item), maxStaleness (the reflectors' bound on staleness),
// allowOnDemand and onDemandGracePeriod. Each resource entry's own keys (namespace, selectors,
// stripManagedFields, indexes) travel with the entry, which SharedInformerFactory::Create takes
// as it is. The registry is left for the caller.
SharedInformerFactoryOptions InformerFactoryOptions(const Config& config);

}  // namespace informerd::daemon
