// FaultProxy: a TCP proxy on 127.0.0.1 that forwards every connection to an upstream port byte
// for byte (TLS passes through untouched), and breaks connections on command the way a network
// does: mid-stream after a random number of bytes, all at once, or by refusing new ones for a
// while. The chaos tests put it between informerd and a real kube-apiserver, so that a watch
// breaks inside a TLS record or an HTTP chunk rather than at a clean boundary.
//
// CountingTcpProxy (api_test_support.h) only forwards and counts; this one is separate because
// it needs per-connection state (the cut budget), control from other threads, and no dependency
// on the daemon's libraries (so that programs outside the test suite can link it).
//
// Threads: one I/O thread of its own, started by the constructor and joined by the destructor.
// Every public method may be called from any thread; the control methods take effect on the I/O
// thread before they return.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace informerd::test {

class FaultProxy {
 public:
  // What the proxy has done so far.
  struct Counts {
    int accepted = 0;        // connections accepted and forwarded
    int refused = 0;         // connections closed at once because the proxy was refusing
    int open = 0;            // connections open now
    int cut_mid_stream = 0;  // armed connections closed after their random number of bytes
    int cut_idle = 0;        // armed connections that carried nothing in time, closed anyway
    int cut_all = 0;         // connections closed by CutAll
    // Bytes forwarded each way (counted as they are handed to the receiving socket).
    std::uint64_t bytes_to_upstream = 0;
    std::uint64_t bytes_to_client = 0;
  };

  // Listens on 127.0.0.1 at a free port; forwards to 127.0.0.1:upstream_port (connecting anew
  // for each accepted connection, so an upstream that restarts on the same port is reached
  // again). `seed` drives the random cut points.
  explicit FaultProxy(std::uint16_t upstream_port, std::uint64_t seed = 1);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::uint16_t port() const { return port_; }

  // Arms every open connection: each forwards a random number, from 1 to `max_bytes`, of the
  // next bytes coming from upstream, then is closed on both sides (the last read is forwarded
  // only in part, so the client sees its stream end in the middle of whatever it was reading).
  // An armed connection that receives nothing from upstream within `idle_limit` is closed then
  // (counted as cut_idle). Returns how many were armed.
  int CutMidStream(std::size_t max_bytes, std::chrono::milliseconds idle_limit);

  // Closes every open connection now, on both sides. Returns how many.
  int CutAll();

  // While refusing, each new connection is closed as soon as it is accepted, before any byte is
  // forwarded: the client sees its connection end before the TLS handshake, as with an upstream
  // that is down. Open connections are not affected (CutAll them too for a full outage).
  void SetRefusing(bool refusing);

  // Paces what comes from upstream to at most `bytes_per_second` per connection (0: as fast as
  // it comes), so that a long response (a LIST of many objects) takes a while to arrive.
  void SetDownstreamRate(std::size_t bytes_per_second);

  Counts counts() const;

 private:
  class Connection;
  friend class Connection;

  void Accept();
  // Runs `task` on the I/O thread and waits for it.
  template <class Task>
  auto RunOnIoThread(Task task) -> decltype(task());
  void Forget(std::uint64_t id);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const std::uint16_t upstream_port_;
  std::uint16_t port_ = 0;
  // The rest is touched on the I/O thread only, except counts_ (under mu_).
  std::map<std::uint64_t, std::shared_ptr<Connection>> connections_;
  std::uint64_t next_id_ = 0;
  bool refusing_ = false;
  std::size_t downstream_rate_ = 0;
  std::mt19937_64 random_;
  mutable std::mutex mu_;
  Counts counts_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace informerd::test
