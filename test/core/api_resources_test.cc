// The Kubernetes API's resource naming (core/api_resources.h): the discovery document parsers,
// and the naming rules as a table over literal discovery documents shaped like a Kubernetes 1.20
// server's, with CRDs whose names collide with each other and with built-in names. No I/O.
#include "core/api_resources.h"

#include <catch2/catch.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fmt/format.h"
#include "test/common/discovery_documents.h"

namespace informerd::test {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// ---------------------------------------------------------------------------------------------
// Documents (kApi, kCoreV1, ResourceList and Resource are in test/common/discovery_documents.h).

// Group order as the apiserver ranks groups (extensions before networking.k8s.io in 1.20), CRD
// groups last.
constexpr char kApis[] = R"({"kind":"APIGroupList","apiVersion":"v1","groups":[
  {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],
   "preferredVersion":{"groupVersion":"apps/v1","version":"v1"}},
  {"name":"events.k8s.io","versions":[{"groupVersion":"events.k8s.io/v1","version":"v1"},
    {"groupVersion":"events.k8s.io/v1beta1","version":"v1beta1"}],
   "preferredVersion":{"groupVersion":"events.k8s.io/v1","version":"v1"}},
  {"name":"autoscaling","versions":[{"groupVersion":"autoscaling/v1","version":"v1"},
    {"groupVersion":"autoscaling/v2beta2","version":"v2beta2"}],
   "preferredVersion":{"groupVersion":"autoscaling/v1","version":"v1"}},
  {"name":"extensions","versions":[{"groupVersion":"extensions/v1beta1","version":"v1beta1"}],
   "preferredVersion":{"groupVersion":"extensions/v1beta1","version":"v1beta1"}},
  {"name":"networking.k8s.io","versions":[{"groupVersion":"networking.k8s.io/v1","version":"v1"}],
   "preferredVersion":{"groupVersion":"networking.k8s.io/v1","version":"v1"}},
  {"name":"stable.example.com","versions":[
    {"groupVersion":"stable.example.com/v2","version":"v2"},
    {"groupVersion":"stable.example.com/v1","version":"v1"}],
   "preferredVersion":{"groupVersion":"stable.example.com/v2","version":"v2"}},
  {"name":"a.example.com","versions":[{"groupVersion":"a.example.com/v1","version":"v1"}],
   "preferredVersion":{"groupVersion":"a.example.com/v1","version":"v1"}},
  {"name":"b.example.com","versions":[{"groupVersion":"b.example.com/v1","version":"v1"}],
   "preferredVersion":{"groupVersion":"b.example.com/v1","version":"v1"}},
  {"name":"shadow.example.com","versions":[
    {"groupVersion":"shadow.example.com/v1","version":"v1"}],
   "preferredVersion":{"groupVersion":"shadow.example.com/v1","version":"v1"}}]})";

core::DiscoveryData ClusterDiscovery() {
  core::DiscoveryData data;
  absl::StatusOr<std::vector<std::string>> core_versions = core::ParseApiVersions(kApi);
  REQUIRE(core_versions.ok());
  data.groups.push_back(core::ApiGroupInfo{"", *core_versions, core_versions->front()});
  absl::StatusOr<std::vector<core::ApiGroupInfo>> groups = core::ParseApiGroupList(kApis);
  REQUIRE(groups.ok());
  for (const core::ApiGroupInfo& g : *groups) data.groups.push_back(g);

  const std::vector<std::tuple<std::string, std::string, std::string>> lists = {
      {"", "v1", kCoreV1},
      {"apps", "v1",
       ResourceList("apps/v1", Resource("deployments", "Deployment", true, R"("deploy")") + "," +
                                   Resource("deployments/scale", "Scale") + "," +
                                   Resource("replicasets", "ReplicaSet", true, R"("rs")"))},
      {"events.k8s.io", "v1",
       ResourceList("events.k8s.io/v1", Resource("events", "Event", true, R"("ev")"))},
      {"events.k8s.io", "v1beta1",
       ResourceList("events.k8s.io/v1beta1", Resource("events", "Event", true, R"("ev")"))},
      {"autoscaling", "v1",
       ResourceList("autoscaling/v1", Resource("horizontalpodautoscalers",
                                               "HorizontalPodAutoscaler", true, R"("hpa")"))},
      {"autoscaling", "v2beta2",
       ResourceList("autoscaling/v2beta2", Resource("horizontalpodautoscalers",
                                                    "HorizontalPodAutoscaler", true, R"("hpa")"))},
      {"extensions", "v1beta1",
       ResourceList("extensions/v1beta1", Resource("ingresses", "Ingress", true, R"("ing")"))},
      {"networking.k8s.io", "v1",
       ResourceList("networking.k8s.io/v1", Resource("ingresses", "Ingress", true, R"("ing")"))},
      {"stable.example.com", "v2",
       ResourceList("stable.example.com/v2",
                    Resource("crontabs", "CronTab", true, R"("ct")", "crontab"))},
      {"stable.example.com", "v1",
       ResourceList("stable.example.com/v1",
                    Resource("crontabs", "CronTab", true, R"("ct")", "crontab") + "," +
                        Resource("foos", "Foo", false, "", "foo"))},
      {"a.example.com", "v1",
       ResourceList("a.example.com/v1", Resource("widgets", "Widget", true, R"("wd")", "widget"))},
      {"b.example.com", "v1",
       ResourceList("b.example.com/v1", Resource("widgets", "Gizmo", false, "", "gizmo"))},
      // A CRD whose short names collide with built-in names.
      {"shadow.example.com", "v1",
       ResourceList("shadow.example.com/v1",
                    Resource("shadows", "Shadow", true, R"("pods","svc")", "shadow"))},
  };
  for (const auto& [group, version, json] : lists) {
    absl::StatusOr<std::vector<core::ApiResourceInfo>> list =
        core::ParseApiResourceList(json, group, version);
    INFO(group << "/" << version << ": " << list.status().ToString());
    REQUIRE(list.ok());
    for (const core::ApiResourceInfo& r : *list) data.resources.push_back(r);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Parsing.

TEST_CASE("resource lists leave subresources out and keep what resolution needs", "[discovery]") {
  absl::StatusOr<std::vector<core::ApiResourceInfo>> list =
      core::ParseApiResourceList(kCoreV1, "", "v1");
  REQUIRE(list.ok());
  REQUIRE(list->size() == 4);
  const core::ApiResourceInfo& pods = (*list)[0];
  CHECK(pods.name == "pods");
  CHECK(pods.group.empty());
  CHECK(pods.version == "v1");
  CHECK(pods.kind == "Pod");
  CHECK(pods.namespaced);
  CHECK(pods.short_names == std::vector<std::string>{"po"});
  CHECK(pods.verbs == std::vector<std::string>{"create", "delete", "get", "list", "watch"});
  CHECK((*list)[1].name == "events");
  CHECK_FALSE((*list)[3].namespaced);
}

TEST_CASE("group lists keep the server's order and preferred versions", "[discovery]") {
  absl::StatusOr<std::vector<core::ApiGroupInfo>> groups = core::ParseApiGroupList(kApis);
  REQUIRE(groups.ok());
  REQUIRE(groups->size() == 9);
  CHECK((*groups)[0].name == "apps");
  CHECK((*groups)[5].name == "stable.example.com");
  CHECK((*groups)[5].versions == std::vector<std::string>{"v2", "v1"});
  CHECK((*groups)[5].preferred_version == "v2");
}

TEST_CASE("malformed discovery documents are errors that say which document", "[discovery]") {
  absl::StatusOr<std::vector<core::ApiResourceInfo>> truncated =
      core::ParseApiResourceList(R"({"kind":"APIResourceList",)", "apps", "v1");
  CHECK(truncated.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(Message(truncated.status()), "the discovery document of apps/v1"));
  CHECK(Contains(Message(truncated.status()), "not valid JSON"));

  absl::StatusOr<std::vector<core::ApiGroupInfo>> wrong_kind =
      core::ParseApiGroupList(R"({"kind":"Status","code":500})");
  CHECK(wrong_kind.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(Message(wrong_kind.status()), "/apis"));

  CHECK_FALSE(core::ParseApiVersions(R"({"kind":"APIVersions","versions":[]})").ok());
}

// ---------------------------------------------------------------------------------------------
// Resolution.

struct Expected {
  std::string group;
  std::string version;
  std::string resource;
  std::string kind;
  bool namespaced;
};

TEST_CASE("names resolve as kubectl resolves them", "[discovery]") {
  const core::DiscoveryData data = ClusterDiscovery();
  const std::vector<std::pair<std::string, Expected>> table = {
      // Core: plural, short name, kind (1.20 has no singularName), any case.
      {"pods", {"", "v1", "pods", "Pod", true}},
      {"po", {"", "v1", "pods", "Pod", true}},
      {"pod", {"", "v1", "pods", "Pod", true}},
      {"Pod", {"", "v1", "pods", "Pod", true}},
      {"PODS", {"", "v1", "pods", "Pod", true}},
      {"  pods ", {"", "v1", "pods", "Pod", true}},
      {"v1/pods", {"", "v1", "pods", "Pod", true}},
      {"namespaces", {"", "v1", "namespaces", "Namespace", false}},
      {"ns", {"", "v1", "namespaces", "Namespace", false}},
      // Grouped.
      {"deployments", {"apps", "v1", "deployments", "Deployment", true}},
      {"deployments.apps", {"apps", "v1", "deployments", "Deployment", true}},
      {"deployments.v1.apps", {"apps", "v1", "deployments", "Deployment", true}},
      {"apps/v1/deployments", {"apps", "v1", "deployments", "Deployment", true}},
      {"apps/deployments", {"apps", "v1", "deployments", "Deployment", true}},
      {"deploy", {"apps", "v1", "deployments", "Deployment", true}},
      {"deployment", {"apps", "v1", "deployments", "Deployment", true}},
      {"Deployment", {"apps", "v1", "deployments", "Deployment", true}},
      {"deploy.apps", {"apps", "v1", "deployments", "Deployment", true}},
      {"rs", {"apps", "v1", "replicasets", "ReplicaSet", true}},
      // The core group wins a name it shares ("events": core, not events.k8s.io).
      {"events", {"", "v1", "events", "Event", true}},
      {"ev", {"", "v1", "events", "Event", true}},
      {"events.events.k8s.io", {"events.k8s.io", "v1", "events", "Event", true}},
      {"events.v1beta1.events.k8s.io", {"events.k8s.io", "v1beta1", "events", "Event", true}},
      {"events.k8s.io/v1beta1/events", {"events.k8s.io", "v1beta1", "events", "Event", true}},
      // One kind in two groups (a migration): the group the server ranks first, as kubectl.
      {"ingresses", {"extensions", "v1beta1", "ingresses", "Ingress", true}},
      {"ing", {"extensions", "v1beta1", "ingresses", "Ingress", true}},
      {"ingresses.networking.k8s.io", {"networking.k8s.io", "v1", "ingresses", "Ingress", true}},
      // Preferred version first; other versions when only they serve the resource.
      {"hpa", {"autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true}},
      {"autoscaling/v2beta2/hpa",
       {"autoscaling", "v2beta2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true}},
      {"crontabs", {"stable.example.com", "v2", "crontabs", "CronTab", true}},
      {"crontab", {"stable.example.com", "v2", "crontabs", "CronTab", true}},
      {"ct", {"stable.example.com", "v2", "crontabs", "CronTab", true}},
      {"crontabs.v1.stable.example.com", {"stable.example.com", "v1", "crontabs", "CronTab", true}},
      {"stable.example.com/v1/crontabs", {"stable.example.com", "v1", "crontabs", "CronTab", true}},
      {"foos", {"stable.example.com", "v1", "foos", "Foo", false}},
      // CRDs: plural with group, singular, short name.
      {"widgets.a.example.com", {"a.example.com", "v1", "widgets", "Widget", true}},
      {"widgets.b.example.com", {"b.example.com", "v1", "widgets", "Gizmo", false}},
      {"wd", {"a.example.com", "v1", "widgets", "Widget", true}},
      {"gizmo", {"b.example.com", "v1", "widgets", "Gizmo", false}},
      // A CRD's short names do not shadow built-in full names or short names.
      {"svc", {"", "v1", "services", "Service", true}},
      {"shadows", {"shadow.example.com", "v1", "shadows", "Shadow", true}},
      // ...but a group-qualified short name is that group's (the shortcut expander's rule).
      {"pods.shadow.example.com", {"shadow.example.com", "v1", "shadows", "Shadow", true}},
      {"services.shadow.example.com", {"", "", "", "", false}},  // Not there: NotFound.
  };
  for (const auto& [name, expected] : table) {
    INFO("name: \"" << name << "\"");
    absl::StatusOr<core::ResolvedResource> resolved = core::ResolveResource(data, name);
    if (expected.resource.empty()) {
      CHECK(resolved.status().code() == absl::StatusCode::kNotFound);
      continue;
    }
    INFO(resolved.status().ToString());
    REQUIRE(resolved.ok());
    CHECK(resolved->group == expected.group);
    CHECK(resolved->version == expected.version);
    CHECK(resolved->resource == expected.resource);
    CHECK(resolved->kind == expected.kind);
    CHECK(resolved->namespaced == expected.namespaced);
  }
}

TEST_CASE("a name shared by unrelated kinds in several groups is ambiguous", "[discovery]") {
  const core::DiscoveryData data = ClusterDiscovery();
  absl::StatusOr<core::ResolvedResource> resolved = core::ResolveResource(data, "widgets");
  CHECK(resolved.status().code() == absl::StatusCode::kInvalidArgument);
  const std::string message = Message(resolved.status());
  INFO(message);
  CHECK(Contains(message, "\"widgets\" is ambiguous"));
  CHECK(Contains(message, "widgets.a.example.com (a.example.com/v1 Widget)"));
  CHECK(Contains(message, "widgets.b.example.com (b.example.com/v1 Gizmo)"));
}

TEST_CASE("unknown and malformed names", "[discovery]") {
  const core::DiscoveryData data = ClusterDiscovery();
  for (const char* name :
       {"nothings", "pods/log", "deployments.batch", "apps/v2/deployments", "v2/pods", "scale"}) {
    INFO(name);
    absl::StatusOr<core::ResolvedResource> resolved = core::ResolveResource(data, name);
    CHECK(resolved.status().code() == absl::StatusCode::kNotFound);
    CHECK(Contains(Message(resolved.status()), fmt::format("no resource \"{}\"", name)));
  }
  for (const char* name : {"", "   ", "a/b/c/d", "apps//deployments", ".apps", "pods."}) {
    INFO("\"" << name << "\"");
    CHECK(core::ResolveResource(data, name).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a name not found mentions the group versions whose discovery failed", "[discovery]") {
  core::DiscoveryData data = ClusterDiscovery();
  data.failed_group_versions.push_back("metrics.k8s.io/v1beta1: HTTP 503 Service Unavailable");
  absl::StatusOr<core::ResolvedResource> resolved = core::ResolveResource(data, "nodemetrics");
  CHECK(resolved.status().code() == absl::StatusCode::kNotFound);
  CHECK(Contains(Message(resolved.status()),
                 "discovery failed: metrics.k8s.io/v1beta1: HTTP 503 Service Unavailable"));
}

TEST_CASE("a resolved resource knows its paths and names", "[discovery]") {
  const core::DiscoveryData data = ClusterDiscovery();
  absl::StatusOr<core::ResolvedResource> pods = core::ResolveResource(data, "po");
  REQUIRE(pods.ok());
  CHECK(pods->GroupVersion() == "v1");
  CHECK(pods->QualifiedName() == "pods");
  CHECK(pods->CollectionPath() == "/api/v1/pods");
  CHECK(pods->CollectionPath("kube-system") == "/api/v1/namespaces/kube-system/pods");
  absl::StatusOr<core::ResolvedResource> deploy = core::ResolveResource(data, "deploy");
  REQUIRE(deploy.ok());
  CHECK(deploy->GroupVersion() == "apps/v1");
  CHECK(deploy->QualifiedName() == "deployments.apps");
  CHECK(deploy->CollectionPath("default") == "/apis/apps/v1/namespaces/default/deployments");
  absl::StatusOr<core::ResolvedResource> foos = core::ResolveResource(data, "foos");
  REQUIRE(foos.ok());
  // Cluster-scoped: a namespace does not go into the path.
  CHECK(foos->CollectionPath("default") == "/apis/stable.example.com/v1/foos");
}

}  // namespace
}  // namespace informerd::test
