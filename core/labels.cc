#include "core/labels.h"

#include <algorithm>

namespace informerd::core {

void LabelSet::Normalize(std::vector<View>& entries) {
  // Stable, so that among equal keys the input order survives and "last wins" can be applied.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const View& a, const View& b) { return a.first < b.first; });
  std::size_t kept = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const bool overridden = i + 1 < entries.size() && entries[i + 1].first == entries[i].first;
    if (overridden) continue;
    entries[kept++] = entries[i];
  }
  entries.resize(kept);
}

LabelSet LabelSet::FromViews(std::vector<View> entries) {
  Normalize(entries);
  return LabelSet(PackedStrings::Build(2 * entries.size(), [&](std::size_t i) {
    return std::optional<std::string_view>(i % 2 == 0 ? entries[i / 2].first
                                                      : entries[i / 2].second);
  }));
}

LabelSet::LabelSet(std::vector<Entry> entries) {
  std::vector<View> views;
  views.reserve(entries.size());
  for (const Entry& entry : entries) views.emplace_back(entry.first, entry.second);
  *this = FromViews(std::move(views));
}

FoundLabel LabelSet::Find(std::string_view key) const {
  std::size_t low = 0;
  std::size_t high = size();
  while (low < high) {
    const std::size_t mid = low + (high - low) / 2;
    if (packed_.at(2 * mid) < key) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  if (low == size() || packed_.at(2 * low) != key) return FoundLabel();
  return FoundLabel(packed_.at(2 * low + 1));
}

std::vector<LabelSet::Entry> LabelSet::entries() const {
  std::vector<Entry> out;
  out.reserve(size());
  for (const auto& [key, value] : *this) out.emplace_back(std::string(key), std::string(value));
  return out;
}

bool operator==(const LabelSet& a, const LabelSet& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a.at(i) != b.at(i)) return false;
  }
  return true;
}

FieldValues::FieldValues(const std::vector<std::optional<std::string>>& values)
    : packed_(PackedStrings::Build(values.size(), [&](std::size_t i) {
        return values[i] ? std::optional<std::string_view>(*values[i]) : std::nullopt;
      })) {}

std::vector<std::optional<std::string>> FieldValues::ToVector() const {
  std::vector<std::optional<std::string>> out;
  out.reserve(size());
  for (std::size_t i = 0; i < size(); ++i) {
    const std::optional<std::string_view> value = (*this)[i];
    out.push_back(value ? std::optional<std::string>(std::string(*value)) : std::nullopt);
  }
  return out;
}

bool operator==(const FieldValues& a, const FieldValues& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace informerd::core
