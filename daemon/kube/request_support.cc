#include "daemon/kube/request_support.h"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <cctype>

#include "daemon/kube/client_shared_state.h"
#include "fmt/format.h"

namespace informerd::daemon::client_internal {
namespace {

constexpr char kDefaultAccept[] = "application/json";

}  // namespace

std::string FormatSeconds(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return fmt::format("{}s", duration.count() / 1000);
  return fmt::format("{}ms", duration.count());
}

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty() || value.size() > 9) return std::nullopt;
  int seconds = 0;
  for (char c : value) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    seconds = seconds * 10 + (c - '0');
  }
  return std::chrono::seconds(seconds);
}

absl::Status CheckTarget(const std::string& request, const std::string& path_and_query) {
  if (path_and_query.empty() || path_and_query.front() != '/') {
    return absl::InvalidArgumentError(fmt::format("{}: the path must start with '/'", request));
  }
  for (char c : path_and_query) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: the path contains a space or control character (not URL-encoded?)", request));
    }
  }
  return absl::OkStatus();
}

bool IsConnectionLoss(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::connection_aborted || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated || ec == http::error::end_of_stream ||
         ec == http::error::partial_message;
}

http::request<http::empty_body> MakeRequest(const ApiServerClient::SharedState& state,
                                            const std::string& path_and_query,
                                            const std::string& accept,
                                            const Credentials& credentials) {
  http::request<http::empty_body> request(http::verb::get,
                                          state.config().server.path_prefix + path_and_query, 11);
  request.set(http::field::host, state.config().server.Authority());
  request.set(http::field::user_agent, state.options().user_agent);
  request.set(http::field::accept, accept.empty() ? kDefaultAccept : accept);
  if (!credentials.bearer_token.empty()) {
    request.set(http::field::authorization, "Bearer " + credentials.bearer_token);
  }
  request.keep_alive(true);
  return request;
}

}  // namespace informerd::daemon::client_internal
