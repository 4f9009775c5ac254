#include "core/reflector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "core/http_status.h"

namespace informerd::core {
namespace {

// The annotation-free meaning of a 410: client-go's isExpiredError accepts reason Expired
// (Kubernetes >= 1.18) and Gone (earlier servers answered 410 with either); a bare HTTP 410
// without a Status body means the same.
bool IsExpired(const ApiError& error) {
  if (error.code() == 410) return true;
  return error.status && (error.status->reason == "Expired" || error.status->reason == "Gone");
}

// client-go's isTooLargeResourceVersionError: the server has not caught up with the requested
// RV (an apiserver behind its peers, or an etcd restore). Newer servers add the cause
// ResourceVersionTooLarge, which KubeStatus does not keep; every version since 1.17 puts
// "Too large resource version" in the message (a 504 Timeout), which is what client-go falls
// back to matching, and so does this.
bool IsTooLargeResourceVersion(const ApiError& error) {
  constexpr const char* kMarker = "Too large resource version";
  if (error.status && error.status->message.find(kMarker) != std::string::npos) return true;
  return error.message.find(kMarker) != std::string::npos;
}

bool IsResourceVersionUnavailable(const ApiError& error) {
  return IsExpired(error) || IsTooLargeResourceVersion(error);
}

bool IsNotFound(const ApiError& error) { return error.code() == 404; }

// A 1.19-1.26 apiserver answers a WatchList request with 422 Invalid ("resourceVersionMatch is
// forbidden for watch"); a 1.27+ one with the WatchList feature off does the same for
// sendInitialEvents. 400 covers proxies and servers that reject the query outright.
bool IsWatchListRejected(const ApiError& error) {
  return error.code() == 422 || error.code() == 400;
}

absl::Status Annotate(const char* what, const absl::Status& status) {
  return absl::Status(status.code(), fmt::format("{}: {}", what, std::string(status.message())));
}

}  // namespace

// ---- ApiError ----------------------------------------------------------------------------

ApiError ApiError::Transport(std::string message) {
  ApiError error;
  error.message = std::move(message);
  return error;
}

ApiError ApiError::Http(int http_status, std::optional<KubeStatus> status,
                        std::optional<std::chrono::seconds> retry_after) {
  ApiError error;
  error.http_status = http_status;
  error.status = std::move(status);
  error.retry_after = retry_after;
  return error;
}

ApiError ApiError::WatchErrorEvent(KubeStatus status) {
  ApiError error;
  error.http_status = 200;
  error.status = std::move(status);
  return error;
}

int ApiError::code() const {
  if (status && status->code != 0) return status->code;
  return http_status;
}

std::string ApiError::Describe() const {
  if (http_status == 0 && !status) {
    return message.empty() ? "transport error" : fmt::format("transport error: {}", message);
  }
  std::string text = status && !status->message.empty() ? status->message : message;
  std::string reason = status && !status->reason.empty() ? " " + status->reason : "";
  if (http_status == 200 && status) {
    return fmt::format("watch ERROR event {}{}: {}", code(), reason, text);
  }
  return fmt::format("HTTP {}{}: {}", code(), reason, text);
}

absl::Status ApiError::ToStatus() const {
  // The same table as the API client's (core/http_status.h), keyed on the Kubernetes code so
  // that a watch ERROR event carries the code of its Status.
  return absl::Status(StatusCodeForHttpError(code()), Describe());
}

// ---- Names -------------------------------------------------------------------------------

std::string DescribeAction(const ReflectorAction& action) {
  return std::visit(
      [](const auto& a) -> std::string {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, ListAction>) {
          std::string text = fmt::format("List{{resourceVersion=\"{}\"", a.params.resource_version);
          if (!a.params.resource_version_match.empty()) {
            text += fmt::format(" resourceVersionMatch={}", a.params.resource_version_match);
          }
          text += fmt::format(" limit={}", a.params.limit);
          if (!a.params.continue_token.empty()) {
            text += fmt::format(" continue=\"{}\"", a.params.continue_token);
          }
          return text + "}";
        } else if constexpr (std::is_same_v<T, WatchAction>) {
          std::string text = fmt::format("Watch{{resourceVersion=\"{}\" timeoutSeconds={}",
                                         a.params.resource_version, a.params.timeout_seconds);
          if (a.params.allow_watch_bookmarks) text += " allowWatchBookmarks";
          if (a.params.send_initial_events) text += " sendInitialEvents";
          if (!a.params.resource_version_match.empty()) {
            text += fmt::format(" resourceVersionMatch={}", a.params.resource_version_match);
          }
          return text + "}";
        } else if constexpr (std::is_same_v<T, WaitAction>) {
          return fmt::format("Wait{{{}ms}}", a.duration.count());
        } else if constexpr (std::is_same_v<T, IdleAction>) {
          return "Idle";
        } else {
          return fmt::format("Stopped{{{}}}", a.reason);
        }
      },
      action);
}

const char* ReflectorStateName(ReflectorState state) {
  switch (state) {
    case ReflectorState::kNotStarted:
      return "not-started";
    case ReflectorState::kListing:
      return "listing";
    case ReflectorState::kWatching:
      return "watching";
    case ReflectorState::kBackingOff:
      return "backing-off";
    case ReflectorState::kGone:
      return "gone";
    case ReflectorState::kStopped:
      return "stopped";
  }
  return "unknown";
}

const char* RelistReasonName(RelistReason reason) {
  switch (reason) {
    case RelistReason::kInitial:
      return "initial";
    case RelistReason::kExpired:
      return "expired";
    case RelistReason::kWatchError:
      return "watch-error";
    case RelistReason::kListError:
      return "list-error";
    case RelistReason::kWatchListFallback:
      return "watch-list-fallback";
    case RelistReason::kRediscovery:
      return "rediscovery";
  }
  return "unknown";
}

// ---- Reflector ---------------------------------------------------------------------------

Reflector::Reflector(ReflectorOptions options, ReflectorSink& sink, const Clock& clock,
                     RandomSource& random)
    : options_(std::move(options)),
      sink_(sink),
      clock_(clock),
      random_(random),
      backoff_(options_.backoff, clock, random),
      use_watch_list_(options_.use_watch_list) {}

ReflectorState Reflector::state() const {
  switch (phase_) {
    case Phase::kNotStarted:
      return ReflectorState::kNotStarted;
    case Phase::kListing:
    case Phase::kWatchListing:
      return ReflectorState::kListing;
    case Phase::kWatching:
      return ReflectorState::kWatching;
    case Phase::kWaiting:
      return ReflectorState::kBackingOff;
    case Phase::kGone:
      return ReflectorState::kGone;
    case Phase::kStopped:
      return ReflectorState::kStopped;
  }
  return ReflectorState::kStopped;
}

ReflectorStatus Reflector::status() const {
  ReflectorStatus status;
  status.state = state();
  status.resource_version = last_rv_;
  status.synced = synced_;
  status.resource_gone = gone_;
  status.auth_failing = auth_failing_;
  status.using_watch_list = use_watch_list_;
  status.last_error = last_error_;
  status.relists = relists_;
  status.watch_restarts = watch_restarts_;
  status.consecutive_failures = consecutive_failures_;
  status.watch_open = watch_open_ && phase_ == Phase::kWatching;
  status.confirmed_at = confirmed_at_;
  status.RefreshFreshness(clock_.Now(), options_.max_staleness);
  return status;
}

void ReflectorStatus::RefreshFreshness(Clock::TimePoint now,
                                       Clock::TimePoint::duration max_staleness) {
  staleness.reset();
  stale.clear();
  if (!synced) return;
  staleness = watch_open ? Clock::TimePoint::duration::zero()
                         : std::max(now - confirmed_at, Clock::TimePoint::duration::zero());
  if (max_staleness <= Clock::TimePoint::duration::zero() || *staleness <= max_staleness) return;
  const auto whole_seconds = [](Clock::TimePoint::duration d) {
    return std::chrono::duration_cast<std::chrono::seconds>(d).count();
  };
  // What keeps the data from being confirmed: the upstream failure (a 403 on every rewatch, an
  // apiserver that does not answer), or, with none, what the reflector is doing (a long relist).
  const absl::Status error = current_error();
  const std::string cause =
      error.ok() ? fmt::format("no upstream error; the informer is {}", ReflectorStateName(state))
                 : std::string(error.message());
  stale = fmt::format(
      "no update confirmed by the apiserver for {} s, longer than maxStaleness ({} s): {}",
      whole_seconds(*staleness), whole_seconds(max_staleness), cause);
}

ReflectorAction Reflector::Start() {
  if (phase_ == Phase::kStopped) return StoppedAction{stop_reason_};
  if (phase_ != Phase::kNotStarted) return IdleAction{};
  return StartRelist(RelistReason::kInitial);
}

ReflectorAction Reflector::Stop(std::string reason) {
  if (phase_ != Phase::kStopped) {
    WatchClosed(/*worked=*/true);
    AbandonList();
    phase_ = Phase::kStopped;
    stop_reason_ = std::move(reason);
  }
  return StoppedAction{stop_reason_};
}

// ---- LIST --------------------------------------------------------------------------------

std::string Reflector::RelistResourceVersion() const {
  // "Since this reflector makes paginated list requests, and all paginated list requests skip
  // the watch cache if the lastSyncResourceVersion is unavailable, we set ResourceVersion=""
  // and list again [...] using a consistent read from etcd." (relistResourceVersion)
  if (rv_unavailable_) return "";
  // "For performance reasons, initial list performed by reflector uses "0" as resource
  // version to allow it to be served from the watch cache if it is enabled."
  if (last_rv_.empty()) return "0";
  return last_rv_;
}

ReflectorAction Reflector::StartRelist(RelistReason reason) {
  return use_watch_list_ ? StartWatchList(reason) : StartList(reason);
}

ReflectorAction Reflector::StartList(RelistReason reason) {
  ++relists_[static_cast<std::size_t>(reason)];
  const std::string rv = RelistResourceVersion();
  // client-go's list(): paginate at RV "" and "0" (the watch cache ignores limit at "0", so the
  // first page may well be the whole list), and once the server has shown it paginates. At any
  // other RV, a limit would force the read past the watch cache to etcd (and, with the legacy
  // semantics, make it an exact read at that RV), so "to avoid thundering herd on etcd (e.g. on
  // master upgrades), we explicitly switch off pagination to force listing from watch cache".
  const bool paginate = rv.empty() || rv == "0" || paginated_result_;
  list_ = ListAttempt{};
  list_.request = ListParams{rv, "", paginate ? options_.page_size : 0, ""};
  list_.requested_rv = rv;
  phase_ = Phase::kListing;
  return ListAction{list_.request};
}

ReflectorAction Reflector::OnListPage(ListPage page) {
  if (phase_ == Phase::kStopped) return StoppedAction{stop_reason_};
  if (phase_ != Phase::kListing) return IdleAction{};

  gone_ = false;  // the server serves the resource again
  if (!list_.begun) {
    // Begun with the first page, not with the request, so that a list that fails before any
    // page arrives costs the sink nothing. The first page's RV is the list's: continue tokens
    // carry it, and every later page is read at that same snapshot.
    sink_.BeginList();
    list_.begun = true;
    list_.list_rv = page.metadata.resource_version;
  }
  std::string continue_token = std::move(page.metadata.continue_token);
  sink_.ListItems(std::move(page.items), list_.list_rv);

  if (!continue_token.empty()) {
    list_.paginated = true;
    // pager.go: "Clear the ResourceVersion on the subsequent List calls to avoid the
    // `specifying resource version is not allowed when using continue` error."
    list_.request = ListParams{"", "", list_.request.limit, std::move(continue_token)};
    return ListAction{list_.request};
  }

  sink_.EndList(list_.list_rv);
  list_.begun = false;
  // "Paginated result returned for request with ResourceVersion="0" mean that watch cache is
  // disabled and there are a lot of objects of a given type." Only the RV "0" list tells: a
  // list at "" always comes paginated, watch cache or not.
  if (list_.requested_rv == "0" && list_.paginated) paginated_result_ = true;
  last_rv_ = list_.list_rv;
  rv_unavailable_ = false;
  synced_ = true;
  confirmed_at_ = clock_.Now();
  RecordSuccess();
  return StartWatch();
}

ReflectorAction Reflector::OnListFailed(ApiError error) {
  if (phase_ == Phase::kStopped) return StoppedAction{stop_reason_};
  if (phase_ != Phase::kListing) return IdleAction{};

  RecordFailure(Annotate("list", error.ToStatus()));
  const bool was_continue = !list_.request.continue_token.empty();
  AbandonList();

  if (IsNotFound(error)) return EnterGone();

  if (was_continue && IsExpired(error)) {
    // The continue token outlived the snapshot it pointed into (etcd compacted it). pager.go:
    // "the list expired while we were processing, fall back to a full list at the requested
    // ResourceVersion": one request without limit, which cannot expire half-way.
    // The server did paginate, which is what paginatedResult records, whatever happens next.
    ++relists_[static_cast<std::size_t>(RelistReason::kExpired)];
    const std::string rv = list_.requested_rv;
    list_ = ListAttempt{};
    list_.request = ListParams{rv, "", 0, ""};
    list_.requested_rv = rv;
    list_.paginated = true;
    return ListAction{list_.request};
  }

  if (IsResourceVersionUnavailable(error) && !list_.requested_rv.empty()) {
    // list(): "Retry immediately if the resource version used to list is unavailable [...]
    // we need to fallback to resourceVersion="" in all to recover and ensure the reflector
    // makes forward progress." Only once: a list at "" that fails goes to backoff below.
    rv_unavailable_ = true;
    return StartList(RelistReason::kExpired);
  }

  return RetryAfterBackoff(AfterWait::kRelist, RelistReason::kListError, &error);
}

void Reflector::AbandonList() {
  if (phase_ == Phase::kListing && list_.begun) {
    sink_.AbortList();
    list_.begun = false;
  }
  if (phase_ == Phase::kWatchListing && watch_.list_begun) {
    sink_.AbortList();
    watch_.list_begun = false;
  }
}

// ---- WATCH -------------------------------------------------------------------------------

int64_t Reflector::RandomWatchTimeoutSeconds() {
  // watch(): "timeoutSeconds := int64(r.minWatchTimeout.Seconds() * (rand.Float64() + 1.0))",
  // spreading the re-watches of many clients over [5 min, 10 min).
  const double seconds =
      static_cast<double>(options_.min_watch_timeout.count()) * (1.0 + random_.Uniform());
  return static_cast<int64_t>(seconds);
}

ReflectorAction Reflector::StartWatch() {
  watch_ = WatchAttempt{};
  // Bookmarks are asked for always: "Reflector doesn't assume bookmarks are returned at all (if
  // the server do not support watch bookmarks, it will ignore this field)."
  watch_.request = WatchParams{last_rv_, "", RandomWatchTimeoutSeconds(), true, false};
  watch_open_ = false;  // until the apiserver accepts it
  // client-go starts the clock before sending the request, "since some proxies won't flush
  // headers until after the first watch event is sent".
  watch_.opened_at = clock_.Now();
  phase_ = Phase::kWatching;
  return WatchAction{watch_.request};
}

ReflectorAction Reflector::StartWatchList(RelistReason reason) {
  ++relists_[static_cast<std::size_t>(reason)];
  watch_ = WatchAttempt{};
  // watchList(): start at the last RV seen ("case 2: start at Exact") or, the first time and
  // after an expired/too-large RV, at "" ("case 1: start at Most Recent": a consistent
  // snapshot).
  const std::string rv = rv_unavailable_ ? "" : last_rv_;
  watch_.request = WatchParams{rv, "NotOlderThan", RandomWatchTimeoutSeconds(), true, true};
  watch_open_ = false;  // until its initial events are in
  watch_.opened_at = clock_.Now();
  phase_ = Phase::kWatchListing;
  return WatchAction{watch_.request};
}

ReflectorAction Reflector::OnWatchStarted() {
  if (phase_ == Phase::kStopped) return StoppedAction{stop_reason_};
  // A WatchList stream confirms nothing before its initial events end.
  if (phase_ == Phase::kWatching) {
    watch_open_ = true;
    // The apiserver accepted the watch: whatever failed before (a 403, a refused connection)
    // is over.
    RecordSuccess();
  }
  // Nothing to decide: the short-watch rule measures from the request, not from the headers.
  return IdleAction{};
}

ReflectorAction Reflector::OnWatchEvents(std::vector<WatchEvent> events) {
  if (phase_ == Phase::kStopped) return StoppedAction{stop_reason_};
  if (phase_ != Phase::kWatching && phase_ != Phase::kWatchListing) return IdleAction{};
  if (events.empty()) return IdleAction{};
  watch_.events_received = true;

  std::size_t next = 0;
  if (phase_ == Phase::kWatchListing) {
    ReflectorAction action = ProcessInitialEvents(events, next);
    if (phase_ != Phase::kWatching) return action;  // still initial, or the stream was given up
  }
  return ProcessLiveEvents(events, next);
}

ReflectorAction Reflector::ProcessInitialEvents(std::vector<WatchEvent>& events,
                                                std::size_t& next) {
  const Clock::TimePoint now = clock_.Now();
  if (watch_.last_initial_event_at &&
      now - *watch_.last_initial_event_at >= options_.watch_list_stall) {
    // The apiserver streams its initial state in one burst. Events after a long pause are live
    // changes: the server ignored sendInitialEvents (the ancient-server case, which neither
    // rejects the parameters nor sends the end bookmark), and waiting for a bookmark that will
    // never come would leave the cache unsynced until the watch times out.
    return FallBackToList();
  }
  watch_.last_initial_event_at = now;

  std::vector<ObjectRecord> batch;
  auto flush = [&] {
    if (!watch_.list_begun) {
      sink_.BeginList();
      watch_.list_begun = true;
    }
    if (!batch.empty()) sink_.ListItems(std::move(batch), "");
    batch.clear();
  };

  for (; next < events.size(); ++next) {
    WatchEvent& event = events[next];
    switch (event.type) {
      case WatchEventType::kAdded:
        batch.push_back(std::move(event.object));
        break;
      case WatchEventType::kBookmark:
        // A bookmark without the annotation is a progress notification; client-go keeps the
        // RV of a WatchList local until the end, so it is not recorded either.
        if (!event.initial_events_end) break;
        flush();
        sink_.EndList(event.resource_version);
        watch_.list_begun = false;
        last_rv_ = event.resource_version;
        rv_unavailable_ = false;
        synced_ = true;
        RecordSuccess();
        phase_ = Phase::kWatching;  // the same stream goes on with live events
        watch_open_ = true;
        confirmed_at_ = clock_.Now();
        ++next;
        return IdleAction{};
      case WatchEventType::kModified:
      case WatchEventType::kDeleted:
        // The initial state is ADDED events only; anything else means the server is sending
        // a plain watch, so the protocol is not honoured: LIST instead.
        return FallBackToList();
      case WatchEventType::kError:
        return HandleWatchFailure(ApiError::WatchErrorEvent(std::move(event.status)));
    }
  }
  if (!batch.empty()) flush();
  return IdleAction{};
}

ReflectorAction Reflector::ProcessLiveEvents(std::vector<WatchEvent>& events, std::size_t next) {
  bool applied = false;
  for (; next < events.size(); ++next) {
    WatchEvent& event = events[next];
    if (event.type == WatchEventType::kError) {
      if (applied) RecordSuccess();
      // The events before the ERROR stand; the stream is over.
      return HandleWatchFailure(ApiError::WatchErrorEvent(std::move(event.status)));
    }
    // handleAnyWatch records every event's RV, bookmarks included: that is where a new watch
    // resumes, and a bookmark lets a quiet watch resume from a recent RV instead of an expired
    // one.
    const std::string_view rv = event.type == WatchEventType::kBookmark
                                    ? std::string_view(event.resource_version)
                                    : event.object.resource_version.view();
    if (!rv.empty()) last_rv_ = rv;
    sink_.ApplyWatchEvent(std::move(event));
    applied = true;
  }
  if (applied) {
    // An event or bookmark: the stream is open and delivering.
    watch_open_ = true;
    confirmed_at_ = clock_.Now();
    RecordSuccess();
  }
  return IdleAction{};
}

ReflectorAction Reflector::OnWatchEnded(std::optional<ApiError> error, bool events_received) {
  if (phase_ == Phase::kStopped) return StoppedAction{stop_reason_};
  if (phase_ != Phase::kWatching && phase_ != Phase::kWatchListing) return IdleAction{};
  if (error) return HandleWatchFailure(*error);

  const bool received = events_received || watch_.events_received;
  const auto lasted = clock_.Now() - watch_.opened_at;
  if (phase_ == Phase::kWatchListing) {
    // A clean end before the initial-events-end bookmark. If the stream ran for its whole
    // timeoutSeconds, the server never meant to send the bookmark: it ignored
    // sendInitialEvents and served a plain watch. client-go's watchList() falls back to LIST on
    // error "because making progress is better than deadlocking"; here, for good. A shorter
    // stream was cut (an apiserver shutting down closes its watches cleanly): like client-go,
    // try the WatchList again, after a backoff.
    RecordFailure(absl::UnavailableError(fmt::format(
        "watch: the WatchList stream ended after {} s, before its initial-events-end bookmark",
        std::chrono::duration_cast<std::chrono::seconds>(lasted).count())));
    if (lasted >= options_.min_watch_timeout) return FallBackToList();
    AbandonList();
    return RetryAfterBackoff(AfterWait::kRelist, RelistReason::kListError, nullptr);
  }

  if (lasted < options_.short_watch && !received) {
    // handleAnyWatch: "very short watch: Unexpected watch close - watch lasted less than a
    // second and no items received": treated as a failure, so a server that keeps closing
    // watches at once is not hammered. Nor does it confirm the data.
    WatchClosed(/*worked=*/false);
    RecordFailure(absl::UnavailableError(
        fmt::format("watch: very short watch: closed after {} ms with no events",
                    std::chrono::duration_cast<std::chrono::milliseconds>(lasted).count())));
    return RetryAfterBackoff(AfterWait::kRewatch, RelistReason::kWatchError, nullptr);
  }

  // The server's timeoutSeconds ran out: re-watch from the last RV at once, no relist.
  WatchClosed(/*worked=*/true);
  RecordSuccess();
  ++watch_restarts_;
  return StartWatch();
}

ReflectorAction Reflector::HandleWatchFailure(const ApiError& error) {
  // An open watch delivered until it broke; one the apiserver refused was never open.
  WatchClosed(/*worked=*/true);
  RecordFailure(Annotate("watch", error.ToStatus()));
  const bool watch_list = phase_ == Phase::kWatchListing;
  AbandonList();

  if (watch_list) {
    // The WatchList stream stands in for the LIST: its failures follow the list rules.
    if (IsNotFound(error)) return EnterGone();
    if (IsWatchListRejected(error)) return FallBackToList();
    if (IsResourceVersionUnavailable(error) && !watch_.request.resource_version.empty()) {
      // watchList(): "we reset the RV and try to get a consistent snapshot from the watch
      // cache (case 1)", immediately.
      rv_unavailable_ = true;
      return StartWatchList(RelistReason::kExpired);
    }
    return RetryAfterBackoff(
        AfterWait::kRelist,
        IsResourceVersionUnavailable(error) ? RelistReason::kExpired : RelistReason::kListError,
        &error);
  }

  if (IsResourceVersionUnavailable(error)) {
    // 410 Expired/Gone (the RV fell out of the server's window) or too-large: only a relist
    // recovers. DefaultWatchErrorHandler: "Don't set LastSyncResourceVersionUnavailable - LIST
    // call with ResourceVersion=RV already has a semantic that it returns data at least as
    // fresh as provided RV. So first try to LIST with setting RV to resource version of last
    // observed object." client-go waits one backoff step (BackoffUntil) before that relist.
    return RetryAfterBackoff(AfterWait::kRelist, RelistReason::kExpired, &error);
  }
  if (IsNotFound(error)) {
    // The resource may be gone (a deleted CRD); the relist finds out and, if so, reports it.
    return RetryAfterBackoff(AfterWait::kRelist, RelistReason::kWatchError, &error);
  }
  // Connection refused or reset, 429, 5xx, 401/403, other ERROR events: the RV is still good,
  // so watch again from it after a backoff. isWatchErrorRetriable: "It doesn't make sense to
  // re-list all objects because most likely we will be able to restart watch where we ended."
  return RetryAfterBackoff(AfterWait::kRewatch, RelistReason::kWatchError, &error);
}

ReflectorAction Reflector::FallBackToList() {
  AbandonList();
  use_watch_list_ = false;
  return StartList(RelistReason::kWatchListFallback);
}

// ---- Waiting -----------------------------------------------------------------------------

ReflectorAction Reflector::RetryAfterBackoff(AfterWait after, RelistReason reason,
                                             const ApiError* error) {
  std::chrono::milliseconds wait = backoff_.Next();
  if (error && error->retry_after && (error->code() == 429 || error->code() == 503)) {
    // The server said when to come back (API Priority and Fairness answers 429 with it): wait
    // at least that long, bounded so a broken proxy cannot park the informer for hours.
    const std::chrono::milliseconds asked = std::min(*error->retry_after, options_.max_retry_after);
    wait = std::max(wait, asked);
  }
  phase_ = Phase::kWaiting;
  after_wait_ = after;
  after_wait_reason_ = reason;
  return WaitAction{wait};
}

ReflectorAction Reflector::EnterGone() {
  AbandonList();
  if (!gone_) {
    gone_ = true;
    synced_ = false;
    sink_.MarkUnsynced("resource no longer served by the apiserver");
  }
  phase_ = Phase::kGone;
  return WaitAction{
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.gone_retry_interval)};
}

ReflectorAction Reflector::OnTimer() {
  switch (phase_) {
    case Phase::kStopped:
      return StoppedAction{stop_reason_};
    case Phase::kWaiting:
      if (after_wait_ == AfterWait::kRewatch) {
        ++watch_restarts_;
        return StartWatch();
      }
      return StartRelist(after_wait_reason_);
    case Phase::kGone:
      return StartRelist(RelistReason::kRediscovery);
    default:
      return IdleAction{};
  }
}

// ---- Health ------------------------------------------------------------------------------

void Reflector::RecordFailure(absl::Status status) {
  auth_failing_ = status.code() == absl::StatusCode::kUnauthenticated ||
                  status.code() == absl::StatusCode::kPermissionDenied;
  last_error_ = std::move(status);
  ++consecutive_failures_;
}

void Reflector::RecordSuccess() {
  consecutive_failures_ = 0;
  auth_failing_ = false;
}

void Reflector::WatchClosed(bool worked) {
  if (watch_open_ && worked) confirmed_at_ = clock_.Now();
  watch_open_ = false;
}

}  // namespace informerd::core
