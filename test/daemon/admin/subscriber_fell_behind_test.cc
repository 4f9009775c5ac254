// A subscriber that falls behind, as the running daemon reports it: the gRPC service ends its
// stream with RESOURCE_EXHAUSTED and logs "subscriber fell behind" at warn, and /metrics'
// informerd_subscribers_fell_behind_total for the resource counts it. Everything is real except
// the apiserver: events arrive through a SharedInformerFactory's informer from a scripted
// upstream (test/common/in_process_factory.h), the service serves the factory's registry over a
// real gRPC server (test/common/informer_service_test_support.h), and the metrics are collected
// from the factory and rendered as the metrics port does (CollectMetrics, RenderPrometheus).
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/admin/metrics.h"
#include "daemon/admin/status_endpoints.h"
#include "fmt/format.h"
#include "test/common/captured_log.h"
#include "test/common/in_process_factory.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using test::HttpOk;
using test::InProcessFactory;
using test::PodListJson;
using test::WatchEventLine;
using testing::Harness;
using testing::HarnessOptions;
using testing::Stream;
using testing::SubscribeTo;
using testing::WaitUntil;

constexpr char kSeries[] =
    R"(informerd_subscribers_fell_behind_total{group="",version="v1",resource="pods",watch_namespace=""})";

// The value of the pods series in what /metrics would show now; fails the test without it.
std::string FellBehind(const InProcessFactory& upstream) {
  const std::string text =
      RenderPrometheus(CollectMetrics(*upstream.factory_, Readiness{true, {}}, nullptr));
  const std::size_t at = text.find(std::string(kSeries) + " ");
  INFO(text);
  REQUIRE(at != std::string::npos);
  const std::size_t from = at + std::string(kSeries).size() + 1;
  return text.substr(from, text.find('\n', from) - from);
}

// A pod with 8 KiB of filler, so that a few fill a client's 64 KiB stream window.
std::string BigPod(int index) {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p{:03}","namespace":"ns","uid":"uid-{}",)"
      R"("resourceVersion":"{}"}},"spec":{{"filler":"{}"}}}})",
      index, index, 10 + index, std::string(8 << 10, 'x'));
}

TEST_CASE("a subscriber that falls behind is counted in /metrics and logged at warn") {
  InProcessFactory upstream({test::ConfigEntry("pods")}, SharedInformerFactoryOptions());
  test::CapturedLog log;
  HarnessOptions options;
  options.registry = &upstream.registry_;
  options.service.subscriber_queue_capacity = 4;  // ended at 16 queued events
  options.service.logger = log.logger();
  Harness harness(options);

  upstream.factory_->Start();
  upstream.Run();
  upstream.ServeDiscovery(false);
  upstream.client_.ScriptGet("/api/v1/pods", HttpOk(PodListJson("10", "", {})));
  upstream.Run();
  REQUIRE(upstream.client_.open_watches() == 1);

  // The slow client has its own connection with a fixed 64 KiB stream window (no BDP probing)
  // and reads nothing until the end: the server's writes to it stall.
  grpc::ChannelArguments slow_args;
  slow_args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto slow_channel = harness.NewChannel(slow_args);
  auto slow_stub = v1::Informer::NewStub(slow_channel);
  Stream slow(*slow_stub, SubscribeTo("pods"));
  slow.WaitSubscribed();
  REQUIRE(WaitUntil(
      [&] { return upstream.registry_.Entries()[0]->cache->Stats().subscriber_count == 1; }));
  CHECK(FellBehind(upstream) == "0");

  // 200 events of 8 KiB (1.6 MiB) through the informer's watch, in one piece.
  std::string events;
  for (int i = 1; i <= 200; ++i) events += WatchEventLine("ADDED", BigPod(i));
  upstream.client_.LastWatch().Push(events);
  upstream.Run();

  CHECK(WaitUntil([&] { return FellBehind(upstream) == "1"; }));
  CHECK(FellBehind(upstream) == "1");

  // The client, reading at last: a prefix of the events, then RESOURCE_EXHAUSTED saying where to
  // resume; by then the service has logged it.
  std::vector<v1::Event> received;
  const grpc::Status status = slow.Finish(&received);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  REQUIRE(received.size() >= 2);
  CHECK(status.error_message() ==
        fmt::format("subscriber fell behind: 16 events waited for it, 4 times its queue capacity "
                    "of 4; the last event it was sent has resource version {}: resume from it",
                    received.back().resource_version()));
  std::vector<std::string> warnings;
  for (const std::string& line : log.Lines()) {
    if (line.rfind("warning: ", 0) == 0) warnings.push_back(line);
  }
  CHECK(warnings ==
        std::vector<std::string>{"warning: Subscribe to pods: " + status.error_message()});
  CHECK(upstream.registry_.Entries()[0]->cache->Stats().subscriber_count == 0);
}

}  // namespace
}  // namespace informerd::daemon
