// FakeClock: a core::Clock that moves only when the test says so, for the reflector's backoff
// and short-watch rules (and anything else in core/ that measures time). Single-threaded.
#pragma once

#include <chrono>

#include "core/clock.h"

namespace informerd::core {

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  void Advance(std::chrono::nanoseconds by) { now_ += by; }

 private:
  // Away from the epoch, so that "long ago" arithmetic in the code under test cannot underflow.
  TimePoint now_ = TimePoint{} + std::chrono::hours(24);
};

}  // namespace informerd::core
