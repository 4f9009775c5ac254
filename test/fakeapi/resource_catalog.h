// ResourceCatalog: the API resources the fake apiserver serves, as discovery describes them.
//
// Tests register resources (built-in kinds or CRD-like ones) and may unregister them while
// clients are connected, to mimic a CRD appearing or being deleted. Owned by FakeApiServer;
// read by connection handlers on the I/O thread and written from the test thread, hence the lock.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace informerd::fakeapi {

// One resource of one group/version, with the fields of a discovery APIResource.
struct ResourceType {
  std::string group;    // "" for the core group.
  std::string version;  // "v1".
  std::string plural;   // "pods": the path segment.
  std::string singular;
  std::string kind;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool namespaced = true;
  std::vector<std::string> verbs = {"create", "delete", "deletecollection", "get",
                                    "list",   "patch",  "update",           "watch"};

  // The store's and the fault script's name for it, as kubectl spells it: "pods",
  // "deployments.apps", "widgets.example.com".
  std::string Key() const;
  // "v1" or "apps/v1": the apiVersion of its objects.
  std::string GroupVersion() const;

  static ResourceType Pods();
  static ResourceType ConfigMaps();
  static ResourceType Namespaces();
  static ResourceType Deployments();
  // A CRD-like resource: singular is the lower-cased kind.
  static ResourceType Custom(std::string group, std::string version, std::string plural,
                             std::string kind, bool namespaced = true);
};

class ResourceCatalog {
 public:
  // Adds `type`, or replaces the registration with the same Key().
  void Register(const ResourceType& type);
  // False if it was not registered.
  bool Unregister(const std::string& key);

  std::optional<ResourceType> Find(const std::string& group, const std::string& version,
                                   const std::string& plural) const;
  std::optional<ResourceType> FindByKey(const std::string& key) const;
  // In registration order, which discovery documents keep.
  std::vector<ResourceType> All() const;

 private:
  mutable std::mutex mutex_;
  std::vector<ResourceType> types_;
};

}  // namespace informerd::fakeapi
