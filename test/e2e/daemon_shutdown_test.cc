// End-to-end: the informerd binary's graceful shutdown on SIGTERM and on SIGINT, as clients see
// it. The daemon is ready and busy when the signal arrives: a Subscribe stream is open, a List
// waits for a resource that never syncs, a health Watch follows readiness, and a straggler (a
// reflection stream the client never closes) keeps the gRPC server in its grace period, so that
// what happens during the drain can be observed before the process exits.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/wait_until.h"
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using Clock = std::chrono::steady_clock;
using grpc::health::v1::HealthCheckResponse;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The daemon's grace period for calls still open once its services have shut down.
constexpr seconds kGrace{5};

// How a call ended, as its client thread saw it.
class CallEnd {
 public:
  void Set(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    at_ = Clock::now();
    done_ = true;
  }
  bool done() const {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  grpc::StatusCode code() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_.error_code();
  }
  std::string message() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_.error_message();
  }
  // How long after `start` the call ended.
  milliseconds After(Clock::time_point start) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::chrono::duration_cast<milliseconds>(at_ - start);
  }

 private:
  mutable std::mutex mu_;
  bool done_ = false;
  grpc::Status status_;
  Clock::time_point at_;
};

// A health Watch of "" read on a thread of its own: every status it delivers, and its end.
class HealthWatch {
 public:
  explicit HealthWatch(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(grpc::health::v1::Health::NewStub(channel)) {
    grpc::health::v1::HealthCheckRequest request;
    reader_ = stub_->Watch(&context_, request);
    thread_ = std::thread([this] {
      HealthCheckResponse response;
      while (reader_->Read(&response)) {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(response.status());
      }
      end_.Set(reader_->Finish());
    });
  }
  ~HealthWatch() {
    context_.TryCancel();
    thread_.join();
  }
  bool Saw(HealthCheckResponse::ServingStatus status) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::find(seen_.begin(), seen_.end(), status) != seen_.end();
  }
  const CallEnd& end() const { return end_; }

 private:
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader_;
  mutable std::mutex mu_;
  std::vector<HealthCheckResponse::ServingStatus> seen_;
  CallEnd end_;
  std::thread thread_;
};

// A Subscribe stream read on a thread of its own.
class SubscribeStream {
 public:
  SubscribeStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& resource)
      : stub_(informerd::v1::Informer::NewStub(channel)) {
    informerd::v1::SubscribeRequest request;
    request.set_resource(resource);
    reader_ = stub_->Subscribe(&context_, request);
    thread_ = std::thread([this] {
      informerd::v1::Event event;
      while (reader_->Read(&event)) {
        if (event.type() == informerd::v1::Event::SYNCED) synced_ = true;
      }
      end_.Set(reader_->Finish());
    });
  }
  ~SubscribeStream() {
    context_.TryCancel();
    thread_.join();
  }
  // The snapshot has been read to its SYNCED event: the stream is open and live.
  bool synced() const { return synced_; }
  const CallEnd& end() const { return end_; }

 private:
  std::unique_ptr<informerd::v1::Informer::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<informerd::v1::Event>> reader_;
  std::atomic<bool> synced_{false};
  CallEnd end_;
  std::thread thread_;
};

// A List of `resource` made on a thread of its own, with a deadline far beyond the test.
class PendingList {
 public:
  PendingList(const std::shared_ptr<grpc::Channel>& channel, const std::string& resource)
      : stub_(informerd::v1::Informer::NewStub(channel)) {
    context_.set_deadline(std::chrono::system_clock::now() + seconds(60));
    request_.set_resource(resource);
    thread_ = std::thread([this] {
      informerd::v1::ListResponse response;
      end_.Set(stub_->List(&context_, request_, &response));
    });
  }
  ~PendingList() {
    context_.TryCancel();
    thread_.join();
  }
  const CallEnd& end() const { return end_; }

 private:
  std::unique_ptr<informerd::v1::Informer::Stub> stub_;
  grpc::ClientContext context_;
  informerd::v1::ListRequest request_;
  CallEnd end_;
  std::thread thread_;
};

// A reflection stream that has had its answer and is never closed by the client: a call the
// daemon's services know nothing of, which only the gRPC server's grace period ends.
class Straggler {
 public:
  explicit Straggler(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(grpc::reflection::v1alpha::ServerReflection::NewStub(channel)) {
    stream_ = stub_->ServerReflectionInfo(&context_);
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_list_services("*");
    REQUIRE(stream_->Write(request));
    grpc::reflection::v1alpha::ServerReflectionResponse response;
    REQUIRE(stream_->Read(&response));
    thread_ = std::thread([this] {
      grpc::reflection::v1alpha::ServerReflectionResponse more;
      while (stream_->Read(&more)) {
      }
      end_.Set(stream_->Finish());
    });
  }
  ~Straggler() {
    context_.TryCancel();
    thread_.join();
  }
  const CallEnd& end() const { return end_; }

 private:
  std::unique_ptr<grpc::reflection::v1alpha::ServerReflection::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::reflection::v1alpha::ServerReflectionRequest,
                                           grpc::reflection::v1alpha::ServerReflectionResponse>>
      stream_;
  CallEnd end_;
  std::thread thread_;
};

TEST_CASE(
    "SIGTERM and SIGINT: NOT_SERVING and /readyz 503 while draining, open streams and "
    "waiting Lists end UNAVAILABLE at once, stragglers get the 5 s grace, exit 0") {
  const int signal_number = GENERATE(SIGTERM, SIGINT);
  const std::string signal_name = signal_number == SIGTERM ? "SIGTERM" : "SIGINT";
  INFO("signal " << signal_name);

  Upstream upstream;
  // configmaps never sync: every LIST of them stalls after its response headers.
  upstream.server().InjectFault("configmaps", fakeapi::Verb::kList, fakeapi::Fault::Stall(), 100);
  // Ready once pods have synced; configmaps are read on demand, which readiness does not wait for.
  const std::string config =
      WriteTempFile("shutdown.yaml", "allowOnDemand: true\nresources:\n  - resource: pods\n");
  auto [daemon, address] = StartDaemon(upstream, config);
  const std::string metrics = MetricsAddress(daemon);
  REQUIRE(AwaitHealth(address, "", HealthCheckResponse::SERVING, seconds(20)) ==
          HealthCheckResponse::SERVING);
  {
    const HttpReply readyz = Get(metrics, "/readyz");
    INFO(readyz.body << "\n" << daemon.stderr_text());
    REQUIRE(readyz.status == 200);
  }

  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  HealthWatch health(channel);
  REQUIRE(WaitUntil([&] { return health.Saw(HealthCheckResponse::SERVING); }, seconds(10)));
  SubscribeStream stream(channel, "pods");
  REQUIRE(WaitUntil([&] { return stream.synced(); }, seconds(10)));
  PendingList list(channel, "configmaps");
  // The List has started the on-demand informer, whose LIST now hangs: the call waits for sync.
  REQUIRE(upstream.server().WaitForRequests(
      [](const fakeapi::RequestRecord& request) {
        return request.path == "/api/v1/configmaps" && !request.IsWatch();
      },
      1, seconds(10)));
  Straggler straggler(channel);
  CHECK_FALSE(list.end().done());
  CHECK_FALSE(stream.end().done());

  const Clock::time_point signalled = Clock::now();
  daemon.Signal(signal_number);

  // The open stream and the waiting List end with UNAVAILABLE long before the grace period is
  // over: the daemon ended them, not the gRPC server's deadline (which says "Cancelling all
  // calls"). Either of the service's Shutdown and the informers' Stop ends them on its own.
  REQUIRE(WaitUntil([&] { return stream.end().done(); }, kGrace + seconds(5)));
  INFO("Subscribe ended after " << stream.end().After(signalled).count()
                                << " ms: " << stream.end().message());
  CHECK(stream.end().code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(stream.end().message() == "informerd is shutting down");
  CHECK(stream.end().After(signalled) < kGrace / 2);
  REQUIRE(WaitUntil([&] { return list.end().done(); }, kGrace + seconds(5)));
  INFO("List ended after " << list.end().After(signalled).count()
                           << " ms: " << list.end().message());
  CHECK(list.end().code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(list.end().message() == "informerd is shutting down");
  CHECK(list.end().After(signalled) < kGrace / 2);

  // Still draining (the straggler is open): health has turned NOT_SERVING for its watchers and
  // /readyz says 503, and why. (GrpcServer::Shutdown also turns health NOT_SERVING; the daemon's
  // own switch, before the streams end, is the NOT_SERVING line checked in the log below.)
  CHECK(WaitUntil([&] { return health.Saw(HealthCheckResponse::NOT_SERVING); }, seconds(5)));
  CHECK_FALSE(straggler.end().done());
  const HttpReply readyz = Get(metrics, "/readyz");
  CHECK(readyz.status == 503);
  CHECK(readyz.body.find("informerd is shutting down") != std::string::npos);
  CHECK_FALSE(straggler.end().done());

  // The straggler is given the whole grace period, then ended; the process exits 0 soon after.
  auto exit_code = daemon.Wait(kGrace + seconds(10));
  const milliseconds exited = std::chrono::duration_cast<milliseconds>(Clock::now() - signalled);
  INFO(daemon.stderr_text());
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
  REQUIRE(WaitUntil([&] { return straggler.end().done(); }, seconds(5)));
  INFO("straggler ended after " << straggler.end().After(signalled).count() << " ms with "
                                << straggler.end().code() << ": " << straggler.end().message()
                                << "; exit after " << exited.count() << " ms");
  CHECK(straggler.end().code() != grpc::StatusCode::OK);
  CHECK(straggler.end().After(signalled) >= kGrace);
  CHECK(exited < kGrace + seconds(2));

  // The log tells the story in order.
  const std::string& log = daemon.stderr_text();
  const auto ready = log.find("health: SERVING (ready)");
  const auto received = log.find("received " + signal_name + ", shutting down");
  const auto not_serving = log.find("health: NOT_SERVING (not ready)");
  const auto stopped = log.find("informerd stopped");
  CHECK(ready != std::string::npos);
  CHECK(received != std::string::npos);
  CHECK(not_serving != std::string::npos);
  CHECK(stopped != std::string::npos);
  CHECK(ready < received);
  CHECK(received < not_serving);
  CHECK(not_serving < stopped);
}

}  // namespace
}  // namespace informerd::test
