#include "daemon/kube/connection_pool.h"

#include <utility>

namespace informerd::daemon::client_internal {

ConnectionPool::ConnectionPool(std::size_t max_idle_connections,
                               std::chrono::milliseconds idle_connection_timeout)
    : max_idle_connections_(max_idle_connections),
      idle_connection_timeout_(idle_connection_timeout) {}

std::unique_ptr<Connection> ConnectionPool::Take(const std::string& client_cert_pem) {
  const SteadyTime now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    std::unique_ptr<Connection> connection = std::move(idle_.back());
    idle_.pop_back();
    if (connection->client_cert_pem() == client_cert_pem &&
        now - connection->idle_since < idle_connection_timeout_) {
      return connection;
    }
    connection->Close();
  }
  return nullptr;
}

void ConnectionPool::Put(std::unique_ptr<Connection> connection) {
  if (max_idle_connections_ == 0) return connection->Close();
  connection->tcp().expires_never();
  connection->idle_since = std::chrono::steady_clock::now();
  idle_.push_back(std::move(connection));
  if (idle_.size() > max_idle_connections_) {
    idle_.front()->Close();
    idle_.erase(idle_.begin());
  }
}

void ConnectionPool::CloseAll() {
  for (auto& connection : idle_) connection->Close();
  idle_.clear();
}

}  // namespace informerd::daemon::client_internal
