#include "daemon/kube/timer.h"

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <utility>

namespace informerd::daemon {
namespace {

class SteadyTimer final : public Timer {
 public:
  explicit SteadyTimer(SteadyTimerFactory::Strand strand)
      : state_(std::make_shared<State>(std::move(strand))) {}
  ~SteadyTimer() override { Cancel(); }

  void Arm(std::chrono::milliseconds after, std::function<void()> fire) override {
    const uint64_t generation = ++state_->generation;
    state_->timer.expires_after(after);
    // The wait holds the state, not this object: it completes (cancelled or not) after the
    // timer object may be gone. An expiry already queued when the timer is re-armed or cancelled
    // completes without an error code; the generation tells it apart.
    state_->timer.async_wait(
        [state = state_, generation, fire = std::move(fire)](const boost::system::error_code& ec) {
          if (ec || generation != state->generation) return;
          fire();
        });
  }

  void Cancel() override {
    ++state_->generation;
    state_->timer.cancel();
  }

 private:
  struct State {
    explicit State(SteadyTimerFactory::Strand strand) : timer(std::move(strand)) {}
    boost::asio::steady_timer timer;
    // Written on the strand; atomic because a completion may read it while the timer is
    // destroyed elsewhere.
    std::atomic<uint64_t> generation{0};
  };
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Timer> SteadyTimerFactory::CreateTimer() {
  return std::make_unique<SteadyTimer>(strand_);
}

}  // namespace informerd::daemon
