// Test support for the apiserver client and discovery tests: an io_context on a thread, a way to
// wait for a callback, a thread-safe manual clock, credential sources that rotate or block, a TCP
// proxy that counts connections (to see keep-alive reuse from outside the client), and a server
// that answers every request with fixed bytes (for answers the fake apiserver never gives, such
// as a proxy's HTML error page).
//
// Owned by one test; each helper that runs I/O runs it on a thread of its own and joins it in
// its destructor. Methods are safe to call from the test thread while that thread runs.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"

namespace informerd::test {

constexpr std::chrono::seconds kWait{20};

// An io_context run by a thread of its own until destruction, which lets the work in progress
// finish (a few seconds at most) before it stops the io_context, so that operations end
// normally rather than being dropped mid-way.
class IoThread {
 public:
  IoThread();
  ~IoThread();
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ran_out_ = false;  // guarded by mu_
  std::thread thread_;
};

// Receives the value of one callback on any thread; the test thread waits for it.
template <class T>
class Awaited {
 public:
  Awaited() : state_(std::make_shared<State>()) {}

  std::function<void(T)> Callback() const {
    return [state = state_](T value) {
      std::lock_guard<std::mutex> lock(state->mu);
      state->values.push_back(std::move(value));
      state->cv.notify_all();
    };
  }

  // The first value, or nullopt if none arrived within `timeout`.
  std::optional<T> Wait(std::chrono::milliseconds timeout = kWait) const {
    std::unique_lock<std::mutex> lock(state_->mu);
    if (!state_->cv.wait_for(lock, timeout, [&] { return !state_->values.empty(); })) {
      return std::nullopt;
    }
    return state_->values.front();
  }

  std::size_t count() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->values.size();
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<T> values;
  };
  std::shared_ptr<State> state_;
};

// A core::Clock that moves only when told to; Now() may be called from any thread.
class ManualClock final : public core::Clock {
 public:
  TimePoint Now() const override {
    return TimePoint(std::chrono::nanoseconds(now_ns_.load(std::memory_order_acquire)));
  }
  void Advance(std::chrono::nanoseconds by) { now_ns_.fetch_add(by.count()); }

 private:
  std::atomic<std::int64_t> now_ns_{std::chrono::nanoseconds(std::chrono::hours(24)).count()};
};

// Hands out tokens[0] until the server rejects it, then tokens[1], and so on: a bearer token
// that rotates (a token file kubelet rewrote, a new exec-plugin token). Records Invalidate().
class RotatingTokenSource : public daemon::CredentialSource {
 public:
  explicit RotatingTokenSource(std::vector<std::string> tokens);

  absl::StatusOr<std::shared_ptr<const daemon::Credentials>> Current() override;
  void Invalidate(const std::shared_ptr<const daemon::Credentials>& rejected) override;

  int invalidations() const;
  // The tokens Invalidate() was given, in order.
  std::vector<std::string> rejected_tokens() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> tokens_;
  std::size_t index_ = 0;
  std::shared_ptr<const daemon::Credentials> current_;
  std::vector<std::string> rejected_;
};

// Blocks in Current() until Release(), as a slow exec plugin would; then returns `token`.
class BlockingCredentialSource : public daemon::CredentialSource {
 public:
  explicit BlockingCredentialSource(std::string token) : token_(std::move(token)) {}

  absl::StatusOr<std::shared_ptr<const daemon::Credentials>> Current() override;
  void Invalidate(const std::shared_ptr<const daemon::Credentials>&) override {}

  // Waits until some thread is blocked in Current(); returns that thread's id.
  std::optional<std::thread::id> WaitUntilBlocked(std::chrono::milliseconds timeout = kWait);
  void Release();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const std::string token_;
  std::optional<std::thread::id> blocked_thread_;
  bool released_ = false;
};

// Fails every Current() with `status`, as an exec plugin that cannot run does.
class FailingCredentialSource : public daemon::CredentialSource {
 public:
  explicit FailingCredentialSource(absl::Status status) : status_(std::move(status)) {}
  absl::StatusOr<std::shared_ptr<const daemon::Credentials>> Current() override { return status_; }
  void Invalidate(const std::shared_ptr<const daemon::Credentials>&) override {}

 private:
  const absl::Status status_;
};

// Forwards every connection to 127.0.0.1:upstream_port, byte for byte (TLS passes through), and
// counts the connections it accepted.
class CountingTcpProxy {
 public:
  explicit CountingTcpProxy(std::uint16_t upstream_port);
  ~CountingTcpProxy();
  std::uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void Accept();

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const std::uint16_t upstream_port_;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// Plain HTTP on 127.0.0.1: reads each request's headers, answers with the bytes `respond` gives
// for its target (or with `response` for every target) verbatim, and closes the connection.
class CannedHttpServer {
 public:
  using Responder = std::function<std::string(const std::string& target)>;
  explicit CannedHttpServer(std::string response);
  explicit CannedHttpServer(Responder respond);
  ~CannedHttpServer();
  std::uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  void Accept();

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const Responder respond_;
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A port nothing listens on (bound, then released).
std::uint16_t UnusedPort();

// A RestConfig for `url` with `ca_pem` and the given source (default: no credentials).
daemon::RestConfig MakeRestConfig(const std::string& url, const std::string& ca_pem,
                                  std::shared_ptr<daemon::CredentialSource> credentials = nullptr,
                                  std::string identity = "user \"tester\" (test)");

}  // namespace informerd::test
