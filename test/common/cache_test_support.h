// Helpers for the tests of core/store.*, core/cache.* and friends: building ObjectRecords and
// watch events tersely, and replaying what a subscriber receives into the state it implies (the
// way a client's informer would), checking on the way that the stream makes sense.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/cache.h"
#include "core/cache_event.h"
#include "core/labels.h"
#include "core/object_record.h"
#include "core/subscription.h"
#include "core/watch_event_decoder.h"
#include "fmt/format.h"

namespace informerd::core::testing {

// An object as the decoders would produce it. The JSON carries every field, so two records with
// different contents have different JSON.
inline ObjectRecord MakeObject(std::string namespace_name, std::string name, std::string uid,
                               uint64_t resource_version, LabelSet labels = {},
                               std::vector<std::optional<std::string>> extra_fields = {}) {
  ObjectRecord record;
  record.namespace_name = std::move(namespace_name);
  record.name = std::move(name);
  record.uid = std::move(uid);
  record.resource_version = fmt::format("{}", resource_version);
  record.labels = std::move(labels);
  record.extra_fields = std::move(extra_fields);
  std::string labels_json;
  for (const auto& [key, value] : record.labels) {
    labels_json += fmt::format("{}\"{}\":\"{}\"", labels_json.empty() ? "" : ",", key, value);
  }
  std::string extra_json;
  for (const std::optional<std::string>& value : record.extra_fields) {
    extra_json += fmt::format("{}\"{}\"", extra_json.empty() ? "" : ",", value.value_or("-"));
  }
  record.json = fmt::format(
      R"({{"metadata":{{"namespace":"{}","name":"{}","uid":"{}","resourceVersion":"{}",)"
      R"("labels":{{{}}}}},"extra":[{}]}})",
      record.namespace_name, record.name, record.uid, record.resource_version, labels_json,
      extra_json);
  return record;
}

inline WatchEvent Event(WatchEventType type, ObjectRecord object) {
  WatchEvent event;
  event.type = type;
  event.object = std::move(object);
  return event;
}
inline WatchEvent Added(ObjectRecord object) {
  return Event(WatchEventType::kAdded, std::move(object));
}
inline WatchEvent Modified(ObjectRecord object) {
  return Event(WatchEventType::kModified, std::move(object));
}
inline WatchEvent Deleted(ObjectRecord object) {
  return Event(WatchEventType::kDeleted, std::move(object));
}
inline WatchEvent Bookmark(uint64_t resource_version) {
  WatchEvent event;
  event.type = WatchEventType::kBookmark;
  event.resource_version = fmt::format("{}", resource_version);
  return event;
}

inline std::string Key(const ObjectRecord& object) {
  return object.namespace_name + "/" + object.name;
}

// One received item, flattened for comparisons in tests.
struct Received {
  EventType type;
  std::string key;  // namespace/name; empty for markers
  std::string uid;
  std::string object_resource_version;  // the object's own metadata.resourceVersion
  std::string resource_version;         // the event's
  friend bool operator==(const Received& a, const Received& b) {
    return a.type == b.type && a.key == b.key && a.uid == b.uid &&
           a.object_resource_version == b.object_resource_version &&
           a.resource_version == b.resource_version;
  }
};

inline Received Flatten(const Delivery& delivery) {
  Received received{delivery.type, "", "", "", delivery.resource_version()};
  if (const ObjectRecord* object = delivery.object()) {
    received.key = Key(*object);
    received.uid = object->uid;
    received.object_resource_version = object->resource_version;
  }
  return received;
}

inline std::vector<Received> Drain(Subscription& subscription) {
  std::vector<Received> out;
  while (std::optional<Delivery> delivery = subscription.TryPop())
    out.push_back(Flatten(*delivery));
  return out;
}

inline std::string Describe(const Received& r) {
  return fmt::format("{} {} uid={} object_rv={} rv={}", EventTypeName(r.type), r.key, r.uid,
                     r.object_resource_version, r.resource_version);
}

// For test failure messages (Catch2 finds it by argument-dependent lookup).
inline std::ostream& operator<<(std::ostream& out, const Received& r) { return out << Describe(r); }

inline std::string Describe(const std::vector<Received>& received) {
  std::string text;
  for (const Received& r : received) text += Describe(r) + "\n";
  return text;
}

// What a client that applies its stream holds: key → the object's JSON. Apply reports the
// first event that contradicts the state (ADDED of a key it has: a duplicate; MODIFIED or
// DELETED of a key it lacks: a gap), as an error string.
class StreamState {
 public:
  std::optional<std::string> Apply(const Delivery& delivery) {
    switch (delivery.type) {
      case EventType::kBookmark:
        resume_from_ = delivery.resource_version();
        return std::nullopt;
      case EventType::kSynced:
        if (synced_) return std::string("a second SYNCED");
        synced_ = true;
        resume_from_ = delivery.resource_version();
        return std::nullopt;
      default:
        break;
    }
    const ObjectRecord& object = *delivery.object();
    const std::string key = Key(object);
    const auto held = uids_.find(key);
    if (delivery.type == EventType::kAdded) {
      if (held != uids_.end()) return "ADDED for a key already held (a duplicate): " + key;
      objects_[key] = object.json;
      uids_[key] = object.uid;
    } else if (delivery.type == EventType::kModified) {
      if (held == uids_.end()) return "MODIFIED for a key not held (a gap): " + key;
      if (held->second != object.uid) {
        return "MODIFIED with another UID (must be DELETED, then ADDED): " + key;
      }
      objects_[key] = object.json;
    } else {
      if (held == uids_.end()) return "DELETED for a key not held (a gap): " + key;
      objects_.erase(key);
      uids_.erase(held);
    }
    if (!resume_from_.empty()) resume_from_ = delivery.resource_version();
    return std::nullopt;
  }

  // Starts over, as after OUT_OF_RANGE.
  void Reset() {
    objects_.clear();
    uids_.clear();
    synced_ = false;
    resume_from_.clear();
  }
  // A resumed subscription: resume points count from `resource_version`.
  void ResumedFrom(std::string resource_version) { resume_from_ = std::move(resource_version); }

  const std::map<std::string, std::string>& objects() const { return objects_; }
  bool synced() const { return synced_; }
  // Where this client can resume from; empty when it cannot (its snapshot is incomplete).
  const std::string& resume_from() const { return resume_from_; }

 private:
  std::map<std::string, std::string> objects_;
  std::map<std::string, std::string> uids_;
  bool synced_ = false;
  std::string resume_from_;
};

// key → JSON of `objects`, for comparison with StreamState::objects().
inline std::map<std::string, std::string> ByKey(
    const std::vector<std::shared_ptr<const ObjectRecord>>& objects) {
  std::map<std::string, std::string> out;
  for (const auto& object : objects) out[Key(*object)] = object->json;
  return out;
}

}  // namespace informerd::core::testing
