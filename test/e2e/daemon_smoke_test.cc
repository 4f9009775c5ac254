// End-to-end: the informerd binary starts, serves gRPC health and reflection the way generic
// clients (grpcurl, any language's health probe) use them, and exits cleanly on SIGTERM/SIGINT.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "test/util/subprocess.h"

namespace informerd::test {
namespace {

using std::chrono::seconds;

const char kBinary[] = "cmd/informerd/informerd";
const char kConfig[] = "deploy/config/informerd.yaml";

// Starts informerd on a free loopback port and returns it with the address it bound.
std::pair<Subprocess, std::string> StartDaemon() {
  auto daemon = Subprocess::Start({kBinary, "--config", kConfig, "--listen", "127.0.0.1:0"});
  REQUIRE(daemon.ok());
  auto line = daemon->WaitForLine("gRPC listening on ", seconds(20));
  INFO(daemon->stderr_text());
  REQUIRE(line.ok());
  const std::string marker = "gRPC listening on ";
  std::string address = line->substr(line->find(marker) + marker.size());
  return {std::move(*daemon), address};
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
  auto [daemon, address] = StartDaemon();
  CHECK(Health(address, "") == grpc::health::v1::HealthCheckResponse::SERVING);

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

TEST_CASE("SIGINT (Ctrl-C) also stops informerd cleanly") {
  auto [daemon, address] = StartDaemon();
  daemon.Signal(SIGINT);
  auto exit_code = daemon.Wait(seconds(15));
  INFO(daemon.stderr_text());
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
  CHECK(daemon.stderr_text().find("received SIGINT") != std::string::npos);
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

TEST_CASE("a broken config file exits 1 naming file, line and field") {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/broken.yaml";
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
  auto [first, address] = StartDaemon();
  auto second = Subprocess::Start({kBinary, "--config", kConfig, "--listen", address});
  REQUIRE(second.ok());
  auto exit_code = second->Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 1);
  CHECK(second->stderr_text().find("informerd: cannot listen on " + address) != std::string::npos);
}

}  // namespace
}  // namespace informerd::test
