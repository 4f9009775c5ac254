#include "test/common/fake_timers.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

namespace informerd::test {

// Shared by the factory and its timers, so that a timer outliving the factory (held by an
// object a pending callback kept alive) can still cancel itself harmlessly.
struct FakeTimers::State {
  explicit State(Strand strand) : strand(std::move(strand)) {}

  struct Entry {
    std::chrono::milliseconds duration;
    core::Clock::TimePoint deadline;
    std::function<void()> fire;
    bool due = false;  // posted to the strand, not run yet
  };

  Strand strand;
  uint64_t next_id = 1;  // ids grow in arming order
  uint64_t arm_count = 0;
  std::map<uint64_t, Entry> entries;  // armed or due, by id
};

namespace {

class FakeTimer final : public daemon::Timer {
 public:
  FakeTimer(std::shared_ptr<FakeTimers::State> state, const core::FakeClock& clock)
      : state_(std::move(state)), clock_(clock) {}
  ~FakeTimer() override { Cancel(); }

  void Arm(std::chrono::milliseconds after, std::function<void()> fire) override {
    Cancel();
    id_ = state_->next_id++;
    ++state_->arm_count;
    state_->entries.emplace(
        id_, FakeTimers::State::Entry{after, clock_.Now() + after, std::move(fire), false});
  }

  void Cancel() override {
    if (id_ != 0) state_->entries.erase(id_);
    id_ = 0;
  }

 private:
  std::shared_ptr<FakeTimers::State> state_;
  const core::FakeClock& clock_;
  uint64_t id_ = 0;  // the entry of the current arming; 0 when not armed
};

}  // namespace

FakeTimers::FakeTimers(core::FakeClock& clock, Strand strand)
    : clock_(clock), state_(std::make_shared<State>(std::move(strand))) {}

FakeTimers::~FakeTimers() {
  // Moved out first: destroying a callback may destroy a timer, which erases its entry.
  std::map<uint64_t, State::Entry> entries = std::move(state_->entries);
  state_->entries.clear();
  entries.clear();
}

std::unique_ptr<daemon::Timer> FakeTimers::CreateTimer() {
  return std::make_unique<FakeTimer>(state_, clock_);
}

void FakeTimers::Advance(std::chrono::nanoseconds by) {
  clock_.Advance(by);
  const core::Clock::TimePoint now = clock_.Now();
  std::vector<std::pair<core::Clock::TimePoint, uint64_t>> due;
  for (auto& [id, entry] : state_->entries) {
    if (!entry.due && entry.deadline <= now) due.emplace_back(entry.deadline, id);
  }
  std::sort(due.begin(), due.end());
  for (const auto& [deadline, id] : due) {
    state_->entries.at(id).due = true;
    boost::asio::post(state_->strand, [weak = std::weak_ptr<State>(state_), id = id] {
      const std::shared_ptr<State> state = weak.lock();
      if (!state) return;
      auto it = state->entries.find(id);
      if (it == state->entries.end()) return;  // cancelled or re-armed meanwhile
      std::function<void()> fire = std::move(it->second.fire);
      state->entries.erase(it);
      fire();
    });
  }
}

uint64_t FakeTimers::arm_count() const { return state_->arm_count; }

std::vector<FakeTimers::Armed> FakeTimers::armed() const {
  std::vector<std::pair<uint64_t, Armed>> out;
  for (const auto& [id, entry] : state_->entries) {
    if (!entry.due) out.push_back({id, Armed{entry.duration, entry.deadline}});
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second.deadline < b.second.deadline;
  });
  std::vector<Armed> result;
  for (auto& [id, armed] : out) result.push_back(armed);
  return result;
}

std::vector<std::chrono::milliseconds> FakeTimers::armed_durations() const {
  std::vector<std::chrono::milliseconds> out;
  for (const Armed& timer : armed()) out.push_back(timer.duration);
  return out;
}

}  // namespace informerd::test
