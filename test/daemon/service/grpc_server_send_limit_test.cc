// GrpcServer (daemon/service/grpc_server.*): the bound on messages it sends
// (GrpcServerOptions::max_send_message_bytes). The daemon sets it to what it means to send at
// most, so it never trips on a legitimate answer; a larger message fails the call
// RESOURCE_EXHAUSTED at the server instead of being sent whole (it used to be unbounded).
#include <grpcpp/grpcpp.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "daemon/service/grpc_server.h"
#include "test/common/fake_informer.h"

namespace informerd::daemon {
namespace {

grpc::Status ListThrough(GrpcServerOptions options, std::size_t item_bytes) {
  test::FakeInformerService informer;
  v1::ListResponse answer;
  answer.add_items(std::string(item_bytes, 'x'));
  informer.SetList(answer);
  auto logger =
      std::make_shared<spdlog::logger>("grpc", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto server = GrpcServer::Start("127.0.0.1:0", grpc::InsecureServerCredentials(), {&informer},
                                  logger, options);
  REQUIRE(server.ok());
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // the client takes anything: only the server's bound counts
  auto stub = v1::Informer::NewStub(
      grpc::CreateCustomChannel((*server)->address(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::ListResponse response;
  const grpc::Status status = stub->List(&context, v1::ListRequest(), &response);
  if (status.ok()) CHECK(response.items(0).size() == item_bytes);
  (*server)->Shutdown(std::chrono::milliseconds(0));
  return status;
}

TEST_CASE("a message larger than max_send_message_bytes fails RESOURCE_EXHAUSTED at the server") {
  GrpcServerOptions options;
  options.max_send_message_bytes = 1 << 20;
  const grpc::Status over = ListThrough(options, 2 << 20);
  CHECK(over.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(ListThrough(options, 512 << 10).ok());
}

TEST_CASE("the default bound sends an object of the default maxObjectBytes (32 MiB)") {
  CHECK(ListThrough(GrpcServerOptions(), (32 << 20) - 100).ok());
}

}  // namespace
}  // namespace informerd::daemon
