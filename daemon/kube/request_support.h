// The small pieces that a Get() and a Watch() of the apiserver client share: the Boost names and
// types the client's files use, the read sizes, the request line and headers, the checks on a
// request target, Retry-After parsing, which transport errors mean a lost connection, and how a
// duration reads in an error message. Internal to //daemon/kube:apiserver_client.
//
// Threads: pure functions and constants; MakeRequest reads the client's immutable settings, so
// any thread may call them (in practice they run on the client's strand).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/credentials.h"

namespace informerd::daemon::client_internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using SteadyTime = std::chrono::steady_clock::time_point;
using CredentialsPtr = std::shared_ptr<const Credentials>;

// How much one socket read may take while a body is read. Beast reads into the connection's
// flat_buffer at most its spare capacity (and at least 512 bytes); a buffer left at its first
// size makes every read 512 bytes, so a 100 MB LIST took 200,000 reads, each with a timer re-arm,
// and system calls were most of the client's CPU time.
constexpr std::size_t kSocketReadBytes = 64 * 1024;

// "5s" for whole seconds, else "1500ms": a timeout as error messages name it.
std::string FormatSeconds(std::chrono::milliseconds duration);

// Retry-After as delta-seconds, which is what the apiserver and its priority-and-fairness filter
// send. An HTTP-date or garbage counts as absent.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value);

// Requests are built from our own code's paths; a path that could not be a request target is a
// bug upstream, reported as such rather than sent (a CR or LF would split the request).
absl::Status CheckTarget(const std::string& request, const std::string& path_and_query);

// Whether `ec` means "the peer went away", as opposed to a local cancellation or a timeout.
bool IsConnectionLoss(const beast::error_code& ec);

// GET server.path_prefix + `path_and_query`, keep-alive, with Host, User-Agent, Accept (empty:
// application/json) and the bearer token of `credentials` when there is one.
http::request<http::empty_body> MakeRequest(const ApiServerClient::SharedState& state,
                                            const std::string& path_and_query,
                                            const std::string& accept,
                                            const Credentials& credentials);

}  // namespace informerd::daemon::client_internal
