#include "daemon/kube/connection_opener.h"

#include <boost/asio/ssl/stream_base.hpp>
#include <utility>

#include "daemon/kube/client_shared_state.h"
#include "daemon/kube/tls_context.h"
#include "fmt/format.h"

namespace informerd::daemon::client_internal {

ConnectionOpener::ConnectionOpener(std::shared_ptr<ApiServerClient::SharedState> state,
                                   std::unique_ptr<Connection> connection, SteadyTime deadline,
                                   std::string request, Done done)
    : state_(std::move(state)),
      connection_(std::move(connection)),
      resolver_(state_->strand()),
      deadline_timer_(state_->strand()),
      deadline_(deadline),
      request_(std::move(request)),
      done_(std::move(done)) {}

void ConnectionOpener::Run() {
  if (beast::ssl_stream<beast::tcp_stream>* tls = connection_->tls()) {
    absl::Status prepared = PrepareTlsConnection(tls->native_handle(), state_->verify_name(),
                                                 state_->config().tls.insecure_skip_tls_verify);
    if (!prepared.ok()) return Finish(prepared);
  }
  // The resolver has no deadline of its own; this timer gives it the request's.
  deadline_timer_.expires_at(deadline_);
  deadline_timer_.async_wait(
      beast::bind_front_handler(&ConnectionOpener::OnResolveDeadline, shared_from_this()));
  const ServerUrl& server = state_->config().server;
  resolver_.async_resolve(
      server.host, std::to_string(server.port),
      beast::bind_front_handler(&ConnectionOpener::OnResolve, shared_from_this()));
}

void ConnectionOpener::Abort() {
  aborted_ = true;
  resolver_.cancel();
  deadline_timer_.cancel();
  connection_->tcp().close();
}

void ConnectionOpener::OnResolveDeadline(beast::error_code ec) {
  if (ec) return;  // Cancelled: resolution finished first.
  resolve_timed_out_ = true;
  resolver_.cancel();
}

void ConnectionOpener::OnResolve(beast::error_code ec, tcp::resolver::results_type results) {
  deadline_timer_.cancel();
  if (aborted_) return Finish(absl::CancelledError(fmt::format("{}: cancelled", request_)));
  if (resolve_timed_out_) return Finish(TimedOut("resolving the server's address"));
  if (ec) return Fail(ec, fmt::format("resolving {}", state_->config().server.host));
  connection_->tcp().expires_at(deadline_);
  connection_->tcp().async_connect(
      results, beast::bind_front_handler(&ConnectionOpener::OnConnect, shared_from_this()));
}

void ConnectionOpener::OnConnect(beast::error_code ec, const tcp::endpoint&) {
  if (ec) return Fail(ec, fmt::format("connecting to {}", state_->config().server.Authority()));
  beast::error_code ignored;
  // Requests are small and latency matters more than packet count.
  connection_->tcp().socket().set_option(tcp::no_delay(true), ignored);
  beast::ssl_stream<beast::tcp_stream>* tls = connection_->tls();
  if (tls == nullptr) return Finish(absl::OkStatus());
  connection_->tcp().expires_at(deadline_);
  tls->async_handshake(
      asio::ssl::stream_base::client,
      beast::bind_front_handler(&ConnectionOpener::OnHandshake, shared_from_this()));
}

void ConnectionOpener::OnHandshake(beast::error_code ec) {
  if (ec && ec != beast::error::timeout && !aborted_) {
    return Finish(absl::UnavailableError(
        fmt::format("{}: {}", request_,
                    DescribeTlsHandshakeError(ec, connection_->tls()->native_handle(),
                                              state_->config().server.Authority()))));
  }
  if (ec) return Fail(ec, "the TLS handshake");
  Finish(absl::OkStatus());
}

absl::Status ConnectionOpener::TimedOut(std::string_view stage) const {
  return absl::DeadlineExceededError(
      fmt::format("{}: timed out after {} (request timeout) while {}", request_,
                  FormatSeconds(state_->options().request_timeout), stage));
}

void ConnectionOpener::Fail(beast::error_code ec, const std::string& stage) {
  if (aborted_ || ec == asio::error::operation_aborted) {
    return Finish(absl::CancelledError(fmt::format("{}: cancelled", request_)));
  }
  if (ec == beast::error::timeout) return Finish(TimedOut(stage));
  Finish(absl::UnavailableError(fmt::format("{}: {} failed: {}", request_, stage, ec.message())));
}

void ConnectionOpener::Finish(absl::Status status) {
  if (!done_) return;
  Done done = std::move(done_);
  done_ = nullptr;
  if (!status.ok()) {
    connection_->Close();
    return done(std::move(status), nullptr);
  }
  done(absl::OkStatus(), std::move(connection_));
}

}  // namespace informerd::daemon::client_internal
