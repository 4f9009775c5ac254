// ConnectionGate: the gRPC port's listening sockets and accept loop, owned by GrpcServer so that
// the daemon can bound what connections cost. gRPC 1.51 has no limit on connections and no
// defence against a client that opens and resets streams faster than the server finishes their
// calls (the HTTP/2 "rapid reset" flood): its transport frees a stream's slot under
// max_concurrent_streams as soon as the client resets it, while the call it started still runs,
// so one connection can pile up calls without bound (measured with gRPC 1.51: 80,000 calls in
// flight and 1.5 GB within 10 s from one connection). The gate accepts every connection itself
// and hands it to gRPC (grpc::experimental::ExternalConnectionAcceptor, which serves it with the
// server's credentials, TLS included), so that it can:
//   - refuse a connection over `max_connections` open ones: it is closed at once, before any
//     handshake (the client sees the connection reset, UNAVAILABLE, and reconnects with backoff);
//   - count the calls in flight on each TCP connection (CallStarted, from GrpcServer's
//     interceptor, keyed by the peer address gRPC reports) and close a connection whose calls in
//     flight exceed `max_calls_per_connection`: only a client that resets streams faster than the
//     server finishes them gets there, since an honest one has at most max_concurrent_streams.
//     Its calls are counted as gRPC's callback threads start them, which lags far behind what its
//     transport has already accepted (thousands of streams by the 200th call), so a closed
//     connection leaves calls to wind down; until gRPC has released it (closed the descriptor it
//     was given, which it does once every call on it is done), the same peer address may not
//     open another connection (it is closed at once), so that a client reconnecting to flood
//     again cannot pile one backlog on the next.
// Unix-socket connections count towards max_connections, but their calls are not counted (gRPC
// names every unix peer "unix:", so calls cannot be told apart by connection).
//
// How a connection's end is seen: the gate keeps a duplicate of each connection's descriptor in an
// epoll set listening for nothing but hang-up and error. gRPC shuts a socket down (both ways)
// before it closes it, and a client that goes away resets or closes it, so the duplicate reports
// EPOLLHUP/EPOLLERR when the connection ends; the gate then closes its duplicate and the slot is
// free. Closing a connection (the calls rule) is shutdown(2) on the duplicate: gRPC's transport
// sees the socket end and cancels the connection's calls.
//
// Threads: one accept thread of the gate's own (accepting, handing over, hang-ups); CallStarted
// and stats from any thread. Bind() binds and listens before returning, so that a port in use is
// a start-up error; Start() begins accepting; Stop() stops accepting, closes the listening
// sockets and removes a unix socket file, and leaves open connections to gRPC's shutdown.
#pragma once

#include <spdlog/logger.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/listen_address.h"

namespace informerd::daemon {

struct ConnectionGateOptions {
  // Connections open at once, over every listening address; the next is closed at once. At
  // least 1.
  std::size_t max_connections = 1000;
  // Calls in flight on one TCP connection (started, not yet finished) beyond which it is closed.
  // 0: not checked.
  std::size_t max_calls_per_connection = 200;
  // A unix socket's file permissions (see GrpcServer).
  unsigned unix_socket_mode = 0660;
};

struct ConnectionGateStats {
  uint64_t open = 0;      // connections open now (handed to gRPC, not yet ended)
  uint64_t accepted = 0;  // handed to gRPC since the start
  uint64_t refused = 0;   // closed at once: max_connections were open
  // Closed at once: from a peer address whose connection closed for its calls in flight was still
  // winding them down.
  uint64_t refused_peer_closing = 0;
  // Closed because their calls in flight exceeded max_calls_per_connection.
  uint64_t closed_calls_in_flight = 0;
  // Calls in flight counted on the open TCP connections.
  uint64_t calls = 0;
  std::size_t max_connections = 0;
};

class ConnectionGate {
 public:
  // Binds and listens on `address`: for HOST:PORT every address HOST resolves to (0.0.0.0 and
  // [::] are the wildcard, served on [::] for IPv4 and IPv6 where the host has IPv6, as gRPC's own
  // listener does), all on one port (port 0 picks one); for unix:PATH the socket file, created
  // with options.unix_socket_mode (after the caller has made way for it). UNAVAILABLE naming the
  // address and the reason when it cannot.
  static absl::StatusOr<std::unique_ptr<ConnectionGate>> Bind(
      const ListenAddress& address, ConnectionGateOptions options,
      std::shared_ptr<spdlog::logger> logger);
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // The port bound (TCP; 0 for a unix socket).
  int port() const { return port_; }

  // Starts the accept thread; every accepted connection under the limit is given to `hand_over`
  // (on that thread) with its descriptor, non-blocking, which it then owns, and the listening
  // descriptor it came from. Once.
  void Start(std::function<void(int fd, int listener_fd)> hand_over);
  // Stops accepting and joins the thread; closes the listening sockets and removes the unix
  // socket file (if it is still the one bound). Connections handed over stay open. Idempotent.
  void Stop();

  // One call in flight on the connection gRPC names `peer` ("ipv4:10.0.0.1:43210",
  // "ipv6:%5B::1%5D:43210"), until the returned handle is destroyed. A peer the gate does not know
  // (a unix socket, or a connection already gone) is not counted: the handle is empty.
  class CallHandle;
  CallHandle CallStarted(std::string_view peer);

  ConnectionGateStats stats() const;

  // The peer name gRPC gives a TCP connection from `address` (an IPv4-mapped IPv6 address as
  // IPv4, as gRPC does); empty for other families. An IPv6 address with a scope (link-local) is
  // named without it, so calls on such a connection are not counted. Public for tests.
  static std::string PeerName(const sockaddr* address, socklen_t length);

 private:
  struct Connection;

  ConnectionGate(std::vector<int> listeners, int port, std::string socket_path,
                 ConnectionGateOptions options, std::shared_ptr<spdlog::logger> logger);
  void Run();
  void Accept(int fd, int listener);
  void Ended(int duplicate);
  // Whether gRPC still holds `connection`'s socket: the descriptor it was given still names it.
  static bool HeldByGrpc(const Connection& connection);

  const std::vector<int> listeners_;
  const int port_;
  const std::string socket_path_;   // unix:PATH: the file to remove at Stop; empty for TCP
  unsigned long socket_inode_ = 0;  // the bound socket file's inode, to remove only ours
  const ConnectionGateOptions options_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::function<void(int fd, int listener_fd)> hand_over_;
  int epoll_fd_ = -1;  // the duplicates, for hang-ups
  int stop_fd_ = -1;   // an eventfd that wakes the accept thread to stop
  std::thread thread_;
  bool stopped_ = false;

  mutable std::mutex mu_;
  // Guarded by mu_: open connections by their duplicate descriptor, and TCP ones by peer name.
  std::map<int, std::shared_ptr<Connection>> by_duplicate_;
  std::map<std::string, std::shared_ptr<Connection>, std::less<>> by_peer_;
  // Guarded by mu_: connections closed for their calls in flight, by peer address without the
  // port, until gRPC has released them.
  std::map<std::string, std::shared_ptr<Connection>, std::less<>> closing_by_address_;
  uint64_t refused_peer_closing_ = 0;    // guarded by mu_
  uint64_t accepted_ = 0;                // guarded by mu_
  uint64_t refused_ = 0;                 // guarded by mu_
  uint64_t closed_calls_in_flight_ = 0;  // guarded by mu_
  // Refusals are logged at most once per 10 s, with how many there were since the last line.
  std::chrono::steady_clock::time_point last_refusal_log_{};  // guarded by mu_
  uint64_t refused_unlogged_ = 0;                             // guarded by mu_

 public:
  // Counts its call on its connection while it exists. May outlive the gate.
  class CallHandle {
   public:
    CallHandle() = default;
    ~CallHandle();
    CallHandle(CallHandle&& other) noexcept = default;
    CallHandle& operator=(CallHandle&& other) noexcept;
    CallHandle(const CallHandle&) = delete;
    CallHandle& operator=(const CallHandle&) = delete;
    bool counted() const { return connection_ != nullptr; }

   private:
    friend class ConnectionGate;
    explicit CallHandle(std::shared_ptr<Connection> connection)
        : connection_(std::move(connection)) {}
    std::shared_ptr<Connection> connection_;
  };
};

}  // namespace informerd::daemon
