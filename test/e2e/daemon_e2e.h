// Support for the end-to-end tests that run the informerd binary against the fake apiserver
// (test/fakeapi/): the upstream and a kubeconfig for it, the daemon as a subprocess whose log is
// followed, and probes of its gRPC health and its metrics port.
//
// Only public interfaces: the binary, its flags and files, the generated gRPC stubs and HTTP.
// Nothing here links the daemon's code. Everything is called from the test's thread; helpers
// that find something wrong fail the test (Catch2 REQUIRE).
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "test/common/http_client.h"
#include "test/common/subprocess.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::test {

// Paths in the test's runfiles.
inline constexpr char kInformerdBinary[] = "cmd/informerd/informerd";
inline constexpr char kExampleConfig[] = "deploy/config/informerd.yaml";

// `name` under the test's private temporary directory ($TEST_TMPDIR).
std::string TempPath(const std::string& name);

// Writes `text` to TempPath(name) and returns that path.
std::string WriteTempFile(const std::string& name, const std::string& text);

// A configuration with one entry, pods, which the fake apiserver serves: ready once it syncs.
std::string PodsOnlyConfig();

// A fake apiserver with three pods (default/web-1, web-2, db-1), and a kubeconfig for it whose
// one context, "fake", is the current one.
class Upstream {
 public:
  Upstream();
  const std::string& kubeconfig() const { return kubeconfig_; }
  fakeapi::FakeApiServer& server() { return server_; }

 private:
  fakeapi::FakeApiServer server_;
  std::string kubeconfig_;
};

// Starts informerd with `--config config --kubeconfig <upstream's>`, gRPC, metrics and probes on
// free loopback ports (unless `extra_args` has a --metrics-listen or --probe-listen of its own),
// then `extra_args`; waits for "gRPC listening on" and returns the daemon with the address it
// bound.
std::pair<Subprocess, std::string> StartDaemon(const Upstream& upstream,
                                               const std::string& config = kExampleConfig,
                                               const std::vector<std::string>& extra_args = {});

// Starts `argv` (informerd and every flag) and waits for "gRPC listening on"; returns the daemon
// with the address it bound.
std::pair<Subprocess, std::string> StartDaemonWith(const std::vector<std::string>& argv);

// What follows `marker` in the daemon's log (up to the next space, quote or end of line),
// waiting up to 20 s for the line: "gRPC listening on " → "127.0.0.1:PORT".
std::string LoggedAddress(Subprocess& daemon, const std::string& marker);

// The metrics port's address, as the daemon logged it ("metrics listening on HOST:PORT").
std::string MetricsAddress(Subprocess& daemon);

// The probe port's address, as the daemon logged it ("probes listening on HOST:PORT").
std::string ProbeAddress(Subprocess& daemon);

// GET `target` on the metrics port; fails the test if there is no answer.
HttpReply Get(const std::string& address, const std::string& target);

using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

// grpc.health.v1 Check; fails the test if the call fails.
ServingStatus Health(const std::string& address, const std::string& service);

// Polls health until it reports `wanted` or `timeout` passes; returns the last status seen.
ServingStatus AwaitHealth(const std::string& address, const std::string& service,
                          ServingStatus wanted, std::chrono::seconds timeout);

// The TCP addresses process `pid` is listening on, as "IPv4:PORT" ("0.0.0.0:9090"; a dual-stack
// socket's IPv4-mapped address as IPv4 too), "[::]:PORT", or "[HEX]:PORT" with another IPv6
// address in /proc/net/tcp6's hex: its sockets (/proc/PID/fd) matched with the listening
// sockets of /proc/net/tcp and tcp6. A child inherits the test's sockets that are not
// close-on-exec, such as the fake apiserver's: callers leave those out.
std::set<std::string> ListeningAddresses(pid_t pid);

// Whether the daemon's log has a line containing `needle`, already or within `timeout`
// (Subprocess::WaitForLine alone only looks at lines it has not matched against yet).
bool LogHas(Subprocess& daemon, const std::string& needle, std::chrono::milliseconds timeout);

// The program's lines of `text` (its stderr), without their newlines.
std::vector<std::string> Lines(const std::string& text);

}  // namespace informerd::test
