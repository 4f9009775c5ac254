// End-to-end: the informerd binary starts, serves gRPC health and reflection the way generic
// clients (grpcurl, any language's health probe) use them, serves /metrics, /healthz and /readyz
// on its metrics port, and exits cleanly on SIGTERM/SIGINT.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/http_client.h"
#include "test/common/subprocess.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::test {
namespace {

using std::chrono::seconds;
using test::HttpGet;
using test::HttpReply;

const char kBinary[] = "cmd/informerd/informerd";
const char kConfig[] = "deploy/config/informerd.yaml";

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

// A fake apiserver with a few pods, and a kubeconfig for it.
class Upstream {
 public:
  Upstream() {
    REQUIRE(server_.Start().ok());
    for (const char* name : {"web-1", "web-2", "db-1"}) {
      REQUIRE(server_.Upsert("pods", "default", name).ok());
    }
    kubeconfig_ = TempPath("kubeconfig-" + std::to_string(server_.port()));
    std::ofstream(kubeconfig_) << "apiVersion: v1\nkind: Config\n"
                               << "clusters:\n- name: fake\n  cluster:\n    server: "
                               << server_.base_url() << "\n"
                               << "users:\n- name: tester\n  user:\n    token: t0ken\n"
                               << "contexts:\n- name: fake\n  context:\n    cluster: fake\n"
                               << "    user: tester\ncurrent-context: fake\n";
  }
  const std::string& kubeconfig() const { return kubeconfig_; }
  fakeapi::FakeApiServer& server() { return server_; }

 private:
  fakeapi::FakeApiServer server_;
  std::string kubeconfig_;
};

// A configuration whose every resource the fake apiserver serves.
std::string PodsOnlyConfig() {
  const std::string path = TempPath("pods-only.yaml");
  std::ofstream(path) << "resources:\n  - resource: pods\n";
  return path;
}

// Starts informerd on a free loopback port and returns it with the address it bound.
std::pair<Subprocess, std::string> StartDaemon(const Upstream& upstream,
                                               const std::string& config = kConfig) {
  auto daemon =
      Subprocess::Start({kBinary, "--config", config, "--kubeconfig", upstream.kubeconfig(),
                         "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  REQUIRE(daemon.ok());
  auto line = daemon->WaitForLine("gRPC listening on ", seconds(20));
  INFO(daemon->stderr_text());
  REQUIRE(line.ok());
  const std::string marker = "gRPC listening on ";
  std::string address = line->substr(line->find(marker) + marker.size());
  return {std::move(*daemon), address};
}

// The metrics port's address, as the daemon logged it.
std::string MetricsAddress(Subprocess& daemon) {
  const std::string marker = "metrics listening on ";
  // Logged right after the gRPC address, so usually read already.
  std::string text = daemon.stderr_text();
  if (text.find(marker) == std::string::npos) {
    auto line = daemon.WaitForLine(marker, seconds(20));
    INFO(daemon.stderr_text());
    REQUIRE(line.ok());
    text = *line;
  }
  const auto start = text.find(marker) + marker.size();
  return text.substr(start, text.find_first_of(" \n", start) - start);
}

// GET `target` on the metrics port; fails the test if there is no answer.
HttpReply Get(const std::string& address, const std::string& target) {
  auto reply = HttpGet(address, target);
  INFO(target << ": " << reply.status().ToString());
  REQUIRE(reply.ok());
  return *std::move(reply);
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& address,
                                                            const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return response.status();
}

// Polls health until it reports `wanted` or `timeout` passes; returns the last status seen.
grpc::health::v1::HealthCheckResponse::ServingStatus AwaitHealth(
    const std::string& address, const std::string& service,
    grpc::health::v1::HealthCheckResponse::ServingStatus wanted, std::chrono::seconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  auto status = Health(address, service);
  while (status != wanted && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = Health(address, service);
  }
  return status;
}

std::set<std::string> ReflectedServices(const std::string& address) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  auto stream = stub->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("*");
  REQUIRE(stream->Write(request));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  REQUIRE(stream->Read(&response));
  std::set<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.insert(service.name());
  }
  while (stream->Read(&response)) {
  }
  REQUIRE(stream->Finish().ok());
  return names;
}

TEST_CASE("informerd serves health and reflection, then exits 0 on SIGTERM") {
  using grpc::health::v1::HealthCheckResponse;
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
  // Ready once every configured resource has synced, for "" and for the Informer service.
  CHECK(AwaitHealth(address, "", HealthCheckResponse::SERVING, seconds(20)) ==
        HealthCheckResponse::SERVING);
  CHECK(Health(address, "informerd.v1.Informer") == HealthCheckResponse::SERVING);
  CHECK(daemon.WaitForLine("pods: synced 3 objects", seconds(5)).ok());

  const std::set<std::string> services = ReflectedServices(address);
  CHECK(services.count("informerd.v1.Informer") == 1);
  CHECK(services.count("grpc.health.v1.Health") == 1);

  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  INFO(daemon.stderr_text());
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
  CHECK(daemon.stderr_text().find("received SIGTERM, shutting down") != std::string::npos);
  CHECK(daemon.stderr_text().find("informerd stopped") != std::string::npos);
}

TEST_CASE("informerd lists and watches the configured resources from the apiserver") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream);
  auto synced = daemon.WaitForLine("pods: synced 3 objects", seconds(20));
  INFO(daemon.stderr_text());
  REQUIRE(synced.ok());
  // One watch per configured resource, and nothing more.
  CHECK(upstream.server().WaitForOpenWatches("pods", 1, seconds(10)));
  CHECK(upstream.server().OpenWatches("pods") == 1);
  // "nodes" is in the example configuration but this apiserver does not serve it: the daemon
  // says so and keeps running.
  CHECK(daemon.stderr_text().find("config resource \"nodes\": the server has no resource "
                                  "\"nodes\"; looking again every 30 s") != std::string::npos);
  // So the daemon is not ready: readiness means every configured resource is synced.
  using grpc::health::v1::HealthCheckResponse;
  CHECK(Health(address, "") == HealthCheckResponse::NOT_SERVING);
  CHECK(Health(address, "informerd.v1.Informer") == HealthCheckResponse::NOT_SERVING);
  // /readyz agrees, and says why.
  const HttpReply readyz = Get(MetricsAddress(daemon), "/readyz");
  CHECK(readyz.status == 503);
  CHECK(readyz.body.find("nodes: the server has no resource \"nodes\"") != std::string::npos);
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

TEST_CASE("the metrics port: /readyz goes 503 to 200, /metrics has each resource's series") {
  using grpc::health::v1::HealthCheckResponse;
  Upstream upstream;
  // The first LIST is answered 503 with Retry-After: 2, so the daemon stays unready a while.
  upstream.server().InjectFault("pods", fakeapi::Verb::kList,
                                fakeapi::Fault::ServiceUnavailable(2));
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
  const std::string metrics = MetricsAddress(daemon);

  CHECK(Get(metrics, "/healthz").status == 200);
  const HttpReply unready = Get(metrics, "/readyz");
  CHECK(unready.status == 503);
  CHECK(unready.body.find("pods") != std::string::npos);
  int readyz = unready.status;
  const auto give_up = std::chrono::steady_clock::now() + seconds(20);
  while (readyz != 200 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    readyz = Get(metrics, "/readyz").status;
  }
  CHECK(readyz == 200);
  // The same readiness as gRPC health (which is polled twice a second).
  CHECK(AwaitHealth(address, "", HealthCheckResponse::SERVING, seconds(5)) ==
        HealthCheckResponse::SERVING);

  const HttpReply scrape = Get(metrics, "/metrics");
  INFO(scrape.body);
  CHECK(scrape.status == 200);
  CHECK(scrape.content_type == "text/plain; version=0.0.4; charset=utf-8");
  const std::string pods = "group=\"\",version=\"v1\",resource=\"pods\",watch_namespace=\"\"";
  CHECK(scrape.body.find("informerd_resource_objects{" + pods + "} 3\n") != std::string::npos);
  CHECK(scrape.body.find("informerd_resource_synced{" + pods + "} 1\n") != std::string::npos);
  CHECK(scrape.body.find("informerd_relists_total{" + pods + ",reason=\"initial\"} 1\n") !=
        std::string::npos);
  CHECK(scrape.body.find("informerd_upstream_errors_total{" + pods + ",code=\"503\"} 1\n") !=
        std::string::npos);
  CHECK(scrape.body.find("informerd_ready 1\n") != std::string::npos);
  CHECK(scrape.body.find("\nprocess_resident_memory_bytes ") != std::string::npos);
  // The health checks above are counted by the gRPC interceptor.
  CHECK(scrape.body.find("informerd_grpc_requests_total{method=\"/grpc.health.v1.Health/Check\","
                         "code=\"OK\"} ") != std::string::npos);

  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

TEST_CASE("SIGINT (Ctrl-C) also stops informerd cleanly") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream);
  daemon.Signal(SIGINT);
  auto exit_code = daemon.Wait(seconds(15));
  INFO(daemon.stderr_text());
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
  CHECK(daemon.stderr_text().find("received SIGINT") != std::string::npos);
}

TEST_CASE("a second SIGTERM during the shutdown grace period exits at once") {
  // A subscriber that reads nothing holds a write of its snapshot in flight (HTTP/2 flow
  // control), so its stream cannot finish and the graceful shutdown waits out its grace period.
  Upstream upstream;
  fakeapi::SyntheticLoad load;
  load.objects = 3000;
  load.object_bytes = 8192;
  REQUIRE(upstream.server().Populate("pods", load).ok());
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
  REQUIRE(daemon.WaitForLine("pods: synced", seconds(30)).ok());

  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = informerd::v1::Informer::NewStub(channel);
  grpc::ClientContext context;
  informerd::v1::SubscribeRequest request;
  request.set_resource("pods");
  auto reader = stub->Subscribe(&context, request);
  // The stream is open and stays unread; let the server fill the flow-control windows.
  std::this_thread::sleep_for(seconds(1));

  daemon.Signal(SIGTERM);
  INFO(daemon.stderr_text());
  REQUIRE(daemon.WaitForLine("received SIGTERM, shutting down", seconds(5)).ok());
  // Still in the grace period: the first signal alone is graceful.
  REQUIRE_FALSE(daemon.Wait(std::chrono::milliseconds(1500)).ok());

  const auto second = std::chrono::steady_clock::now();
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(3));
  INFO(daemon.stderr_text());
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 1);
  CHECK(std::chrono::steady_clock::now() - second < seconds(2));
  CHECK(daemon.stderr_text().find("received SIGTERM again during shutdown, exiting now") !=
        std::string::npos);
  context.TryCancel();
}

TEST_CASE("a bad flag exits 2 with a one-line error") {
  auto daemon = Subprocess::Start({kBinary, "--listen"});
  REQUIRE(daemon.ok());
  auto exit_code = daemon->Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 2);
  CHECK(daemon->stderr_text() ==
        "informerd: the required argument for option '--listen' is missing (see informerd "
        "--help)\n");
}

TEST_CASE("without a kubeconfig or in-cluster config, informerd exits 1 saying what it tried") {
  const std::string home = TempPath("empty-home");
  std::string command = "mkdir -p " + home;
  REQUIRE(std::system(command.c_str()) == 0);
  setenv("HOME", home.c_str(), 1);
  unsetenv("KUBECONFIG");
  unsetenv("KUBERNETES_SERVICE_HOST");
  auto daemon = Subprocess::Start({kBinary, "--config", kConfig, "--listen", "127.0.0.1:0"});
  REQUIRE(daemon.ok());
  auto exit_code = daemon->Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 1);
  INFO(daemon->stderr_text());
  CHECK(daemon->stderr_text().find("informerd: ") != std::string::npos);
  CHECK(daemon->stderr_text().find(home + "/.kube/config") != std::string::npos);
}

TEST_CASE("a broken kubeconfig exits 1 naming the file and field") {
  const std::string path = TempPath("broken-kubeconfig");
  std::ofstream(path) << "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n"
                      << "    server: [not, a, string]\n";
  auto daemon = Subprocess::Start(
      {kBinary, "--config", kConfig, "--kubeconfig", path, "--listen", "127.0.0.1:0"});
  REQUIRE(daemon.ok());
  auto exit_code = daemon->Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 1);
  INFO(daemon->stderr_text());
  CHECK(daemon->stderr_text().find("informerd: " + path + ":6:13: clusters[0].cluster.server") !=
        std::string::npos);
}

TEST_CASE("a broken config file exits 1 naming file, line and field") {
  const std::string path = TempPath("broken.yaml");
  std::ofstream(path) << "resources:\n  - resource: pods\n    namespaces: default\n";
  auto daemon = Subprocess::Start({kBinary, "--config", path, "--listen", "127.0.0.1:0"});
  REQUIRE(daemon.ok());
  auto exit_code = daemon->Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 1);
  CHECK(daemon->stderr_text().find("informerd: " + path +
                                   ":3:5: resources[0].namespaces: unknown field") !=
        std::string::npos);
}

TEST_CASE("a port already in use is a start-up error, not a hang") {
  Upstream upstream;
  auto [first, address] = StartDaemon(upstream);
  auto second =
      Subprocess::Start({kBinary, "--config", kConfig, "--kubeconfig", upstream.kubeconfig(),
                         "--listen", address, "--metrics-listen", "none"});
  REQUIRE(second.ok());
  auto exit_code = second->Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 1);
  CHECK(second->stderr_text().find("informerd: cannot listen on " + address) != std::string::npos);
}

}  // namespace
}  // namespace informerd::test
