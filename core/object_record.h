// ObjectRecord: one Kubernetes object as the decoding layer hands it to the informer engine: the
// object's JSON bytes plus the few metadata fields the engine keys, orders, indexes and filters on.
//
// Data flow: apiserver HTTP body → ListDecoder / WatchEventDecoder → ObjectScanner → ObjectRecord
// → engine (store, indexes, fan-out). The decoders build each record in one SAX pass over the
// body and move it to the caller, who owns it from then on; the fields are extracted at decode
// time so that nothing downstream ever parses the JSON again: parsing is most of the cost of an
// event, so each object is parsed once, however many subscribers, indexes and filters read it.
// A value type: no thread affinity, no invariants beyond those stated on the fields.
//
// Memory (a cached object should cost little more than its JSON: at most 1.2x resident, see
// README "Performance"): a record from the scanner is compact, ONE heap block holding the JSON,
// then the label and field tables; the metadata strings, label keys and values and field values
// are views into that JSON (copied after it only when the JSON spells them with escapes). The
// string types (record_strings.h) read like std::string_view and assign like std::string, so
// building a record field by field (tests, fakes) still works: assigned fields own their bytes,
// and Compact() packs such a record into one block. No per-object DOM, no per-field allocation.
//
// KubeStatus is the decoded form of a metav1.Status, which the apiserver sends both as the body
// of an error response and as the object of a watch ERROR event; it lives here because the list
// and the watch decoders both produce it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/labels.h"
#include "core/record_strings.h"

namespace informerd::core {

class ObjectRecord {
 public:
  // metadata.namespace; empty for cluster-scoped objects.
  RecordString namespace_name;
  // metadata.name.
  RecordString name;
  // metadata.uid. A changed UID under the same namespace/name means delete-and-recreate.
  RecordString uid;
  // metadata.resourceVersion, kept as text: the API calls it opaque, and clients get it back byte
  // for byte. The engine still compares it as a number, as the apiserver's watch cache does
  // (core/resource_version.h; docs/kubernetes-semantics.md, "Resource versions").
  RecordString resource_version;
  // metadata.deletionTimestamp as sent (RFC 3339); empty when the object is not being deleted.
  RecordString deletion_timestamp;
  // metadata.labels, sorted by key.
  LabelSet labels;
  // One entry per ScanOptions::extra_field_paths, in the same order: the value at that path as
  // text (a string's decoded value; a number's or boolean's JSON text, such as `3` or `true`), or
  // nullopt when the path is missing, null, or leads to an object or array. Kept positional rather
  // than keyed by path so that a million cached records do not each repeat the path strings.
  FieldValues extra_fields;
  // The object's JSON, byte for byte as the apiserver sent it, except that metadata.managedFields
  // is cut out when ScanOptions::strip_managed_fields is set.
  RecordString json;

  ObjectRecord() = default;
  // A copy owns each of its strings (it is not compact); moving keeps the storage.
  ObjectRecord(const ObjectRecord& other);
  ObjectRecord& operator=(const ObjectRecord& other);
  ObjectRecord(ObjectRecord&& other) noexcept;
  ObjectRecord& operator=(ObjectRecord&& other) noexcept;
  ~ObjectRecord();

  // A compact record: one allocation holding `json`, then whichever of the other strings do not
  // lie inside `json` (the scanner passes views into `json` for every value the JSON spells
  // without escapes, so normally none), then the label and field tables. `labels` must be sorted
  // by key with unique keys.
  static ObjectRecord Pack(std::string_view json, std::string_view namespace_name,
                           std::string_view name, std::string_view uid,
                           std::string_view resource_version, std::string_view deletion_timestamp,
                           const std::vector<LabelSet::View>& labels,
                           const std::vector<std::optional<std::string_view>>& extra_fields);
  // Makes this record compact (as Pack) unless it is already: the cache calls it once per
  // object it keeps. Records from the object scanner are already compact.
  void Compact();
  // Whether every string lives in the record's single storage block.
  bool compact() const;
  // Heap bytes the record holds besides its own object (its storage block and any owned
  // strings), as requested from the allocator: for benchmarks.
  std::size_t HeapBytes() const;

  friend bool operator==(const ObjectRecord& a, const ObjectRecord& b) {
    return a.namespace_name == b.namespace_name && a.name == b.name && a.uid == b.uid &&
           a.resource_version == b.resource_version &&
           a.deletion_timestamp == b.deletion_timestamp && a.labels == b.labels &&
           a.extra_fields == b.extra_fields && a.json == b.json;
  }
  friend bool operator!=(const ObjectRecord& a, const ObjectRecord& b) { return !(a == b); }

 private:
  // What the strings, labels and fields borrow from; null when none of them do.
  std::unique_ptr<char[]> storage_;
};

// A metav1.Status (k8s.io/apimachinery/pkg/apis/meta/v1/types.go). Fields absent from the body
// keep their defaults.
struct KubeStatus {
  // The HTTP status code the Status stands for: 410 for an expired resource version, 0 when the
  // body carries no code.
  int32_t code = 0;
  // "Success" or "Failure".
  std::string status;
  // Machine-readable cause in CamelCase, such as "Expired" (Kubernetes >= 1.18 for an expired
  // resource version), "Gone" (older servers), "NotFound", "Forbidden".
  std::string reason;
  // Human-readable description; what informerd shows its users.
  std::string message;

  friend bool operator==(const KubeStatus& a, const KubeStatus& b) {
    return a.code == b.code && a.status == b.status && a.reason == b.reason &&
           a.message == b.message;
  }
  friend bool operator!=(const KubeStatus& a, const KubeStatus& b) { return !(a == b); }
};

}  // namespace informerd::core
