// End-to-end: the informerd binary against the fake apiserver, with `maxStaleness: 2s`. Once the
// pods watch is refused with 403 on every attempt, the data goes stale: past the bound gRPC
// health is NOT_SERVING, /readyz lists pods with the 403, /metrics and ListResources show the
// staleness and the condition, and List still answers from the cache. Once watches are accepted
// again, the daemon is SERVING and fresh.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using grpc::health::v1::HealthCheckResponse;
using std::chrono::seconds;

constexpr char kForbidden[] =
    "pods is forbidden: User \"system:serviceaccount:infra:informerd\" cannot watch resource "
    "\"pods\" in API group \"\" at the cluster scope";
constexpr char kStalenessSeries[] =
    R"(informerd_resource_staleness_seconds{group="",version="v1",resource="pods",watch_namespace=""} )";

// The pods staleness /metrics shows; -1 when the series is missing.
double MetricsStaleness(const std::string& metrics_address) {
  const HttpReply reply = Get(metrics_address, "/metrics");
  REQUIRE(reply.status == 200);
  std::istringstream lines(reply.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(kStalenessSeries, 0) == 0) {
      return std::stod(line.substr(std::string(kStalenessSeries).size()));
    }
  }
  return -1;
}

v1::ResourceInfo PodsInfo(v1::Informer::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::ListResourcesResponse response;
  const grpc::Status status = stub.ListResources(&context, v1::ListResourcesRequest(), &response);
  REQUIRE(status.ok());
  REQUIRE(response.resources_size() == 1);
  return response.resources(0);
}

TEST_CASE(
    "a watch refused with 403 makes pods staler than maxStaleness: NOT_SERVING, /readyz and "
    "ListResources name the 403; SERVING again once a watch is accepted") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(
      upstream, WriteTempFile("stale.yaml", "maxStaleness: 2s\nresources:\n  - resource: pods\n"));
  REQUIRE(AwaitHealth(address, "", HealthCheckResponse::SERVING, seconds(20)) ==
          HealthCheckResponse::SERVING);
  const std::string metrics = MetricsAddress(daemon);
  auto stub =
      v1::Informer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  // An open quiet watch: fresh however long nothing happens.
  std::this_thread::sleep_for(seconds(3));
  CHECK(MetricsStaleness(metrics) == 0);
  CHECK(Health(address, "") == HealthCheckResponse::SERVING);

  // The RBAC rules change: the open watch ends, and every new one is refused.
  upstream.server().InjectFault("pods", fakeapi::Verb::kWatch,
                                fakeapi::Fault::HttpError(403, "Forbidden", kForbidden), 1000);
  upstream.server().EndWatches("pods");
  CHECK(AwaitHealth(address, "", HealthCheckResponse::NOT_SERVING, seconds(20)) ==
        HealthCheckResponse::NOT_SERVING);
  CHECK(Health(address, "informerd.v1.Informer") == HealthCheckResponse::NOT_SERVING);
  const HttpReply readyz = Get(metrics, "/readyz");
  CHECK(readyz.status == 503);
  CHECK_THAT(readyz.body, Catch::Contains("pods (all namespaces): no update confirmed by the "
                                          "apiserver for") &&
                              Catch::Contains("longer than maxStaleness (2 s): watch: HTTP 403 "
                                              "Forbidden: " +
                                              std::string(kForbidden)));
  CHECK(MetricsStaleness(metrics) > 2);
  const v1::ResourceInfo stale = PodsInfo(*stub);
  CHECK(stale.staleness_seconds() > 2);
  CHECK_THAT(stale.condition(), Catch::Contains("watch: HTTP 403 Forbidden: "));
  CHECK(stale.synced());
  {
    // List still answers from the cache.
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::ListRequest request;
    request.set_resource("pods");
    v1::ListResponse response;
    const grpc::Status status = stub->List(&context, request, &response);
    CHECK(status.error_message() == "");
    CHECK(response.items_size() == 3);
  }

  // Fixed: the next rewatch (after its backoff) is accepted.
  upstream.server().ClearFaults();
  CHECK(AwaitHealth(address, "", HealthCheckResponse::SERVING, seconds(40)) ==
        HealthCheckResponse::SERVING);
  CHECK(Get(metrics, "/readyz").status == 200);
  CHECK(MetricsStaleness(metrics) == 0);
  const v1::ResourceInfo fresh = PodsInfo(*stub);
  CHECK(fresh.staleness_seconds() == 0);
  CHECK(fresh.condition() == "");
}

}  // namespace
}  // namespace informerd::test
