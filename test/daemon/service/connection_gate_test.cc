// Specification of ConnectionGate (daemon/service/connection_gate.*) on its own, with plain
// sockets standing in for gRPC: what it binds, how many connections it hands over, how it sees
// one end, and the unix socket file it leaves behind (none of its own). Calls counted per
// connection through gRPC are specified in grpc_limits_test.cc.
#include "daemon/service/connection_gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "spdlog/sinks/null_sink.h"
#include "test/common/wait_until.h"

namespace informerd::daemon {
namespace {

using std::chrono::seconds;

std::shared_ptr<spdlog::logger> NullLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

ListenAddress Address(const std::string& text) {
  auto address = ParseListenAddress(text);
  REQUIRE(address.ok());
  return *address;
}

std::unique_ptr<ConnectionGate> Bind(const std::string& address, ConnectionGateOptions options) {
  auto gate = ConnectionGate::Bind(Address(address), options, NullLogger());
  INFO(gate.status().ToString());
  REQUIRE(gate.ok());
  return *std::move(gate);
}

// A connected socket to `port` on `family`'s loopback; -1 if the connection fails.
int Connect(int family, int port) {
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    v6->sin6_addr = in6addr_loopback;
    length = sizeof(sockaddr_in6);
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether the other end has closed `fd` (reading and dropping anything sent before).
bool Closed(int fd) {
  char buffer[256];
  while (true) {
    const ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (got == 0) return true;
    if (got < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

// A short directory for unix sockets (a socket path has at most 107 bytes), removed afterwards.
class SocketDir {
 public:
  SocketDir() {
    char pattern[] = "/tmp/informerd-gate-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~SocketDir() { std::filesystem::remove_all(path_); }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Stands in for gRPC: keeps every descriptor it is handed.
struct Receiver {
  std::function<void(int, int)> HandOver() {
    return [this](int fd, int) {
      std::lock_guard<std::mutex> lock(mu);
      fds.push_back(fd);
    };
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return fds.size();
  }
  int at(std::size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    return fds.at(i);
  }
  ~Receiver() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  std::mutex mu;
  std::vector<int> fds;
};

TEST_CASE(
    "ConnectionGate: at most max_connections are handed over; the rest are closed at once; "
    "a place is free again when its connection ends") {
  ConnectionGateOptions options;
  options.max_connections = 3;
  auto gate = Bind("127.0.0.1:0", options);
  Receiver receiver;
  gate->Start(receiver.HandOver());

  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(Connect(AF_INET, gate->port()));
    REQUIRE(clients.back() >= 0);
  }
  REQUIRE(test::WaitUntil([&] { return gate->stats().refused == 2; }, seconds(10)));
  CHECK(receiver.count() == 3);
  ConnectionGateStats stats = gate->stats();
  CHECK(stats.open == 3);
  CHECK(stats.accepted == 3);
  CHECK(stats.max_connections == 3);
  // The first three were handed over and stay open; the other two were closed.
  for (int i = 0; i < 3; ++i) CHECK_FALSE(Closed(clients[i]));
  for (int i = 3; i < 5; ++i)
    CHECK(test::WaitUntil([&] { return Closed(clients[i]); }, seconds(5)));

  SECTION("the server side shuts a connection down, as gRPC does before closing it") {
    shutdown(receiver.at(0), SHUT_RDWR);
    close(receiver.at(0));
    receiver.fds[0] = -1;
  }
  SECTION("the client resets the connection") {
    const linger reset{1, 0};
    setsockopt(clients[0], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(clients[0]);
    clients[0] = -1;
  }
  CHECK(test::WaitUntil([&] { return gate->stats().open == 2; }, seconds(5)));
  clients.push_back(Connect(AF_INET, gate->port()));
  CHECK(test::WaitUntil([&] { return receiver.count() == 4; }, seconds(5)));
  CHECK(gate->stats().open == 3);
  for (int fd : clients) {
    if (fd >= 0) close(fd);
  }
}

TEST_CASE("ConnectionGate: the peer names are gRPC's") {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(43210);
  inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr);
  CHECK(ConnectionGate::PeerName(reinterpret_cast<const sockaddr*>(&v4), sizeof v4) ==
        "ipv4:10.1.2.3:43210");
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(443);
  inet_pton(AF_INET6, "fd00::1", &v6.sin6_addr);
  CHECK(ConnectionGate::PeerName(reinterpret_cast<const sockaddr*>(&v6), sizeof v6) ==
        "ipv6:%5Bfd00::1%5D:443");
  // An IPv4 client of a dual-stack socket: named as IPv4, as gRPC does.
  inet_pton(AF_INET6, "::ffff:10.1.2.3", &v6.sin6_addr);
  CHECK(ConnectionGate::PeerName(reinterpret_cast<const sockaddr*>(&v6), sizeof v6) ==
        "ipv4:10.1.2.3:443");
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  CHECK(ConnectionGate::PeerName(reinterpret_cast<const sockaddr*>(&unix_address),
                                 sizeof unix_address)
            .empty());
}

TEST_CASE("ConnectionGate: what each address is bound as") {
  Receiver receiver;
  SECTION("the wildcard serves IPv4 and IPv6") {
    auto gate = Bind("0.0.0.0:0", {});
    gate->Start(receiver.HandOver());
    const int v4 = Connect(AF_INET, gate->port());
    const int v6 = Connect(AF_INET6, gate->port());
    CHECK(v4 >= 0);
    CHECK(v6 >= 0);
    CHECK(test::WaitUntil([&] { return receiver.count() == 2; }, seconds(5)));
    close(v4);
    close(v6);
  }
  SECTION("an IPv6 address") {
    auto gate = Bind("[::1]:0", {});
    gate->Start(receiver.HandOver());
    const int v6 = Connect(AF_INET6, gate->port());
    CHECK(v6 >= 0);
    CHECK(test::WaitUntil([&] { return receiver.count() == 1; }, seconds(5)));
    close(v6);
  }
  SECTION("a port in use is an error naming the address and the reason") {
    auto first = Bind("127.0.0.1:0", {});
    const std::string address = "127.0.0.1:" + std::to_string(first->port());
    auto second = ConnectionGate::Bind(Address(address), {}, NullLogger());
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().message() ==
          "cannot listen on " + address +
              " (Address already in use); choose another with --listen");
  }
  SECTION("a host name that does not resolve") {
    auto gate = ConnectionGate::Bind(Address("informerd.invalid:0"), {}, NullLogger());
    REQUIRE_FALSE(gate.ok());
    CHECK(gate.status().message().find("cannot listen on informerd.invalid:0 (cannot resolve "
                                       "informerd.invalid: ") == 0);
  }
}

TEST_CASE(
    "ConnectionGate: a unix socket's file is created with its mode and removed at Stop, "
    "unless another has taken its place") {
  SocketDir dir;
  const std::string path = dir.Path("gate.sock");
  ConnectionGateOptions options;
  options.unix_socket_mode = 0600;
  auto gate = Bind("unix:" + path, options);
  struct stat info {};
  REQUIRE(stat(path.c_str(), &info) == 0);
  CHECK(S_ISSOCK(info.st_mode));
  CHECK((info.st_mode & 0777) == 0600);
  CHECK(gate->port() == 0);

  SECTION("its own file is removed") {
    gate->Stop();
    CHECK(stat(path.c_str(), &info) != 0);
  }
  SECTION("a file put in its place is left alone") {
    REQUIRE(unlink(path.c_str()) == 0);
    std::ofstream(path) << "someone else's";
    gate->Stop();
    CHECK(stat(path.c_str(), &info) == 0);
  }
}

}  // namespace
}  // namespace informerd::daemon
