// ObjectRecord: one Kubernetes object as the decoding layer hands it to the informer engine: the
// object's JSON bytes plus the few metadata fields the engine keys, orders, indexes and filters on.
//
// Data flow: apiserver HTTP body → ListDecoder / WatchEventDecoder → ObjectScanner → ObjectRecord
// → engine (store, indexes, fan-out). The decoders build each record in one SAX pass over the
// body and move it to the caller, who owns it from then on; the fields are extracted at decode
// time so that nothing downstream ever parses the JSON again (STYLE.md habit 7: parse once).
// A plain value type: no thread affinity, no invariants beyond those stated on the fields.
//
// KubeStatus is the decoded form of a metav1.Status, which the apiserver sends both as the body
// of an error response and as the object of a watch ERROR event; it lives here because the list
// and the watch decoders both produce it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/labels.h"

namespace informerd::core {

struct ObjectRecord {
  // metadata.namespace; empty for cluster-scoped objects.
  std::string namespace_name;
  // metadata.name.
  std::string name;
  // metadata.uid. A changed UID under the same namespace/name means delete-and-recreate.
  std::string uid;
  // metadata.resourceVersion, kept as text: the API calls it opaque (REFERENCE.md explains when
  // the engine may still compare it as a number).
  std::string resource_version;
  // metadata.deletionTimestamp as sent (RFC 3339); empty when the object is not being deleted.
  std::string deletion_timestamp;
  // metadata.labels, sorted by key.
  LabelSet labels;
  // One entry per ScanOptions::extra_field_paths, in the same order: the value at that path as
  // text (a string's decoded value; a number's or boolean's JSON text, such as `3` or `true`), or
  // nullopt when the path is missing, null, or leads to an object or array. Kept positional rather
  // than keyed by path so that a million cached records do not each repeat the path strings.
  std::vector<std::optional<std::string>> extra_fields;
  // The object's JSON, byte for byte as the apiserver sent it, except that metadata.managedFields
  // is cut out when ScanOptions::strip_managed_fields is set.
  std::string json;

  friend bool operator==(const ObjectRecord& a, const ObjectRecord& b) {
    return a.namespace_name == b.namespace_name && a.name == b.name && a.uid == b.uid &&
           a.resource_version == b.resource_version &&
           a.deletion_timestamp == b.deletion_timestamp && a.labels == b.labels &&
           a.extra_fields == b.extra_fields && a.json == b.json;
  }
  friend bool operator!=(const ObjectRecord& a, const ObjectRecord& b) { return !(a == b); }
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
