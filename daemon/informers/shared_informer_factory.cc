#include "daemon/informers/shared_informer_factory.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "fmt/format.h"
#include "fmt/ranges.h"

namespace informerd::daemon {
namespace {

constexpr char kGoneCondition[] = "resource no longer served by the apiserver";

// "group/version/resource" ("v1/pods" for the core group): names exactly one version, for
// on-demand keys and for asking discovery about exactly that version.
std::string ExactName(const core::ResolvedResource& resource) {
  return fmt::format("{}/{}", resource.GroupVersion(), resource.resource);
}

bool SameResource(const core::ResolvedResource& a, const core::ResolvedResource& b) {
  return a.group == b.group && a.version == b.version && a.resource == b.resource;
}

bool HasVerb(const core::ResolvedResource& resource, const char* verb) {
  return std::find(resource.verbs.begin(), resource.verbs.end(), verb) != resource.verbs.end();
}

// Whole seconds, for log lines.
long long WholeSeconds(std::chrono::milliseconds duration) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(duration).count());
}

// What subscribers of an informer whose resource disappeared upstream are told.
absl::Status GoneStatus(const std::string& what) {
  return absl::UnavailableError(fmt::format(
      "{} stopped being served by the apiserver (was its CRD deleted?); retry with backoff", what));
}

}  // namespace

void RunningInformer::Stop(const absl::Status& why) const {
  informer->Stop();
  cache->Shutdown(why);
}

// Held by a reader of an on-demand entry; its destruction (any thread) releases the lease.
class SharedInformerFactory::Lease {
 public:
  Lease(std::weak_ptr<SharedInformerFactory> owner, std::string key, uint64_t serial)
      : owner_(std::move(owner)), key_(std::move(key)), serial_(serial) {}
  ~Lease() {
    if (auto owner = owner_.lock()) owner->Release(key_, serial_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

 private:
  std::weak_ptr<SharedInformerFactory> owner_;
  std::string key_;
  uint64_t serial_;
};

std::shared_ptr<SharedInformerFactory> SharedInformerFactory::Create(
    ListWatchClient& client, Discovery& discovery, const core::Clock& clock,
    std::vector<ResourceConfig> entries, SharedInformerFactoryOptions options,
    StartedCallback on_started, std::shared_ptr<spdlog::logger> logger) {
  ResourceRegistry* registry = options.registry;
  const bool on_demand = options.allow_on_demand;
  auto informers = std::make_shared<SharedInformerFactory>(
      Token{}, client, discovery, clock, std::move(entries), std::move(options),
      std::move(on_started), std::move(logger));
  if (registry && on_demand) {
    registry->SetOnDemandSource(std::weak_ptr<OnDemandSource>(informers));
  }
  return informers;
}

SharedInformerFactory::SharedInformerFactory(Token, ListWatchClient& client, Discovery& discovery,
                                             const core::Clock& clock,
                                             std::vector<ResourceConfig> entries,
                                             SharedInformerFactoryOptions options,
                                             StartedCallback on_started,
                                             std::shared_ptr<spdlog::logger> logger)
    : client_(client),
      discovery_(discovery),
      clock_(clock),
      entries_(std::move(entries)),
      options_(std::move(options)),
      on_started_(std::move(on_started)),
      logger_(std::move(logger)),
      own_timers_(options_.timers ? nullptr
                                  : std::make_unique<SteadyTimerFactory>(client.strand())),
      timers_(options_.timers ? *options_.timers : *own_timers_),
      retry_timer_(timers_.CreateTimer()),
      slots_(entries_.size()) {
  ingest_clients_ = options_.ingest_clients;
  if (ingest_clients_.empty()) ingest_clients_.push_back(&client_);
  for (ListWatchClient* ingest : ingest_clients_) {
    if (options_.timers) {
      ingest_timers_.push_back(options_.timers);
    } else if (ingest == &client_) {
      ingest_timers_.push_back(own_timers_.get());
    } else {
      own_ingest_timers_.push_back(std::make_unique<SteadyTimerFactory>(ingest->strand()));
      ingest_timers_.push_back(own_ingest_timers_.back().get());
    }
  }
}

void SharedInformerFactory::Start() {
  boost::asio::post(client_.strand(), [self = shared_from_this()] { self->ResolvePending(); });
}

void SharedInformerFactory::Stop() {
  boost::asio::post(client_.strand(), [self = shared_from_this()] {
    std::vector<RunningInformer> running;
    std::vector<std::shared_ptr<Timer>> timers;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->stopped_) return;
      self->stopped_ = true;
      for (Slot& slot : self->slots_) {
        if (slot.running) running.push_back(*slot.running);
      }
      for (auto& [key, entry] : self->on_demand_) {
        running.push_back(entry.running);
        timers.push_back(entry.grace_timer);
      }
      self->on_demand_.clear();
    }
    self->retry_timer_->Cancel();
    for (const auto& timer : timers) timer->Cancel();
    for (const RunningInformer& entry : running) {
      entry.Stop(absl::UnavailableError("informerd is shutting down"));
    }
  });
}

// ---- Building informers -------------------------------------------------------------------

std::size_t SharedInformerFactory::LeastLoadedClient() const {
  std::vector<std::size_t> load(ingest_clients_.size(), 0);
  for (const Slot& slot : slots_) {
    if (slot.running) ++load[slot.running->ingest_client];
  }
  for (const auto& [key, entry] : on_demand_) ++load[entry.running.ingest_client];
  return static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
}

RunningInformer SharedInformerFactory::MakeRunning(const ResourceConfig& config,
                                                   const core::ResolvedResource& resource,
                                                   std::size_t ingest_client,
                                                   std::function<void()> on_gone) const {
  core::CacheOptions cache_options = options_.cache;
  cache_options.extra_field_paths = config.indexes;
  InformerOptions informer_options;
  informer_options.resource = resource;
  informer_options.namespace_name = config.namespace_name;
  informer_options.label_selector = config.label_selector;
  informer_options.field_selector = config.field_selector;
  informer_options.scan.strip_managed_fields = config.strip_managed_fields;
  informer_options.scan.extra_field_paths = config.indexes;
  informer_options.reflector = options_.reflector;
  informer_options.max_event_bytes = options_.max_event_bytes;
  informer_options.on_resource_gone = std::move(on_gone);
  informer_options.timers = ingest_timers_[ingest_client];
  informer_options.random = options_.random;

  RunningInformer running;
  running.config = config;
  running.resource = resource;
  running.ingest_client = ingest_client;
  // core/ has no logger: the cache reports its replay window resets, and they are logged here.
  cache_options.on_window_reset = [logger = logger_, what = ServedFor(running).Describe()](
                                      const core::WindowReset& reset) {
    if (!logger) return;
    logger->warn(
        "{}: {}; resuming from a resource version sent before it is refused (OUT_OF_RANGE), and "
        "the window serves resumes again from the next event or bookmark with a newer resource "
        "version",
        what, reset.message);
  };
  running.cache = core::Cache::Create(std::move(cache_options), clock_);
  running.informer = Informer::Create(*ingest_clients_[ingest_client], std::move(informer_options),
                                      running.cache, clock_, logger_);
  return running;
}

ServedResource SharedInformerFactory::ServedFor(const RunningInformer& running) {
  ServedResource served;
  served.resource = running.resource;
  served.namespace_name = running.config.namespace_name;
  served.label_selector = running.config.label_selector;
  served.field_selector = running.config.field_selector;
  served.cache = running.cache;
  served.on_demand = running.on_demand;
  served.status = [informer = std::weak_ptr<Informer>(running.informer)] {
    auto strong = informer.lock();
    return strong ? strong->status() : core::ReflectorStatus();
  };
  return served;
}

ServedResource SharedInformerFactory::GonePlaceholder(const RunningInformer& running,
                                                      const absl::Status& why) const {
  ServedResource served = ServedFor(running);
  // An empty cache, shut down: the stale objects are dropped with the old one, and a subscriber
  // that arrives now is refused with `why`.
  core::CacheOptions cache_options = options_.cache;
  cache_options.extra_field_paths = running.config.indexes;
  served.cache = core::Cache::Create(std::move(cache_options), clock_);
  served.cache->MarkUnsynced(kGoneCondition);
  served.cache->Shutdown(why);
  core::ReflectorStatus status = running.informer->status();
  status.state = core::ReflectorState::kGone;
  status.resource_gone = true;
  status.synced = false;
  status.watch_open = false;
  status.staleness.reset();  // not synced: no staleness
  status.stale.clear();
  served.status = [status] { return status; };
  return served;
}

// ---- Configured entries -------------------------------------------------------------------

void SharedInformerFactory::ResolvePending() {
  // One round at a time: the round's last resolution schedules the next.
  if (resolving_ > 0) return;
  std::vector<std::size_t> todo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (!slots_[i].running) todo.push_back(i);
    }
  }
  resolving_ = todo.size();
  for (std::size_t index : todo) {
    discovery_.Resolve(entries_[index].resource, [self = shared_from_this(),
                                                  index](absl::StatusOr<core::ResolvedResource> r) {
      self->OnResolved(index, std::move(r));
    });
  }
}

void SharedInformerFactory::OnResolved(std::size_t index,
                                       absl::StatusOr<core::ResolvedResource> resolved) {
  const ResourceConfig& config = entries_[index];
  if (resolving_ > 0) --resolving_;
  std::string reason;
  bool start = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    Slot& slot = slots_[index];
    if (slot.running) {
      // Started meanwhile (a gone resource that came back under another version).
    } else if (!resolved.ok()) {
      // A resource that is gone keeps saying so; the lookup's message goes to the log.
      if (!slot.registry_id) slot.pending_reason = std::string(resolved.status().message());
      reason = std::string(resolved.status().message());
    } else if (!resolved->namespaced && !config.namespace_name.empty()) {
      // A configuration mistake that waiting will not fix; keep it visible in Pending().
      slot.pending_reason =
          fmt::format("{} is cluster-scoped, but the configuration gives namespace \"{}\"",
                      resolved->QualifiedName(), config.namespace_name);
      reason = slot.pending_reason;
    } else {
      start = true;
    }
  }
  if (start) {
    StartSlot(index, *resolved);
  } else if (!reason.empty()) {
    logger_->warn("config resource \"{}\": {}; looking again every {} s", config.resource, reason,
                  WholeSeconds(options_.retry_interval));
  }
  if (resolving_ == 0) ScheduleRetry();
}

void SharedInformerFactory::StartSlot(std::size_t index, const core::ResolvedResource& resolved) {
  const ResourceConfig& config = entries_[index];
  uint64_t generation = 0;
  std::optional<ResourceRegistry::Id> registry_id;
  std::size_t ingest_client = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || slots_[index].running) return;
    generation = ++slots_[index].generation;
    registry_id = slots_[index].registry_id;
    ingest_client = LeastLoadedClient();
  }
  RunningInformer running =
      MakeRunning(config, resolved, ingest_client, [weak = weak_from_this(), index, generation] {
        if (auto self = weak.lock()) self->OnConfiguredGone(index, generation);
      });
  if (options_.registry) {
    if (registry_id) {
      auto replaced = options_.registry->Replace(*registry_id, ServedFor(running));
      if (!replaced.ok()) {
        logger_->error("cannot serve {}: {}", resolved.QualifiedName(),
                       std::string(replaced.status().message()));
      }
    } else {
      auto added = options_.registry->Add(ServedFor(running));
      if (added.ok()) {
        registry_id = *added;
      } else {
        logger_->error("cannot serve {}: {}", ServedFor(running).Describe(),
                       std::string(added.status().message()));
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& slot = slots_[index];
    slot.pending_reason.clear();
    slot.running = running;
    slot.registry_id = registry_id;
  }
  logger_->info(
      "config resource \"{}\" is {} ({}, {})", config.resource, resolved.QualifiedName(),
      resolved.GroupVersion(),
      config.namespace_name.empty() ? "all namespaces" : "namespace " + config.namespace_name);
  if (on_started_) on_started_(running);
  running.informer->Start();
}

void SharedInformerFactory::ScheduleRetry() {
  if (resolving_ > 0) return;  // the round in progress schedules the next when it ends
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool any_pending = false;
    for (const Slot& slot : slots_) any_pending |= !slot.running;
    if (!any_pending || stopped_) return;
  }
  retry_timer_->Arm(options_.retry_interval,
                    [self = shared_from_this()] { self->ResolvePending(); });
}

void SharedInformerFactory::ResolveFresh(
    const std::string& name, std::function<void(absl::StatusOr<core::ResolvedResource>)> done) {
  discovery_.Refresh(
      [self = shared_from_this(), name, done = std::move(done)](absl::Status status) {
        if (!status.ok()) {
          done(absl::UnavailableError(
              fmt::format("discovery failed: {}", std::string(status.message()))));
          return;
        }
        self->discovery_.Resolve(name, done);
      });
}

void SharedInformerFactory::OnConfiguredGone(std::size_t index, uint64_t generation) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Slot& slot = slots_[index];
    if (stopped_ || !slot.running || slot.generation != generation) return;
  }
  ResolveFresh(entries_[index].resource, [self = shared_from_this(), index, generation](
                                             absl::StatusOr<core::ResolvedResource> resolved) {
    self->OnConfiguredGoneChecked(index, generation, resolved);
  });
}

void SharedInformerFactory::OnConfiguredGoneChecked(
    std::size_t index, uint64_t generation,
    const absl::StatusOr<core::ResolvedResource>& resolved) {
  const ResourceConfig& config = entries_[index];
  RunningInformer running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& slot = slots_[index];
    if (stopped_ || !slot.running || slot.generation != generation) return;
    running = *slot.running;
  }
  const GoneCheck check = CheckGone(running, resolved);
  if (check == GoneCheck::kNotConfirmed) return;
  const absl::Status why = GoneStatus(ServedFor(running).Describe());
  std::optional<ResourceRegistry::Id> registry_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& slot = slots_[index];
    slot.running.reset();
    slot.pending_reason = kGoneCondition;
    registry_id = slot.registry_id;
  }
  // The placeholder first, so that whoever sees the old cache end finds the placeholder
  // (nothing stale) in the registry.
  if (options_.registry && registry_id) {
    auto replaced = options_.registry->Replace(*registry_id, GonePlaceholder(running, why));
    if (!replaced.ok()) {
      logger_->error("{}: {}", running.resource.QualifiedName(),
                     std::string(replaced.status().message()));
    }
  }
  running.Stop(why);
  if (check == GoneCheck::kMoved) {
    // The name now means another version (the CRD came back with a different one): serve it.
    logger_->warn("config resource \"{}\": {} is no longer served; the name now resolves to {}",
                  config.resource, ExactName(running.resource), ExactName(*resolved));
    StartSlot(index, *resolved);
    return;
  }
  logger_->warn(
      "config resource \"{}\": {} is no longer served by the apiserver; its informer stopped and "
      "its subscribers were ended; looking for it again every {} s",
      config.resource, running.resource.QualifiedName(), WholeSeconds(options_.retry_interval));
  ScheduleRetry();
}

// ---- On-demand informers ------------------------------------------------------------------

absl::StatusOr<ServedLease> SharedInformerFactory::Acquire(const core::ResolvedResource& resource) {
  // Discovery lists the verbs; a resource without them (tokenreviews, bindings) cannot be
  // informed on. Resolvers that do not report verbs (tests) are trusted.
  if (!resource.verbs.empty() && (!HasVerb(resource, "list") || !HasVerb(resource, "watch"))) {
    return absl::InvalidArgumentError(fmt::format("{} cannot be listed and watched (its verbs: {})",
                                                  resource.QualifiedName(),
                                                  fmt::join(resource.verbs, ", ")));
  }
  if (!options_.registry) return absl::NotFoundError("no registry to serve from");
  const std::string key = ExactName(resource);
  std::shared_ptr<Informer> to_start;
  ServedLease lease;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return absl::UnavailableError("informerd is shutting down");
    auto it = on_demand_.find(key);
    if (it == on_demand_.end()) {
      ResourceConfig config;
      config.resource = resource.QualifiedName();
      OnDemandEntry entry;
      entry.serial = next_serial_++;
      entry.running = MakeRunning(config, resource, LeastLoadedClient(),
                                  [weak = weak_from_this(), key, serial = entry.serial] {
                                    if (auto self = weak.lock()) self->OnDemandGone(key, serial);
                                  });
      entry.running.on_demand = true;
      entry.grace_timer = timers_.CreateTimer();
      // The registry's mutex ranks below mu_ (the registry never calls back with it held).
      auto added = options_.registry->Add(ServedFor(entry.running));
      if (!added.ok()) return added.status();
      entry.registry_id = *added;
      to_start = entry.running.informer;
      it = on_demand_.emplace(key, std::move(entry)).first;
    }
    OnDemandEntry& entry = it->second;
    ++entry.leases;
    const std::vector<std::shared_ptr<const ServedResource>> served = options_.registry->Entries();
    for (const auto& candidate : served) {
      if (candidate->cache == entry.running.cache) lease.served = candidate;
    }
    lease.lease = std::make_shared<const Lease>(weak_from_this(), key, entry.serial);
  }
  if (to_start) {
    logger_->info("{}: on-demand informer starting for its first reader (all namespaces)",
                  resource.QualifiedName());
    to_start->Start();
  }
  if (!lease.served) return absl::UnavailableError(fmt::format("{} is stopping", key));
  return lease;
}

void SharedInformerFactory::Release(const std::string& key, uint64_t serial) {
  std::shared_ptr<Timer> timer;
  uint64_t idle_generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = on_demand_.find(key);
    if (stopped_ || it == on_demand_.end() || it->second.serial != serial) return;
    if (--it->second.leases > 0) return;
    idle_generation = ++it->second.idle_generation;
    timer = it->second.grace_timer;
  }
  boost::asio::post(
      client_.strand(), [self = shared_from_this(), timer, key, serial, idle_generation] {
        // Re-arming cancels the wait of an earlier idle period, whose generation is stale anyway.
        timer->Arm(self->options_.on_demand_grace_period, [self, key, serial, idle_generation] {
          self->StopIdle(key, serial, idle_generation);
        });
      });
}

void SharedInformerFactory::StopIdle(const std::string& key, uint64_t serial,
                                     uint64_t idle_generation) {
  OnDemandEntry entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = on_demand_.find(key);
    if (stopped_ || it == on_demand_.end() || it->second.serial != serial) return;
    // A reader came back during the grace period (and may have left again since).
    if (it->second.leases > 0 || it->second.idle_generation != idle_generation) return;
    entry = std::move(it->second);
    on_demand_.erase(it);
    // Under mu_, so that an Acquire for the same resource never finds the old entry's
    // registration after it has left on_demand_.
    if (options_.registry) options_.registry->Remove(entry.registry_id);
  }
  entry.running.Stop(absl::UnavailableError(fmt::format("the on-demand informer for {} stopped",
                                                        entry.running.resource.QualifiedName())));
  logger_->info("{}: on-demand informer stopped, {} s after its last reader left",
                entry.running.resource.QualifiedName(),
                WholeSeconds(options_.on_demand_grace_period));
}

void SharedInformerFactory::OnDemandGone(const std::string& key, uint64_t serial) {
  ResolveFresh(key, [self = shared_from_this(), key,
                     serial](absl::StatusOr<core::ResolvedResource> resolved) {
    self->OnDemandGoneChecked(key, serial, resolved);
  });
}

void SharedInformerFactory::OnDemandGoneChecked(
    const std::string& key, uint64_t serial,
    const absl::StatusOr<core::ResolvedResource>& resolved) {
  RunningInformer running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = on_demand_.find(key);
    if (stopped_ || it == on_demand_.end() || it->second.serial != serial) return;
    running = it->second.running;
  }
  // An on-demand informer serves exactly one version: the name resolving to another version
  // means this one is gone all the same.
  if (CheckGone(running, resolved) == GoneCheck::kNotConfirmed) return;
  OnDemandEntry entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = on_demand_.find(key);
    if (stopped_ || it == on_demand_.end() || it->second.serial != serial) return;
    entry = std::move(it->second);
    on_demand_.erase(it);
    if (options_.registry) options_.registry->Remove(entry.registry_id);
  }
  entry.grace_timer->Cancel();
  entry.running.Stop(GoneStatus(entry.running.resource.QualifiedName()));
  logger_->warn("{}: no longer served by the apiserver; its on-demand informer stopped", key);
}

SharedInformerFactory::GoneCheck SharedInformerFactory::CheckGone(
    const RunningInformer& running, const absl::StatusOr<core::ResolvedResource>& resolved) const {
  const bool still_listed = resolved.ok() && SameResource(*resolved, running.resource);
  const bool unknown = !resolved.ok() && resolved.status().code() != absl::StatusCode::kNotFound;
  if (still_listed || unknown) {
    // Not confirmed: a 404 with the resource still in discovery (a CRD being re-established, an
    // aggregated API's hiccup), or discovery itself failing. The reflector looks again every
    // gone_retry_interval and reports again if it still gets 404.
    logger_->warn("{}: the apiserver answers 404, but discovery {}; looking again every {} s",
                  running.resource.QualifiedName(),
                  still_listed ? "still lists it"
                               : "could not say (" + std::string(resolved.status().message()) + ")",
                  options_.reflector.gone_retry_interval.count());
    return GoneCheck::kNotConfirmed;
  }
  return resolved.ok() ? GoneCheck::kMoved : GoneCheck::kGone;
}

// ---- Observation --------------------------------------------------------------------------

std::vector<RunningInformer> SharedInformerFactory::Entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RunningInformer> out;
  for (const Slot& slot : slots_) {
    if (slot.running) out.push_back(*slot.running);
  }
  for (const auto& [key, entry] : on_demand_) out.push_back(entry.running);
  return out;
}

std::vector<std::string> SharedInformerFactory::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!slots_[i].running) {
      out.push_back(fmt::format("{}: {}", entries_[i].resource, slots_[i].pending_reason));
    }
  }
  return out;
}

bool SharedInformerFactory::AllSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Slot& slot : slots_) {
    if (!slot.running || !slot.running->cache->Stats().synced) return false;
  }
  return true;
}

bool SharedInformerFactory::AllReady() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Slot& slot : slots_) {
    if (!slot.running) return false;
    // The reflector's synced, not the cache's: a relist in progress makes reads wait for its
    // end, but leaves the resource ready (every replica relists after the same compaction).
    const core::ReflectorStatus status = slot.running->informer->status();
    if (!status.synced || !status.stale.empty()) return false;
  }
  return true;
}

}  // namespace informerd::daemon
