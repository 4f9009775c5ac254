// Informer: runs one configured resource's upstream side. It carries out what the
// core::Reflector decides (LIST pages, WATCH streams, backoff timers) with the apiserver client
// (a ListWatchClient: ApiServerClient in the daemon, a scripted one in tests), decodes the bodies
// with core::ListDecoder and core::WatchEventDecoder, and thereby fills the core::Cache that the
// gRPC service reads and subscribes to. client-go's SharedIndexInformer is the counterpart; the
// decisions live in core/, this class only does the I/O they ask for.
//
// Data flow: kube-apiserver → ApiServerClient → Informer (decode) → Reflector (decide) →
// Cache (store, window, fan-out) → gRPC subscribers.
//
// Ownership and threads: SharedInformerFactory owns each Informer through a shared_ptr (Create);
// the client it borrows outlives it; the Cache is shared with the gRPC service. All of the
// informer's state lives on the client's strand: Start(), Stop() and every callback run there
// (Start and Stop may be called from any thread; they post). status() may be called from any
// thread: it returns a copy published under a small mutex after each step.
#pragma once

#include <spdlog/logger.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/api_resources.h"
#include "core/cache.h"
#include "core/clock.h"
#include "core/defaults.h"
#include "core/list_decoder.h"
#include "core/random_source.h"
#include "core/reflector.h"
#include "core/upstream_metrics.h"
#include "core/watch_event_decoder.h"
#include "daemon/kube/list_watch_client.h"
#include "daemon/kube/timer.h"

namespace informerd::daemon {

struct InformerOptions {
  core::ResolvedResource resource;
  // The configured scope: namespace ("" = all) and upstream selectors, passed to the apiserver.
  std::string namespace_name;
  std::string label_selector;
  std::string field_selector;
  // How objects are decoded (managedFields stripping, extra field paths for indexes).
  core::ScanOptions scan;
  core::ReflectorOptions reflector;
  // The largest object accepted (config maxObjectBytes), as one watch event or one LIST item. A
  // larger one is skipped and the list or watch goes on without it (retrying would only meet it
  // again): the decoders recover its namespace/name from the bytes they keep, and the cache
  // stops holding it (a list that skips it deletes it as absent; a skipped watch event deletes
  // it, DELETED to subscribers with the last state the cache had, at the event's resource
  // version, which the watch resumes after). Each skip is counted
  // (UpstreamMetrics::objects_too_large), logged at warn once per object until it fits again or
  // is deleted, and the latest one is in the status (ReflectorStatus::skipped_object).
  std::size_t max_event_bytes = core::kDefaultMaxObjectBytes;
  // Called on the strand each time the reflector enters its gone state (the apiserver answered
  // 404 for the resource's LIST): the owner asks discovery whether the resource still exists
  // (daemon/informers/shared_informer_factory.*). Meanwhile the reflector looks again every
  // ReflectorOptions::gone_retry_interval, so a 404 that discovery does not confirm heals by
  // itself. Optional.
  std::function<void()> on_resource_gone;
  // Where the backoff timer comes from (asked once, when the informer is created); nullptr: an
  // Asio steady timer on the client's strand. Tests pass fake timers (test/common/fake_timers.h).
  TimerFactory* timers = nullptr;
  // The reflector's jitter and watch timeouts; nullptr: the informer's own, seeded from
  // std::random_device. Used on the strand only. Must outlive the informer.
  core::RandomSource* random = nullptr;
};

class Informer : public std::enable_shared_from_this<Informer> {
 public:
  // `client` and `clock` must outlive the informer.
  static std::shared_ptr<Informer> Create(ListWatchClient& client, InformerOptions options,
                                          std::shared_ptr<core::Cache> cache,
                                          const core::Clock& clock,
                                          std::shared_ptr<spdlog::logger> logger);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Begins the initial sync. Any thread.
  void Start();
  // Closes the watch, cancels timers; the cache keeps its objects. Any thread; idempotent.
  void Stop();

  // A copy of the reflector's status as of its last step, its freshness (staleness, and stale
  // past ReflectorOptions::max_staleness) as of now by the informer's clock. Any thread.
  core::ReflectorStatus status() const;

  const InformerOptions& options() const { return options_; }
  const std::shared_ptr<core::Cache>& cache() const { return cache_; }
  // What the informer has received from the apiserver, for metrics. Any thread.
  const core::UpstreamMetrics& upstream_metrics() const { return upstream_metrics_; }

  // "/api/v1/namespaces/NS/pods?labelSelector=...&limit=500&resourceVersion=0" for a LIST and
  // "...?watch=1&..." for a WATCH. Public for tests.
  static std::string ListPath(const InformerOptions& options, const core::ListParams& params);
  static std::string WatchPath(const InformerOptions& options, const core::WatchParams& params);

 private:
  struct Token {};

 public:
  Informer(Token, ListWatchClient& client, InformerOptions options,
           std::shared_ptr<core::Cache> cache, const core::Clock& clock,
           std::shared_ptr<spdlog::logger> logger);

 private:
  // On the strand.
  void Execute(core::ReflectorAction action);
  void SendList(const core::ListParams& params);
  void OpenWatch(const core::WatchParams& params);
  void ArmTimer(std::chrono::milliseconds duration);
  void CancelInFlight();
  void OnListResult(uint64_t generation, HttpResult result);
  void OnWatchBytes(uint64_t generation, std::string_view bytes);
  void OnWatchEnd(uint64_t generation, HttpResult result);
  // Hands decoded events to the reflector in stream order and carries out what it decides; an
  // event the decoder skipped is noted and replaced by what it means for the cache
  // (TooLargeReplacement). False when the reflector moved on from the watch (the events after
  // that point are dropped, as the reflector would drop them).
  bool DeliverWatchEvents(std::vector<core::WatchEvent> events);
  // A watch event the decoder skipped stands in the stream as: nothing during a WatchList's
  // initial events (their end deletes the object as absent); a DELETED of the cached object,
  // with its last cached state at the event's resource version, if the cache holds it; else a
  // BOOKMARK at that version, so that the watch and the cache move past it.
  std::optional<core::WatchEvent> TooLargeReplacement(const core::WatchEvent& event) const;
  // Counts a skipped object, logs it once per episode, and keeps it for the status. `what`:
  // "a watch event" or "a LIST item".
  void NoteTooLarge(const core::SkippedObject& object, const char* what);
  // A watch event of a normal size for the object: it is no longer skipped.
  void NoteFits(const core::ObjectRecord& object);
  void Publish();
  void LogTransition(const core::ReflectorAction& action);
  // Counts objects received by the list in progress; logs progress every kListProgressInterval.
  void NoteListProgress(std::size_t objects);

  ListWatchClient& client_;
  const InformerOptions options_;
  const std::shared_ptr<core::Cache> cache_;
  // Times the lists for the log (progress every kListProgressInterval, the sync's duration), and
  // dates status()'s freshness (on any thread).
  const core::Clock& clock_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<core::RandomSource> own_random_;  // when options_.random is not given
  core::Reflector reflector_;
  std::unique_ptr<Timer> timer_;

  // Everything the strand owns. `generation_` increases with every action carried out, so a
  // callback of a request that was superseded is recognised and ignored.
  uint64_t generation_ = 0;
  bool stopped_ = false;
  std::optional<core::ListDecoder> list_decoder_;
  std::optional<core::WatchEventDecoder> watch_decoder_;
  WatchHandle watch_;
  bool watch_events_received_ = false;
  // The watch in progress has told the reflector it is open (OnWatchStarted).
  bool watch_opened_ = false;
  core::Clock::TimePoint list_started_;
  std::size_t listed_objects_ = 0;
  core::Clock::TimePoint list_progress_logged_;
  core::ReflectorState logged_state_ = core::ReflectorState::kNotStarted;
  std::array<uint64_t, core::kRelistReasonCount> logged_relists_{};
  // Objects over max_event_bytes ("namespace/name"): those being skipped now, each logged once
  // until it fits again, is deleted, or a complete list no longer skips it; those the list in
  // progress skipped; and the latest skip, described for the status.
  std::set<std::string> too_large_;
  std::set<std::string> too_large_in_list_;
  std::string latest_too_large_;

  core::UpstreamMetrics upstream_metrics_;

  mutable std::mutex status_mu_;
  core::ReflectorStatus status_;  // guarded by status_mu_
};

}  // namespace informerd::daemon
