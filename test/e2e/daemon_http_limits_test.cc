// End-to-end: the informerd binary's HTTP ports under idle, slow and flooding clients. The probe
// port (--probe-listen) answers the kubelet's /healthz and /readyz on connections of its own, and
// neither port lets a client that holds connections or sends its request byte by byte make a
// probe fail (daemon/admin/http_server.h): 70 idle sockets on the metrics port, slowloris on
// both ports, a connection over the probe port's limit, 2,000 connections, kept-alive
// connections left idle. /metrics counts what each port closed.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "test/common/http_client.h"
#include "test/common/tcp_clients.h"
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// GET on a fresh connection must answer 200; which request failed, and how, if not.
void RequireOk(const std::string& address, const std::string& target, int attempt) {
  auto reply = HttpGet(address, target);
  INFO(address << target << " request " << attempt << ": "
               << (reply.ok() ? std::to_string(reply->status) : reply.status().ToString()));
  REQUIRE(reply.ok());
  REQUIRE(reply->status == 200);
}

void AwaitReady(const std::string& probes) {
  const auto deadline = steady_clock::now() + 20s;
  while (steady_clock::now() < deadline) {
    auto reply = HttpGet(probes, "/readyz");
    if (reply.ok() && reply->status == 200) return;
    std::this_thread::sleep_for(100ms);
  }
  FAIL("the daemon never became ready");
}

// The value of one sample of /metrics, e.g. `informerd_http_connections{listener="probes"}`.
std::optional<double> Sample(const std::string& exposition, const std::string& series) {
  const std::string line_start = "\n" + series + " ";
  const auto at = exposition.find(line_start);
  if (at == std::string::npos) return std::nullopt;
  return std::stod(exposition.substr(at + line_start.size()));
}

std::string Closed(const std::string& listener, const std::string& reason) {
  return "informerd_http_connections_closed_total{listener=\"" + listener + "\",reason=\"" +
         reason + "\"}";
}

void Stop(Subprocess& daemon) {
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(15s);
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

TEST_CASE("70 idle sockets on the metrics port: the probes answer 200 every time") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
  INFO(daemon.stderr_text());
  const std::string metrics = MetricsAddress(daemon);
  const std::string probes = ProbeAddress(daemon);
  AwaitReady(probes);

  IdleConnections idle(metrics, 70);
  REQUIRE(idle.opened() == 70);
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < 10; ++i) {
    RequireOk(probes, "/healthz", i);
    RequireOk(probes, "/readyz", i);
    // The metrics port too: the newest connection takes the place of the oldest idle one.
    RequireOk(metrics, "/healthz", i);
    RequireOk(metrics, "/readyz", i);
    std::this_thread::sleep_for(50ms);
  }
  const HttpReply scrape = Get(metrics, "/metrics");
  CHECK(scrape.status == 200);
  INFO(scrape.body);
  CHECK(Sample(scrape.body, Closed("metrics", "evicted")).value_or(0) >= 6);
  CHECK(Sample(scrape.body, "informerd_http_max_connections{listener=\"metrics\"}") == 64);
  CHECK(Sample(scrape.body, "informerd_http_max_connections{listener=\"probes\"}") == 16);
  CHECK(Sample(scrape.body, "informerd_http_connections{listener=\"metrics\"}").value_or(99) <= 64);
  CHECK(Sample(scrape.body, Closed("probes", "evicted")) == 0);
  // 10 /healthz, 10 /readyz, and AwaitReady's.
  CHECK(Sample(scrape.body, "informerd_http_connections_accepted_total{listener=\"probes\"}")
            .value_or(0) >= 21);
  Stop(daemon);
}

TEST_CASE(
    "slowloris on either port is cut after --http-header-timeout; probes and /metrics go on") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig(), {"--http-header-timeout", "2s"});
  INFO(daemon.stderr_text());
  const std::string metrics = MetricsAddress(daemon);
  const std::string probes = ProbeAddress(daemon);
  AwaitReady(probes);

  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: informerd\r\nUser-Agent: slowloris\r\n\r\n";
  Slowloris on_metrics(metrics, request, 1s);
  Slowloris on_probes(probes, request, 1s);
  REQUIRE(on_metrics.connected());
  REQUIRE(on_probes.connected());
  // While they trickle, everything else is answered at once.
  int asked = 0;
  for (const auto started = steady_clock::now(); steady_clock::now() - started < 3s; ++asked) {
    RequireOk(probes, "/healthz", asked);
    RequireOk(probes, "/readyz", asked);
    RequireOk(metrics, "/metrics", asked);
    std::this_thread::sleep_for(200ms);
  }
  for (Slowloris* slow : {&on_metrics, &on_probes}) {
    const std::optional<milliseconds> cut = slow->WaitClosed(10s);
    REQUIRE(cut);
    INFO("cut after " << cut->count() << " ms, " << slow->bytes_sent() << " bytes sent");
    CHECK(*cut >= 1900ms);
    CHECK(*cut < 4500ms);
    CHECK(slow->bytes_sent() < 7);
    CHECK(slow->received().empty());
  }
  std::string exposition;
  for (const auto deadline = steady_clock::now() + 5s; steady_clock::now() < deadline;) {
    exposition = Get(metrics, "/metrics").body;
    if (Sample(exposition, Closed("metrics", "header_timeout")) == 1 &&
        Sample(exposition, Closed("probes", "header_timeout")) == 1) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  INFO(exposition);
  CHECK(Sample(exposition, Closed("metrics", "header_timeout")) == 1);
  CHECK(Sample(exposition, Closed("probes", "header_timeout")) == 1);
  Stop(daemon);
}

TEST_CASE(
    "a connection over the probe port's limit stops neither the next probe nor the one after") {
  Upstream upstream;
  auto [daemon, address] =
      StartDaemon(upstream, PodsOnlyConfig(), {"--probe-max-connections", "2"});
  INFO(daemon.stderr_text());
  const std::string probes = ProbeAddress(daemon);
  AwaitReady(probes);
  {
    IdleConnections over(probes, 3);  // one more than the limit
    REQUIRE(over.opened() == 3);
    std::this_thread::sleep_for(200ms);
    RequireOk(probes, "/healthz", 0);
    RequireOk(probes, "/readyz", 0);
  }
  // Closed by the client now: the next probes as well.
  RequireOk(probes, "/healthz", 1);
  RequireOk(probes, "/readyz", 1);
  Stop(daemon);
}

// The daemon's open file descriptors.
std::size_t OpenFiles(pid_t pid) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++count;
  }
  return count;
}

TEST_CASE("2,000 connections held on the metrics port: probes answer throughout, the cap holds") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
  INFO(daemon.stderr_text());
  const std::string metrics = MetricsAddress(daemon);
  const std::string probes = ProbeAddress(daemon);
  AwaitReady(probes);
  const std::size_t files_before = OpenFiles(daemon.pid());

  std::vector<std::unique_ptr<IdleConnections>> held;
  int asked = 0;
  for (int opened = 0; opened < 2000; opened += 100, ++asked) {
    held.push_back(std::make_unique<IdleConnections>(metrics, 100));
    REQUIRE(held.back()->opened() == 100);
    RequireOk(probes, "/healthz", asked);
    RequireOk(probes, "/readyz", asked);
  }
  std::this_thread::sleep_for(500ms);
  RequireOk(metrics, "/healthz", asked);
  // At most 64 of them are still open on the daemon's side.
  const std::size_t files_after = OpenFiles(daemon.pid());
  INFO(files_before << " files open before, " << files_after << " after");
  CHECK(files_after <= files_before + 64);
  const HttpReply scrape = Get(metrics, "/metrics");
  CHECK(Sample(scrape.body, Closed("metrics", "evicted")).value_or(0) >= 2000 - 64);
  Stop(daemon);
}

TEST_CASE("a kept-alive connection left idle is closed after --http-idle-timeout") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig(), {"--http-idle-timeout", "1s"});
  INFO(daemon.stderr_text());
  const std::string metrics = MetricsAddress(daemon);
  const std::string probes = ProbeAddress(daemon);
  for (const std::string& port : {metrics, probes}) {
    auto connection = HttpConnection::Open(port);
    REQUIRE(connection.ok());
    auto reply = connection->Request("GET", "/healthz");
    REQUIRE(reply.ok());
    CHECK_FALSE(reply->close);
    const auto answered = steady_clock::now();
    CHECK(connection->ClosedByServer());
    CHECK(steady_clock::now() - answered >= 900ms);
    CHECK(steady_clock::now() - answered < 5s);
  }
  // (A port closes the socket a moment before it counts the close.)
  std::string exposition;
  for (const auto deadline = steady_clock::now() + 5s; steady_clock::now() < deadline;) {
    exposition = Get(metrics, "/metrics").body;
    if (Sample(exposition, Closed("probes", "idle_timeout")) == 1) break;
    std::this_thread::sleep_for(50ms);
  }
  INFO(exposition);
  CHECK(Sample(exposition, Closed("metrics", "idle_timeout")) == 1);
  CHECK(Sample(exposition, Closed("probes", "idle_timeout")) == 1);
  Stop(daemon);
}

}  // namespace
}  // namespace informerd::test
