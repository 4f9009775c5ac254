// ApiServerClient: HTTP/1.1 (over TLS, or plain http when the kubeconfig says so) to one
// kube-apiserver: GETs for LIST pages, single objects and discovery over a small pool of
// keep-alive connections, and WATCH streams, each on a connection of its own, whose body bytes
// are handed over exactly as they arrive. informerd's counterpart of client-go's rest.Interface.
//
// It is the daemon's ListWatchClient (daemon/kube/list_watch_client.h: the Get/Watch contracts
// and the result types), the interface the informers and discovery are written against, and its
// ReviewClient (daemon/kube/review_client.h): the POSTs of TokenReviews and SubjectAccessReviews
// through which daemon/security asks the apiserver who a caller is and what they may read. Those
// share the GETs' keep-alive pool and credentials.
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
// minute), and the I/O thread carries every watch of the informers on this client, whose idle
// watchdogs and downstream fan-out must not stall behind it. The daemon may run several clients,
// one per ingest thread, each on an io_context of its own; they may share one RestConfig (and so
// one CredentialSource, which is thread-safe), each with its own pool, helper thread and strand.
// The client's I/O objects stay alive while operations are pending (they hold its shared
// state); destroying the client closes every connection and watch, and from then on no callback
// runs, except one already running on another thread.
//
// Implementation, one class per file, all private to this target: client_shared_state.h (what
// the client and its operations share), connection_pool.h, apiserver_connection.h,
// connection_opener.h, request_exchange.h (one Get() or Post()), watch_stream.h (one Watch()),
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
#include "daemon/kube/list_watch_client.h"
#include "daemon/kube/review_client.h"

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

class ApiServerClient final : public ListWatchClient, public ReviewClient {
 public:
  // The same type in both interfaces.
  using Strand = ListWatchClient::Strand;
  // Fails (InvalidArgument) when the TLS settings cannot work (unparsable CA, a CA together with
  // insecure-skip-tls-verify). Credential problems surface per request.
  static absl::StatusOr<std::unique_ptr<ApiServerClient>> Create(boost::asio::io_context& io,
                                                                 RestConfig config,
                                                                 ApiClientOptions options = {});
  ~ApiServerClient() override;
  ApiServerClient(const ApiServerClient&) = delete;
  ApiServerClient& operator=(const ApiServerClient&) = delete;

  // ListWatchClient (the contracts are there). GET server.path_prefix + `path_and_query`.
  // Reuses an idle keep-alive connection when there is one; if that connection turns out to have
  // been closed by the server before any byte of the answer came back, the request is sent again
  // once on a new connection (GETs are idempotent; Go's transport does the same). On 401 the
  // credentials used are reported to CredentialSource::Invalidate(), so that the next request
  // fetches fresh ones (a rotated token); the failed request itself is not repeated.
  void Get(std::string path_and_query, std::string accept, GetCallback done) override;

  // ListWatchClient. Each watch has a connection of its own; on_bytes gets the body cut wherever
  // the network cut it; a watch silent for ApiClientOptions::watch_idle_timeout ends with
  // DeadlineExceeded.
  [[nodiscard]] WatchHandle Watch(std::string path_and_query, BytesCallback on_bytes,
                                  EndCallback on_end) override;

  // ReviewClient. POST server.path_prefix + `path` with `json_body` (Content-Type and Accept
  // application/json) over the same pool and credentials as Get(); a 2xx answer (the reviews'
  // 201 Created) is OK with its body; failures as for Get(): a non-2xx answer by the table
  // (a 403 here means the daemon's own identity may not create reviews: it lacks
  // system:auth-delegator), a timeout DeadlineExceeded, no answer Unavailable. An error body that
  // is not a Status is not quoted in the message, as a proxy's error page may echo the request's
  // token. Retry: like a Get(), a review sent on a reused keep-alive connection that the server
  // had closed before any byte of the answer came back is sent once more on a new connection.
  // The server may or may not have seen the first one; for a review that does not matter, since
  // TokenReview and SubjectAccessReview are reads in POST form (the apiserver evaluates, answers
  // and stores nothing), so asking twice gives the same answer. Every POST this client makes is a
  // review; a POST that changes something must not be retried so (RequestSpec::replayable).
  void Post(std::string path, std::string json_body, PostCallback done) override;

  // ListWatchClient and ReviewClient: the one strand all of the client's I/O runs on.
  Strand strand() const override;
  const RestConfig& config() const;

  // What the client and its pending operations share (settings, credential thread, TLS context,
  // idle connections, running operations): daemon/kube/client_shared_state.h. Declared here so
  // that the implementation's files, ApiServerWatchStream among them, can name it.
  class SharedState;

 private:
  explicit ApiServerClient(std::shared_ptr<SharedState> state);
  std::shared_ptr<SharedState> state_;
};

}  // namespace informerd::daemon
