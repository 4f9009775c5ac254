// GrpcServer (daemon/service/grpc_server.*): health as the daemon announces it. A log sink checks
// health from inside the logging call that announces the address, the earliest moment a client
// that reads the log can ask: health must already say NOT_SERVING then.
#include "daemon/service/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace informerd::daemon {
namespace {

const char kServiceName[] = "informerd.v1.Informer";

// What a grpc.health.v1 Check answers: "SERVING", "NOT_SERVING", another status's number, or
// "error <code>". Through a generic stub with the two messages encoded by hand
// (HealthCheckRequest{service = 1}, HealthCheckResponse{status = 1}): the generated reflection
// stubs would clash with the reflection library the server links.
std::string CheckHealth(const std::string& address, const std::string& service) {
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::string request_bytes;
  if (!service.empty()) {
    REQUIRE(service.size() < 128);
    request_bytes = std::string("\x0a") + static_cast<char>(service.size()) + service;
  }
  grpc::Slice slice(request_bytes);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return "error " + std::to_string(status.error_code());
  std::vector<grpc::Slice> slices;
  REQUIRE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& part : slices) {
    bytes.append(reinterpret_cast<const char*>(part.begin()), part.size());
  }
  // Status 0 (UNKNOWN) is the default and not sent; otherwise field 1, varint, one byte.
  const int code = bytes.size() == 2 && bytes[0] == '\x08' ? bytes[1] : 0;
  if (code == 1) return "SERVING";
  if (code == 2) return "NOT_SERVING";
  return std::to_string(code);
}

// Keeps every line; when a line announces the gRPC address, checks health there at once.
class ProbingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  // Health for "" and kServiceName as the announcement saw it; empty if there was none.
  std::map<std::string, std::string> at_announcement() {
    std::lock_guard<std::mutex> lock(mutex_);
    return at_announcement_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string line(msg.payload.data(), msg.payload.size());
    lines_.push_back(line);
    const std::string marker = "gRPC listening on ";
    if (line.rfind(marker, 0) == 0) {
      const std::string address = line.substr(marker.size());
      for (const std::string service : {"", kServiceName}) {
        at_announcement_[service] = CheckHealth(address, service);
      }
    }
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
  std::map<std::string, std::string> at_announcement_;
};

TEST_CASE("GrpcServer: NOT_SERVING when the address is announced, then as SetServing says") {
  auto sink = std::make_shared<ProbingSink>();
  auto logger = std::make_shared<spdlog::logger>("grpc", sink);
  GrpcServerOptions options;
  options.health_service_names = {kServiceName};
  auto server =
      GrpcServer::Start("127.0.0.1:0", grpc::InsecureServerCredentials(), {}, logger, options);
  REQUIRE(server.ok());

  // gRPC's default health service starts "" as SERVING; by the announcement it is not.
  const std::map<std::string, std::string> announced = sink->at_announcement();
  REQUIRE(announced.size() == 2);
  CHECK(announced.at("") == "NOT_SERVING");
  CHECK(announced.at(kServiceName) == "NOT_SERVING");
  CHECK(sink->lines() == std::vector<std::string>{"gRPC listening on " + (*server)->address()});

  // Changes are applied to every name and logged once each; repeats are not.
  (*server)->SetServing(true);
  (*server)->SetServing(true);
  CHECK(CheckHealth((*server)->address(), "") == "SERVING");
  CHECK(CheckHealth((*server)->address(), kServiceName) == "SERVING");
  (*server)->SetServing(false);
  CHECK(CheckHealth((*server)->address(), "") == "NOT_SERVING");
  CHECK(CheckHealth((*server)->address(), kServiceName) == "NOT_SERVING");
  CHECK(sink->lines() == std::vector<std::string>{"gRPC listening on " + (*server)->address(),
                                                  "health: SERVING (ready)",
                                                  "health: NOT_SERVING (not ready)"});
  (*server)->Shutdown(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace informerd::daemon
