// Specification of the metrics port: daemon/admin/http_server.* serving
// daemon/admin/status_endpoints.*'s pages over real sockets (a Beast client), with readiness and
// metrics from fakes.
#include "daemon/admin/http_server.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "daemon/admin/status_endpoints.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/http_client.h"

namespace informerd::daemon {
namespace {

using test::HttpConnection;
using test::HttpGet;

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// A server on a free port of `listen_host` (loopback by default) whose readiness the test sets.
struct Harness {
  explicit Harness(HttpServerOptions options = {}, const std::string& listen_host = "127.0.0.1") {
    sources.metrics = [] { return std::string("informerd_up 1\n"); };
    sources.readiness = [this] {
      Readiness readiness;
      readiness.ready = ready;
      if (!ready)
        readiness.not_ready = {"pods (all namespaces): the initial list has not completed"};
      return readiness;
    };
    auto started = HttpServer::Start(
        listen_host + ":0",
        [this](const HttpRequest& request) { return ServeStatusRequest(sources, request); },
        NullLogger(), options);
    REQUIRE(started.ok());
    server = std::move(*started);
  }

  std::atomic<bool> ready{false};
  StatusSources sources;
  std::unique_ptr<HttpServer> server;
};

TEST_CASE("/metrics answers the exposition with Prometheus's content type") {
  Harness h;
  auto reply = HttpGet(h.server->address(), "/metrics");
  REQUIRE(reply.ok());
  CHECK(reply->status == 200);
  CHECK(reply->content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(reply->body == "informerd_up 1\n");
  // A query string (some scrapers add one) does not change the page.
  auto with_query = HttpGet(h.server->address(), "/metrics?format=text");
  REQUIRE(with_query.ok());
  CHECK(with_query->body == "informerd_up 1\n");
}

TEST_CASE("/healthz is 200 while the process runs; /readyz is 503 with reasons, then 200") {
  Harness h;
  auto health = HttpGet(h.server->address(), "/healthz");
  REQUIRE(health.ok());
  CHECK(health->status == 200);
  CHECK(health->body == "ok\n");

  auto not_ready = HttpGet(h.server->address(), "/readyz");
  REQUIRE(not_ready.ok());
  CHECK(not_ready->status == 503);
  CHECK(not_ready->body ==
        "not ready:\n  pods (all namespaces): the initial list has not completed\n");

  h.ready = true;
  auto ready = HttpGet(h.server->address(), "/readyz");
  REQUIRE(ready.ok());
  CHECK(ready->status == 200);
  CHECK(ready->body == "ok\n");
}

// This host's first IPv4 address that is not loopback, if it has one.
std::optional<std::string> NonLoopbackAddress() {
  ifaddrs* addresses = nullptr;
  if (getifaddrs(&addresses) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* entry = addresses; entry != nullptr && !found; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    if ((entry->ifa_flags & IFF_LOOPBACK) != 0 || (entry->ifa_flags & IFF_UP) == 0) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
    if (inet_ntop(AF_INET, &address->sin_addr, text, sizeof text) != nullptr) found = text;
  }
  freeifaddrs(addresses);
  return found;
}

std::string Port(const std::string& address) { return address.substr(address.rfind(':') + 1); }

TEST_CASE("/readyz: the reasons only to a client on this host; others get a bare answer") {
  const std::optional<std::string> own_address = NonLoopbackAddress();
  if (!own_address) {
    WARN("no non-loopback IPv4 address on this host: only the handler is checked");
  }
  Harness h({}, "0.0.0.0");
  const std::string port = Port(h.server->address());

  auto local = HttpGet("127.0.0.1:" + port, "/readyz");
  REQUIRE(local.ok());
  CHECK(local->status == 503);
  CHECK(local->body == "not ready:\n  pods (all namespaces): the initial list has not completed\n");
  if (own_address) {
    auto remote = HttpGet(*own_address + ":" + port, "/readyz");
    REQUIRE(remote.ok());
    CHECK(remote->status == 503);
    CHECK(remote->body == "failed\n");
    h.ready = true;
    auto ready = HttpGet(*own_address + ":" + port, "/readyz");
    REQUIRE(ready.ok());
    CHECK(ready->status == 200);
    CHECK(ready->body == "ok\n");
    h.ready = false;
  }

  // The handler alone, for hosts without another address.
  HttpRequest request{"GET", "/readyz"};
  request.from_loopback = false;
  HttpResponse bare = ServeStatusRequest(h.sources, request);
  CHECK(bare.status == 503);
  CHECK(bare.body == "failed\n");
  request.from_loopback = true;
  HttpResponse detailed = ServeStatusRequest(h.sources, request);
  CHECK(detailed.status == 503);
  CHECK(detailed.body ==
        "not ready:\n  pods (all namespaces): the initial list has not completed\n");
}

TEST_CASE("/readyz: an IPv4 client of a dual-stack listener on [::] is on this host too") {
  HttpServerOptions options;
  auto started = HttpServer::Start(
      "[::]:0",
      [](const HttpRequest& request) {
        HttpResponse response;
        response.body = request.from_loopback ? "loopback\n" : "other\n";
        return response;
      },
      NullLogger(), options);
  if (!started.ok()) {
    WARN("no IPv6 here: " << started.status().ToString());
    return;
  }
  const std::string port = Port((*started)->address());
  auto mapped = HttpGet("127.0.0.1:" + port, "/readyz");
  REQUIRE(mapped.ok());
  CHECK(mapped->body == "loopback\n");
  auto v6 = HttpGet("[::1]:" + port, "/readyz");
  if (v6.ok()) CHECK(v6->body == "loopback\n");
  if (const std::optional<std::string> own_address = NonLoopbackAddress()) {
    auto remote = HttpGet(*own_address + ":" + port, "/readyz");
    REQUIRE(remote.ok());
    CHECK(remote->body == "other\n");
  }
}

TEST_CASE("the probe port: /healthz and /readyz only; /metrics is not rendered there") {
  std::atomic<int> scrapes{0};
  std::atomic<bool> ready{false};
  StatusSources sources;
  sources.metrics = [&] {
    ++scrapes;
    return std::string("informerd_up 1\n");
  };
  sources.readiness = [&] {
    Readiness readiness;
    readiness.ready = ready;
    if (!ready) readiness.not_ready = {"pods (all namespaces): the initial list has not completed"};
    return readiness;
  };
  HttpServerOptions options;
  options.name = "probes";
  options.flag = "--probe-listen";
  auto started = HttpServer::Start(
      "127.0.0.1:0",
      [&](const HttpRequest& request) { return ServeProbeRequest(sources, request); }, NullLogger(),
      options);
  REQUIRE(started.ok());
  const std::string address = (*started)->address();

  auto health = HttpGet(address, "/healthz");
  REQUIRE(health.ok());
  CHECK(health->status == 200);
  CHECK(health->body == "ok\n");
  auto not_ready = HttpGet(address, "/readyz?verbose");
  REQUIRE(not_ready.ok());
  CHECK(not_ready->status == 503);
  CHECK(not_ready->body ==
        "not ready:\n  pods (all namespaces): the initial list has not completed\n");
  ready = true;
  auto now_ready = HttpGet(address, "/readyz");
  REQUIRE(now_ready.ok());
  CHECK(now_ready->status == 200);
  auto metrics = HttpGet(address, "/metrics");
  REQUIRE(metrics.ok());
  CHECK(metrics->status == 404);
  CHECK(metrics->body ==
        "not found: /metrics (the probe port serves /healthz and /readyz; /metrics is on the "
        "metrics port)\n");
  CHECK(scrapes == 0);

  // The handler alone: a client elsewhere gets the bare answer, as on the metrics port.
  ready = false;
  HttpRequest request{"GET", "/readyz"};
  CHECK(ServeProbeRequest(sources, request).body == "failed\n");
  // A start-up error names the probe port's flag.
  auto again = HttpServer::Start(
      address, [](const HttpRequest&) { return HttpResponse{}; }, NullLogger(), options);
  REQUIRE_FALSE(again.ok());
  CHECK(std::string(again.status().message()).find("for probes") != std::string::npos);
  CHECK(std::string(again.status().message()).find("--probe-listen") != std::string::npos);
}

TEST_CASE("unknown paths are 404, other methods 405, HEAD has headers only") {
  Harness h;
  auto connection = HttpConnection::Open(h.server->address());
  REQUIRE(connection.ok());
  auto missing = connection->Request("GET", "/nope");
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  CHECK(missing->body.find("/nope") != std::string::npos);
  auto post = connection->Request("POST", "/metrics");
  REQUIRE(post.ok());
  CHECK(post->status == 405);
  auto head = connection->Request("HEAD", "/metrics");
  REQUIRE(head.ok());
  CHECK(head->status == 200);
  CHECK(head->body == std::to_string(std::string("informerd_up 1\n").size()));  // Content-Length
  // The connection is still usable after all three.
  auto metrics = connection->Request("GET", "/metrics");
  REQUIRE(metrics.ok());
  CHECK(metrics->body == "informerd_up 1\n");
}

TEST_CASE("keep-alive: many requests on one connection; Connection: close is honoured") {
  Harness h;
  auto connection = HttpConnection::Open(h.server->address());
  REQUIRE(connection.ok());
  for (int i = 0; i < 5; ++i) {
    auto reply = connection->Request("GET", i % 2 == 0 ? "/metrics" : "/healthz");
    REQUIRE(reply.ok());
    CHECK(reply->status == 200);
    CHECK_FALSE(reply->close);
  }
  auto last = connection->Request("GET", "/healthz", /*keep_alive=*/false);
  REQUIRE(last.ok());
  CHECK(last->close);
  CHECK(connection->ClosedByServer());
}

TEST_CASE("a malformed request gets 400 and a closed connection; the server carries on") {
  Harness h;
  {
    auto connection = HttpConnection::Open(h.server->address());
    REQUIRE(connection.ok());
    auto reply = connection->SendRaw("THIS IS NOT HTTP\r\n\r\n");
    REQUIRE(reply.ok());
    CHECK(reply->status == 400);
    CHECK(connection->ClosedByServer());
  }
  {
    // Oversized headers.
    auto connection = HttpConnection::Open(h.server->address());
    REQUIRE(connection.ok());
    auto reply = connection->SendRaw(
        "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(64 << 10, 'x') + "\r\n\r\n");
    REQUIRE(reply.ok());
    CHECK(reply->status == 400);
  }
  {
    // A client that connects and leaves without a word.
    auto connection = HttpConnection::Open(h.server->address());
    REQUIRE(connection.ok());
  }
  auto reply = HttpGet(h.server->address(), "/healthz");
  REQUIRE(reply.ok());
  CHECK(reply->status == 200);
}

TEST_CASE("an idle connection is closed after the idle timeout") {
  HttpServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(200);
  Harness h(options);
  auto connection = HttpConnection::Open(h.server->address());
  REQUIRE(connection.ok());
  REQUIRE(connection->Request("GET", "/healthz").ok());
  const auto started = std::chrono::steady_clock::now();
  CHECK(connection->ClosedByServer());
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
}

TEST_CASE("a port in use is a start-up error naming the flag; Stop closes open connections") {
  Harness h;
  auto second = HttpServer::Start(
      h.server->address(), [](const HttpRequest&) { return HttpResponse{}; }, NullLogger());
  REQUIRE_FALSE(second.ok());
  CHECK(std::string(second.status().message())
            .find("cannot listen on " + h.server->address() + " for metrics") != std::string::npos);
  CHECK(std::string(second.status().message()).find("--metrics-listen") != std::string::npos);

  auto connection = HttpConnection::Open(h.server->address());
  REQUIRE(connection.ok());
  REQUIRE(connection->Request("GET", "/healthz").ok());
  h.server->Stop();
  CHECK(connection->ClosedByServer());
  CHECK_FALSE(HttpGet(h.server->address(), "/healthz").ok());
}

TEST_CASE("a bad address is a start-up error naming the address, why, and the flag") {
  const auto start = [](const std::string& address) {
    return HttpServer::Start(
        address, [](const HttpRequest&) { return HttpResponse{}; }, NullLogger());
  };
  const auto check = [](const absl::StatusOr<std::unique_ptr<HttpServer>>& started,
                        const std::string& message) {
    REQUIRE_FALSE(started.ok());
    CHECK(started.status().code() == absl::StatusCode::kUnavailable);
    CHECK(std::string(started.status().message()) == message);
  };
  // An address no interface of this host has (TEST-NET-1): bind() refuses it.
  check(start("192.0.2.1:0"),
        "cannot listen on 192.0.2.1:0 for metrics (Cannot assign requested address); choose "
        "another with --metrics-listen");
  check(start("localhost"),
        "cannot listen on localhost for metrics (not HOST:PORT); choose another with "
        "--metrics-listen");
}

}  // namespace
}  // namespace informerd::daemon
