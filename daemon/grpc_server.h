// GrpcServer: the daemon's gRPC endpoint, with the standard health service and reflection.
//
// Owned by the daemon's top level (daemon/app.cc). gRPC runs its own completion threads; the
// services registered here must be thread-safe. Start() binds before returning, so a port
// conflict is reported at start-up; Shutdown() is called once, from the thread that handles
// SIGTERM/SIGINT, and ends open streams after a grace period.
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/logger.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace informerd::daemon {

class GrpcServer {
 public:
  // Binds `listen_address` (host:port; port 0 picks a free one) and serves `services`, which must
  // outlive the server. Health reports SERVING for "" and for each service's name.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const std::string& listen_address, const std::vector<grpc::Service*>& services,
      std::shared_ptr<spdlog::logger> logger);

  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The address actually bound, with the chosen port.
  const std::string& address() const { return address_; }

  // Health turns NOT_SERVING, new calls are refused, open calls get `grace` to finish and are
  // then cancelled. Blocks until the server has stopped.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, std::string address,
             std::shared_ptr<spdlog::logger> logger);

  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::shared_ptr<spdlog::logger> logger_;
  bool stopped_ = false;
};

}  // namespace informerd::daemon
