#include "daemon/kube/get_exchange.h"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <utility>

#include "core/list_decoder.h"
#include "fmt/format.h"

namespace informerd::daemon::client_internal {

GetExchange::GetExchange(std::shared_ptr<ApiServerClient::SharedState> state,
                         std::string path_and_query, std::string accept,
                         ApiServerClient::GetCallback done)
    : state_(std::move(state)),
      path_and_query_(std::move(path_and_query)),
      accept_(std::move(accept)),
      request_description_(state_->Describe(path_and_query_)),
      deadline_(std::chrono::steady_clock::now() + state_->options().request_timeout),
      done_(std::move(done)) {}

void GetExchange::Start() {
  id_ = state_->Register(weak_from_this());
  if (absl::Status target = CheckTarget(request_description_, path_and_query_); !target.ok()) {
    return Finish(Result(std::move(target)));
  }
  state_->FetchCredentials(
      beast::bind_front_handler(&GetExchange::OnCredentials, shared_from_this()));
}

void GetExchange::Abort() {
  aborted_ = true;
  if (auto opener = opener_.lock()) opener->Abort();
  if (connection_) connection_->tcp().close();
}

void GetExchange::OnCredentials(absl::StatusOr<CredentialsPtr> credentials) {
  if (aborted_) return Finish(Cancelled());
  if (!credentials.ok()) {
    return Finish(Result(absl::Status(credentials.status().code(),
                                      fmt::format("{}: no credentials: {}", request_description_,
                                                  std::string(credentials.status().message())))));
  }
  credentials_ = *std::move(credentials);
  if (std::chrono::steady_clock::now() >= deadline_) {
    return Finish(Result(absl::DeadlineExceededError(
        fmt::format("{}: timed out after {} (request timeout) while fetching credentials",
                    request_description_, FormatSeconds(state_->options().request_timeout)))));
  }
  Attempt(/*allow_idle=*/true);
}

void GetExchange::Attempt(bool allow_idle) {
  if (allow_idle) connection_ = state_->TakeIdle(*credentials_);
  reused_ = connection_ != nullptr;
  if (reused_) return SendRequest();
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
      state_->TlsContextFor(*credentials_);
  if (!context.ok()) {
    return Finish(Result(absl::InvalidArgumentError(fmt::format(
        "{}: TLS settings: {}", request_description_, std::string(context.status().message())))));
  }
  auto opener = std::make_shared<ConnectionOpener>(
      state_,
      std::make_unique<Connection>(state_->strand(), *context, credentials_->client_cert_pem),
      deadline_, request_description_,
      beast::bind_front_handler(&GetExchange::OnConnected, shared_from_this()));
  opener_ = opener;
  opener->Run();
}

void GetExchange::OnConnected(absl::Status status, std::unique_ptr<Connection> connection) {
  opener_.reset();
  if (!status.ok()) return Finish(Result(std::move(status)));
  connection_ = std::move(connection);
  SendRequest();
}

void GetExchange::SendRequest() {
  request_ = MakeRequest(*state_, path_and_query_, accept_, *credentials_);
  parser_.emplace();
  parser_->body_limit(state_->options().max_response_bytes);
  connection_->tcp().expires_at(deadline_);
  connection_->WithStream([this](auto& stream) {
    http::async_write(stream, request_,
                      beast::bind_front_handler(&GetExchange::OnWrite, shared_from_this()));
  });
}

void GetExchange::OnWrite(beast::error_code ec, std::size_t) {
  if (ec) return OnTransportError(ec, "sending the request");
  connection_->buffer().reserve(kSocketReadBytes);
  connection_->WithStream([this](auto& stream) {
    http::async_read(stream, connection_->buffer(), *parser_,
                     beast::bind_front_handler(&GetExchange::OnRead, shared_from_this()));
  });
}

void GetExchange::OnRead(beast::error_code ec, std::size_t) {
  if (ec) return OnTransportError(ec, "reading the response");
  http::response<http::string_body> response = parser_->release();
  HttpResult result;
  result.http_status = response.result_int();
  if (auto retry_after = response.find(http::field::retry_after); retry_after != response.end()) {
    result.retry_after =
        ParseRetryAfter(std::string_view(retry_after->value().data(), retry_after->value().size()));
  }
  const bool keep_alive = response.keep_alive();
  result.body = std::move(response.body());
  if (result.http_status / 100 == 2) {
    result.status = absl::OkStatus();
  } else {
    if (absl::StatusOr<core::KubeStatus> kube = core::ParseKubeStatus(result.body); kube.ok()) {
      result.kube_status = *std::move(kube);
    }
    result.status =
        state_->HttpError(request_description_, result.http_status,
                          std::string_view(response.reason().data(), response.reason().size()),
                          result.kube_status, result.body);
    // client-go's rule: a 401 means these credentials are no good; the source decides whether
    // that calls for a re-read (token file), a plugin run (exec), or nothing (static).
    if (result.http_status == 401) state_->config().credentials->Invalidate(credentials_);
  }
  if (keep_alive) {
    state_->PutIdle(std::move(connection_));
  } else {
    connection_->Close();
    connection_.reset();
  }
  Finish(std::move(result));
}

void GetExchange::OnTransportError(beast::error_code ec, std::string_view stage) {
  if (aborted_ || ec == asio::error::operation_aborted) return Finish(Cancelled());
  if (ec == beast::error::timeout) {
    return Finish(Result(absl::DeadlineExceededError(
        fmt::format("{}: timed out after {} (request timeout) while {}", request_description_,
                    FormatSeconds(state_->options().request_timeout), stage))));
  }
  const bool nothing_received = !parser_->got_some();
  connection_->Close();
  connection_.reset();
  // A kept-alive connection the server has closed in the meantime: the request never reached
  // it, or it never answered. Once, on a fresh connection.
  if (reused_ && nothing_received && IsConnectionLoss(ec) && !retried_) {
    retried_ = true;
    return Attempt(/*allow_idle=*/false);
  }
  std::string message = fmt::format("{}: the connection failed while {}: {}", request_description_,
                                    stage, ec.message());
  if (ec == http::error::body_limit) {
    message = fmt::format("{}: the response is larger than {} bytes (max_response_bytes)",
                          request_description_, state_->options().max_response_bytes);
    return Finish(Result(absl::ResourceExhaustedError(message)));
  }
  Finish(Result(absl::UnavailableError(message)));
}

HttpResult GetExchange::Cancelled() const {
  return Result(absl::CancelledError(fmt::format("{}: cancelled", request_description_)));
}

HttpResult GetExchange::Result(absl::Status status) {
  HttpResult result;
  result.status = std::move(status);
  return result;
}

void GetExchange::Finish(HttpResult result) {
  if (!done_) return;
  state_->Unregister(id_);
  ApiServerClient::GetCallback done = std::move(done_);
  done_ = nullptr;
  if (connection_) {
    connection_->Close();
    connection_.reset();
  }
  if (state_->closed()) return;
  done(std::move(result));
}

}  // namespace informerd::daemon::client_internal
