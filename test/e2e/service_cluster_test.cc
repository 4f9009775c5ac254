// End-to-end against a real kube-apiserver: the informerd binary lists and watches pods (all
// namespaces), configmaps of one namespace with a label selector and CRD objects, and its
// Informer service answers List, Get and Subscribe exactly as `kubectl get` sees the cluster;
// subscribers resume without gap or duplicate; bad requests get clear statuses; 200 subscribers
// share one apiserver watch; a CRD created after start-up is picked up.
//
// One cluster and one daemon serve every test case of this binary (starting them is most of the
// cost); each case works in namespaces of its own and subscribes with a namespace filter, so the
// cases do not see each other's objects.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test/e2e/cluster_e2e.h"

namespace informerd::test::e2e {
namespace {

constexpr char kConfig[] = R"(resources:
  - resource: pods
  - resource: configmaps
    namespace: e2e-cm
    labelSelector: app=web
  - resource: gadgets
  - resource: widgets
)";

constexpr char kSetup[] = R"(apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: e2e-s1}}
- {apiVersion: v1, kind: Namespace, metadata: {name: e2e-cm}}
- {apiVersion: v1, kind: Namespace, metadata: {name: e2e-other}}
- {apiVersion: v1, kind: Namespace, metadata: {name: e2e-resume}}
- {apiVersion: v1, kind: Namespace, metadata: {name: e2e-bad}}
- {apiVersion: v1, kind: Namespace, metadata: {name: e2e-fanout}}
- {apiVersion: v1, kind: Namespace, metadata: {name: e2e-crd}}
)";

std::string PodYaml(const std::string& ns, const std::string& name,
                    const std::string& labels = "{}") {
  return fmt::format(R"(---
apiVersion: v1
kind: Pod
metadata: {{name: {}, namespace: {}, labels: {}}}
spec:
  containers:
  - {{name: c, image: registry.invalid/never-pulled:1}}
)",
                     name, ns, labels);
}

std::string ConfigMapYaml(const std::string& ns, const std::string& name, const std::string& labels,
                          const std::string& value = "v") {
  return fmt::format(R"(---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {}, namespace: {}, labels: {}}}
data: {{key: "{}"}}
)",
                     name, ns, labels, value);
}

std::string CustomYaml(const std::string& kind, const std::string& ns, const std::string& name,
                       int size) {
  return fmt::format(R"(---
apiVersion: example.com/v1
kind: {}
metadata: {{name: {}, namespace: {}}}
spec: {{size: {}}}
)",
                     kind, name, ns, size);
}

// The shared cluster and daemon. The apiserver's watch metrics are read before the daemon starts,
// so that later checks count the daemon's watches only.
struct Env {
  std::unique_ptr<TestCluster> cluster;
  double pods_watch_baseline = 0;
  double pods_registered_baseline = 0;
  std::string pods_list_resource_version;
  std::unique_ptr<Daemon> daemon;  // after `cluster`: destroyed first
};

Env& SharedEnv() {
  static std::unique_ptr<Env> env;
  if (env) return *env;
  auto fresh = std::make_unique<Env>();
  fresh->cluster = StartCluster();
  TestCluster& cluster = *fresh->cluster;
  ApplyOk(cluster, kSetup);
  // Present before the daemon lists: its list's resource version is then well past "1".
  CreateCrd(cluster, "gadgets", "Gadget");
  CreateOk(cluster, PodYaml("e2e-s1", "pre-1", "{app: pre}") +
                        ConfigMapYaml("e2e-cm", "cm-web-pre", "{app: web}") +
                        ConfigMapYaml("e2e-cm", "cm-db-pre", "{app: db}") +
                        ConfigMapYaml("e2e-other", "cm-web-other", "{app: web}") +
                        CustomYaml("Gadget", "e2e-s1", "pre-1", 1));

  const std::string metrics = ApiserverMetrics(cluster);
  fresh->pods_watch_baseline =
      MetricValue(metrics, "apiserver_longrunning_gauge",
                  {{"group", ""}, {"version", "v1"}, {"resource", "pods"}, {"verb", "WATCH"}})
          .value_or(0);
  fresh->pods_registered_baseline = MetricValue(metrics, "apiserver_registered_watchers",
                                                {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}})
                                        .value_or(0);

  // "widgets" does not exist until the last test case creates it: until then the daemon looks
  // for it every 30 s and is not ready.
  fresh->daemon = Daemon::Start(cluster, kConfig);

  Daemon& daemon = *fresh->daemon;
  INFO(daemon.log());
  REQUIRE(AwaitSynced(daemon.stub(), {"pods", "configmaps", "gadgets"}, seconds(30)));
  const std::optional<std::string> synced =
      daemon.WaitForLog("pods: synced ", seconds(1));  // "... at resourceVersion N in ..."
  REQUIRE(synced.has_value());
  const std::string marker = "at resourceVersion ";
  const std::size_t at = synced->find(marker);
  REQUIRE(at != std::string::npos);
  fresh->pods_list_resource_version = synced->substr(
      at + marker.size(), synced->find(' ', at + marker.size()) - at - marker.size());
  env = std::move(fresh);
  return *env;
}

// Runs a kubectl command that prints the object it changed (-o json); returns that object's key.
ObjectKey Mutate(const TestCluster& cluster, std::vector<std::string> args,
                 const std::string& stdin_text = "") {
  args.insert(args.end(), {"-o", "json"});
  return KeyOf(KubectlOk(cluster, args, stdin_text));
}

// Sets metadata.<field>.<key> = value with `kubectl patch`, which prints the object the server
// returned (`kubectl label -o json` prints the object as it was before the change); returns its
// key.
ObjectKey SetMeta(const TestCluster& cluster, const std::string& kind, const std::string& ns,
                  const std::string& name, const std::string& field, const std::string& key,
                  const std::string& value) {
  return Mutate(cluster,
                {"patch", kind, name, "-n", ns, "--type=merge", "-p",
                 fmt::format(R"({{"metadata":{{"{}":{{"{}":"{}"}}}}}})", field, key, value)});
}

// Deletes pods with grace period 0. Each still produces two events: the apiserver first sets the
// pod's deletionTimestamp (MODIFIED), then removes it (DELETED).
void DeletePods(const TestCluster& cluster, const std::string& ns,
                const std::vector<std::string>& names) {
  std::vector<std::string> args = {"delete", "pods", "-n", ns, "--grace-period=0", "--force"};
  args.insert(args.end(), names.begin(), names.end());
  KubectlOk(cluster, args);
}

// What a stream must show for one change.
struct Expected {
  v1::Event::Type type;
  std::string namespace_name;
  std::string name;
  std::string resource_version;  // empty for deletions: kubectl does not print it
};

Expected Change(v1::Event::Type type, const ObjectKey& key) {
  return {type, key.namespace_name, key.name, key.resource_version};
}

std::string DescribeExpected(const Expected& expected) {
  return fmt::format("{} {}/{} rv={}", v1::Event::Type_Name(expected.type), expected.namespace_name,
                     expected.name,
                     expected.resource_version.empty() ? "?" : expected.resource_version);
}

uint64_t Rv(const std::string& text) { return std::stoull(text); }

// "TYPE ns/name" without versions.
std::vector<std::string> Changes(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const v1::Event& event : events) {
    out.push_back(fmt::format("{} {}/{}", v1::Event::Type_Name(event.type()), event.namespace_(),
                              event.name()));
  }
  return out;
}

// Checks a stream's live events against the expected changes: same types, objects and
// resource versions (a deletion's must lie between its neighbours'), each object's JSON naming
// the same object, and managedFields stripped.
void CheckLive(const std::vector<v1::Event>& live, const std::vector<Expected>& expected) {
  std::vector<std::string> got;
  std::vector<std::string> want;
  for (std::size_t i = 0; i < live.size(); ++i) {
    Expected shown = i < expected.size() ? expected[i] : Expected{};
    if (i < expected.size() && expected[i].resource_version.empty()) {
      shown.resource_version = live[i].resource_version();  // checked below
    }
    got.push_back(Describe(live[i]));
    want.push_back(fmt::format("{} {}/{} rv={}", v1::Event::Type_Name(shown.type),
                               shown.namespace_name, shown.name, shown.resource_version));
  }
  for (std::size_t i = live.size(); i < expected.size(); ++i)
    want.push_back(DescribeExpected(expected[i]));
  CHECK(got == want);
  for (std::size_t i = 0; i < live.size(); ++i) {
    const v1::Event& event = live[i];
    INFO(Describe(event));
    if (i > 0) CHECK(Rv(event.resource_version()) > Rv(live[i - 1].resource_version()));
    const ObjectKey key = KeyOf(event.object());
    CHECK(key.name == event.name());
    CHECK(key.namespace_name == event.namespace_());
    CHECK(key.uid == event.uid());
    CHECK(event.object().find("managedFields") == std::string::npos);
    if (event.type() != v1::Event::DELETED) CHECK(key.resource_version == event.resource_version());
  }
}

// The snapshot part of a stream (the ADDEDs before SYNCED) as keys, and SYNCED's version.
std::pair<std::vector<ObjectKey>, std::string> Snapshot(const std::vector<v1::Event>& events) {
  std::vector<ObjectKey> keys;
  for (const v1::Event& event : events) {
    if (event.type() == v1::Event::SYNCED) return {keys, event.resource_version()};
    CHECK(event.type() == v1::Event::ADDED);
    keys.push_back({event.namespace_(), event.name(), event.resource_version(), event.uid()});
    CHECK(Describe(KeyOf(event.object())) == Describe(keys.back()));
  }
  FAIL_CHECK("no SYNCED event");
  return {keys, ""};
}

TEST_CASE(
    "List, Get and Subscribe agree with kubectl for pods, selected configmaps and CRD objects",
    "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;
  v1::Informer::Stub& stub = daemon.stub();
  auto channel = daemon.NewChannel();

  Subscriber pods(channel, SubscribeTo("pods", "e2e-s1"));
  Subscriber configmaps(channel, SubscribeTo("configmaps", "e2e-cm"));
  Subscriber gadgets(channel, SubscribeTo("gadgets.example.com", "e2e-s1"));
  for (Subscriber* subscriber : {&pods, &configmaps, &gadgets}) {
    INFO(subscriber->status().value_or(grpc::Status::OK).error_message());
    REQUIRE(subscriber->WaitFor([](const auto& events) { return HasSynced(events); }, seconds(20)));
  }

  // The snapshots: what kubectl sees, then SYNCED at a version no older than any object's.
  for (auto [subscriber, args] : std::vector<std::pair<Subscriber*, std::vector<std::string>>>{
           {&pods, {"pods", "-n", "e2e-s1"}},
           {&configmaps, {"configmaps", "-n", "e2e-cm", "-l", "app=web"}},
           {&gadgets, {"gadgets", "-n", "e2e-s1"}}}) {
    auto [keys, synced_rv] = Snapshot(subscriber->events());
    INFO(CommandLine(args));
    CHECK(Describe(keys) == Describe(KubectlKeys(cluster, args)));
    for (const ObjectKey& key : keys) CHECK(Rv(key.resource_version) <= Rv(synced_rv));
  }
  const std::size_t pods_base = pods.count();
  const std::size_t configmaps_base = configmaps.count();
  const std::size_t gadgets_base = gadgets.count();

  // Changes, one kubectl call each, in an order every stream must reproduce.
  std::vector<Expected> pod_changes;
  pod_changes.push_back(Change(v1::Event::ADDED, Mutate(cluster, {"create", "-f", "-"},
                                                        PodYaml("e2e-s1", "p1", "{app: web}"))));
  pod_changes.push_back(Change(v1::Event::ADDED, Mutate(cluster, {"create", "-f", "-"},
                                                        PodYaml("e2e-s1", "p2", "{app: db}"))));
  pod_changes.push_back(Change(v1::Event::MODIFIED,
                               SetMeta(cluster, "pod", "e2e-s1", "p1", "labels", "tier", "front")));
  // A graceful delete: deletionTimestamp set (MODIFIED), then gone (DELETED).
  KubectlOk(cluster, {"delete", "pod", "p2", "-n", "e2e-s1", "--wait=false"});
  pod_changes.push_back({v1::Event::MODIFIED, "e2e-s1", "p2", ""});
  pod_changes.push_back({v1::Event::DELETED, "e2e-s1", "p2", ""});
  // Not this stream's namespace: nothing.
  KubectlOk(cluster, {"create", "-f", "-"}, PodYaml("e2e-other", "elsewhere"));

  std::vector<Expected> configmap_changes;
  configmap_changes.push_back(Change(
      v1::Event::ADDED,
      Mutate(cluster, {"create", "-f", "-"}, ConfigMapYaml("e2e-cm", "cm-web-1", "{app: web}"))));
  // Outside the configured selector, then into it: ADDED when it starts matching.
  KubectlOk(cluster, {"create", "-f", "-"}, ConfigMapYaml("e2e-cm", "cm-db-1", "{app: db}"));
  configmap_changes.push_back(Change(v1::Event::ADDED, SetMeta(cluster, "configmap", "e2e-cm",
                                                               "cm-db-1", "labels", "app", "web")));
  configmap_changes.push_back(
      Change(v1::Event::MODIFIED,
             Mutate(cluster, {"patch", "configmap", "cm-web-1", "-n", "e2e-cm", "--type=merge",
                              "-p", R"({"data":{"key":"changed"}})"})));
  // Out of the selector: DELETED (kubectl prints the new state; the event's version is its).
  const ObjectKey relabelled =
      SetMeta(cluster, "configmap", "e2e-cm", "cm-web-pre", "labels", "app", "db");
  configmap_changes.push_back({v1::Event::DELETED, "e2e-cm", "cm-web-pre", ""});
  KubectlOk(cluster, {"delete", "configmap", "cm-web-1", "-n", "e2e-cm"});
  configmap_changes.push_back({v1::Event::DELETED, "e2e-cm", "cm-web-1", ""});
  // Another namespace, matching labels: not this informer's namespace.
  KubectlOk(cluster, {"create", "-f", "-"}, ConfigMapYaml("e2e-other", "cm-web-2", "{app: web}"));

  std::vector<Expected> gadget_changes;
  gadget_changes.push_back(
      Change(v1::Event::ADDED,
             Mutate(cluster, {"create", "-f", "-"}, CustomYaml("Gadget", "e2e-s1", "g1", 1))));
  gadget_changes.push_back(Change(
      v1::Event::MODIFIED, Mutate(cluster, {"patch", "gadget", "g1", "-n", "e2e-s1", "--type=merge",
                                            "-p", R"({"spec":{"size":2}})"})));
  KubectlOk(cluster, {"delete", "gadget", "pre-1", "-n", "e2e-s1"});
  gadget_changes.push_back({v1::Event::DELETED, "e2e-s1", "pre-1", ""});

  CHECK(pods.WaitForCount(pods_base + pod_changes.size(), seconds(20)));
  CHECK(configmaps.WaitForCount(configmaps_base + configmap_changes.size(), seconds(20)));
  CHECK(gadgets.WaitForCount(gadgets_base + gadget_changes.size(), seconds(20)));
  // Nothing more arrives: no duplicate, nothing from elsewhere.
  std::this_thread::sleep_for(seconds(1));
  CheckLive(pods.EventsFrom(pods_base), pod_changes);
  CheckLive(configmaps.EventsFrom(configmaps_base), configmap_changes);
  CheckLive(gadgets.EventsFrom(gadgets_base), gadget_changes);
  // A label change out of the selector is delivered as DELETED at the change's version.
  const std::vector<v1::Event> cm_live = configmaps.EventsFrom(configmaps_base);
  REQUIRE(cm_live.size() >= 4);
  CHECK(cm_live[3].resource_version() == relabelled.resource_version);

  // The caches now hold exactly what kubectl sees: names, resource versions and UIDs. (All
  // namespaces: the last pod change, in e2e-other, is on no stream above; give it a moment.)
  const std::vector<std::string> all_pods = Describe(KubectlKeys(cluster, {"pods", "-A"}));
  WaitUntil([&] { return Describe(ListKeys(stub, "pods")) == all_pods; }, seconds(10));
  CHECK(Describe(ListKeys(stub, "pods")) == all_pods);
  CHECK(Describe(ListKeys(stub, "po", "e2e-s1")) ==
        Describe(KubectlKeys(cluster, {"pods", "-n", "e2e-s1"})));
  CHECK(Describe(ListKeys(stub, "pods", "", "tier=front")) ==
        Describe(KubectlKeys(cluster, {"pods", "-A", "-l", "tier=front"})));
  CHECK(Describe(ListKeys(stub, "configmaps", "e2e-cm")) ==
        Describe(KubectlKeys(cluster, {"configmaps", "-n", "e2e-cm", "-l", "app=web"})));
  CHECK(Describe(ListKeys(stub, "example.com/v1/gadgets")) ==
        Describe(KubectlKeys(cluster, {"gadgets", "-A"})));
  {
    const ListOutcome listed = List(stub, "pods");
    REQUIRE(listed.status.ok());
    for (const std::string& item : listed.response.items()) {
      CHECK(Rv(KeyOf(item).resource_version) <= Rv(listed.response.resource_version()));
    }
  }

  // Get: the object kubectl sees; NOT_FOUND for what is deleted or outside the selector.
  for (auto [resource, ns, name, kind] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"pods", "e2e-s1", "p1", "pod"},
           {"pods", "e2e-s1", "pre-1", "pod"},
           {"configmaps", "e2e-cm", "cm-db-1", "configmap"},
           {"gadgets", "e2e-s1", "g1", "gadget"}}) {
    const GetOutcome got = Get(stub, resource, ns, name);
    INFO(fmt::format("Get {} {}/{}: {}", resource, ns, name, got.status.error_message()));
    REQUIRE(got.status.ok());
    CHECK(Describe(KeyOf(got.response.object())) ==
          Describe(KeyOf(KubectlOk(cluster, {"get", kind, name, "-n", ns, "-o", "json"}))));
  }
  for (auto [resource, ns, name] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"pods", "e2e-s1", "p2"},
           {"configmaps", "e2e-cm", "cm-web-pre"},
           {"configmaps", "e2e-cm", "cm-db-pre"},
           {"gadgets", "e2e-s1", "pre-1"}}) {
    const GetOutcome got = Get(stub, resource, ns, name);
    INFO(fmt::format("Get {} {}/{}: {}", resource, ns, name, got.status.error_message()));
    CHECK(got.status.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK(got.status.error_message().find(name) != std::string::npos);
  }

  // informerctl, the command-line client, prints the same list as kubectl.
  const SubprocessResult listed =
      Informerctl(daemon.address(), {"list", "pods", "-A", "-o", "json"});
  INFO(listed.err);
  REQUIRE(listed.exit_code == 0);
  CHECK(Describe(ListDocumentKeys(listed.out)) == Describe(KubectlKeys(cluster, {"pods", "-A"})));
}

TEST_CASE("a subscriber that resumes from its last resource version gets exactly what it missed",
          "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;
  auto channel = daemon.NewChannel();
  CreateOk(cluster, PodYaml("e2e-resume", "r1") + PodYaml("e2e-resume", "r2"));
  // Both pods in the cache before anyone subscribes, so that both are in the snapshot (before
  // SYNCED) rather than one or both arriving after it as live events.
  REQUIRE(WaitUntil([&] { return ListKeys(daemon.stub(), "pods", "e2e-resume").size() == 2; },
                    seconds(20)));

  // `control` stays connected throughout; `first` leaves and comes back.
  Subscriber control(channel, SubscribeTo("pods", "e2e-resume"));
  std::string last_rv;
  {
    Subscriber first(channel, SubscribeTo("pods", "e2e-resume"));
    REQUIRE(first.WaitForCount(3, seconds(20)));  // r1, r2, SYNCED
    CHECK(Describe(first.events())[2].rfind("SYNCED", 0) == 0);
    const ObjectKey r3 = Mutate(cluster, {"create", "-f", "-"}, PodYaml("e2e-resume", "r3"));
    REQUIRE(first.WaitForCount(4, seconds(20)));
    const v1::Event last = first.events().back();
    CHECK(Describe(last) == fmt::format("ADDED e2e-resume/r3 rv={}", r3.resource_version));
    last_rv = last.resource_version();
  }  // disconnects

  REQUIRE(control.WaitForCount(4, seconds(20)));
  const std::size_t control_base = control.count();
  // Missed while disconnected.
  SetMeta(cluster, "pod", "e2e-resume", "r1", "labels", "phase", "two");
  DeletePods(cluster, "e2e-resume", {"r2"});
  Mutate(cluster, {"create", "-f", "-"}, PodYaml("e2e-resume", "r4"));
  SetMeta(cluster, "pod", "e2e-resume", "r3", "annotations", "note", "x");
  REQUIRE(control.WaitForCount(control_base + 5, seconds(20)));
  const std::vector<v1::Event> missed = control.EventsFrom(control_base);
  CHECK(Changes(missed) == std::vector<std::string>{"MODIFIED e2e-resume/r1",
                                                    "MODIFIED e2e-resume/r2",
                                                    "DELETED e2e-resume/r2", "ADDED e2e-resume/r4",
                                                    "MODIFIED e2e-resume/r3"});

  std::string newest;
  {
    // Resuming replays exactly the missed events, then continues live.
    Subscriber resumed(channel, SubscribeTo("pods", "e2e-resume", last_rv));
    REQUIRE(resumed.WaitForCount(missed.size(), seconds(20)));
    std::this_thread::sleep_for(milliseconds(500));
    const std::vector<v1::Event> replayed = resumed.events();
    CHECK(Describe(replayed) == Describe(missed));
    for (std::size_t i = 0; i < std::min(replayed.size(), missed.size()); ++i) {
      CHECK(replayed[i].object() == missed[i].object());
    }
    // Live after the replay, once.
    const ObjectKey r5 = Mutate(cluster, {"create", "-f", "-"}, PodYaml("e2e-resume", "r5"));
    REQUIRE(resumed.WaitForCount(missed.size() + 1, seconds(20)));
    std::this_thread::sleep_for(milliseconds(500));
    CHECK(Describe(resumed.EventsFrom(missed.size())) ==
          std::vector<std::string>{fmt::format("ADDED e2e-resume/r5 rv={}", r5.resource_version)});
    newest = r5.resource_version;
  }

  {
    // Resuming from the newest version gives nothing until the next change.
    Subscriber resumed(channel, SubscribeTo("pods", "e2e-resume", newest));
    std::this_thread::sleep_for(seconds(1));
    CHECK(Describe(resumed.events()).empty());
    CHECK_FALSE(resumed.status().has_value());
    const ObjectKey r4 = SetMeta(cluster, "pod", "e2e-resume", "r4", "annotations", "note", "y");
    REQUIRE(resumed.WaitForCount(1, seconds(20)));
    std::this_thread::sleep_for(milliseconds(500));
    CHECK(resumed.count() == 1);
    CHECK(Describe(resumed.events()[0]) ==
          fmt::format("MODIFIED e2e-resume/r4 rv={}", r4.resource_version));
  }

  {
    // A version older than the replay window is OUT_OF_RANGE; a fresh snapshot then works. The
    // daemon's window starts where its first list did; everything before is gone.
    const uint64_t list_rv = Rv(env.pods_list_resource_version);
    REQUIRE(list_rv > 2);
    for (const std::string& old : {std::string("1"), std::to_string(list_rv - 1)}) {
      const grpc::Status status = SubscribeError(daemon.stub(), SubscribeTo("pods", "", old));
      INFO(status.error_message());
      CHECK(status.error_code() == grpc::StatusCode::OUT_OF_RANGE);
      CHECK(status.error_message().find("too old resource version: " + old) != std::string::npos);
    }
    Subscriber fresh(channel, SubscribeTo("pods", "e2e-resume"));
    REQUIRE(fresh.WaitFor([](const auto& events) { return HasSynced(events); }, seconds(20)));
    CHECK(Describe(Snapshot(fresh.events()).first) ==
          Describe(KubectlKeys(cluster, {"pods", "-n", "e2e-resume"})));
  }
}

TEST_CASE("malformed, unknown, absurd and oversized requests get clear statuses", "[cluster]") {
  Env& env = SharedEnv();
  Daemon& daemon = *env.daemon;
  v1::Informer::Stub& stub = daemon.stub();
  using grpc::StatusCode;

  struct Case {
    std::string what;
    v1::SubscribeRequest request;
    StatusCode code;
    std::string message_part;
  };
  const std::string huge_selector = "app in (" + std::string(100 << 10, 'x') + ")";
  const std::vector<Case> cases = {
      {"unclosed label selector", SubscribeTo("pods", "", "", "app in (web"),
       StatusCode::INVALID_ARGUMENT, "app in (web"},
      {"label selector with a bad operator", SubscribeTo("pods", "", "", "app=>web"),
       StatusCode::INVALID_ARGUMENT, "app=>web"},
      {"field selector without operator", SubscribeTo("pods", "", "", "", "metadata.name"),
       StatusCode::INVALID_ARGUMENT, "metadata.name"},
      {"field selector on a field that is not indexed",
       SubscribeTo("pods", "", "", "", "spec.nodeName=n1"), StatusCode::INVALID_ARGUMENT,
       "spec.nodeName"},
      {"unknown resource", SubscribeTo("nosuchthings"), StatusCode::NOT_FOUND, "nosuchthings"},
      {"a resource the apiserver has but informerd does not watch", SubscribeTo("deployments.apps"),
       StatusCode::NOT_FOUND, "deployments"},
      {"configmaps of all namespaces (only e2e-cm is configured)", SubscribeTo("configmaps"),
       StatusCode::NOT_FOUND, "configmaps"},
      {"empty resource", SubscribeTo(""), StatusCode::INVALID_ARGUMENT, "resource name is empty"},
      {"non-numeric resource version", SubscribeTo("pods", "", "abc"), StatusCode::INVALID_ARGUMENT,
       "\"abc\""},
      {"negative resource version", SubscribeTo("pods", "", "-1"), StatusCode::INVALID_ARGUMENT,
       "\"-1\""},
      {"resource version beyond 2^64", SubscribeTo("pods", "", "99999999999999999999"),
       StatusCode::INVALID_ARGUMENT, "99999999999999999999"},
      {"100 KiB label selector", SubscribeTo("pods", "", "", huge_selector),
       StatusCode::INVALID_ARGUMENT, "label selector"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const grpc::Status status = SubscribeError(stub, c.request);
    INFO(fmt::format("{} {}", static_cast<int>(status.error_code()), status.error_message()));
    CHECK(status.error_code() == c.code);
    CHECK(!status.error_message().empty());
    CHECK(status.error_message().find(c.message_part) != std::string::npos);
    CHECK(status.error_message().size() <= 1100);
  }

  // The unary calls check the same things.
  {
    const ListOutcome listed = List(stub, "pods", "", "app in (web");
    CHECK(listed.status.error_code() == StatusCode::INVALID_ARGUMENT);
    CHECK(listed.status.error_message().find("app in (web") != std::string::npos);
    CHECK(List(stub, "nosuchthings").status.error_code() == StatusCode::NOT_FOUND);
    CHECK(List(stub, "pods", "", huge_selector).status.error_code() ==
          StatusCode::INVALID_ARGUMENT);
    const GetOutcome unnamed = Get(stub, "pods", "e2e-bad", "");
    CHECK(unnamed.status.error_code() == StatusCode::INVALID_ARGUMENT);
    CHECK(unnamed.status.error_message().find("name") != std::string::npos);
    const GetOutcome missing = Get(stub, "pods", "e2e-bad", "nobody");
    CHECK(missing.status.error_code() == StatusCode::NOT_FOUND);
    CHECK(missing.status.error_message().find("nobody") != std::string::npos);
    CHECK(missing.status.error_message().find("e2e-bad") != std::string::npos);
  }

  // A request larger than the daemon accepts (16 MiB): refused by gRPC itself.
  {
    const v1::SubscribeRequest oversized = SubscribeTo(std::string(17 << 20, 'p'));
    const grpc::Status status = SubscribeError(stub, oversized);
    INFO(status.error_message());
    CHECK(status.error_code() == StatusCode::RESOURCE_EXHAUSTED);
    CHECK(!status.error_message().empty());
    const ListOutcome listed = List(stub, std::string(17 << 20, 'p'));
    CHECK(listed.status.error_code() == StatusCode::RESOURCE_EXHAUSTED);
  }

  // informerctl passes the status on: exit 1 and the daemon's message.
  {
    const SubprocessResult refused =
        Informerctl(daemon.address(), {"list", "pods", "-l", "app in (web"});
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("app in (web") != std::string::npos);
  }

  // The daemon is still serving, on the connection the bad requests used and on a new one. Its
  // health is what its readiness says: not ready, since widgets is configured and its CRD does
  // not exist yet (the last test case creates it).
  CHECK(daemon.running());
  CHECK(Health(daemon.NewChannel(true)) == kHealthNotServing);
  CHECK(List(stub, "pods").status.ok());
  Subscriber after(daemon.NewChannel(true), SubscribeTo("pods", "e2e-bad"));
  CHECK(after.WaitFor([](const auto& events) { return HasSynced(events); }, seconds(20)));
}

TEST_CASE("200 subscribers receive identical streams over one apiserver watch", "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;
  v1::Informer::Stub& stub = daemon.stub();
  std::string initial;
  for (int i = 0; i < 5; ++i) initial += PodYaml("e2e-fanout", fmt::format("f{}", i));
  CreateOk(cluster, initial);

  // Earlier cases' streams are gone.
  REQUIRE(
      WaitUntil([&] { return FindInformer(ListResources(stub), "pods")->subscriber_count() == 0; },
                seconds(10)));

  constexpr int kSubscribers = 200;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 4; ++i) channels.push_back(daemon.NewChannel(true));
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.push_back(std::make_unique<Subscriber>(channels[i % channels.size()],
                                                       SubscribeTo("pods", "e2e-fanout")));
  }
  for (auto& subscriber : subscribers) {
    REQUIRE(subscriber->WaitFor([](const auto& events) { return HasSynced(events); }, seconds(60)));
  }
  CHECK(FindInformer(ListResources(stub), "pods")->subscriber_count() == kSubscribers);

  // One change of each kind and a burst: one apply of many objects.
  std::string burst;
  for (int i = 0; i < 20; ++i) burst += PodYaml("e2e-fanout", fmt::format("b{:02}", i));
  CreateOk(cluster, burst);
  KubectlOk(cluster, {"label", "pods", "-n", "e2e-fanout", "-l", "!gone", "round=2"});
  DeletePods(cluster, "e2e-fanout", {"f0", "f1", "b03"});
  const std::size_t expected = 5 + 1 + 20 + 25 + 3 * 2;

  // While the 200 streams are open: one watch of pods from informerd, besides the apiserver's own.
  const std::string metrics = ApiserverMetrics(cluster);
  const std::map<std::string, std::string> pod_watches = {
      {"group", ""}, {"version", "v1"}, {"resource", "pods"}, {"verb", "WATCH"}};
  INFO(fmt::format("baseline (before informerd): {} long-running pod watches, {} registered",
                   env.pods_watch_baseline, env.pods_registered_baseline));
  CHECK(MetricValue(metrics, "apiserver_longrunning_gauge", pod_watches).value_or(0) ==
        env.pods_watch_baseline + 1);
  CHECK(MetricValue(metrics, "apiserver_registered_watchers",
                    {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}})
            .value_or(0) == env.pods_registered_baseline + 1);

  for (auto& subscriber : subscribers) CHECK(subscriber->WaitForCount(expected, seconds(60)));
  std::this_thread::sleep_for(milliseconds(500));
  const std::vector<v1::Event> reference = subscribers[0]->events();
  REQUIRE(reference.size() == expected);
  int identical = 0;
  for (auto& subscriber : subscribers) {
    const std::vector<v1::Event> events = subscriber->events();
    bool same = events.size() == reference.size();
    for (std::size_t i = 0; same && i < events.size(); ++i) {
      same = events[i].type() == reference[i].type() &&
             events[i].resource_version() == reference[i].resource_version() &&
             events[i].name() == reference[i].name() && events[i].object() == reference[i].object();
    }
    identical += same ? 1 : 0;
  }
  CHECK(identical == kSubscribers);

  // And the reference is right: the snapshot, then 20 ADDED, 25 MODIFIED, 3 deletions in order.
  std::vector<std::string> types;
  for (std::size_t i = 6; i < reference.size(); ++i) {
    types.push_back(v1::Event::Type_Name(reference[i].type()));
  }
  std::vector<std::string> want_types(20, "ADDED");
  want_types.insert(want_types.end(), 25, "MODIFIED");
  for (int i = 0; i < 3; ++i) want_types.insert(want_types.end(), {"MODIFIED", "DELETED"});
  CHECK(types == want_types);
  // The burst's ADDEDs in creation order (their versions are checked against each object's JSON:
  // kubectl's view has moved on since).
  std::vector<Expected> added;
  for (std::size_t i = 0; i < 20; ++i) {
    added.push_back({v1::Event::ADDED, "e2e-fanout", fmt::format("b{:02}", i),
                     reference[6 + i].resource_version()});
  }
  CheckLive(std::vector<v1::Event>(reference.begin() + 6, reference.begin() + 26), added);
  CHECK(Describe(ListKeys(stub, "pods", "e2e-fanout")) ==
        Describe(KubectlKeys(cluster, {"pods", "-n", "e2e-fanout"})));

  // Still one watch after the burst.
  CHECK(MetricValue(ApiserverMetrics(cluster), "apiserver_longrunning_gauge", pod_watches)
            .value_or(0) == env.pods_watch_baseline + 1);
}

// The time at the start of a daemon log line ("2024-05-01T12:00:00.123456Z I [informer] ..."),
// or nullopt.
std::optional<std::chrono::system_clock::time_point> LogLineTime(const std::string& line) {
  std::tm tm{};
  int micros = 0;
  if (std::sscanf(line.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm)) + std::chrono::microseconds(micros);
}

// The lines of `log` before offset `end` that contain `needle`.
std::vector<std::string> LogLines(const std::string& log, std::size_t end,
                                  const std::string& needle) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < end) {
    std::size_t next = log.find('\n', begin);
    if (next == std::string::npos) next = log.size();
    const std::string line = log.substr(begin, next - begin);
    if (line.find(needle) != std::string::npos) lines.push_back(line);
    begin = next + 1;
  }
  return lines;
}

long long MillisBetween(std::chrono::system_clock::time_point from,
                        std::chrono::system_clock::time_point to) {
  return std::chrono::duration_cast<milliseconds>(to - from).count();
}

TEST_CASE("a CRD created after start-up is found and served within the retry interval",
          "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;
  v1::Informer::Stub& stub = daemon.stub();
  // The daemon started without widgets: not served, not ready, looking again every 30 s.
  REQUIRE_FALSE(FindInformer(ListResources(stub), "widgets").has_value());
  CHECK(Health(daemon.NewChannel()) == kHealthNotServing);

  CreateCrd(cluster, "widgets", "Widget");
  const auto created = std::chrono::system_clock::now();
  // The next lookup finds it: it syncs within the retry interval (and some slack) of its creation.
  const std::optional<std::string> synced =
      daemon.WaitForLog("widgets.example.com: synced ", seconds(35));
  const std::string log = daemon.log();
  INFO(log);
  REQUIRE(synced.has_value());
  const std::optional<std::chrono::system_clock::time_point> synced_at = LogLineTime(*synced);
  REQUIRE(synced_at.has_value());
  // And by the lookup 30 s after the last one that missed it: not sooner (a tight loop), not
  // later. (The log's times are the daemon's own, so this does not depend on how quickly this
  // test noticed.)
  const std::vector<std::string> misses =
      LogLines(log, log.find(*synced), "config resource \"widgets\": ");
  REQUIRE(!misses.empty());
  const std::optional<std::chrono::system_clock::time_point> missed_at = LogLineTime(misses.back());
  REQUIRE(missed_at.has_value());
  INFO(fmt::format("synced {} ms after the CRD was created, {} ms after the last lookup missed it",
                   MillisBetween(created, *synced_at), MillisBetween(*missed_at, *synced_at)));
  CHECK(*synced_at - created <= seconds(35));
  CHECK(*synced_at - *missed_at >= seconds(28));
  CHECK(*synced_at - *missed_at <= seconds(35));

  const std::optional<v1::ResourceInfo> info = FindInformer(ListResources(stub), "widgets");
  REQUIRE(info.has_value());
  CHECK(info->synced());
  CHECK(info->group() == "example.com");
  CHECK(info->version() == "v1");
  CHECK(info->kind() == "Widget");
  CHECK(info->namespaced());
  // Every configured resource runs and has synced: ready.
  CHECK(WaitUntil([&] { return Health(daemon.NewChannel()) == kHealthServing; }, seconds(5)));

  Subscriber widgets(daemon.NewChannel(), SubscribeTo("widgets", "e2e-crd"));
  REQUIRE(widgets.WaitFor([](const auto& events) { return HasSynced(events); }, seconds(20)));
  const ObjectKey w1 =
      Mutate(cluster, {"create", "-f", "-"}, CustomYaml("Widget", "e2e-crd", "w1", 3));
  REQUIRE(widgets.WaitForCount(2, seconds(20)));
  CHECK(Describe(widgets.events()[1]) ==
        fmt::format("ADDED e2e-crd/w1 rv={}", w1.resource_version));
  CHECK(Describe(ListKeys(stub, "widgets.example.com")) ==
        Describe(KubectlKeys(cluster, {"widgets", "-A"})));
}

}  // namespace
}  // namespace informerd::test::e2e
