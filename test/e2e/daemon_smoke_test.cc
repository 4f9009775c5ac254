// End-to-end: the informerd binary starts, serves gRPC health and reflection the way generic
// clients (grpcurl, any language's health probe) use them, serves /metrics, /healthz and /readyz
// on its metrics port, and exits cleanly on SIGTERM (daemon_shutdown_test.cc has the drain).
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
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using std::chrono::seconds;

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
  auto daemon = Subprocess::Start({kInformerdBinary, "--listen"});
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
  auto daemon =
      Subprocess::Start({kInformerdBinary, "--config", kExampleConfig, "--listen", "127.0.0.1:0"});
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
  auto daemon = Subprocess::Start({kInformerdBinary, "--config", kExampleConfig, "--kubeconfig",
                                   path, "--listen", "127.0.0.1:0"});
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
  auto daemon = Subprocess::Start({kInformerdBinary, "--config", path, "--listen", "127.0.0.1:0"});
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
  auto second = Subprocess::Start({kInformerdBinary, "--config", kExampleConfig, "--kubeconfig",
                                   upstream.kubeconfig(), "--listen", address, "--metrics-listen",
                                   "none", "--probe-listen", "none"});
  REQUIRE(second.ok());
  auto exit_code = second->Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 1);
  CHECK(second->stderr_text().find("informerd: cannot listen on " + address) != std::string::npos);
}

}  // namespace
}  // namespace informerd::test
