#include "daemon/service/timer_thread.h"

namespace informerd::daemon {

TimerThread::TimerThread() : thread_([this] { Loop(); }) {}

TimerThread::~TimerThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void TimerThread::RunAt(Clock::time_point when, std::function<void()> task) {
  bool earliest = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    const auto it = tasks_.emplace(std::make_pair(when, next_sequence_++), std::move(task)).first;
    earliest = it == tasks_.begin();
  }
  // Only a new earliest task changes how long the thread sleeps.
  if (earliest) wake_.notify_one();
}

std::size_t TimerThread::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

void TimerThread::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const auto first = tasks_.begin();
    if (first->first.first > Clock::now()) {
      wake_.wait_until(lock, first->first.first);
      continue;
    }
    std::function<void()> task = std::move(first->second);
    tasks_.erase(first);
    // Unlocked while the task runs, so that it may schedule its successor.
    lock.unlock();
    task();
    task = nullptr;
    lock.lock();
  }
  // Destroyed without running (see the header), outside the lock in case one holds something
  // whose destructor schedules again (RunAt then returns at once).
  auto dropped = std::move(tasks_);
  tasks_.clear();
  lock.unlock();
}

}  // namespace informerd::daemon
