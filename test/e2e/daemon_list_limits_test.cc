// End-to-end: the informerd binary's List pages and response bounds as its flags set them
// (--max-list-response-objects, --max-list-response-bytes), and their metrics: an unpaged List
// over a bound is refused RESOURCE_EXHAUSTED naming the flag, the same list read in pages is
// answered, and /metrics counts both.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

grpc::Status List(v1::Informer::Stub& stub, int64_t limit, const std::string& token,
                  v1::ListResponse* response) {
  v1::ListRequest request;
  request.set_resource("pods");
  request.set_limit(limit);
  request.set_continue_(token);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return stub.List(&context, request, response);
}

TEST_CASE(
    "--max-list-response-objects: an unpaged List over it is refused, pages are served, "
    "/metrics counts both") {
  Upstream upstream;  // three pods
  auto [daemon, address] =
      StartDaemon(upstream, PodsOnlyConfig(), {"--max-list-response-objects", "2"});
  auto stub =
      v1::Informer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  v1::ListResponse whole;
  const grpc::Status refused = List(*stub, 0, "", &whole);
  CHECK(refused.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(refused.error_message() ==
        "the list of pods (all namespaces) has more than 2 objects, the most one answer may hold "
        "(--max-list-response-objects=2); list it in pages with limit and continue");

  v1::ListResponse first;
  REQUIRE(List(*stub, 500, "", &first).ok());
  CHECK(first.items_size() == 2);
  REQUIRE_FALSE(first.continue_().empty());
  v1::ListResponse second;
  REQUIRE(List(*stub, 500, first.continue_(), &second).ok());
  CHECK(second.items_size() == 1);
  CHECK(second.continue_().empty());
  CHECK(second.resource_version() == first.resource_version());

  const HttpReply metrics = Get(MetricsAddress(daemon), "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(
      metrics.body.find("informerd_list_refused_total{limit=\"max-list-response-objects\"} 1\n") !=
      std::string::npos);
  CHECK(metrics.body.find("informerd_list_refused_total{limit=\"max-list-response-bytes\"} 0\n") !=
        std::string::npos);
  CHECK(metrics.body.find("informerd_list_pages_total 2\n") != std::string::npos);
}

TEST_CASE("--max-list-response-bytes: pages stop at it; an unpaged List over it is refused") {
  Upstream upstream;
  auto [daemon, address] =
      StartDaemon(upstream, PodsOnlyConfig(), {"--max-list-response-bytes", "1500"});
  auto stub =
      v1::Informer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::ListResponse whole;
  const grpc::Status refused = List(*stub, 0, "", &whole);
  CHECK(refused.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(refused.error_message().find("(--max-list-response-bytes=1500)") != std::string::npos);
  // Each pod alone takes most of the 476 bytes left for items: one per page.
  std::string token;
  int pages = 0;
  do {
    v1::ListResponse page;
    REQUIRE(List(*stub, 500, token, &page).ok());
    CHECK(page.items_size() == 1);
    token = page.continue_();
    ++pages;
  } while (!token.empty() && pages < 10);
  CHECK(pages == 3);
  const HttpReply metrics = Get(MetricsAddress(daemon), "/metrics");
  CHECK(metrics.body.find("informerd_list_pages_cut_total 2\n") != std::string::npos);
}

}  // namespace
}  // namespace informerd::test
