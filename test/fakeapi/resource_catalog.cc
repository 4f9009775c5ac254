#include "test/fakeapi/resource_catalog.h"

#include <algorithm>
#include <cctype>

#include "fmt/format.h"

namespace informerd::fakeapi {

std::string ResourceType::Key() const {
  return group.empty() ? plural : fmt::format("{}.{}", plural, group);
}

std::string ResourceType::GroupVersion() const {
  return group.empty() ? version : fmt::format("{}/{}", group, version);
}

ResourceType ResourceType::Pods() {
  ResourceType t;
  t.version = "v1";
  t.plural = "pods";
  t.singular = "pod";
  t.kind = "Pod";
  t.short_names = {"po"};
  t.categories = {"all"};
  return t;
}

ResourceType ResourceType::ConfigMaps() {
  ResourceType t;
  t.version = "v1";
  t.plural = "configmaps";
  t.singular = "configmap";
  t.kind = "ConfigMap";
  t.short_names = {"cm"};
  return t;
}

ResourceType ResourceType::Namespaces() {
  ResourceType t;
  t.version = "v1";
  t.plural = "namespaces";
  t.singular = "namespace";
  t.kind = "Namespace";
  t.short_names = {"ns"};
  t.namespaced = false;
  t.verbs = {"create", "delete", "get", "list", "patch", "update", "watch"};
  return t;
}

ResourceType ResourceType::Deployments() {
  ResourceType t;
  t.group = "apps";
  t.version = "v1";
  t.plural = "deployments";
  t.singular = "deployment";
  t.kind = "Deployment";
  t.short_names = {"deploy"};
  t.categories = {"all"};
  return t;
}

ResourceType ResourceType::Custom(std::string group, std::string version, std::string plural,
                                  std::string kind, bool namespaced) {
  ResourceType t;
  t.group = std::move(group);
  t.version = std::move(version);
  t.plural = std::move(plural);
  t.singular = kind;
  std::transform(t.singular.begin(), t.singular.end(), t.singular.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  t.kind = std::move(kind);
  t.namespaced = namespaced;
  return t;
}

void ResourceCatalog::Register(const ResourceType& type) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (ResourceType& existing : types_) {
    if (existing.Key() == type.Key()) {
      existing = type;
      return;
    }
  }
  types_.push_back(type);
}

bool ResourceCatalog::Unregister(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find_if(types_.begin(), types_.end(),
                         [&](const ResourceType& t) { return t.Key() == key; });
  if (it == types_.end()) return false;
  types_.erase(it);
  return true;
}

std::optional<ResourceType> ResourceCatalog::Find(const std::string& group,
                                                  const std::string& version,
                                                  const std::string& plural) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const ResourceType& t : types_) {
    if (t.group == group && t.version == version && t.plural == plural) return t;
  }
  return std::nullopt;
}

std::optional<ResourceType> ResourceCatalog::FindByKey(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const ResourceType& t : types_) {
    if (t.Key() == key) return t;
  }
  return std::nullopt;
}

std::vector<ResourceType> ResourceCatalog::All() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return types_;
}

}  // namespace informerd::fakeapi
