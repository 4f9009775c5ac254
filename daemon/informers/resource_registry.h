// ResourceRegistry: the informers this daemon serves, as the gRPC service sees them; and
// ResourceResolver, how the service turns a request's resource name into a core::ResolvedResource.
//
// Data flow: at start-up (and when a CRD comes or goes) the daemon resolves each configured
// resource, starts its Informer over a core::Cache, and Adds an entry here. Every Informer RPC
// (daemon/service/informer_service.*) resolves the request's `resource` through a ResourceResolver
// (the daemon's adapts daemon::Discovery, so `po`, `Pod`, `v1/pods` all name the same thing) and
// then Finds the entry whose cache can answer for the request's namespace. ListResources walks
// Entries().
//
// Entries come and go while the daemon runs (daemon/informers/shared_informer_factory.*): a
// configured resource whose CRD was deleted is Replaced by a placeholder (an empty cache, shut
// down, whose status says resource_gone) so that ListResources keeps reporting it and requests for
// it answer UNAVAILABLE; when the CRD comes back the placeholder is Replaced by the new informer.
// An on-demand informer (allowOnDemand) is Added when its first reader arrives through
// AcquireOnDemand and Removed when it stops.
//
// Ownership and threads: the daemon owns the registry and the service borrows it. Every method
// may be called from any thread (one mutex; entries are immutable and shared, so a caller keeps
// using an entry it found after it has been removed). Removing an entry does not end the streams
// already reading its cache: the caller decides, normally with
// cache->Shutdown(absl::UnavailableError(...)) when the resource is gone for good. The on-demand
// source is called without the registry's mutex held, so it may Add and Remove entries.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/api_resources.h"
#include "core/cache.h"
#include "core/reflector.h"

namespace informerd::daemon {

// Turns a resource name as kubectl takes it into the resource it names. Errors pass through to
// the client unchanged: NOT_FOUND for a name that names nothing, INVALID_ARGUMENT for an
// ambiguous or malformed one (with the candidates in the message).
class ResourceResolver {
 public:
  virtual ~ResourceResolver() = default;
  // `done` runs exactly once, on any thread, possibly before Resolve returns. The service
  // continues the RPC on that thread (a cache read), so it should not be a thread that must
  // never wait. It must run before the service is destroyed: an RPC waits for it to finish.
  virtual void Resolve(std::string name,
                       std::function<void(absl::StatusOr<core::ResolvedResource>)> done) = 0;
};

// One informer as the service serves it.
struct ServedResource {
  core::ResolvedResource resource;
  // The configured scope (InformerOptions): namespace ("" = all) and the selectors sent upstream.
  std::string namespace_name;
  std::string label_selector;
  std::string field_selector;
  std::shared_ptr<core::Cache> cache;
  // The upstream side's health, for ListResources (Informer::status()). May be empty: then the
  // informer is reported healthy.
  std::function<core::ReflectorStatus()> status;
  // Started by a reader rather than by the configuration (allowOnDemand); readers of such an
  // entry must hold a lease from ResourceRegistry::AcquireOnDemand while they read.
  bool on_demand = false;

  bool has_upstream_selectors() const { return !label_selector.empty() || !field_selector.empty(); }
  // For messages: `pods`, `pods in namespace default with label selector "app=web"`.
  std::string Describe() const;
  // Why the cache is not synced, for messages: the cache's reason (the initial list has not
  // completed, a relist is replacing the cached objects) and the apiserver's current error,
  // "(last error from the apiserver: ...)"; or that the resource is no longer served.
  static std::string NotSyncedReason(const core::CacheStats& stats,
                                     const core::ReflectorStatus& upstream);
};

// What a reader holds: the entry, and for an on-demand entry the lease that keeps its informer
// running (see OnDemandSource). Dropping `lease` (on any thread) lets the informer stop after
// its grace period once no other lease is held.
struct ServedLease {
  std::shared_ptr<const ServedResource> served;
  std::shared_ptr<const void> lease;
};

// Starts and stops on-demand informers (daemon/informers/shared_informer_factory.h implements it).
class OnDemandSource {
 public:
  virtual ~OnDemandSource() = default;
  // The on-demand entry for `resource` (all namespaces, no upstream selectors), added to the
  // registry and started if it is not running, with a lease on it. Any thread; never blocks on
  // I/O. UNAVAILABLE while the daemon stops; INVALID_ARGUMENT for a resource that cannot be
  // listed and watched.
  virtual absl::StatusOr<ServedLease> Acquire(const core::ResolvedResource& resource) = 0;
};

class ResourceRegistry {
 public:
  using Id = uint64_t;

  ResourceRegistry() = default;
  ResourceRegistry(const ResourceRegistry&) = delete;
  ResourceRegistry& operator=(const ResourceRegistry&) = delete;

  // INVALID_ARGUMENT without a cache, or with a namespace for a cluster-scoped resource;
  // ALREADY_EXISTS when the same resource (group, version, plural) with the same namespace and
  // selectors is served already (the configuration forbids it too).
  absl::StatusOr<Id> Add(ServedResource served);

  // The entry, now removed; nullptr when there is none with that id.
  std::shared_ptr<const ServedResource> Remove(Id id);

  // Puts `served` in the place of entry `id` (same id, same position); returns the entry it
  // replaced. NOT_FOUND for an unknown id; otherwise the checks of Add, against the other
  // entries.
  absl::StatusOr<std::shared_ptr<const ServedResource>> Replace(Id id, ServedResource served);

  // The entry that answers requests for `resource` in `namespace_name` ("" = all namespaces):
  //  1. candidates serve the same group, version and plural, and watch either all namespaces or
  //     exactly `namespace_name` (an entry for one namespace cannot answer for all of them);
  //  2. an entry without upstream selectors wins over one with them, since a selector-filtered
  //     cache would silently leave objects out of the answer;
  //  3. then an entry for exactly `namespace_name` wins over one for all namespaces (the same
  //     answer from a smaller cache);
  //  4. then the entry added first.
  // NOT_FOUND otherwise, naming the resource and listing what is configured:
  //   pods is not served by this informerd (configured: pods in namespace default,
  //   deployments.apps)
  absl::StatusOr<std::shared_ptr<const ServedResource>> Find(const core::ResolvedResource& resource,
                                                             std::string_view namespace_name) const;

  // Every entry, in the order they were added.
  std::vector<std::shared_ptr<const ServedResource>> Entries() const;

  // An entry whose resource the apiserver no longer serves (its status says resource_gone),
  // named by `name` as a request would name it: the plural, `plural.group`, `group/version/
  // plural` (`version/plural` for the core group), or the kind, case-insensitively. The service
  // asks when discovery no longer knows a name, so that a configured resource whose CRD was
  // deleted answers UNAVAILABLE ("stopped being served") rather than NOT_FOUND. nullptr if none.
  std::shared_ptr<const ServedResource> FindGone(std::string_view name) const;

  // On-demand informers: `source` starts them (held weakly: once it is gone, or before it is
  // set, there are none).
  void SetOnDemandSource(std::weak_ptr<OnDemandSource> source);
  bool on_demand_enabled() const;
  // The source's Acquire; NOT_FOUND when there is no source. Not under the registry's mutex.
  absl::StatusOr<ServedLease> AcquireOnDemand(const core::ResolvedResource& resource) const;

 private:
  struct Entry {
    Id id;
    std::shared_ptr<const ServedResource> served;
  };

  // With mu_ held: the checks of Add, ignoring entry `replacing`.
  absl::Status CheckAddable(const ServedResource& served, std::optional<Id> replacing) const;

  mutable std::mutex mu_;
  std::vector<Entry> entries_;               // guarded by mu_; in the order added
  Id next_id_ = 1;                           // guarded by mu_
  std::weak_ptr<OnDemandSource> on_demand_;  // guarded by mu_
};

}  // namespace informerd::daemon
