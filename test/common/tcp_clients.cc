#include "test/common/tcp_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace informerd::test {

int ConnectTcp(const std::string& address, std::string* error) {
  const auto fail = [&](const std::string& why) {
    if (error) *error = address + ": " + why;
    return -1;
  };
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return fail("not HOST:PORT");
  std::string host = address.substr(0, colon);
  const int port = std::stoi(address.substr(colon + 1));
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (host.size() >= 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) return fail("not an IPv6 address");
    length = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) return fail("not an IPv4 address");
    length = sizeof(sockaddr_in);
  }
  const int fd = socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(std::strerror(errno));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return fail(why);
  }
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  return fd;
}

bool PeerClosed(int fd) {
  char byte;
  const ssize_t got = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (got == 0) return true;
  if (got > 0) return false;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

IdleConnections::IdleConnections(const std::string& address, int count) {
  for (int i = 0; i < count; ++i) {
    const int fd = ConnectTcp(address);
    if (fd >= 0) fds_.push_back(fd);
  }
}

IdleConnections::~IdleConnections() { CloseAll(); }

int IdleConnections::ClosedByServer() const {
  int closed = 0;
  for (int fd : fds_) closed += PeerClosed(fd) ? 1 : 0;
  return closed;
}

void IdleConnections::CloseAll() {
  for (int fd : fds_) close(fd);
  fds_.clear();
}

Slowloris::Slowloris(const std::string& address, std::string request,
                     std::chrono::milliseconds interval)
    : fd_(ConnectTcp(address)) {
  if (fd_ >= 0) thread_ = std::thread(&Slowloris::Run, this, std::move(request), interval);
}

Slowloris::~Slowloris() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
}

void Slowloris::Run(std::string request, std::chrono::milliseconds interval) {
  std::size_t next = 0;
  while (!stop_) {
    if (next < request.size()) {
      if (send(fd_, &request[next], 1, MSG_NOSIGNAL) == 1) {
        ++next;
        sent_ = next;
      }
    }
    // Wait out the interval, watching for the server's bytes or close.
    const auto until = std::chrono::steady_clock::now() + interval;
    bool closed = false;
    while (!stop_ && !closed) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd watched{fd_, POLLIN | POLLRDHUP, 0};
      const int ready = poll(&watched, 1, static_cast<int>(std::min<long>(left.count(), 50)));
      if (ready <= 0) continue;
      char buffer[4096];
      const ssize_t got = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (got > 0) {
        std::lock_guard<std::mutex> lock(mu_);
        received_.append(buffer, static_cast<std::size_t>(got));
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      closed = true;
    }
    if (closed) {
      std::lock_guard<std::mutex> lock(mu_);
      closed_after_ = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - connected_at_);
      return;
    }
  }
}

std::optional<std::chrono::milliseconds> Slowloris::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_after_) return closed_after_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string Slowloris::received() {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

}  // namespace informerd::test
