// ApiHandler: the Kubernetes semantics of the fake apiserver, from one HTTP request to the reply
// a connection must produce: authentication, scripted faults, discovery, GET, LIST (pagination,
// resourceVersion rules, selectors) and the start of a WATCH.
//
// The chain for every request: record it; check the bearer token (401); check Accept (406);
// route the path (the review POSTs when the review APIs are on, see review_api.h; discovery or a
// resource; a group no resource belongs to gets Go's plain-text "404 page not found", as the
// apiserver's mux answers it); take a scripted fault for the resource and verb; then serve. It
// knows nothing of sockets: a Reply says what to write, and the connection (fake_http_session.cc)
// writes it. Called on the I/O thread; the objects it refers to are owned by FakeApiServer and are
// thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "test/fakeapi/buffer_chain.h"
#include "test/fakeapi/fake_store.h"
#include "test/fakeapi/fault_script.h"
#include "test/fakeapi/list_options.h"
#include "test/fakeapi/request_log.h"
#include "test/fakeapi/resource_catalog.h"
#include "test/fakeapi/review_table.h"
#include "test/fakeapi/server_settings.h"
#include "test/fakeapi/watch_feed.h"

namespace informerd::fakeapi {

struct HttpRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// A complete response with a small body (errors, discovery, malformed payloads).
struct SimpleReply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Extra, such as Retry-After.
  // Sent this long after the request was read (the delay fault); other connections are served
  // meanwhile.
  std::chrono::milliseconds delay{0};
};

// 200 with a body gathered from shared object bytes (LIST pages, GET). With `truncate_at` set,
// the Content-Length still announces the whole body but only that many bytes are sent before the
// connection closes.
struct BodyReply {
  BufferChain body;
  std::optional<std::size_t> truncate_at;
};

// 200 and a chunked stream of watch events.
struct WatchReply {
  std::string resource;
  std::unique_ptr<WatchFeed> feed;  // Null when only `error_event` is to be sent.
  std::string error_event;          // Sent first; the stream then ends cleanly.
  std::optional<Fault> fault;
  std::chrono::milliseconds timeout{0};            // 0: no timeoutSeconds.
  std::chrono::milliseconds bookmark_interval{0};  // 0: no bookmarks.
  std::size_t chunk_bytes = 0;                     // 0: one chunk per batch.
};

// Headers, then silence until the client leaves.
struct StallReply {
  bool chunked = false;
};

// Close the connection without answering.
struct DropReply {};

using Reply = std::variant<SimpleReply, BodyReply, WatchReply, StallReply, DropReply>;

class ApiHandler {
 public:
  ApiHandler(ResourceCatalog& catalog, FakeStore& store, FaultScript& faults, RequestLog& log,
             ServerSettings& settings, ReviewTable& reviews);

  Reply Handle(const HttpRequest& request);

 private:
  struct ResourcePath {
    ResourceType type;
    std::string namespace_name;
    std::string name;
    bool legacy_watch = false;  // /api/v1/watch/...: a watch whatever the query says.
  };

  Reply Route(const HttpRequest& request, const RequestTarget& target);
  // The registered resources, and the review APIs when they are on: what discovery lists.
  std::vector<ResourceType> DiscoverableTypes() const;
  Reply ServeReview(const HttpRequest& request, const std::string& path);
  Reply ServeDiscovery(const std::vector<std::string>& segments);
  Reply ServeResource(const ResourcePath& path, const RequestTarget& target);
  Reply ServeGet(const ResourcePath& path, const std::optional<Fault>& fault);
  Reply ServeList(const ResourcePath& path, ListOptions options,
                  const std::optional<Fault>& fault);
  Reply ServeWatch(const ResourcePath& path, ListOptions options, std::optional<Fault> fault);

  ResourceCatalog& catalog_;
  FakeStore& store_;
  FaultScript& faults_;
  RequestLog& log_;
  ServerSettings& settings_;
  ReviewTable& reviews_;
};

// Continue tokens as the apiserver's etcd3 storage writes them: base64url (no padding) of
// {"v":"meta.k8s.io/v1","rv":REVISION,"start":"KEY\u0000"}.
std::string EncodeContinueToken(std::uint64_t revision, const std::string& last_key);
struct ContinuePosition {
  std::uint64_t revision;
  std::string start_key;
};
std::optional<ContinuePosition> DecodeContinueToken(const std::string& token);

}  // namespace informerd::fakeapi
