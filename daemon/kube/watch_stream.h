// ApiServerWatchStream: one ApiServerClient::Watch(): credentials → a new connection of its own
// → the request → the response headers → the body, handed to on_bytes piece by piece as it
// arrives, then on_end once. A watchdog closes a stream silent for longer than
// ApiClientOptions::watch_idle_timeout. Internal to //daemon/kube:apiserver_client.
//
// Threads and ownership: created by ApiServerClient::Watch() on the caller's thread and owned by
// the WatchHandle it returns; runs only on the client's strand, where on_bytes and on_end are
// called. Cancel() may be called from any thread. It keeps itself alive through its pending
// handlers; the client's SharedState holds it weakly, to abort it when the client is destroyed.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/apiserver_connection.h"
#include "daemon/kube/client_shared_state.h"
#include "daemon/kube/connection_opener.h"
#include "daemon/kube/request_support.h"

namespace informerd::daemon {

class ApiServerWatchStream final : public WatchStream,
                                   public client_internal::Abortable,
                                   public std::enable_shared_from_this<ApiServerWatchStream> {
 public:
  ApiServerWatchStream(std::shared_ptr<ApiServerClient::SharedState> state,
                       std::string path_and_query, ApiServerClient::BytesCallback on_bytes,
                       ApiServerClient::EndCallback on_end);

  // On the strand.
  void Start();

  // WatchStream. Any thread.
  void Cancel() override;

  // On the strand.
  void Abort() override;

 private:
  using Connection = client_internal::Connection;
  using ConnectionOpener = client_internal::ConnectionOpener;
  using CredentialsPtr = client_internal::CredentialsPtr;
  using SteadyTime = client_internal::SteadyTime;

  void OnCredentials(absl::StatusOr<CredentialsPtr> credentials);
  void OnConnected(absl::Status status, std::unique_ptr<Connection> connection);
  void OnWrite(boost::beast::error_code ec, std::size_t);
  void OnHeader(boost::beast::error_code ec, std::size_t);
  void ReadBody();
  void OnBody(boost::beast::error_code ec, std::size_t);
  void OnErrorBody(boost::beast::error_code ec, std::size_t);
  void ArmWatchdog(SteadyTime at);
  // Re-armed from the last bytes' time rather than reset on every read, which would cost a
  // timer cancellation per piece of a busy stream.
  void OnWatchdog(boost::beast::error_code ec);
  void OnTransportError(boost::beast::error_code ec, std::string_view stage);
  void Finish(absl::Status status);
  void FinishWith(HttpResult result);

  std::shared_ptr<ApiServerClient::SharedState> state_;
  const std::string path_and_query_;
  const std::string request_description_;
  const SteadyTime deadline_;
  boost::asio::steady_timer watchdog_;
  ApiServerClient::BytesCallback on_bytes_;
  ApiServerClient::EndCallback on_end_;
  std::atomic<bool> cancelled_{false};
  std::uint64_t id_ = 0;
  CredentialsPtr credentials_;
  // Weak: the opener lives through its pending handlers, and holds a callback into this
  // operation; a strong pointer back would be a cycle that outlives a destroyed io_context.
  std::weak_ptr<ConnectionOpener> opener_;
  std::unique_ptr<Connection> connection_;
  boost::beast::http::request<boost::beast::http::empty_body> request_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::empty_body>> header_parser_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> body_parser_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> error_parser_;
  std::vector<char> read_buffer_;
  int http_status_ = 0;
  std::string reason_;
  std::optional<std::chrono::seconds> retry_after_;
  SteadyTime last_bytes_;
  std::uint64_t bytes_delivered_ = 0;
  bool streaming_ = false;
  bool stalled_ = false;
  bool aborted_ = false;
};

}  // namespace informerd::daemon
