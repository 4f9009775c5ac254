// FakeTimers: a daemon::TimerFactory (daemon/kube/timer.h) whose timers run on a core::FakeClock.
// A timer is due when the fake clock reaches the time it was armed at plus its duration; the test
// moves the clock with Advance(), which posts the callbacks of the timers now due to the strand,
// and runs them with the io_context (io.poll()). Nothing fires by itself, so a test sees exactly
// which timers are armed, for how long, and what happens when each runs out.
//
// Single-threaded: the test thread creates, arms, advances and runs the io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "core/clock.h"
#include "daemon/kube/timer.h"
#include "test/common/fake_clock.h"

namespace informerd::test {

class FakeTimers final : public daemon::TimerFactory {
 public:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

  // `clock` must outlive this object; the timers' callbacks are posted to `strand`.
  FakeTimers(core::FakeClock& clock, Strand strand);
  // Drops the callbacks still armed (they may hold the objects that own the timers).
  ~FakeTimers() override;
  FakeTimers(const FakeTimers&) = delete;
  FakeTimers& operator=(const FakeTimers&) = delete;

  std::unique_ptr<daemon::Timer> CreateTimer() override;

  // Moves the clock forward by `by`, then posts the callback of every timer due by the new time
  // to the strand, earliest deadline first (ties in the order they were armed). They run at the
  // test's next io.poll(); a timer they arm counts from the new time.
  void Advance(std::chrono::nanoseconds by);

  struct Armed {
    std::chrono::milliseconds duration;  // as given to Arm()
    core::Clock::TimePoint deadline;
  };
  // The timers armed and not yet due, earliest deadline first.
  std::vector<Armed> armed() const;
  // Their durations, in the same order.
  std::vector<std::chrono::milliseconds> armed_durations() const;
  // How many timers were ever armed (re-arming counts again).
  uint64_t arm_count() const;

  core::FakeClock& clock() { return clock_; }

  struct State;

 private:
  core::FakeClock& clock_;
  std::shared_ptr<State> state_;
};

}  // namespace informerd::test
