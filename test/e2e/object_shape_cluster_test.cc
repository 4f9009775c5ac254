// End-to-end against a real kube-apiserver: the shape and size of the objects informerd serves.
//   kind and apiVersion: the apiserver writes a LIST's items without them (the list names the
//     kind once) and a watch event's object with them; informerd serves every object with both,
//     however it arrived, equal to what kubectl shows: Get (informerctl get -o json too), List,
//     and Subscribe's snapshot and events, for a built-in resource and a custom resource, before
//     and after a label change.
//   maxObjectBytes: an object larger than it, listed or watched, is skipped and named in the log;
//     the rest of the list and the watch go on (no relist, the resource stays synced), and the
//     object is served again once it fits; a cached object that grows past it is deleted.
//
// One cluster and one daemon serve every test case; each case works in a namespace of its own.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rapidjson/document.h"
#include "test/e2e/cluster_e2e.h"

namespace informerd::test::e2e {
namespace {

constexpr char kConfig[] = R"(maxObjectBytes: 65536
resources:
  - resource: pods
    namespace: shape
  - resource: gizmos
    namespace: shape
  - resource: configmaps
    namespace: size
)";

// Comfortably over the 65536-byte limit, far under etcd's 1.5 MiB.
constexpr std::size_t kBigData = 100000;

std::string NamespaceYaml(const std::string& name) {
  return fmt::format("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n", name);
}

std::string PodYaml(const std::string& name) {
  return fmt::format(R"(---
apiVersion: v1
kind: Pod
metadata: {{name: {}, namespace: shape, labels: {{app: web}}}}
spec:
  containers:
  - {{name: c, image: registry.invalid/never-pulled:1}}
)",
                     name);
}

std::string GizmoYaml(const std::string& name) {
  return fmt::format(R"(---
apiVersion: example.com/v1
kind: Gizmo
metadata: {{name: {}, namespace: shape, labels: {{app: web}}}}
spec: {{size: 3}}
)",
                     name);
}

std::string ConfigMapYaml(const std::string& name, std::size_t data_bytes) {
  return fmt::format(R"(---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {}, namespace: size}}
data: {{blob: "{}"}}
)",
                     name, std::string(data_bytes, 'x'));
}

struct Env {
  std::unique_ptr<TestCluster> cluster;
  std::unique_ptr<Daemon> daemon;  // after `cluster`: destroyed first
};

Env& SharedEnv() {
  static std::unique_ptr<Env> env;
  if (env) return *env;
  auto fresh = std::make_unique<Env>();
  fresh->cluster = StartCluster();
  TestCluster& cluster = *fresh->cluster;
  CreateOk(cluster, NamespaceYaml("shape") + NamespaceYaml("size"));
  CreateCrd(cluster, "gizmos", "Gizmo");
  // Listed when the daemon starts.
  CreateOk(cluster, PodYaml("web-1") + GizmoYaml("g-1") + ConfigMapYaml("small-1", 10) +
                        ConfigMapYaml("big-listed", kBigData));
  fresh->daemon = Daemon::Start(cluster, kConfig);
  INFO(fresh->daemon->log());
  REQUIRE(AwaitSynced(fresh->daemon->stub(), {"pods", "gizmos", "configmaps"}, seconds(30)));
  env = std::move(fresh);
  return *env;
}

// An object's kind and apiVersion as "Kind apiVersion" ("<none>" for one that is missing).
std::string TypeOf(const std::string& object_json) {
  rapidjson::Document document;
  document.Parse(object_json.data(), object_json.size());
  INFO(object_json.substr(0, 500));
  REQUIRE(!document.HasParseError());
  REQUIRE(document.IsObject());
  const auto member = [&](const char* name) -> std::string {
    const auto found = document.FindMember(name);
    if (found == document.MemberEnd() || !found->value.IsString()) return "<none>";
    return found->value.GetString();
  };
  return member("kind") + " " + member("apiVersion");
}

std::string GetOk(v1::Informer::Stub& stub, const std::string& resource, const std::string& ns,
                  const std::string& name) {
  const GetOutcome got = Get(stub, resource, ns, name);
  INFO(fmt::format("Get {} {}/{}: {}", resource, ns, name, got.status.error_message()));
  REQUIRE(got.status.ok());
  return got.response.object();
}

// Waits until Get serves `key`'s resource version.
bool AwaitServed(v1::Informer::Stub& stub, const std::string& resource, const ObjectKey& key) {
  std::string seen;
  const bool served = WaitUntil(
      [&] {
        const GetOutcome got = Get(stub, resource, key.namespace_name, key.name);
        seen =
            got.status.ok() ? Describe(KeyOf(got.response.object())) : got.status.error_message();
        return got.status.ok() &&
               KeyOf(got.response.object()).resource_version == key.resource_version;
      },
      seconds(20));
  UNSCOPED_INFO("waiting for " << Describe(key) << ", Get served " << seen);
  return served;
}

// The names of what List serves in namespace "size", except configmaps the cluster's own
// controllers may add (kube-root-ca.crt).
std::vector<std::string> SizeNames(v1::Informer::Stub& stub) {
  std::vector<std::string> names;
  for (const ObjectKey& key : ListKeys(stub, "configmaps", "size")) {
    if (key.name != "kube-root-ca.crt") names.push_back(key.name);
  }
  return names;
}

TEST_CASE("every object served has kubectl's kind and apiVersion, however it arrived",
          "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;

  struct Case {
    std::string resource;  // as informerd and kubectl name it
    std::string listed;    // an object the daemon's initial LIST brought
    std::string created;   // one created now, so that it arrives as a watch event
    std::string yaml;
    std::string expected;  // TypeOf
  };
  const std::vector<Case> cases = {
      {"pods", "web-1", "web-2", PodYaml("web-2"), "Pod v1"},
      {"gizmos", "g-1", "g-2", GizmoYaml("g-2"), "Gizmo example.com/v1"},
  };
  for (const Case& c : cases) {
    INFO(c.resource);
    // kubectl shows the same.
    CHECK(TypeOf(KubectlOk(cluster, {"get", c.resource, c.listed, "-n", "shape", "-o", "json"})) ==
          c.expected);

    Subscriber subscriber(daemon.NewChannel(), SubscribeTo(c.resource, "shape"));
    REQUIRE(subscriber.WaitFor(HasSynced, seconds(20)));

    // As listed: Get, informerctl get, List, the snapshot.
    CHECK(TypeOf(GetOk(daemon.stub(), c.resource, "shape", c.listed)) == c.expected);
    const SubprocessResult shown =
        Informerctl(daemon.address(), {"get", c.resource, c.listed, "-n", "shape", "-o", "json"});
    INFO(shown.err);
    REQUIRE(shown.exit_code == 0);
    CHECK(TypeOf(shown.out) == c.expected);
    const ListOutcome listed = List(daemon.stub(), c.resource, "shape");
    REQUIRE(listed.status.ok());
    REQUIRE(listed.response.items_size() >= 1);
    for (const std::string& item : listed.response.items()) CHECK(TypeOf(item) == c.expected);
    for (const v1::Event& event : subscriber.events()) {
      if (event.type() == v1::Event::ADDED) CHECK(TypeOf(event.object()) == c.expected);
    }

    // After a label change, which arrives as a watch event: the same kind and apiVersion.
    KubectlOk(cluster, {"label", c.resource, c.listed, "-n", "shape", "shape=changed"});
    const ObjectKey relabelled =
        KeyOf(KubectlOk(cluster, {"get", c.resource, c.listed, "-n", "shape", "-o", "json"}));
    REQUIRE(AwaitServed(daemon.stub(), c.resource, relabelled));
    CHECK(TypeOf(GetOk(daemon.stub(), c.resource, "shape", c.listed)) == c.expected);
    const SubprocessResult after =
        Informerctl(daemon.address(), {"get", c.resource, c.listed, "-n", "shape", "-o", "json"});
    REQUIRE(after.exit_code == 0);
    CHECK(TypeOf(after.out) == c.expected);
    CHECK(after.out.find("\"shape\": \"changed\"") != std::string::npos);

    // A new object, and the stream's events.
    CreateOk(cluster, c.yaml);
    const ObjectKey created =
        KeyOf(KubectlOk(cluster, {"get", c.resource, c.created, "-n", "shape", "-o", "json"}));
    REQUIRE(AwaitServed(daemon.stub(), c.resource, created));
    CHECK(TypeOf(GetOk(daemon.stub(), c.resource, "shape", c.created)) == c.expected);
    const bool streamed = subscriber.WaitFor(
        [&](const std::vector<v1::Event>& events) {
          bool modified = false, added = false;
          for (const v1::Event& event : AfterSynced(events)) {
            modified |= event.type() == v1::Event::MODIFIED && event.name() == c.listed &&
                        KeyOf(event.object()).resource_version == relabelled.resource_version;
            added |= event.type() == v1::Event::ADDED && event.name() == c.created;
          }
          return modified && added;
        },
        seconds(20));
    INFO("relabelled: " << Describe(relabelled));
    INFO(fmt::format("{}", fmt::join(Describe(subscriber.events()), "\n")));
    REQUIRE(streamed);
    for (const v1::Event& event : AfterSynced(subscriber.events())) {
      if (event.type() == v1::Event::BOOKMARK) continue;
      INFO(Describe(event));
      CHECK(TypeOf(event.object()) == c.expected);
    }
  }
}

TEST_CASE("an object larger than maxObjectBytes is skipped, named, and the rest is served",
          "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;

  // Listed over the limit: left out of an otherwise complete list, named once in the log.
  CHECK(SizeNames(daemon.stub()) == std::vector<std::string>{"small-1"});
  CHECK(daemon.WaitForLog("configmaps: skipping size/big-listed: a LIST item of ", seconds(5))
            .has_value());
  const std::optional<v1::ResourceInfo> info =
      FindInformer(ListResources(daemon.stub()), "configmaps", "size");
  REQUIRE(info.has_value());
  CHECK(info->synced());

  Subscriber subscriber(daemon.NewChannel(), SubscribeTo("configmaps", "size"));
  REQUIRE(subscriber.WaitFor(HasSynced, seconds(20)));

  // Watched over the limit: skipped, and the watch goes on to the next change.
  const std::size_t from = daemon.log_size();
  CreateOk(cluster, ConfigMapYaml("big-live", kBigData) + ConfigMapYaml("small-2", 10));
  REQUIRE(WaitUntil(
      [&] {
        return SizeNames(daemon.stub()) == std::vector<std::string>{"small-1", "small-2"};
      },
      seconds(20)));
  const std::optional<std::string> line =
      daemon.WaitForLog("configmaps: skipping size/big-live: a watch event of ", seconds(5), from);
  REQUIRE(line.has_value());
  CHECK(line->find("larger than the 65536-byte limit on one object (maxObjectBytes)") !=
        std::string::npos);

  // It fits again: served.
  KubectlOk(cluster, {"patch", "configmap", "big-live", "-n", "size", "--type=merge", "-p",
                      R"({"data":{"blob":"small now"}})"});
  const ObjectKey shrunk =
      KeyOf(KubectlOk(cluster, {"get", "configmap", "big-live", "-n", "size", "-o", "json"}));
  CHECK(AwaitServed(daemon.stub(), "configmaps", shrunk));

  // A cached object that grows past the limit is no longer served: DELETED to subscribers.
  KubectlOk(cluster, {"patch", "configmap", "small-1", "-n", "size", "--type=merge", "-p",
                      fmt::format(R"({{"data":{{"blob":"{}"}}}})", std::string(kBigData, 'y'))});
  CHECK(WaitUntil(
      [&] {
        return Get(daemon.stub(), "configmaps", "size", "small-1").status.error_code() ==
               grpc::StatusCode::NOT_FOUND;
      },
      seconds(20)));
  CHECK(subscriber.WaitFor(
      [](const std::vector<v1::Event>& events) {
        for (const v1::Event& event : AfterSynced(events)) {
          if (event.type() == v1::Event::DELETED && event.name() == "small-1") return true;
        }
        return false;
      },
      seconds(20)));

  // All along, no relist and no watch restarted over these objects.
  CHECK(daemon.log().find("configmaps: relisting") == std::string::npos);
  CHECK(FindInformer(ListResources(daemon.stub()), "configmaps", "size")->synced());
}

}  // namespace
}  // namespace informerd::test::e2e
