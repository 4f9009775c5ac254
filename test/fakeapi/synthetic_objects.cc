#include "test/fakeapi/synthetic_objects.h"

#include <rapidjson/document.h>

#include <ctime>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "test/fakeapi/json_writer.h"

namespace informerd::fakeapi {
namespace {

// Placeholders never need JSON escaping, so they survive serialization byte for byte.
constexpr char kRvPlaceholder[] = "@@RV@@";
constexpr char kNamePlaceholder[] = "@@NAME@@";
constexpr char kNamespacePlaceholder[] = "@@NS@@";
constexpr char kUidPlaceholder[] = "@@UID@@";
constexpr char kTimestampPlaceholder[] = "@@TS@@";
// As wide as the value it stands for, so that objects are sized with the stamp's real length.
constexpr char kSendTimePlaceholder[] = "@@SENT_UNIX_NANOS@@";
static_assert(sizeof(kSendTimePlaceholder) - 1 == kSendTimeDigits);

// How much realistic filler an object carries: `entries` padding entries (env vars of a Pod's
// container, data keys of a ConfigMap, spec settings otherwise), the last one with a value of
// `last_value_length` characters.
struct Shape {
  std::size_t entries = 0;
  std::size_t last_value_length = 0;
  bool managed_fields = false;
};

constexpr std::size_t kEntryValueLength = 48;

std::string EntryName(std::size_t i) { return fmt::format("SETTING_{:04}", i); }

std::string EntryValue(std::size_t i, std::size_t length) {
  // Looks like configuration (URLs, hosts), not like a repeated character.
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string value = "https://svc-";
  std::uint64_t x = i * 2654435761u + 12345;
  while (value.size() < length) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    value.push_back(kAlphabet[(x >> 33) % 36]);
  }
  value.resize(length);
  return value;
}

std::size_t EntryValueLength(const Shape& shape, std::size_t i) {
  return i + 1 == shape.entries ? shape.last_value_length : kEntryValueLength;
}

void Empty(JsonWriter& w) {
  w.StartObject();
  w.EndObject();
}

// A managedFields "f:" set: {".":{}, "f:a":{}, ...}.
void FieldSet(JsonWriter& w, const std::vector<std::string>& fields, bool with_dot = true) {
  w.StartObject();
  if (with_dot) {
    w.Key(".");
    Empty(w);
  }
  for (const std::string& f : fields) {
    w.Key("f:" + f);
    Empty(w);
  }
  w.EndObject();
}

bool IsPod(const ResourceType& t) { return t.group.empty() && t.plural == "pods"; }
bool IsConfigMap(const ResourceType& t) { return t.group.empty() && t.plural == "configmaps"; }
bool IsNamespace(const ResourceType& t) { return t.group.empty() && t.plural == "namespaces"; }

void WriteManagedFields(JsonWriter& w, const ResourceType& type, const Labels& labels,
                        const std::map<std::string, std::string>& annotations,
                        const Shape& shape, const std::string& timestamp) {
  w.Key("managedFields");
  w.StartArray();
  // The controller (or kubectl) that wrote metadata and spec.
  w.StartObject();
  w.Key("manager");
  w.String(IsPod(type) ? "kube-controller-manager" : "kubectl-client-side-apply");
  w.Key("operation");
  w.String("Update");
  w.Key("apiVersion");
  w.String(type.GroupVersion());
  w.Key("time");
  w.String(timestamp);
  w.Key("fieldsType");
  w.String("FieldsV1");
  w.Key("fieldsV1");
  w.StartObject();
  w.Key("f:metadata");
  w.StartObject();
  if (!annotations.empty()) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : annotations) keys.push_back(k);
    w.Key("f:annotations");
    FieldSet(w, keys);
  }
  if (IsPod(type)) {
    w.Key("f:generateName");
    Empty(w);
  }
  if (!labels.empty()) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : labels) keys.push_back(k);
    w.Key("f:labels");
    FieldSet(w, keys);
  }
  if (IsPod(type)) {
    w.Key("f:ownerReferences");
    w.StartObject();
    w.Key(".");
    Empty(w);
    w.Key("k:{\"uid\":\"5f0c2a9e-6a43-4a51-9d1c-3b2f6f1e7a10\"}");
    Empty(w);
    w.EndObject();
  }
  w.EndObject();
  if (IsPod(type)) {
    w.Key("f:spec");
    w.StartObject();
    w.Key("f:containers");
    w.StartObject();
    w.Key("k:{\"name\":\"app\"}");
    w.StartObject();
    w.Key(".");
    Empty(w);
    if (shape.entries > 0) {
      w.Key("f:env");
      w.StartObject();
      w.Key(".");
      Empty(w);
      for (std::size_t i = 0; i < shape.entries; ++i) {
        w.Key(fmt::format("k:{{\"name\":\"{}\"}}", EntryName(i)));
        FieldSet(w, {"name", "value"});
      }
      w.EndObject();
    }
    for (const char* f : {"image", "imagePullPolicy", "name"}) {
      w.Key(fmt::format("f:{}", f));
      Empty(w);
    }
    w.Key("f:ports");
    w.StartObject();
    w.Key(".");
    Empty(w);
    w.Key("k:{\"containerPort\":8080,\"protocol\":\"TCP\"}");
    FieldSet(w, {"containerPort", "name", "protocol"});
    w.EndObject();
    w.Key("f:resources");
    w.StartObject();
    w.Key(".");
    Empty(w);
    w.Key("f:limits");
    FieldSet(w, {"cpu", "memory"});
    w.Key("f:requests");
    FieldSet(w, {"cpu", "memory"});
    w.EndObject();
    for (const char* f : {"terminationMessagePath", "terminationMessagePolicy"}) {
      w.Key(fmt::format("f:{}", f));
      Empty(w);
    }
    w.EndObject();
    w.EndObject();
    for (const char* f : {"dnsPolicy", "enableServiceLinks", "restartPolicy", "schedulerName",
                          "securityContext", "terminationGracePeriodSeconds"}) {
      w.Key(fmt::format("f:{}", f));
      Empty(w);
    }
    w.EndObject();
  } else if (shape.entries > 0) {
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < shape.entries; ++i) keys.push_back(EntryName(i));
    if (IsConfigMap(type)) {
      w.Key("f:data");
      FieldSet(w, keys);
    } else {
      w.Key("f:spec");
      w.StartObject();
      w.Key("f:settings");
      FieldSet(w, keys);
      w.EndObject();
    }
  }
  w.EndObject();
  w.EndObject();
  if (IsPod(type)) {
    // The kubelet owns the status subresource.
    w.StartObject();
    w.Key("manager");
    w.String("kubelet");
    w.Key("operation");
    w.String("Update");
    w.Key("apiVersion");
    w.String("v1");
    w.Key("time");
    w.String(timestamp);
    w.Key("fieldsType");
    w.String("FieldsV1");
    w.Key("fieldsV1");
    w.StartObject();
    w.Key("f:status");
    w.StartObject();
    w.Key("f:conditions");
    w.StartObject();
    for (const char* c : {"ContainersReady", "Initialized", "Ready"}) {
      w.Key(fmt::format("k:{{\"type\":\"{}\"}}", c));
      FieldSet(w, {"lastProbeTime", "lastTransitionTime", "status", "type"});
    }
    w.EndObject();
    for (const char* f : {"containerStatuses", "hostIP", "phase", "podIP"}) {
      w.Key(fmt::format("f:{}", f));
      Empty(w);
    }
    w.Key("f:podIPs");
    w.StartObject();
    w.Key(".");
    Empty(w);
    w.Key("k:{\"ip\":\"10.244.1.23\"}");
    FieldSet(w, {"ip"});
    w.EndObject();
    w.Key("f:startTime");
    Empty(w);
    w.EndObject();
    w.EndObject();
    w.Key("subresource");
    w.String("status");
    w.EndObject();
  }
  w.EndArray();
}

void WriteStringMap(JsonWriter& w, const std::map<std::string, std::string>& m) {
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k);
    w.String(v);
  }
  w.EndObject();
}

void WritePodSpecAndStatus(JsonWriter& w, const Shape& shape, const std::string& timestamp) {
  w.Key("spec");
  w.StartObject();
  w.Key("volumes");
  w.StartArray();
  w.StartObject();
  w.Key("name");
  w.String("kube-api-access-7xk2p");
  w.Key("projected");
  w.StartObject();
  w.Key("sources");
  w.StartArray();
  w.StartObject();
  w.Key("serviceAccountToken");
  w.StartObject();
  w.Key("expirationSeconds");
  w.Int(3607);
  w.Key("path");
  w.String("token");
  w.EndObject();
  w.EndObject();
  w.StartObject();
  w.Key("configMap");
  w.StartObject();
  w.Key("name");
  w.String("kube-root-ca.crt");
  w.Key("items");
  w.StartArray();
  w.StartObject();
  w.Key("key");
  w.String("ca.crt");
  w.Key("path");
  w.String("ca.crt");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.Key("defaultMode");
  w.Int(420);
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.Key("containers");
  w.StartArray();
  w.StartObject();
  w.Key("name");
  w.String("app");
  w.Key("image");
  w.String("registry.example.com/team/app:1.27.3");
  w.Key("ports");
  w.StartArray();
  w.StartObject();
  w.Key("name");
  w.String("http");
  w.Key("containerPort");
  w.Int(8080);
  w.Key("protocol");
  w.String("TCP");
  w.EndObject();
  w.EndArray();
  if (shape.entries > 0) {
    w.Key("env");
    w.StartArray();
    for (std::size_t i = 0; i < shape.entries; ++i) {
      w.StartObject();
      w.Key("name");
      w.String(EntryName(i));
      w.Key("value");
      w.String(EntryValue(i, EntryValueLength(shape, i)));
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("resources");
  w.StartObject();
  w.Key("limits");
  WriteStringMap(w, {{"cpu", "500m"}, {"memory", "256Mi"}});
  w.Key("requests");
  WriteStringMap(w, {{"cpu", "100m"}, {"memory", "128Mi"}});
  w.EndObject();
  w.Key("volumeMounts");
  w.StartArray();
  w.StartObject();
  w.Key("name");
  w.String("kube-api-access-7xk2p");
  w.Key("readOnly");
  w.Bool(true);
  w.Key("mountPath");
  w.String("/var/run/secrets/kubernetes.io/serviceaccount");
  w.EndObject();
  w.EndArray();
  w.Key("terminationMessagePath");
  w.String("/dev/termination-log");
  w.Key("terminationMessagePolicy");
  w.String("File");
  w.Key("imagePullPolicy");
  w.String("IfNotPresent");
  w.EndObject();
  w.EndArray();
  w.Key("restartPolicy");
  w.String("Always");
  w.Key("terminationGracePeriodSeconds");
  w.Int(30);
  w.Key("dnsPolicy");
  w.String("ClusterFirst");
  w.Key("serviceAccountName");
  w.String("default");
  w.Key("serviceAccount");
  w.String("default");
  w.Key("nodeName");
  w.String("node-1.example.internal");
  w.Key("securityContext");
  Empty(w);
  w.Key("schedulerName");
  w.String("default-scheduler");
  w.Key("tolerations");
  w.StartArray();
  for (const char* key : {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}) {
    w.StartObject();
    w.Key("key");
    w.String(key);
    w.Key("operator");
    w.String("Exists");
    w.Key("effect");
    w.String("NoExecute");
    w.Key("tolerationSeconds");
    w.Int(300);
    w.EndObject();
  }
  w.EndArray();
  w.Key("priority");
  w.Int(0);
  w.Key("enableServiceLinks");
  w.Bool(true);
  w.Key("preemptionPolicy");
  w.String("PreemptLowerPriority");
  w.EndObject();

  w.Key("status");
  w.StartObject();
  w.Key("phase");
  w.String("Running");
  w.Key("conditions");
  w.StartArray();
  for (const char* c : {"Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    w.StartObject();
    w.Key("type");
    w.String(c);
    w.Key("status");
    w.String("True");
    w.Key("lastProbeTime");
    w.Null();
    w.Key("lastTransitionTime");
    w.String(timestamp);
    w.EndObject();
  }
  w.EndArray();
  w.Key("hostIP");
  w.String("10.0.12.7");
  w.Key("podIP");
  w.String("10.244.1.23");
  w.Key("podIPs");
  w.StartArray();
  w.StartObject();
  w.Key("ip");
  w.String("10.244.1.23");
  w.EndObject();
  w.EndArray();
  w.Key("startTime");
  w.String(timestamp);
  w.Key("containerStatuses");
  w.StartArray();
  w.StartObject();
  w.Key("name");
  w.String("app");
  w.Key("state");
  w.StartObject();
  w.Key("running");
  w.StartObject();
  w.Key("startedAt");
  w.String(timestamp);
  w.EndObject();
  w.EndObject();
  w.Key("lastState");
  Empty(w);
  w.Key("ready");
  w.Bool(true);
  w.Key("restartCount");
  w.Int(0);
  w.Key("image");
  w.String("registry.example.com/team/app:1.27.3");
  w.Key("imageID");
  w.String("registry.example.com/team/app@sha256:"
           "4c1e997385b8fb4eaa9d6e1c1c8e2e7d5a7b6b29a8e1f3c2d4b5a6978c0d1e2f");
  w.Key("containerID");
  w.String("containerd://9b1f0c7de2a34f58b6c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9");
  w.Key("started");
  w.Bool(true);
  w.EndObject();
  w.EndArray();
  w.Key("qosClass");
  w.String("Burstable");
  w.EndObject();
}

// The object with `kRvPlaceholder` as its resourceVersion.
std::string Generate(const ResourceType& type, const ObjectIdentity& id, const Labels& labels,
                     const std::map<std::string, std::string>& annotations, const Shape& shape) {
  JsonWriter w;
  w.StartObject();
  w.Key("kind");
  w.String(type.kind);
  w.Key("apiVersion");
  w.String(type.GroupVersion());
  w.Key("metadata");
  w.StartObject();
  w.Key("name");
  w.String(id.name);
  if (IsPod(type)) {
    w.Key("generateName");
    w.String("app-7d4b9c8f5d-");
  }
  if (type.namespaced) {
    w.Key("namespace");
    w.String(id.namespace_name);
  }
  w.Key("uid");
  w.String(id.uid);
  w.Key("resourceVersion");
  w.String(kRvPlaceholder);
  w.Key("creationTimestamp");
  w.String(id.creation_timestamp);
  if (!labels.empty()) {
    w.Key("labels");
    WriteStringMap(w, labels);
  }
  if (!annotations.empty()) {
    w.Key("annotations");
    WriteStringMap(w, annotations);
  }
  if (IsPod(type)) {
    w.Key("ownerReferences");
    w.StartArray();
    w.StartObject();
    w.Key("apiVersion");
    w.String("apps/v1");
    w.Key("kind");
    w.String("ReplicaSet");
    w.Key("name");
    w.String("app-7d4b9c8f5d");
    w.Key("uid");
    w.String("5f0c2a9e-6a43-4a51-9d1c-3b2f6f1e7a10");
    w.Key("controller");
    w.Bool(true);
    w.Key("blockOwnerDeletion");
    w.Bool(true);
    w.EndObject();
    w.EndArray();
  }
  if (shape.managed_fields) {
    WriteManagedFields(w, type, labels, annotations, shape, id.creation_timestamp);
  }
  w.EndObject();
  if (IsPod(type)) {
    WritePodSpecAndStatus(w, shape, id.creation_timestamp);
  } else if (IsConfigMap(type)) {
    w.Key("data");
    w.StartObject();
    for (std::size_t i = 0; i < shape.entries; ++i) {
      w.Key(EntryName(i));
      w.String(EntryValue(i, EntryValueLength(shape, i)));
    }
    w.EndObject();
  } else if (IsNamespace(type)) {
    w.Key("spec");
    w.StartObject();
    w.Key("finalizers");
    w.StartArray();
    w.String("kubernetes");
    w.EndArray();
    w.EndObject();
    w.Key("status");
    w.StartObject();
    w.Key("phase");
    w.String("Active");
    w.EndObject();
  } else {
    w.Key("spec");
    w.StartObject();
    if (shape.entries > 0) {
      w.Key("settings");
      w.StartObject();
      for (std::size_t i = 0; i < shape.entries; ++i) {
        w.Key(EntryName(i));
        w.String(EntryValue(i, EntryValueLength(shape, i)));
      }
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
  return w.Take();
}

// The smallest shape whose object reaches `target` bytes (exactly, when padding can).
Shape ShapeFor(const ResourceType& type, const ObjectIdentity& id, const Labels& labels,
               const std::map<std::string, std::string>& annotations, bool managed_fields,
               std::size_t target) {
  Shape shape;
  shape.managed_fields = managed_fields;
  const std::size_t rv_digits = 8;  // A typical resourceVersion's length.
  auto size_of = [&](const Shape& s) {
    return Generate(type, id, labels, annotations, s).size() - (sizeof(kRvPlaceholder) - 1) +
           rv_digits;
  };
  const std::size_t base = size_of(shape);
  if (target <= base) return shape;
  Shape one = shape;
  one.entries = 1;
  one.last_value_length = kEntryValueLength;
  const std::size_t per_entry = size_of(one) - base;
  shape.entries = std::max<std::size_t>(1, (target - base) / per_entry);
  shape.last_value_length = kEntryValueLength;
  const std::size_t reached = size_of(shape);
  if (reached < target) {
    shape.last_value_length += target - reached;
  } else if (reached > target) {
    shape.last_value_length -= std::min(shape.last_value_length, reached - target);
  }
  return shape;
}

std::shared_ptr<const ObjectTemplate> SplitAtResourceVersion(const std::string& json) {
  const std::size_t at = json.find(kRvPlaceholder);
  auto out = std::make_shared<ObjectTemplate>();
  out->head = json.substr(0, at);
  out->tail = json.substr(at + sizeof(kRvPlaceholder) - 1);
  return out;
}

absl::StatusOr<std::string> MergeOverlay(const std::string& generated, const std::string& overlay_text,
                                         const ResourceType& type, const ObjectIdentity& id) {
  rapidjson::Document overlay;
  overlay.Parse(overlay_text.c_str(), overlay_text.size());
  if (overlay.HasParseError() || !overlay.IsObject()) {
    return absl::InvalidArgumentError(
        fmt::format("ObjectSpec.json must be a JSON object, got: {}", overlay_text.substr(0, 200)));
  }
  rapidjson::Document doc;
  doc.Parse(generated.c_str(), generated.size());
  auto& alloc = doc.GetAllocator();
  for (auto& member : overlay.GetObject()) {
    const std::string name(member.name.GetString(), member.name.GetStringLength());
    if (name == "metadata" && member.value.IsObject()) {
      rapidjson::Value& metadata = doc["metadata"];
      for (auto& m : member.value.GetObject()) {
        const std::string key(m.name.GetString(), m.name.GetStringLength());
        const bool is_map = key == "labels" || key == "annotations";
        if (is_map && m.value.IsObject() && metadata.HasMember(key) && metadata[key].IsObject()) {
          rapidjson::Value& target = metadata[key];
          for (auto& kv : m.value.GetObject()) {
            const std::string k(kv.name.GetString(), kv.name.GetStringLength());
            if (target.HasMember(k)) target.RemoveMember(k);
            target.AddMember(rapidjson::Value(k, alloc), rapidjson::Value(kv.value, alloc), alloc);
          }
        } else {
          if (metadata.HasMember(key)) metadata.RemoveMember(key);
          metadata.AddMember(rapidjson::Value(key, alloc), rapidjson::Value(m.value, alloc), alloc);
        }
      }
      continue;
    }
    if (doc.HasMember(name)) doc.RemoveMember(name);
    doc.AddMember(rapidjson::Value(name, alloc), rapidjson::Value(member.value, alloc), alloc);
  }
  // Identity always wins over the overlay.
  auto set = [&](rapidjson::Value& obj, const char* key, const std::string& value) {
    if (obj.HasMember(key)) obj.RemoveMember(key);
    obj.AddMember(rapidjson::Value(key, alloc), rapidjson::Value(value, alloc), alloc);
  };
  set(doc, "kind", type.kind);
  set(doc, "apiVersion", type.GroupVersion());
  rapidjson::Value& metadata = doc["metadata"];
  set(metadata, "name", id.name);
  if (type.namespaced) set(metadata, "namespace", id.namespace_name);
  set(metadata, "uid", id.uid);
  set(metadata, "resourceVersion", kRvPlaceholder);
  set(metadata, "creationTimestamp", id.creation_timestamp);
  JsonWriter w;
  doc.Accept(w);
  return w.Take();
}

Labels LabelsOf(const std::string& json) {
  Labels labels;
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("metadata")) return labels;
  const rapidjson::Value& metadata = doc["metadata"];
  if (!metadata.IsObject() || !metadata.HasMember("labels") || !metadata["labels"].IsObject()) {
    return labels;
  }
  for (const auto& kv : metadata["labels"].GetObject()) {
    if (kv.value.IsString()) {
      labels.emplace(std::string(kv.name.GetString(), kv.name.GetStringLength()),
                     std::string(kv.value.GetString(), kv.value.GetStringLength()));
    }
  }
  return labels;
}

}  // namespace

std::string ObjectTemplate::Render(std::uint64_t resource_version,
                                   std::uint64_t sent_unix_nanos) const {
  std::string out;
  out.reserve(head.size() + tail.size() + 20);
  out += head;
  out += std::to_string(resource_version);
  if (stamped() && sent_unix_nanos != 0) {
    out.append(tail, 0, stamp_at);
    out += SendTimeDigits(sent_unix_nanos);
    out.append(tail, stamp_at + kSendTimeDigits, std::string::npos);
  } else {
    out += tail;
  }
  return out;
}

void WriteSendTimeDigits(std::uint64_t unix_nanos, char* out) {
  for (std::size_t i = kSendTimeDigits; i > 0; --i) {
    out[i - 1] = static_cast<char>('0' + unix_nanos % 10);
    unix_nanos /= 10;
  }
}

std::string SendTimeDigits(std::uint64_t unix_nanos) {
  std::string out(kSendTimeDigits, '0');
  WriteSendTimeDigits(unix_nanos, out.data());
  return out;
}

std::uint64_t RealtimeUnixNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

absl::StatusOr<BuiltObject> BuildObject(const ResourceType& type, const ObjectIdentity& identity,
                                        const ObjectSpec& spec) {
  Shape shape;
  shape.managed_fields = spec.managed_fields;
  if (spec.pad_to_bytes > 0) {
    shape = ShapeFor(type, identity, spec.labels, spec.annotations, spec.managed_fields,
                     spec.pad_to_bytes);
  }
  std::string json = Generate(type, identity, spec.labels, spec.annotations, shape);
  BuiltObject built;
  if (spec.json.empty()) {
    built.labels = spec.labels;
  } else {
    auto merged = MergeOverlay(json, spec.json, type, identity);
    if (!merged.ok()) return merged.status();
    json = std::move(*merged);
    built.labels = LabelsOf(json);
  }
  built.body = SplitAtResourceVersion(json);
  return built;
}

BuiltObject BuildHugeObject(const ResourceType& type, const ObjectIdentity& identity,
                            std::size_t bytes) {
  std::map<std::string, std::string> annotations;
  const std::size_t base = Generate(type, identity, {}, {}, Shape{}).size();
  annotations["fake.informerd.io/blob"] = EntryValue(7, bytes > base ? bytes - base + 64 : 64);
  const std::string json = Generate(type, identity, {}, annotations, Shape{});
  return BuiltObject{SplitAtResourceVersion(json), {}};
}

absl::StatusOr<SyntheticObjectFactory> SyntheticObjectFactory::Create(const ResourceType& type,
                                                                      std::size_t object_bytes,
                                                                      bool managed_fields,
                                                                      Labels labels,
                                                                      bool stamp_send_time) {
  // Size the shape with identity values of realistic lengths, then generate with placeholders.
  ObjectIdentity typical;
  typical.namespace_name = "namespace-01";
  typical.name = "object-00000001";
  typical.uid = "00000000-0000-4000-8000-000000000000";
  typical.creation_timestamp = "2024-05-01T12:00:00Z";
  Shape shape;
  shape.managed_fields = managed_fields;
  std::map<std::string, std::string> annotations;
  if (stamp_send_time) annotations[kSendTimeAnnotation] = kSendTimePlaceholder;
  if (object_bytes > 0) {
    shape = ShapeFor(type, typical, labels, annotations, managed_fields, object_bytes);
  }
  ObjectIdentity placeholders{kNamespacePlaceholder, kNamePlaceholder, kUidPlaceholder,
                              kTimestampPlaceholder};
  const std::string master = Generate(type, placeholders, labels, annotations, shape);

  SyntheticObjectFactory factory;
  factory.labels_ = std::move(labels);
  const std::pair<const char*, Field> kPlaceholders[] = {
      {kRvPlaceholder, Field::kResourceVersion},  {kNamePlaceholder, Field::kName},
      {kNamespacePlaceholder, Field::kNamespace}, {kUidPlaceholder, Field::kUid},
      {kTimestampPlaceholder, Field::kTimestamp}, {kSendTimePlaceholder, Field::kSendTime}};
  std::size_t pos = 0;
  while (pos < master.size()) {
    std::size_t next = std::string::npos;
    Field field = Field::kLiteral;
    std::size_t length = 0;
    for (const auto& [text, f] : kPlaceholders) {
      const std::size_t at = master.find(text, pos);
      if (at < next) {
        next = at;
        field = f;
        length = std::char_traits<char>::length(text);
      }
    }
    factory.segments_.push_back({Field::kLiteral, master.substr(pos, next - pos)});
    if (next == std::string::npos) break;
    factory.segments_.push_back({field, ""});
    pos = next + length;
  }
  return factory;
}

BuiltObject SyntheticObjectFactory::Build(const ObjectIdentity& identity) const {
  auto body = std::make_shared<ObjectTemplate>();
  std::string* out = &body->head;
  for (const Segment& s : segments_) {
    switch (s.field) {
      case Field::kLiteral:
        out->append(s.literal);
        break;
      case Field::kName:
        out->append(identity.name);
        break;
      case Field::kNamespace:
        out->append(identity.namespace_name);
        break;
      case Field::kUid:
        out->append(identity.uid);
        break;
      case Field::kTimestamp:
        out->append(identity.creation_timestamp);
        break;
      case Field::kResourceVersion:
        out = &body->tail;
        break;
      case Field::kSendTime:
        // Annotations follow the resourceVersion in metadata (Generate), so this is the tail.
        if (out == &body->tail) body->stamp_at = out->size();
        out->append(SendTimeDigits(RealtimeUnixNanos()));
        break;
    }
  }
  return BuiltObject{std::move(body), labels_};
}

std::string NowRfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace informerd::fakeapi
