// DiscoveryResourceResolver: the daemon's ResourceResolver. Request names are resolved through
// discovery exactly as configuration names are, so `po`, `Pod` and `v1/pods` name the same
// resource in both.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "core/api_resources.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/kube/discovery.h"

namespace informerd::daemon {

// Borrows `discovery`, which must outlive it; `done` runs on the API client's strand.
class DiscoveryResourceResolver final : public ResourceResolver {
 public:
  explicit DiscoveryResourceResolver(Discovery& discovery) : discovery_(discovery) {}
  void Resolve(std::string name,
               std::function<void(absl::StatusOr<core::ResolvedResource>)> done) override {
    discovery_.Resolve(std::move(name), std::move(done));
  }

 private:
  Discovery& discovery_;
};

}  // namespace informerd::daemon
