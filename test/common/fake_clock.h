// FakeClock: a core::Clock that moves only when the test says so, for the reflector's backoff
// and short-watch rules (and anything else in core/ that measures time). The test thread moves
// it; any thread may read it (a gRPC thread answering ListResources reads an informer's
// freshness by it while the test advances it), so the time is one atomic value.
#pragma once

#include <atomic>
#include <chrono>

#include "core/clock.h"

namespace informerd::core {

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return TimePoint(TimePoint::duration(now_.load())); }
  void Advance(std::chrono::nanoseconds by) {
    now_.fetch_add(std::chrono::duration_cast<TimePoint::duration>(by).count());
  }

 private:
  // Away from the epoch, so that "long ago" arithmetic in the code under test cannot underflow.
  std::atomic<TimePoint::rep> now_{
      std::chrono::duration_cast<TimePoint::duration>(std::chrono::hours(24)).count()};
};

}  // namespace informerd::core
