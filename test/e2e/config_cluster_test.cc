// End-to-end against a real kube-apiserver: what the configuration file's per-resource and
// on-demand keys do, through the binary's --config, observed over gRPC and compared with what the
// apiserver itself answers.
//   indexes:             field selectors on the configured paths (core and custom resources) answer
//                        List and Subscribe exactly as the apiserver's own field selectors do (or,
//                        for paths the apiserver cannot select on, as the objects' fields say);
//                        a path no entry indexes is refused with INVALID_ARGUMENT naming it.
//   stripManagedFields:  false serves metadata.managedFields exactly as the apiserver has them;
//                        true and the default cut them out and nothing else.
//   allowOnDemand, onDemandGracePeriod:  List and Get of unconfigured resources start informers
//                        (managedFields stripped, no extra indexes); a field selector they cannot
//                        answer is refused before any informer starts; an informer stops the
//                        configured grace period after its last reader.
//
// One cluster and one daemon serve every test case (starting them is most of the cost); each case
// works in namespaces of its own.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rapidjson/document.h"
#include "rapidjson/pointer.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "test/e2e/cluster_e2e.h"

namespace informerd::test::e2e {
namespace {

constexpr char kConfig[] = R"(allowOnDemand: true
onDemandGracePeriod: 2s
resources:
  - resource: pods
    stripManagedFields: false
    indexes: [spec.nodeName, spec.schedulerName]
  - resource: configmaps
    namespace: cfg-strip
  - resource: services
    namespace: cfg-strip
    stripManagedFields: true
  - resource: gadgets
    indexes: [spec.color, spec.size]
)";

// `node` empty: not scheduled. `scheduler` empty: the apiserver's default ("default-scheduler").
std::string PodYaml(const std::string& ns, const std::string& name, const std::string& node = "",
                    const std::string& scheduler = "") {
  std::string spec;
  if (!node.empty()) spec += fmt::format("  nodeName: {}\n", node);
  if (!scheduler.empty()) spec += fmt::format("  schedulerName: {}\n", scheduler);
  return fmt::format(R"(---
apiVersion: v1
kind: Pod
metadata: {{name: {}, namespace: {}}}
spec:
{}  containers:
  - {{name: c, image: registry.invalid/never-pulled:1}}
)",
                     name, ns, spec);
}

// `color` empty: the object has no spec.color.
std::string GadgetYaml(const std::string& ns, const std::string& name, const std::string& color,
                       int size) {
  const std::string color_field = color.empty() ? "" : fmt::format("color: {}, ", color);
  return fmt::format(R"(---
apiVersion: example.com/v1
kind: Gadget
metadata: {{name: {}, namespace: {}}}
spec: {{{}size: {}}}
)",
                     name, ns, color_field, size);
}

std::string NamespaceYaml(const std::string& name) {
  return fmt::format("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n", name);
}

constexpr char kSeed[] = R"(---
apiVersion: v1
kind: ConfigMap
metadata: {name: strip-cm, namespace: cfg-strip}
data: {key: value}
---
apiVersion: v1
kind: Service
metadata: {name: strip-svc, namespace: cfg-strip}
spec:
  ports: [{port: 80}]
  selector: {app: x}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc-1, namespace: cfg-od}
spec:
  replicas: 1
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec:
      containers: [{name: c, image: registry.invalid/never-pulled:1}]
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc-2, namespace: cfg-od}
spec:
  replicas: 2
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec:
      containers: [{name: c, image: registry.invalid/never-pulled:1}]
---
apiVersion: v1
kind: PodTemplate
metadata: {name: pt-1, namespace: cfg-od}
template:
  spec:
    containers: [{name: c, image: registry.invalid/never-pulled:1}]
)";

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
  CreateOk(cluster, NamespaceYaml("cfg-idx") + NamespaceYaml("cfg-idx2") +
                        NamespaceYaml("cfg-sub") + NamespaceYaml("cfg-strip") +
                        NamespaceYaml("cfg-od"));
  CreateCrd(cluster, "gadgets", "Gadget");
  // Listed by the daemon when it starts: the index paths are read by the list decoder here, and
  // by the watch decoder for what later cases create.
  CreateOk(cluster,
           PodYaml("cfg-idx", "a1", "n1") + PodYaml("cfg-idx", "a2", "n1", "custom-scheduler") +
               PodYaml("cfg-idx", "a3", "n2", "custom-scheduler") + PodYaml("cfg-idx", "a4") +
               PodYaml("cfg-idx2", "b1", "n1") + PodYaml("cfg-idx2", "b2") +
               PodYaml("cfg-sub", "s-n1", "n1") + PodYaml("cfg-sub", "s-n2", "n2") +
               PodYaml("cfg-sub", "s-un") + PodYaml("cfg-strip", "strip-pod") +
               GadgetYaml("cfg-idx", "g1", "red", 1) + GadgetYaml("cfg-idx", "g2", "blue", 3) +
               GadgetYaml("cfg-idx", "g3", "", 3) + GadgetYaml("cfg-idx2", "g4", "red", 3) +
               GadgetYaml("cfg-sub", "gs-red", "red", 1) +
               GadgetYaml("cfg-sub", "gs-blue", "blue", 1) + kSeed);
  fresh->daemon = Daemon::Start(cluster, kConfig);
  INFO(fresh->daemon->log());
  REQUIRE(AwaitSynced(fresh->daemon->stub(), {"pods", "configmaps", "services", "gadgets"},
                      seconds(30)));
  env = std::move(fresh);
  return *env;
}

// ---- JSON ---------------------------------------------------------------------------------

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document document;
  document.Parse(text.data(), text.size());
  INFO(text.substr(0, 2000));
  REQUIRE(!document.HasParseError());
  REQUIRE(document.IsObject());
  return document;
}

std::string ToJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// The value at `pointer` ("/spec/color") as a field selector sees it: a string's text, a number's
// JSON text; "" when it is missing (Kubernetes compares a missing field as "").
std::string FieldText(const rapidjson::Value& object, const char* pointer) {
  const rapidjson::Value* value = rapidjson::Pointer(pointer).Get(object);
  if (value == nullptr || value->IsNull()) return "";
  if (value->IsString()) return std::string(value->GetString(), value->GetStringLength());
  return ToJson(*value);
}

// ---- kubectl ------------------------------------------------------------------------------

// Runs a kubectl command that prints the object it changed (-o json); returns that object's key.
ObjectKey Mutate(const TestCluster& cluster, std::vector<std::string> args,
                 const std::string& stdin_text = "") {
  args.insert(args.end(), {"-o", "json"});
  return KeyOf(KubectlOk(cluster, args, stdin_text));
}

// The keys of `kubectl get gadgets -A -o json`'s items for which `keep` holds, sorted.
std::vector<ObjectKey> GadgetKeysWhere(const TestCluster& cluster,
                                       const std::function<bool(const rapidjson::Value&)>& keep) {
  const rapidjson::Document list =
      ParseJson(KubectlOk(cluster, {"get", "gadgets", "-A", "-o", "json"}));
  const rapidjson::Value& items = list["items"];
  REQUIRE(items.IsArray());
  rapidjson::Document kept(rapidjson::kObjectType);
  rapidjson::Value array(rapidjson::kArrayType);
  for (const rapidjson::Value& item : items.GetArray()) {
    if (keep(item))
      array.PushBack(rapidjson::Value(item, kept.GetAllocator()), kept.GetAllocator());
  }
  kept.AddMember("items", array, kept.GetAllocator());
  return ListDocumentKeys(ToJson(kept));
}

// Binds a pod to a node as the scheduler would (the pods/binding subresource): the one way
// spec.nodeName changes after creation. Returns the pod's key after the binding.
ObjectKey Bind(const TestCluster& cluster, const std::string& ns, const std::string& name,
               const std::string& node) {
  KubectlOk(cluster,
            {"create", "--raw", fmt::format("/api/v1/namespaces/{}/pods/{}/binding", ns, name),
             "-f", "-"},
            fmt::format(R"({{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"{}"}},)"
                        R"("target":{{"apiVersion":"v1","kind":"Node","name":"{}"}}}})",
                        name, node));
  return KeyOf(KubectlOk(cluster, {"get", "pod", name, "-n", ns, "-o", "json"}));
}

// ---- gRPC ---------------------------------------------------------------------------------

// List with a field selector that must succeed: the items' keys, sorted.
std::vector<ObjectKey> FieldListKeys(v1::Informer::Stub& stub, const std::string& resource,
                                     const std::string& ns, const std::string& field_selector) {
  const ListOutcome listed = List(stub, resource, ns, "", field_selector);
  INFO(fmt::format("List {} in {:?} with field selector {:?}: {} {}", resource, ns, field_selector,
                   static_cast<int>(listed.status.error_code()), listed.status.error_message()));
  REQUIRE(listed.status.ok());
  std::string items;
  for (const std::string& item : listed.response.items()) {
    items += (items.empty() ? "" : ",") + item;
  }
  return ListDocumentKeys("{\"items\":[" + items + "]}");
}

// "TYPE ns/name rv=N" for what a stream must show.
std::string Shown(v1::Event::Type type, const ObjectKey& key) {
  return fmt::format("{} {}/{} rv={}", v1::Event::Type_Name(type), key.namespace_name, key.name,
                     key.resource_version);
}

bool HasInformer(v1::Informer::Stub& stub, const std::string& resource) {
  return FindInformer(ListResources(stub), resource).has_value();
}

// ---- indexes ------------------------------------------------------------------------------

TEST_CASE("indexes: field selectors on configured paths answer List as the apiserver does",
          "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  v1::Informer::Stub& stub = env.daemon->stub();

  // Pods: the apiserver answers these field selectors itself; informerd must give the same
  // objects (names, versions, UIDs). spec.schedulerName is the entry's second index.
  struct PodQuery {
    std::string ns;
    std::string selector;
    std::size_t expected_count;  // so that a query matching nothing on both sides cannot pass
  };
  for (const PodQuery& query : std::vector<PodQuery>{
           {"cfg-idx", "spec.nodeName=n1", 2},
           {"", "spec.nodeName=n1", 4},  // a1, a2, b1, s-n1
           {"cfg-idx", "spec.nodeName!=n1", 2},
           {"cfg-idx", "spec.nodeName==n2", 1},
           {"cfg-idx", "spec.nodeName=", 1},  // not scheduled: the field is missing
           {"cfg-idx", "spec.schedulerName=custom-scheduler", 2},
           {"cfg-idx", "spec.schedulerName=default-scheduler", 2},
           {"cfg-idx", "spec.nodeName=n1,spec.schedulerName=custom-scheduler", 1},
           {"cfg-idx", "spec.nodeName!=n1,spec.schedulerName!=custom-scheduler", 1},
           {"", "spec.nodeName=n1,metadata.namespace=cfg-idx2", 1},
           {"cfg-idx", "spec.nodeName=no-such-node", 0},
       }) {
    std::vector<std::string> args = {"pods", "--field-selector", query.selector};
    if (query.ns.empty()) {
      args.push_back("-A");
    } else {
      args.insert(args.end(), {"-n", query.ns});
    }
    INFO(CommandLine(args));
    const std::vector<std::string> apiserver = Describe(KubectlKeys(cluster, args));
    CHECK(apiserver.size() == query.expected_count);
    CHECK(Describe(FieldListKeys(stub, "pods", query.ns, query.selector)) == apiserver);
  }

  // A custom resource: the apiserver (1.20) cannot select on spec fields, so the expected answer
  // is read from the objects kubectl returns. spec.size is a number: its JSON text is the value.
  struct GadgetQuery {
    std::string ns;
    std::string selector;
    std::function<bool(const rapidjson::Value&)> keep;
    std::size_t expected_count;
  };
  const auto in = [](const std::string& ns) {
    return
        [ns](const rapidjson::Value& item) { return FieldText(item, "/metadata/namespace") == ns; };
  };
  const auto color = [](const rapidjson::Value& item) { return FieldText(item, "/spec/color"); };
  const auto size = [](const rapidjson::Value& item) { return FieldText(item, "/spec/size"); };
  const auto idx = in("cfg-idx");
  for (const GadgetQuery& query : std::vector<GadgetQuery>{
           {"", "spec.color=red", [&](const auto& i) { return color(i) == "red"; }, 3},
           {"cfg-idx", "spec.color=red", [&](const auto& i) { return idx(i) && color(i) == "red"; },
            1},
           {"cfg-idx", "spec.color!=red",
            [&](const auto& i) { return idx(i) && color(i) != "red"; }, 2},
           {"cfg-idx", "spec.color=", [&](const auto& i) { return idx(i) && color(i).empty(); }, 1},
           {"cfg-idx", "spec.size=3", [&](const auto& i) { return idx(i) && size(i) == "3"; }, 2},
           {"", "spec.color=red,spec.size=3",
            [&](const auto& i) { return color(i) == "red" && size(i) == "3"; }, 1},
       }) {
    INFO(fmt::format("gadgets in {:?} with {}", query.ns, query.selector));
    const std::vector<std::string> expected = Describe(GadgetKeysWhere(cluster, query.keep));
    CHECK(expected.size() == query.expected_count);
    CHECK(Describe(FieldListKeys(stub, "gadgets.example.com", query.ns, query.selector)) ==
          expected);
  }

  // Paths no entry indexes: refused, naming the path and what this resource does index.
  struct Refused {
    std::string resource;
    std::string selector;
    std::string field;
    std::string supported;
  };
  for (const Refused& refused : std::vector<Refused>{
           {"pods", "status.phase=Pending", "status.phase",
            "metadata.name, metadata.namespace, spec.nodeName, spec.schedulerName"},
           {"pods", "spec.nodeName=n1,spec.restartPolicy=Always", "spec.restartPolicy",
            "metadata.name, metadata.namespace, spec.nodeName, spec.schedulerName"},
           // Indexes are per entry: the pods' paths are not the gadgets'.
           {"gadgets", "spec.nodeName=n1", "spec.nodeName",
            "metadata.name, metadata.namespace, spec.color, spec.size"},
       }) {
    INFO(fmt::format("{} with {}", refused.resource, refused.selector));
    const std::string message = fmt::format("field \"{}\" is not supported (supported: {})",
                                            refused.field, refused.supported);
    const ListOutcome listed = List(stub, refused.resource, "", "", refused.selector);
    INFO(listed.status.error_message());
    CHECK(listed.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(listed.status.error_message().find(message) != std::string::npos);
    const grpc::Status subscribed =
        SubscribeError(stub, SubscribeTo(refused.resource, "", "", "", refused.selector));
    INFO(subscribed.error_message());
    CHECK(subscribed.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(subscribed.error_message().find(message) != std::string::npos);
  }
}

TEST_CASE("indexes: Subscribe with a field selector on configured paths follows changes",
          "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;
  auto channel = daemon.NewChannel();

  Subscriber on_n1(channel, SubscribeTo("pods", "cfg-sub", "", "", "spec.nodeName=n1"));
  Subscriber unscheduled(channel, SubscribeTo("pods", "cfg-sub", "", "", "spec.nodeName="));
  Subscriber red(channel, SubscribeTo("gadgets", "cfg-sub", "", "", "spec.color=red"));
  for (Subscriber* subscriber : {&on_n1, &unscheduled, &red}) {
    INFO(subscriber->status().value_or(grpc::Status::OK).error_message());
    REQUIRE(subscriber->WaitFor([](const auto& events) { return HasSynced(events); }, seconds(20)));
  }
  // The snapshots: exactly what the apiserver selects (each object at its own version).
  const auto snapshot = [](const Subscriber& subscriber) {
    std::vector<std::string> shown;
    for (const v1::Event& event : subscriber.events()) {
      if (event.type() == v1::Event::SYNCED) break;
      shown.push_back(Describe(event));
    }
    return shown;
  };
  const auto added = [](const std::vector<ObjectKey>& keys) {
    std::vector<std::string> shown;
    for (const ObjectKey& key : keys) shown.push_back(Shown(v1::Event::ADDED, key));
    return shown;
  };
  CHECK(snapshot(on_n1) == added(KubectlKeys(cluster, {"pods", "-n", "cfg-sub", "--field-selector",
                                                       "spec.nodeName=n1"})));
  CHECK(
      snapshot(unscheduled) ==
      added(KubectlKeys(cluster, {"pods", "-n", "cfg-sub", "--field-selector", "spec.nodeName="})));
  CHECK(snapshot(on_n1).size() == 1);
  CHECK(snapshot(unscheduled).size() == 1);
  {
    const ObjectKey gs_red =
        KeyOf(KubectlOk(cluster, {"get", "gadget", "gs-red", "-n", "cfg-sub", "-o", "json"}));
    CHECK(snapshot(red) == std::vector<std::string>{Shown(v1::Event::ADDED, gs_red)});
  }
  const std::size_t on_n1_base = on_n1.count();
  const std::size_t unscheduled_base = unscheduled.count();
  const std::size_t red_base = red.count();

  // Scheduling s-un onto n1 moves it from one selector to the other: the index follows the
  // field's change (ADDED where it starts matching, DELETED where it stops), at the change's
  // version.
  const ObjectKey bound = Bind(cluster, "cfg-sub", "s-un", "n1");
  const ObjectKey fresh = Mutate(cluster, {"create", "-f", "-"}, PodYaml("cfg-sub", "s-fresh"));
  // On n2: matches neither stream.
  Mutate(cluster, {"create", "-f", "-"}, PodYaml("cfg-sub", "s-n2b", "n2"));
  const ObjectKey on_n1_new =
      Mutate(cluster, {"create", "-f", "-"}, PodYaml("cfg-sub", "s-n1b", "n1"));
  // Last, so that once it has arrived everything before it has too: nothing else may be there.
  const ObjectKey end_n1 =
      Mutate(cluster, {"create", "-f", "-"}, PodYaml("cfg-sub", "s-end-n1", "n1"));
  const ObjectKey end_un = Mutate(cluster, {"create", "-f", "-"}, PodYaml("cfg-sub", "s-end-un"));

  // The custom path: gs-blue turns red (ADDED), gs-red turns green (DELETED), gs-blue changes
  // while red (MODIFIED); a new red one last.
  const auto patch_gadget = [&](const std::string& name, const std::string& spec) {
    return Mutate(cluster, {"patch", "gadget", name, "-n", "cfg-sub", "--type=merge", "-p",
                            fmt::format(R"({{"spec":{}}})", spec)});
  };
  const ObjectKey blue_to_red = patch_gadget("gs-blue", R"({"color":"red"})");
  const ObjectKey red_to_green = patch_gadget("gs-red", R"({"color":"green"})");
  const ObjectKey resized = patch_gadget("gs-blue", R"({"size":7})");
  const ObjectKey end_red =
      Mutate(cluster, {"create", "-f", "-"}, GadgetYaml("cfg-sub", "gs-end", "red", 1));

  const auto arrived = [](const std::string& name) {
    return [name](const std::vector<v1::Event>& events) {
      return std::any_of(events.begin(), events.end(),
                         [&](const v1::Event& event) { return event.name() == name; });
    };
  };
  CHECK(on_n1.WaitFor(arrived("s-end-n1"), seconds(20)));
  CHECK(unscheduled.WaitFor(arrived("s-end-un"), seconds(20)));
  CHECK(red.WaitFor(arrived("gs-end"), seconds(20)));
  CHECK(Describe(on_n1.EventsFrom(on_n1_base)) ==
        std::vector<std::string>{Shown(v1::Event::ADDED, bound), Shown(v1::Event::ADDED, on_n1_new),
                                 Shown(v1::Event::ADDED, end_n1)});
  CHECK(Describe(unscheduled.EventsFrom(unscheduled_base)) ==
        std::vector<std::string>{Shown(v1::Event::DELETED, bound), Shown(v1::Event::ADDED, fresh),
                                 Shown(v1::Event::ADDED, end_un)});
  CHECK(Describe(red.EventsFrom(red_base)) ==
        std::vector<std::string>{
            Shown(v1::Event::ADDED, blue_to_red), Shown(v1::Event::DELETED, red_to_green),
            Shown(v1::Event::MODIFIED, resized), Shown(v1::Event::ADDED, end_red)});

  // And List agrees with the apiserver after the changes.
  for (const char* selector : {"spec.nodeName=n1", "spec.nodeName=", "spec.nodeName!=n2"}) {
    INFO(selector);
    CHECK(Describe(FieldListKeys(daemon.stub(), "pods", "cfg-sub", selector)) ==
          Describe(KubectlKeys(cluster, {"pods", "-n", "cfg-sub", "--field-selector", selector})));
  }
}

// ---- stripManagedFields -------------------------------------------------------------------

// The apiserver's own JSON of one object (everything, managedFields included).
rapidjson::Document RawObject(const TestCluster& cluster, const std::string& path) {
  return ParseJson(KubectlOk(cluster, {"get", "--raw", path}));
}

// Checks that `served` (informerd's JSON of an object) is the apiserver's `raw` object, with
// metadata.managedFields removed if `stripped` and kept exactly if not. Top-level kind and
// apiVersion are left out of the comparison: the items of a LIST response (what an informer's
// initial list caches) carry neither. The apiserver must have managedFields for the object, or
// the check would prove nothing.
void CheckManagedFields(const std::string& served, const rapidjson::Document& raw, bool stripped) {
  INFO("informerd: " + served.substr(0, 3000));
  INFO("apiserver: " + ToJson(raw).substr(0, 3000));
  const rapidjson::Pointer managed_fields("/metadata/managedFields");
  const rapidjson::Value* raw_fields = managed_fields.Get(raw);
  REQUIRE(raw_fields != nullptr);
  REQUIRE(raw_fields->IsArray());
  REQUIRE(!raw_fields->Empty());
  rapidjson::Document object = ParseJson(served);
  const rapidjson::Value* fields = managed_fields.Get(object);
  if (stripped) {
    CHECK(fields == nullptr);
    CHECK(served.find("managedFields") == std::string::npos);
  } else {
    CHECK(fields != nullptr);
    if (fields != nullptr) CHECK(ToJson(*fields) == ToJson(*raw_fields));
  }
  rapidjson::Document expected;
  expected.CopyFrom(raw, expected.GetAllocator());
  if (stripped) managed_fields.Erase(expected);
  for (rapidjson::Document* document : {&object, &expected}) {
    document->RemoveMember("kind");
    document->RemoveMember("apiVersion");
  }
  CHECK(object == expected);  // nothing else was cut or changed
}

TEST_CASE(
    "stripManagedFields: false serves managedFields as the apiserver has them; true and the "
    "default strip them",
    "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  Daemon& daemon = *env.daemon;
  v1::Informer::Stub& stub = daemon.stub();

  struct Case {
    std::string what;
    std::string resource;
    std::string name;
    std::string raw_path;
    bool stripped;
  };
  for (const Case& c : std::vector<Case>{
           {"pods (stripManagedFields: false)", "pods", "strip-pod",
            "/api/v1/namespaces/cfg-strip/pods/strip-pod", false},
           {"configmaps (no key: the default)", "configmaps", "strip-cm",
            "/api/v1/namespaces/cfg-strip/configmaps/strip-cm", true},
           {"services (stripManagedFields: true)", "services", "strip-svc",
            "/api/v1/namespaces/cfg-strip/services/strip-svc", true},
       }) {
    INFO(c.what);
    const rapidjson::Document raw = RawObject(cluster, c.raw_path);
    // Get, List and a Subscribe snapshot serve the same cached object.
    const GetOutcome got = Get(stub, c.resource, "cfg-strip", c.name);
    INFO(got.status.error_message());
    REQUIRE(got.status.ok());
    CheckManagedFields(got.response.object(), raw, c.stripped);
    const ListOutcome listed = List(stub, c.resource, "cfg-strip", "", "metadata.name=" + c.name);
    REQUIRE(listed.status.ok());
    REQUIRE(listed.response.items_size() == 1);
    CheckManagedFields(listed.response.items(0), raw, c.stripped);
    Subscriber subscriber(daemon.NewChannel(),
                          SubscribeTo(c.resource, "cfg-strip", "", "", "metadata.name=" + c.name));
    REQUIRE(subscriber.WaitForCount(2, seconds(20)));
    REQUIRE(subscriber.events()[0].type() == v1::Event::ADDED);
    CheckManagedFields(subscriber.events()[0].object(), raw, c.stripped);

    // A change by another field manager: the watch event carries the new managedFields.
    const ObjectKey patched =
        Mutate(cluster, {"patch", c.resource, c.name, "-n", "cfg-strip", "--type=merge", "-p",
                         R"({"metadata":{"labels":{"patched":"yes"}}})"});
    REQUIRE(subscriber.WaitForCount(3, seconds(20)));
    const v1::Event modified = subscriber.events()[2];
    CHECK(Describe(modified) == Shown(v1::Event::MODIFIED, patched));
    const rapidjson::Document raw_after = RawObject(cluster, c.raw_path);
    REQUIRE(KeyOf(ToJson(raw_after)).resource_version == patched.resource_version);
    // kubectl-patch joined kubectl-create as a field manager.
    const rapidjson::Value* fields_before = rapidjson::Pointer("/metadata/managedFields").Get(raw);
    const rapidjson::Value* fields_after =
        rapidjson::Pointer("/metadata/managedFields").Get(raw_after);
    REQUIRE(fields_before != nullptr);
    REQUIRE(fields_after != nullptr);
    REQUIRE(ToJson(*fields_after) != ToJson(*fields_before));
    CheckManagedFields(modified.object(), raw_after, c.stripped);
  }
}

// ---- allowOnDemand, onDemandGracePeriod ---------------------------------------------------

// The apiserver's count of `verb` requests for a core-group resource.
double ApiserverRequests(const TestCluster& cluster, const std::string& resource,
                         const std::string& verb) {
  return MetricValue(ApiserverMetrics(cluster), "apiserver_request_total",
                     {{"group", ""}, {"version", "v1"}, {"resource", resource}, {"verb", verb}})
      .value_or(0);
}

// Polls ListResources from right after a reader's last call (`last_read`) until `resource`'s
// on-demand informer is gone: returns how long after `last_read` that was (nullopt if it was still
// there after 20 s) and, through `seen`, the informer as first listed.
std::optional<milliseconds> StoppedAfter(v1::Informer::Stub& stub, const std::string& resource,
                                         Clock::time_point last_read,
                                         std::optional<v1::ResourceInfo>& seen) {
  seen.reset();
  const bool gone = WaitUntil(
      [&] {
        std::optional<v1::ResourceInfo> info = FindInformer(ListResources(stub), resource);
        if (info && !seen) seen = info;
        return !info.has_value();
      },
      seconds(20), milliseconds(50));
  if (!gone) return std::nullopt;
  return std::chrono::duration_cast<milliseconds>(Clock::now() - last_read);
}

// An on-demand informer as ListResources must show it: started by a reader, for all namespaces,
// without selectors, synced with `objects` objects.
void CheckOnDemandInfo(const std::optional<v1::ResourceInfo>& info, int64_t objects) {
  REQUIRE(info.has_value());
  INFO(info->DebugString());
  CHECK(info->on_demand());
  CHECK(info->synced());
  CHECK(info->namespace_().empty());
  CHECK(info->label_selector().empty());
  CHECK(info->field_selector().empty());
  CHECK(info->object_count() == objects);
}

TEST_CASE(
    "allowOnDemand: List and Get start informers with the on-demand defaults, which stop "
    "onDemandGracePeriod after their last reader",
    "[cluster]") {
  Env& env = SharedEnv();
  TestCluster& cluster = *env.cluster;
  v1::Informer::Stub& stub = env.daemon->stub();
  REQUIRE_FALSE(HasInformer(stub, "replicationcontrollers"));
  REQUIRE_FALSE(HasInformer(stub, "podtemplates"));

  // A field selector an on-demand informer could not answer (it indexes no extra field) is
  // refused before one starts: nothing in ListResources, no LIST or WATCH reached the apiserver.
  // (Nothing else in this cluster lists replicationcontrollers: no controller-manager runs.)
  const double lists_before = ApiserverRequests(cluster, "replicationcontrollers", "LIST");
  const double watches_before = ApiserverRequests(cluster, "replicationcontrollers", "WATCH");
  const std::string refusal =
      "field \"spec.replicas\" is not supported (supported: metadata.name, metadata.namespace)";
  {
    const ListOutcome listed =
        List(stub, "replicationcontrollers", "cfg-od", "", "spec.replicas=1");
    INFO(listed.status.error_message());
    CHECK(listed.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(listed.status.error_message().find(refusal) != std::string::npos);
    const grpc::Status subscribed =
        SubscribeError(stub, SubscribeTo("rc", "cfg-od", "", "", "spec.replicas=1"));
    INFO(subscribed.error_message());
    CHECK(subscribed.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(subscribed.error_message().find(refusal) != std::string::npos);
    // An informer started by either would be listed for at least the 2 s grace period.
    CHECK_FALSE(HasInformer(stub, "replicationcontrollers"));
    CHECK(ApiserverRequests(cluster, "replicationcontrollers", "LIST") == lists_before);
    CHECK(ApiserverRequests(cluster, "replicationcontrollers", "WATCH") == watches_before);
  }

  // List starts one: it waits for the sync and answers what the apiserver has, managedFields
  // stripped (the on-demand default). The informer shows in ListResources as on demand, and
  // stops onDemandGracePeriod (2 s, not the default 5 minutes) after its last reader: this List.
  const ListOutcome listed = List(stub, "replicationcontrollers", "cfg-od");
  const auto list_done = Clock::now();
  INFO(listed.status.error_message());
  REQUIRE(listed.status.ok());
  // Still no extra index while it runs (a refused call holds no lease: the List stays the last
  // reader).
  const ListOutcome refused = List(stub, "replicationcontrollers", "", "", "spec.replicas=1");
  CHECK(refused.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(refused.status.error_message().find(refusal) != std::string::npos);
  std::optional<v1::ResourceInfo> seen;
  const std::optional<milliseconds> rc_stopped =
      StoppedAfter(stub, "replicationcontrollers", list_done, seen);
  CheckOnDemandInfo(seen, 2);
  REQUIRE(rc_stopped.has_value());
  INFO(fmt::format("replicationcontrollers stopped {} ms after the List", rc_stopped->count()));
  // The lease is dropped as the call ends: no earlier than 2 s before its reply arrived.
  CHECK(*rc_stopped >= milliseconds(1500));
  // What it served: the apiserver's objects, without managedFields.
  {
    std::vector<ObjectKey> keys;
    for (const std::string& item : listed.response.items()) keys.push_back(KeyOf(item));
    CHECK(keys.size() == 2);
    CHECK(Describe(keys) ==
          Describe(KubectlKeys(cluster, {"replicationcontrollers", "-n", "cfg-od"})));
    for (const std::string& item : listed.response.items()) {
      CheckManagedFields(item,
                         RawObject(cluster, "/api/v1/namespaces/cfg-od/replicationcontrollers/" +
                                                KeyOf(item).name),
                         true);
    }
  }
  // The positive control for the refusal above: this informer's LIST is counted.
  CHECK(ApiserverRequests(cluster, "replicationcontrollers", "LIST") > lists_before);

  // Get starts one too, as the one reader of podtemplates.
  const GetOutcome got = Get(stub, "podtemplates", "cfg-od", "pt-1");
  const auto get_done = Clock::now();
  INFO(got.status.error_message());
  REQUIRE(got.status.ok());
  const std::optional<milliseconds> pt_stopped = StoppedAfter(stub, "podtemplates", get_done, seen);
  CheckOnDemandInfo(seen, 1);
  REQUIRE(pt_stopped.has_value());
  INFO(fmt::format("podtemplates stopped {} ms after the Get", pt_stopped->count()));
  CHECK(*pt_stopped >= milliseconds(1500));
  CHECK(Describe(KeyOf(got.response.object())) ==
        Describe(KeyOf(
            KubectlOk(cluster, {"get", "podtemplate", "pt-1", "-n", "cfg-od", "-o", "json"}))));
  CheckManagedFields(got.response.object(),
                     RawObject(cluster, "/api/v1/namespaces/cfg-od/podtemplates/pt-1"), true);

  // Stopped for real: a reader now starts a fresh informer.
  CHECK(Get(stub, "podtemplates", "cfg-od", "pt-1").status.ok());
  CheckOnDemandInfo(FindInformer(ListResources(stub), "podtemplates"), 1);
}

}  // namespace
}  // namespace informerd::test::e2e
