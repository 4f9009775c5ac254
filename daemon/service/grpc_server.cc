#include "daemon/service/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

using CallDone = std::function<void(std::string_view method, int code)>;

// Reports each call's method and status code when the status is sent. One per call; gRPC
// owns it.
class CallCountingInterceptor : public grpc::experimental::Interceptor {
 public:
  CallCountingInterceptor(const char* method, const CallDone& done)
      : method_(method != nullptr ? method : "unknown"), done_(done) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      done_(method_, static_cast<int>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  const char* method_;  // the registered method's name: lives as long as the server
  const CallDone& done_;
};

class CallCountingFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCountingFactory(CallDone done) : done_(std::move(done)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallCountingInterceptor(info->method(), done_);
  }

 private:
  const CallDone done_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const std::string& listen_address, const std::vector<grpc::Service*>& services,
    std::shared_ptr<spdlog::logger> logger, GrpcServerOptions options) {
  // Both are process-wide switches in gRPC's API; they take effect for servers built after them.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which lets a second daemon bind the same port and steal
  // half the connections; a port in use must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(-1);  // a List of many large objects is one message
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(options.keepalive_time.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(options.keepalive_timeout.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(options.min_client_ping_interval.count()));
  // Pings without data in between are fine: a quiet Subscribe stream is the normal case.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  int port = 0;
  builder.AddListeningPort(listen_address, grpc::InsecureServerCredentials(), &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  if (options.on_call_done) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<CallCountingFactory>(options.on_call_done));
    builder.experimental().SetInterceptorCreators(std::move(factories));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {} (address in use, not a local address, or not permitted); "
                    "choose another with --listen",
                    listen_address));
  }
  const std::string host = listen_address.substr(0, listen_address.rfind(':'));
  std::string address = fmt::format("{}:{}", host, port);
  auto result = std::unique_ptr<GrpcServer>(new GrpcServer(
      std::move(server), std::move(address), std::move(logger), options.health_service_names));
  // gRPC's default health service starts with "" SERVING: turn it NOT_SERVING before the address
  // is logged, so that a client that learns the address from the log never sees the daemon
  // ready before it is.
  result->SetServing(false);
  result->logger_->info("gRPC listening on {}", result->address_);
  return result;
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server, std::string address,
                       std::shared_ptr<spdlog::logger> logger,
                       std::vector<std::string> service_names)
    : server_(std::move(server)),
      address_(std::move(address)),
      logger_(std::move(logger)),
      service_names_(std::move(service_names)) {}

void GrpcServer::SetServing(bool serving) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || serving_ == static_cast<int>(serving)) return;
  const bool first = serving_ < 0;
  serving_ = serving;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  // "" is the overall status that probes look at: it turns SERVING last and NOT_SERVING first,
  // so that whoever sees it SERVING sees every service name SERVING too.
  if (!serving) health->SetServingStatus("", false);
  for (const std::string& name : service_names_) health->SetServingStatus(name, serving);
  if (serving) health->SetServingStatus("", true);
  if (!first || serving) {
    logger_->info("health: {}", serving ? "SERVING (ready)" : "NOT_SERVING (not ready)");
  }
}

GrpcServer::~GrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  }
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  logger_->info("gRPC server stopped");
}

}  // namespace informerd::daemon
