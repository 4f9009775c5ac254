// LabelSet: an object's metadata.labels, stored compactly for selector matching.
//
// The object scanner builds one LabelSet per object (from the decoded metadata.labels map) and
// the cached ObjectRecord owns it for the object's lifetime; label selectors (label_selector.h)
// read it on every match. It is a sorted table of (key, value) pairs in one block
// (PackedStrings, record_strings.h) rather than a map or a vector of std::string pairs: objects
// carry a handful of labels, and one contiguous block is both smaller and faster to search.
// Inside a cached record the block lives in the record's own storage and the keys and values
// are views into the object's JSON (object_record.h). Immutable after construction, so any
// thread may read it concurrently. Keys and values are not validated here: they come from the
// apiserver, which has already validated them (k8s.io/apimachinery/pkg/apis/meta/v1/validation
// ValidateLabels).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/record_strings.h"

namespace informerd::core {

// What LabelSet::Find returns: like a pointer to the value (compare with nullptr, dereference),
// but holding a view, since the value is not a std::string object anywhere.
class FoundLabel {
 public:
  FoundLabel() = default;
  explicit FoundLabel(std::string_view value) : value_(value), found_(true) {}
  explicit operator bool() const { return found_; }
  const std::string_view& operator*() const { return value_; }
  const std::string_view* operator->() const { return &value_; }
  friend bool operator==(const FoundLabel& a, std::nullptr_t) { return !a.found_; }
  friend bool operator!=(const FoundLabel& a, std::nullptr_t) { return a.found_; }

 private:
  std::string_view value_;
  bool found_ = false;
};

class LabelSet {
 public:
  using Entry = std::pair<std::string, std::string>;
  using View = std::pair<std::string_view, std::string_view>;

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = View;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = View;
    Iterator(const LabelSet* set, std::size_t i) : set_(set), i_(i) {}
    View operator*() const { return set_->at(i_); }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++i_;
      return old;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.i_ == b.i_; }
    friend bool operator!=(const Iterator& a, const Iterator& b) { return a.i_ != b.i_; }

   private:
    const LabelSet* set_;
    std::size_t i_;
  };

  LabelSet() = default;
  // Sorts by key. A key given more than once keeps its last value, as when a JSON object with a
  // repeated key is decoded into a Go map (encoding/json: the last occurrence wins).
  explicit LabelSet(std::vector<Entry> entries);
  // The same from views; the bytes are copied.
  static LabelSet FromViews(std::vector<View> entries);
  // The constructors' rule: sorts `entries` by key and drops all but the last of each key.
  static void Normalize(std::vector<View>& entries);
  // LabelSet{{"app", "web"}, {"tier", "db"}}, with the same sorting and "last wins" rule.
  LabelSet(std::initializer_list<Entry> entries) : LabelSet(std::vector<Entry>(entries)) {}

  // The value of `key`, or a null FoundLabel when the key is absent. A present key may have an
  // empty value, which is different from absence for the exists / does-not-exist selector
  // operators.
  FoundLabel Find(std::string_view key) const;
  bool Has(std::string_view key) const { return static_cast<bool>(Find(key)); }

  // Entry i in ascending key order, keys unique.
  View at(std::size_t i) const { return {packed_.at(2 * i), packed_.at(2 * i + 1)}; }
  // A copy of the entries, in ascending key order (for tests and diagnostics).
  std::vector<Entry> entries() const;
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, size()); }
  std::size_t size() const { return packed_.size() / 2; }
  bool empty() const { return packed_.size() == 0; }
  const PackedStrings& packed() const { return packed_; }

  friend bool operator==(const LabelSet& a, const LabelSet& b);
  friend bool operator!=(const LabelSet& a, const LabelSet& b) { return !(a == b); }

 private:
  friend class ObjectRecord;
  explicit LabelSet(PackedStrings packed) : packed_(std::move(packed)) {}

  // Keys at even positions, values at odd ones.
  PackedStrings packed_;
};

// ObjectRecord::extra_fields: one optional value per configured extra field path, packed like a
// LabelSet. Assignable from the std::vector<std::optional<std::string>> it replaces.
class FieldValues {
 public:
  FieldValues() = default;
  FieldValues(const std::vector<std::optional<std::string>>& values);  // NOLINT: implicit
  FieldValues(std::initializer_list<std::optional<std::string>> values)
      : FieldValues(std::vector<std::optional<std::string>>(values)) {}

  std::size_t size() const { return packed_.size(); }
  bool empty() const { return packed_.size() == 0; }
  std::optional<std::string_view> operator[](std::size_t i) const { return packed_.get(i); }
  std::vector<std::optional<std::string>> ToVector() const;
  const PackedStrings& packed() const { return packed_; }

  friend bool operator==(const FieldValues& a, const FieldValues& b);
  friend bool operator!=(const FieldValues& a, const FieldValues& b) { return !(a == b); }
  friend bool operator==(const FieldValues& a, const std::vector<std::optional<std::string>>& b) {
    return a.ToVector() == b;
  }

  // Iteration yields std::optional<std::string> copies (for tests and diagnostics; the hot paths
  // use operator[]).
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = std::optional<std::string>;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = value_type;
    Iterator(const FieldValues* values, std::size_t i) : values_(values), i_(i) {}
    value_type operator*() const {
      const std::optional<std::string_view> value = (*values_)[i_];
      return value ? value_type(std::string(*value)) : std::nullopt;
    }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.i_ == b.i_; }
    friend bool operator!=(const Iterator& a, const Iterator& b) { return a.i_ != b.i_; }

   private:
    const FieldValues* values_;
    std::size_t i_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, size()); }

 private:
  friend class ObjectRecord;
  explicit FieldValues(PackedStrings packed) : packed_(std::move(packed)) {}
  PackedStrings packed_;
};

}  // namespace informerd::core
