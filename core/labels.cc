#include "core/labels.h"

#include <algorithm>

namespace informerd::core {

LabelSet::LabelSet(std::vector<Entry> entries) : entries_(std::move(entries)) {
  // Stable, so that among equal keys the input order survives and "last wins" can be applied.
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.first < b.first; });
  std::size_t kept = 0;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const bool overridden = i + 1 < entries_.size() && entries_[i + 1].first == entries_[i].first;
    if (overridden) continue;
    if (kept != i) entries_[kept] = std::move(entries_[i]);
    ++kept;
  }
  entries_.resize(kept);
}

const std::string* LabelSet::Find(std::string_view key) const {
  const auto it = std::lower_bound(
      entries_.begin(), entries_.end(), key,
      [](const Entry& entry, std::string_view wanted) { return entry.first < wanted; });
  if (it == entries_.end() || it->first != key) return nullptr;
  return &it->second;
}

}  // namespace informerd::core
