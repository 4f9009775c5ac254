#include "daemon/app.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>

#include "daemon/config.h"
#include "daemon/grpc_server.h"
#include "daemon/logging.h"
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

  // Signals are caught before anything starts, so a SIGTERM that arrives during start-up is
  // handled once the loop runs instead of killing the process mid-way.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);

  // The Informer RPCs are served by the engine once it lands; until then gRPC's generated base
  // answers every one of them UNIMPLEMENTED (the API contract allows nothing else to be faked).
  informerd::v1::Informer::CallbackService informer_service;
  auto server = GrpcServer::Start(options.listen_address, {&informer_service}, logging.For("grpc"));
  if (!server.ok()) return server.status();

  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    logger->info("received {}, shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Shutdown(std::chrono::seconds(5));
    io.stop();
  });
  io.run();
  logger->info("informerd stopped");
  return absl::OkStatus();
}

}  // namespace informerd::daemon
