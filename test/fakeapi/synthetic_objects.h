// Object JSON for the fake apiserver: realistic Kubernetes objects (a Pod as a ReplicaSet's
// controller and the kubelet leave it, with metadata.managedFields on request), stored as an
// ObjectTemplate split around the metadata.resourceVersion value, so that one serialization
// serves every revision of an object whose content did not change (load mode's MODIFIED events).
//
// Pure functions and an immutable factory; called by FakeApiServer on the test thread (Upsert),
// the I/O thread (load generation, fault payloads) or the load binary's main thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "test/fakeapi/resource_catalog.h"
#include "test/fakeapi/selectors.h"

namespace informerd::fakeapi {

// Load mode's send-time stamp (--stamp-send-time): an annotation whose value is the decimal
// CLOCK_REALTIME time in Unix nanoseconds (19 digits) at which the event was made, so that a
// receiver on the same machine can measure latency from the fake to itself.
inline constexpr char kSendTimeAnnotation[] = "informerd.io/bench-sent-unix-nanos";
inline constexpr std::size_t kSendTimeDigits = 19;

// An object's JSON is head + decimal resourceVersion + tail. A stamped object's tail holds the
// send-time annotation's value at `stamp_at` (kSendTimeDigits bytes, the time the object was
// built); a revision with a send time of its own has those bytes replaced when it is written, as
// the resourceVersion is, so the stored bytes stay shared and are never re-serialized.
struct ObjectTemplate {
  static constexpr std::size_t kNoStamp = static_cast<std::size_t>(-1);
  std::string head;
  std::string tail;
  std::size_t stamp_at = kNoStamp;
  std::size_t size_without_rv() const { return head.size() + tail.size(); }
  bool stamped() const { return stamp_at != kNoStamp; }
  // `sent_unix_nanos` 0: the stamp as built.
  std::string Render(std::uint64_t resource_version, std::uint64_t sent_unix_nanos = 0) const;
};

// `unix_nanos` as exactly kSendTimeDigits decimal digits (zero-padded) into `out`.
void WriteSendTimeDigits(std::uint64_t unix_nanos, char* out);
std::string SendTimeDigits(std::uint64_t unix_nanos);
// Now, CLOCK_REALTIME, in Unix nanoseconds.
std::uint64_t RealtimeUnixNanos();

// What a test says about an object; everything else is generated.
struct ObjectSpec {
  Labels labels;
  std::map<std::string, std::string> annotations;
  // Optional JSON object merged over the generated one: top-level members replace the generated
  // ones ("spec", "status", "data"), members of "metadata" replace generated metadata members,
  // and "metadata.labels"/"metadata.annotations" are merged key by key. Identity (kind,
  // apiVersion, name, namespace, uid, resourceVersion, creationTimestamp) always wins.
  std::string json;
  bool managed_fields = false;
  // Grows the object to about this many bytes with realistic content (more containers' env
  // entries for a Pod, data entries for a ConfigMap). 0: natural size.
  std::size_t pad_to_bytes = 0;
};

struct ObjectIdentity {
  std::string namespace_name;  // Empty for cluster-scoped kinds.
  std::string name;
  std::string uid;
  std::string creation_timestamp;  // RFC 3339, "2024-05-01T12:00:00Z".
};

struct BuiltObject {
  std::shared_ptr<const ObjectTemplate> body;
  Labels labels;  // As they ended up in metadata.labels.
};

absl::StatusOr<BuiltObject> BuildObject(const ResourceType& type, const ObjectIdentity& identity,
                                        const ObjectSpec& spec);

// An object of at least `bytes` bytes, grown by one huge annotation: the "larger than any sane
// limit" payload of the huge-object fault (64 MiB by default).
BuiltObject BuildHugeObject(const ResourceType& type, const ObjectIdentity& identity,
                            std::size_t bytes);

// Builds many objects of one shape fast: the object is generated once with placeholders for
// identity fields, and each Build() concatenates the pieces (no JSON work per object).
// With `stamp_send_time` every object carries the kSendTimeAnnotation (its bytes counted in
// `object_bytes`), its value the time the object was built.
class SyntheticObjectFactory {
 public:
  static absl::StatusOr<SyntheticObjectFactory> Create(const ResourceType& type,
                                                       std::size_t object_bytes,
                                                       bool managed_fields, Labels labels,
                                                       bool stamp_send_time = false);
  BuiltObject Build(const ObjectIdentity& identity) const;

 private:
  enum class Field { kLiteral, kName, kNamespace, kUid, kTimestamp, kResourceVersion, kSendTime };
  struct Segment {
    Field field;
    std::string literal;
  };
  std::vector<Segment> segments_;
  Labels labels_;
};

// "2024-05-01T12:00:00Z" for now.
std::string NowRfc3339();

}  // namespace informerd::fakeapi
