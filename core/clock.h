// Clock: where core/ reads the time. Time is injected, never read directly: the reflector's
// backoff, the short-watch rule and anything else in core/ that measures durations take a Clock,
// so tests drive time with a fake instead of sleeping, and run fast and deterministically.
//
// Only a monotonic clock is offered: core/ measures intervals, never wall-clock dates.
// Implementations are owned by whoever wires the component (the daemon owns one SteadyClock for
// the process) and passed by reference; Now() must be safe to call from any thread.
#pragma once

#include <chrono>

namespace informerd::core {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// The real monotonic clock.
class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace informerd::core
