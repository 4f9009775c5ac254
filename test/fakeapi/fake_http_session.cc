#include "test/fakeapi/fake_http_session.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <type_traits>

#include "fmt/format.h"
#include "test/fakeapi/k8s_status.h"

namespace informerd::fakeapi {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// Requests read ahead of the one being answered (pipelining); reading pauses beyond this.
constexpr std::size_t kMaxQueuedRequests = 8;
// One watch write carries at most this much, so a backlog is sent as several chunks.
constexpr std::size_t kMaxBatchEvents = 1024;
constexpr std::size_t kMaxBatchBytes = 4 << 20;
// The fake accepts small requests only (GETs, and reviews' POSTs).
constexpr std::uint64_t kMaxRequestBodyBytes = 1 << 20;

std::string ToString(beast::string_view view) { return std::string(view.data(), view.size()); }

// A watch stream in progress on a session.
struct ActiveWatch {
  std::unique_ptr<WatchFeed> feed;
  std::unique_ptr<OpenWatchToken> open_token;
  std::string error_event;
  std::optional<Fault> fault;
  std::chrono::milliseconds bookmark_interval{0};
  // When timeoutSeconds ends the stream; unset without it.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::size_t chunk_bytes = 0;
  std::size_t events_sent = 0;
  bool bookmark_due = false;
  bool ending = false;   // Write the last chunk next.
  bool stalled = false;  // A stall fault: write nothing more.
};

template <class Stream>
class HttpSession : public Session, public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  template <class... StreamArgs>
  HttpSession(SessionContext context, StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...),
        context_(context),
        bookmark_timer_(stream_.get_executor()),
        timeout_timer_(stream_.get_executor()),
        delay_timer_(stream_.get_executor()) {}

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&HttpSession::OnStart, this->shared_from_this()));
  }

  void Shutdown() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(); });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  // ---- Connection set-up and the request loop.

  void OnStart() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
      stream_.async_handshake(
          ssl::stream_base::server,
          beast::bind_front_handler(&HttpSession::OnHandshake, this->shared_from_this()));
    } else {
      DoRead();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return Close();
    beast::get_lowest_layer(stream_).expires_never();
    DoRead();
  }

  void DoRead() {
    if (closed_ || reading_ || peer_done_ || queue_.size() >= kMaxQueuedRequests) return;
    parser_.emplace();
    parser_->body_limit(kMaxRequestBodyBytes);
    reading_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::OnRead, this->shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (closed_) return;
    if (ec == http::error::end_of_stream) {
      // The client is done sending. Finish an ordinary response first; a stream or a stall
      // would never finish, so it ends here.
      peer_done_ = true;
      if (!busy_ || watch_ || stalled_) Close();
      return;
    }
    if (ec) return Close();
    queue_.push_back(parser_->release());
    DoRead();
    ProcessNext();
  }

  void ProcessNext() {
    if (closed_ || busy_ || queue_.empty()) return;
    http::request<http::string_body> request = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    keep_alive_ = request.keep_alive();
    version_ = request.version();
    HttpRequest api_request;
    api_request.method = ToString(request.method_string());
    api_request.target = ToString(request.target());
    for (const auto& field : request) {
      api_request.headers.emplace_back(ToString(field.name_string()), ToString(field.value()));
    }
    api_request.body = std::move(request.body());
    Reply reply = context_.handler.Handle(api_request);
    std::visit([this](auto& r) { Serve(std::move(r)); }, reply);
    DoRead();
  }

  void FinishResponse() {
    busy_ = false;
    if (!keep_alive_ || (peer_done_ && queue_.empty())) return Close();
    ProcessNext();
    DoRead();
  }

  template <class Body>
  void SetCommonHeaders(http::response<Body>& response) {
    response.set(http::field::content_type, "application/json");
    response.set(http::field::cache_control, "no-cache, private");
    response.keep_alive(keep_alive_);
  }

  // ---- Small responses.

  void Serve(SimpleReply reply) {
    if (reply.delay.count() > 0) {
      // Held back on this connection only; the timer is cancelled if the connection closes.
      const std::chrono::milliseconds delay = reply.delay;
      reply.delay = std::chrono::milliseconds(0);
      delay_timer_.expires_after(delay);
      delay_timer_.async_wait([self = this->shared_from_this(),
                               reply = std::move(reply)](beast::error_code ec) mutable {
        if (ec || self->closed_) return;
        self->Serve(std::move(reply));
      });
      return;
    }
    auto response = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(reply.status), version_);
    SetCommonHeaders(*response);
    for (const auto& [name, value] : reply.headers) response->set(name, value);
    response->body() = std::move(reply.body);
    response->prepare_payload();
    simple_response_ = response;
    http::async_write(stream_, *response,
                      beast::bind_front_handler(&HttpSession::OnResponseWritten,
                                                this->shared_from_this()));
  }

  void OnResponseWritten(beast::error_code ec, std::size_t) {
    simple_response_.reset();
    if (ec) return Close();
    FinishResponse();
  }

  // ---- Gathered bodies (LIST pages, GET).

  void Serve(BodyReply reply) {
    body_ = std::move(reply.body);
    truncate_at_ = reply.truncate_at;
    header_ = std::make_shared<http::response<http::empty_body>>(http::status::ok, version_);
    SetCommonHeaders(*header_);
    header_->content_length(body_.size());
    header_serializer_ = std::make_shared<http::response_serializer<http::empty_body>>(*header_);
    http::async_write_header(stream_, *header_serializer_,
                             beast::bind_front_handler(&HttpSession::OnBodyHeaderWritten,
                                                       this->shared_from_this()));
  }

  void OnBodyHeaderWritten(beast::error_code ec, std::size_t) {
    if (ec) return Close();
    body_buffers_ = body_.Buffers();
    if (truncate_at_) {
      // The truncated-body fault: part of what Content-Length promised, then the TCP close.
      net::async_write(stream_, beast::buffers_prefix(*truncate_at_, body_buffers_),
                       [self = this->shared_from_this()](beast::error_code, std::size_t) {
                         self->Close();
                       });
      return;
    }
    net::async_write(stream_, body_buffers_,
                     beast::bind_front_handler(&HttpSession::OnBodyWritten,
                                               this->shared_from_this()));
  }

  void OnBodyWritten(beast::error_code ec, std::size_t) {
    body_.clear();
    body_buffers_.clear();
    header_serializer_.reset();
    header_.reset();
    if (ec) return Close();
    FinishResponse();
  }

  // ---- Stall and drop.

  void Serve(StallReply reply) {
    stalled_ = true;
    header_ = std::make_shared<http::response<http::empty_body>>(http::status::ok, version_);
    SetCommonHeaders(*header_);
    if (reply.chunked) {
      header_->chunked(true);
    } else {
      header_->content_length(1 << 20);
    }
    header_serializer_ = std::make_shared<http::response_serializer<http::empty_body>>(*header_);
    // After the header: nothing. The pending read notices when the client gives up.
    http::async_write_header(stream_, *header_serializer_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               if (ec) self->Close();
                             });
  }

  void Serve(DropReply) { Close(); }

  // ---- Watch streams.

  void Serve(WatchReply reply) {
    watch_ = std::make_unique<ActiveWatch>();
    ++watch_generation_;
    ActiveWatch& w = *watch_;
    w.feed = std::move(reply.feed);
    w.open_token = std::make_unique<OpenWatchToken>(context_.log, reply.resource);
    w.error_event = std::move(reply.error_event);
    w.fault = std::move(reply.fault);
    w.bookmark_interval = reply.bookmark_interval;
    w.chunk_bytes = reply.chunk_bytes;
    header_ = std::make_shared<http::response<http::empty_body>>(http::status::ok, version_);
    SetCommonHeaders(*header_);
    header_->chunked(true);
    header_serializer_ = std::make_shared<http::response_serializer<http::empty_body>>(*header_);
    writing_ = true;
    http::async_write_header(
        stream_, *header_serializer_,
        beast::bind_front_handler(&HttpSession::OnWatchHeaderWritten, this->shared_from_this(),
                                  reply.timeout));
  }

  void OnWatchHeaderWritten(std::chrono::milliseconds timeout, beast::error_code ec,
                            std::size_t) {
    writing_ = false;
    if (ec) return Close();
    if (closed_ || !watch_) return;
    ActiveWatch& w = *watch_;
    if (!w.error_event.empty()) {
      chain_.clear();
      chain_.AppendCopy(w.error_event);
      w.ending = true;
      return WriteChain();
    }
    if (w.feed) {
      w.feed->SetWaker([weak = this->weak_from_this(), executor = stream_.get_executor()] {
        net::post(executor, [weak] {
          if (auto self = weak.lock()) self->Pump();
        });
      });
    }
    if (timeout.count() > 0) {
      w.deadline = std::chrono::steady_clock::now() + timeout;
      timeout_timer_.expires_after(timeout);
      timeout_timer_.async_wait(beast::bind_front_handler(
          &HttpSession::OnWatchTimeout, this->shared_from_this(), watch_generation_));
    }
    ArmBookmarkTimer();
    Pump();
  }

  // Bookmarks come every bookmark_interval and, on a watch with timeoutSeconds, about once a
  // second from 2 s before its deadline, as the apiserver's cacher sends them
  // (cacheWatcher.nextBookmarkTime): a client about to watch again gets a recent resourceVersion.
  void ArmBookmarkTimer() {
    if (!watch_ || watch_->bookmark_interval.count() <= 0) return;
    using Clock = std::chrono::steady_clock;
    Clock::duration delay = watch_->bookmark_interval;
    if (watch_->deadline) {
      const Clock::time_point now = Clock::now();
      const Clock::time_point before_deadline = *watch_->deadline - std::chrono::seconds(2);
      delay = std::min(delay, before_deadline > now ? before_deadline - now
                                                    : Clock::duration(std::chrono::seconds(1)));
    }
    bookmark_timer_.expires_after(delay);
    bookmark_timer_.async_wait(beast::bind_front_handler(
        &HttpSession::OnBookmarkTimer, this->shared_from_this(), watch_generation_));
  }

  // Timer handlers carry the generation of the watch they were armed for: a handler already
  // queued when its watch ended must not act on the connection's next watch.
  bool IsCurrentWatch(std::uint64_t generation) const {
    return !closed_ && watch_ && generation == watch_generation_;
  }

  void OnBookmarkTimer(std::uint64_t generation, beast::error_code ec) {
    if (ec || !IsCurrentWatch(generation) || watch_->stalled) return;
    watch_->bookmark_due = true;
    Pump();
    ArmBookmarkTimer();
  }

  void OnWatchTimeout(std::uint64_t generation, beast::error_code ec) {
    // A stalled stream stays stalled: the client's watchdog has to notice it.
    if (ec || !IsCurrentWatch(generation) || watch_->stalled) return;
    watch_->ending = true;
    Pump();
  }

  // Sends whatever the watch has next; one write in flight at a time.
  void Pump() {
    if (closed_ || !watch_ || writing_) return;
    ActiveWatch& w = *watch_;
    if (w.stalled) return;
    if (w.ending) return EndStream();
    if (w.fault && w.events_sent >= w.fault->after_events) return ExecuteFault();
    if (!w.feed) return;
    chain_.clear();
    while (chain_.empty()) {
      const std::size_t max_events =
          w.fault ? w.fault->after_events - w.events_sent : kMaxBatchEvents;
      w.events_sent += w.feed->AppendEvents(chain_, max_events, kMaxBatchBytes);
      if (w.bookmark_due && w.feed->AppendBookmarkIfIdle(chain_)) w.bookmark_due = false;
      if (!w.feed->has_queued()) break;
    }
    if (chain_.empty()) {
      if (w.feed->ended()) {
        w.ending = true;
        EndStream();
      }
      return;
    }
    WriteChain();
  }

  void WriteChain() {
    writing_ = true;
    const std::size_t chunk_bytes = watch_ ? watch_->chunk_bytes : 0;
    if (chunk_bytes == 0) {
      if constexpr (!kTls) return WriteChainGathered();
      chain_buffers_ = chain_.Buffers();
      net::async_write(stream_, http::make_chunk(chain_buffers_),
                       beast::bind_front_handler(&HttpSession::OnChunkWritten,
                                                 this->shared_from_this()));
      return;
    }
    // Deliberately small chunks: events straddle chunk boundaries.
    const std::string bytes = chain_.ToString();
    payload_.clear();
    for (std::size_t at = 0; at < bytes.size(); at += chunk_bytes) {
      const std::size_t n = std::min(chunk_bytes, bytes.size() - at);
      payload_ += fmt::format("{:x}\r\n", n);
      payload_.append(bytes, at, n);
      payload_ += "\r\n";
    }
    net::async_write(stream_, net::buffer(payload_),
                     beast::bind_front_handler(&HttpSession::OnChunkWritten,
                                               this->shared_from_this()));
  }

  // Plain TCP: the chain as one chunk (size line, the pieces, CRLF), sent by sendmsg straight from
  // the shared object bytes, IOV_MAX pieces per call. Asio's composed write would take at most
  // 64 pieces and 64 KiB per call and walk Beast's chunk framing piece by piece, which cost
  // load mode most of its CPU; this costs one system call per socket buffer's worth.
  void WriteChainGathered() {
    chunk_header_ = fmt::format("{:x}\r\n", chain_.size());
    iovecs_.clear();
    iovecs_.push_back(iovec{chunk_header_.data(), chunk_header_.size()});
    for (const net::const_buffer& buffer : chain_.Buffers()) {
      iovecs_.push_back(iovec{const_cast<void*>(buffer.data()), buffer.size()});
    }
    static const char kCrlf[] = "\r\n";
    iovecs_.push_back(iovec{const_cast<char*>(kCrlf), 2});
    iovecs_sent_ = 0;
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().native_non_blocking(true, ec);
    if (ec) return FinishGathered(ec);
    SendGathered();
  }

  void SendGathered() {
    auto& socket = beast::get_lowest_layer(stream_).socket();
    while (iovecs_sent_ < iovecs_.size()) {
      msghdr message{};
      message.msg_iov = iovecs_.data() + iovecs_sent_;
      message.msg_iovlen = std::min<std::size_t>(iovecs_.size() - iovecs_sent_, IOV_MAX);
      const ssize_t sent = ::sendmsg(socket.native_handle(), &message, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          // The socket buffer is full: go on when the client has read some.
          socket.async_wait(tcp::socket::wait_write,
                            [self = this->shared_from_this()](beast::error_code ec) {
                              if (ec) return self->OnChunkWritten(ec, 0);
                              self->SendGathered();
                            });
          return;
        }
        return FinishGathered(beast::error_code(errno, boost::system::system_category()));
      }
      // Step past what was sent; a piece sent in part is trimmed.
      auto left = static_cast<std::size_t>(sent);
      while (left > 0) {
        iovec& piece = iovecs_[iovecs_sent_];
        if (left < piece.iov_len) {
          piece.iov_base = static_cast<char*>(piece.iov_base) + left;
          piece.iov_len -= left;
          break;
        }
        left -= piece.iov_len;
        ++iovecs_sent_;
      }
    }
    FinishGathered({});
  }

  // Completes the write as a handler of its own, so that a long run of batches the socket takes
  // at once does not recurse.
  void FinishGathered(beast::error_code ec) {
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), ec] { self->OnChunkWritten(ec, 0); });
  }

  void OnChunkWritten(beast::error_code ec, std::size_t) {
    writing_ = false;
    chain_.clear();
    chain_buffers_.clear();
    if (ec || close_after_write_) return Close();
    Pump();
  }

  void EndStream() {
    writing_ = true;
    net::async_write(stream_, http::make_chunk_last(),
                     beast::bind_front_handler(&HttpSession::OnLastChunkWritten,
                                               this->shared_from_this()));
  }

  void OnLastChunkWritten(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return Close();
    EndWatch();
    FinishResponse();
  }

  void EndWatch() {
    bookmark_timer_.cancel();
    timeout_timer_.cancel();
    watch_.reset();  // Ends the store subscription; the watch no longer counts as open.
    header_serializer_.reset();
    header_.reset();
  }

  void ExecuteFault() {
    ActiveWatch& w = *watch_;
    const Fault fault = *w.fault;
    w.fault.reset();
    const std::uint64_t revision = w.feed ? w.feed->last_revision() : 0;
    switch (fault.kind) {
      case FaultKind::kWatchErrorEvent: {
        const std::string message =
            !fault.message.empty()
                ? fault.message
                : fmt::format("too old resource version: {} ({})", revision, revision + 1);
        chain_.clear();
        chain_.AppendCopy(
            EncodeErrorEventLine(GenericStatus(fault.status_code, fault.reason, message)));
        w.ending = true;
        return WriteChain();
      }
      case FaultKind::kEndWatch:
        w.ending = true;
        return EndStream();
      case FaultKind::kStall:
        w.stalled = true;
        bookmark_timer_.cancel();
        timeout_timer_.cancel();
        return;
      case FaultKind::kCloseMidChunk: {
        // The size line promises the whole event; half of it is sent, then the TCP close.
        payload_ = SyntheticEventLine(w.feed->type(), EventType::kModified, revision + 1, 0);
        const auto chunk = http::make_chunk(net::buffer(payload_));
        const std::size_t cut = beast::buffer_bytes(chunk) - 2 - payload_.size() / 2;
        writing_ = true;
        close_after_write_ = true;
        net::async_write(stream_, beast::buffers_prefix(cut, chunk),
                         beast::bind_front_handler(&HttpSession::OnChunkWritten,
                                                   this->shared_from_this()));
        return;
      }
      case FaultKind::kCloseMidJson: {
        // A well-formed chunk ending in the middle of an event's JSON, then the TCP close.
        const std::string line =
            SyntheticEventLine(w.feed->type(), EventType::kModified, revision + 1, 0);
        payload_ = line.substr(0, line.size() / 2);
        writing_ = true;
        close_after_write_ = true;
        net::async_write(stream_, http::make_chunk(net::buffer(payload_)),
                         beast::bind_front_handler(&HttpSession::OnChunkWritten,
                                                   this->shared_from_this()));
        return;
      }
      case FaultKind::kMalformedJson:
        chain_.clear();
        chain_.AppendCopy(fmt::format(
            "{{\"type\":\"MODIFIED\",\"object\":{{\"kind\":\"{}\",\"metadata\":{{\"name\":"
            "\"fault-payload\",\"resourceVersion\":\"{}\",}}}}\n",
            w.feed->type().kind, revision + 1));
        return WriteChain();
      case FaultKind::kHugeObject:
        chain_.clear();
        chain_.AppendCopy(SyntheticEventLine(w.feed->type(), EventType::kAdded, revision + 1,
                                             fault.object_bytes));
        return WriteChain();
      case FaultKind::kHttpError:
      case FaultKind::kDropConnection:
        return Close();
      case FaultKind::kDelay:
        // Not a watch fault (the handler drops it before a watch starts).
        return Pump();
    }
  }

  // ---- Teardown.

  void Close() {
    if (closed_) return;
    closed_ = true;
    bookmark_timer_.cancel();
    timeout_timer_.cancel();
    delay_timer_.cancel();
    watch_.reset();
    beast::error_code ec;
    auto& socket = beast::get_lowest_layer(stream_).socket();
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  Stream stream_;
  SessionContext context_;
  net::steady_timer bookmark_timer_;
  net::steady_timer timeout_timer_;
  net::steady_timer delay_timer_;  // A delayed SimpleReply.
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<http::request<http::string_body>> queue_;
  bool reading_ = false;
  bool busy_ = false;       // A response is being produced.
  bool writing_ = false;    // A watch write is in flight.
  bool peer_done_ = false;  // The client half-closed.
  bool stalled_ = false;
  bool closed_ = false;
  bool close_after_write_ = false;
  bool keep_alive_ = true;
  unsigned version_ = 11;

  std::shared_ptr<http::response<http::string_body>> simple_response_;
  std::shared_ptr<http::response<http::empty_body>> header_;
  std::shared_ptr<http::response_serializer<http::empty_body>> header_serializer_;
  BufferChain body_;
  std::vector<net::const_buffer> body_buffers_;
  std::optional<std::size_t> truncate_at_;

  std::unique_ptr<ActiveWatch> watch_;
  std::uint64_t watch_generation_ = 0;
  BufferChain chain_;
  std::vector<net::const_buffer> chain_buffers_;
  std::string chunk_header_;   // WriteChainGathered's size line.
  std::vector<iovec> iovecs_;  // WriteChainGathered's pieces; [0, iovecs_sent_) are sent.
  std::size_t iovecs_sent_ = 0;
  std::string payload_;
};

}  // namespace

void SessionRegistry::Add(std::weak_ptr<Session> session) {
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                 [](const std::weak_ptr<Session>& s) { return s.expired(); }),
                  sessions_.end());
  sessions_.push_back(std::move(session));
}

void SessionRegistry::ShutdownAll() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& weak : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (const auto& s : live) s->Shutdown();
}

std::size_t SessionRegistry::LiveCount() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const auto& weak : sessions_) n += weak.expired() ? 0 : 1;
  return n;
}

void StartHttpSession(tcp::socket socket, ssl::context* tls, SessionContext context,
                      SessionRegistry& registry) {
  if (tls) {
    auto session = std::make_shared<HttpSession<beast::ssl_stream<beast::tcp_stream>>>(
        context, std::move(socket), *tls);
    registry.Add(session);
    session->Run();
  } else {
    auto session = std::make_shared<HttpSession<beast::tcp_stream>>(context, std::move(socket));
    registry.Add(session);
    session->Run();
  }
}

HttpListener::HttpListener(net::io_context& io, tcp::acceptor acceptor, ssl::context* tls,
                           SessionContext context, SessionRegistry& registry)
    : io_(io), acceptor_(std::move(acceptor)), tls_(tls), context_(context), registry_(registry) {}

void HttpListener::Run() {
  net::dispatch(acceptor_.get_executor(),
                beast::bind_front_handler(&HttpListener::DoAccept, shared_from_this()));
}

void HttpListener::Stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ec;
    self->acceptor_.close(ec);
    self->registry_.ShutdownAll();
  });
}

void HttpListener::DoAccept() {
  acceptor_.async_accept(net::make_strand(io_),
                         beast::bind_front_handler(&HttpListener::OnAccept, shared_from_this()));
}

void HttpListener::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open()) return;
  if (!ec) {
    socket.set_option(tcp::no_delay(true), ec);
    StartHttpSession(std::move(socket), tls_, context_, registry_);
  }
  DoAccept();
}

}  // namespace informerd::fakeapi
