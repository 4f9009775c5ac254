// ConnectionPool: the apiserver client's idle keep-alive connections, kept between Get()s so that
// the next request skips the TCP and TLS handshakes. Watches never use it: each holds its own
// connection for minutes. Internal to //daemon/kube:apiserver_client.
//
// Threads: used only on the client's strand (by ApiServerClient::SharedState); not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "daemon/kube/apiserver_connection.h"

namespace informerd::daemon::client_internal {

class ConnectionPool {
 public:
  // At most `max_idle_connections` are kept (0: none, every connection is closed after its
  // request); one idle for `idle_connection_timeout` or longer is closed rather than reused.
  ConnectionPool(std::size_t max_idle_connections,
                 std::chrono::milliseconds idle_connection_timeout);

  // The most recently returned idle connection that presented `client_cert_pem` and is not too
  // old; null when there is none. Connections passed over on the way are closed.
  std::unique_ptr<Connection> Take(const std::string& client_cert_pem);

  // Keeps `connection` for a later Take(), without a deadline; when the pool is full the oldest
  // idle connection is closed.
  void Put(std::unique_ptr<Connection> connection);

  // Closes and forgets every idle connection.
  void CloseAll();

 private:
  const std::size_t max_idle_connections_;
  const std::chrono::milliseconds idle_connection_timeout_;
  std::vector<std::unique_ptr<Connection>> idle_;  // oldest first
};

}  // namespace informerd::daemon::client_internal
