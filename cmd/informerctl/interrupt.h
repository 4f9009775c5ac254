// InterruptWatcher: turns Ctrl-C (SIGINT) and SIGTERM into a callback, for `informerctl watch`.
//
// A watch blocks in a gRPC read; the clean way out is to cancel the call from another thread
// and let the read return. The constructor blocks SIGINT and SIGTERM in the calling thread and
// starts a thread that waits for them on a signalfd; threads created afterwards (gRPC's) inherit
// the mask, so construct it before the first gRPC channel. No signal handler and no global
// variable: the signal is read as data. The callback runs once, on the watcher's thread. The
// destructor stops the thread and restores the signal mask. One per process at a time.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

namespace informerd::ctl {

class InterruptWatcher {
 public:
  explicit InterruptWatcher(std::function<void()> on_interrupt);
  ~InterruptWatcher();
  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

  // Whether a signal arrived (and the callback ran or is running).
  bool interrupted() const { return interrupted_.load(); }

 private:
  void Run();

  std::function<void()> on_interrupt_;
  sigset_t old_mask_;
  int signal_fd_ = -1;
  int stop_fd_ = -1;  // an eventfd the destructor writes to end Run()
  std::atomic<bool> interrupted_{false};
  std::thread thread_;
};

}  // namespace informerd::ctl
