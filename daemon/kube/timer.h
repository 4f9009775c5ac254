// Timer and TimerFactory: the one-shot timers the upstream side waits with, as a seam. The
// informer's backoff (daemon/informers/informer.h) and the shared informer factory's retry
// interval and on-demand grace period (daemon/informers/shared_informer_factory.h) are timers
// of tens of seconds to minutes. In the daemon they are Asio steady_timers on the API client's
// strand (SteadyTimerFactory); tests substitute timers that fire when the test moves a fake clock
// forward (test/common/fake_timers.h), so that a 30-second retry or a 5-minute grace period is
// exercised at once, deterministically, without sleeping.
//
// Threads: a factory makes timers for one strand. Arm() and Cancel() are called on that strand,
// where the callback runs too; a timer may be created on any thread, and destroyed on the strand
// or on any thread while it is not armed. Destroying a timer cancels it. A timer does not need
// its factory to outlive it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace informerd::daemon {

class Timer {
 public:
  virtual ~Timer() = default;

  // Arms the timer: `fire` runs on the strand once `after` has passed, unless the timer is
  // cancelled, re-armed or destroyed first. Re-arming replaces the pending callback, which then
  // never runs: once Arm() or Cancel() has returned on the strand, no earlier callback runs,
  // even one whose time had already come and was waiting its turn on the strand.
  virtual void Arm(std::chrono::milliseconds after, std::function<void()> fire) = 0;

  // Disarms the timer; the pending callback, if any, never runs. Idempotent.
  virtual void Cancel() = 0;
};

class TimerFactory {
 public:
  virtual ~TimerFactory() = default;

  // A new timer, not armed. Any thread.
  virtual std::unique_ptr<Timer> CreateTimer() = 0;
};

// The daemon's timers: boost::asio::steady_timer on `strand`.
class SteadyTimerFactory final : public TimerFactory {
 public:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

  explicit SteadyTimerFactory(Strand strand) : strand_(std::move(strand)) {}

  std::unique_ptr<Timer> CreateTimer() override;

 private:
  Strand strand_;
};

}  // namespace informerd::daemon
