// RequestExchange: one request with a whole answer, an ApiServerClient::Get() or Post():
// credentials → a connection (an idle one from the pool, or a new one) → the request → the
// whole response, handed to the caller's callback as an HttpResult. Internal to
// //daemon/kube:apiserver_client.
//
// A kept-alive connection that the server closed before any byte of the answer came back is
// replaced once, and the request sent again on a new connection, only if the request is
// replayable: whether the server processed it cannot be known (the close may have crossed the
// request, or the server may have died after acting on it), so only requests that are safe to
// repeat are repeated. A GET always is; a POST only when its caller says so (the review POSTs,
// which change nothing on the server).
//
// Threads and ownership: created by ApiServerClient on the caller's thread, then runs only on
// the client's strand, where its callback is called. It keeps itself alive through its pending
// handlers; the client's SharedState holds it weakly, to abort it when the client is destroyed.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/apiserver_connection.h"
#include "daemon/kube/client_shared_state.h"
#include "daemon/kube/connection_opener.h"
#include "daemon/kube/request_support.h"

namespace informerd::daemon::client_internal {

// What one exchange sends.
struct RequestSpec {
  http::verb method = http::verb::get;
  std::string path_and_query;
  // Accept; empty: application/json.
  std::string accept;
  // A POST's body, sent as Content-Type application/json with its Content-Length. A GET has none
  // (and no Content-Length header).
  std::optional<std::string> json_body;
  // Whether the request may be sent a second time on a new connection (see above).
  bool replayable = true;
};

class RequestExchange : public Abortable, public std::enable_shared_from_this<RequestExchange> {
 public:
  using Callback = std::function<void(HttpResult)>;

  RequestExchange(std::shared_ptr<ApiServerClient::SharedState> state, RequestSpec spec,
                  Callback done);

  // On the strand.
  void Start();
  void Abort() override;

 private:
  void OnCredentials(absl::StatusOr<CredentialsPtr> credentials);
  void Attempt(bool allow_idle);
  void OnConnected(absl::Status status, std::unique_ptr<Connection> connection);
  void SendRequest();
  void OnWrite(beast::error_code ec, std::size_t);
  void OnRead(beast::error_code ec, std::size_t);
  void OnTransportError(beast::error_code ec, std::string_view stage);
  HttpResult Cancelled() const;
  static HttpResult Result(absl::Status status);
  void Finish(HttpResult result);

  std::shared_ptr<ApiServerClient::SharedState> state_;
  const RequestSpec spec_;
  const std::string request_description_;
  const SteadyTime deadline_;
  Callback done_;
  std::uint64_t id_ = 0;
  CredentialsPtr credentials_;
  // Weak: the opener lives through its pending handlers, and holds a callback into this
  // operation; a strong pointer back would be a cycle that outlives a destroyed io_context.
  std::weak_ptr<ConnectionOpener> opener_;
  std::unique_ptr<Connection> connection_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool reused_ = false;
  bool retried_ = false;
  bool aborted_ = false;
};

}  // namespace informerd::daemon::client_internal
