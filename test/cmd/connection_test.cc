// Tests of cmd/informerctl/connection.*: which gRPC targets count as this machine (where a bearer
// token may go in plaintext), and how the flags turn into channel settings. Connections
// themselves are tested on the binary, in informerctl_security_test.cc.
#include "cmd/informerctl/connection.h"

#include <catch2/catch.hpp>

namespace informerd::ctl {
namespace {

TEST_CASE("IsLocalTarget: unix sockets and loopback, in every gRPC target form") {
  for (const char* target :
       {"unix:/run/informerd.sock", "unix:///var/run/informerd/informerd.sock",
        "unix-abstract:informerd", "127.0.0.1:50051", "127.1.2.3:1", "localhost:50051",
        "LOCALHOST:1", "[::1]:50051", "::1", "localhost", "dns:///localhost:50051",
        "dns://8.8.8.8/127.0.0.1:50051", "dns:127.0.0.1:50051", "ipv4:127.0.0.1:1,127.0.0.2:2",
        "ipv6:[::1]:50051"}) {
    INFO(target);
    CHECK(IsLocalTarget(target));
  }
  for (const char* target :
       {"10.0.0.1:50051", "0.0.0.0:50051", "informerd.informerd.svc:50051", "[::]:50051",
        "[2001:db8::1]:50051", "dns:///informerd:50051", "dns://localhost", "128.0.0.1:1",
        "ipv4:127.0.0.1:1,10.0.0.1:1", "localhost.example.com:1", "", "ipv4:"}) {
    INFO(target);
    CHECK_FALSE(IsLocalTarget(target));
  }
}

ChannelSettings Resolve(const std::string& address, const ConnectionFlags& flags) {
  absl::StatusOr<ChannelSettings> settings =
      ResolveChannelSettings(address, flags, daemon::Environment());
  INFO(settings.status().ToString());
  REQUIRE(settings.ok());
  return *settings;
}

TEST_CASE("TLS is on with --tls, --insecure-skip-tls-verify, --tls-server-name or https://") {
  ConnectionFlags flags;
  CHECK_FALSE(Resolve("10.0.0.1:50051", flags).tls);
  flags.tls = true;
  CHECK(Resolve("10.0.0.1:50051", flags).tls);
  flags = ConnectionFlags();
  flags.insecure_skip_tls_verify = true;
  ChannelSettings settings = Resolve("10.0.0.1:50051", flags);
  CHECK(settings.tls);
  CHECK(settings.insecure_skip_tls_verify);
  flags = ConnectionFlags();
  flags.tls_server_name = "informerd.informerd.svc";
  settings = Resolve("127.0.0.1:50051", flags);
  CHECK(settings.tls);
  CHECK(settings.server_name == "informerd.informerd.svc");

  struct Https {
    const char* address;
    const char* target;
  };
  for (const Https& https :
       {Https{"https://informerd.example", "informerd.example:443"},
        Https{"https://informerd.example:8443/", "informerd.example:8443"},
        Https{"HTTPS://10.0.0.1", "10.0.0.1:443"}, Https{"https://[::1]", "[::1]:443"},
        Https{"https://[::1]:9", "[::1]:9"}}) {
    INFO(https.address);
    settings = Resolve(https.address, ConnectionFlags());
    CHECK(settings.tls);
    CHECK(settings.target == https.target);
    CHECK(settings.address == https.address);
  }
  for (const char* bad : {"https://", "https://host/path", "https://user@host", "https://[::1"}) {
    INFO(bad);
    CHECK(ResolveChannelSettings(bad, ConnectionFlags(), daemon::Environment()).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a token is kept for every call; refused over plaintext to another host") {
  ConnectionFlags flags;
  flags.token = "abc";
  CHECK(Resolve("unix:///run/informerd.sock", flags).bearer_token == "abc");
  flags.tls = true;
  CHECK(Resolve("10.0.0.1:50051", flags).bearer_token == "abc");
  flags.tls = false;
  const auto refused = ResolveChannelSettings("10.0.0.1:50051", flags, daemon::Environment());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(refused.status().message().find("abc") == std::string::npos);
}

}  // namespace
}  // namespace informerd::ctl
