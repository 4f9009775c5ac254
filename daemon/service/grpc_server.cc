#include "daemon/service/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "daemon/listen_address.h"
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

// Makes way for a unix socket at `address.socket_path`: nothing there is fine; a socket nobody
// accepts connections on (left by a process that is gone) is removed; a socket something serves
// on, or any other file, is an error and stays.
absl::Status PrepareSocketPath(const ListenAddress& address, spdlog::logger& logger) {
  const std::string& path = address.socket_path;
  struct stat info {};
  if (lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::UnavailableError(
        fmt::format("cannot listen on {}: {}: {}", address.text, path, std::strerror(errno)));
  }
  if (!S_ISSOCK(info.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("cannot listen on {}: {} exists and is not a socket (left as it is: remove "
                    "it or choose another path)",
                    address.text, path));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {}: socket: {}", address.text, std::strerror(errno)));
  }
  sockaddr_un socket_address{};
  socket_address.sun_family = AF_UNIX;
  std::memcpy(socket_address.sun_path, path.data(), path.size());  // length checked by parsing
  const int connected =
      connect(fd, reinterpret_cast<const sockaddr*>(&socket_address), sizeof socket_address);
  const int connect_errno = errno;
  close(fd);
  if (connected == 0) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {}: another process is serving on {}", address.text, path));
  }
  if (connect_errno != ECONNREFUSED) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {}: cannot tell whether {} is in use: {}", address.text, path,
                    std::strerror(connect_errno)));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {}: cannot remove the stale socket {}: {}", address.text,
                    path, std::strerror(errno)));
  }
  logger.info("removed the stale socket file {} (nothing was serving on it)", path);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const std::string& listen_address, std::shared_ptr<grpc::ServerCredentials> credentials,
    const std::vector<grpc::Service*>& services, std::shared_ptr<spdlog::logger> logger,
    GrpcServerOptions options) {
  const absl::StatusOr<ListenAddress> parsed = ParseListenAddress(listen_address);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("--listen: {}", std::string(parsed.status().message())));
  }
  if (parsed->is_unix()) {
    if (absl::Status prepared = PrepareSocketPath(*parsed, *logger); !prepared.ok()) {
      return prepared;
    }
  }

  // Both are process-wide switches in gRPC's API; they take effect for servers built after them.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which lets a second daemon bind the same port and steal
  // half the connections; a port in use must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
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
  builder.AddListeningPort(parsed->ForGrpc(), std::move(credentials), &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  if (options.on_call_done) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<CallCountingFactory>(options.on_call_done));
    builder.experimental().SetInterceptorCreators(std::move(factories));
  }
  std::unique_ptr<grpc::Server> server;
  if (parsed->is_unix()) {
    // bind() creates the socket file with 0777 & ~umask: narrowed for the bind, so that the file
    // is never more open than asked, even for the moment before the chmod below. umask is
    // process-wide; nothing else creates files while the daemon starts.
    const mode_t previous = umask(0777 & ~static_cast<mode_t>(options.unix_socket_mode));
    server = builder.BuildAndStart();
    umask(previous);
  } else {
    server = builder.BuildAndStart();
  }
  if (!server || port == 0) {
    return absl::UnavailableError(
        parsed->is_unix()
            ? fmt::format("cannot listen on {} (does the directory exist, and may informerd "
                          "create files in it?); choose another with --listen",
                          listen_address)
            : fmt::format("cannot listen on {} (address in use, not a local address, or not "
                          "permitted); choose another with --listen",
                          listen_address));
  }
  std::string address = listen_address;
  if (parsed->is_unix()) {
    if (chmod(parsed->socket_path.c_str(), static_cast<mode_t>(options.unix_socket_mode)) != 0) {
      const int chmod_errno = errno;
      server->Shutdown(std::chrono::system_clock::now());
      server->Wait();
      return absl::UnavailableError(fmt::format("cannot listen on {}: chmod {:o} {}: {}",
                                                listen_address, options.unix_socket_mode,
                                                parsed->socket_path, std::strerror(chmod_errno)));
    }
  } else {
    address = fmt::format("{}:{}", parsed->host, port);
  }
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
