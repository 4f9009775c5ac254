#include "daemon/admin/http_server.h"

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

// Requests to this server are a request line and a few headers; nothing needs more.
constexpr std::uint32_t kMaxHeaderBytes = 8 << 10;
constexpr std::uint64_t kMaxBodyBytes = 8 << 10;
// Closing a connection waits this long, reading at most this much, for the client to close.
constexpr std::chrono::seconds kDrainTimeout{2};
constexpr std::size_t kMaxDrainBytes = 1 << 20;
// A request's first bytes are read this many at a time (then the parser reads on).
constexpr std::size_t kReadChunk = 4096;

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), endpoint.port())
                         : fmt::format("{}:{}", address.to_string(), endpoint.port());
}

// Whether the peer is this host: 127.0.0.0/8, ::1, or an IPv4-mapped loopback address (a dual-stack
// listener on [::] sees IPv4 clients as ::ffff:127.0.0.1).
bool IsLoopback(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

}  // namespace

class HttpSession;

class HttpServer::Impl {
 public:
  Impl(HttpHandler handler, std::shared_ptr<spdlog::logger> logger, HttpServerOptions options)
      : handler_(std::move(handler)),
        logger_(std::move(logger)),
        options_(std::move(options)),
        counters_(options_.counters ? options_.counters : &own_counters_),
        io_(std::make_unique<asio::io_context>()),
        acceptor_(std::make_unique<tcp::acceptor>(*io_)),
        accept_retry_(std::make_unique<asio::steady_timer>(*io_)) {
    counters_->max_connections = options_.max_connections;
  }

  ~Impl() { Stop(); }

  absl::Status Bind(const std::string& listen_address);
  const tcp::endpoint& endpoint() const { return endpoint_; }
  void Run() {
    DoAccept();
    thread_ = std::thread([this] { io_->run(); });
  }
  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    io_->stop();
    if (thread_.joinable()) thread_.join();
    // The thread has ended: from here on this thread is the server's. Sessions destroyed below
    // must not make room for a waiting connection.
    stopping_ = true;
    // Destroying the io_context destroys the pending handlers, and with them the sessions they
    // hold: every connection is closed now, not when the server object goes.
    pending_.reset();
    accept_retry_.reset();
    acceptor_.reset();
    io_.reset();
  }

  // The server's thread only; what sessions use.
  HttpResponse Handle(const HttpRequest& request) {
    try {
      return handler_(request);
    } catch (const std::exception& e) {
      logger_->error("{} {}: {}", request.method, request.target, e.what());
      return HttpResponse{500, "text/plain; charset=utf-8", "internal error\n"};
    }
  }
  const HttpServerOptions& options() const { return options_; }
  const std::shared_ptr<spdlog::logger>& logger() const { return logger_; }
  HttpServerCounters& counters() { return *counters_; }

  // The server's thread only. A session counts against max_connections from Register until
  // Release (when its socket is closed, which may be before the session object goes).
  void Register(HttpSession* session) {
    sessions_.push_back(session);
    counters_->open = sessions_.size();
  }
  void Release(HttpSession* session);
  // A session could now be closed for a newcomer (it waits for its client, or is closing), or
  // one has gone: let a connection waiting for room in.
  void MakeRoom();

 private:
  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void StartSession(tcp::socket socket);
  // Closes the session that has waited longest for its client (HttpServer's header comment);
  // false when every session is being answered.
  bool EvictOne();

  // Declared before io_: sessions, destroyed with io_'s pending handlers, still use them.
  const HttpHandler handler_;
  const std::shared_ptr<spdlog::logger> logger_;
  const HttpServerOptions options_;
  HttpServerCounters own_counters_;  // when the options give none
  HttpServerCounters* const counters_;
  std::mutex stop_mu_;
  bool stopped_ = false;   // guarded by stop_mu_
  bool stopping_ = false;  // the server's thread, or Stop() once that has ended

  // The server's thread only. Open sessions, in the order they connected.
  std::list<HttpSession*> sessions_;
  // An accept is in flight.
  bool accepting_ = false;
  // MakeRoom is running (closing a session calls it again).
  bool making_room_ = false;
  // Reset by Stop, in this order's reverse.
  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> accept_retry_;
  // A connection accepted while every session was being answered: it waits for room, and no
  // other is accepted meanwhile (the rest wait in the listen backlog).
  std::optional<tcp::socket> pending_;
  tcp::endpoint endpoint_;
  std::thread thread_;
};

namespace {

// Where a connection is, for choosing which to close when a new one needs room.
enum class Phase {
  kClosing,    // answered and closing: waiting for the client's close
  kIdle,       // waiting for the first byte of a request
  kReading,    // reading a request
  kAnswering,  // asking the handler, writing the response: never closed for a newcomer
};

}  // namespace

// One connection: read a request, answer it, and again while the client keeps it alive.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    server_.Register(this);
  }
  ~HttpSession() {
    if (!released_) server_.Release(this);
  }

  void Start() { WaitForRequest(); }

  Phase phase() const { return phase_; }
  std::chrono::steady_clock::time_point since() const { return since_; }

  // Closed to make room for a new connection.
  void Evict() {
    ++server_.counters().evicted;
    server_.logger()->debug("{}: closed a connection waiting for its client to make room",
                            server_.options().name);
    CloseNow();
  }

  // The server's Release has been called for it.
  void MarkReleased() { released_ = true; }

 private:
  void SetPhase(Phase phase) {
    phase_ = phase;
    since_ = std::chrono::steady_clock::now();
  }

  // Between requests: wait for the next one's first byte (the first request's within
  // header_timeout, a kept-alive connection's within idle_timeout).
  void WaitForRequest() {
    SetPhase(Phase::kIdle);
    if (buffer_.size() > 0) return ReadRequest();  // pipelined: already here
    stream_.expires_after(first_request_ ? server_.options().header_timeout
                                         : server_.options().idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        beast::bind_front_handler(&HttpSession::OnFirstBytes, shared_from_this()));
    server_.MakeRoom();  // last: it may close this session
  }

  void OnFirstBytes(beast::error_code ec, std::size_t bytes) {
    if (ec == beast::error::timeout) {
      if (first_request_) {
        ++server_.counters().header_timeouts;
      } else {
        ++server_.counters().idle_timeouts;
      }
    }
    if (ec) return CloseNow();
    buffer_.commit(bytes);
    ReadRequest();
  }

  // The request, whole, within header_timeout of its first byte.
  void ReadRequest() {
    SetPhase(Phase::kReading);
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    stream_.expires_after(server_.options().header_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
    server_.MakeRoom();  // last: it may close this session
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == beast::error::timeout) {
      ++server_.counters().header_timeouts;
      server_.logger()->debug("{}: closed a connection that sent no whole request within {} ms",
                              server_.options().name, server_.options().header_timeout.count());
      return CloseNow();
    }
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      // Not HTTP, or more than we accept: say so, and close (the rest of the bytes cannot be
      // framed).
      SetPhase(Phase::kAnswering);
      server_.logger()->debug("bad HTTP request: {}", ec.message());
      http::response<http::string_body> response{http::status::bad_request, 11};
      response.set(http::field::content_type, "text/plain; charset=utf-8");
      response.body() = fmt::format("bad request: {}\n", ec.message());
      response.keep_alive(false);
      response.prepare_payload();
      return Write(std::move(response));
    }
    if (ec) return CloseNow();

    SetPhase(Phase::kAnswering);
    first_request_ = false;
    const http::request<http::string_body>& request = parser_->get();
    const unsigned version = request.version();
    const bool keep_alive = request.keep_alive();
    const bool head = request.method() == http::verb::head;
    HttpResponse answer;
    if (request.method() != http::verb::get && !head) {
      answer.status = 405;
      answer.body = "only GET and HEAD\n";
    } else {
      HttpRequest asked{std::string(request.method_string()), std::string(request.target())};
      beast::error_code peer_error;
      const tcp::endpoint peer = stream_.socket().remote_endpoint(peer_error);
      asked.from_loopback = !peer_error && IsLoopback(peer.address());
      answer = server_.Handle(asked);
    }
    const auto status = static_cast<http::status>(answer.status);
    if (head) {
      http::response<http::empty_body> response{status, version};
      SetHeaders(response, answer, keep_alive);
      response.content_length(answer.body.size());
      return Write(std::move(response));
    }
    http::response<http::string_body> response{status, version};
    SetHeaders(response, answer, keep_alive);
    response.body() = std::move(answer.body);
    response.prepare_payload();
    Write(std::move(response));
  }

  template <class Body>
  static void SetHeaders(http::response<Body>& response, const HttpResponse& answer,
                         bool keep_alive) {
    response.set(http::field::server, "informerd");
    response.set(http::field::content_type, answer.content_type);
    if (answer.status == 405) response.set(http::field::allow, "GET, HEAD");
    response.keep_alive(keep_alive);
  }

  template <class Body>
  void Write(http::response<Body>&& message) {
    const bool close = message.need_eof();
    auto response = std::make_shared<http::response<Body>>(std::move(message));
    response_ = response;
    stream_.expires_after(server_.options().write_timeout);
    http::async_write(stream_, *response,
                      beast::bind_front_handler(&HttpSession::OnWrite, shared_from_this(), close));
  }

  void OnWrite(bool close, beast::error_code ec, std::size_t /*bytes*/) {
    response_.reset();
    if (ec == beast::error::timeout) {
      ++server_.counters().write_timeouts;
      server_.logger()->debug("{}: closed a connection that did not read its response within {} ms",
                              server_.options().name, server_.options().write_timeout.count());
    }
    if (ec) return CloseNow();
    if (close) return CloseGracefully();
    WaitForRequest();
  }

  // After a response that ends the connection: send FIN, then read and discard what the client
  // still sends until it closes too (bounded in time and bytes). Closing with unread bytes would
  // make the kernel reset the connection, and the client could lose the response (a 400 for
  // oversized headers, say) before reading it.
  void CloseGracefully() {
    SetPhase(Phase::kClosing);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kDrainTimeout);
    Drain(0);
    server_.MakeRoom();  // last: it may close this session
  }

  void Drain(std::size_t drained) {
    if (drained > kMaxDrainBytes) return CloseNow();
    stream_.async_read_some(
        asio::buffer(drain_buffer_),
        [self = shared_from_this(), drained](beast::error_code ec, std::size_t bytes) {
          if (ec) return self->CloseNow();
          self->Drain(drained + bytes);
        });
  }

  // Closes the socket now (pending operations end with operation_aborted) and gives its place
  // back to the server. Idempotent.
  void CloseNow() {
    if (released_) return;
    stream_.close();
    server_.Release(this);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The response being written (its type depends on the method).
  std::shared_ptr<void> response_;
  std::array<char, 4096> drain_buffer_;
  Phase phase_ = Phase::kIdle;
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
  bool first_request_ = true;
  bool released_ = false;
};

void HttpServer::Impl::Release(HttpSession* session) {
  session->MarkReleased();
  sessions_.remove(session);
  counters_->open = sessions_.size();
  MakeRoom();
}

void HttpServer::Impl::MakeRoom() {
  if (stopping_ || making_room_ || !pending_) return;
  making_room_ = true;
  const bool room = sessions_.size() < options_.max_connections || EvictOne();
  making_room_ = false;
  if (!room) return;
  tcp::socket socket = std::move(*pending_);
  pending_.reset();
  StartSession(std::move(socket));
  DoAccept();
}

bool HttpServer::Impl::EvictOne() {
  HttpSession* chosen = nullptr;
  for (HttpSession* session : sessions_) {
    if (session->phase() == Phase::kAnswering) continue;
    if (chosen == nullptr || session->phase() < chosen->phase() ||
        (session->phase() == chosen->phase() && session->since() < chosen->since())) {
      chosen = session;
    }
  }
  if (chosen == nullptr) return false;
  chosen->Evict();
  return true;
}

void HttpServer::Impl::StartSession(tcp::socket socket) {
  std::make_shared<HttpSession>(std::move(socket), *this)->Start();
}

absl::Status HttpServer::Impl::Bind(const std::string& listen_address) {
  const auto fail = [&](const std::string& why) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {} for {} ({}); choose another with {}", listen_address,
                    options_.name, why, options_.flag));
  };
  const auto colon = listen_address.rfind(':');
  if (colon == std::string::npos) return fail("not HOST:PORT");
  std::string host = listen_address.substr(0, colon);
  const std::string port = listen_address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  tcp::resolver resolver(*io_);
  const auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
  if (ec) return fail(ec.message());
  if (results.empty()) return fail("the host resolves to no address");
  const tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) endpoint_ = acceptor_->local_endpoint(ec);
  if (ec) return fail(ec.message());
  return absl::OkStatus();
}

void HttpServer::Impl::DoAccept() {
  if (stopping_ || accepting_ || pending_) return;
  accepting_ = true;
  acceptor_->async_accept(*io_, beast::bind_front_handler(&Impl::OnAccept, this));
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  accepting_ = false;
  if (ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of file descriptors, typically: try again shortly rather than spin.
    logger_->warn("{}: accept failed: {}", options_.name, ec.message());
    accept_retry_->expires_after(std::chrono::milliseconds(100));
    accept_retry_->async_wait([this](beast::error_code timer_ec) {
      if (!timer_ec) DoAccept();
    });
    return;
  }
  ++counters_->accepted;
  if (sessions_.size() >= options_.max_connections && !EvictOne()) {
    // Every connection is being answered: this one waits for the first to finish, and the
    // next ones in the listen backlog.
    ++counters_->waited;
    logger_->debug("{}: {} connections being answered; a new one waits for room", options_.name,
                   sessions_.size());
    pending_.emplace(std::move(socket));
    return;
  }
  StartSession(std::move(socket));
  DoAccept();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& listen_address, HttpHandler handler, std::shared_ptr<spdlog::logger> logger,
    HttpServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(handler), logger, std::move(options));
  if (absl::Status bound = impl->Bind(listen_address); !bound.ok()) return bound;
  impl->Run();
  auto server = std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
  logger->info("{} listening on {}", server->impl_->options().name, server->address_);
  return server;
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)), address_(FormatEndpoint(impl_->endpoint())) {}

HttpServer::~HttpServer() { Stop(); }

HttpServerStats HttpServerCounters::Snapshot() const {
  HttpServerStats stats;
  stats.open = open.load(std::memory_order_relaxed);
  stats.max_connections = max_connections.load(std::memory_order_relaxed);
  stats.accepted = accepted.load(std::memory_order_relaxed);
  stats.evicted = evicted.load(std::memory_order_relaxed);
  stats.waited = waited.load(std::memory_order_relaxed);
  stats.header_timeouts = header_timeouts.load(std::memory_order_relaxed);
  stats.idle_timeouts = idle_timeouts.load(std::memory_order_relaxed);
  stats.write_timeouts = write_timeouts.load(std::memory_order_relaxed);
  return stats;
}

void HttpServer::Stop() { impl_->Stop(); }

HttpServerStats HttpServer::stats() const { return impl_->counters().Snapshot(); }

}  // namespace informerd::daemon
