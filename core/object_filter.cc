#include "core/object_filter.h"

#include <utility>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

constexpr std::string_view kNameField = "metadata.name";
constexpr std::string_view kNamespaceField = "metadata.namespace";

std::string SupportedFields(const std::vector<std::string>& extra_field_paths) {
  std::string text = fmt::format("{}, {}", kNameField, kNamespaceField);
  for (const std::string& path : extra_field_paths) text += fmt::format(", {}", path);
  return text;
}

}  // namespace

absl::StatusOr<ObjectFilter> ObjectFilter::Create(
    std::string namespace_name, LabelSelector label_selector, const FieldSelector& field_selector,
    const std::vector<std::string>& extra_field_paths) {
  ObjectFilter filter;
  filter.namespace_name_ = std::move(namespace_name);
  filter.label_selector_ = std::move(label_selector);
  for (const FieldRequirement& requirement : field_selector.requirements()) {
    FieldTerm term;
    term.op = requirement.op();
    term.value = requirement.value();
    term.field = requirement.field();
    if (requirement.field() == kNameField) {
      term.source = FieldSource::kName;
    } else if (requirement.field() == kNamespaceField) {
      term.source = FieldSource::kNamespace;
    } else {
      bool found = false;
      for (std::size_t i = 0; i < extra_field_paths.size(); ++i) {
        if (extra_field_paths[i] == requirement.field()) {
          term.source = FieldSource::kExtra;
          term.extra_index = static_cast<uint32_t>(i);
          found = true;
          break;
        }
      }
      if (!found) {
        return absl::InvalidArgumentError(
            fmt::format("field selector: field \"{}\" is not supported (supported: {})",
                        requirement.field(), SupportedFields(extra_field_paths)));
      }
    }
    filter.field_terms_.push_back(std::move(term));
  }
  return filter;
}

std::optional<std::string_view> ObjectFilter::FieldValue(const FieldTerm& term,
                                                         const ObjectRecord& object) {
  switch (term.source) {
    case FieldSource::kName:
      return std::string_view(object.name);
    case FieldSource::kNamespace:
      return std::string_view(object.namespace_name);
    case FieldSource::kExtra:
      // A record scanned with fewer paths than configured lacks the field, as a missing path does.
      if (term.extra_index < object.extra_fields.size()) {
        return object.extra_fields[term.extra_index];
      }
      return std::nullopt;
  }
  return std::nullopt;
}

bool ObjectFilter::Matches(const ObjectRecord& object) const {
  if (!namespace_name_.empty() && object.namespace_name != namespace_name_) return false;
  for (const FieldTerm& term : field_terms_) {
    // A missing field compares as "", as Kubernetes' fields.Set.Get returns "" (and as
    // FieldRequirement::Matches does).
    const bool equal = FieldValue(term, object).value_or(std::string_view()) == term.value;
    if (equal != (term.op == FieldOperator::kEquals)) return false;
  }
  return label_selector_.Matches(object.labels);
}

}  // namespace informerd::core
