// ApiServerClient: HTTP/1.1 (over TLS, or plain http when the kubeconfig says so) to one
// kube-apiserver: GETs for LIST pages, single objects and discovery over a small pool of
// keep-alive connections, and WATCH streams, each on a connection of its own, whose body bytes
// are handed over exactly as they arrive. informerd's counterpart of client-go's rest.Interface.
//
// Data flow: built once at start-up from the RestConfig (daemon/kube/auth/rest_config.h); the
// reflectors LIST with Get() and WATCH with Watch() (feeding core::WatchEventDecoder and
// core::ListDecoder), and Discovery (daemon/kube/discovery.h) resolves resource names with Get().
// Answers come back as HttpResult values; errors are absl::Status values whose messages name
// the request, the server and, for 401/403, the identity from the RestConfig.
//
// Threads and ownership: the daemon owns the client; it is bound to an io_context and does all
// its I/O asynchronously on one strand of it, with no thread per request. Get(), Watch() and
// WatchHandle::Cancel() may be called from any thread; every callback runs on strand().
// Credentials are fetched with CredentialSource::Current() on one helper thread owned by the
// client, never on the I/O thread: an exec plugin may run for seconds (client-go allows a
// minute), and the I/O thread carries every watch of the daemon, whose idle watchdogs and
// downstream fan-out must not stall behind it. The client's I/O objects stay alive while
// operations are pending (they hold its shared state); destroying the client closes every
// connection and watch, and from then on no callback runs, except one already running on
// another thread.
//
// Implementation, one class per file, all private to this target: client_shared_state.h (what
// the client and its operations share), connection_pool.h, apiserver_connection.h,
// connection_opener.h, get_exchange.h (one Get()), watch_stream.h (one Watch()),
// credential_worker.h, request_support.h (helpers both operations use).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/object_record.h"
#include "daemon/kube/auth/rest_config.h"

namespace informerd::daemon {

struct ApiClientOptions {
  // A whole Get(): credentials, connect, TLS handshake, request, and the complete response. For
  // a Watch(), everything up to the response headers.
  std::chrono::milliseconds request_timeout{60000};
  // A watch that receives no bytes for this long is closed as stalled. The apiserver sends a
  // bookmark about every minute when asked (allowWatchBookmarks=true), so silence for minutes
  // means a dead connection that TCP has not noticed, such as a vanished NAT entry.
  std::chrono::milliseconds watch_idle_timeout{std::chrono::minutes(5)};
  // Keep-alive connections kept for later Get()s; more can be open while requests run.
  std::size_t max_idle_connections = 4;
  // Idle connections older than this are closed rather than reused (Go's transport: 90 s), since
  // servers and load balancers drop idle connections after a while.
  std::chrono::milliseconds idle_connection_timeout{90000};
  // The largest Get() body accepted. A LIST page of 500 large objects is tens of MiB; this
  // bounds what a broken server can make the daemon buffer. Watch bodies are never limited.
  std::uint64_t max_response_bytes = std::uint64_t{1} << 30;
  // Sent as User-Agent; empty: "informerd/<version>".
  std::string user_agent;
};

// The outcome of a Get(), or how a Watch() ended.
struct HttpResult {
  // The HTTP status; 0 when no response arrived (connection or TLS failure, timeout).
  int http_status = 0;
  // Get(): the whole body. Watch(): the body of a non-200 answer; the stream itself went to
  // on_bytes.
  std::string body;
  // The Retry-After header, when present and in seconds (429, 503, and some 5xx).
  std::optional<std::chrono::seconds> retry_after;
  // The Status object of a non-2xx body; absent when the body was not one (a proxy's HTML page).
  std::optional<core::KubeStatus> kube_status;
  // OK for a 2xx answer to Get() and for a watch the server ended normally (timeoutSeconds, or
  // the apiserver shutting down cleanly). Otherwise the error, with the Status message when the
  // server sent one. Codes: a non-2xx answer maps its HTTP status with core/http_status.h's
  // table, the one the reflector uses too (400/422 InvalidArgument, 401 Unauthenticated, 403
  // PermissionDenied, 404 NotFound, 409 Aborted, 410 OutOfRange, 429 ResourceExhausted, other
  // 4xx FailedPrecondition, 500 Internal, 502/503 Unavailable, 504 DeadlineExceeded, other 5xx
  // Internal); no response or a connection lost is Unavailable; a timeout or stalled watch
  // DeadlineExceeded; a cancelled watch Cancelled; a body over max_response_bytes
  // ResourceExhausted.
  absl::Status status;
};

class ApiServerClient;

// Owns one watch stream: destroying the handle cancels it. Move-only.
class WatchHandle {
 public:
  class Stream;

  WatchHandle() = default;
  explicit WatchHandle(std::shared_ptr<Stream> stream);
  ~WatchHandle();
  WatchHandle(WatchHandle&& other) noexcept = default;
  WatchHandle& operator=(WatchHandle&& other) noexcept;
  WatchHandle(const WatchHandle&) = delete;
  WatchHandle& operator=(const WatchHandle&) = delete;

  // Closes the stream. Afterwards neither on_bytes nor on_end is called: strictly so when called
  // on the client's strand (where they run), else except for one already running. Any thread;
  // idempotent.
  void Cancel();

 private:
  std::shared_ptr<Stream> stream_;
};

class ApiServerClient {
 public:
  using GetCallback = std::function<void(HttpResult)>;
  using BytesCallback = std::function<void(std::string_view)>;
  using EndCallback = std::function<void(HttpResult)>;

  // Fails (InvalidArgument) when the TLS settings cannot work (unparsable CA, a CA together with
  // insecure-skip-tls-verify). Credential problems surface per request.
  static absl::StatusOr<std::unique_ptr<ApiServerClient>> Create(boost::asio::io_context& io,
                                                                 RestConfig config,
                                                                 ApiClientOptions options = {});
  ~ApiServerClient();
  ApiServerClient(const ApiServerClient&) = delete;
  ApiServerClient& operator=(const ApiServerClient&) = delete;

  // GET server.path_prefix + `path_and_query` ("/api/v1/pods?limit=500"), with Accept `accept`
  // (empty: application/json). Reuses an idle keep-alive connection when there is one; if that
  // connection turns out to have been closed by the server before any byte of the answer came
  // back, the request is sent again once on a new connection (GETs are idempotent; Go's
  // transport does the same). On 401 the credentials used are reported to
  // CredentialSource::Invalidate(), so that the next request fetches fresh ones (a rotated
  // token); the failed request itself is not repeated. `done` is called exactly once.
  void Get(std::string path_and_query, std::string accept, GetCallback done);

  // Opens a watch: GET `path_and_query` (which carries watch=1 and the caller's
  // resourceVersion, timeoutSeconds, allowWatchBookmarks) on a new connection. While the answer
  // is a 200 stream, every body byte goes to `on_bytes` as it arrives, cut wherever the network
  // cut it; then, unless the watch was cancelled first, `on_end` is called once: OK when the
  // server ended the body properly, an error when the connection broke in the middle of it or
  // went silent for ApiClientOptions::watch_idle_timeout, or the HttpResult of a non-200 answer
  // (410, 429/503 with Retry-After, 401/403, 422...) without any on_bytes call. The client does
  // not look inside the body: ERROR events (a 410 "Expired" inside a 200 stream) are the
  // decoder's and the reflector's business.
  [[nodiscard]] WatchHandle Watch(std::string path_and_query, BytesCallback on_bytes,
                                  EndCallback on_end);

  // Where callbacks run. Code that calls the client from its callbacks needs no other lock.
  boost::asio::strand<boost::asio::io_context::executor_type> strand() const;
  const RestConfig& config() const;

  // What the client and its pending operations share (settings, credential thread, TLS context,
  // idle connections, running operations): daemon/kube/client_shared_state.h. Declared here so
  // that the implementation's files, WatchHandle::Stream among them, can name it.
  class SharedState;

 private:
  explicit ApiServerClient(std::shared_ptr<SharedState> state);
  std::shared_ptr<SharedState> state_;
};

}  // namespace informerd::daemon
