// HttpServer: a small HTTP/1.1 server (Boost.Beast) for the metrics port: /metrics, /healthz and
// /readyz (daemon/admin/status_endpoints.*). Keep-alive, GET and HEAD only, small requests;
// anything else gets a 4xx and the server carries on.
//
// Modelled on Boost.Beast's example/http/server/async: one session object per connection
// (enable_shared_from_this), reading a request, asking the handler, writing the response, and
// reading again while the client keeps the connection alive; each read and write has a timeout,
// so an idle or stalled client is closed.
//
// Ownership and threads: the daemon owns it (daemon/app.cc). It runs its own io_context on one
// thread of its own, so probes and scrapes are answered even while the apiserver client's thread
// is busy with a large list; the handler is called on that thread, one request at a time, and
// must be thread-safe with respect to the daemon (it reads the informers and caches). Start()
// binds before returning, so a port in use is a start-up error. Stop() (or the destructor) closes
// every connection and joins the thread.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace informerd::daemon {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD": other methods are answered 405 before the handler
  std::string target;  // "/metrics?x=y", as sent
  // The client connected from this host (a loopback address): it may be told more than others.
  bool from_loopback = false;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // A connection with no complete request for this long is closed (a keep-alive connection
  // between scrapes is idle: Prometheus scrapes every 15-60 s and reconnects if needed).
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  // Writing one response may take this long.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // Connections beyond this many are closed at once.
  std::size_t max_connections = 64;
  // For the log line "NAME listening on ADDRESS" and the start-up error, which names the flag
  // that sets the address.
  std::string name = "metrics";
  std::string flag = "--metrics-listen";
};

class HttpServer {
 public:
  // Binds `listen_address` (host:port, [v6]:port; port 0 picks a free one) and serves with
  // `handler` on a thread of its own.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen_address,
                                                           HttpHandler handler,
                                                           std::shared_ptr<spdlog::logger> logger,
                                                           HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The address actually bound, with the chosen port ("127.0.0.1:41234", "[::]:9090").
  const std::string& address() const { return address_; }

  // Stops accepting, closes every connection, joins the thread. Idempotent; any thread but the
  // server's own.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace informerd::daemon
