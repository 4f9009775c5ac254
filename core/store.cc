#include "core/store.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace informerd::core {
namespace {

std::string_view FieldKey(const ObjectRecord& record, std::size_t index) {
  if (index < record.extra_fields.size()) {
    if (const std::optional<std::string_view> value = record.extra_fields[index]) return *value;
  }
  return std::string_view();
}

bool ByKey(const std::shared_ptr<const ObjectRecord>& a,
           const std::shared_ptr<const ObjectRecord>& b) {
  const int c = a->namespace_name.compare(b->namespace_name);
  return c != 0 ? c < 0 : a->name < b->name;
}

// `record` comes after `key` in the store's order.
bool After(const ObjectRecord& record, const ObjectKey& key) {
  const int c = record.namespace_name.compare(key.namespace_name);
  return c != 0 ? c > 0 : record.name.view() > key.name;
}

}  // namespace

Store::Store(std::vector<std::string> extra_field_paths)
    : extra_field_paths_(std::move(extra_field_paths)), field_indexes_(extra_field_paths_.size()) {}

std::shared_ptr<const ObjectRecord> Store::Get(std::string_view namespace_name,
                                               std::string_view name) const {
  const auto it = entries_.find(KeyView{namespace_name, name});
  return it == entries_.end() ? nullptr : it->record;
}

std::shared_ptr<const ObjectRecord> Store::Put(std::shared_ptr<const ObjectRecord> record,
                                               uint64_t stamp) {
  const auto it = entries_.find(KeyView{record->namespace_name, record->name});
  if (it == entries_.end()) {
    const auto inserted = entries_.insert(Entry{std::move(record), stamp}).first;
    const Entry* entry = &*inserted;
    const ObjectRecord& stored = *entry->record;
    AddNamespace(stored.namespace_name);
    AddLabels(entry, stored.labels);
    for (std::size_t i = 0; i < field_indexes_.size(); ++i) AddField(i, entry, stored);
    return nullptr;
  }
  const Entry* entry = &*it;
  std::shared_ptr<const ObjectRecord> old = it->record;
  // Most updates (status, annotations) keep labels and indexed fields: then no index changes.
  if (old->labels != record->labels) {
    RemoveLabels(entry, old->labels);
    AddLabels(entry, record->labels);
  }
  for (std::size_t i = 0; i < field_indexes_.size(); ++i) {
    if (FieldKey(*old, i) != FieldKey(*record, i)) {
      RemoveField(i, entry, *old);
      AddField(i, entry, *record);
    }
  }
  it->record = std::move(record);
  it->stamp = stamp;
  return old;
}

bool Store::Stamp(std::string_view namespace_name, std::string_view name, uint64_t stamp) {
  const auto it = entries_.find(KeyView{namespace_name, name});
  if (it == entries_.end()) return false;
  it->stamp = stamp;
  return true;
}

void Store::Unindex(const Entry& entry) {
  const ObjectRecord& record = *entry.record;
  RemoveLabels(&entry, record.labels);
  for (std::size_t i = 0; i < field_indexes_.size(); ++i) RemoveField(i, &entry, record);
  RemoveNamespace(record.namespace_name);
}

std::shared_ptr<const ObjectRecord> Store::Remove(std::string_view namespace_name,
                                                  std::string_view name) {
  const auto it = entries_.find(KeyView{namespace_name, name});
  if (it == entries_.end()) return nullptr;
  Unindex(*it);
  std::shared_ptr<const ObjectRecord> old = std::move(it->record);
  // The comparator reads the record: erase by iterator, which compares nothing.
  entries_.erase(it);
  return old;
}

std::vector<std::shared_ptr<const ObjectRecord>> Store::RemoveUnstamped(uint64_t stamp) {
  std::vector<std::shared_ptr<const ObjectRecord>> removed;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->stamp == stamp) {
      ++it;
      continue;
    }
    Unindex(*it);
    removed.push_back(std::move(it->record));
    it = entries_.erase(it);
  }
  return removed;
}

void Store::AddLabels(const Entry* entry, const LabelSet& labels) {
  for (const auto& [key, value] : labels) {
    auto by_key = label_index_.find(key);
    if (by_key == label_index_.end()) {
      by_key = label_index_.emplace(std::string(key), ValueIndex()).first;
    }
    auto by_value = by_key->second.find(value);
    if (by_value == by_key->second.end()) {
      by_value = by_key->second.emplace(std::string(value), Posting()).first;
    }
    by_value->second.insert(entry);
  }
}

void Store::RemoveLabels(const Entry* entry, const LabelSet& labels) {
  for (const auto& [key, value] : labels) {
    const auto by_key = label_index_.find(key);
    if (by_key == label_index_.end()) continue;
    const auto by_value = by_key->second.find(value);
    if (by_value == by_key->second.end()) continue;
    by_value->second.erase(entry);
    if (by_value->second.empty()) {
      by_key->second.erase(by_value);
      if (by_key->second.empty()) label_index_.erase(by_key);
    }
  }
}

void Store::AddField(std::size_t index, const Entry* entry, const ObjectRecord& record) {
  ValueIndex& values = field_indexes_[index];
  const std::string_view key = FieldKey(record, index);
  auto it = values.find(key);
  if (it == values.end()) it = values.emplace(std::string(key), Posting()).first;
  it->second.insert(entry);
}

void Store::RemoveField(std::size_t index, const Entry* entry, const ObjectRecord& record) {
  ValueIndex& values = field_indexes_[index];
  const auto it = values.find(FieldKey(record, index));
  if (it == values.end()) return;
  it->second.erase(entry);
  if (it->second.empty()) values.erase(it);
}

void Store::AddNamespace(std::string_view namespace_name) {
  auto it = namespace_counts_.find(namespace_name);
  if (it == namespace_counts_.end()) {
    it = namespace_counts_.emplace(std::string(namespace_name), 0).first;
  }
  ++it->second;
}

void Store::RemoveNamespace(std::string_view namespace_name) {
  const auto it = namespace_counts_.find(namespace_name);
  if (it == namespace_counts_.end()) return;
  if (--it->second == 0) namespace_counts_.erase(it);
}

const Store::Posting* Store::FindPosting(const ValueIndex& index, std::string_view value) const {
  const auto it = index.find(value);
  return it == index.end() ? nullptr : &it->second;
}

std::vector<std::shared_ptr<const ObjectRecord>> Store::List(const ObjectFilter& filter,
                                                             const ObjectKey* after,
                                                             std::size_t max) const {
  // Equality terms that pin the namespace or the name. The request's namespace and a
  // metadata.namespace= term may disagree; then nothing matches, and the filter says so below.
  std::optional<std::string_view> namespace_name;
  std::optional<std::string_view> name;
  if (!filter.namespace_name().empty()) namespace_name = filter.namespace_name();
  for (const FieldTerm& term : filter.field_terms()) {
    if (term.op != FieldOperator::kEquals) continue;
    if (term.source == FieldSource::kNamespace && !namespace_name) namespace_name = term.value;
    if (term.source == FieldSource::kName && !name) name = term.value;
  }

  // The plan: the candidate set with the fewest entries.
  enum class Plan { kScan, kPoint, kNamespace, kNameEverywhere, kPosting };
  Plan plan = Plan::kScan;
  std::size_t cost = entries_.size();
  const Posting* posting = nullptr;
  const auto consider = [&](Plan candidate, std::size_t candidate_cost,
                            const Posting* candidate_posting) {
    if (candidate_cost < cost || (candidate_cost == cost && plan == Plan::kScan)) {
      plan = candidate;
      cost = candidate_cost;
      posting = candidate_posting;
    }
  };
  if (namespace_name && name) consider(Plan::kPoint, 1, nullptr);
  if (namespace_name) {
    const auto it = namespace_counts_.find(*namespace_name);
    consider(Plan::kNamespace, it == namespace_counts_.end() ? 0 : it->second, nullptr);
  }
  if (name && !namespace_name) consider(Plan::kNameEverywhere, namespace_counts_.size(), nullptr);
  for (const LabelRequirement& requirement : filter.label_selector().requirements()) {
    const std::optional<std::string_view> value = requirement.ExactValue();
    if (!value) continue;
    const Posting* candidate = nullptr;
    if (const auto by_key = label_index_.find(requirement.key()); by_key != label_index_.end()) {
      candidate = FindPosting(by_key->second, *value);
    }
    consider(Plan::kPosting, candidate == nullptr ? 0 : candidate->size(), candidate);
  }
  for (const FieldTerm& term : filter.field_terms()) {
    if (term.op != FieldOperator::kEquals || term.source != FieldSource::kExtra) continue;
    const Posting* candidate = FindPosting(field_indexes_[term.extra_index], term.value);
    consider(Plan::kPosting, candidate == nullptr ? 0 : candidate->size(), candidate);
  }

  std::vector<std::shared_ptr<const ObjectRecord>> out;
  uint64_t examined = 0;
  const auto test = [&](const std::shared_ptr<const ObjectRecord>& record) {
    if (after != nullptr && !After(*record, *after)) return;
    ++examined;
    if (filter.Matches(*record)) out.push_back(record);
  };
  // The ordered plans stop once they have `max`.
  const auto full = [&] { return max != 0 && out.size() >= max; };
  // The first entry after `after` (the first entry when there is none).
  const auto first_after = [&] {
    return after == nullptr ? entries_.begin()
                            : entries_.upper_bound(KeyView{after->namespace_name, after->name});
  };
  if (cost == 0) {
    // An index says nothing can match.
  } else if (plan == Plan::kPoint) {
    const auto it = entries_.find(KeyView{*namespace_name, *name});
    if (it != entries_.end()) test(it->record);
  } else if (plan == Plan::kNamespace) {
    const KeyView start{*namespace_name, std::string_view()};
    auto it = entries_.lower_bound(start);
    if (after != nullptr && !EntryLess()(KeyView{after->namespace_name, after->name}, start)) {
      it = first_after();
    }
    for (; it != entries_.end() && it->record->namespace_name == *namespace_name && !full(); ++it) {
      test(it->record);
    }
  } else if (plan == Plan::kNameEverywhere) {
    // In namespace order, so the result is ordered without a sort.
    for (const auto& [each_namespace, count] : namespace_counts_) {
      if (full()) break;
      const auto it = entries_.find(KeyView{each_namespace, *name});
      if (it != entries_.end()) test(it->record);
    }
  } else if (plan == Plan::kPosting) {
    for (const Entry* entry : *posting) test(entry->record);
    if (max != 0 && out.size() > max) {
      std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(max), out.end(),
                        ByKey);
      out.resize(max);
    } else {
      std::sort(out.begin(), out.end(), ByKey);
    }
  } else {
    for (auto it = first_after(); it != entries_.end() && !full(); ++it) test(it->record);
  }
  examined_.fetch_add(examined, std::memory_order_relaxed);
  return out;
}

}  // namespace informerd::core
