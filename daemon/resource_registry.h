// ResourceRegistry: the informers this daemon serves, as the gRPC service sees them; and
// ResourceResolver, how the service turns a request's resource name into a ResolvedResource.
//
// Data flow: at start-up (and when a CRD comes or goes) the daemon resolves each configured
// resource, starts its Informer over a core::Cache, and Adds an entry here. Every Informer RPC
// (daemon/informer_service.*) resolves the request's `resource` through a ResourceResolver (the
// daemon's adapts daemon::Discovery, so `po`, `Pod`, `v1/pods` all name the same thing) and then
// Finds the entry whose cache can answer for the request's namespace. ListResources walks
// Entries().
//
// Ownership and threads: the daemon owns the registry and the service borrows it. Every method
// may be called from any thread (one mutex; entries are immutable and shared, so a caller keeps
// using an entry it found after it has been removed). Removing an entry does not end the streams
// already reading its cache: the caller decides, normally with
// cache->Shutdown(absl::UnavailableError(...)) when the resource is gone for good.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cache.h"
#include "core/reflector.h"
#include "daemon/discovery.h"

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
                       std::function<void(absl::StatusOr<ResolvedResource>)> done) = 0;
};

// The daemon's resolver: discovery, as for the configuration. Borrows `discovery`, which must
// outlive it; `done` runs on the API client's strand.
class DiscoveryResourceResolver final : public ResourceResolver {
 public:
  explicit DiscoveryResourceResolver(Discovery& discovery) : discovery_(discovery) {}
  void Resolve(std::string name,
               std::function<void(absl::StatusOr<ResolvedResource>)> done) override {
    discovery_.Resolve(std::move(name), std::move(done));
  }

 private:
  Discovery& discovery_;
};

// One informer as the service serves it.
struct ServedResource {
  ResolvedResource resource;
  // The configured scope (InformerOptions): namespace ("" = all) and the selectors sent upstream.
  std::string namespace_name;
  std::string label_selector;
  std::string field_selector;
  std::shared_ptr<core::Cache> cache;
  // The upstream side's health, for ListResources (Informer::status()). May be empty: then the
  // informer is reported healthy.
  std::function<core::ReflectorStatus()> status;

  bool has_upstream_selectors() const { return !label_selector.empty() || !field_selector.empty(); }
  // For messages: `pods`, `pods in namespace default with label selector "app=web"`.
  std::string Describe() const;
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
  absl::StatusOr<std::shared_ptr<const ServedResource>> Find(const ResolvedResource& resource,
                                                             std::string_view namespace_name) const;

  // Every entry, in the order they were added.
  std::vector<std::shared_ptr<const ServedResource>> Entries() const;

 private:
  struct Entry {
    Id id;
    std::shared_ptr<const ServedResource> served;
  };

  mutable std::mutex mu_;
  std::vector<Entry> entries_;  // guarded by mu_; in the order added
  Id next_id_ = 1;              // guarded by mu_
};

}  // namespace informerd::daemon
