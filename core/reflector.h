// Reflector: the list/relist/watch state machine for one resource, after client-go's Reflector
// (k8s.io/client-go/tools/cache/reflector.go: ListAndWatch, list, watch, watchList,
// handleAnyWatch, relistResourceVersion) and its pager (k8s.io/client-go/tools/pager/pager.go).
//
// Data flow: apiserver → API client (daemon/, does the HTTP) → Reflector (decides) →
// ReflectorSink (core/reflector_sink.h: the store and fan-out). The reflector does no I/O, keeps
// no timers and never sleeps: the driver (the daemon's per-resource informer, on its Asio
// thread) reports what happened through the On* inputs, and every input returns the next
// action. The driver carries the action out and reports back:
//   ListAction   send this LIST request; answer with OnListPage or OnListFailed.
//   WatchAction  open this WATCH; answer with OnWatchStarted (HTTP 200 received), OnWatchEvents
//                (any number of times, events in stream order) and finally OnWatchEnded.
//   WaitAction   arm a timer for the duration; answer with OnTimer.
//   IdleAction   nothing new: carry on with what is in progress (the open watch stream).
//   StoppedAction  the reflector has stopped; release everything.
// Each List/Watch/Wait action supersedes whatever the driver had in progress: for example when
// OnWatchEvents returns a ListAction (a 410 ERROR event), the driver closes the watch stream
// without reporting OnWatchEnded for it, then sends the LIST. An input that arrives for a request
// the reflector has already moved past (a late page, a late timer) changes nothing and returns
// IdleAction; after Stop every input returns the StoppedAction again.
//
// The list never accumulates here: each page goes to the sink as it arrives (BeginList before
// the first page, ListItems per page, EndList at the list's RV, AbortList when a list is
// abandoned), and a WatchList's initial ADDED events go to ListItems in the batches they came in.
//
// Ownership and threads: the daemon owns one Reflector per configured resource, together with
// its sink, clock and random source (which must outlive it). Every method, getters included, is
// called from the driver's thread; other threads read a copy of status() that the driver
// publishes.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/list_decoder.h"
#include "core/object_record.h"
#include "core/random_source.h"
#include "core/reflector_sink.h"
#include "core/watch_event_decoder.h"

namespace informerd::core {

// How a LIST or WATCH request failed, as the API client saw it.
struct ApiError {
  // The HTTP status of the response; 0 when there was none (connection refused or reset, TLS
  // failure, timeout, a broken watch stream); 200 for an ERROR event inside a watch stream.
  int http_status = 0;
  // The metav1.Status the server sent: the error response's body, or an ERROR event's object.
  std::optional<KubeStatus> status;
  // The Retry-After header, when the response had one.
  std::optional<std::chrono::seconds> retry_after;
  // What the client knows beyond the Status: the transport error, or the HTTP reason phrase.
  std::string message;

  static ApiError Transport(std::string message);
  static ApiError Http(int http_status, std::optional<KubeStatus> status = std::nullopt,
                       std::optional<std::chrono::seconds> retry_after = std::nullopt);
  // An ERROR event inside a watch stream (HTTP 200).
  static ApiError WatchErrorEvent(KubeStatus status);

  // The Kubernetes error code: the Status's code when it has one, else the HTTP status.
  int code() const;
  // One line for people, with the server's Status message when there is one (it is written for
  // users and says what is wrong), e.g. `HTTP 403 Forbidden: pods is forbidden: ...`.
  std::string Describe() const;
  // The same, as an absl::Status whose code is code()'s entry in core/http_status.h's table (403
  // → PERMISSION_DENIED, ...), the table the API client uses too.
  absl::Status ToStatus() const;
};

// The query of a LIST request: `?resourceVersion=..&limit=..&continue=..`. An empty field means
// the parameter is left out (`resourceVersion` omitted is the consistent read "").
struct ListParams {
  std::string resource_version;
  // Always empty: client-go's reflector never sets resourceVersionMatch on lists; it relies on
  // the legacy meanings ("0": any cached state; "X" without limit: not older than X).
  std::string resource_version_match;
  int64_t limit = 0;  // 0: no limit (a full list)
  std::string continue_token;

  friend bool operator==(const ListParams& a, const ListParams& b) {
    return a.resource_version == b.resource_version &&
           a.resource_version_match == b.resource_version_match && a.limit == b.limit &&
           a.continue_token == b.continue_token;
  }
};

// The query of a WATCH request: `?watch=1&resourceVersion=..&timeoutSeconds=..
// &allowWatchBookmarks=true[&sendInitialEvents=true&resourceVersionMatch=NotOlderThan]`.
struct WatchParams {
  std::string resource_version;
  std::string resource_version_match;  // "NotOlderThan" for WatchList, else empty
  int64_t timeout_seconds = 0;
  bool allow_watch_bookmarks = true;
  bool send_initial_events = false;

  friend bool operator==(const WatchParams& a, const WatchParams& b) {
    return a.resource_version == b.resource_version &&
           a.resource_version_match == b.resource_version_match &&
           a.timeout_seconds == b.timeout_seconds &&
           a.allow_watch_bookmarks == b.allow_watch_bookmarks &&
           a.send_initial_events == b.send_initial_events;
  }
};

struct ListAction {
  ListParams params;
  friend bool operator==(const ListAction& a, const ListAction& b) { return a.params == b.params; }
};
struct WatchAction {
  WatchParams params;
  friend bool operator==(const WatchAction& a, const WatchAction& b) {
    return a.params == b.params;
  }
};
struct WaitAction {
  std::chrono::milliseconds duration{0};
  friend bool operator==(const WaitAction& a, const WaitAction& b) {
    return a.duration == b.duration;
  }
};
struct IdleAction {
  friend bool operator==(const IdleAction&, const IdleAction&) { return true; }
};
struct StoppedAction {
  std::string reason;
  friend bool operator==(const StoppedAction& a, const StoppedAction& b) {
    return a.reason == b.reason;
  }
};

using ReflectorAction =
    std::variant<ListAction, WatchAction, WaitAction, IdleAction, StoppedAction>;

// For logs and test failures, e.g. `List{resourceVersion="0" limit=500}`.
std::string DescribeAction(const ReflectorAction& action);

enum class ReflectorState {
  kNotStarted,
  kListing,     // a LIST, or a WatchList's initial events, is in progress
  kWatching,    // a WATCH is open or being opened
  kBackingOff,  // waiting before retrying after a failure
  kGone,        // the apiserver does not serve the resource (404); retrying slowly
  kStopped,
};
const char* ReflectorStateName(ReflectorState state);

// Why a list (or a WatchList's initial stream) was started; counted per reason.
enum class RelistReason {
  kInitial,            // the first sync
  kExpired,            // a resource version was no longer (or not yet) available: 410 Expired
                       // or Gone, or "Too large resource version"
  kWatchError,         // the watch failed in a way a rewatch cannot fix (404 on the watch)
  kListError,          // the previous list attempt failed
  kWatchListFallback,  // the server does not do WatchList: plain LIST from now on
  kRediscovery,        // retrying a resource that was gone
};
inline constexpr std::size_t kRelistReasonCount = 6;
const char* RelistReasonName(RelistReason reason);

struct ReflectorOptions {
  // LIST page size (client-go's pager default).
  int64_t page_size = 500;
  // Start with a WatchList stream (sendInitialEvents=true) instead of LIST; falls back to LIST
  // for good if the server does not honour it.
  bool use_watch_list = false;
  // Watches ask for timeoutSeconds drawn from [min, 2 x min) (client-go's minWatchTimeout).
  std::chrono::seconds min_watch_timeout{300};
  // A watch that ends cleanly sooner than this with no event counts as a failure.
  std::chrono::milliseconds short_watch{1000};
  // How long to wait before looking again for a resource the server answered 404 for.
  std::chrono::seconds gone_retry_interval{30};
  // Retry-After (429/503) is honoured up to this much, so a broken proxy cannot park the
  // informer for hours.
  std::chrono::seconds max_retry_after{600};
  // During a WatchList's initial events, a pause this long between two events means the server
  // is not streaming an initial state (it ignored sendInitialEvents): fall back to LIST.
  // client-go warns after the same 10 s without progress.
  std::chrono::seconds watch_list_stall{10};
  BackoffOptions backoff;
  // How stale the cached data may grow before it no longer counts as current (config
  // maxStaleness); zero: no bound. It changes nothing the reflector does: its status judges
  // staleness against it (ReflectorStatus::stale).
  Clock::TimePoint::duration max_staleness = std::chrono::minutes(5);
};

// A copy of the reflector's status for ListResources and metrics.
struct ReflectorStatus {
  ReflectorState state = ReflectorState::kNotStarted;
  // The last resource version seen: the last complete list's, then each event's and bookmark's.
  std::string resource_version;
  // A list has completed, and the resource has not been marked unsynced since.
  bool synced = false;
  bool resource_gone = false;
  // The last failure was 401 or 403: credentials are missing, wrong, or not allowed.
  bool auth_failing = false;
  // WatchList is in use (false when not asked for, or after falling back to LIST).
  bool using_watch_list = false;
  // The most recent failure (kept after recovery; consecutive_failures says whether it is
  // current); OK if nothing has failed yet.
  absl::Status last_error;
  std::array<uint64_t, kRelistReasonCount> relists{};
  // Watches re-opened from the last RV without a relist.
  uint64_t watch_restarts = 0;
  // Failures since the last success (a complete list, a watch accepted by the apiserver, or one
  // that delivered events or lasted).
  uint32_t consecutive_failures = 0;
  // While some object is being skipped for being larger than maxObjectBytes, the latest skip, for
  // people: "skipping ns/big: a watch event of 70000 bytes, larger than the 65536-byte limit on
  // one object (maxObjectBytes)"; else empty. Not a failure: the resource stays synced. The
  // driver, which decodes, fills it in (the reflector never sees such objects).
  std::string skipped_object;

  // Freshness. While `watch_open`, the cached data is current: an open watch (accepted by the
  // apiserver, and past a WatchList's initial events) delivers every change as it happens.
  // Otherwise the data was last confirmed at `confirmed_at`: the end of the last complete list,
  // the last event or bookmark, or the end of the last watch that worked (a watch closed by the
  // apiserver within ReflectorOptions::short_watch with no event did not).
  bool watch_open = false;
  Clock::TimePoint confirmed_at{};
  // How stale the data may be, as of when this status was taken (or last refreshed): zero while
  // the watch is open, else the time since confirmed_at. Nullopt while not synced (before the
  // first sync, or while the resource is gone): not synced is its own state.
  std::optional<Clock::TimePoint::duration> staleness;
  // When staleness exceeds ReflectorOptions::max_staleness (a non-zero one): why the data is not
  // to be trusted as current, for people, naming the upstream error, for example "no update
  // confirmed by the apiserver for 312 s, longer than maxStaleness (300 s): watch: HTTP 403
  // Forbidden: pods is forbidden: ..."; else empty.
  std::string stale;

  // The failure that is current (consecutive_failures > 0), or OK: what explains a sync that
  // does not come (a 403, a TLS error, a 404 for a deleted CRD).
  absl::Status current_error() const {
    return consecutive_failures > 0 ? last_error : absl::OkStatus();
  }
  // Sets staleness and stale as of `now`, against `max_staleness` (zero: no bound): a copy of
  // the status read later than it was taken is refreshed with this.
  void RefreshFreshness(Clock::TimePoint now, Clock::TimePoint::duration max_staleness);
};

class Reflector {
 public:
  // `sink`, `clock` and `random` must outlive the reflector.
  Reflector(ReflectorOptions options, ReflectorSink& sink, const Clock& clock,
            RandomSource& random);
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // Begins the first sync: a LIST at resourceVersion "0", or a WatchList stream.
  ReflectorAction Start();

  // One page of the LIST requested by the last ListAction.
  ReflectorAction OnListPage(ListPage page);
  // The LIST requested by the last ListAction failed (error response or transport error).
  ReflectorAction OnListFailed(ApiError error);

  // The WATCH requested by the last WatchAction was accepted (HTTP 200; the stream is open).
  // From then on a plain watch keeps the data current (staleness zero) until it ends; so does a
  // WatchList stream once its initial events are in. An event implies it.
  ReflectorAction OnWatchStarted();
  // Events decoded from the open watch stream, in order.
  ReflectorAction OnWatchEvents(std::vector<WatchEvent> events);
  // The open (or opening) watch ended: `error` is nullopt for a clean end of the stream (the
  // server's timeout), else why it failed (HTTP error response, transport error, broken stream).
  // `events_received`: whether the stream delivered any event.
  ReflectorAction OnWatchEnded(std::optional<ApiError> error, bool events_received);

  // The timer armed for the last WaitAction fired.
  ReflectorAction OnTimer();

  // Stops for good. A list in progress is abandoned (sink AbortList).
  ReflectorAction Stop(std::string reason = "stop requested");

  ReflectorState state() const;
  const std::string& resource_version() const { return last_rv_; }
  bool synced() const { return synced_; }
  // The resource is not served any more (404): the daemon should re-run discovery. The
  // reflector keeps retrying every gone_retry_interval, and starts over with a list when the
  // resource is back.
  bool resource_gone() const { return gone_; }
  bool auth_failing() const { return auth_failing_; }
  bool using_watch_list() const { return use_watch_list_; }
  const absl::Status& last_error() const { return last_error_; }
  uint64_t relist_count(RelistReason reason) const {
    return relists_[static_cast<std::size_t>(reason)];
  }
  uint64_t watch_restarts() const { return watch_restarts_; }
  uint32_t consecutive_failures() const { return consecutive_failures_; }
  ReflectorStatus status() const;

 private:
  enum class Phase { kNotStarted, kListing, kWatchListing, kWatching, kWaiting, kGone, kStopped };
  // What to do when the timer of a WaitAction fires.
  enum class AfterWait { kRelist, kRewatch };

  // The LIST in progress: one attempt, possibly spanning several pages.
  struct ListAttempt {
    // The request just sent.
    ListParams request;
    // The resourceVersion of the attempt's first page request (continue pages send none).
    std::string requested_rv;
    // BeginList has been called for this attempt.
    bool begun = false;
    // Some page carried a continue token.
    bool paginated = false;
    // The list's RV, from its first page.
    std::string list_rv;
  };

  // The WATCH in progress (plain, or WatchList while phase_ is kWatchListing).
  struct WatchAttempt {
    WatchParams request;
    Clock::TimePoint opened_at{};
    bool events_received = false;
    // WatchList: BeginList has been called.
    bool list_begun = false;
    // WatchList: when the last initial event arrived.
    std::optional<Clock::TimePoint> last_initial_event_at;
  };

  ReflectorAction StartRelist(RelistReason reason);
  ReflectorAction StartList(RelistReason reason);
  ReflectorAction StartWatchList(RelistReason reason);
  ReflectorAction StartWatch();
  ReflectorAction RetryAfterBackoff(AfterWait after, RelistReason reason, const ApiError* error);
  ReflectorAction EnterGone();
  ReflectorAction FallBackToList();
  ReflectorAction HandleWatchFailure(const ApiError& error);
  ReflectorAction ProcessInitialEvents(std::vector<WatchEvent>& events, std::size_t& next);
  ReflectorAction ProcessLiveEvents(std::vector<WatchEvent>& events, std::size_t next);
  void AbandonList();
  void RecordFailure(absl::Status status);
  void RecordSuccess();
  // The watch in progress is over. `worked`: it delivered until now (whatever ended it), so an
  // open one confirms the data up to this moment.
  void WatchClosed(bool worked);
  // client-go's relistResourceVersion: "" after an expired/too-large RV, "0" before the first
  // sync, else the last RV seen.
  std::string RelistResourceVersion() const;
  int64_t RandomWatchTimeoutSeconds();

  ReflectorOptions options_;
  ReflectorSink& sink_;
  const Clock& clock_;
  RandomSource& random_;
  Backoff backoff_;

  Phase phase_ = Phase::kNotStarted;
  AfterWait after_wait_ = AfterWait::kRelist;
  RelistReason after_wait_reason_ = RelistReason::kListError;
  std::string stop_reason_;
  ListAttempt list_;
  WatchAttempt watch_;

  std::string last_rv_;
  // client-go's isLastSyncResourceVersionUnavailable: the last list or WatchList at last_rv_
  // failed as expired or too large; list at "" (a consistent read) until a list succeeds.
  bool rv_unavailable_ = false;
  // client-go's paginatedResult: the first list at RV "0" came in pages, so the server does not
  // serve lists from its watch cache; keep paginating relists too.
  bool paginated_result_ = false;
  bool use_watch_list_;

  bool synced_ = false;
  bool gone_ = false;
  bool auth_failing_ = false;
  absl::Status last_error_;
  std::array<uint64_t, kRelistReasonCount> relists_{};
  uint64_t watch_restarts_ = 0;
  uint32_t consecutive_failures_ = 0;
  // Freshness (see ReflectorStatus): the watch in progress is open and past its initial events;
  // when the data was last confirmed.
  bool watch_open_ = false;
  Clock::TimePoint confirmed_at_{};
};

}  // namespace informerd::core
