#include "daemon/service/rpc_executor.h"

#include <utility>

#include "daemon/service/thread_priority.h"

namespace informerd::daemon {

RpcExecutor::RpcExecutor(std::size_t threads, int thread_nice) : thread_nice_(thread_nice) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

RpcExecutor::~RpcExecutor() { Shutdown(); }

bool RpcExecutor::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      wake_.notify_one();
      return true;
    }
  }
  // Refused: destroyed here, outside the lock, in case it holds something whose destructor
  // posts again.
  task = nullptr;
  return false;
}

void RpcExecutor::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  std::lock_guard<std::mutex> lock(join_mu_);
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

std::size_t RpcExecutor::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

void RpcExecutor::Loop() {
  LowerThisThreadsPriority(thread_nice_);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (tasks_.empty()) {
      // Drained: once stopping, nothing more can be posted.
      if (stopping_) return;
      wake_.wait(lock);
      continue;
    }
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    // Destroyed before the lock is taken again: what it holds may post.
    task = nullptr;
    lock.lock();
  }
}

}  // namespace informerd::daemon
