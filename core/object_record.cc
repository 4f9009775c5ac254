#include "core/object_record.h"

#include <cstring>
#include <utility>

namespace informerd::core {
namespace {

bool Inside(std::string_view part, std::string_view whole) {
  return !part.empty() && part.data() >= whole.data() &&
         part.data() + part.size() <= whole.data() + whole.size();
}

std::size_t AlignUp4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// The storage block's size for these contents, and the size of its character part.
struct Layout {
  std::size_t chars = 0;  // JSON + copied strings
  std::size_t total = 0;  // + padding + tables
};

template <typename ForEachString>
Layout ComputeLayout(std::string_view json, std::size_t label_count, std::size_t field_count,
                     const ForEachString& for_each_string) {
  Layout layout;
  layout.chars = json.size();
  for_each_string([&](std::string_view text) {
    if (!Inside(text, json)) layout.chars += text.size();
  });
  layout.total = AlignUp4(layout.chars) + (4 * label_count + 2 * field_count) * sizeof(int32_t);
  return layout;
}

}  // namespace

ObjectRecord::ObjectRecord(const ObjectRecord& other)
    : namespace_name(other.namespace_name),
      name(other.name),
      uid(other.uid),
      resource_version(other.resource_version),
      deletion_timestamp(other.deletion_timestamp),
      labels(other.labels),
      extra_fields(other.extra_fields),
      json(other.json) {}

ObjectRecord& ObjectRecord::operator=(const ObjectRecord& other) {
  if (this != &other) *this = ObjectRecord(other);
  return *this;
}

ObjectRecord::ObjectRecord(ObjectRecord&& other) noexcept { *this = std::move(other); }

ObjectRecord& ObjectRecord::operator=(ObjectRecord&& other) noexcept {
  if (this == &other) return *this;
  // The members first (they may borrow from storage_), then the storage.
  namespace_name.Release();
  name.Release();
  uid.Release();
  resource_version.Release();
  deletion_timestamp.Release();
  labels.packed_.Release();
  extra_fields.packed_.Release();
  json.Release();
  storage_ = std::move(other.storage_);
  namespace_name.StealFrom(other.namespace_name);
  name.StealFrom(other.name);
  uid.StealFrom(other.uid);
  resource_version.StealFrom(other.resource_version);
  deletion_timestamp.StealFrom(other.deletion_timestamp);
  labels.packed_.StealFrom(other.labels.packed_);
  extra_fields.packed_.StealFrom(other.extra_fields.packed_);
  json.StealFrom(other.json);
  return *this;
}

ObjectRecord::~ObjectRecord() = default;

ObjectRecord ObjectRecord::Pack(std::string_view json, std::string_view namespace_name,
                                std::string_view name, std::string_view uid,
                                std::string_view resource_version,
                                std::string_view deletion_timestamp,
                                const std::vector<LabelSet::View>& labels,
                                const std::vector<std::optional<std::string_view>>& extra_fields) {
  const auto for_each_string = [&](const auto& visit) {
    for (std::string_view text :
         {namespace_name, name, uid, resource_version, deletion_timestamp}) {
      visit(text);
    }
    for (const auto& [key, value] : labels) {
      visit(key);
      visit(value);
    }
    for (const auto& value : extra_fields) {
      if (value) visit(*value);
    }
  };
  const Layout layout = ComputeLayout(json, labels.size(), extra_fields.size(), for_each_string);

  // Returned by name: copy elision, or the stealing move constructor.
  ObjectRecord record;
  if (layout.total == 0) return record;
  if (layout.total > INT32_MAX) std::abort();  // objects are bounded by maxObjectBytes
  record.storage_.reset(new char[layout.total]);
  char* const base = record.storage_.get();
  if (!json.empty()) std::memcpy(base, json.data(), json.size());
  const std::string_view stored_json(base, json.size());
  std::size_t tail = json.size();
  // Where `text` lives in the storage: inside the JSON when it was a view into it, otherwise
  // copied after it.
  const auto place = [&](std::string_view text) -> std::string_view {
    if (text.empty()) return std::string_view();
    if (Inside(text, json)) return stored_json.substr(text.data() - json.data(), text.size());
    std::memcpy(base + tail, text.data(), text.size());
    const std::string_view placed(base + tail, text.size());
    tail += text.size();
    return placed;
  };
  record.json.Borrow(stored_json);
  record.namespace_name.Borrow(place(namespace_name));
  record.name.Borrow(place(name));
  record.uid.Borrow(place(uid));
  record.resource_version.Borrow(place(resource_version));
  record.deletion_timestamp.Borrow(place(deletion_timestamp));

  int32_t* const label_table = reinterpret_cast<int32_t*>(base + AlignUp4(layout.chars));
  int32_t* const field_table = label_table + 4 * labels.size();
  const auto entry = [](int32_t* table, std::size_t i, std::optional<std::string_view> text) {
    if (!text) {
      table[2 * i] = 0;
      table[2 * i + 1] = -1;
      return;
    }
    table[2 * i] = text->empty()
                       ? 0
                       : static_cast<int32_t>(text->data() - reinterpret_cast<const char*>(table));
    table[2 * i + 1] = static_cast<int32_t>(text->size());
  };
  for (std::size_t i = 0; i < labels.size(); ++i) {
    entry(label_table, 2 * i, place(labels[i].first));
    entry(label_table, 2 * i + 1, place(labels[i].second));
  }
  for (std::size_t i = 0; i < extra_fields.size(); ++i) {
    entry(
        field_table, i,
        extra_fields[i] ? std::optional<std::string_view>(place(*extra_fields[i])) : std::nullopt);
  }
  if (!labels.empty()) record.labels.packed_.Borrow(label_table, 2 * labels.size());
  if (!extra_fields.empty()) {
    record.extra_fields.packed_.Borrow(field_table, extra_fields.size());
  }
  return record;
}

bool ObjectRecord::compact() const {
  return !namespace_name.owned() && !name.owned() && !uid.owned() && !resource_version.owned() &&
         !deletion_timestamp.owned() && !labels.packed().owned() &&
         !extra_fields.packed().owned() && !json.owned();
}

void ObjectRecord::Compact() {
  if (compact()) return;
  std::vector<LabelSet::View> label_views(labels.begin(), labels.end());
  std::vector<std::optional<std::string_view>> field_views;
  field_views.reserve(extra_fields.size());
  for (std::size_t i = 0; i < extra_fields.size(); ++i) field_views.push_back(extra_fields[i]);
  *this = Pack(json, namespace_name, name, uid, resource_version, deletion_timestamp, label_views,
               field_views);
}

std::size_t ObjectRecord::HeapBytes() const {
  std::size_t bytes = 0;
  for (const RecordString* text :
       {&namespace_name, &name, &uid, &resource_version, &deletion_timestamp, &json}) {
    if (text->owned()) bytes += text->size();
  }
  if (labels.packed().owned()) bytes += labels.packed().OwnedBytes();
  if (extra_fields.packed().owned()) bytes += extra_fields.packed().OwnedBytes();
  if (storage_ == nullptr) return bytes;
  // The storage block's size, from the same layout Pack used.
  const std::string_view stored_json = json.owned() ? std::string_view() : json.view();
  const Layout layout =
      ComputeLayout(stored_json, labels.size(), extra_fields.size(), [&](const auto& visit) {
        for (const RecordString* text :
             {&namespace_name, &name, &uid, &resource_version, &deletion_timestamp}) {
          if (!text->owned()) visit(text->view());
        }
        for (std::size_t i = 0; i < labels.size() && !labels.packed().owned(); ++i) {
          visit(labels.at(i).first);
          visit(labels.at(i).second);
        }
        for (std::size_t i = 0; i < extra_fields.size() && !extra_fields.packed().owned(); ++i) {
          if (const auto value = extra_fields[i]) visit(*value);
        }
      });
  return bytes + layout.total;
}

}  // namespace informerd::core
