// FieldSelector: a parsed kubectl field selector (`--field-selector metadata.name=web`).
//
// Like label selectors, field selectors arrive as text in the daemon's config (`field_selector`,
// also sent upstream) and in subscribers' requests; they are parsed once, here, and then matched
// by the store (on list) and the fan-out (on every event) against fields extracted from each
// object. The selector does not know how to read an object: the caller passes a getter that maps
// a field path ("metadata.namespace", "spec.nodeName") to the object's value, so matching neither
// allocates nor copies. Whoever receives the request owns the selector; it is immutable after
// Parse, so any thread may match with it concurrently.
//
// The accepted language and its meaning are exactly those of
// k8s.io/apimachinery/pkg/fields/selector.go (ParseSelector); only the error texts are our own.
// Like that parser, this one checks syntax only: which fields a resource supports is decided by
// whoever supplies the values (the apiserver answers an unsupported field with an error).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace informerd::core {

enum class FieldOperator {
  kEquals,     // field=value and field==value (Kubernetes makes no difference between them)
  kNotEquals,  // field!=value
};

// One comma-separated term. Only FieldSelector::Parse creates them.
class FieldRequirement {
 public:
  // As written, left of the operator: Kubernetes neither validates nor unescapes it.
  const std::string& field() const { return field_; }
  FieldOperator op() const { return op_; }
  // Unescaped: the literal value to compare with.
  const std::string& value() const { return value_; }

  // `actual` is the object's value for field(), or nullopt when the object has no such field;
  // a missing field compares as the empty string, as Kubernetes' Fields.Get returns "".
  bool Matches(std::optional<std::string_view> actual) const {
    const bool equal = actual.value_or(std::string_view()) == value_;
    return op_ == FieldOperator::kEquals ? equal : !equal;
  }

  // `field=value` or `field!=value`, the value escaped again (Kubernetes' EscapeValue).
  std::string ToString() const;

 private:
  friend class FieldSelector;
  FieldRequirement(std::string field, FieldOperator op, std::string value)
      : field_(std::move(field)), op_(op), value_(std::move(value)) {}

  std::string field_;
  FieldOperator op_;
  std::string value_;
};

class FieldSelector {
 public:
  // Selects everything.
  FieldSelector() = default;

  // Parses kubectl syntax: terms `field=value`, `field==value` or `field!=value` separated by
  // ','; in values, `\\`, `\,` and `\=` stand for '\', ',' and '='. Empty terms are skipped, so
  // "" selects everything. Errors are absl::InvalidArgumentError naming the term or escape
  // sequence and its byte position.
  static absl::StatusOr<FieldSelector> Parse(std::string_view text);

  // How many requirements `text` holds, counted in one pass without parsing or allocating: its
  // non-empty terms (split at unescaped commas). For a selector Parse accepts this is
  // requirements().size(), unless a term is a bare `=` or `!=` (which Parse drops); for any other
  // it bounds the requirements Parse would build before failing. A server checks it against its
  // limit before Parse, so that a selector of thousands of terms costs one scan to refuse.
  static std::size_t CountRequirements(std::string_view text);

  // `get(field)` returns the object's value for a field path as std::optional<std::string_view>
  // (nullopt: the object has no such field); std::optional<std::string> works too. True when
  // every requirement matches; a template so that a lambda is called directly, without a
  // std::function or any allocation.
  template <typename FieldGetter>
  bool Matches(const FieldGetter& get) const {
    for (const FieldRequirement& requirement : requirements_) {
      // get()'s result is passed straight on, so an owned string it returns outlives the compare.
      if (!requirement.Matches(get(std::string_view(requirement.field())))) return false;
    }
    return true;
  }

  bool empty() const { return requirements_.empty(); }
  // In the order Kubernetes keeps them: sorted by the terms' text as written.
  const std::vector<FieldRequirement>& requirements() const { return requirements_; }
  // Canonical text, as Kubernetes' String(): terms in requirements() order joined by ',', `==`
  // written as `=`, values escaped. Parse(ToString()) selects the same objects (the order may
  // change once, since the order follows the terms as written: `a==x,a=b` prints `a=x,a=b`).
  std::string ToString() const;

 private:
  explicit FieldSelector(std::vector<FieldRequirement> requirements)
      : requirements_(std::move(requirements)) {}

  std::vector<FieldRequirement> requirements_;
};

}  // namespace informerd::core
