// RpcExecutor: a few threads of the gRPC service's own that run the RPC work which must not run
// on the thread that delivered it. Two kinds arrive from threads that serve every informer (the
// apiserver client's strand decodes and applies every watch, and answers the TokenReviews and
// SubjectAccessReviews): what a call does once admission answers (resolving its resource,
// taking a Subscribe snapshot, reading and copying a List or Get answer, starting an on-demand
// informer), and a Subscribe stream's next write once an event lands in its empty queue. Posted
// here, that thread only queues a task and goes on applying watches, however many calls and
// subscribers there are.
//
// Ownership and threads: owned by its user (InformerService), with a fixed number of threads
// (at least 1) started by the constructor. Post may be called from any thread, the executor's
// own included; tasks run in the order posted on whichever thread is free, several at once, and
// should not block. Shutdown (also the destructor's) refuses new tasks, lets the threads run
// every task already posted, and joins them; a task posted after that is destroyed without
// running, on the poster's thread, so the owner shuts the executor down before anything its
// tasks use goes away.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace informerd::daemon {

class RpcExecutor {
 public:
  // `threads`: how many; 0 is taken as 1. `thread_nice`: each thread lowers its CPU priority to
  // this nice value (daemon/service/thread_priority.h) as it starts; 0 leaves it.
  explicit RpcExecutor(std::size_t threads, int thread_nice = 0);
  ~RpcExecutor();
  RpcExecutor(const RpcExecutor&) = delete;
  RpcExecutor& operator=(const RpcExecutor&) = delete;

  // Queues `task` to run on one of the executor's threads; false (and `task` destroyed) once
  // Shutdown has begun.
  bool Post(std::function<void()> task);

  // Refuses new tasks (a task that posts gets false too), runs every task already posted, and
  // joins the threads. Idempotent; any thread but the executor's own.
  void Shutdown();

  std::size_t thread_count() const { return threads_.size(); }
  // Tasks posted and not yet started.
  std::size_t pending() const;

 private:
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  // Guarded by mu_.
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  // Started by the constructor, joined by Shutdown (guarded by join_mu_ there).
  std::mutex join_mu_;
  std::vector<std::thread> threads_;
  const int thread_nice_;
};

}  // namespace informerd::daemon
