#include "daemon/service/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "daemon/listen_address.h"
#include "daemon/service/thread_priority.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

using CallDone = std::function<void(std::string_view method, int code)>;

// One per call, for as long as the call lives (gRPC owns it and destroys it with the call): counts
// the call on its connection in the ConnectionGate, and reports the call's method and status code
// when the status is sent.
class CallInterceptor : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(const char* method, const CallDone& done, ConnectionGate::CallHandle handle,
                  int thread_nice)
      : method_(method != nullptr ? method : "unknown"),
        done_(done),
        handle_(std::move(handle)),
        thread_nice_(thread_nice) {
    built_.store(true, std::memory_order_release);
  }
  ~CallInterceptor() override { (void)built_.load(std::memory_order_acquire); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    (void)built_.load(std::memory_order_acquire);
    // Every thread gRPC runs a call's operations on, as it first does.
    LowerThisThreadsPriority(thread_nice_);
    if (done_ && methods->QueryInterceptionHookPoint(
                     grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      done_(method_, static_cast<int>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  const char* method_;  // the registered method's name: lives as long as the server
  const CallDone& done_;
  const ConnectionGate::CallHandle handle_;
  const int thread_nice_;
  // gRPC builds the interceptor on one of its threads and runs and destroys it on others, handing
  // it over inside libgrpc, which ThreadSanitizer cannot see (Debian's gRPC is not instrumented).
  // Publishing the construction through this flag makes the hand-over visible to it; it costs an
  // uncontended atomic per hook.
  std::atomic<bool> built_{false};
};

class CallInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallInterceptorFactory(CallDone done, ConnectionGate& gate, int thread_nice)
      : done_(std::move(done)), gate_(gate), thread_nice_(thread_nice) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // The call is bound to its context before interceptors are made: its peer is known.
    LowerThisThreadsPriority(thread_nice_);
    return new CallInterceptor(info->method(), done_,
                               gate_.CallStarted(info->server_context()->peer()), thread_nice_);
  }

 private:
  const CallDone done_;
  ConnectionGate& gate_;
  const int thread_nice_;
};

// gRPC's channel arguments are ints in milliseconds; zero durations mean "no limit" here.
int Milliseconds(std::chrono::milliseconds duration) {
  if (duration.count() <= 0 || duration.count() >= std::numeric_limits<int>::max()) {
    return std::numeric_limits<int>::max();
  }
  return static_cast<int>(duration.count());
}

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

  ConnectionGateOptions gate_options;
  gate_options.max_connections = options.max_connections;
  gate_options.max_calls_per_connection = options.max_calls_per_connection;
  gate_options.unix_socket_mode = options.unix_socket_mode;
  absl::StatusOr<std::unique_ptr<ConnectionGate>> gate =
      ConnectionGate::Bind(*parsed, gate_options, logger);
  if (!gate.ok()) return gate.status();

  // Both are process-wide switches in gRPC's API; they take effect for servers built after them.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Milliseconds(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Milliseconds(options.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             Milliseconds(options.min_client_ping_interval));
  // Finite: 0 would mean unlimited strikes, letting a client ping as often as it likes.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES,
                             std::max(1, options.max_ping_strikes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             Milliseconds(options.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             Milliseconds(options.max_connection_age_grace));
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             Milliseconds(options.handshake_timeout));
  // The gate accepts the connections; gRPC serves each with these credentials.
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor =
      builder.experimental().AddExternalConnectionAcceptor(
          grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
          std::move(credentials));
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<CallInterceptorFactory>(options.on_call_done, **gate,
                                                               options.call_thread_nice));
  builder.experimental().SetInterceptorCreators(std::move(factories));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    return absl::UnavailableError(
        fmt::format("cannot serve gRPC on {}: the server did not start", listen_address));
  }
  std::string address = listen_address;
  if (!parsed->is_unix()) address = fmt::format("{}:{}", parsed->host, (*gate)->port());
  auto result = std::unique_ptr<GrpcServer>(
      new GrpcServer(*std::move(gate), std::move(acceptor), std::move(server), std::move(address),
                     std::move(logger), options.health_service_names));
  // gRPC's default health service starts with "" SERVING: turn it NOT_SERVING before the first
  // connection is accepted (until then they wait in the listen backlog), so that no client sees
  // the daemon ready before it is.
  result->SetServing(false);
  grpc::experimental::ExternalConnectionAcceptor* const handed_to = result->acceptor_.get();
  result->gate_->Start([handed_to](int fd, int listener_fd) {
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters connection;
    connection.listener_fd = listener_fd;
    connection.fd = fd;
    handed_to->HandleNewConnection(&connection);
  });
  result->logger_->info("gRPC listening on {}", result->address_);
  return result;
}

GrpcServer::GrpcServer(std::unique_ptr<ConnectionGate> gate,
                       std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor,
                       std::unique_ptr<grpc::Server> server, std::string address,
                       std::shared_ptr<spdlog::logger> logger,
                       std::vector<std::string> service_names)
    : gate_(std::move(gate)),
      acceptor_(std::move(acceptor)),
      server_(std::move(server)),
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
  // No new connections (and the unix socket file removed) before the open ones are wound down.
  gate_->Stop();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  logger_->info("gRPC server stopped");
}

}  // namespace informerd::daemon
