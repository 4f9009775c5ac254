// ObjectFilter: what one reader of the cache wants to see: a namespace (or all), a label selector
// and a field selector, resolved against the fields the cache can answer.
//
// The RPC layer parses the selectors' text (label_selector.h, field_selector.h) and hands them to
// the cache (core/cache.*) with the request's namespace; the cache builds an ObjectFilter once
// per Subscribe or List. The store (core/store.*) reads it to choose an index; the fan-out matches
// every event against each subscriber's filter to turn MODIFIED into ADDED or DELETED when an
// object starts or stops matching. Immutable after Create, so any thread may match concurrently.
//
// Fields a selector may name: `metadata.name`, `metadata.namespace` and the extra field paths the
// daemon's configuration indexes (ObjectRecord::extra_fields, positional). The apiserver answers a
// field it does not support with an error rather than an empty result (each resource's
// field-label conversion func rejects unknown labels), and so does informerd: anything else is
// InvalidArgument at subscribe or list time, naming the field and listing the supported ones.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/field_selector.h"
#include "core/label_selector.h"
#include "core/object_record.h"

namespace informerd::core {

// Where a field selector term's value comes from.
enum class FieldSource : uint8_t { kName, kNamespace, kExtra };

// One field selector term, resolved.
struct FieldTerm {
  FieldSource source = FieldSource::kName;
  // For kExtra: the index into ObjectRecord::extra_fields (and the configured paths).
  uint32_t extra_index = 0;
  FieldOperator op = FieldOperator::kEquals;
  std::string value;
  // As written, for messages.
  std::string field;
};

class ObjectFilter {
 public:
  // Selects everything.
  ObjectFilter() = default;

  // `namespace_name` empty means all namespaces. `extra_field_paths` are the configured paths, in
  // the order of ObjectRecord::extra_fields. A field selector naming any other field is
  // InvalidArgument:
  //   field selector: field "spec.foo" is not supported (supported: metadata.name,
  //   metadata.namespace, spec.nodeName)
  static absl::StatusOr<ObjectFilter> Create(std::string namespace_name,
                                             LabelSelector label_selector,
                                             const FieldSelector& field_selector,
                                             const std::vector<std::string>& extra_field_paths);

  bool Matches(const ObjectRecord& object) const;

  const std::string& namespace_name() const { return namespace_name_; }
  const LabelSelector& label_selector() const { return label_selector_; }
  const std::vector<FieldTerm>& field_terms() const { return field_terms_; }
  bool selects_everything() const {
    return namespace_name_.empty() && label_selector_.empty() && field_terms_.empty();
  }

  // The value a field term compares with, for `object`: nullopt when an extra path is absent.
  static std::optional<std::string_view> FieldValue(const FieldTerm& term,
                                                    const ObjectRecord& object);

 private:
  std::string namespace_name_;
  LabelSelector label_selector_;
  std::vector<FieldTerm> field_terms_;
};

}  // namespace informerd::core
