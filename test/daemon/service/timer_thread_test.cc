// Specification of daemon/service/timer_thread.*: tasks run at their time, in order, on one thread.
#include "daemon/service/timer_thread.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using Clock = TimerThread::Clock;

bool WaitUntil(const std::function<bool()>& condition) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return condition();
}

TEST_CASE("tasks run in time order, ties in the order scheduled", "[timer_thread]") {
  TimerThread timer;
  std::mutex mu;
  std::vector<int> order;
  const auto record = [&](int n) {
    return [&, n] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(n);
    };
  };
  const Clock::time_point base = Clock::now() + milliseconds(100);
  timer.RunAt(base + milliseconds(40), record(3));
  timer.RunAt(base, record(1));
  timer.RunAt(base + milliseconds(20), record(2));
  timer.RunAt(base + milliseconds(40), record(4));
  REQUIRE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return order.size() == 4;
  }));
  CHECK(order == std::vector<int>{1, 2, 3, 4});
  CHECK(timer.pending() == 0);
}

TEST_CASE("a task does not run before its time, and a past time runs at once", "[timer_thread]") {
  TimerThread timer;
  std::atomic<bool> ran_late{false};
  std::atomic<bool> ran_now{false};
  const Clock::time_point start = Clock::now();
  std::atomic<int64_t> late_at{0};
  timer.RunAt(start + milliseconds(150), [&] {
    late_at = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
    ran_late = true;
  });
  timer.RunAt(start - milliseconds(5), [&] { ran_now = true; });
  REQUIRE(WaitUntil([&] { return ran_now.load(); }));
  CHECK_FALSE(ran_late.load());
  REQUIRE(WaitUntil([&] { return ran_late.load(); }));
  CHECK(late_at.load() >= 150);
}

TEST_CASE("a task may schedule another; the destructor drops tasks not yet due", "[timer_thread]") {
  auto witness = std::make_shared<int>(0);
  std::weak_ptr<int> dropped = witness;
  std::atomic<int> chain{0};
  {
    TimerThread timer;
    std::function<void()> step = [&] {
      if (++chain < 5) timer.RunAt(Clock::now(), step);
    };
    timer.RunAt(Clock::now(), step);
    REQUIRE(WaitUntil([&] { return chain.load() == 5; }));
    timer.RunAt(Clock::now() + std::chrono::hours(1), [witness = std::move(witness)] {});
    CHECK(timer.pending() == 1);
  }
  CHECK(dropped.expired());
  CHECK(chain.load() == 5);
}

}  // namespace
}  // namespace informerd::daemon
