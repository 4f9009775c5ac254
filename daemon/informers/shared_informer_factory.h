// SharedInformerFactory: turns the configuration's resource entries into running informers, keeps
// them running while resources come and go upstream, and starts informers on demand. For each
// entry it resolves the name through discovery (so "po", "deploy" or a CRD's short name work),
// creates the entry's Cache and Informer and starts it. An entry whose resource the apiserver
// does not serve yet (a CRD installed later) is not an error that stops the daemon: it is
// logged, reported by Pending(), and resolved again every retry_interval until it appears.
//
// A resource that disappears (its CRD is deleted): the informer's reflector gets 404 on LIST and
// reports it (InformerOptions::on_resource_gone); this class then refreshes discovery and
// resolves the entry's name again. Discovery still listing the same resource means the 404 was
// not the resource going away: the reflector keeps looking every gone_retry_interval (as
// client-go's reflector keeps retrying) and heals by itself. Discovery no longer listing it (or
// now resolving the name to another version) confirms it: the informer stops (no more requests
// for it, only the slow rediscovery below), its subscribers end with UNAVAILABLE ("stopped being
// served"), and its registry entry is replaced by a placeholder whose empty cache is shut down
// and whose status says resource_gone, so that ListResources reports "resource no longer served
// by the apiserver", no stale object is ever served, and List/Get/Subscribe answer UNAVAILABLE.
// The entry is pending again: when discovery lists the name again (at whatever version it now
// resolves to) a new Cache and Informer replace the placeholder, list afresh and serve again.
//
// On demand (allowOnDemand; this is the registry's OnDemandSource): a reader of a resource no
// configured entry answers for calls Acquire, which starts an informer for it (all namespaces,
// no upstream selectors, managedFields stripped, no extra indexes) and adds it to the registry
// with on_demand set, or finds the one running, and returns a lease. The informer runs while
// any lease is held; on_demand_grace_period after the last lease is dropped it stops and leaves
// the registry. A lease taken during the grace period cancels the stop.
//
// Data flow: config (daemon/config.h) → Discovery → core::ResolvedResource → Cache + Informer →
// ResourceRegistry (daemon/informers/resource_registry.h), which the gRPC service reads; each
// configured informer that starts is also announced to `on_started`.
//
// Ownership and threads: the daemon owns it (a shared_ptr) next to the apiserver client
// (a ListWatchClient), Discovery and ResourceRegistry it borrows (they must outlive it; the
// registry holds it weakly as its on-demand source). Start() and Stop() may be called from any
// thread; resolution, gone checks and grace timers run on the client's strand. Acquire, the leases'
// release, Entries(), Pending(), AllSynced() and AllReady() may be called from any thread (one
// mutex, never held while calling out, except into the registry, whose mutex ranks below it).
//
// Ingest on several threads (SharedInformerFactoryOptions::ingest_clients): the factory's own
// client (the "home" one: discovery, retries, gone checks, grace timers) need not carry the
// informers. Each new informer, configured or on demand, is placed on the ingest client running
// the fewest informers at that moment (the first of them on a tie) and lives wholly on that
// client's strand (its requests, decoding, backoff timer and cache updates), as every informer
// did on the one client before; a client on an io_context of its own runs on a thread of its own,
// so busy resources on different clients use different cores. What informers on different
// clients share is safe from several threads: the registry and this factory (mutexes), the
// logger, the clock, and discovery (whose state lives on the home strand). Stopping an informer
// (RunningInformer::Stop) from the home strand posts to the informer's own strand.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/clock.h"
#include "core/defaults.h"
#include "daemon/config.h"
#include "daemon/informers/informer.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/kube/discovery.h"
#include "daemon/kube/list_watch_client.h"
#include "daemon/kube/timer.h"

namespace informerd::daemon {

// One running informer and the configuration entry it serves (for an on-demand informer, an
// entry made up for it: the resource's qualified name, all namespaces, no selectors).
struct RunningInformer {
  ResourceConfig config;
  core::ResolvedResource resource;
  std::shared_ptr<core::Cache> cache;
  std::shared_ptr<Informer> informer;
  bool on_demand = false;
  // Which of SharedInformerFactoryOptions::ingest_clients it runs on (0 without them).
  std::size_t ingest_client = 0;

  // Ends this informer for good: no more requests upstream (the informer stops), and the
  // cache's subscribers and waiting readers end with `why`. Every path that retires an informer
  // (shutdown, resource gone, on-demand grace period over) goes through here.
  void Stop(const absl::Status& why) const;
};

struct SharedInformerFactoryOptions {
  // How often unresolved entries (and entries whose resource is gone) are looked up again.
  std::chrono::milliseconds retry_interval{std::chrono::seconds(30)};
  core::CacheOptions cache;          // extra_field_paths is filled per entry
  core::ReflectorOptions reflector;  // shared by every informer
  std::size_t max_event_bytes = core::kDefaultMaxObjectBytes;
  // Where informers are served: each is added as it starts, replaced by a placeholder when its
  // resource is gone, replaced again when it comes back. Optional (tests may watch on_started).
  ResourceRegistry* registry = nullptr;
  // Config allowOnDemand: become the registry's on-demand source (needs `registry`).
  bool allow_on_demand = false;
  // Config onDemandGracePeriod: how long an on-demand informer outlives its last reader.
  std::chrono::milliseconds on_demand_grace_period{std::chrono::minutes(5)};
  // The retry and grace timers, and every informer's backoff timer; nullptr: Asio steady timers
  // on the client's strand. Tests pass fake timers (test/common/fake_timers.h).
  TimerFactory* timers = nullptr;
  // Every informer's random source (InformerOptions::random); nullptr: each its own. With more
  // than one ingest client it is used from several threads at once.
  core::RandomSource* random = nullptr;
  // The clients informers run on (see the top of this file), each outliving the factory; empty:
  // every informer on the factory's own client. The daemon passes its main client and one client
  // per extra ingest thread. Given `timers`, every informer takes its backoff timer from them
  // (tests, which run every strand on one thread); otherwise from Asio steady timers on its own
  // client's strand.
  std::vector<ListWatchClient*> ingest_clients;
};

class SharedInformerFactory : public OnDemandSource,
                              public std::enable_shared_from_this<SharedInformerFactory> {
 public:
  using StartedCallback = std::function<void(const RunningInformer&)>;

  // `client`, `discovery`, `clock` and options.registry must outlive this object.
  static std::shared_ptr<SharedInformerFactory> Create(
      ListWatchClient& client, Discovery& discovery, const core::Clock& clock,
      std::vector<ResourceConfig> entries, SharedInformerFactoryOptions options,
      StartedCallback on_started, std::shared_ptr<spdlog::logger> logger);

  // Resolves every entry and starts what resolves. Any thread.
  void Start();
  // Stops every informer (configured and on-demand) and ends every subscription with
  // UNAVAILABLE; once the posted stop has run on the strand, Acquire answers UNAVAILABLE (an
  // informer Acquire starts before then is stopped by it). Any thread; idempotent.
  void Stop();

  // OnDemandSource. Any thread.
  absl::StatusOr<ServedLease> Acquire(const core::ResolvedResource& resource) override;

  // The informers running: configured ones in configuration order, then on-demand ones.
  std::vector<RunningInformer> Entries() const;
  // "name: why" for each configuration entry not running (not resolved yet, or gone).
  std::vector<std::string> Pending() const;
  // Every configured entry runs and its cache has synced. On-demand informers do not count.
  bool AllSynced() const;
  // The daemon is ready: every configured entry runs, has completed a list (and has not been
  // marked unsynced since: a resource gone), and no configured entry's data is staler than
  // ReflectorOptions::max_staleness (config maxStaleness; Informer::status()'s `stale` says why
  // one is). A relist in progress does not make it unready (List and Get wait for its end; the
  // staleness bound covers one that does not end). What /readyz and gRPC health report.
  bool AllReady() const;
  // How many clients informers are placed on: options.ingest_clients' size, or 1. Any thread.
  std::size_t ingest_client_count() const { return ingest_clients_.size(); }

 private:
  struct Token {};

 public:
  SharedInformerFactory(Token, ListWatchClient& client, Discovery& discovery,
                        const core::Clock& clock, std::vector<ResourceConfig> entries,
                        SharedInformerFactoryOptions options, StartedCallback on_started,
                        std::shared_ptr<spdlog::logger> logger);

 private:
  // One configuration entry.
  struct Slot {
    std::string pending_reason = "not resolved yet";  // empty while running
    std::optional<RunningInformer> running;
    // Its registry entry, kept from the first start on (a placeholder while gone).
    std::optional<ResourceRegistry::Id> registry_id;
    // Counts starts, so that a late gone report of a replaced informer is recognised.
    uint64_t generation = 0;
  };
  // One on-demand informer, keyed by "group/version/resource".
  struct OnDemandEntry {
    RunningInformer running;
    ResourceRegistry::Id registry_id = 0;
    uint64_t serial = 0;  // tells a restarted entry from the one a lease was taken on
    std::size_t leases = 0;
    uint64_t idle_generation = 0;  // counts lease counts dropping to 0
    std::shared_ptr<Timer> grace_timer;
  };
  class Lease;

  // `ingest_client` indexes ingest_clients_.
  RunningInformer MakeRunning(const ResourceConfig& config, const core::ResolvedResource& resource,
                              std::size_t ingest_client, std::function<void()> on_gone) const;
  // The ingest client running the fewest informers (the first on a tie). Under mu_.
  std::size_t LeastLoadedClient() const;
  static ServedResource ServedFor(const RunningInformer& running);
  // A placeholder for a configured entry whose resource is gone (see the top of this file).
  ServedResource GonePlaceholder(const RunningInformer& running, const absl::Status& why) const;

  // On the strand.
  void ResolvePending();
  void OnResolved(std::size_t index, absl::StatusOr<core::ResolvedResource> resolved);
  void StartSlot(std::size_t index, const core::ResolvedResource& resolved);
  void ScheduleRetry();
  void OnConfiguredGone(std::size_t index, uint64_t generation);
  void OnConfiguredGoneChecked(std::size_t index, uint64_t generation,
                               const absl::StatusOr<core::ResolvedResource>& resolved);
  // What discovery's fresh answer says about a running informer whose LIST answered 404. Logs
  // the not-confirmed case (the reflector keeps retrying then).
  enum class GoneCheck { kNotConfirmed, kGone, kMoved };
  GoneCheck CheckGone(const RunningInformer& running,
                      const absl::StatusOr<core::ResolvedResource>& resolved) const;
  void OnDemandGone(const std::string& key, uint64_t serial);
  void OnDemandGoneChecked(const std::string& key, uint64_t serial,
                           const absl::StatusOr<core::ResolvedResource>& resolved);
  void StopIdle(const std::string& key, uint64_t serial, uint64_t idle_generation);
  // Refreshes discovery, then resolves `name` against the fresh documents.
  void ResolveFresh(const std::string& name,
                    std::function<void(absl::StatusOr<core::ResolvedResource>)> done);
  // Any thread.
  void Release(const std::string& key, uint64_t serial);

  ListWatchClient& client_;
  Discovery& discovery_;
  const core::Clock& clock_;
  const std::vector<ResourceConfig> entries_;
  const SharedInformerFactoryOptions options_;
  const StartedCallback on_started_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<TimerFactory> own_timers_;  // when options_.timers is not given
  TimerFactory& timers_;
  // Where informers run: options_.ingest_clients, or the factory's client alone; and the timer
  // factory for each (timers_ when options_.timers is given, else one on that client's strand).
  std::vector<ListWatchClient*> ingest_clients_;
  std::vector<std::unique_ptr<TimerFactory>> own_ingest_timers_;
  std::vector<TimerFactory*> ingest_timers_;
  std::unique_ptr<Timer> retry_timer_;
  std::size_t resolving_ = 0;  // strand only: resolutions of the current ResolvePending round

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::vector<Slot> slots_;  // indexed like entries_
  std::map<std::string, OnDemandEntry> on_demand_;
  uint64_t next_serial_ = 1;
  bool stopped_ = false;
};

}  // namespace informerd::daemon
