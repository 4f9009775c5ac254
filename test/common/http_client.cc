#include "test/common/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::test {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

struct HttpConnection::State {
  boost::asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  std::chrono::seconds timeout{10};
  std::string host;
};

HttpConnection::HttpConnection(std::unique_ptr<State> state) : state_(std::move(state)) {}
HttpConnection::HttpConnection(HttpConnection&&) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&&) noexcept = default;
HttpConnection::~HttpConnection() = default;

namespace {

// Runs one asynchronous operation to completion: the stream's expiry bounds it (Beast's timeouts
// apply only to asynchronous operations).
template <typename Start>
beast::error_code RunOne(HttpConnection::State& state, Start start);

}  // namespace

absl::StatusOr<HttpConnection> HttpConnection::Open(const std::string& address,
                                                    std::chrono::seconds timeout) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("not host:port: " + address);
  auto state = std::make_unique<State>();
  state->timeout = timeout;
  state->host = address;
  beast::error_code ec;
  tcp::resolver resolver(state->io);
  const auto results = resolver.resolve(address.substr(0, colon), address.substr(colon + 1), ec);
  if (ec) return absl::UnavailableError(fmt::format("resolve {}: {}", address, ec.message()));
  ec = RunOne(*state, [&](auto done) {
    state->stream.async_connect(results,
                                [done](beast::error_code e, const tcp::endpoint&) { done(e); });
  });
  if (ec) return absl::UnavailableError(fmt::format("connect {}: {}", address, ec.message()));
  return HttpConnection(std::move(state));
}

namespace {

template <typename Start>
beast::error_code RunOne(HttpConnection::State& state, Start start) {
  beast::error_code result = boost::asio::error::would_block;
  state.stream.expires_after(state.timeout);
  start([&result](beast::error_code ec) { result = ec; });
  state.io.restart();
  state.io.run();
  return result;
}

absl::StatusOr<HttpReply> ReadReply(HttpConnection::State& state) {
  http::response<http::string_body> response;
  const beast::error_code ec = RunOne(state, [&](auto done) {
    http::async_read(state.stream, state.buffer, response,
                     [done](beast::error_code e, std::size_t) { done(e); });
  });
  if (ec) return absl::UnavailableError(fmt::format("read: {}", ec.message()));
  HttpReply reply;
  reply.status = static_cast<int>(response.result_int());
  reply.content_type = std::string(response[http::field::content_type]);
  reply.body = std::move(response.body());
  reply.close = !response.keep_alive();
  return reply;
}

beast::error_code WriteBytes(HttpConnection::State& state, const std::string& bytes) {
  return RunOne(state, [&](auto done) {
    boost::asio::async_write(state.stream, boost::asio::buffer(bytes),
                             [done](beast::error_code e, std::size_t) { done(e); });
  });
}

}  // namespace

absl::StatusOr<HttpReply> HttpConnection::Request(const std::string& method,
                                                  const std::string& target, bool keep_alive) {
  http::request<http::empty_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, state_->host);
  request.keep_alive(keep_alive);
  std::ostringstream serialized;
  serialized << request;
  if (beast::error_code ec = WriteBytes(*state_, serialized.str())) {
    return absl::UnavailableError(fmt::format("write: {}", ec.message()));
  }
  if (method == "HEAD") {
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // a HEAD response has no body, whatever Content-Length says
    const beast::error_code ec = RunOne(*state_, [&](auto done) {
      http::async_read(state_->stream, state_->buffer, parser,
                       [done](beast::error_code e, std::size_t) { done(e); });
    });
    if (ec) return absl::UnavailableError(fmt::format("read: {}", ec.message()));
    HttpReply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    reply.content_type = std::string(parser.get()[http::field::content_type]);
    reply.body = std::string(parser.get()[http::field::content_length]);  // the announced length
    reply.close = !parser.get().keep_alive();
    return reply;
  }
  return ReadReply(*state_);
}

absl::StatusOr<HttpReply> HttpConnection::SendRaw(const std::string& bytes) {
  if (beast::error_code ec = WriteBytes(*state_, bytes)) {
    return absl::UnavailableError(fmt::format("write: {}", ec.message()));
  }
  return ReadReply(*state_);
}

bool HttpConnection::ClosedByServer() {
  char byte;
  const beast::error_code ec = RunOne(*state_, [&](auto done) {
    state_->stream.async_read_some(boost::asio::buffer(&byte, 1),
                                   [done](beast::error_code e, std::size_t) { done(e); });
  });
  return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
}

absl::StatusOr<HttpReply> HttpGet(const std::string& address, const std::string& target) {
  auto connection = HttpConnection::Open(address);
  if (!connection.ok()) return connection.status();
  return connection->Request("GET", target, /*keep_alive=*/false);
}

}  // namespace informerd::test
