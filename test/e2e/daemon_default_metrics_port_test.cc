// End-to-end: without --metrics-listen and --probe-listen, the informerd binary serves its metrics
// port on 0.0.0.0:9090 and its probe port on 0.0.0.0:9091, as the README says. Fixed ports: the
// target is tagged "exclusive" so that no other Bazel test runs beside it, and the test first
// checks that nothing else on the machine holds them, failing with that reason rather than with
// the daemon's start-up error.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using std::chrono::seconds;

constexpr int kDefaultMetricsPort = 9090;
constexpr int kDefaultProbePort = 9091;

// Whether a TCP socket can bind 0.0.0.0:`port` now, with SO_REUSEADDR as the daemon binds it (so
// that connections of an earlier run in TIME_WAIT do not count, a listening socket does). Closed
// at once: a socket that never listened or connected leaves nothing behind.
bool PortFree(int port, std::string& why) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  const int on = 1;
  REQUIRE(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  const bool bound = bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  if (!bound) why = std::strerror(errno);
  close(fd);
  return bound;
}

TEST_CASE("without --metrics-listen, the metrics port is 0.0.0.0:9090; the probe port 9091") {
  for (const int port : {kDefaultMetricsPort, kDefaultProbePort}) {
    std::string why;
    const bool free = PortFree(port, why);
    INFO("port " << port << " must be free on this machine for this test (" << why
                 << "): another process (a daemon started by hand?) holds it");
    REQUIRE(free);
  }

  Upstream upstream;
  auto [daemon, address] =
      StartDaemonWith({kInformerdBinary, "--config", PodsOnlyConfig(), "--kubeconfig",
                       upstream.kubeconfig(), "--listen", "127.0.0.1:0"});
  INFO(daemon.stderr_text());
  CHECK(MetricsAddress(daemon) == "0.0.0.0:9090");
  CHECK(ProbeAddress(daemon) == "0.0.0.0:9091");
  // Bound by the daemon, on every interface, beside its gRPC port.
  const std::set<std::string> listening = ListeningAddresses(daemon.pid());
  CHECK(listening.count("0.0.0.0:9090") == 1);
  CHECK(listening.count("0.0.0.0:9091") == 1);
  CHECK(listening.count(address) == 1);
  // And served: on loopback as on any address.
  CHECK(Get("127.0.0.1:9090", "/healthz").status == 200);
  CHECK(Get("127.0.0.1:9091", "/healthz").status == 200);
  CHECK(Get("127.0.0.1:9091", "/metrics").status == 404);

  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

}  // namespace
}  // namespace informerd::test
