#include "daemon/kube/watch_stream.h"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <limits>
#include <utility>

#include "core/list_decoder.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

namespace asio = client_internal::asio;
namespace beast = client_internal::beast;
namespace http = client_internal::http;
using client_internal::CheckTarget;
using client_internal::FormatSeconds;
using client_internal::IsConnectionLoss;
using client_internal::kSocketReadBytes;
using client_internal::MakeRequest;
using client_internal::ParseRetryAfter;

// One read's worth of watch body; events longer than this simply arrive in several pieces.
constexpr std::size_t kWatchReadBytes = 64 * 1024;
// "No body limit". Not boost::none: Beast 1.74 compares a Content-Length against the optional
// limit with `len > limit`, which is true for every length when the limit is none.
constexpr std::uint64_t kUnlimitedBody = std::numeric_limits<std::uint64_t>::max();

}  // namespace

ApiServerWatchStream::ApiServerWatchStream(std::shared_ptr<ApiServerClient::SharedState> state,
                                           std::string path_and_query,
                                           ApiServerClient::BytesCallback on_bytes,
                                           ApiServerClient::EndCallback on_end)
    : state_(std::move(state)),
      path_and_query_(std::move(path_and_query)),
      request_description_(state_->Describe(path_and_query_)),
      deadline_(std::chrono::steady_clock::now() + state_->options().request_timeout),
      watchdog_(state_->strand()),
      on_bytes_(std::move(on_bytes)),
      on_end_(std::move(on_end)) {}

void ApiServerWatchStream::Start() {
  if (cancelled_.load(std::memory_order_acquire)) return;
  id_ = state_->Register(weak_from_this());
  if (absl::Status target = CheckTarget(request_description_, path_and_query_); !target.ok()) {
    return Finish(std::move(target));
  }
  state_->FetchCredentials(
      beast::bind_front_handler(&ApiServerWatchStream::OnCredentials, shared_from_this()));
}

void ApiServerWatchStream::Cancel() {
  cancelled_.store(true, std::memory_order_release);
  asio::post(state_->strand(), [self = shared_from_this()] { self->Abort(); });
}

void ApiServerWatchStream::Abort() {
  aborted_ = true;
  watchdog_.cancel();
  if (auto opener = opener_.lock()) opener->Abort();
  if (connection_) connection_->tcp().close();
  Finish(absl::CancelledError(fmt::format("{}: cancelled", request_description_)));
}

void ApiServerWatchStream::OnCredentials(absl::StatusOr<CredentialsPtr> credentials) {
  if (aborted_) return;
  if (!credentials.ok()) {
    return Finish(absl::Status(credentials.status().code(),
                               fmt::format("{}: no credentials: {}", request_description_,
                                           std::string(credentials.status().message()))));
  }
  credentials_ = *std::move(credentials);
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
      state_->TlsContextFor(*credentials_);
  if (!context.ok()) {
    return Finish(absl::InvalidArgumentError(fmt::format(
        "{}: TLS settings: {}", request_description_, std::string(context.status().message()))));
  }
  // A watch holds its connection for minutes: never one from the pool, never back into it.
  auto opener = std::make_shared<ConnectionOpener>(
      state_,
      std::make_unique<Connection>(state_->strand(), *context, credentials_->client_cert_pem),
      deadline_, request_description_,
      beast::bind_front_handler(&ApiServerWatchStream::OnConnected, shared_from_this()));
  opener_ = opener;
  opener->Run();
}

void ApiServerWatchStream::OnConnected(absl::Status status,
                                       std::unique_ptr<Connection> connection) {
  opener_.reset();
  if (aborted_) return;
  if (!status.ok()) return Finish(std::move(status));
  connection_ = std::move(connection);
  request_ = MakeRequest(*state_, path_and_query_, "", *credentials_);
  connection_->tcp().expires_at(deadline_);
  connection_->WithStream([this](auto& stream) {
    http::async_write(
        stream, request_,
        beast::bind_front_handler(&ApiServerWatchStream::OnWrite, shared_from_this()));
  });
}

void ApiServerWatchStream::OnWrite(beast::error_code ec, std::size_t) {
  if (ec) return OnTransportError(ec, "sending the request");
  header_parser_.emplace();
  // The body may be endless: no limit applies to it (nor, so, to its announced length).
  header_parser_->body_limit(kUnlimitedBody);
  connection_->WithStream([this](auto& stream) {
    http::async_read_header(
        stream, connection_->buffer(), *header_parser_,
        beast::bind_front_handler(&ApiServerWatchStream::OnHeader, shared_from_this()));
  });
}

void ApiServerWatchStream::OnHeader(beast::error_code ec, std::size_t) {
  if (ec) return OnTransportError(ec, "reading the response headers");
  const auto& header = header_parser_->get();
  http_status_ = header.result_int();
  reason_ = std::string(header.reason());
  if (auto retry_after = header.find(http::field::retry_after); retry_after != header.end()) {
    retry_after_ =
        ParseRetryAfter(std::string_view(retry_after->value().data(), retry_after->value().size()));
  }
  if (http_status_ != 200) {
    // An error answer has a small, complete body: read it whole, within the request deadline.
    error_parser_.emplace(std::move(*header_parser_));
    error_parser_->body_limit(state_->options().max_response_bytes);
    header_parser_.reset();
    connection_->WithStream([this](auto& stream) {
      http::async_read(
          stream, connection_->buffer(), *error_parser_,
          beast::bind_front_handler(&ApiServerWatchStream::OnErrorBody, shared_from_this()));
    });
    return;
  }
  body_parser_.emplace(std::move(*header_parser_));
  body_parser_->body_limit(kUnlimitedBody);
  header_parser_.reset();
  // From here on silence, not the request deadline, is what ends a watch.
  connection_->tcp().expires_never();
  streaming_ = true;
  last_bytes_ = std::chrono::steady_clock::now();
  ArmWatchdog(last_bytes_ + state_->options().watch_idle_timeout);
  connection_->buffer().reserve(kSocketReadBytes);
  read_buffer_.resize(kWatchReadBytes);
  // The watch is open: an empty piece says so before any event arrives.
  if (aborted_ || !on_bytes_ || cancelled_.load(std::memory_order_acquire) || state_->closed()) {
    return;
  }
  on_bytes_(std::string_view());
  // on_bytes may have cancelled the watch; its Abort() is queued behind us.
  if (cancelled_.load(std::memory_order_acquire)) return;
  ReadBody();
}

void ApiServerWatchStream::ReadBody() {
  auto& body = body_parser_->get().body();
  body.data = read_buffer_.data();
  body.size = read_buffer_.size();
  body.more = true;
  // read_some, not read: deliver each piece now rather than when the buffer is full.
  connection_->WithStream([this](auto& stream) {
    http::async_read_some(
        stream, connection_->buffer(), *body_parser_,
        beast::bind_front_handler(&ApiServerWatchStream::OnBody, shared_from_this()));
  });
}

void ApiServerWatchStream::OnBody(beast::error_code ec, std::size_t) {
  if (aborted_) return;
  const std::size_t got = read_buffer_.size() - body_parser_->get().body().size;
  if (got > 0) {
    last_bytes_ = std::chrono::steady_clock::now();
    bytes_delivered_ += got;
    if (cancelled_.load(std::memory_order_acquire) || state_->closed()) return;
    on_bytes_(std::string_view(read_buffer_.data(), got));
    // on_bytes may have cancelled the watch; its Abort() is queued behind us.
    if (cancelled_.load(std::memory_order_acquire)) return;
  }
  if (ec == http::error::need_buffer) ec = {};
  if (ec) return OnTransportError(ec, "reading the stream");
  if (body_parser_->is_done()) {
    watchdog_.cancel();
    return Finish(absl::OkStatus());
  }
  ReadBody();
}

void ApiServerWatchStream::OnErrorBody(beast::error_code ec, std::size_t) {
  if (ec) return OnTransportError(ec, "reading the error response");
  HttpResult result;
  result.http_status = http_status_;
  result.retry_after = retry_after_;
  result.body = std::move(error_parser_->get().body());
  if (absl::StatusOr<core::KubeStatus> kube = core::ParseKubeStatus(result.body); kube.ok()) {
    result.kube_status = *std::move(kube);
  }
  result.status = state_->HttpError(request_description_, http_status_, reason_, result.kube_status,
                                    result.body);
  if (http_status_ == 401) state_->config().credentials->Invalidate(credentials_);
  FinishWith(std::move(result));
}

void ApiServerWatchStream::ArmWatchdog(SteadyTime at) {
  watchdog_.expires_at(at);
  watchdog_.async_wait(
      beast::bind_front_handler(&ApiServerWatchStream::OnWatchdog, shared_from_this()));
}

void ApiServerWatchStream::OnWatchdog(beast::error_code ec) {
  if (ec || aborted_ || !on_end_) return;
  const SteadyTime expiry = last_bytes_ + state_->options().watch_idle_timeout;
  if (std::chrono::steady_clock::now() < expiry) return ArmWatchdog(expiry);
  stalled_ = true;
  connection_->tcp().close();
}

void ApiServerWatchStream::OnTransportError(beast::error_code ec, std::string_view stage) {
  if (aborted_) return;
  watchdog_.cancel();
  if (stalled_) {
    return Finish(absl::DeadlineExceededError(fmt::format(
        "{}: the watch stream stalled: no bytes for {} (watch idle timeout; with bookmarks "
        "the apiserver sends something about every minute)",
        request_description_, FormatSeconds(state_->options().watch_idle_timeout))));
  }
  if (ec == beast::error::timeout) {
    return Finish(absl::DeadlineExceededError(
        fmt::format("{}: timed out after {} (request timeout) while {}", request_description_,
                    FormatSeconds(state_->options().request_timeout), stage)));
  }
  if (streaming_ && IsConnectionLoss(ec)) {
    // The body was not finished (no last chunk): the server or the network cut the stream,
    // maybe in the middle of an event. Not a normal end: the caller must resume.
    return Finish(absl::UnavailableError(
        fmt::format("{}: the watch stream was cut before its end (after {} bytes): {}",
                    request_description_, bytes_delivered_, ec.message())));
  }
  Finish(absl::UnavailableError(fmt::format("{}: the connection failed while {}: {}",
                                            request_description_, stage, ec.message())));
}

void ApiServerWatchStream::Finish(absl::Status status) {
  HttpResult result;
  result.http_status = http_status_;
  result.retry_after = retry_after_;
  result.status = std::move(status);
  FinishWith(std::move(result));
}

void ApiServerWatchStream::FinishWith(HttpResult result) {
  if (!on_end_) return;
  state_->Unregister(id_);
  watchdog_.cancel();
  ApiServerClient::EndCallback on_end = std::move(on_end_);
  on_end_ = nullptr;
  on_bytes_ = nullptr;
  // Closed, not destroyed: when Abort() ends the watch a read is still pending on the stream,
  // and the stream must outlive it. The connection goes with this object, which that read's
  // handler keeps alive.
  if (connection_) connection_->Close();
  if (cancelled_.load(std::memory_order_acquire) || state_->closed()) return;
  on_end(std::move(result));
}

}  // namespace informerd::daemon
