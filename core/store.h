// Store: the current objects of one informer, keyed by namespace/name, with the indexes that let
// List and Subscribe answer selectors without scanning everything. client-go's ThreadSafeStore
// plus Indexer; the apiserver's watch cache keeps the same thing in its `store`.
//
// Data flow: the cache (core/cache.*) applies each ObjectRecord the reflector delivers (live
// events, relist pages) with Put/Remove, and reads it for List, Get and the initial snapshot of a
// new subscriber. The Store is owned by the Cache and is NOT synchronized: the Cache guards it
// with its own lock, the one that also orders event application and subscriber registration
// (so a new subscriber's snapshot ends exactly where its live events begin: see
// docs/kubernetes-semantics.md, "The watch cache's serving rules"). Const methods may run
// concurrently with each other (under the Cache's shared lock); mutations need the exclusive
// lock.
//
// Memory (README: the cache should cost little more than the JSON it holds): an object is held
// once, as std::shared_ptr<const ObjectRecord>, shared with the events and snapshots that carry
// it; nothing is copied out of it. The primary map orders entries by the record's own namespace
// and name strings (no key copy); entries have stable addresses, so the indexes hold 8-byte
// entry pointers in B-trees, and an update that keeps an object's labels and indexed fields does
// not touch any index. Index keys (a label key and value, an indexed field's value) exist once
// per distinct value, not per object. Namespaces need no index of their own: the primary order
// (namespace, name) makes a namespace a contiguous range.
//
// Relists (ReflectorSink::BeginList/EndList) need "which objects were not in the new list"
// without a second copy of the resource or a set of seen keys: each entry carries the stamp of
// the last list that delivered it, and RemoveUnstamped sweeps the rest.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_set.h"
#include "core/object_filter.h"
#include "core/object_record.h"

namespace informerd::core {

// A position in the store's order (namespace, then name): where a page of a paged List ends
// and the next one starts.
struct ObjectKey {
  std::string namespace_name;
  std::string name;
};

class Store {
 public:
  // `extra_field_paths` as in ScanOptions: ObjectRecord::extra_fields[i] holds the value at
  // extra_field_paths[i]. Each path is indexed.
  explicit Store(std::vector<std::string> extra_field_paths);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::vector<std::string>& extra_field_paths() const { return extra_field_paths_; }
  std::size_t size() const { return entries_.size(); }

  // The object, or nullptr.
  std::shared_ptr<const ObjectRecord> Get(std::string_view namespace_name,
                                          std::string_view name) const;

  // Inserts `record`, or replaces the object with the same namespace and name, and stamps its
  // entry with `stamp`. Returns the replaced object, or nullptr when it is new.
  std::shared_ptr<const ObjectRecord> Put(std::shared_ptr<const ObjectRecord> record,
                                          uint64_t stamp);
  // Stamps an existing entry without changing it; false when there is no such object.
  bool Stamp(std::string_view namespace_name, std::string_view name, uint64_t stamp);
  // Removes the object; returns it, or nullptr when there was none.
  std::shared_ptr<const ObjectRecord> Remove(std::string_view namespace_name,
                                             std::string_view name);
  // Removes every object whose stamp is not `stamp`; returns them ordered by namespace, name.
  std::vector<std::shared_ptr<const ObjectRecord>> RemoveUnstamped(uint64_t stamp);

  // The objects `filter` selects, ordered by namespace then name. Uses the most selective of:
  // a point lookup (metadata.name= with a namespace), the namespace range (request namespace or
  // metadata.namespace=), one lookup per namespace (metadata.name= alone), the label index
  // (k=v, k==v, k in (v)) and the indexed extra fields (path=value). Scans everything only when
  // none applies. `filter` must have been created with this store's extra_field_paths().
  // With `after`, only the objects that come after that key; with `max` above 0, the first `max`
  // of them (a page): the scans and the namespace range start at `after` and stop at `max`.
  std::vector<std::shared_ptr<const ObjectRecord>> List(const ObjectFilter& filter,
                                                        const ObjectKey* after = nullptr,
                                                        std::size_t max = 0) const;

  // How many entries List has tested against a filter since construction: lets tests prove
  // that an index was used (a full scan examines every entry).
  uint64_t entries_examined() const { return examined_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    // Mutable: replacing the record keeps namespace and name, so the set's order holds.
    mutable std::shared_ptr<const ObjectRecord> record;
    mutable uint64_t stamp = 0;
  };
  struct KeyView {
    std::string_view namespace_name;
    std::string_view name;
  };
  struct EntryLess {
    using is_transparent = void;
    static KeyView Key(const Entry& entry) {
      return {entry.record->namespace_name, entry.record->name};
    }
    static KeyView Key(const KeyView& key) { return key; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      const KeyView ka = Key(a);
      const KeyView kb = Key(b);
      const int c = ka.namespace_name.compare(kb.namespace_name);
      return c != 0 ? c < 0 : ka.name < kb.name;
    }
  };
  // Ordered by address: membership is all an index answers; List sorts what it returns.
  using Posting = absl::btree_set<const Entry*>;
  using ValueIndex = std::map<std::string, Posting, std::less<>>;

  void AddLabels(const Entry* entry, const LabelSet& labels);
  void RemoveLabels(const Entry* entry, const LabelSet& labels);
  void AddField(std::size_t index, const Entry* entry, const ObjectRecord& record);
  void RemoveField(std::size_t index, const Entry* entry, const ObjectRecord& record);
  void AddNamespace(std::string_view namespace_name);
  void RemoveNamespace(std::string_view namespace_name);
  void Unindex(const Entry& entry);
  const Posting* FindPosting(const ValueIndex& index, std::string_view value) const;

  std::vector<std::string> extra_field_paths_;
  std::set<Entry, EntryLess> entries_;
  // Objects per namespace ("" for cluster-scoped): sizes the namespace range for the planner and
  // lists the namespaces for a metadata.name= lookup across all of them.
  std::map<std::string, std::size_t, std::less<>> namespace_counts_;
  // label key → label value → entries.
  std::map<std::string, ValueIndex, std::less<>> label_index_;
  // One per extra field path: value → entries. An absent value is indexed as "", which is what
  // a field selector compares it as.
  std::vector<ValueIndex> field_indexes_;
  mutable std::atomic<uint64_t> examined_{0};
};

}  // namespace informerd::core
