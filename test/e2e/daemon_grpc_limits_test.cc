// End-to-end: the informerd binary's gRPC transport limits, set by its flags
// (daemon/service/connection_gate.h, grpc_server.h). With --grpc-max-connections=3, three
// connections each holding a Subscribe keep streaming, a fourth is closed at once (its call
// UNAVAILABLE) while the probe port answers, /metrics counts the refusal, and a closed
// connection's place comes back. With --grpc-max-concurrent-streams=2 the limit is announced to
// the client, which holds a third Subscribe on the same connection until a stream ends.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/http_client.h"
#include "test/common/wait_until.h"
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A channel of its own: a TCP connection that no other channel of the test shares (gRPC's global
// subchannel pool would put every channel to one address on one connection).
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
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
  // The next event's object (JSON), if one comes.
  std::optional<std::string> NextName() {
    informerd::v1::Event event;
    if (!reader->Read(&event)) return std::nullopt;
    return event.object();
  }
  grpc::Status Cancel() {
    context.TryCancel();
    informerd::v1::Event event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  }

  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<informerd::v1::Event>> reader;
  bool synced = false;
};

grpc::Status List(informerd::v1::Informer::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  informerd::v1::ListRequest request;
  request.set_resource("pods");
  informerd::v1::ListResponse response;
  return stub.List(&context, request, &response);
}

void AwaitReady(const std::string& probes) {
  REQUIRE(WaitUntil(
      [&] {
        auto reply = HttpGet(probes, "/readyz");
        return reply.ok() && reply->status == 200;
      },
      seconds(20), milliseconds(100)));
}

// The value of one sample of /metrics, e.g. `informerd_grpc_connections`; -1 when it is not
// there.
double Sample(const std::string& metrics_address, const std::string& series) {
  const std::string exposition = Get(metrics_address, "/metrics").body;
  const std::string line_start = "\n" + series + " ";
  const auto at = exposition.find(line_start);
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + line_start.size()));
}

void Stop(Subprocess& daemon) {
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

TEST_CASE(
    "--grpc-max-connections=3: three connections stream, a fourth is closed at once while the "
    "probes answer, and a closed connection's place comes back") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig(), {"--grpc-max-connections=3"});
  INFO(daemon.stderr_text());
  const std::string metrics = MetricsAddress(daemon);
  const std::string probes = ProbeAddress(daemon);
  AwaitReady(probes);
  CHECK(Sample(metrics, "informerd_grpc_max_connections") == 3);
  REQUIRE(Sample(metrics, "informerd_grpc_connections") == 0);

  std::shared_ptr<grpc::Channel> channels[3];
  std::unique_ptr<informerd::v1::Informer::Stub> stubs[3];
  std::unique_ptr<OpenStream> streams[3];
  for (int i = 0; i < 3; ++i) {
    channels[i] = OwnChannel(address);
    stubs[i] = informerd::v1::Informer::NewStub(channels[i]);
    streams[i] = std::make_unique<OpenStream>(*stubs[i]);
    INFO("stream " << i);
    REQUIRE(streams[i]->synced);
  }
  CHECK(Sample(metrics, "informerd_grpc_connections") == 3);

  {
    auto fourth = informerd::v1::Informer::NewStub(OwnChannel(address));
    const grpc::Status refused = List(*fourth);
    INFO(refused.error_message());
    CHECK(refused.error_code() == grpc::StatusCode::UNAVAILABLE);
    auto healthz = HttpGet(probes, "/healthz");
    REQUIRE(healthz.ok());
    CHECK(healthz->status == 200);
  }
  CHECK(Sample(metrics, "informerd_grpc_connections_refused_total{reason=\"max-connections\"}") >=
        1);
  CHECK(Sample(metrics, "informerd_grpc_connections") == 3);
  CHECK(Sample(metrics, "informerd_grpc_connections_accepted_total") == 3);

  // The three keep streaming: a new pod reaches each.
  REQUIRE(upstream.server().Upsert("pods", "default", "web-4").ok());
  for (int i = 0; i < 3; ++i) {
    INFO("stream " << i);
    const std::optional<std::string> object = streams[i]->NextName();
    REQUIRE(object.has_value());
    CHECK(object->find("\"name\":\"web-4\"") != std::string::npos);
  }

  // One connection closes: its place comes back.
  CHECK(streams[0]->Cancel().error_code() == grpc::StatusCode::CANCELLED);
  streams[0].reset();
  stubs[0].reset();
  channels[0].reset();
  CHECK(WaitUntil([&] { return Sample(metrics, "informerd_grpc_connections") == 2; }, seconds(10),
                  milliseconds(50)));
  auto fifth = informerd::v1::Informer::NewStub(OwnChannel(address));
  CHECK(List(*fifth).ok());
  CHECK(Sample(metrics, "informerd_grpc_connections") == 3);

  for (int i = 1; i < 3; ++i) streams[i]->Cancel();
  Stop(daemon);
}

TEST_CASE(
    "--grpc-max-concurrent-streams=2: a third Subscribe on the same connection waits until a "
    "stream ends") {
  Upstream upstream;
  auto [daemon, address] =
      StartDaemon(upstream, PodsOnlyConfig(), {"--grpc-max-concurrent-streams=2"});
  INFO(daemon.stderr_text());
  const std::string metrics = MetricsAddress(daemon);
  AwaitReady(ProbeAddress(daemon));

  auto stub = informerd::v1::Informer::NewStub(OwnChannel(address));
  auto first = std::make_unique<OpenStream>(*stub);
  OpenStream second(*stub);
  REQUIRE(first->synced);
  REQUIRE(second.synced);

  std::atomic<bool> third_synced{false};
  std::unique_ptr<OpenStream> third;
  std::thread opener([&] {
    third = std::make_unique<OpenStream>(*stub);
    third_synced = third->synced;
  });
  std::this_thread::sleep_for(seconds(1));
  CHECK_FALSE(third_synced);
  CHECK(Sample(metrics, "informerd_subscriptions_open") == 2);
  CHECK(Sample(metrics, "informerd_grpc_connections") == 1);

  CHECK(first->Cancel().error_code() == grpc::StatusCode::CANCELLED);
  first.reset();
  CHECK(WaitUntil([&] { return third_synced.load(); }, seconds(10), milliseconds(20)));
  opener.join();
  CHECK(Sample(metrics, "informerd_subscriptions_open") == 2);

  second.Cancel();
  if (third) third->Cancel();
  Stop(daemon);
}

}  // namespace
}  // namespace informerd::test
