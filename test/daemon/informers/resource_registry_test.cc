// Specification of daemon/informers/resource_registry.*: which informer answers a request, and what a
// request for something not served is told.
#include "daemon/informers/resource_registry.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/cache.h"
#include "core/clock.h"

namespace informerd::daemon {
namespace {

core::ResolvedResource Resource(std::string group, std::string version, std::string resource,
                          bool namespaced = true) {
  core::ResolvedResource r;
  r.group = std::move(group);
  r.version = std::move(version);
  r.resource = std::move(resource);
  r.kind = "Kind";
  r.namespaced = namespaced;
  return r;
}

class RegistryTest {
 protected:
  ResourceRegistry::Id Add(const core::ResolvedResource& resource, std::string namespace_name = "",
                           std::string label_selector = "", std::string field_selector = "") {
    absl::StatusOr<ResourceRegistry::Id> id =
        registry.Add(Served(resource, namespace_name, label_selector, field_selector));
    INFO(id.status().ToString());
    REQUIRE(id.ok());
    return *id;
  }
  ServedResource Served(const core::ResolvedResource& resource, std::string namespace_name = "",
                        std::string label_selector = "", std::string field_selector = "") {
    ServedResource served;
    served.resource = resource;
    served.namespace_name = std::move(namespace_name);
    served.label_selector = std::move(label_selector);
    served.field_selector = std::move(field_selector);
    served.cache = core::Cache::Create({}, clock);
    return served;
  }
  // The found entry's Describe(), or the error message.
  std::string Find(const core::ResolvedResource& resource, const std::string& namespace_name) {
    auto found = registry.Find(resource, namespace_name);
    if (!found.ok()) {
      CHECK(found.status().code() == absl::StatusCode::kNotFound);
      return std::string(found.status().message());
    }
    return (*found)->Describe();
  }

  core::SteadyClock clock;
  ResourceRegistry registry;
};

const core::ResolvedResource kPods = Resource("", "v1", "pods");
const core::ResolvedResource kDeployments = Resource("apps", "v1", "deployments");
const core::ResolvedResource kNodes = Resource("", "v1", "nodes", false);

TEST_CASE_METHOD(RegistryTest, "an entry for all namespaces answers for any namespace",
                 "[registry]") {
  Add(kPods);
  CHECK(Find(kPods, "") == "pods");
  CHECK(Find(kPods, "default") == "pods");
  Add(kNodes);
  CHECK(Find(kNodes, "") == "nodes");
}

TEST_CASE_METHOD(RegistryTest, "an entry for one namespace answers only for it", "[registry]") {
  Add(kPods, "default");
  Add(kDeployments);
  CHECK(Find(kPods, "default") == "pods in namespace default");
  CHECK(Find(kPods, "other") ==
        "pods in namespace other is not served by this informerd (configured: pods in namespace "
        "default, deployments.apps)");
  CHECK(Find(kPods, "") ==
        "pods is not served by this informerd (configured: pods in namespace default, "
        "deployments.apps)");
}

TEST_CASE_METHOD(RegistryTest,
                 "preferences: no upstream selectors, then the exact namespace, "
                 "then the first added",
                 "[registry]") {
  Add(kPods, "", "app=web");
  Add(kPods, "", "app=db");
  CHECK(Find(kPods, "default") == "pods with label selector \"app=web\"");  // first added
  Add(kPods, "default", "", "spec.nodeName=n1");
  CHECK(Find(kPods, "default") ==
        "pods in namespace default with field selector \"spec.nodeName=n1\"");  // namespace
  CHECK(Find(kPods, "") == "pods with label selector \"app=web\"");
  Add(kPods, "");
  CHECK(Find(kPods, "default") == "pods");  // no upstream selectors
  Add(kPods, "default");
  CHECK(Find(kPods, "default") == "pods in namespace default");  // both
  CHECK(Find(kPods, "") == "pods");
  CHECK(Find(kPods, "other") == "pods");
}

TEST_CASE_METHOD(RegistryTest, "versions must match; the message then shows them", "[registry]") {
  Add(kDeployments);
  Add(kPods);
  CHECK(Find(Resource("apps", "v1beta1", "deployments"), "") ==
        "deployments.apps (apps/v1beta1) is not served by this informerd (configured: "
        "deployments.apps (apps/v1), pods)");
  CHECK(Find(Resource("apps", "v1", "deployments"), "") == "deployments.apps");
}

TEST_CASE_METHOD(RegistryTest, "an empty registry says so", "[registry]") {
  CHECK(Find(kPods, "") == "pods is not served by this informerd (nothing is configured)");
}

TEST_CASE_METHOD(RegistryTest, "entries come and go at run time", "[registry]") {
  const ResourceRegistry::Id pods = Add(kPods);
  Add(kNodes);
  auto kept = registry.Find(kPods, "");
  REQUIRE(kept.ok());
  const std::shared_ptr<const ServedResource> removed = registry.Remove(pods);
  REQUIRE(removed);
  CHECK(removed->resource == kPods);
  CHECK(registry.Remove(pods) == nullptr);
  CHECK(Find(kPods, "") == "pods is not served by this informerd (configured: nodes)");
  CHECK((*kept)->cache != nullptr);  // what a caller found stays usable
  REQUIRE(registry.Entries().size() == 1);
  CHECK(registry.Entries()[0]->resource == kNodes);
  Add(kPods);
  CHECK(Find(kPods, "") == "pods");
}

TEST_CASE_METHOD(RegistryTest, "what Add refuses", "[registry]") {
  Add(kPods, "default", "app=web");
  const auto duplicate = registry.Add(Served(kPods, "default", "app=web"));
  CHECK(duplicate.status().code() == absl::StatusCode::kAlreadyExists);
  CHECK(duplicate.status().message() ==
        "pods in namespace default with label selector \"app=web\" is already served");
  CHECK(registry.Add(Served(kPods, "default", "app=db")).ok());

  const auto namespaced_node = registry.Add(Served(kNodes, "default"));
  CHECK(namespaced_node.status().code() == absl::StatusCode::kInvalidArgument);
  ServedResource no_cache = Served(kPods, "other");
  no_cache.cache = nullptr;
  CHECK(registry.Add(std::move(no_cache)).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Describe names the scope", "[registry]") {
  ServedResource served;
  served.resource = kDeployments;
  CHECK(served.Describe() == "deployments.apps");
  served.namespace_name = "ns";
  served.field_selector = "metadata.name=x";
  CHECK(served.Describe() ==
        "deployments.apps in namespace ns with field selector \"metadata.name=x\"");
  served.label_selector = "a=b";
  CHECK(served.Describe() ==
        "deployments.apps in namespace ns with label selector \"a=b\" and field selector "
        "\"metadata.name=x\"");
}

TEST_CASE_METHOD(RegistryTest, "Replace keeps the id and the position, with Add's checks") {
  const ResourceRegistry::Id pods = Add(Resource("", "v1", "pods"));
  Add(Resource("apps", "v1", "deployments"));
  auto replaced = registry.Replace(pods, Served(Resource("", "v1", "pods"), "team-a"));
  REQUIRE(replaced.ok());
  CHECK((*replaced)->namespace_name.empty());
  REQUIRE(registry.Entries().size() == 2);
  CHECK(registry.Entries()[0]->namespace_name == "team-a");
  CHECK(registry.Replace(pods, Served(Resource("apps", "v1", "deployments"))).status().code() ==
        absl::StatusCode::kAlreadyExists);
  CHECK(registry.Replace(999, Served(Resource("", "v1", "pods"))).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(registry.Remove(pods) != nullptr);
}

TEST_CASE_METHOD(RegistryTest, "FindGone finds an entry whose resource is gone, by any spelling") {
  ServedResource widgets = Served(Resource("example.com", "v1", "widgets"));
  widgets.resource.kind = "Widget";
  widgets.status = [] {
    core::ReflectorStatus status;
    status.resource_gone = true;
    return status;
  };
  REQUIRE(registry.Add(std::move(widgets)).ok());
  Add(Resource("", "v1", "pods"));
  for (const char* name : {"widgets", "Widgets", "widgets.example.com", "example.com/v1/widgets",
                           "Widget", "widget"}) {
    INFO(name);
    CHECK(registry.FindGone(name) != nullptr);
  }
  CHECK(registry.FindGone("gadgets") == nullptr);
  CHECK(registry.FindGone("example.com/v2/widgets") == nullptr);
  CHECK(registry.FindGone("pods") == nullptr);  // served, not gone
}

TEST_CASE_METHOD(RegistryTest, "without an on-demand source, AcquireOnDemand is NOT_FOUND") {
  CHECK_FALSE(registry.on_demand_enabled());
  const auto lease = registry.AcquireOnDemand(Resource("", "v1", "configmaps"));
  CHECK(lease.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(lease.status().message()) ==
        "configmaps is not served by this informerd (on-demand informers are off)");
}

}  // namespace
}  // namespace informerd::daemon
