// Raw TCP clients for tests of the HTTP ports' limits (daemon/admin/http_server.*, the e2e tests):
// sockets that connect and then say nothing, holding a connection open as a hostile or leaking
// pod would, and a slowloris client that sends a request one byte at a time.
//
// Plain blocking POSIX sockets, no Asio: what they do to the server is exactly what the test
// says, nothing more. Addresses are "IPv4:PORT" or "[IPv6]:PORT", numeric.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace informerd::test {

// A connected TCP socket to `address`, or -1 with the reason in `error`.
int ConnectTcp(const std::string& address, std::string* error = nullptr);

// Whether the server has closed `fd` (a non-blocking peek sees the end of the stream or a reset).
// Bytes waiting to be read do not count as closed.
bool PeerClosed(int fd);

// `count` connections to `address`, opened one after another and held, sending nothing, until
// destroyed.
class IdleConnections {
 public:
  IdleConnections(const std::string& address, int count);
  ~IdleConnections();
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;

  // How many connected (a full listen backlog refuses none on Linux: the handshake waits).
  int opened() const { return static_cast<int>(fds_.size()); }
  // How many the server has closed so far.
  int ClosedByServer() const;
  // Closes them all now.
  void CloseAll();

 private:
  std::vector<int> fds_;
};

// Sends `request` one byte every `interval`, on a thread of its own, until the server closes the
// connection, every byte has been sent, or the object is destroyed. Then it keeps watching for
// the server's close (and for a response, which it records).
class Slowloris {
 public:
  Slowloris(const std::string& address, std::string request, std::chrono::milliseconds interval);
  ~Slowloris();
  Slowloris(const Slowloris&) = delete;
  Slowloris& operator=(const Slowloris&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Waits up to `timeout` for the server to close the connection; the time from connecting to
  // the close if it did.
  std::optional<std::chrono::milliseconds> WaitClosed(std::chrono::milliseconds timeout);
  std::size_t bytes_sent() const { return sent_; }
  // What the server sent before closing (empty for a cut without an answer).
  std::string received();

 private:
  void Run(std::string request, std::chrono::milliseconds interval);

  int fd_ = -1;
  const std::chrono::steady_clock::time_point connected_at_ = std::chrono::steady_clock::now();
  std::atomic<std::size_t> sent_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::optional<std::chrono::milliseconds> closed_after_;  // guarded by mu_
  std::string received_;                                   // guarded by mu_
  std::thread thread_;
};

}  // namespace informerd::test
