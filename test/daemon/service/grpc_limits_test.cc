// Specification of the gRPC port's limits on what one client can make the server do
// (daemon/service/grpc_server.*, daemon/service/connection_gate.*): keepalive enforcement, the
// server's own keepalive on quiet streams, concurrent streams per connection, connection age,
// the connection limit and the handshake timeout, and the stream-reset ("rapid reset") flood
// that gRPC 1.51 does not defend against by itself. In-process, over real sockets, with gRPC's
// own client where a well-behaved client is meant and a hand-written HTTP/2 client
// (raw_http2_client.h) where a misbehaving one is.
//
// Timings are scaled down from the defaults (10 s, 30 min, ...) to fractions of a second; each
// test prints what it measured (WARN lines in the test log) for the README's figures.
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/service/grpc_server.h"
#include "daemon/service/informer_service.h"
#include "daemon/service/thread_priority.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/sinks/ostream_sink.h"
#include "test/common/informer_service_test_support.h"
#include "test/common/wait_until.h"
#include "test/daemon/service/raw_http2_client.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Goaway;
using testing::RawHttp2Client;
using Clock = std::chrono::steady_clock;

const char kSubscribePath[] = "/informerd.v1.Informer/Subscribe";
const char kListPath[] = "/informerd.v1.Informer/List";

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The process's resident memory, from /proc/self/statm.
uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Subscribe holds its stream open, sending nothing, until the client cancels or the server shuts
// down; List answers at once. Counts both.
class HoldingService final : public v1::Informer::CallbackService {
 public:
  grpc::ServerWriteReactor<v1::Event>* Subscribe(grpc::CallbackServerContext*,
                                                 const v1::SubscribeRequest*) override {
    class Held final : public grpc::ServerWriteReactor<v1::Event> {
     public:
      explicit Held(HoldingService& service) : service_(service) {
        ++service_.subscribes_started;
        ++service_.subscribes_open;
        built_.store(true, std::memory_order_release);
      }
      void OnCancel() override {
        (void)built_.load(std::memory_order_acquire);
        Finish(grpc::Status::CANCELLED);
      }
      void OnDone() override {
        (void)built_.load(std::memory_order_acquire);
        --service_.subscribes_open;
        delete this;
      }

     private:
      HoldingService& service_;
      // Built on one gRPC thread, ended on another after a hand-over inside libgrpc, which
      // ThreadSanitizer cannot see: this flag makes it visible.
      std::atomic<bool> built_{false};
    };
    return new Held(*this);
  }
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context, const v1::ListRequest*,
                                 v1::ListResponse* response) override {
    ++lists;
    response->set_resource_version("1");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  std::atomic<int> subscribes_started{0};
  std::atomic<int> subscribes_open{0};
  std::atomic<long> lists{0};
};

std::unique_ptr<GrpcServer> StartServer(grpc::Service& service, GrpcServerOptions options,
                                        std::shared_ptr<spdlog::logger> logger = NullLogger(),
                                        const std::string& address = "127.0.0.1:0") {
  auto server = GrpcServer::Start(address, grpc::InsecureServerCredentials(), {&service},
                                  std::move(logger), std::move(options));
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  return *std::move(server);
}

// A channel of its own (no subchannel shared with other channels): its own connection.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& target,
                                          grpc::ChannelArguments args = {}) {
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

grpc::Status CallList(v1::Informer::Stub& stub, milliseconds deadline = seconds(10)) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  v1::ListRequest request;
  v1::ListResponse response;
  return stub.List(&context, request, &response);
}

// A TCP connection to "127.0.0.1:PORT" that says nothing; -1 if it cannot connect.
int ConnectTcp(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether the server has closed `fd` (the end of the stream, or a reset), reading and dropping
// whatever it sent before (gRPC's server sends its SETTINGS at once).
bool ClosedByServer(int fd) {
  char buffer[4096];
  while (true) {
    const ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (got == 0) return true;
    if (got < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

// A Subscribe opened by the raw client: HEADERS and the (empty) request message, stream left
// open.
std::string RawSubscribe(uint32_t stream_id) {
  return testing::GrpcHeadersFrame(stream_id, kSubscribePath, false) +
         testing::GrpcMessageFrame(stream_id, "", false);
}

// ---- Keepalive -----------------------------------------------------------------------------

TEST_CASE(
    "keepalive: a client pinging more often than the minimum interval is sent GOAWAY "
    "ENHANCE_YOUR_CALM too_many_pings after 2 strikes, and disconnected") {
  HoldingService service;
  GrpcServerOptions options;
  options.min_client_ping_interval = seconds(10);  // the default
  auto server = StartServer(service, options);

  SECTION("2 pings too soon are tolerated") {
    RawHttp2Client client(server->address());
    REQUIRE(client.WaitForSettings(seconds(5)));
    // The first ping is never early; the next two are strikes 1 and 2.
    for (uint64_t i = 0; i < 3; ++i) {
      REQUIRE(client.Send(testing::PingFrame(i)));
      std::this_thread::sleep_for(milliseconds(5));
    }
    CHECK_FALSE(client.WaitForGoaway(milliseconds(1000)).has_value());
    CHECK_FALSE(client.closed());
  }
  SECTION("the third is one too many") {
    RawHttp2Client client(server->address());
    REQUIRE(client.WaitForSettings(seconds(5)));
    // One at a time, as a client's keepalive timer sends them. (Four in one write can see the
    // connection reset before the GOAWAY is read: gRPC 1.51 closes the transport while it is
    // still writing the pings' acks and the GOAWAY.)
    for (uint64_t i = 0; i < 4; ++i) {
      REQUIRE(client.Send(testing::PingFrame(i)));
      std::this_thread::sleep_for(milliseconds(5));
    }
    const std::optional<Goaway> goaway = client.WaitForGoaway(seconds(5));
    REQUIRE(goaway.has_value());
    CHECK(goaway->error_code == testing::kErrorEnhanceYourCalm);
    CHECK(goaway->debug_data == "too_many_pings");
    CHECK(client.WaitForClose(seconds(5)));
  }
}

TEST_CASE("keepalive: clients pinging at the documented interval keep a quiet stream open") {
  // Scaled down: the README tells clients to ping every 30 s or more, three times the server's
  // 10 s minimum; here 900 ms against 300 ms.
  HoldingService service;
  GrpcServerOptions options;
  options.min_client_ping_interval = milliseconds(300);
  auto server = StartServer(service, options);

  SECTION("a raw client pinging every interval, nothing else said, for 12 pings") {
    RawHttp2Client client(server->address());
    REQUIRE(client.WaitForSettings(seconds(5)));
    REQUIRE(client.Send(RawSubscribe(1)));
    for (uint64_t i = 0; i < 12; ++i) {
      std::this_thread::sleep_for(milliseconds(310));
      REQUIRE(client.Send(testing::PingFrame(i)));
    }
    CHECK_FALSE(client.WaitForGoaway(milliseconds(300)).has_value());
    CHECK_FALSE(client.closed());
    CHECK(service.subscribes_open == 1);
  }
  SECTION("gRPC's client with the README's keepalive settings, scaled") {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 900);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    auto channel = NewChannel(server->address(), args);
    auto stub = v1::Informer::NewStub(channel);
    grpc::ClientContext context;
    v1::SubscribeRequest request;
    auto reader = stub->Subscribe(&context, request);
    REQUIRE(testing::WaitUntil([&] { return service.subscribes_open == 1; }));
    std::this_thread::sleep_for(seconds(5));  // 5 client pings, nothing else on the stream
    CHECK(service.subscribes_open == 1);
    CHECK(channel->GetState(false) == GRPC_CHANNEL_READY);
    context.TryCancel();
    v1::Event event;
    CHECK_FALSE(reader->Read(&event));
    CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
}

TEST_CASE(
    "keepalive: the server's pings go on over a quiet stream, so a client that vanishes "
    "after a long quiet spell is still disconnected") {
  HoldingService service;
  GrpcServerOptions options;
  options.keepalive_time = milliseconds(200);
  options.keepalive_timeout = milliseconds(300);
  auto server = StartServer(service, options);

  RawHttp2Client client(server->address());
  REQUIRE(client.WaitForSettings(seconds(5)));
  REQUIRE(client.Send(RawSubscribe(1)));
  REQUIRE(testing::WaitUntil([&] { return service.subscribes_open == 1; }));
  // Nothing is sent either way but pings and their acks.
  std::this_thread::sleep_for(seconds(2));
  const int pings = client.pings_received();
  WARN("server keepalive pings over 2 s of a quiet stream (every 200 ms): " << pings);
  CHECK(pings >= 6);
  // The client stops answering, as a peer gone without a FIN: closed within the timeout.
  client.set_answer_pings(false);
  const auto silent = Clock::now();
  CHECK(client.WaitForClose(seconds(3)));
  WARN("closed " << MillisecondsSince(silent) << " ms after the client stopped answering");
  CHECK(testing::WaitUntil([&] { return service.subscribes_open == 0; }));
}

// ---- Concurrent streams -------------------------------------------------------------------

TEST_CASE(
    "concurrent streams: the server announces its limit; gRPC's client queues the calls "
    "beyond it until streams end") {
  HoldingService service;
  GrpcServerOptions options;
  options.max_concurrent_streams = 5;
  auto server = StartServer(service, options);

  {
    RawHttp2Client client(server->address());
    REQUIRE(client.WaitForSettings(seconds(5)));
    CHECK(client.server_setting(0x3) == 5u);  // SETTINGS_MAX_CONCURRENT_STREAMS
  }

  auto stub = v1::Informer::NewStub(NewChannel(server->address()));
  constexpr int kStreams = 12;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  for (int i = 0; i < kStreams; ++i) contexts.push_back(std::make_unique<grpc::ClientContext>());
  std::vector<grpc::StatusCode> codes(kStreams, grpc::StatusCode::UNKNOWN);
  std::vector<std::thread> readers;
  for (int i = 0; i < kStreams; ++i) {
    readers.emplace_back([&, i] {
      v1::SubscribeRequest request;
      auto reader = stub->Subscribe(contexts[i].get(), request);
      v1::Event event;
      while (reader->Read(&event)) {
      }
      codes[i] = reader->Finish().error_code();
    });
  }
  REQUIRE(testing::WaitUntil([&] { return service.subscribes_open == 5; }));
  std::this_thread::sleep_for(milliseconds(300));
  CHECK(service.subscribes_open == 5);
  CHECK(service.subscribes_started == 5);
  // Unary calls wait their turn too: none is answered while 5 streams are open.
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + milliseconds(300));
    v1::ListRequest request;
    v1::ListResponse response;
    CHECK(stub->List(&context, request, &response).error_code() ==
          grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK(service.lists == 0);
  }
  // Every stream the client ends lets one waiting call start.
  for (int i = 0; i < kStreams; ++i) contexts[i]->TryCancel();
  for (std::thread& reader : readers) reader.join();
  CHECK(service.subscribes_started <= kStreams);
  CHECK(CallList(*stub).ok());
}

TEST_CASE(
    "concurrent streams: a client that opens more than the limit anyway has its connection "
    "closed; the server started no more calls than the limit") {
  HoldingService service;
  GrpcServerOptions options;
  options.max_concurrent_streams = 5;
  auto server = StartServer(service, options);

  RawHttp2Client client(server->address());
  REQUIRE(client.WaitForSettings(seconds(5)));
  std::string streams;
  for (uint32_t i = 0; i < 8; ++i) streams += RawSubscribe(1 + 2 * i);
  REQUIRE(client.Send(streams));
  CHECK(client.WaitForClose(seconds(5)));
  const std::optional<Goaway> goaway = client.WaitForGoaway(milliseconds(0));
  if (goaway) WARN("GOAWAY error " << goaway->error_code << " \"" << goaway->debug_data << "\"");
  CHECK(service.subscribes_started <= 5);
  CHECK(testing::WaitUntil([&] { return service.subscribes_open == 0; }));
}

// ---- Connection age --------------------------------------------------------------------------

TEST_CASE("max connection age: GOAWAY at the age, the connection closed at the end of the grace") {
  HoldingService service;
  GrpcServerOptions options;
  options.max_connection_age = milliseconds(1000);
  options.max_connection_age_grace = milliseconds(1000);
  auto server = StartServer(service, options);

  const auto start = Clock::now();
  RawHttp2Client client(server->address());
  REQUIRE(client.WaitForSettings(seconds(5)));
  REQUIRE(client.Send(RawSubscribe(1)));
  const std::optional<Goaway> goaway = client.WaitForGoaway(seconds(10));
  const double goaway_ms = MillisecondsSince(start);
  REQUIRE(goaway.has_value());
  CHECK(goaway->error_code == testing::kErrorNoError);
  // gRPC jitters the age by ±10%.
  CHECK(goaway_ms >= 850);
  CHECK(goaway_ms <= 3000);
  // The open stream is left alone through the grace, then the connection is closed.
  CHECK(service.subscribes_open == 1);
  REQUIRE(client.WaitForClose(seconds(10)));
  const double closed_ms = MillisecondsSince(start);
  WARN("age 1000 ms, grace 1000 ms: GOAWAY \"" << goaway->debug_data << "\" at " << goaway_ms
                                               << " ms, connection closed at " << closed_ms
                                               << " ms");
  CHECK(closed_ms - goaway_ms >= 900);
  CHECK(testing::WaitUntil([&] { return service.subscribes_open == 0; }));
}

TEST_CASE(
    "max connection age: an open Subscribe ends UNAVAILABLE at the grace; the client "
    "resumes from its last resource version on a new connection, missing nothing") {
  testing::Harness harness;
  auto cache = harness.AddCache();
  testing::Sync(*cache, {{"default", "a", 5}}, 10);
  InformerService service(harness.resolver, harness.registry, testing::AllowEveryone());
  GrpcServerOptions options;
  options.max_connection_age = milliseconds(1000);
  options.max_connection_age_grace = milliseconds(1000);
  auto server = StartServer(service, options);

  auto stub = v1::Informer::NewStub(NewChannel(server->address()));
  const auto start = Clock::now();
  std::string last_version;
  {
    testing::Stream stream(*stub, testing::SubscribeTo("pods"));
    CHECK(testing::Describe(stream.Read(2)) ==
          std::vector<std::string>{"ADDED default/a rv=5", "SYNCED rv=10"});
    cache->ApplyWatchEvent(testing::Modified({"default", "a", 11}));
    const std::vector<v1::Event> events = stream.Read(1);
    CHECK(testing::Describe(events) == std::vector<std::string>{"MODIFIED default/a rv=11"});
    last_version = events.back().resource_version();
    const grpc::Status status = stream.Finish();
    const double ended_ms = MillisecondsSince(start);
    WARN("Subscribe ended " << status.error_code() << " \"" << status.error_message() << "\" at "
                            << ended_ms << " ms (age 1000 ms + grace 1000 ms)");
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(ended_ms >= 1700);
  }
  // A change while the client was away; it resumes where it was.
  cache->ApplyWatchEvent(testing::Modified({"default", "a", 12}));
  testing::Stream resumed(*stub, testing::SubscribeTo("pods", "", "", "", last_version));
  CHECK(testing::Describe(resumed.Read(1)) == std::vector<std::string>{"MODIFIED default/a rv=12"});
  CHECK(server->connection_stats().accepted >= 2);
  resumed.context().TryCancel();
}

// ---- Connections ---------------------------------------------------------------------------

TEST_CASE(
    "connections: 2,000 attempted with a limit of 100: the limit holds, the rest are closed "
    "at once, the client connected before is served throughout") {
  HoldingService service;
  GrpcServerOptions options;
  options.max_connections = 100;
  options.handshake_timeout = seconds(60);  // the idle sockets keep their places
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  auto server = StartServer(service, options, logger);
  const std::string address = server->address();
  auto stub = v1::Informer::NewStub(NewChannel(address));
  REQUIRE(CallList(*stub).ok());  // the first connection
  const uint64_t resident_before = ResidentBytes();

  constexpr int kAttempts = 2000;
  std::vector<int> sockets;
  const auto start = Clock::now();
  for (int i = 0; i < kAttempts; ++i) {
    const int fd = ConnectTcp(address);
    REQUIRE(fd >= 0);
    sockets.push_back(fd);
  }
  const double connect_ms = MillisecondsSince(start);
  REQUIRE(testing::WaitUntil(
      [&] {
        const ConnectionGateStats stats = server->connection_stats();
        return stats.open == 100 && stats.refused == kAttempts - 99;
      },
      seconds(30)));
  const double settled_ms = MillisecondsSince(start);
  // The refused ones see their connection closed; the 99 admitted stay open.
  int closed = 0;
  REQUIRE(testing::WaitUntil(
      [&] {
        closed = 0;
        for (int fd : sockets) closed += ClosedByServer(fd) ? 1 : 0;
        return closed == kAttempts - 99;
      },
      seconds(10)));
  for (int i = 0; i < 20; ++i) CHECK(CallList(*stub).ok());
  // A new client while the limit is reached fails at once, UNAVAILABLE, instead of waiting.
  {
    auto other = v1::Informer::NewStub(NewChannel(address));
    const auto call_start = Clock::now();
    const grpc::Status status = CallList(*other, seconds(10));
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    WARN("a new client at the limit: " << status.error_code() << " \"" << status.error_message()
                                       << "\" after " << MillisecondsSince(call_start) << " ms");
  }
  const uint64_t resident_at_limit = ResidentBytes();
  WARN(kAttempts << " connections attempted in " << connect_ms << " ms; limit reached and the "
                 << closed << " others closed within " << settled_ms << " ms; resident memory "
                 << resident_before / 1024 / 1024 << " MiB before, "
                 << resident_at_limit / 1024 / 1024 << " MiB with 100 connections open");
  CHECK(log.str().find("gRPC connection(s)") != std::string::npos);
  CHECK(log.str().find("100 open, the limit (--grpc-max-connections)") != std::string::npos);
  CHECK(server->connection_stats().max_connections == 100);

  // Room again once they go.
  for (int fd : sockets) close(fd);
  REQUIRE(testing::WaitUntil([&] { return server->connection_stats().open == 1; }));
  CHECK(CallList(*v1::Informer::NewStub(NewChannel(address))).ok());
}

TEST_CASE(
    "handshake timeout: a connection that never speaks HTTP/2 is closed after it, and its "
    "place under the limit is free again") {
  HoldingService service;
  GrpcServerOptions options;
  options.max_connections = 10;
  options.handshake_timeout = milliseconds(500);
  auto server = StartServer(service, options);

  std::vector<int> sockets;
  for (int i = 0; i < 10; ++i) sockets.push_back(ConnectTcp(server->address()));
  REQUIRE(testing::WaitUntil([&] { return server->connection_stats().open == 10; }));
  const auto start = Clock::now();
  REQUIRE(testing::WaitUntil(
      [&] {
        for (int fd : sockets) {
          if (!ClosedByServer(fd)) return false;
        }
        return true;
      },
      seconds(10)));
  WARN("10 silent connections closed " << MillisecondsSince(start)
                                       << " ms after the limit was reached (timeout 500 ms)");
  REQUIRE(testing::WaitUntil([&] { return server->connection_stats().open == 0; }));
  CHECK(CallList(*v1::Informer::NewStub(NewChannel(server->address()))).ok());
  for (int fd : sockets) close(fd);
}

// ---- Calls in flight per connection ----------------------------------------------------------

// Subscribe streams opened on `stub` on threads of their own, each read until it ends.
class OpenStreams {
 public:
  OpenStreams(v1::Informer::Stub& stub, int count) : codes_(count, grpc::StatusCode::UNKNOWN) {
    for (int i = 0; i < count; ++i) contexts_.push_back(std::make_unique<grpc::ClientContext>());
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this, &stub, i] {
        v1::SubscribeRequest request;
        auto reader = stub.Subscribe(contexts_[i].get(), request);
        v1::Event event;
        while (reader->Read(&event)) {
        }
        codes_[i] = reader->Finish().error_code();
        ++ended_;
      });
    }
  }
  // Cancels the streams still open and returns each one's status code.
  std::vector<grpc::StatusCode> End() {
    for (auto& context : contexts_) context->TryCancel();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
    return codes_;
  }
  ~OpenStreams() { End(); }
  // Streams that have ended by themselves (or been cancelled by End).
  int ended() const { return ended_; }

 private:
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  std::vector<grpc::StatusCode> codes_;
  std::vector<std::thread> threads_;
  std::atomic<int> ended_{0};
};

TEST_CASE(
    "calls in flight are counted per TCP connection (IPv4 and IPv6); a connection with more "
    "than the limit is closed and its calls end UNAVAILABLE") {
  // 0.0.0.0 is served on a dual-stack [::] socket: IPv4 clients arrive as IPv4-mapped addresses.
  for (const char* listen : {"127.0.0.1:0", "[::1]:0", "0.0.0.0:0"}) {
    INFO(listen);
    HoldingService service;
    GrpcServerOptions options;
    options.max_calls_per_connection = 3;
    std::ostringstream log;
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    auto server = StartServer(service, options, logger, listen);
    auto stub = v1::Informer::NewStub(NewChannel(server->address()));
    {
      OpenStreams three(*stub, 3);
      REQUIRE(testing::WaitUntil([&] { return server->connection_stats().calls == 3; }));
      CHECK(service.subscribes_open == 3);
      OpenStreams fourth(*stub, 1);
      REQUIRE(testing::WaitUntil([&] { return service.subscribes_open == 0; }));
      // The client sees the connection end on its own time (End would cancel what it has not).
      CHECK(testing::WaitUntil([&] { return three.ended() == 3 && fourth.ended() == 1; }));
      CHECK(three.End() == std::vector<grpc::StatusCode>(3, grpc::StatusCode::UNAVAILABLE));
      CHECK(fourth.End() == std::vector<grpc::StatusCode>{grpc::StatusCode::UNAVAILABLE});
    }
    CHECK(server->connection_stats().closed_calls_in_flight == 1);
    CHECK(log.str().find(fmt::format(
              "closing the gRPC connection from {}",
              std::string(listen).find('[') == 0 ? "ipv6:%5B::1%5D:" : "ipv4:127.0.0.1:")) !=
          std::string::npos);
    CHECK(log.str().find("4 calls in flight (4 started on it), more than the 3 allowed "
                         "(--grpc-max-calls-per-connection") != std::string::npos);
    // The client reconnects and is served: once gRPC has released the closed connection (until
    // then a new one from the same address is refused), after the channel's reconnect backoff.
    CHECK(testing::WaitUntil([&] { return CallList(*stub, milliseconds(500)).ok(); }));
    CHECK(testing::WaitUntil([&] { return server->connection_stats().calls == 0; }));
  }
}

// ---- Stream-reset flood ------------------------------------------------------------------

TEST_CASE(
    "stream-reset flood: a client opening and resetting streams as fast as it can has its "
    "connection closed, and cannot reconnect until its calls have wound down; other "
    "clients are answered throughout and memory stays bounded") {
  // Under ThreadSanitizer (--config=tsan sets INFORMERD_TSAN), tens of thousands of calls
  // started and cancelled inside Debian's uninstrumented libgrpc++ make it report races between
  // gRPC's own threads on gRPC's own objects (a std::function in its callback tag), which it
  // cannot see synchronized; the gate's side of this test is covered there by the calls-in-flight
  // case above.
  if (std::getenv("INFORMERD_TSAN") != nullptr) {
    WARN("skipped under ThreadSanitizer: the flood exercises uninstrumented gRPC internals");
    return;
  }
  HoldingService service;
  GrpcServerOptions options;  // the defaults: 100 streams, 200 calls in flight per connection
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  auto server = StartServer(service, options, logger);
  const std::string address = server->address();
  auto stub = v1::Informer::NewStub(NewChannel(address));
  REQUIRE(CallList(*stub).ok());
  const uint64_t resident_before = ResidentBytes();

  // The attacker reconnects as soon as its connection is closed, as a flood script would. Each
  // stream: HEADERS, the request, RST_STREAM CANCEL at once, so that it never counts against the
  // concurrent streams.
  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0};
  std::atomic<int> connections{0};
  std::atomic<long> streams{0};
  std::thread attacker([&] {
    while (!stop) {
      ++attempts;
      RawHttp2Client flood(address);
      if (!flood.WaitForSettings(seconds(2))) continue;
      ++connections;
      uint32_t id = 1;
      while (!stop && !flood.closed() && id < (1u << 30)) {
        std::string batch;
        for (int i = 0; i < 100; ++i, id += 2) {
          batch += testing::GrpcHeadersFrame(id, kListPath, false) +
                   testing::GrpcMessageFrame(id, "", true) +
                   testing::RstStreamFrame(id, testing::kErrorCancel);
        }
        if (!flood.Send(batch)) break;
        streams += 100;
      }
    }
  });
  // Meanwhile the well-behaved client calls every 20 ms for 5 s.
  const seconds flood_duration(5);
  const auto start = Clock::now();
  int calls = 0;
  int failed = 0;
  double slowest_ms = 0;
  uint64_t resident_peak = resident_before;
  while (Clock::now() - start < flood_duration) {
    const auto call_start = Clock::now();
    const grpc::Status status = CallList(*stub, seconds(10));
    slowest_ms = std::max(slowest_ms, MillisecondsSince(call_start));
    ++calls;
    if (!status.ok()) ++failed;
    resident_peak = std::max(resident_peak, ResidentBytes());
    std::this_thread::sleep_for(milliseconds(20));
  }
  stop = true;
  attacker.join();
  std::this_thread::sleep_for(seconds(1));
  const uint64_t resident_after = ResidentBytes();
  const ConnectionGateStats stats = server->connection_stats();
  WARN("flood for " << flood_duration.count() << " s: " << streams
                    << " streams opened and reset over " << connections << " connection(s) of "
                    << attempts << " attempted; " << stats.closed_calls_in_flight
                    << " closed for their calls in flight, " << stats.refused_peer_closing
                    << " refused while the last was winding down; the other client: " << calls
                    << " calls, " << failed << " failed, slowest " << slowest_ms
                    << " ms; resident memory " << resident_before / 1024 / 1024
                    << " MiB before, peak " << resident_peak / 1024 / 1024 << " MiB, "
                    << resident_after / 1024 / 1024 << " MiB 1 s after");
  // Without the gate the same flood took 0.8 to 1.4 GB within 5 s over its one connection and the
  // other client's calls waited 10 s and more. With it, each flood connection gets thousands of
  // streams accepted by gRPC before the 201st call starts, so the peak varies (120 to 360 MiB
  // over the baseline here, the attacker's threads sharing the 2 cores); it does not grow with
  // the flood's length.
  CHECK(failed == 0);
  CHECK(slowest_ms < 2000);
  CHECK(resident_peak - resident_before < (512u << 20));
  CHECK(stats.closed_calls_in_flight >= 1);
  CHECK(stats.refused_peer_closing >= 1);
  CHECK(log.str().find("(--grpc-max-calls-per-connection") != std::string::npos);
  // New connections are served again once the last one's calls have wound down.
  CHECK(testing::WaitUntil(
      [&] { return CallList(*v1::Informer::NewStub(NewChannel(address)), seconds(2)).ok(); }));
}

// ---- Priority -------------------------------------------------------------------------------

// Records the nice value of the thread each List runs on.
class NiceRecordingService final : public v1::Informer::CallbackService {
 public:
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context, const v1::ListRequest*,
                                 v1::ListResponse* response) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(ThisThreadsNice());
    }
    response->set_resource_version("1");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::mutex mu;
  std::vector<int> seen;
};

TEST_CASE(
    "priority: calls run on gRPC threads lowered to call_thread_nice; with 0 they keep the "
    "process's priority, and the caller's thread is never changed") {
  const int before = ThisThreadsNice();
  for (const int nice : {0, 9}) {
    INFO("call_thread_nice " << nice);
    NiceRecordingService service;
    GrpcServerOptions options;
    options.call_thread_nice = nice;
    auto server = StartServer(service, options);
    auto stub = v1::Informer::NewStub(NewChannel(server->address()));
    for (int i = 0; i < 20; ++i) REQUIRE(CallList(*stub).ok());
    server->Shutdown(milliseconds(100));
    std::lock_guard<std::mutex> lock(service.mu);
    REQUIRE(service.seen.size() == 20);
    for (const int seen : service.seen) CHECK(seen == std::max(before, nice));
  }
  CHECK(ThisThreadsNice() == before);
}

}  // namespace
}  // namespace informerd::daemon
