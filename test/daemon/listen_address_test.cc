// Specification of what --listen names (daemon/listen_address.*).
#include "daemon/listen_address.h"

#include <catch2/catch.hpp>

namespace informerd::daemon {
namespace {

TEST_CASE("HOST:PORT is a TCP address; gRPC gets it as given") {
  auto address = ParseListenAddress("[::1]:50051");
  REQUIRE(address.ok());
  CHECK(address->kind == ListenAddress::Kind::kTcp);
  CHECK(address->host == "[::1]");
  CHECK(address->port == 50051);
  CHECK(address->ForGrpc() == "[::1]:50051");
  CHECK(address->text == "[::1]:50051");
}

TEST_CASE("unix:PATH and unix:///ABS/PATH name a socket file; gRPC gets unix:PATH") {
  auto address = ParseListenAddress("unix:///run/informerd/grpc.sock");
  REQUIRE(address.ok());
  CHECK(address->is_unix());
  CHECK(address->socket_path == "/run/informerd/grpc.sock");
  CHECK(address->ForGrpc() == "unix:/run/informerd/grpc.sock");
  CHECK(address->text == "unix:///run/informerd/grpc.sock");
  CHECK(address->IsLocal());

  address = ParseListenAddress("unix:/run/grpc.sock");
  REQUIRE(address.ok());
  CHECK(address->socket_path == "/run/grpc.sock");
  address = ParseListenAddress("unix:sockets/grpc.sock");
  REQUIRE(address.ok());
  CHECK(address->socket_path == "sockets/grpc.sock");
  CHECK(address->ForGrpc() == "unix:sockets/grpc.sock");
}

TEST_CASE("local means loopback or a unix socket; other hosts and names are reachable") {
  for (const char* local : {"127.0.0.1:1", "127.255.0.3:1", "localhost:1", "[::1]:1",
                            "[::ffff:127.0.0.2]:1", "unix:/s"}) {
    INFO(local);
    auto address = ParseListenAddress(local);
    REQUIRE(address.ok());
    CHECK(address->IsLocal());
  }
  for (const char* reachable :
       {"0.0.0.0:1", "[::]:1", "192.168.1.1:1", "126.0.0.1:1", "[::2]:1", "[::ffff:10.1.1.1]:1",
        "my-host:1", "localhost.:1", "[fe80::1]:1"}) {
    INFO(reachable);
    auto address = ParseListenAddress(reachable);
    REQUIRE(address.ok());
    CHECK_FALSE(address->IsLocal());
  }
}

}  // namespace
}  // namespace informerd::daemon
