#include "daemon/informers/resource_registry.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "fmt/format.h"

namespace informerd::daemon {
namespace {

bool SameGroupResource(const core::ResolvedResource& a, const core::ResolvedResource& b) {
  return a.group == b.group && a.resource == b.resource;
}

bool SameResource(const core::ResolvedResource& a, const core::ResolvedResource& b) {
  return SameGroupResource(a, b) && a.version == b.version;
}

// `pods`, or `deployments.apps (apps/v1)` when versions must be told apart.
std::string ResourceName(const core::ResolvedResource& resource, bool with_version) {
  if (!with_version) return resource.QualifiedName();
  return fmt::format("{} ({})", resource.QualifiedName(), resource.GroupVersion());
}

std::string DescribeScope(std::string name, const std::string& namespace_name,
                          const std::string& label_selector, const std::string& field_selector) {
  if (!namespace_name.empty()) name += fmt::format(" in namespace {}", namespace_name);
  if (!label_selector.empty()) name += fmt::format(" with label selector {:?}", label_selector);
  if (!field_selector.empty()) {
    name += fmt::format("{} field selector {:?}", label_selector.empty() ? " with" : " and",
                        field_selector);
  }
  return name;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string ServedResource::Describe() const {
  return DescribeScope(resource.QualifiedName(), namespace_name, label_selector, field_selector);
}

std::string ServedResource::NotSyncedReason(const core::CacheStats& stats,
                                            const core::ReflectorStatus& upstream) {
  if (upstream.resource_gone) return "the resource is no longer served by the apiserver";
  std::string reason =
      stats.unsynced_reason.empty() ? "the cache is not synced" : stats.unsynced_reason;
  if (const absl::Status error = upstream.current_error(); !error.ok()) {
    reason += fmt::format(" (last error from the apiserver: {})", std::string(error.message()));
  }
  return reason;
}

absl::Status ResourceRegistry::CheckAddable(const ServedResource& served,
                                            std::optional<Id> replacing) const {
  if (!served.cache) {
    return absl::InvalidArgumentError(
        fmt::format("{}: no cache to serve from", served.resource.QualifiedName()));
  }
  if (!served.resource.namespaced && !served.namespace_name.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{} is cluster-scoped: it cannot be served for namespace {}",
                    served.resource.QualifiedName(), served.namespace_name));
  }
  for (const Entry& entry : entries_) {
    if (replacing && entry.id == *replacing) continue;
    const ServedResource& other = *entry.served;
    if (SameResource(other.resource, served.resource) &&
        other.namespace_name == served.namespace_name &&
        other.label_selector == served.label_selector &&
        other.field_selector == served.field_selector) {
      return absl::AlreadyExistsError(fmt::format("{} is already served", other.Describe()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ResourceRegistry::Id> ResourceRegistry::Add(ServedResource served) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status status = CheckAddable(served, std::nullopt); !status.ok()) return status;
  const Id id = next_id_++;
  entries_.push_back(Entry{id, std::make_shared<const ServedResource>(std::move(served))});
  return id;
}

absl::StatusOr<std::shared_ptr<const ServedResource>> ResourceRegistry::Replace(
    Id id, ServedResource served) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [id](const Entry& entry) { return entry.id == id; });
  if (it == entries_.end()) {
    return absl::NotFoundError(fmt::format("no registry entry with id {}", id));
  }
  if (absl::Status status = CheckAddable(served, id); !status.ok()) return status;
  std::shared_ptr<const ServedResource> replaced = std::move(it->served);
  it->served = std::make_shared<const ServedResource>(std::move(served));
  return replaced;
}

std::shared_ptr<const ServedResource> ResourceRegistry::Remove(Id id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [id](const Entry& entry) { return entry.id == id; });
  if (it == entries_.end()) return nullptr;
  std::shared_ptr<const ServedResource> removed = std::move(it->served);
  entries_.erase(it);
  return removed;
}

absl::StatusOr<std::shared_ptr<const ServedResource>> ResourceRegistry::Find(
    const core::ResolvedResource& resource, std::string_view namespace_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<const ServedResource> found;
  // Lower is better: rule 2, then rule 3 (see the header); ties keep the first added (rule 4).
  const auto rank = [&](const ServedResource& served) {
    return (served.has_upstream_selectors() ? 2 : 0) + (served.namespace_name.empty() ? 1 : 0);
  };
  bool other_versions = false;
  for (const Entry& entry : entries_) {
    const ServedResource& served = *entry.served;
    if (!SameResource(served.resource, resource)) {
      if (SameGroupResource(served.resource, resource)) other_versions = true;
      continue;
    }
    if (!served.namespace_name.empty() && served.namespace_name != namespace_name) continue;
    if (!found || rank(served) < rank(*found)) found = entry.served;
  }
  if (found) return found;

  std::string configured;
  for (const Entry& entry : entries_) {
    const ServedResource& served = *entry.served;
    const bool with_version = other_versions && SameGroupResource(served.resource, resource);
    configured += fmt::format(
        "{}{}", configured.empty() ? "" : ", ",
        DescribeScope(ResourceName(served.resource, with_version), served.namespace_name,
                      served.label_selector, served.field_selector));
  }
  const std::string requested =
      DescribeScope(ResourceName(resource, other_versions),
                    resource.namespaced ? std::string(namespace_name) : std::string(), "", "");
  return absl::NotFoundError(fmt::format("{} is not served by this informerd ({})", requested,
                                         configured.empty()
                                             ? std::string("nothing is configured")
                                             : fmt::format("configured: {}", configured)));
}

std::vector<std::shared_ptr<const ServedResource>> ResourceRegistry::Entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const ServedResource>> out;
  out.reserve(entries_.size());
  for (const Entry& entry : entries_) out.push_back(entry.served);
  return out;
}

std::shared_ptr<const ServedResource> ResourceRegistry::FindGone(std::string_view name) const {
  const std::string wanted = Lower(name);
  for (const std::shared_ptr<const ServedResource>& served : Entries()) {
    if (!served->status || !served->status().resource_gone) continue;
    const core::ResolvedResource& r = served->resource;
    for (const std::string& spelling :
         {r.resource, r.QualifiedName(), fmt::format("{}/{}", r.GroupVersion(), r.resource),
          r.kind}) {
      if (Lower(spelling) == wanted) return served;
    }
  }
  return nullptr;
}

void ResourceRegistry::SetOnDemandSource(std::weak_ptr<OnDemandSource> source) {
  std::lock_guard<std::mutex> lock(mu_);
  on_demand_ = std::move(source);
}

bool ResourceRegistry::on_demand_enabled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !on_demand_.expired();
}

absl::StatusOr<ServedLease> ResourceRegistry::AcquireOnDemand(
    const core::ResolvedResource& resource) const {
  std::shared_ptr<OnDemandSource> source;
  {
    std::lock_guard<std::mutex> lock(mu_);
    source = on_demand_.lock();
  }
  if (!source) {
    return absl::NotFoundError(
        fmt::format("{} is not served by this informerd (on-demand informers are off)",
                    resource.QualifiedName()));
  }
  return source->Acquire(resource);
}

}  // namespace informerd::daemon
