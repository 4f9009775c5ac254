// End-to-end: the informerd binary's client limits, set by its flags (--max-subscriptions-per-user,
// --max-selector-requirements, --max-selector-bytes): a Subscribe over the per-user limit is
// RESOURCE_EXHAUSTED naming it (every caller here is system:anonymous), its place comes back when
// a stream is cancelled, selectors over the limits are INVALID_ARGUMENT naming them, and /metrics
// counts all of it.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/wait_until.h"
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using grpc::health::v1::HealthCheckResponse;
using std::chrono::seconds;

// "CODE_NUMBER: message", comparable in one CHECK.
std::string Text(const grpc::Status& status) {
  return std::to_string(status.error_code()) + ": " + status.error_message();
}

// A Subscribe to all pods, read up to its SYNCED.
struct OpenStream {
  explicit OpenStream(informerd::v1::Informer::Stub& stub) {
    context.set_deadline(std::chrono::system_clock::now() + seconds(60));
    informerd::v1::SubscribeRequest request;
    request.set_resource("pods");
    reader = stub.Subscribe(&context, request);
    informerd::v1::Event event;
    while (reader->Read(&event) && event.type() != informerd::v1::Event::SYNCED) {
    }
    synced = event.type() == informerd::v1::Event::SYNCED;
  }
  // Reads to the end: the status.
  grpc::Status Finish() {
    informerd::v1::Event event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  }

  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<informerd::v1::Event>> reader;
  bool synced = false;
};

grpc::Status ListWithSelector(informerd::v1::Informer::Stub& stub, const std::string& selector) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(20));
  informerd::v1::ListRequest request;
  request.set_resource("pods");
  request.set_label_selector(selector);
  informerd::v1::ListResponse response;
  return stub.List(&context, request, &response);
}

bool MetricsHave(const std::string& metrics_address, const std::string& line) {
  return Get(metrics_address, "/metrics").body.find("\n" + line + "\n") != std::string::npos;
}

TEST_CASE("the client-limit flags: per-user subscriptions and selector limits, with metrics") {
  Upstream upstream;
  auto [daemon, address] =
      StartDaemon(upstream, PodsOnlyConfig(),
                  {"--max-subscriptions-per-user=2", "--max-selector-requirements=3"});
  REQUIRE(AwaitHealth(address, "", HealthCheckResponse::SERVING, seconds(20)) ==
          HealthCheckResponse::SERVING);
  const std::string metrics = MetricsAddress(daemon);
  auto stub = informerd::v1::Informer::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  auto first = std::make_unique<OpenStream>(*stub);
  OpenStream second(*stub);
  REQUIRE(first->synced);
  REQUIRE(second.synced);
  OpenStream third(*stub);
  CHECK_FALSE(third.synced);
  CHECK(Text(third.Finish()) ==
        "8: too many subscriptions for user \"system:anonymous\": 2 open "
        "(--max-subscriptions-per-user=2); close one or retry later");

  CHECK(Text(ListWithSelector(*stub, "a,b,c,d")) ==
        "3: label selector has 4 requirements; at most 3 are accepted "
        "(--max-selector-requirements=3)");
  CHECK(Text(ListWithSelector(*stub, std::string(5000, 'a'))) ==
        "3: label selector is 5000 bytes long; at most 4096 are accepted "
        "(--max-selector-bytes=4096)");
  CHECK(Text(ListWithSelector(*stub, "a,b,c")) == "0: ");

  INFO(daemon.stderr_text());
  CHECK(MetricsHave(metrics, "informerd_subscriptions_open 2"));
  CHECK(MetricsHave(metrics, "informerd_subscriptions_open_largest_user 2"));
  CHECK(MetricsHave(
      metrics, "informerd_subscriptions_refused_total{limit=\"max-subscriptions-per-user\"} 1"));
  CHECK(
      MetricsHave(metrics, "informerd_subscriptions_refused_total{limit=\"max-subscriptions\"} 0"));
  CHECK(MetricsHave(metrics, "informerd_selectors_refused_total{limit=\"max-selector-bytes\"} 1"));
  CHECK(MetricsHave(metrics,
                    "informerd_selectors_refused_total{limit=\"max-selector-requirements\"} 1"));

  // A cancelled stream gives its place back.
  first->context.TryCancel();
  CHECK(first->Finish().error_code() == grpc::StatusCode::CANCELLED);
  first.reset();
  CHECK(WaitUntil([&] { return MetricsHave(metrics, "informerd_subscriptions_open 1"); },
                  seconds(10), std::chrono::milliseconds(50)));
  OpenStream again(*stub);
  CHECK(again.synced);

  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

}  // namespace
}  // namespace informerd::test
