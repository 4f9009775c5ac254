// FaultScript: the faults a test queues for the fake apiserver ("the next 2 watches of pods end
// with a 410 ERROR event"), consumed in order by the requests they match, so that a test is
// deterministic.
//
// Queues are keyed by resource (ResourceType::Key(), or "*" for any resource) and verb. A LIST
// request takes from kListContinue first when it carries a continue token, then from kList;
// discovery requests take from kDiscovery whatever the resource. Thread-safe: tests add faults
// from their thread, connection handlers take them on the I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace informerd::fakeapi {

// kCreate: the POST of a TokenReview or SubjectAccessReview (review_api.h names their keys).
enum class Verb { kList, kListContinue, kGet, kWatch, kDiscovery, kCreate };
const char* VerbName(Verb verb);

enum class FaultKind {
  // Any verb: an error response with a Status body (410, 429, 500, 503...), with `Retry-After`
  // when retry_after_seconds > 0.
  kHttpError,
  // Any verb: the connection is closed without a response.
  kDropConnection,
  // Any verb: the response headers are sent, then nothing, until the client goes away.
  kStall,
  // LIST/GET: a 200 response whose body is not valid JSON. WATCH: one line that is not valid
  // JSON, in a well-formed chunk, after which the stream goes on. CREATE (reviews): a 201 whose
  // body is not valid JSON.
  kMalformedJson,
  // LIST/GET/WATCH: an object of `object_bytes` (64 MiB by default) in the response or stream.
  kHugeObject,
  // WATCH: an ERROR event carrying a Status with `status_code` and `reason` (410 "Expired", or
  // "Gone" as servers before Kubernetes 1.18 said), then a clean end of the stream.
  kWatchErrorEvent,
  // WATCH: a chunk whose size line announces more bytes than are sent, then the TCP close.
  kCloseMidChunk,
  // WATCH: a complete chunk holding half an event line, then the TCP close.
  kCloseMidJson,
  // WATCH: the stream ends cleanly (last chunk) with no events: a "very short watch".
  kEndWatch,
  // CREATE (reviews): the usual answer, sent after `delay` (other requests on other connections
  // are served meanwhile).
  kDelay,
};

struct Fault {
  FaultKind kind = FaultKind::kHttpError;
  int status_code = 500;
  std::string reason;
  std::string message;
  int retry_after_seconds = 0;
  // WATCH faults strike after this many events were sent on the stream (0: right after the
  // response headers). kStall then stops sending, bookmarks included.
  std::size_t after_events = 0;
  std::size_t object_bytes = std::size_t{64} << 20;
  std::chrono::milliseconds delay{0};

  static Fault HttpError(int code, std::string reason, std::string message = "",
                         int retry_after_seconds = 0);
  static Fault TooManyRequests(int retry_after_seconds);     // 429 + Retry-After.
  static Fault ServiceUnavailable(int retry_after_seconds);  // 503 + Retry-After.
  static Fault Expired();                                    // HTTP 410 reason Expired.
  static Fault DropConnection();
  static Fault Stall(std::size_t after_events = 0);
  static Fault MalformedJson(std::size_t after_events = 0);
  static Fault HugeObject(std::size_t bytes = std::size_t{64} << 20, std::size_t after_events = 0);
  static Fault WatchErrorEvent(int code, std::string reason, std::size_t after_events = 0);
  static Fault ExpiredEvent(std::size_t after_events = 0);  // ERROR 410 "Expired".
  static Fault GoneEvent(std::size_t after_events = 0);     // ERROR 410 "Gone" (pre-1.18).
  static Fault CloseMidChunk(std::size_t after_events = 0);
  static Fault CloseMidJson(std::size_t after_events = 0);
  static Fault EndWatch(std::size_t after_events = 0);
  static Fault Delay(std::chrono::milliseconds delay);
};

class FaultScript {
 public:
  // The next `times` requests of `verb` on `resource` ("*": any resource) get `fault`.
  void Add(const std::string& resource, Verb verb, const Fault& fault, int times = 1);
  // The fault for a request, consumed; nullopt when none is queued.
  std::optional<Fault> Take(const std::string& resource, Verb verb);
  std::size_t Pending(const std::string& resource, Verb verb) const;
  void Clear();

 private:
  std::optional<Fault> TakeLocked(const std::string& resource, Verb verb);

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, Verb>, std::deque<Fault>> queues_;
};

}  // namespace informerd::fakeapi
