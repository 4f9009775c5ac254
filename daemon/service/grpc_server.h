// GrpcServer: the daemon's gRPC endpoint, with the standard health service and reflection.
//
// Owned by the daemon's top level (daemon/app.cc). gRPC runs its own completion threads; the
// services registered here must be thread-safe. Start() binds before returning, so a port
// conflict is reported at start-up; Shutdown() is called once, from the thread that handles
// SIGTERM/SIGINT, and ends open streams after a grace period.
//
// Connections are accepted by a ConnectionGate (daemon/service/connection_gate.h) of the server's
// own, on a thread of its own, and handed to gRPC with the server's credentials: that is where
// the limit on connections and the guard against stream-reset floods live, which gRPC 1.51 does
// not have. What gRPC enforces itself is set as channel arguments (GrpcServerOptions): keepalive
// and its enforcement, concurrent streams per connection, connection age, the handshake timeout.
//
// Unix sockets (unix:PATH, unix:///ABS/PATH): a socket file left at PATH by a process that is
// gone (nothing accepts connections on it) is removed before binding; a socket something still
// serves on, and a file that is not a socket, are start-up errors and left alone. The socket is
// created with `unix_socket_mode` (the process umask is narrowed while binding, so it is never
// more open than that) and chmod'ed to it; who may connect is then decided by that mode, the
// file's owner and group (the daemon's user and group), and the directories above it. The socket
// file is removed when the server shuts down.
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/service/connection_gate.h"

namespace informerd::daemon {

// Transport settings for long-lived streams and large objects, and the limits on what one
// connection may cost.
struct GrpcServerOptions {
  // The largest request accepted. Requests are small; this leaves room for long selectors, which
  // the service rejects with a message of its own instead of gRPC's RESOURCE_EXHAUSTED.
  int max_receive_message_bytes = 16 << 20;
  // The largest message sent: a List answer, a Get's object, a Subscribe event. The daemon sets
  // it to what it means to send at most (--max-list-response-bytes, or one object of
  // maxObjectBytes, with room for the framing), so that no legitimate answer trips it; a larger
  // one fails RESOURCE_EXHAUSTED rather than being built and buffered whole. The default suits
  // the defaults (32 MiB objects).
  int max_send_message_bytes = (32 << 20) + (1 << 20);
  // Server → client keepalive ping on an idle connection, and how long to wait for the ack. Keeps
  // quiet Subscribe streams alive through proxies and load balancers that drop idle connections
  // (most cut at 60 s or more) and detects clients that vanished without a FIN, however long the
  // stream has been quiet.
  std::chrono::milliseconds keepalive_time{std::chrono::seconds(30)};
  std::chrono::milliseconds keepalive_timeout{std::chrono::seconds(10)};
  // Client keepalive enforcement: a client ping that comes sooner than this after the previous
  // one, with no data sent by the server in between, is a strike; more than `max_ping_strikes`
  // and the connection is sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and closed. Must not
  // exceed the keepalive interval documented for clients (README: 30 s); grpc-go's and
  // grpc-java's clients refuse to ping more often than every 10 s anyway. 2 strikes is gRPC's
  // default (0 would mean unlimited).
  std::chrono::milliseconds min_client_ping_interval{std::chrono::seconds(10)};
  int max_ping_strikes = 2;
  // Streams one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): gRPC
  // clients queue the calls beyond it until a stream ends; a client that opens more anyway has its
  // connection closed. 100, the least HTTP/2 recommends, as nginx (128) and Envoy's edge
  // configuration (100) choose; Go's HTTP/2 server allows 250.
  int max_concurrent_streams = 100;
  // Connections open at once, and calls in flight on one TCP connection beyond which it is closed
  // (ConnectionGateOptions; 0 calls: not checked).
  std::size_t max_connections = 1000;
  std::size_t max_calls_per_connection = 200;
  // A connection is sent GOAWAY at about this age (gRPC adds ±10% jitter), so that clients
  // reconnect and spread over the replicas behind a Service; calls still open then get `grace`
  // to finish, after which the connection is closed and they end UNAVAILABLE (a Subscribe
  // resumes from its last resource version). Zero: no limit.
  std::chrono::milliseconds max_connection_age{std::chrono::minutes(30)};
  std::chrono::milliseconds max_connection_age_grace{std::chrono::minutes(5)};
  // How long a new connection has to finish its TLS handshake and send its HTTP/2 settings
  // before it is closed (gRPC's default is 120 s): a socket that connects and says nothing holds
  // a place under max_connections for at most this long.
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(20)};
  // The permissions of a unix socket's file (ignored for TCP). 0660: the daemon's user and group.
  unsigned unix_socket_mode = 0660;
  // Service names the health service reports besides "" (for example
  // "informerd.v1.Informer"), all with the same readiness.
  std::vector<std::string> health_service_names;
  // Called once per finished call, on a gRPC thread, with the full method name
  // ("/informerd.v1.Informer/List") and the status code sent: the metrics' request counts. Must
  // be quick and thread-safe. Optional.
  std::function<void(std::string_view method, int code)> on_call_done;
  // gRPC's threads lower their CPU priority to this nice value as they handle calls
  // (daemon/service/thread_priority.h): serializing, encrypting and sending answers then yield
  // the cores to ingest when both want them. 0: gRPC's threads keep the process's priority.
  int call_thread_nice = 0;
};

class GrpcServer {
 public:
  // Binds `listen_address` (host:port, port 0 picking a free one; or unix:PATH, see above) with
  // `credentials` (daemon/service/server_credentials.h decides which) and serves `services`,
  // which must outlive the server. Health starts NOT_SERVING for "" and for each service's name
  // (before the first connection is accepted): call SetServing once the daemon is ready.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const std::string& listen_address, std::shared_ptr<grpc::ServerCredentials> credentials,
      const std::vector<grpc::Service*>& services, std::shared_ptr<spdlog::logger> logger,
      GrpcServerOptions options = {});

  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The address actually bound: host:port with the chosen port, or a unix socket address as
  // given.
  const std::string& address() const { return address_; }

  // Readiness as the grpc.health.v1 service reports it, for "" and every service name. Any
  // thread; logs changes.
  void SetServing(bool serving);

  // Health turns NOT_SERVING, new calls are refused, open calls get `grace` to finish and are
  // then cancelled. Blocks until the server has stopped.
  void Shutdown(std::chrono::milliseconds grace);

  // The connections' counts, for /metrics. Any thread.
  ConnectionGateStats connection_stats() const { return gate_->stats(); }

 private:
  GrpcServer(std::unique_ptr<ConnectionGate> gate,
             std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor,
             std::unique_ptr<grpc::Server> server, std::string address,
             std::shared_ptr<spdlog::logger> logger, std::vector<std::string> service_names);

  // Destroyed in reverse: the server (every call finished) before the acceptor and the gate its
  // calls report to.
  std::unique_ptr<ConnectionGate> gate_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mu_;
  bool stopped_ = false;  // guarded by mu_
  int serving_ = -1;      // guarded by mu_: -1 unknown, 0 not serving, 1 serving
  std::vector<std::string> service_names_;
};

}  // namespace informerd::daemon
