// LabelSelector: a parsed kubectl label selector (`-l app=web,tier!=db,env in (prod,qa)`).
//
// Selectors arrive as text in two places: the daemon's config (`label_selector`, also sent
// upstream to the apiserver) and each subscriber's watch/list request. Both are parsed once, here,
// into a LabelSelector that the store and the fan-out then match against every object's LabelSet
// (labels.h): the store on list, the fan-out on every event to decide ADDED / MODIFIED / DELETED
// for a filtered subscriber. Whoever receives the request owns the selector; it is immutable after
// Parse, so any thread may match with it concurrently, and matching never allocates.
//
// The accepted language is exactly that of k8s.io/apimachinery/pkg/labels/selector.go (Parse):
// what the apiserver accepts is accepted here and what it rejects is rejected, with the same
// parsed meaning, so a selector never behaves differently in informerd than against the API.
// Only the error texts are our own: they name the offending token and its byte position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/labels.h"

namespace informerd::core {

// selection.Operator in Kubernetes. `=` and `==` match identically; both are kept so that
// ToString reproduces what the user wrote, as Kubernetes' Requirement.String does.
enum class LabelOperator {
  kEquals,        // key=value
  kDoubleEquals,  // key==value
  kNotEquals,     // key!=value   (also true when the key is absent)
  kIn,            // key in (v1,v2)
  kNotIn,         // key notin (v1,v2)   (also true when the key is absent)
  kExists,        // key
  kDoesNotExist,  // !key
  kGreaterThan,   // key>42   (integer comparison; false when the label is not an integer)
  kLessThan,      // key<42
};

// One comma-separated term of a selector. Only LabelSelector::Parse creates them, so every
// requirement is valid: a well-formed key, valid values, an integer bound for > and <.
class LabelRequirement {
 public:
  const std::string& key() const { return key_; }
  LabelOperator op() const { return op_; }
  // Sorted and without duplicates (Kubernetes keeps them in a set). Exactly one value for the
  // =, ==, !=, > and < operators; at least one for in / notin (`in ()` means the empty value);
  // none for exists / does-not-exist.
  const std::vector<std::string>& values() const { return values_; }

  // The one value a matching object's label must have, for `k=v`, `k==v` and `k in (v)`; what a
  // store needs to answer the requirement from a (key, value) index instead of scanning. As
  // Kubernetes' RequiresExactMatch.
  std::optional<std::string_view> ExactValue() const;

  bool Matches(const LabelSet& labels) const;
  // As Kubernetes prints it: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
  // `k>5`, `k<5`.
  std::string ToString() const;

 private:
  friend class LabelSelectorParser;
  LabelRequirement(std::string key, LabelOperator op, std::vector<std::string> values,
                   std::int64_t bound)
      : key_(std::move(key)), op_(op), values_(std::move(values)), bound_(bound) {}

  std::string key_;
  LabelOperator op_;
  std::vector<std::string> values_;
  // The integer form of values_[0] for > and <, parsed once here rather than on every match.
  std::int64_t bound_;
};

class LabelSelector {
 public:
  // Selects everything.
  LabelSelector() = default;

  // Parses kubectl syntax. The empty (or all-whitespace) string selects everything. Errors are
  // absl::InvalidArgumentError, e.g.
  //   label selector "a in (b": expected ',' or ')' after "b", found end of string at position 7
  static absl::StatusOr<LabelSelector> Parse(std::string_view text);

  // How many requirements `text` holds, counted in one pass without parsing or allocating: the
  // commas outside parentheses, plus one, for a selector that is not blank (0 for a blank one).
  // For a selector Parse accepts this is exactly requirements().size(); for any other it bounds
  // the requirements Parse would build before failing. A server checks it against its limit
  // before Parse, so that a selector of thousands of clauses costs one scan to refuse.
  static std::size_t CountRequirements(std::string_view text);

  // True when every requirement matches (an AND); true for the empty selector.
  bool Matches(const LabelSet& labels) const;
  bool empty() const { return requirements_.empty(); }
  // Sorted by key (stable: requirements on the same key keep their written order).
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }
  // Canonical text: requirements sorted by key, values sorted, joined by ','; no spaces except
  // around in / notin. Parse(ToString()) gives an equal selector. "" for the empty selector.
  std::string ToString() const;

 private:
  friend class LabelSelectorParser;
  explicit LabelSelector(std::vector<LabelRequirement> requirements)
      : requirements_(std::move(requirements)) {}

  std::vector<LabelRequirement> requirements_;
};

}  // namespace informerd::core
