// ListenAddress: what --listen names, parsed without touching the network or the file system.
//
// Two forms, as gRPC's servers take them:
//   HOST:PORT          a TCP address: an IPv4 address, [IPv6] in brackets, or a host name
//                      (port 0 picks a free port);
//   unix:PATH          a unix domain socket at PATH, absolute or relative to the working
//   unix:///ABS/PATH   directory; the second (URI) form needs an absolute path.
// Abstract unix sockets (unix-abstract:) are not accepted: they have no file permissions, so any
// process in the network namespace could connect.
//
// Used by the options (the default authorization mode depends on whether the address is local)
// and by the gRPC server (binding, the socket file, refusing plaintext on a reachable address).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace informerd::daemon {

struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  // As given on the command line: what logs and errors show.
  std::string text;
  // kTcp: the host as written (brackets kept for IPv6) and the port.
  std::string host;
  int port = 0;
  // kUnix: the socket's file system path (the URI form's leading "//" removed).
  std::string socket_path;

  bool is_unix() const { return kind == Kind::kUnix; }
  // Reachable only from this host: a unix socket, or a TCP host that is "localhost", in
  // 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104. Any other host name counts as reachable (what it
  // resolves to may change).
  bool IsLocal() const;
  // What gRPC's ServerBuilder is given: HOST:PORT, or unix:PATH.
  std::string ForGrpc() const;
};

// The longest socket path the kernel accepts (sockaddr_un's sun_path, less its terminating NUL).
inline constexpr std::size_t kMaxUnixSocketPathBytes = 107;

// InvalidArgument naming what is wrong (without the flag's name: the caller adds it).
absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace informerd::daemon
