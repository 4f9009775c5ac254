#include "daemon/kube/request_exchange.h"

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
namespace {

constexpr char kJsonContentType[] = "application/json";

std::string_view MethodName(http::verb method) {
  const auto name = http::to_string(method);
  return std::string_view(name.data(), name.size());
}

}  // namespace

RequestExchange::RequestExchange(std::shared_ptr<ApiServerClient::SharedState> state,
                                 RequestSpec spec, Callback done)
    : state_(std::move(state)),
      spec_(std::move(spec)),
      request_description_(state_->Describe(spec_.path_and_query, MethodName(spec_.method))),
      deadline_(std::chrono::steady_clock::now() + state_->options().request_timeout),
      done_(std::move(done)) {}

void RequestExchange::Start() {
  id_ = state_->Register(weak_from_this());
  if (absl::Status target = CheckTarget(request_description_, spec_.path_and_query); !target.ok()) {
    return Finish(Result(std::move(target)));
  }
  state_->FetchCredentials(
      beast::bind_front_handler(&RequestExchange::OnCredentials, shared_from_this()));
}

void RequestExchange::Abort() {
  aborted_ = true;
  if (auto opener = opener_.lock()) opener->Abort();
  if (connection_) connection_->tcp().close();
}

void RequestExchange::OnCredentials(absl::StatusOr<CredentialsPtr> credentials) {
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

void RequestExchange::Attempt(bool allow_idle) {
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
      beast::bind_front_handler(&RequestExchange::OnConnected, shared_from_this()));
  opener_ = opener;
  opener->Run();
}

void RequestExchange::OnConnected(absl::Status status, std::unique_ptr<Connection> connection) {
  opener_.reset();
  if (!status.ok()) return Finish(Result(std::move(status)));
  connection_ = std::move(connection);
  SendRequest();
}

void RequestExchange::SendRequest() {
  // The GET request as MakeRequest writes it, byte for byte; a POST adds its method, body and
  // their headers.
  http::request<http::empty_body> head =
      MakeRequest(*state_, spec_.path_and_query, spec_.accept, *credentials_);
  request_ = http::request<http::string_body>(std::move(head.base()));
  if (spec_.method != http::verb::get) request_.method(spec_.method);
  if (spec_.json_body) {
    request_.set(http::field::content_type, kJsonContentType);
    request_.body() = *spec_.json_body;
    request_.prepare_payload();
  }
  parser_.emplace();
  parser_->body_limit(state_->options().max_response_bytes);
  connection_->tcp().expires_at(deadline_);
  connection_->WithStream([this](auto& stream) {
    http::async_write(stream, request_,
                      beast::bind_front_handler(&RequestExchange::OnWrite, shared_from_this()));
  });
}

void RequestExchange::OnWrite(beast::error_code ec, std::size_t) {
  if (ec) return OnTransportError(ec, "sending the request");
  connection_->buffer().reserve(kSocketReadBytes);
  connection_->WithStream([this](auto& stream) {
    http::async_read(stream, connection_->buffer(), *parser_,
                     beast::bind_front_handler(&RequestExchange::OnRead, shared_from_this()));
  });
}

void RequestExchange::OnRead(beast::error_code ec, std::size_t) {
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
    // A body that is not a Status is quoted in the message, except in the answer to a request
    // that carried a body of its own: a proxy's error page may echo the request, and a review's
    // request holds a bearer token.
    const bool quote_body = !spec_.json_body.has_value();
    result.status =
        state_->HttpError(request_description_, result.http_status,
                          std::string_view(response.reason().data(), response.reason().size()),
                          result.kube_status, quote_body ? std::string_view(result.body) : "");
    if (!quote_body && !result.kube_status && !result.body.empty()) {
      result.status =
          absl::Status(result.status.code(),
                       fmt::format("{} (the body is not a Kubernetes Status; {} bytes, not quoted)",
                                   std::string(result.status.message()), result.body.size()));
    }
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

void RequestExchange::OnTransportError(beast::error_code ec, std::string_view stage) {
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
  // it, or it never answered. Once, on a fresh connection, if the request may be repeated.
  if (spec_.replayable && reused_ && nothing_received && IsConnectionLoss(ec) && !retried_) {
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

HttpResult RequestExchange::Cancelled() const {
  return Result(absl::CancelledError(fmt::format("{}: cancelled", request_description_)));
}

HttpResult RequestExchange::Result(absl::Status status) {
  HttpResult result;
  result.status = std::move(status);
  return result;
}

void RequestExchange::Finish(HttpResult result) {
  if (!done_) return;
  state_->Unregister(id_);
  Callback done = std::move(done_);
  done_ = nullptr;
  if (connection_) {
    connection_->Close();
    connection_.reset();
  }
  if (state_->closed()) return;
  done(std::move(result));
}

}  // namespace informerd::daemon::client_internal
