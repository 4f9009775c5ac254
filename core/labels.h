// LabelSet: an object's metadata.labels, stored compactly for selector matching.
//
// The store builds one LabelSet per cached object when the object is applied (from the decoded
// metadata.labels map) and owns it for the object's lifetime; label selectors (label_selector.h)
// read it on every match. It is a sorted vector of (key, value) pairs rather than a map: objects
// carry a handful of labels, and one contiguous allocation per object is both smaller and faster
// to search than a node-based map. Immutable after construction, so any thread may read it
// concurrently. Keys and values are not validated here: they come from the apiserver, which has
// already validated them (k8s.io/apimachinery/pkg/apis/meta/v1/validation ValidateLabels).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace informerd::core {

class LabelSet {
 public:
  using Entry = std::pair<std::string, std::string>;

  LabelSet() = default;
  // Sorts by key. A key given more than once keeps its last value, as when a JSON object with a
  // repeated key is decoded into a Go map (encoding/json: the last occurrence wins).
  explicit LabelSet(std::vector<Entry> entries);
  // LabelSet{{"app", "web"}, {"tier", "db"}}, with the same sorting and "last wins" rule.
  LabelSet(std::initializer_list<Entry> entries) : LabelSet(std::vector<Entry>(entries)) {}

  // The value of `key`, or nullptr when the key is absent. A present key may have an empty value,
  // which is different from absence for the exists / does-not-exist selector operators.
  const std::string* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Entries in ascending key order, keys unique.
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  friend bool operator==(const LabelSet& a, const LabelSet& b) { return a.entries_ == b.entries_; }
  friend bool operator!=(const LabelSet& a, const LabelSet& b) { return !(a == b); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace informerd::core
