// GrpcServer: the daemon's gRPC endpoint, with the standard health service and reflection.
//
// Owned by the daemon's top level (daemon/app.cc). gRPC runs its own completion threads; the
// services registered here must be thread-safe. Start() binds before returning, so a port
// conflict is reported at start-up; Shutdown() is called once, from the thread that handles
// SIGTERM/SIGINT, and ends open streams after a grace period.
//
// Unix sockets (unix:PATH, unix:///ABS/PATH): a socket file left at PATH by a process that is
// gone (nothing accepts connections on it) is removed before binding; a socket something still
// serves on, and a file that is not a socket, are start-up errors and left alone. The socket is
// created with `unix_socket_mode` (the process umask is narrowed while binding, so it is never
// more open than that) and chmod'ed to it; who may connect is then decided by that mode, the
// file's owner and group (the daemon's user and group), and the directories above it. gRPC
// removes the socket file when the server shuts down.
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace informerd::daemon {

// Transport settings for long-lived streams and large objects.
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
  // (most cut at 60 s or more) and detects clients that vanished without a FIN.
  std::chrono::milliseconds keepalive_time{std::chrono::seconds(30)};
  std::chrono::milliseconds keepalive_timeout{std::chrono::seconds(10)};
  // The most frequent client keepalive pings tolerated (a client pinging faster is sent GOAWAY
  // "too_many_pings"). grpc-go's and grpc-java's clients allow 10 s as their minimum.
  std::chrono::milliseconds min_client_ping_interval{std::chrono::seconds(10)};
  // The permissions of a unix socket's file (ignored for TCP). 0660: the daemon's user and group.
  unsigned unix_socket_mode = 0660;
  // Service names the health service reports besides "" (for example
  // "informerd.v1.Informer"), all with the same readiness.
  std::vector<std::string> health_service_names;
  // Called once per finished call, on a gRPC thread, with the full method name
  // ("/informerd.v1.Informer/List") and the status code sent: the metrics' request counts. Must
  // be quick and thread-safe. Optional.
  std::function<void(std::string_view method, int code)> on_call_done;
};

class GrpcServer {
 public:
  // Binds `listen_address` (host:port, port 0 picking a free one; or unix:PATH, see above) with
  // `credentials` (daemon/service/server_credentials.h decides which) and serves `services`,
  // which must outlive the server. Health starts NOT_SERVING for "" and for each service's name:
  // call SetServing once the daemon is ready. (It is set before "gRPC listening on ADDRESS" is
  // logged; gRPC's default health service reports "" SERVING for the instant between the port
  // opening and that.)
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

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, std::string address,
             std::shared_ptr<spdlog::logger> logger, std::vector<std::string> service_names);

  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mu_;
  bool stopped_ = false;  // guarded by mu_
  int serving_ = -1;      // guarded by mu_: -1 unknown, 0 not serving, 1 serving
  std::vector<std::string> service_names_;
};

}  // namespace informerd::daemon
