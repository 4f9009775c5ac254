// Discovery (daemon/kube/discovery.h): the naming rules as a table over literal discovery documents
// shaped like a Kubernetes 1.20 server's (no I/O), then fetching from the fake apiserver,
// including a CRD registered after start-up, found by a rate-limited refresh.
#include "daemon/kube/discovery.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "test/common/api_test_support.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::test {
namespace {

using core::ApiGroupInfo;
using core::ApiResourceInfo;
using core::DiscoveryData;
using core::ResolvedResource;
using core::ResolveResource;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// ---------------------------------------------------------------------------------------------
// Documents.

constexpr char kApi[] = R"({"kind":"APIVersions","versions":["v1"],
  "serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]})";

// As Kubernetes 1.20 answers: built-in kinds have an empty singularName.
constexpr char kCoreV1[] = R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
  {"name":"pods","singularName":"","namespaced":true,"kind":"Pod",
   "verbs":["create","delete","get","list","watch"],"shortNames":["po"],"categories":["all"]},
  {"name":"pods/log","singularName":"","namespaced":true,"kind":"Pod","verbs":["get"]},
  {"name":"pods/status","singularName":"","namespaced":true,"kind":"Pod","verbs":["get","patch"]},
  {"name":"events","singularName":"","namespaced":true,"kind":"Event",
   "verbs":["get","list","watch"],"shortNames":["ev"]},
  {"name":"services","singularName":"","namespaced":true,"kind":"Service",
   "verbs":["get","list","watch"],"shortNames":["svc"]},
  {"name":"namespaces","singularName":"","namespaced":false,"kind":"Namespace",
   "verbs":["get","list","watch"],"shortNames":["ns"]}]})";

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

std::string ResourceList(const std::string& group_version, const std::string& resources) {
  return fmt::format(R"({{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"{}",
      "resources":[{}]}})",
                     group_version, resources);
}

std::string Resource(const std::string& name, const std::string& kind, bool namespaced = true,
                     const std::string& short_names = "", const std::string& singular = "") {
  return fmt::format(
      R"({{"name":"{}","singularName":"{}","namespaced":{},"kind":"{}","verbs":["get","list","watch"]{}}})",
      name, singular, namespaced ? "true" : "false", kind,
      short_names.empty() ? "" : fmt::format(R"(,"shortNames":[{}])", short_names));
}

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

// ---------------------------------------------------------------------------------------------
// Fetching from the fake apiserver.

struct FakeDiscoveryEnv {
  FakeDiscoveryEnv() {
    fakeapi::ServerOptions options;
    options.tls = true;
    absl::Status started = fake.Start(options);
    INFO(started.ToString());
    REQUIRE(started.ok());
    absl::StatusOr<std::unique_ptr<daemon::ApiServerClient>> created =
        daemon::ApiServerClient::Create(io.io(), MakeRestConfig(fake.base_url(), fake.ca_pem()));
    REQUIRE(created.ok());
    client = *std::move(created);
    daemon::DiscoveryOptions discovery_options;
    discovery_options.min_refresh_interval = std::chrono::seconds(30);
    discovery = std::make_unique<daemon::Discovery>(*client, clock, discovery_options);
  }

  absl::StatusOr<core::ResolvedResource> Resolve(const std::string& name) {
    Awaited<absl::StatusOr<core::ResolvedResource>> result;
    discovery->Resolve(name, result.Callback());
    std::optional<absl::StatusOr<core::ResolvedResource>> got = result.Wait();
    REQUIRE(got.has_value());
    return *got;
  }

  std::size_t RequestsFor(const std::string& path) const {
    std::size_t n = 0;
    for (const fakeapi::RequestRecord& r : fake.Requests()) n += r.path == path ? 1 : 0;
    return n;
  }

  fakeapi::FakeApiServer fake;
  ManualClock clock;
  IoThread io;
  std::unique_ptr<daemon::ApiServerClient> client;
  std::unique_ptr<daemon::Discovery> discovery;
};

TEST_CASE("Discovery fetches the documents once and resolves built-in names", "[discovery]") {
  FakeDiscoveryEnv env;
  const std::vector<std::pair<std::string, std::string>> table = {
      {"pods", "/api/v1/pods"},
      {"po", "/api/v1/pods"},
      {"configmaps", "/api/v1/configmaps"},
      {"deployments.apps", "/apis/apps/v1/deployments"},
      {"deploy", "/apis/apps/v1/deployments"},
      {"apps/v1/deployments", "/apis/apps/v1/deployments"},
      {"ns", "/api/v1/namespaces"},
  };
  for (const auto& [name, path] : table) {
    INFO(name);
    absl::StatusOr<core::ResolvedResource> resolved = env.Resolve(name);
    INFO(resolved.status().ToString());
    REQUIRE(resolved.ok());
    CHECK(resolved->CollectionPath() == path);
  }
  // One fetch served every name.
  CHECK(env.RequestsFor("/api") == 1);
  CHECK(env.RequestsFor("/apis") == 1);
  CHECK(env.RequestsFor("/api/v1") == 1);
  CHECK(env.RequestsFor("/apis/apps/v1") == 1);
}

TEST_CASE("concurrent first resolutions share one fetch", "[discovery]") {
  FakeDiscoveryEnv env;
  std::vector<Awaited<absl::StatusOr<core::ResolvedResource>>> results(4);
  const char* names[] = {"pods", "deploy", "cm", "nothing-like-this"};
  for (std::size_t i = 0; i < results.size(); ++i) {
    env.discovery->Resolve(names[i], results[i].Callback());
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO(names[i]);
    std::optional<absl::StatusOr<core::ResolvedResource>> got = results[i].Wait();
    REQUIRE(got.has_value());
    CHECK(got->ok() == (i < 3));
  }
  CHECK(env.RequestsFor("/api") == 1);
  CHECK(env.RequestsFor("/apis") == 1);
}

TEST_CASE(
    "a CRD registered after start is found by a refresh on a miss, at most once per "
    "interval",
    "[discovery]") {
  FakeDiscoveryEnv env;
  absl::StatusOr<core::ResolvedResource> before = env.Resolve("widgets");
  CHECK(before.status().code() == absl::StatusCode::kNotFound);
  REQUIRE(env.RequestsFor("/apis") == 1);

  fakeapi::ResourceType widgets =
      fakeapi::ResourceType::Custom("example.com", "v1", "widgets", "Widget");
  widgets.short_names = {"wdg"};
  env.fake.RegisterResource(widgets);

  // Too soon after the last fetch: still not found, and no request was made.
  env.clock.Advance(std::chrono::seconds(10));
  absl::StatusOr<core::ResolvedResource> too_soon = env.Resolve("widgets");
  CHECK(too_soon.status().code() == absl::StatusCode::kNotFound);
  INFO(Message(too_soon.status()));
  CHECK(Contains(Message(too_soon.status()), "discovery was refreshed 10.000s ago"));
  CHECK(env.RequestsFor("/apis") == 1);

  env.clock.Advance(std::chrono::seconds(20));
  absl::StatusOr<core::ResolvedResource> found = env.Resolve("widgets");
  INFO(found.status().ToString());
  REQUIRE(found.ok());
  CHECK(found->group == "example.com");
  CHECK(found->version == "v1");
  CHECK(found->kind == "Widget");
  CHECK(found->CollectionPath("ns1") == "/apis/example.com/v1/namespaces/ns1/widgets");
  CHECK(env.RequestsFor("/apis") == 2);
  CHECK(env.RequestsFor("/apis/example.com/v1") == 1);

  // Names the new documents know resolve without another fetch.
  absl::StatusOr<core::ResolvedResource> short_name = env.Resolve("wdg");
  REQUIRE(short_name.ok());
  CHECK(short_name->resource == "widgets");
  absl::StatusOr<core::ResolvedResource> qualified = env.Resolve("widgets.example.com");
  REQUIRE(qualified.ok());
  CHECK(env.Resolve("gadgets").status().code() == absl::StatusCode::kNotFound);
  CHECK(env.RequestsFor("/apis") == 2);  // That miss came within the interval: no fetch.
}

TEST_CASE("a failed fetch is an error, and the next Resolve fetches again", "[discovery]") {
  FakeDiscoveryEnv env;
  env.fake.InjectFault("*", fakeapi::Verb::kDiscovery, fakeapi::Fault::ServiceUnavailable(1));
  absl::StatusOr<core::ResolvedResource> failed = env.Resolve("pods");
  CHECK(failed.status().code() == absl::StatusCode::kUnavailable);
  INFO(Message(failed.status()));
  CHECK(Contains(Message(failed.status()), "discovery failed"));
  CHECK(Contains(Message(failed.status()), "HTTP 503"));

  absl::StatusOr<core::ResolvedResource> retried = env.Resolve("pods");
  INFO(retried.status().ToString());
  CHECK(retried.ok());
}

TEST_CASE("a group version whose list fails is skipped and named when a name is not found",
          "[discovery]") {
  // The fake apiserver cannot fail one particular list, so a canned server plays an apiserver
  // whose aggregated metrics API is down.
  auto status_503 = [] {
    const std::string body =
        R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"service unavailable",)"
        R"("reason":"ServiceUnavailable","code":503})";
    return fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
  };
  auto ok = [](const std::string& body) {
    return fmt::format(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
        "Connection: close\r\n\r\n{}",
        body.size(), body);
  };
  const std::string apis = R"({"kind":"APIGroupList","groups":[
    {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}]},
    {"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1",
      "version":"v1beta1"}]}]})";
  CannedHttpServer server([&](const std::string& target) {
    if (target == "/api") return ok(kApi);
    if (target == "/apis") return ok(apis);
    if (target == "/api/v1") return ok(kCoreV1);
    if (target == "/apis/apps/v1") {
      return ok(ResourceList("apps/v1", Resource("deployments", "Deployment", true)));
    }
    return status_503();
  });
  IoThread io;
  absl::StatusOr<std::unique_ptr<daemon::ApiServerClient>> client = daemon::ApiServerClient::Create(
      io.io(), MakeRestConfig(fmt::format("http://127.0.0.1:{}", server.port()), ""));
  REQUIRE(client.ok());
  ManualClock clock;
  daemon::Discovery discovery(**client, clock);

  Awaited<absl::StatusOr<core::ResolvedResource>> deployments;
  discovery.Resolve("deployments", deployments.Callback());
  std::optional<absl::StatusOr<core::ResolvedResource>> found = deployments.Wait();
  REQUIRE(found.has_value());
  INFO(found->status().ToString());
  REQUIRE(found->ok());
  CHECK((*found)->group == "apps");

  Awaited<absl::StatusOr<core::ResolvedResource>> nodes;
  discovery.Resolve("nodes.metrics.k8s.io", nodes.Callback());
  std::optional<absl::StatusOr<core::ResolvedResource>> missing = nodes.Wait();
  REQUIRE(missing.has_value());
  CHECK(missing->status().code() == absl::StatusCode::kNotFound);
  const std::string message = Message(missing->status());
  INFO(message);
  CHECK(Contains(message, "discovery failed: metrics.k8s.io/v1beta1:"));
  CHECK(Contains(message, "HTTP 503"));
  // /api, /apis and the three lists; the miss was rate-limited, so nothing more.
  CHECK(server.requests() == 5);
}

}  // namespace
}  // namespace informerd::test
