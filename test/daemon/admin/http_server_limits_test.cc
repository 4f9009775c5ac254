// Specification of the HTTP ports' limits (daemon/admin/http_server.*) over real sockets: idle
// sockets beyond the connection limit, a slowloris client, connections busy answering, a
// connection flood and the keep-alive timeout never keep a request from being answered, and the
// server counts what it closed (HttpServerStats).
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/admin/http_server.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/http_client.h"
#include "test/common/tcp_clients.h"
#include "test/common/wait_until.h"

namespace informerd::daemon {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using test::HttpConnection;
using test::HttpGet;
using test::WaitUntil;

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// /big is 16 MiB, more than a client's socket buffers hold; anything else is "ok".
HttpResponse Answer(const HttpRequest& request) {
  HttpResponse response;
  if (request.target == "/big") {
    response.body.assign(16 << 20, 'x');
  } else {
    response.body = "ok\n";
  }
  return response;
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options = {}) {
  auto started = HttpServer::Start("127.0.0.1:0", Answer, NullLogger(), options);
  REQUIRE(started.ok());
  return std::move(*started);
}

// GET on a fresh connection: 200 "ok", or the test fails saying which request it was.
void RequireAnswered(const std::string& address, const std::string& target, int attempt) {
  auto reply = HttpGet(address, target);
  INFO(target << " request " << attempt << ": "
              << (reply.ok() ? std::to_string(reply->status) : reply.status().ToString()));
  REQUIRE(reply.ok());
  CHECK(reply->status == 200);
}

TEST_CASE("70 idle sockets on a port of 64 connections: every request is still answered") {
  auto server = StartServer();  // the defaults: 64 connections
  test::IdleConnections idle(server->address(), 70);
  REQUIRE(idle.opened() == 70);
  // The server has taken them all in: 64 open, and each beyond closed an older one.
  REQUIRE(WaitUntil([&] { return server->stats().accepted == 70; }, 5s));
  CHECK(server->stats().open == 64);
  CHECK(server->stats().evicted == 6);
  CHECK(server->stats().max_connections == 64);
  for (int i = 0; i < 10; ++i) RequireAnswered(server->address(), "/healthz", i);
  // Each request took the place of a connection waiting for its client (an idle socket, or an
  // earlier request's connection closing), never failed, never waited.
  CHECK(server->stats().open <= 64);
  CHECK(server->stats().waited == 0);
  CHECK(idle.ClosedByServer() >= 7);
}

TEST_CASE("every connection busy answering: a new one waits for room and is answered") {
  HttpServerOptions options;
  options.max_connections = 2;
  options.write_timeout = 1s;
  auto server = StartServer(options);
  // Two clients ask for a large response and never read it: their writes stay pending, and a
  // connection being answered is never closed for a newcomer.
  const std::string request = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<int> readers;
  for (int i = 0; i < 2; ++i) {
    readers.push_back(test::ConnectTcp(server->address()));
    REQUIRE(readers.back() >= 0);
    REQUIRE(send(readers.back(), request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
  }
  REQUIRE(WaitUntil([&] { return server->stats().accepted == 2; }, 5s));
  std::this_thread::sleep_for(200ms);
  const auto started = steady_clock::now();
  RequireAnswered(server->address(), "/healthz", 0);
  // It waited until the readers' writes timed out, then was answered; it was not closed.
  CHECK(steady_clock::now() - started >= 500ms);
  const HttpServerStats stats = server->stats();
  CHECK(stats.waited == 1);
  CHECK(stats.write_timeouts >= 1);
  CHECK(stats.evicted == 0);
  for (int fd : readers) close(fd);
}

TEST_CASE("slowloris, one header byte a second, is cut after the header timeout; others served") {
  HttpServerOptions options;
  options.header_timeout = 2s;
  auto server = StartServer(options);
  test::Slowloris slow(server->address(),
                       "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n",
                       1s);
  REQUIRE(slow.connected());
  // Meanwhile other clients are answered at once, again and again.
  int answered = 0;
  for (; answered < 10; ++answered) {
    RequireAnswered(server->address(), answered % 2 ? "/metrics" : "/healthz", answered);
    std::this_thread::sleep_for(150ms);
  }
  const std::optional<milliseconds> cut = slow.WaitClosed(10s);
  REQUIRE(cut);
  INFO("cut after " << cut->count() << " ms, " << slow.bytes_sent() << " bytes sent");
  CHECK(*cut >= 1900ms);
  CHECK(*cut < 4s);
  CHECK(slow.bytes_sent() < 6);
  CHECK(slow.received().empty());  // cut, not answered
  CHECK(WaitUntil([&] { return server->stats().header_timeouts == 1; }, 2s));
  RequireAnswered(server->address(), "/healthz", answered);
}

TEST_CASE("slowloris filling every connection: a new request takes the oldest one's place") {
  HttpServerOptions options;
  options.max_connections = 4;
  options.header_timeout = 30s;  // not what frees the place here
  auto server = StartServer(options);
  std::vector<std::unique_ptr<test::Slowloris>> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(std::make_unique<test::Slowloris>(
        server->address(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaa\r\n\r\n",
        300ms));
    REQUIRE(slow.back()->connected());
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(WaitUntil([&] { return server->stats().accepted == 4; }, 5s));
  RequireAnswered(server->address(), "/healthz", 0);
  CHECK(server->stats().evicted == 1);
  // The first to connect was closed, the others still send.
  CHECK(slow[0]->WaitClosed(2s));
  CHECK_FALSE(slow[3]->WaitClosed(0ms));
}

TEST_CASE("a connection over the limit does not stop the next request, nor the one after it") {
  HttpServerOptions options;
  options.max_connections = 2;
  options.name = "probes";
  options.flag = "--probe-listen";
  auto server = StartServer(options);
  {
    test::IdleConnections idle(server->address(), 3);  // the third is over the limit
    REQUIRE(WaitUntil([&] { return server->stats().accepted == 3; }, 5s));
    CHECK(server->stats().open == 2);
    RequireAnswered(server->address(), "/healthz", 0);
    RequireAnswered(server->address(), "/readyz", 1);
  }
  // They have closed: the next requests as well.
  RequireAnswered(server->address(), "/healthz", 2);
  RequireAnswered(server->address(), "/readyz", 3);
  CHECK(server->stats().waited == 0);
}

// A hostile pod opening 2,000 connections it never uses, about 10,000 a second (bursts of 50),
// while a client keeps asking. Each new connection takes the place of the one that has waited
// longest, so a request is answered unless max_connections newer connections are accepted between
// its connect and the arrival of its bytes (microseconds for the kubelet).
TEST_CASE("2,000 connections flooding in: requests in between are answered every time") {
  HttpServerOptions options;
  options.max_connections = 16;
  auto server = StartServer(options);
  std::atomic<int> flooded{0};
  // Joined however the test ends (a failed REQUIRE unwinds past it).
  struct Joined : std::thread {
    using std::thread::thread;
    ~Joined() {
      if (joinable()) join();
    }
  };
  Joined flood([&] {
    std::vector<int> held;
    while (held.size() < 2000) {
      for (int i = 0; i < 50; ++i) {
        const int fd = test::ConnectTcp(server->address());
        if (fd >= 0) held.push_back(fd);
      }
      flooded = static_cast<int>(held.size());
      std::this_thread::sleep_for(5ms);
    }
    // Held until every connection has been taken in.
    WaitUntil([&] { return server->stats().accepted >= 2000; }, 30s);
    for (int fd : held) close(fd);
  });
  int asked = 0;
  for (; flooded < 2000; ++asked) {
    RequireAnswered(server->address(), asked % 2 ? "/readyz" : "/healthz", asked);
    std::this_thread::sleep_for(20ms);
  }
  flood.join();
  RequireAnswered(server->address(), "/healthz", asked);
  INFO(asked << " requests during the flood");
  CHECK(asked >= 5);
  const HttpServerStats stats = server->stats();
  CHECK(stats.open <= 16);
  CHECK(stats.evicted >= 2000 - 16);
  CHECK(stats.waited == 0);
}

TEST_CASE("keep-alive: an idle connection is closed after the idle timeout, not the header's") {
  HttpServerOptions options;
  options.header_timeout = 300ms;
  options.idle_timeout = 1500ms;
  auto server = StartServer(options);
  auto connection = HttpConnection::Open(server->address());
  REQUIRE(connection.ok());
  REQUIRE(connection->Request("GET", "/healthz").ok());
  const auto answered = steady_clock::now();
  // Between requests the header timeout does not apply: still open well past it.
  std::this_thread::sleep_for(800ms);
  auto again = connection->Request("GET", "/healthz");
  REQUIRE(again.ok());
  CHECK(again->status == 200);
  const auto answered_again = steady_clock::now();
  CHECK(connection->ClosedByServer());
  const auto closed = steady_clock::now();
  CHECK(closed - answered_again >= 1400ms);
  CHECK(closed - answered_again < 4s);
  CHECK(closed - answered >= 2s);
  // (The socket is closed before the server's thread counts it.)
  CHECK(WaitUntil([&] { return server->stats().idle_timeouts == 1; }, 2s));
  CHECK(server->stats().header_timeouts == 0);

  // A connection that never says anything is closed after the header timeout.
  auto silent = HttpConnection::Open(server->address());
  REQUIRE(silent.ok());
  const auto opened = steady_clock::now();
  CHECK(silent->ClosedByServer());
  CHECK(steady_clock::now() - opened < 1500ms);
  CHECK(WaitUntil([&] { return server->stats().header_timeouts == 1; }, 2s));
  CHECK(WaitUntil([&] { return server->stats().open == 0; }, 2s));
}

TEST_CASE("the counters of the options are the server's, readable after it stops") {
  HttpServerCounters counters;
  HttpServerOptions options;
  options.counters = &counters;
  options.max_connections = 7;
  auto server = StartServer(options);
  CHECK(counters.Snapshot().max_connections == 7);
  RequireAnswered(server->address(), "/healthz", 0);
  server->Stop();
  const HttpServerStats stats = counters.Snapshot();
  CHECK(stats.accepted == 1);
  CHECK(stats.open == 0);
  CHECK(server->stats().accepted == 1);
}

}  // namespace
}  // namespace informerd::daemon
