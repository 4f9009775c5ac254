// ConnectionOpener: resolve → connect → TLS handshake for one new connection of the apiserver
// client, in the manner of Beast's async-ssl client example, within the deadline of the request
// that needs the connection. Internal to //daemon/kube:apiserver_client.
//
// Threads and ownership: runs on the client's strand; Run() and Abort() are called there, and
// `done` is called there once. It keeps itself alive through its pending handlers; the request
// that started it holds it weakly, to abort it.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/apiserver_connection.h"
#include "daemon/kube/request_support.h"

namespace informerd::daemon::client_internal {

class ConnectionOpener : public std::enable_shared_from_this<ConnectionOpener> {
 public:
  // OK with the connected (and, for https, handshaken) connection, or the error and null.
  using Done = std::function<void(absl::Status, std::unique_ptr<Connection>)>;

  // `request` describes the request that needs the connection, for error messages.
  ConnectionOpener(std::shared_ptr<ApiServerClient::SharedState> state,
                   std::unique_ptr<Connection> connection, SteadyTime deadline, std::string request,
                   Done done);

  void Run();
  void Abort();

 private:
  void OnResolveDeadline(beast::error_code ec);
  void OnResolve(beast::error_code ec, tcp::resolver::results_type results);
  void OnConnect(beast::error_code ec, const tcp::endpoint&);
  void OnHandshake(beast::error_code ec);
  absl::Status TimedOut(std::string_view stage) const;
  void Fail(beast::error_code ec, const std::string& stage);
  void Finish(absl::Status status);

  std::shared_ptr<ApiServerClient::SharedState> state_;
  std::unique_ptr<Connection> connection_;
  tcp::resolver resolver_;
  asio::steady_timer deadline_timer_;
  const SteadyTime deadline_;
  const std::string request_;
  Done done_;
  bool aborted_ = false;
  bool resolve_timed_out_ = false;
};

}  // namespace informerd::daemon::client_internal
