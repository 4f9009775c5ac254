#include "daemon/kube/apiserver_client.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/http_status.h"
#include "core/list_decoder.h"
#include "daemon/kube/tls_context.h"
#include "daemon/version.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using SteadyTime = std::chrono::steady_clock::time_point;
using CredentialsPtr = std::shared_ptr<const Credentials>;

constexpr char kDefaultAccept[] = "application/json";
// One read's worth of watch body; events longer than this simply arrive in several pieces.
constexpr std::size_t kWatchReadBytes = 64 * 1024;
// How much one socket read may take while a body is read. Beast reads into the connection's
// flat_buffer at most its spare capacity (and at least 512 bytes); a buffer left at its first
// size makes every read 512 bytes, so a 100 MB LIST took 200,000 reads, each with a timer re-arm,
// and system calls were most of the client's CPU time.
constexpr std::size_t kSocketReadBytes = 64 * 1024;
// "No body limit". Not boost::none: Beast 1.74 compares a Content-Length against the optional
// limit with `len > limit`, which is true for every length when the limit is none.
constexpr std::uint64_t kUnlimitedBody = std::numeric_limits<std::uint64_t>::max();
// How much of a body that is not a Status goes into an error message.
constexpr std::size_t kBodySnippetBytes = 200;

std::string Seconds(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return fmt::format("{}s", duration.count() / 1000);
  return fmt::format("{}ms", duration.count());
}

// Retry-After as delta-seconds, which is what the apiserver and its priority-and-fairness filter
// send. An HTTP-date or garbage counts as absent.
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

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kBodySnippetBytes)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : ' ');
  }
  if (text.size() > kBodySnippetBytes) out += "...";
  return out;
}

// Requests are built from our own code's paths; a path that could not be a request target is a
// bug upstream, reported as such rather than sent (a CR or LF would split the request).
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

// Whether `ec` means "the peer went away", as opposed to a local cancellation or a timeout.
bool IsConnectionLoss(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::connection_aborted || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated || ec == http::error::end_of_stream ||
         ec == http::error::partial_message;
}

// Runs CredentialSource::Current() away from the I/O thread (see the header). One thread, so
// concurrent requests queue behind one plugin run, as the sources serialize them anyway.
class CredentialWorker {
 public:
  CredentialWorker() : thread_([this] { Run(); }) {}
  ~CredentialWorker() { Stop(); }

  // False once stopped: the task is dropped.
  bool Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return false;
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
    return true;
  }

  // Waits for a running task (a plugin run in progress) and drops the queued ones.
  void Stop() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      dropped.swap(tasks_);
    }
    wake_.notify_one();
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();
      } else {
        thread_.join();
      }
    }
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [this] { return stopped_ || !tasks_.empty(); });
        if (stopped_) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopped_ = false;                     // guarded by mu_
  std::thread thread_;
};

// One connection to the apiserver: TCP, with TLS on top unless the server URL is http. Owned by
// the request using it, or by the idle pool between requests; used on the client's strand.
class Connection {
 public:
  Connection(Strand strand, std::shared_ptr<asio::ssl::context> tls_context,
             std::string client_cert_pem)
      : tls_context_(std::move(tls_context)), client_cert_pem_(std::move(client_cert_pem)) {
    if (tls_context_) {
      tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(strand, *tls_context_);
    } else {
      plain_ = std::make_unique<beast::tcp_stream>(strand);
    }
  }

  beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  beast::ssl_stream<beast::tcp_stream>* tls() { return tls_.get(); }
  beast::flat_buffer& buffer() { return buffer_; }
  const std::string& client_cert_pem() const { return client_cert_pem_; }

  // Calls f(stream) with the stream HTTP goes over.
  template <class F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  void Close() {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

  SteadyTime idle_since;

 private:
  // Kept alive for as long as the stream that uses it.
  std::shared_ptr<asio::ssl::context> tls_context_;
  // The client certificate this connection presented: a rotated one needs new connections.
  std::string client_cert_pem_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::unique_ptr<beast::tcp_stream> plain_;
  // Bytes read beyond the current response stay with the connection.
  beast::flat_buffer buffer_;
};

// An operation the client can abort when it is destroyed.
class Abortable {
 public:
  virtual ~Abortable() = default;
  virtual void Abort() = 0;  // On the strand.
};

}  // namespace

// Everything the operations share. Lives while the client or any pending operation does; its
// mutable state is touched only on the strand, except `closed_`.
class ApiServerClient::Core : public std::enable_shared_from_this<ApiServerClient::Core> {
 public:
  Core(asio::io_context& io, RestConfig config, ApiClientOptions options)
      : strand_(asio::make_strand(io)),
        config_(std::move(config)),
        options_(std::move(options)),
        tls_(config_.server.scheme == "https"),
        verify_name_(TlsVerifyName(config_.tls, config_.server)),
        credential_worker_(std::make_shared<CredentialWorker>()) {
    if (options_.user_agent.empty()) options_.user_agent = fmt::format("informerd/{}", kVersion);
  }

  Strand strand() const { return strand_; }
  const RestConfig& config() const { return config_; }
  const ApiClientOptions& options() const { return options_; }
  bool tls() const { return tls_; }
  const std::string& verify_name() const { return verify_name_; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // "GET https://127.0.0.1:6443/api/v1/pods?limit=500".
  std::string Describe(const std::string& path_and_query) const {
    return fmt::format("GET {}{}", config_.server.ToString(), path_and_query);
  }

  // Current() on the credential thread, the answer on the strand.
  void FetchCredentials(std::function<void(absl::StatusOr<CredentialsPtr>)> done) {
    auto self = shared_from_this();
    const bool posted = credential_worker_->Post([self, done]() mutable {
      absl::StatusOr<CredentialsPtr> credentials = self->config_.credentials->Current();
      if (credentials.ok() && *credentials == nullptr) {
        credentials = absl::InternalError("the credential source returned no credentials");
      }
      asio::post(self->strand_, [done = std::move(done), credentials = std::move(credentials)]() {
        done(credentials);
      });
    });
    if (!posted) {
      asio::post(strand_, [done = std::move(done)] {
        done(absl::CancelledError("the apiserver client is shutting down"));
      });
    }
  }

  // The TLS context presenting `credentials`' client certificate; rebuilt when it changes.
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> TlsContextFor(
      const Credentials& credentials) {
    if (!tls_) return std::shared_ptr<asio::ssl::context>();
    if (tls_context_ && tls_context_cert_ == credentials.client_cert_pem &&
        tls_context_key_ == credentials.client_key_pem) {
      return tls_context_;
    }
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
        MakeTlsContext(config_.tls, credentials);
    if (!context.ok()) return context.status();
    tls_context_ = *context;
    tls_context_cert_ = credentials.client_cert_pem;
    tls_context_key_ = credentials.client_key_pem;
    return tls_context_;
  }

  // An idle connection that presented the same client certificate and is not too old.
  std::unique_ptr<Connection> TakeIdle(const Credentials& credentials) {
    const SteadyTime now = std::chrono::steady_clock::now();
    while (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->client_cert_pem() == credentials.client_cert_pem &&
          now - connection->idle_since < options_.idle_connection_timeout) {
        return connection;
      }
      connection->Close();
    }
    return nullptr;
  }

  void PutIdle(std::unique_ptr<Connection> connection) {
    if (closed() || options_.max_idle_connections == 0) return connection->Close();
    connection->tcp().expires_never();
    connection->idle_since = std::chrono::steady_clock::now();
    idle_.push_back(std::move(connection));
    if (idle_.size() > options_.max_idle_connections) {
      idle_.front()->Close();
      idle_.erase(idle_.begin());
    }
  }

  std::uint64_t Register(std::weak_ptr<Abortable> operation) {
    const std::uint64_t id = next_operation_id_++;
    active_.emplace(id, std::move(operation));
    return id;
  }
  void Unregister(std::uint64_t id) {
    if (id != 0) active_.erase(id);
  }

  // From the client's destructor, any thread.
  void Close() {
    closed_.store(true, std::memory_order_release);
    credential_worker_->Stop();
    asio::post(strand_, [self = shared_from_this()] {
      for (auto& connection : self->idle_) connection->Close();
      self->idle_.clear();
      std::unordered_map<std::uint64_t, std::weak_ptr<Abortable>> active;
      active.swap(self->active_);
      for (auto& [id, weak] : active) {
        if (std::shared_ptr<Abortable> operation = weak.lock()) operation->Abort();
      }
    });
  }

  // The message of an answer that is not 2xx, with the Status message when there is one.
  absl::Status HttpError(const std::string& request, int http_status, std::string_view reason,
                         const std::optional<core::KubeStatus>& kube_status,
                         std::string_view body) const {
    std::string message = fmt::format("{}: HTTP {} {}", request, http_status, reason);
    if (kube_status && !kube_status->message.empty()) {
      message += fmt::format(": {}", kube_status->message);
    } else if (!kube_status && !body.empty()) {
      message += fmt::format(" (the body is not a Kubernetes Status: \"{}\")", Printable(body));
    }
    if (http_status == 401) {
      message += fmt::format(" (the apiserver did not accept the credentials of {})",
                             config_.identity.empty() ? "this client" : config_.identity);
    } else if (http_status == 403) {
      message += fmt::format(" (authenticated as {})",
                             config_.identity.empty() ? "this client" : config_.identity);
    }
    return absl::Status(core::StatusCodeForHttpError(http_status), message);
  }

 private:
  Strand strand_;
  const RestConfig config_;
  ApiClientOptions options_;
  const bool tls_;
  const std::string verify_name_;
  const std::shared_ptr<CredentialWorker> credential_worker_;
  std::atomic<bool> closed_{false};

  // On the strand.
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::string tls_context_cert_;
  std::string tls_context_key_;
  std::vector<std::unique_ptr<Connection>> idle_;  // oldest first
  std::unordered_map<std::uint64_t, std::weak_ptr<Abortable>> active_;
  std::uint64_t next_operation_id_ = 1;  // 0: not registered
};

namespace {

using Core = ApiServerClient::Core;

// Resolve → connect → TLS handshake, in the manner of Beast's async-ssl client example, with the
// deadline of the request that needs the connection. Calls `done` once, on the strand.
class ConnectionOpener : public std::enable_shared_from_this<ConnectionOpener> {
 public:
  using Done = std::function<void(absl::Status, std::unique_ptr<Connection>)>;

  ConnectionOpener(std::shared_ptr<Core> core, std::unique_ptr<Connection> connection,
                   SteadyTime deadline, std::string request, Done done)
      : core_(std::move(core)),
        connection_(std::move(connection)),
        resolver_(core_->strand()),
        deadline_timer_(core_->strand()),
        deadline_(deadline),
        request_(std::move(request)),
        done_(std::move(done)) {}

  void Run() {
    if (beast::ssl_stream<beast::tcp_stream>* tls = connection_->tls()) {
      absl::Status prepared = PrepareTlsConnection(tls->native_handle(), core_->verify_name(),
                                                   core_->config().tls.insecure_skip_tls_verify);
      if (!prepared.ok()) return Finish(prepared);
    }
    // The resolver has no deadline of its own; this timer gives it the request's.
    deadline_timer_.expires_at(deadline_);
    deadline_timer_.async_wait(
        beast::bind_front_handler(&ConnectionOpener::OnResolveDeadline, shared_from_this()));
    const ServerUrl& server = core_->config().server;
    resolver_.async_resolve(
        server.host, std::to_string(server.port),
        beast::bind_front_handler(&ConnectionOpener::OnResolve, shared_from_this()));
  }

  void Abort() {
    aborted_ = true;
    resolver_.cancel();
    deadline_timer_.cancel();
    connection_->tcp().close();
  }

 private:
  void OnResolveDeadline(beast::error_code ec) {
    if (ec) return;  // Cancelled: resolution finished first.
    resolve_timed_out_ = true;
    resolver_.cancel();
  }

  void OnResolve(beast::error_code ec, tcp::resolver::results_type results) {
    deadline_timer_.cancel();
    if (aborted_) return Finish(absl::CancelledError(fmt::format("{}: cancelled", request_)));
    if (resolve_timed_out_) return Finish(TimedOut("resolving the server's address"));
    if (ec) return Fail(ec, fmt::format("resolving {}", core_->config().server.host));
    connection_->tcp().expires_at(deadline_);
    connection_->tcp().async_connect(
        results, beast::bind_front_handler(&ConnectionOpener::OnConnect, shared_from_this()));
  }

  void OnConnect(beast::error_code ec, const tcp::endpoint&) {
    if (ec) return Fail(ec, fmt::format("connecting to {}", core_->config().server.Authority()));
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

  void OnHandshake(beast::error_code ec) {
    if (ec && ec != beast::error::timeout && !aborted_) {
      return Finish(absl::UnavailableError(
          fmt::format("{}: {}", request_,
                      DescribeTlsHandshakeError(ec, connection_->tls()->native_handle(),
                                                core_->config().server.Authority()))));
    }
    if (ec) return Fail(ec, "the TLS handshake");
    Finish(absl::OkStatus());
  }

  absl::Status TimedOut(std::string_view stage) const {
    return absl::DeadlineExceededError(
        fmt::format("{}: timed out after {} (request timeout) while {}", request_,
                    Seconds(core_->options().request_timeout), stage));
  }

  void Fail(beast::error_code ec, const std::string& stage) {
    if (aborted_ || ec == asio::error::operation_aborted) {
      return Finish(absl::CancelledError(fmt::format("{}: cancelled", request_)));
    }
    if (ec == beast::error::timeout) return Finish(TimedOut(stage));
    Finish(absl::UnavailableError(fmt::format("{}: {} failed: {}", request_, stage, ec.message())));
  }

  void Finish(absl::Status status) {
    if (!done_) return;
    Done done = std::move(done_);
    done_ = nullptr;
    if (!status.ok()) {
      connection_->Close();
      return done(std::move(status), nullptr);
    }
    done(absl::OkStatus(), std::move(connection_));
  }

  std::shared_ptr<Core> core_;
  std::unique_ptr<Connection> connection_;
  tcp::resolver resolver_;
  asio::steady_timer deadline_timer_;
  const SteadyTime deadline_;
  const std::string request_;
  Done done_;
  bool aborted_ = false;
  bool resolve_timed_out_ = false;
};

http::request<http::empty_body> MakeRequest(const Core& core, const std::string& path_and_query,
                                            const std::string& accept,
                                            const Credentials& credentials) {
  http::request<http::empty_body> request(http::verb::get,
                                          core.config().server.path_prefix + path_and_query, 11);
  request.set(http::field::host, core.config().server.Authority());
  request.set(http::field::user_agent, core.options().user_agent);
  request.set(http::field::accept, accept.empty() ? kDefaultAccept : accept);
  if (!credentials.bearer_token.empty()) {
    request.set(http::field::authorization, "Bearer " + credentials.bearer_token);
  }
  request.keep_alive(true);
  return request;
}

// One Get(): credentials → a connection (idle or new) → request → whole response.
class GetExchange : public Abortable, public std::enable_shared_from_this<GetExchange> {
 public:
  GetExchange(std::shared_ptr<Core> core, std::string path_and_query, std::string accept,
              ApiServerClient::GetCallback done)
      : core_(std::move(core)),
        path_and_query_(std::move(path_and_query)),
        accept_(std::move(accept)),
        request_description_(core_->Describe(path_and_query_)),
        deadline_(std::chrono::steady_clock::now() + core_->options().request_timeout),
        done_(std::move(done)) {}

  // On the strand.
  void Start() {
    id_ = core_->Register(weak_from_this());
    if (absl::Status target = CheckTarget(request_description_, path_and_query_); !target.ok()) {
      return Finish(Result(std::move(target)));
    }
    core_->FetchCredentials(
        beast::bind_front_handler(&GetExchange::OnCredentials, shared_from_this()));
  }

  void Abort() override {
    aborted_ = true;
    if (auto opener = opener_.lock()) opener->Abort();
    if (connection_) connection_->tcp().close();
  }

 private:
  void OnCredentials(absl::StatusOr<CredentialsPtr> credentials) {
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
                      request_description_, Seconds(core_->options().request_timeout)))));
    }
    Attempt(/*allow_idle=*/true);
  }

  void Attempt(bool allow_idle) {
    if (allow_idle) connection_ = core_->TakeIdle(*credentials_);
    reused_ = connection_ != nullptr;
    if (reused_) return SendRequest();
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
        core_->TlsContextFor(*credentials_);
    if (!context.ok()) {
      return Finish(Result(absl::InvalidArgumentError(fmt::format(
          "{}: TLS settings: {}", request_description_, std::string(context.status().message())))));
    }
    auto opener = std::make_shared<ConnectionOpener>(
        core_,
        std::make_unique<Connection>(core_->strand(), *context, credentials_->client_cert_pem),
        deadline_, request_description_,
        beast::bind_front_handler(&GetExchange::OnConnected, shared_from_this()));
    opener_ = opener;
    opener->Run();
  }

  void OnConnected(absl::Status status, std::unique_ptr<Connection> connection) {
    opener_.reset();
    if (!status.ok()) return Finish(Result(std::move(status)));
    connection_ = std::move(connection);
    SendRequest();
  }

  void SendRequest() {
    request_ = MakeRequest(*core_, path_and_query_, accept_, *credentials_);
    parser_.emplace();
    parser_->body_limit(core_->options().max_response_bytes);
    connection_->tcp().expires_at(deadline_);
    connection_->WithStream([this](auto& stream) {
      http::async_write(stream, request_,
                        beast::bind_front_handler(&GetExchange::OnWrite, shared_from_this()));
    });
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    if (ec) return OnTransportError(ec, "sending the request");
    connection_->buffer().reserve(kSocketReadBytes);
    connection_->WithStream([this](auto& stream) {
      http::async_read(stream, connection_->buffer(), *parser_,
                       beast::bind_front_handler(&GetExchange::OnRead, shared_from_this()));
    });
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return OnTransportError(ec, "reading the response");
    http::response<http::string_body> response = parser_->release();
    HttpResult result;
    result.http_status = response.result_int();
    if (auto retry_after = response.find(http::field::retry_after); retry_after != response.end()) {
      result.retry_after = ParseRetryAfter(
          std::string_view(retry_after->value().data(), retry_after->value().size()));
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
          core_->HttpError(request_description_, result.http_status,
                           std::string_view(response.reason().data(), response.reason().size()),
                           result.kube_status, result.body);
      // client-go's rule: a 401 means these credentials are no good; the source decides whether
      // that calls for a re-read (token file), a plugin run (exec), or nothing (static).
      if (result.http_status == 401) core_->config().credentials->Invalidate(credentials_);
    }
    if (keep_alive) {
      core_->PutIdle(std::move(connection_));
    } else {
      connection_->Close();
      connection_.reset();
    }
    Finish(std::move(result));
  }

  void OnTransportError(beast::error_code ec, std::string_view stage) {
    if (aborted_ || ec == asio::error::operation_aborted) return Finish(Cancelled());
    if (ec == beast::error::timeout) {
      return Finish(Result(absl::DeadlineExceededError(
          fmt::format("{}: timed out after {} (request timeout) while {}", request_description_,
                      Seconds(core_->options().request_timeout), stage))));
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
    std::string message = fmt::format("{}: the connection failed while {}: {}",
                                      request_description_, stage, ec.message());
    if (ec == http::error::body_limit) {
      message = fmt::format("{}: the response is larger than {} bytes (max_response_bytes)",
                            request_description_, core_->options().max_response_bytes);
      return Finish(Result(absl::ResourceExhaustedError(message)));
    }
    Finish(Result(absl::UnavailableError(message)));
  }

  HttpResult Cancelled() const {
    return Result(absl::CancelledError(fmt::format("{}: cancelled", request_description_)));
  }

  static HttpResult Result(absl::Status status) {
    HttpResult result;
    result.status = std::move(status);
    return result;
  }

  void Finish(HttpResult result) {
    if (!done_) return;
    core_->Unregister(id_);
    ApiServerClient::GetCallback done = std::move(done_);
    done_ = nullptr;
    if (connection_) {
      connection_->Close();
      connection_.reset();
    }
    if (core_->closed()) return;
    done(std::move(result));
  }

  std::shared_ptr<Core> core_;
  const std::string path_and_query_;
  const std::string accept_;
  const std::string request_description_;
  const SteadyTime deadline_;
  ApiServerClient::GetCallback done_;
  std::uint64_t id_ = 0;
  CredentialsPtr credentials_;
  // Weak: the opener lives through its pending handlers, and holds a callback into this
  // operation; a strong pointer back would be a cycle that outlives a destroyed io_context.
  std::weak_ptr<ConnectionOpener> opener_;
  std::unique_ptr<Connection> connection_;
  http::request<http::empty_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool reused_ = false;
  bool retried_ = false;
  bool aborted_ = false;
};

}  // namespace

// One Watch(): credentials → a new connection → request → headers → the body, piece by piece.
class WatchHandle::Stream : public Abortable, public std::enable_shared_from_this<Stream> {
 public:
  Stream(std::shared_ptr<Core> core, std::string path_and_query,
         ApiServerClient::BytesCallback on_bytes, ApiServerClient::EndCallback on_end)
      : core_(std::move(core)),
        path_and_query_(std::move(path_and_query)),
        request_description_(core_->Describe(path_and_query_)),
        deadline_(std::chrono::steady_clock::now() + core_->options().request_timeout),
        watchdog_(core_->strand()),
        on_bytes_(std::move(on_bytes)),
        on_end_(std::move(on_end)) {}

  // On the strand.
  void Start() {
    if (cancelled_.load(std::memory_order_acquire)) return;
    id_ = core_->Register(weak_from_this());
    if (absl::Status target = CheckTarget(request_description_, path_and_query_); !target.ok()) {
      return Finish(std::move(target));
    }
    core_->FetchCredentials(beast::bind_front_handler(&Stream::OnCredentials, shared_from_this()));
  }

  // Any thread.
  void Cancel() {
    cancelled_.store(true, std::memory_order_release);
    asio::post(core_->strand(), [self = shared_from_this()] { self->Abort(); });
  }

  // On the strand.
  void Abort() override {
    aborted_ = true;
    watchdog_.cancel();
    if (auto opener = opener_.lock()) opener->Abort();
    if (connection_) connection_->tcp().close();
    Finish(absl::CancelledError(fmt::format("{}: cancelled", request_description_)));
  }

 private:
  void OnCredentials(absl::StatusOr<CredentialsPtr> credentials) {
    if (aborted_) return;
    if (!credentials.ok()) {
      return Finish(absl::Status(credentials.status().code(),
                                 fmt::format("{}: no credentials: {}", request_description_,
                                             std::string(credentials.status().message()))));
    }
    credentials_ = *std::move(credentials);
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
        core_->TlsContextFor(*credentials_);
    if (!context.ok()) {
      return Finish(absl::InvalidArgumentError(fmt::format(
          "{}: TLS settings: {}", request_description_, std::string(context.status().message()))));
    }
    // A watch holds its connection for minutes: never one from the pool, never back into it.
    auto opener = std::make_shared<ConnectionOpener>(
        core_,
        std::make_unique<Connection>(core_->strand(), *context, credentials_->client_cert_pem),
        deadline_, request_description_,
        beast::bind_front_handler(&Stream::OnConnected, shared_from_this()));
    opener_ = opener;
    opener->Run();
  }

  void OnConnected(absl::Status status, std::unique_ptr<Connection> connection) {
    opener_.reset();
    if (aborted_) return;
    if (!status.ok()) return Finish(std::move(status));
    connection_ = std::move(connection);
    request_ = MakeRequest(*core_, path_and_query_, "", *credentials_);
    connection_->tcp().expires_at(deadline_);
    connection_->WithStream([this](auto& stream) {
      http::async_write(stream, request_,
                        beast::bind_front_handler(&Stream::OnWrite, shared_from_this()));
    });
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    if (ec) return OnTransportError(ec, "sending the request");
    header_parser_.emplace();
    // The body may be endless: no limit applies to it (nor, so, to its announced length).
    header_parser_->body_limit(kUnlimitedBody);
    connection_->WithStream([this](auto& stream) {
      http::async_read_header(stream, connection_->buffer(), *header_parser_,
                              beast::bind_front_handler(&Stream::OnHeader, shared_from_this()));
    });
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnTransportError(ec, "reading the response headers");
    const auto& header = header_parser_->get();
    http_status_ = header.result_int();
    reason_ = std::string(header.reason());
    if (auto retry_after = header.find(http::field::retry_after); retry_after != header.end()) {
      retry_after_ = ParseRetryAfter(
          std::string_view(retry_after->value().data(), retry_after->value().size()));
    }
    if (http_status_ != 200) {
      // An error answer has a small, complete body: read it whole, within the request deadline.
      error_parser_.emplace(std::move(*header_parser_));
      error_parser_->body_limit(core_->options().max_response_bytes);
      header_parser_.reset();
      connection_->WithStream([this](auto& stream) {
        http::async_read(stream, connection_->buffer(), *error_parser_,
                         beast::bind_front_handler(&Stream::OnErrorBody, shared_from_this()));
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
    ArmWatchdog(last_bytes_ + core_->options().watch_idle_timeout);
    connection_->buffer().reserve(kSocketReadBytes);
    read_buffer_.resize(kWatchReadBytes);
    ReadBody();
  }

  void ReadBody() {
    auto& body = body_parser_->get().body();
    body.data = read_buffer_.data();
    body.size = read_buffer_.size();
    body.more = true;
    // read_some, not read: deliver each piece now rather than when the buffer is full.
    connection_->WithStream([this](auto& stream) {
      http::async_read_some(stream, connection_->buffer(), *body_parser_,
                            beast::bind_front_handler(&Stream::OnBody, shared_from_this()));
    });
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (aborted_) return;
    const std::size_t got = read_buffer_.size() - body_parser_->get().body().size;
    if (got > 0) {
      last_bytes_ = std::chrono::steady_clock::now();
      bytes_delivered_ += got;
      if (cancelled_.load(std::memory_order_acquire) || core_->closed()) return;
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

  void OnErrorBody(beast::error_code ec, std::size_t) {
    if (ec) return OnTransportError(ec, "reading the error response");
    HttpResult result;
    result.http_status = http_status_;
    result.retry_after = retry_after_;
    result.body = std::move(error_parser_->get().body());
    if (absl::StatusOr<core::KubeStatus> kube = core::ParseKubeStatus(result.body); kube.ok()) {
      result.kube_status = *std::move(kube);
    }
    result.status = core_->HttpError(request_description_, http_status_, reason_,
                                     result.kube_status, result.body);
    if (http_status_ == 401) core_->config().credentials->Invalidate(credentials_);
    FinishWith(std::move(result));
  }

  void ArmWatchdog(SteadyTime at) {
    watchdog_.expires_at(at);
    watchdog_.async_wait(beast::bind_front_handler(&Stream::OnWatchdog, shared_from_this()));
  }

  // Re-armed from the last bytes' time rather than reset on every read, which would cost a
  // timer cancellation per piece of a busy stream.
  void OnWatchdog(beast::error_code ec) {
    if (ec || aborted_ || !on_end_) return;
    const SteadyTime expiry = last_bytes_ + core_->options().watch_idle_timeout;
    if (std::chrono::steady_clock::now() < expiry) return ArmWatchdog(expiry);
    stalled_ = true;
    connection_->tcp().close();
  }

  void OnTransportError(beast::error_code ec, std::string_view stage) {
    if (aborted_) return;
    watchdog_.cancel();
    if (stalled_) {
      return Finish(absl::DeadlineExceededError(fmt::format(
          "{}: the watch stream stalled: no bytes for {} (watch idle timeout; with bookmarks "
          "the apiserver sends something about every minute)",
          request_description_, Seconds(core_->options().watch_idle_timeout))));
    }
    if (ec == beast::error::timeout) {
      return Finish(absl::DeadlineExceededError(
          fmt::format("{}: timed out after {} (request timeout) while {}", request_description_,
                      Seconds(core_->options().request_timeout), stage)));
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

  void Finish(absl::Status status) {
    HttpResult result;
    result.http_status = http_status_;
    result.retry_after = retry_after_;
    result.status = std::move(status);
    FinishWith(std::move(result));
  }

  void FinishWith(HttpResult result) {
    if (!on_end_) return;
    core_->Unregister(id_);
    watchdog_.cancel();
    ApiServerClient::EndCallback on_end = std::move(on_end_);
    on_end_ = nullptr;
    on_bytes_ = nullptr;
    // Closed, not destroyed: when Abort() ends the watch a read is still pending on the stream,
    // and the stream must outlive it. The connection goes with this object, which that read's
    // handler keeps alive.
    if (connection_) connection_->Close();
    if (cancelled_.load(std::memory_order_acquire) || core_->closed()) return;
    on_end(std::move(result));
  }

  std::shared_ptr<Core> core_;
  const std::string path_and_query_;
  const std::string request_description_;
  const SteadyTime deadline_;
  asio::steady_timer watchdog_;
  ApiServerClient::BytesCallback on_bytes_;
  ApiServerClient::EndCallback on_end_;
  std::atomic<bool> cancelled_{false};
  std::uint64_t id_ = 0;
  CredentialsPtr credentials_;
  // Weak: the opener lives through its pending handlers, and holds a callback into this
  // operation; a strong pointer back would be a cycle that outlives a destroyed io_context.
  std::weak_ptr<ConnectionOpener> opener_;
  std::unique_ptr<Connection> connection_;
  http::request<http::empty_body> request_;
  std::optional<http::response_parser<http::empty_body>> header_parser_;
  std::optional<http::response_parser<http::buffer_body>> body_parser_;
  std::optional<http::response_parser<http::string_body>> error_parser_;
  std::vector<char> read_buffer_;
  int http_status_ = 0;
  std::string reason_;
  std::optional<std::chrono::seconds> retry_after_;
  SteadyTime last_bytes_;
  std::uint64_t bytes_delivered_ = 0;
  bool streaming_ = false;
  bool stalled_ = false;
  bool aborted_ = false;
};

WatchHandle::WatchHandle(std::shared_ptr<Stream> stream) : stream_(std::move(stream)) {}

WatchHandle::~WatchHandle() { Cancel(); }

WatchHandle& WatchHandle::operator=(WatchHandle&& other) noexcept {
  if (this != &other) {
    Cancel();
    stream_ = std::move(other.stream_);
  }
  return *this;
}

void WatchHandle::Cancel() {
  if (stream_) {
    stream_->Cancel();
    stream_.reset();
  }
}

absl::StatusOr<std::unique_ptr<ApiServerClient>> ApiServerClient::Create(asio::io_context& io,
                                                                         RestConfig config,
                                                                         ApiClientOptions options) {
  if (config.credentials == nullptr) {
    return absl::InvalidArgumentError("the RestConfig has no credential source");
  }
  if (config.server.scheme == "https") {
    // Checks the CA (and the combination of settings) now rather than at the first request.
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
        MakeTlsContext(config.tls, Credentials{});
    if (!context.ok()) {
      return absl::InvalidArgumentError(fmt::format("TLS settings for {}: {}",
                                                    config.server.ToString(),
                                                    std::string(context.status().message())));
    }
  }
  auto core = std::make_shared<Core>(io, std::move(config), std::move(options));
  return std::unique_ptr<ApiServerClient>(new ApiServerClient(std::move(core)));
}

ApiServerClient::ApiServerClient(std::shared_ptr<Core> core) : core_(std::move(core)) {}

ApiServerClient::~ApiServerClient() { core_->Close(); }

void ApiServerClient::Get(std::string path_and_query, std::string accept, GetCallback done) {
  auto exchange = std::make_shared<GetExchange>(core_, std::move(path_and_query), std::move(accept),
                                                std::move(done));
  asio::post(core_->strand(), [exchange] { exchange->Start(); });
}

WatchHandle ApiServerClient::Watch(std::string path_and_query, BytesCallback on_bytes,
                                   EndCallback on_end) {
  auto stream = std::make_shared<WatchHandle::Stream>(core_, std::move(path_and_query),
                                                      std::move(on_bytes), std::move(on_end));
  asio::post(core_->strand(), [stream] { stream->Start(); });
  return WatchHandle(std::move(stream));
}

boost::asio::strand<boost::asio::io_context::executor_type> ApiServerClient::strand() const {
  return core_->strand();
}

const RestConfig& ApiServerClient::config() const { return core_->config(); }

}  // namespace informerd::daemon
