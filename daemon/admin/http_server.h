// HttpServer: a small HTTP/1.1 server (Boost.Beast) for informerd's two HTTP ports: the metrics
// port (/metrics, /healthz, /readyz) and the probe port (/healthz, /readyz for the kubelet), each
// its own HttpServer (daemon/admin/status_endpoints.*). Keep-alive, GET and HEAD only, small
// requests; anything else gets a 4xx and the server carries on.
//
// Modelled on Boost.Beast's example/http/server/async: one session object per connection
// (enable_shared_from_this), reading a request, asking the handler, writing the response, and
// reading again while the client keeps the connection alive.
//
// Limits, so that no client, however hostile, keeps another's request from being answered:
//   - A request's headers (and its body, at most 8 KiB) must arrive whole within header_timeout
//     of its first byte, and a new connection must start its request within header_timeout: a
//     client sending its headers byte by byte (slowloris), or connecting and saying nothing, is
//     cut.
//   - A kept-alive connection with no new request for idle_timeout is closed; writing a response
//     may take write_timeout.
//   - At most max_connections are open. A new connection beyond that closes the connection that
//     has waited longest for its client (one finishing its close first, then one idle between
//     requests, then one still sending its request), never one being answered; when every
//     connection is being answered, new ones wait in the listen backlog until one finishes (at
//     most write_timeout). Idle sockets therefore never shut anyone out, as a limit that closed
//     the newcomer would: 64 sockets that connect and wait would make every probe fail.
// Each of these closings is counted (HttpServerCounters), for the metrics.
//
// Ownership and threads: the daemon owns it (daemon/app.cc). It runs its own io_context on one
// thread of its own, so probes and scrapes are answered even while the apiserver client's thread
// is busy with a large list; the handler is called on that thread, one request at a time, and
// must be thread-safe with respect to the daemon (it reads the informers and caches). Start()
// binds before returning, so a port in use is a start-up error. Stop() (or the destructor) closes
// every connection and joins the thread.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
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

// What a server has done with its connections, for the metrics: plain values.
struct HttpServerStats {
  uint64_t open = 0;  // connections open now
  uint64_t max_connections = 0;
  uint64_t accepted = 0;
  // Closed to make room for a new connection at max_connections.
  uint64_t evicted = 0;
  // New connections that found every connection being answered and waited for room.
  uint64_t waited = 0;
  // Closed for not sending a whole request within header_timeout (or not starting one).
  uint64_t header_timeouts = 0;
  // Kept alive with no new request for idle_timeout.
  uint64_t idle_timeouts = 0;
  // The client did not take the response within write_timeout.
  uint64_t write_timeouts = 0;
};

// The counters behind HttpServerStats. Written by the server's thread, read by any thread (a
// scrape of the other port): relaxed atomics. Owned by the caller and passed in
// HttpServerOptions, so that they can be read before the server has started and after it stops.
class HttpServerCounters {
 public:
  HttpServerStats Snapshot() const;

  std::atomic<uint64_t> open{0};
  std::atomic<uint64_t> max_connections{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> evicted{0};
  std::atomic<uint64_t> waited{0};
  std::atomic<uint64_t> header_timeouts{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> write_timeouts{0};
};

struct HttpServerOptions {
  // A request must arrive whole (headers, and a body if any) within this long of its first byte,
  // and a new connection must send its first byte within this long. Scrapers and the kubelet
  // send a request of a few hundred bytes at once.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(5)};
  // A kept-alive connection with no new request for this long is closed (Prometheus scrapes
  // every 15-60 s on one connection).
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  // Writing one response may take this long.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  // At most this many connections open; beyond it, see the header comment. At least 1.
  std::size_t max_connections = 64;
  // Where the server counts what it does; may be null. Must outlive the server.
  HttpServerCounters* counters = nullptr;
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

  // What it has done with its connections (the counters of HttpServerOptions, or its own).
  // Any thread.
  HttpServerStats stats() const;

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
