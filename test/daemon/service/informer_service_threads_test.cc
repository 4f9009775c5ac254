// The service's work never runs on the thread that applies the watches (in the daemon, the
// apiserver client's strand, which also answers the reviews): here a thread standing for it
// applies every event to the cache and gives every review's answer, as the strand does for
// reviews that are not cached, and the service reports the thread of each piece of its work
// (InformerServiceOptions::observe_work). Resolution, the Subscribe snapshot, every Subscribe
// write (after admission, and after events that land in an empty queue), and the List and Get
// reads and copies must all run elsewhere: on gRPC's threads or the service's executor.
#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/security/access_control.h"
#include "daemon/security/authenticator.h"
#include "daemon/security/authorizer.h"
#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using testing::Added;
using testing::Describe;
using testing::Harness;
using testing::HarnessOptions;
using testing::Stream;
using testing::SubscribeTo;
using testing::Sync;

// The "ingest" thread: runs the tasks given to it, in order.
class IngestThread {
 public:
  IngestThread() : thread_([this] { Loop(); }) {}
  ~IngestThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  std::thread::id id() const { return thread_.get_id(); }

  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_all();
  }

  // Runs `task` on the thread; returns once it has run.
  void Run(std::function<void()> task) {
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
    Post([&] {
      task();
      std::lock_guard<std::mutex> lock(done_mu);
      done = true;
      done_cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_ || !tasks_.empty()) {
      if (tasks_.empty()) {
        wake_.wait(lock);
        continue;
      }
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

// Everyone is system:anonymous and may read everything, but every answer comes from the ingest
// thread, later, as a review's answer comes from the client's strand.
class IngestAnswersAuthenticator final : public Authenticator {
 public:
  explicit IngestAnswersAuthenticator(IngestThread& ingest) : ingest_(ingest) {}
  void Authenticate(const CallCredentials&, Callback done) override {
    ingest_.Post([done = std::move(done)] {
      core::UserInfo user;
      user.name = "system:anonymous";
      done(user);
    });
  }

 private:
  IngestThread& ingest_;
};

class IngestAnswersAuthorizer final : public Authorizer {
 public:
  explicit IngestAnswersAuthorizer(IngestThread& ingest) : ingest_(ingest) {}
  void Authorize(const core::UserInfo&, const core::ResourceAttributes&, Callback done) override {
    ingest_.Post([done = std::move(done)] { done(AccessDecision{true, ""}); });
  }
  std::chrono::milliseconds recheck_interval() const override {
    return std::chrono::milliseconds::zero();
  }

 private:
  IngestThread& ingest_;
};

// Which thread each piece of the service's work ran on.
class WorkLog {
 public:
  void Record(const char* work) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.emplace_back(work, std::this_thread::get_id());
  }
  // How many times `work` ran, on any thread.
  std::size_t Count(const std::string& work) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t count = 0;
    for (const auto& entry : entries_) count += entry.first == work ? 1 : 0;
    return count;
  }
  // The work that ran on `thread`, by name: "write x8".
  std::vector<std::string> On(std::thread::id thread) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, int> found;
    for (const auto& entry : entries_) {
      if (entry.second == thread) ++found[entry.first];
    }
    std::vector<std::string> described;
    for (const auto& [work, count] : found) described.push_back(fmt::format("{} x{}", work, count));
    return described;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::thread::id>> entries_;
};

TEST_CASE(
    "admission answered and events applied on the ingest thread: resolution, snapshots, writes "
    "and List/Get copies run elsewhere",
    "[threads]") {
  IngestThread ingest;
  IngestAnswersAuthenticator authenticator(ingest);
  IngestAnswersAuthorizer authorizer(ingest);
  AccessControl access(authenticator, authorizer, nullptr);
  WorkLog log;
  HarnessOptions options;
  options.access_control = &access;
  options.service.observe_work = [&log](const char* work) { log.Record(work); };
  Harness harness(std::move(options));
  auto cache = harness.AddCache();
  ingest.Run([&] { Sync(*cache, {{"default", "a", 1}, {"default", "b", 2}}, 10); });

  // The snapshot, written once the admission's last answer (on the ingest thread) is in.
  Stream stream(*harness.stub, SubscribeTo("pods"));
  CHECK(Describe(stream.Read(3)) ==
        std::vector<std::string>{"ADDED default/a rv=1", "ADDED default/b rv=2", "SYNCED rv=10"});
  // Live events, each applied once the client has read everything before it: each lands in an
  // empty queue with no write in flight, so only the subscription's on_ready starts its write.
  for (uint64_t rv = 11; rv <= 15; ++rv) {
    ingest.Run([&] { cache->ApplyWatchEvent(Added({"default", fmt::format("p{}", rv), rv})); });
    CHECK(Describe(stream.Read(1)) ==
          std::vector<std::string>{fmt::format("ADDED default/p{} rv={}", rv, rv)});
  }

  {
    grpc::ClientContext context;
    v1::ListRequest request;
    request.set_resource("pods");
    v1::ListResponse response;
    const grpc::Status status = harness.stub->List(&context, request, &response);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(response.items_size() == 7);
  }
  {
    grpc::ClientContext context;
    v1::GetRequest request;
    request.set_resource("pods");
    request.set_namespace_("default");
    request.set_name("p13");
    v1::GetResponse response;
    const grpc::Status status = harness.stub->Get(&context, request, &response);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(response.resource_version() == "15");
  }

  // Every piece was done (resolution: Subscribe's, List's, Get's), and none on the ingest thread.
  CHECK(log.Count("resolve") == 3);
  CHECK(log.Count("subscribe") == 1);
  CHECK(log.Count("write") == 8);
  CHECK(log.Count("list") == 1);
  CHECK(log.Count("get") == 1);
  CHECK(log.On(ingest.id()) == std::vector<std::string>{});
  CHECK(log.On(std::this_thread::get_id()) == std::vector<std::string>{});
}

}  // namespace
}  // namespace informerd::daemon
