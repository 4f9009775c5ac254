// Backoff: the delay before retrying a failed list or watch, as client-go's reflector computes it.
//
// client-go builds every reflector's backoff with
//   wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0, clock)
// (k8s.io/client-go/tools/cache/reflector.go, NewReflectorWithOptions): a base delay that starts
// at 800 ms and doubles up to a 30 s cap, each wait jittered by a factor of 1.0 (the wait is the
// base plus a uniform draw from [0, base), so it lies in [base, 2 x base): k8s.io/apimachinery
// wait.Jitter), and a reset to 800 ms when no backoff was asked for during the last 2 minutes
// (the upstream looks healthy again). Its comment: "backoff will stop at [30,60) sec interval
// which is 0.22 QPS", a ~98% cut of retry traffic against an unhealthy apiserver.
//
// Data flow: owned by one Reflector (core/reflector.*), which asks for Next() each time it
// decides to wait, and turns the answer into a Wait action for its driver. Called from the
// reflector's thread only; time and randomness are injected.
#pragma once

#include <chrono>

#include "core/clock.h"
#include "core/random_source.h"

namespace informerd::core {

struct BackoffOptions {
  // The first base delay, and the one after a reset.
  std::chrono::milliseconds initial{800};
  // The largest base delay; with jitter 1.0 the waits themselves then lie in [cap, 2 x cap).
  std::chrono::milliseconds cap{30'000};
  // The base delay is multiplied by this after every wait.
  double factor = 2.0;
  // Each wait is base + jitter x base x Uniform(); 0 means no jitter.
  double jitter = 1.0;
  // More than this long without a call to Next() resets the base delay to `initial`.
  std::chrono::milliseconds reset_after{120'000};
};

class Backoff {
 public:
  Backoff(BackoffOptions options, const Clock& clock, RandomSource& random);

  // The wait before the next attempt; advances the sequence. Follows
  // exponentialBackoffManagerImpl.getNextBackoff: the reset check compares against the time of
  // the previous call, so "healthy" means "nothing failed for reset_after".
  std::chrono::milliseconds Next();

  // The base delay the next call will jitter (for status pages and tests).
  std::chrono::milliseconds current_base() const { return base_; }

 private:
  BackoffOptions options_;
  const Clock& clock_;
  RandomSource& random_;
  std::chrono::milliseconds base_;
  // client-go starts this at construction: a first failure long after start-up begins at
  // `initial` either way, so the same is done here.
  Clock::TimePoint last_call_;
};

}  // namespace informerd::core
