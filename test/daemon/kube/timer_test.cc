// Timer (daemon/kube/timer.h): the contract that the informers rely on, checked for the
// daemon's Asio timers and for the fake timers the in-process tests use
// (test/common/fake_timers.h): a callback runs once its time has passed, on the strand; Cancel()
// and re-arming drop the pending callback, even one already due and waiting on the strand.
#include "daemon/kube/timer.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test/common/fake_clock.h"
#include "test/common/fake_timers.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;

TEST_CASE("steady timers fire on the strand after their duration, unless cancelled or re-armed") {
  boost::asio::io_context io;
  auto strand = boost::asio::make_strand(io);
  SteadyTimerFactory factory(strand);
  std::vector<std::string> fired;
  bool on_strand = false;

  std::unique_ptr<Timer> a = factory.CreateTimer();
  const auto start = std::chrono::steady_clock::now();
  a->Arm(milliseconds(20), [&] {
    fired.push_back("a");
    on_strand = strand.running_in_this_thread();
  });
  io.run();
  CHECK(fired == std::vector<std::string>{"a"});
  CHECK(on_strand);
  CHECK(std::chrono::steady_clock::now() - start >= milliseconds(20));

  // Re-arming replaces the callback; cancelling drops it.
  io.restart();
  fired.clear();
  std::unique_ptr<Timer> b = factory.CreateTimer();
  b->Arm(milliseconds(1), [&] { fired.push_back("b1"); });
  b->Arm(milliseconds(2), [&] { fired.push_back("b2"); });
  std::unique_ptr<Timer> c = factory.CreateTimer();
  c->Arm(milliseconds(1), [&] { fired.push_back("c"); });
  c->Cancel();
  std::unique_ptr<Timer> d = factory.CreateTimer();
  d->Arm(milliseconds(1), [&] { fired.push_back("d"); });
  d.reset();  // destroying cancels
  io.run();
  CHECK(fired == std::vector<std::string>{"b2"});
}

TEST_CASE("a steady timer cancelled after its expiry was queued on the strand does not fire") {
  boost::asio::io_context io;
  auto strand = boost::asio::make_strand(io);
  SteadyTimerFactory factory(strand);
  std::unique_ptr<Timer> timer = factory.CreateTimer();
  std::atomic<bool> fired{false};
  // Two threads run the io_context. One handler on the strand arms a 0 ms timer and keeps the
  // strand busy while the other thread's reactor completes the wait and queues its completion on
  // the strand; then it cancels. Asio no longer holds the wait, so only the timer's own
  // bookkeeping can drop the queued callback.
  boost::asio::post(strand, [&] {
    timer->Arm(milliseconds(0), [&] { fired = true; });
    std::this_thread::sleep_for(milliseconds(100));
    timer->Cancel();
  });
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  CHECK_FALSE(fired);
}

TEST_CASE("fake timers fire when the fake clock passes their deadline, in deadline order") {
  boost::asio::io_context io;
  auto strand = boost::asio::make_strand(io);
  // Without work, io.poll() would stop the io_context once it ran out of handlers.
  auto work = boost::asio::make_work_guard(io);
  core::FakeClock clock;
  test::FakeTimers timers(clock, strand);
  std::vector<std::string> fired;

  std::unique_ptr<Timer> a = timers.CreateTimer();
  std::unique_ptr<Timer> b = timers.CreateTimer();
  std::unique_ptr<Timer> c = timers.CreateTimer();
  a->Arm(milliseconds(300), [&] { fired.push_back("a"); });
  b->Arm(milliseconds(100), [&] { fired.push_back("b"); });
  c->Arm(milliseconds(200), [&] { fired.push_back("c"); });
  REQUIRE(timers.armed().size() == 3);
  CHECK(timers.armed()[0].duration == milliseconds(100));
  CHECK(timers.armed()[2].duration == milliseconds(300));

  timers.Advance(milliseconds(99));
  io.poll();
  CHECK(fired.empty());
  timers.Advance(milliseconds(1));
  io.poll();
  CHECK(fired == std::vector<std::string>{"b"});

  // Due, posted to the strand, then cancelled before it ran: dropped, as with the Asio timers.
  timers.Advance(milliseconds(100));
  c->Cancel();
  io.poll();
  CHECK(fired == std::vector<std::string>{"b"});

  // Re-armed: counts from now, and the earlier callback is gone.
  a->Arm(milliseconds(500), [&] { fired.push_back("a2"); });
  timers.Advance(milliseconds(499));
  io.poll();
  CHECK(fired == std::vector<std::string>{"b"});
  timers.Advance(milliseconds(1));
  io.poll();
  CHECK(fired == std::vector<std::string>{"b", "a2"});
  CHECK(timers.armed().empty());
  CHECK(timers.arm_count() == 4);
}

}  // namespace
}  // namespace informerd::daemon
