#include "daemon/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const std::string& listen_address, const std::vector<grpc::Service*>& services,
    std::shared_ptr<spdlog::logger> logger) {
  // Both are process-wide switches in gRPC's API; they take effect for servers built after them.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which lets a second daemon bind the same port and steal
  // half the connections; a port in use must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(listen_address, grpc::InsecureServerCredentials(), &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {} (address in use, not a local address, or not permitted); "
                    "choose another with --listen",
                    listen_address));
  }
  const std::string host = listen_address.substr(0, listen_address.rfind(':'));
  std::string address = fmt::format("{}:{}", host, port);
  return std::unique_ptr<GrpcServer>(
      new GrpcServer(std::move(server), std::move(address), std::move(logger)));
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server, std::string address,
                       std::shared_ptr<spdlog::logger> logger)
    : server_(std::move(server)), address_(std::move(address)), logger_(std::move(logger)) {
  logger_->info("gRPC listening on {}", address_);
}

GrpcServer::~GrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  logger_->info("gRPC server stopped");
}

}  // namespace informerd::daemon
