// RpcExecutor: tasks run on its own threads, several at once; Shutdown runs every task already
// posted, then joins; a task posted after that is destroyed without running.
#include "daemon/service/rpc_executor.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "daemon/service/thread_priority.h"
#include "test/common/wait_until.h"

namespace informerd::daemon {
namespace {

TEST_CASE("tasks run on the executor's threads, as many at once as it has", "[executor]") {
  RpcExecutor executor(3);
  CHECK(executor.thread_count() == 3);
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::thread::id> threads;
  int waiting = 0;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(executor.Post([&] {
      std::unique_lock<std::mutex> lock(mu);
      threads.insert(std::this_thread::get_id());
      ++waiting;
      cv.notify_all();
      // Each waits for the other two: only three threads at once get past this.
      cv.wait(lock, [&] { return waiting == 3; });
    }));
  }
  executor.Shutdown();
  CHECK(threads.size() == 3);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("no threads is one", "[executor]") {
  RpcExecutor executor(0);
  CHECK(executor.thread_count() == 1);
  std::atomic<bool> ran{false};
  REQUIRE(executor.Post([&] { ran = true; }));
  executor.Shutdown();
  CHECK(ran);
}

TEST_CASE("Shutdown runs what was posted, then refuses and destroys what comes after",
          "[executor]") {
  RpcExecutor executor(1);
  std::mutex gate;
  std::unique_lock<std::mutex> held(gate);
  std::atomic<int> ran{0};
  // The first task holds the only thread until the gate opens; 100 more wait behind it.
  REQUIRE(executor.Post([&] {
    std::lock_guard<std::mutex> lock(gate);
    ++ran;
  }));
  for (int i = 0; i < 100; ++i) REQUIRE(executor.Post([&] { ++ran; }));
  std::thread shutdown([&] { executor.Shutdown(); });
  // Shutdown has begun once a post is refused (the probes accepted before run, doing nothing).
  REQUIRE(test::WaitUntil([&] { return !executor.Post([] {}); }, std::chrono::seconds(10)));
  // A refused task is destroyed unrun, at once, on the poster's thread.
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> weak = token;
  CHECK_FALSE(executor.Post([token] { FAIL("a task posted after Shutdown ran"); }));
  token.reset();
  CHECK(weak.expired());
  held.unlock();
  shutdown.join();
  CHECK(ran == 101);
  CHECK(executor.pending() == 0);
  CHECK_FALSE(executor.Post([] {}));
  executor.Shutdown();  // idempotent
}

TEST_CASE("the executor's threads run at the nice value given; the poster's is untouched",
          "[executor]") {
  const int before = ThisThreadsNice();
  std::atomic<int> seen{-100};
  {
    RpcExecutor executor(1, 7);
    REQUIRE(executor.Post([&] { seen = ThisThreadsNice(); }));
    executor.Shutdown();
  }
  CHECK(seen == std::max(before, 7));
  CHECK(ThisThreadsNice() == before);
  {
    RpcExecutor executor(1);
    REQUIRE(executor.Post([&] { seen = ThisThreadsNice(); }));
    executor.Shutdown();
  }
  CHECK(seen == before);
}

}  // namespace
}  // namespace informerd::daemon
