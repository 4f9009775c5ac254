// TimerThread: one thread that runs small tasks at given times. The gRPC service uses it to look
// again, every few milliseconds, whether a resource that a List or Get is waiting for has synced,
// and to answer UNAVAILABLE at the call's deadline: gRPC's callback API lets a call finish later
// from any thread, so waiting needs no thread per call and never blocks one of gRPC's.
//
// Ownership and threads: owned by its user (InformerService); RunAt may be called from any
// thread; tasks run one at a time on the timer's own thread, in time order (ties in the order
// they were scheduled), and must be quick. The destructor stops the thread: a task already
// running completes, tasks not yet due are destroyed without running, so their owner must no
// longer need them (for the service: the gRPC server has stopped, so no call is waiting).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace informerd::daemon {

class TimerThread {
 public:
  using Clock = std::chrono::steady_clock;

  TimerThread();
  ~TimerThread();
  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  // Runs `task` on the timer's thread at `when` (at once if `when` has passed).
  void RunAt(Clock::time_point when, std::function<void()> task);

  // Tasks scheduled and not yet started.
  std::size_t pending() const;

 private:
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  // Guarded by mu_. Keyed by (time, sequence number) so that equal times keep their order.
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> tasks_;
  uint64_t next_sequence_ = 0;
  bool stopping_ = false;
  // Last: starts after everything it uses is constructed.
  std::thread thread_;
};

}  // namespace informerd::daemon
