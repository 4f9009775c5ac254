#include "core/backoff.h"

#include <cstdint>

namespace informerd::core {

Backoff::Backoff(BackoffOptions options, const Clock& clock, RandomSource& random)
    : options_(options),
      clock_(clock),
      random_(random),
      base_(options.initial),
      last_call_(clock.Now()) {}

std::chrono::milliseconds Backoff::Next() {
  const Clock::TimePoint now = clock_.Now();
  if (now - last_call_ > options_.reset_after) base_ = options_.initial;
  last_call_ = now;

  std::chrono::milliseconds wait = base_;
  if (options_.jitter > 0) {
    // wait.Jitter(d, f) = d + Float64() * f * d: the jitter only lengthens the wait.
    const double extra = static_cast<double>(base_.count()) * options_.jitter * random_.Uniform();
    wait += std::chrono::milliseconds(static_cast<int64_t>(extra));
  }

  // Backoff.Step: the next base is base x factor, clamped to the cap. The jitter of this wait
  // does not feed into the next base.
  const double next = static_cast<double>(base_.count()) * options_.factor;
  base_ = next >= static_cast<double>(options_.cap.count())
              ? options_.cap
              : std::chrono::milliseconds(static_cast<int64_t>(next));
  return wait;
}

}  // namespace informerd::core
