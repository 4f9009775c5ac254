// CredentialWorker: the one thread on which the apiserver client runs
// CredentialSource::Current(), so that an exec plugin that takes seconds never stalls the I/O
// thread that carries every watch (see daemon/kube/apiserver_client.h). Internal to
// //daemon/kube:apiserver_client.
//
// Threads: Post() and Stop() from any thread; tasks run on the worker's own thread, one at a
// time, so concurrent requests queue behind one plugin run, as the sources serialize them
// anyway.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace informerd::daemon::client_internal {

class CredentialWorker {
 public:
  CredentialWorker();
  ~CredentialWorker();
  CredentialWorker(const CredentialWorker&) = delete;
  CredentialWorker& operator=(const CredentialWorker&) = delete;

  // False once stopped: the task is dropped.
  bool Post(std::function<void()> task);

  // Waits for a running task (a plugin run in progress) and drops the queued ones.
  void Stop();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopped_ = false;                     // guarded by mu_
  std::thread thread_;
};

}  // namespace informerd::daemon::client_internal
