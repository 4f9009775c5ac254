// ListWatchClient: the three things the upstream side needs from an apiserver client — a GET
// (LIST pages and discovery documents), a WATCH stream, and the strand where their callbacks
// run — and nothing about how they travel. ApiServerClient (daemon/kube/apiserver_client.h) is
// the implementation: HTTP/1.1 over TLS with Beast and OpenSSL.
//
// Why the seam: Informer, Discovery and SharedInformerFactory are state machines around these
// calls (what to request next, what a 410 or a broken stream means, when to retry). Behind this
// interface they are tested in-process against a scripted client
// (test/common/scripted_list_watch_client.h) on an io_context the test runs itself: each answer,
// stream chunk and stream end is chosen by the test and delivered when it says, with fake time and
// timers (daemon/kube/timer.h), deterministically and without sleeping. The HTTP path itself is
// tested separately, against the fake apiserver and a real one. This header therefore depends on
// no HTTP or TLS library, only on Asio's strand (the executor callbacks run on).
//
// Threads: Get(), Watch() and WatchHandle::Cancel() may be called from any thread; every callback
// runs on strand(), never inside the call that started it. Code that calls the client from its
// callbacks needs no other lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "core/object_record.h"

namespace informerd::daemon {

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
  // DeadlineExceeded; a cancelled watch Cancelled; a body over the client's response limit
  // (ApiClientOptions::max_response_bytes) ResourceExhausted.
  absl::Status status;
};

// One open watch, as its implementation sees it. Implemented by each client's stream class;
// reached only through the WatchHandle that owns it.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // Closes the stream; see WatchHandle::Cancel. Any thread; idempotent.
  virtual void Cancel() = 0;
};

// Owns one watch stream: destroying the handle cancels it. Move-only.
class WatchHandle {
 public:
  WatchHandle() = default;
  explicit WatchHandle(std::shared_ptr<WatchStream> stream) : stream_(std::move(stream)) {}
  ~WatchHandle() { Cancel(); }
  WatchHandle(WatchHandle&& other) noexcept = default;
  WatchHandle& operator=(WatchHandle&& other) noexcept {
    if (this != &other) {
      Cancel();
      stream_ = std::move(other.stream_);
    }
    return *this;
  }
  WatchHandle(const WatchHandle&) = delete;
  WatchHandle& operator=(const WatchHandle&) = delete;

  // Closes the stream. Afterwards neither on_bytes nor on_end is called: strictly so when called
  // on the client's strand (where they run), else except for one already running. Any thread;
  // idempotent.
  void Cancel() {
    if (stream_) {
      stream_->Cancel();
      stream_.reset();
    }
  }

 private:
  std::shared_ptr<WatchStream> stream_;
};

class ListWatchClient {
 public:
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
  using GetCallback = std::function<void(HttpResult)>;
  using BytesCallback = std::function<void(std::string_view)>;
  using EndCallback = std::function<void(HttpResult)>;

  virtual ~ListWatchClient() = default;

  // GET `path_and_query` ("/api/v1/pods?limit=500", relative to the server), with Accept
  // `accept` (empty: application/json). `done` is called exactly once, on strand(): a 2xx
  // answer with its whole body and an OK status, or the failure (HttpResult::status; see there
  // for the codes).
  virtual void Get(std::string path_and_query, std::string accept, GetCallback done) = 0;

  // Opens a watch: GET `path_and_query` (which carries watch=1 and the caller's
  // resourceVersion, timeoutSeconds, allowWatchBookmarks). When the answer is a 200 stream,
  // `on_bytes` is called once with an empty piece as soon as its headers arrive (the watch is
  // open: an apiserver sends nothing more until there is an event or a bookmark), then with
  // every body byte as it arrives, cut anywhere (not at event boundaries); then, unless the
  // watch was cancelled first, `on_end` is called once: OK when the server ended the body
  // properly, an error when the stream broke in the middle or went silent for too long, or the
  // HttpResult of a non-200 answer (410, 429/503 with Retry-After, 401/403, 422...) without any
  // on_bytes call. All on strand(). The client does not look inside the
  // body: ERROR events (a 410 "Expired" inside a 200 stream) are the decoder's and the
  // reflector's business. The stream lives as long as the returned handle.
  [[nodiscard]] virtual WatchHandle Watch(std::string path_and_query, BytesCallback on_bytes,
                                          EndCallback on_end) = 0;

  // Where callbacks run.
  virtual Strand strand() const = 0;
};

}  // namespace informerd::daemon
