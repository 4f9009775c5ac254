#include "daemon/service/connection_gate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {

struct ConnectionGate::Connection {
  int duplicate = -1;
  // The descriptor gRPC was given and the socket's inode: while that descriptor still names this
  // socket, gRPC has not released the connection (it closes it once every call is done).
  int handed = -1;
  ino_t inode = 0;
  std::string peer;     // empty for a unix socket
  std::string address;  // the peer without its port
  std::atomic<std::size_t> calls{0};
  uint64_t started = 0;  // guarded by the gate's mu_: calls started on it
  bool closing = false;  // guarded by the gate's mu_: shut down for its calls in flight
};

namespace {

// How often refusals are logged at most.
constexpr std::chrono::seconds kRefusalLogInterval{10};

std::string Errno(int error) { return std::strerror(error); }

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

// Descriptors the daemon may need beyond its connections: files, the apiserver's connections,
// gRPC's own.
constexpr rlim_t kDescriptorHeadroom = 256;

// Each connection takes two descriptors (gRPC's and the gate's duplicate): raises the soft limit
// on open files towards the hard limit if `max_connections` would not fit, as the Go runtime does
// for every Go server; warns if it still does not.
void MakeRoomForDescriptors(std::size_t max_connections, spdlog::logger& logger) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t needed = static_cast<rlim_t>(max_connections) * 2 + kDescriptorHeadroom;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    logger.warn(
        "the open-file limit ({}) is below what --grpc-max-connections={} needs ({}: two "
        "descriptors per connection and {} more); connections beyond it fail to be accepted",
        static_cast<unsigned long long>(limit.rlim_cur), max_connections,
        static_cast<unsigned long long>(needed),
        static_cast<unsigned long long>(kDescriptorHeadroom));
  }
}

// A listening TCP socket on `address`, or -1 with errno set.
int ListenTcp(const sockaddr* address, socklen_t length, bool dual_stack) {
  const int fd = socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  const int on = 1;
  const int v6_only = dual_stack ? 0 : 1;
  // SO_REUSEADDR only: a port another process listens on must stay an error (no SO_REUSEPORT).
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      (address->sa_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, sizeof v6_only) != 0) ||
      bind(fd, address, length) != 0 || listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
}

void SetPort(sockaddr_storage& address, int port) {
  if (address.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(static_cast<uint16_t>(port));
  } else {
    reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(static_cast<uint16_t>(port));
  }
}

struct Candidate {
  sockaddr_storage address{};
  socklen_t length = 0;
  bool dual_stack = false;
};

// What HOST:PORT is served on: the wildcard as [::] (IPv4 too) with 0.0.0.0 as the fallback on a
// host without IPv6; any other host, every address it resolves to.
absl::StatusOr<std::vector<Candidate>> Candidates(const ListenAddress& address) {
  std::string host = address.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::vector<Candidate> candidates;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    Candidate v6;
    auto* any6 = reinterpret_cast<sockaddr_in6*>(&v6.address);
    any6->sin6_family = AF_INET6;
    any6->sin6_addr = in6addr_any;
    v6.length = sizeof(sockaddr_in6);
    v6.dual_stack = true;
    candidates.push_back(v6);
    Candidate v4;
    auto* any4 = reinterpret_cast<sockaddr_in*>(&v4.address);
    any4->sin_family = AF_INET;
    any4->sin_addr.s_addr = htonl(INADDR_ANY);
    v4.length = sizeof(sockaddr_in);
    candidates.push_back(v4);
    return candidates;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(host.c_str(), nullptr, &hints, &found); error != 0) {
    return absl::UnavailableError(fmt::format("cannot resolve {}: {}", host, gai_strerror(error)));
  }
  for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family != AF_INET && entry->ai_family != AF_INET6) continue;
    Candidate candidate;
    std::memcpy(&candidate.address, entry->ai_addr, entry->ai_addrlen);
    candidate.length = static_cast<socklen_t>(entry->ai_addrlen);
    const bool seen = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
      return c.length == candidate.length &&
             std::memcmp(&c.address, &candidate.address, c.length) == 0;
    });
    if (!seen) candidates.push_back(candidate);
  }
  freeaddrinfo(found);
  if (candidates.empty()) {
    return absl::UnavailableError(fmt::format("{} has no IPv4 or IPv6 address", host));
  }
  return candidates;
}

// Binds every candidate on one port: `port`, or (0) one the first bind picks. An address the host
// does not have (no IPv6, say) is skipped if another is bound; any other failure is the error.
absl::StatusOr<std::vector<int>> BindCandidates(const std::vector<Candidate>& candidates, int port,
                                                bool wildcard, int* bound_port) {
  std::vector<int> fds;
  int chosen = port;
  int skipped_error = 0;
  for (Candidate candidate : candidates) {
    // The wildcard's IPv4 fallback is needed only when [::] could not be bound.
    if (wildcard && !fds.empty()) break;
    SetPort(candidate.address, chosen);
    const int fd = ListenTcp(reinterpret_cast<const sockaddr*>(&candidate.address),
                             candidate.length, candidate.dual_stack);
    if (fd < 0) {
      const int error = errno;
      if (error == EADDRNOTAVAIL || error == EAFNOSUPPORT) {
        skipped_error = error;
        continue;
      }
      CloseAll(fds);
      return absl::UnavailableError(Errno(error));
    }
    fds.push_back(fd);
    if (chosen == 0) chosen = BoundPort(fd);
  }
  if (fds.empty()) return absl::UnavailableError(Errno(skipped_error));
  *bound_port = chosen;
  return fds;
}

}  // namespace

bool ConnectionGate::HeldByGrpc(const Connection& connection) {
  struct stat info {};
  return fstat(connection.handed, &info) == 0 && S_ISSOCK(info.st_mode) &&
         info.st_ino == connection.inode;
}

std::string ConnectionGate::PeerName(const sockaddr* address, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    return fmt::format("ipv4:{}:{}", text, ntohs(v4->sin_port));
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      in_addr v4{};
      std::memcpy(&v4, &v6->sin6_addr.s6_addr[12], sizeof v4);
      inet_ntop(AF_INET, &v4, text, sizeof text);
      return fmt::format("ipv4:{}:{}", text, ntohs(v6->sin6_port));
    }
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    // gRPC 1.51 writes the brackets percent-encoded, as in a URI path.
    return fmt::format("ipv6:%5B{}%5D:{}", text, ntohs(v6->sin6_port));
  }
  return "";
}

absl::StatusOr<std::unique_ptr<ConnectionGate>> ConnectionGate::Bind(
    const ListenAddress& address, ConnectionGateOptions options,
    std::shared_ptr<spdlog::logger> logger) {
  options.max_connections = std::max<std::size_t>(options.max_connections, 1);
  MakeRoomForDescriptors(options.max_connections, *logger);
  if (address.is_unix()) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      return absl::UnavailableError(
          fmt::format("cannot listen on {}: socket: {}", address.text, Errno(errno)));
    }
    sockaddr_un socket_address{};
    socket_address.sun_family = AF_UNIX;
    // The length was checked when the address was parsed.
    std::memcpy(socket_address.sun_path, address.socket_path.data(), address.socket_path.size());
    // bind() creates the file with 0777 & ~umask: narrowed for the bind, so that the file is never
    // more open than asked, even for the moment before the chmod below. umask is process-wide;
    // nothing else creates files while the daemon starts.
    const mode_t previous = umask(0777 & ~static_cast<mode_t>(options.unix_socket_mode));
    const int bound =
        bind(fd, reinterpret_cast<const sockaddr*>(&socket_address), sizeof socket_address);
    umask(previous);
    if (bound != 0 || listen(fd, SOMAXCONN) != 0) {
      close(fd);
      return absl::UnavailableError(
          fmt::format("cannot listen on {} (does the directory exist, and may informerd create "
                      "files in it?); choose another with --listen",
                      address.text));
    }
    struct stat info {};
    if (chmod(address.socket_path.c_str(), static_cast<mode_t>(options.unix_socket_mode)) != 0 ||
        stat(address.socket_path.c_str(), &info) != 0) {
      const int error = errno;
      close(fd);
      unlink(address.socket_path.c_str());
      return absl::UnavailableError(fmt::format("cannot listen on {}: chmod {:o} {}: {}",
                                                address.text, options.unix_socket_mode,
                                                address.socket_path, Errno(error)));
    }
    auto gate = std::unique_ptr<ConnectionGate>(
        new ConnectionGate({fd}, 0, address.socket_path, options, std::move(logger)));
    gate->socket_inode_ = static_cast<unsigned long>(info.st_ino);
    return gate;
  }

  absl::StatusOr<std::vector<Candidate>> candidates = Candidates(address);
  if (!candidates.ok()) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {} ({}); choose another with --listen", address.text,
                    std::string(candidates.status().message())));
  }
  const bool wildcard = (*candidates)[0].dual_stack;
  absl::StatusOr<std::vector<int>> fds = absl::UnavailableError("not bound");
  int port = 0;
  // With port 0 the port the first address picked may be taken on another: pick again.
  for (int attempt = 0; attempt < 10; ++attempt) {
    fds = BindCandidates(*candidates, address.port, wildcard, &port);
    if (fds.ok() || address.port != 0) break;
  }
  if (!fds.ok()) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {} ({}); choose another with --listen", address.text,
                    std::string(fds.status().message())));
  }
  return std::unique_ptr<ConnectionGate>(
      new ConnectionGate(*std::move(fds), port, "", options, std::move(logger)));
}

ConnectionGate::ConnectionGate(std::vector<int> listeners, int port, std::string socket_path,
                               ConnectionGateOptions options,
                               std::shared_ptr<spdlog::logger> logger)
    : listeners_(std::move(listeners)),
      port_(port),
      socket_path_(std::move(socket_path)),
      options_(options),
      logger_(std::move(logger)),
      epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ConnectionGate::~ConnectionGate() {
  Stop();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [duplicate, connection] : by_duplicate_) close(duplicate);
  by_duplicate_.clear();
  by_peer_.clear();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void ConnectionGate::Start(std::function<void(int fd, int listener_fd)> hand_over) {
  hand_over_ = std::move(hand_over);
  thread_ = std::thread([this] { Run(); });
}

void ConnectionGate::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  CloseAll(listeners_);
  if (!socket_path_.empty()) {
    // Only the file this gate bound: one that replaced it is someone else's.
    struct stat info {};
    if (lstat(socket_path_.c_str(), &info) == 0 && S_ISSOCK(info.st_mode) &&
        static_cast<unsigned long>(info.st_ino) == socket_inode_) {
      unlink(socket_path_.c_str());
    }
  }
}

void ConnectionGate::Run() {
  std::vector<pollfd> watched;
  for (int listener : listeners_) watched.push_back({listener, POLLIN, 0});
  watched.push_back({epoll_fd_, POLLIN, 0});
  watched.push_back({stop_fd_, POLLIN, 0});
  bool out_of_descriptors = false;
  while (true) {
    // Out of descriptors, the listeners stay readable: wait a little before accepting again.
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      watched[i].events = out_of_descriptors ? 0 : POLLIN;
    }
    const int ready = poll(watched.data(), watched.size(), out_of_descriptors ? 100 : -1);
    if (ready < 0 && errno != EINTR) {
      logger_->error("gRPC accept loop: poll: {}", Errno(errno));
      return;
    }
    out_of_descriptors = false;
    if (watched.back().revents != 0) return;  // stop
    if (watched[listeners_.size()].revents != 0) {
      epoll_event events[64];
      const int count = epoll_wait(epoll_fd_, events, 64, 0);
      for (int i = 0; i < count; ++i) Ended(events[i].data.fd);
    }
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      if (watched[i].revents == 0) continue;
      while (true) {
        const int fd = accept4(listeners_[i], nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            logger_->warn("gRPC: cannot accept a connection: {}", Errno(errno));
            out_of_descriptors = true;
          }
          break;  // EAGAIN: none left; others (ECONNABORTED...) concern that one connection
        }
        Accept(fd, listeners_[i]);  // hands `fd` over, or closes it
      }
    }
  }
}

void ConnectionGate::Accept(int fd, int listener) {
  std::string peer;
  {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      if (address.ss_family == AF_INET || address.ss_family == AF_INET6) {
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        peer = PeerName(reinterpret_cast<const sockaddr*>(&address), length);
      }
    }
  }
  // The peer without its port: "ipv4:10.0.0.1", "ipv6:%5B::1%5D".
  const std::string address = peer.substr(0, peer.rfind(':'));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!peer.empty()) {
      const auto closing = closing_by_address_.find(address);
      if (closing != closing_by_address_.end()) {
        if (HeldByGrpc(*closing->second)) {
          ++refused_peer_closing_;
          close(fd);
          return;
        }
        closing_by_address_.erase(closing);
      }
    }
    if (by_duplicate_.size() >= options_.max_connections) {
      ++refused_;
      ++refused_unlogged_;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_refusal_log_ >= kRefusalLogInterval) {
        logger_->warn(
            "refused {} gRPC connection(s){}: {} open, the limit (--grpc-max-connections)",
            refused_unlogged_, peer.empty() ? "" : fmt::format(" (the last from {})", peer),
            by_duplicate_.size());
        last_refusal_log_ = now;
        refused_unlogged_ = 0;
      }
      close(fd);
      return;
    }
    const int duplicate = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    epoll_event event{};
    event.events = 0;  // hang-up and error only: they are always reported
    event.data.fd = duplicate;
    if (duplicate < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, duplicate, &event) != 0) {
      logger_->warn("gRPC: cannot watch a new connection ({}); closed", Errno(errno));
      if (duplicate >= 0) close(duplicate);
      close(fd);
      return;
    }
    auto connection = std::make_shared<Connection>();
    connection->duplicate = duplicate;
    connection->handed = fd;
    struct stat info {};
    if (fstat(fd, &info) == 0) connection->inode = info.st_ino;
    connection->peer = peer;
    connection->address = address;
    by_duplicate_[duplicate] = connection;
    if (!peer.empty()) by_peer_[peer] = connection;
    ++accepted_;
  }
  hand_over_(fd, listener);
}

void ConnectionGate::Ended(int duplicate) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto found = by_duplicate_.find(duplicate);
  if (found == by_duplicate_.end()) return;
  const std::shared_ptr<Connection> connection = found->second;
  by_duplicate_.erase(found);
  if (!connection->peer.empty()) {
    const auto by_peer = by_peer_.find(connection->peer);
    if (by_peer != by_peer_.end() && by_peer->second == connection) by_peer_.erase(by_peer);
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, duplicate, nullptr);
  close(duplicate);
  connection->duplicate = -1;
}

ConnectionGate::CallHandle ConnectionGate::CallStarted(std::string_view peer) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto found = by_peer_.find(peer);
  if (found == by_peer_.end()) return CallHandle();
  const std::shared_ptr<Connection>& connection = found->second;
  const std::size_t calls = ++connection->calls;
  ++connection->started;
  if (options_.max_calls_per_connection != 0 && calls > options_.max_calls_per_connection &&
      !connection->closing && connection->duplicate >= 0) {
    connection->closing = true;
    ++closed_calls_in_flight_;
    closing_by_address_[connection->address] = connection;
    logger_->warn(
        "closing the gRPC connection from {}: {} calls in flight ({} started on it), more than "
        "the {} allowed (--grpc-max-calls-per-connection; a client resetting streams faster than "
        "they finish)",
        connection->peer, calls, connection->started, options_.max_calls_per_connection);
    shutdown(connection->duplicate, SHUT_RDWR);
  }
  return CallHandle(connection);
}

ConnectionGate::CallHandle::~CallHandle() {
  if (connection_) --connection_->calls;
}

ConnectionGate::CallHandle& ConnectionGate::CallHandle::operator=(CallHandle&& other) noexcept {
  if (this != &other) {
    if (connection_) --connection_->calls;
    connection_ = std::move(other.connection_);
  }
  return *this;
}

ConnectionGateStats ConnectionGate::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ConnectionGateStats stats;
  stats.open = by_duplicate_.size();
  stats.accepted = accepted_;
  stats.refused = refused_;
  stats.closed_calls_in_flight = closed_calls_in_flight_;
  stats.refused_peer_closing = refused_peer_closing_;
  stats.max_connections = options_.max_connections;
  for (const auto& [duplicate, connection] : by_duplicate_) stats.calls += connection->calls;
  return stats;
}

}  // namespace informerd::daemon
