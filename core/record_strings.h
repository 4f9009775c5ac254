// RecordString and PackedStrings: the string types of a cached object (core/object_record.h),
// built so that a record's JSON, its metadata strings, its labels and its indexed field values
// can all live in ONE allocation.
//
// Why: a cache holds a million objects, and for a 4 KB pod the per-object fixed costs of
// std::string (32 bytes inline each, one heap block per string over 15 characters) and of a
// vector of (std::string, std::string) label pairs were about 40% on top of the JSON (bench/
// cache_bench). Here, a string is either
//  * owned: it holds its own heap copy (what a test or any code that assigns a field gets), or
//  * borrowed: it points into storage owned by the ObjectRecord that contains it (what the
//    object scanner builds: metadata values, label keys and values and field values are views
//    into the record's JSON bytes whenever the JSON spells them without escapes).
// A borrowed value is only ever created by ObjectRecord (object_record.cc), which moves its
// storage together with its members. Copying or moving a borrowed value on its own makes an
// owned copy, so a value taken out of a record never dangles.
//
// Plain value types, no thread affinity; const methods may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "fmt/format.h"

namespace informerd::core {

class ObjectRecord;

// A string that is either owned or borrowed from its ObjectRecord (see above). Reads like a
// std::string_view; converts implicitly to std::string_view (explicitly to std::string: str());
// assigns from text.
class RecordString {
 public:
  RecordString() noexcept = default;
  explicit RecordString(std::string_view text) { Assign(text); }
  RecordString(const RecordString& other) { Assign(other.view()); }
  RecordString(RecordString&& other) noexcept { MoveFrom(other); }
  RecordString& operator=(const RecordString& other);
  RecordString& operator=(RecordString&& other) noexcept;
  RecordString& operator=(std::string_view text);
  RecordString& operator=(const std::string& text) { return *this = std::string_view(text); }
  RecordString& operator=(const char* text) { return *this = std::string_view(text); }
  ~RecordString() { Release(); }

  std::string_view view() const noexcept { return std::string_view(data(), size_); }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: string-like
  // Explicit: an implicit conversion would let `const std::string&` parameters bind to a
  // temporary copy, and code that keeps .data() (a zero-copy gRPC slice) would dangle.
  explicit operator std::string() const { return std::string(view()); }
  std::string str() const { return std::string(view()); }

  const char* data() const noexcept { return data_ == nullptr ? "" : data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t length() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const char* begin() const noexcept { return data(); }
  const char* end() const noexcept { return data() + size_; }
  char operator[](std::size_t i) const noexcept { return data_[i]; }
  int compare(std::string_view other) const noexcept { return view().compare(other); }
  std::size_t find(std::string_view text, std::size_t pos = 0) const noexcept {
    return view().find(text, pos);
  }
  std::string_view substr(std::size_t pos, std::size_t n = std::string_view::npos) const {
    return view().substr(pos, n);
  }

  // Whether this value owns its bytes (false: empty, or borrowed from its record).
  bool owned() const noexcept { return owned_ != 0; }

  friend bool operator==(const RecordString& a, const RecordString& b) noexcept {
    return a.view() == b.view();
  }
  friend bool operator==(const RecordString& a, std::string_view b) noexcept {
    return a.view() == b;
  }
  friend bool operator==(std::string_view a, const RecordString& b) noexcept {
    return a == b.view();
  }
  friend bool operator==(const RecordString& a, const char* b) noexcept {
    return a.view() == std::string_view(b);
  }
  friend bool operator==(const char* a, const RecordString& b) noexcept {
    return std::string_view(a) == b.view();
  }
  friend bool operator!=(const RecordString& a, const RecordString& b) noexcept {
    return !(a == b);
  }
  friend bool operator!=(const RecordString& a, std::string_view b) noexcept { return !(a == b); }
  friend bool operator!=(const RecordString& a, const char* b) noexcept { return !(a == b); }
  friend bool operator!=(std::string_view a, const RecordString& b) noexcept { return !(a == b); }
  friend bool operator!=(const char* a, const RecordString& b) noexcept { return !(a == b); }
  friend bool operator<(const RecordString& a, const RecordString& b) noexcept {
    return a.view() < b.view();
  }
  friend std::string operator+(const RecordString& a, std::string_view b) {
    std::string out(a.view());
    out.append(b);
    return out;
  }
  friend std::string operator+(std::string_view a, const RecordString& b) {
    std::string out(a);
    out.append(b.view());
    return out;
  }
  friend std::ostream& operator<<(std::ostream& out, const RecordString& text);

 private:
  friend class ObjectRecord;
  // Points this (empty) value at `text`, which its record owns.
  void Borrow(std::string_view text) noexcept {
    data_ = text.empty() ? nullptr : text.data();
    size_ = static_cast<uint32_t>(text.size());
    owned_ = 0;
  }
  // Takes `other`'s bytes as they are, borrowed ones included: only for ObjectRecord, which
  // moves the storage they point into along with them.
  void StealFrom(RecordString& other) noexcept;
  void Assign(std::string_view text);
  void MoveFrom(RecordString& other) noexcept;
  void Release() noexcept;

  const char* data_ = nullptr;
  uint32_t size_ = 0;
  uint32_t owned_ = 0;
};

// A fixed sequence of optional strings in one block: a table of (offset, length) pairs followed
// by (or, when borrowed, pointing into storage around) the bytes. Offsets are relative to the
// table, so a borrowed table may point backwards into its record's JSON. Length -1 is nullopt.
// The building block of LabelSet (keys and values alternate) and FieldValues.
class PackedStrings {
 public:
  PackedStrings() noexcept = default;
  PackedStrings(const PackedStrings& other);
  PackedStrings(PackedStrings&& other) noexcept { MoveFrom(other); }
  PackedStrings& operator=(const PackedStrings& other);
  PackedStrings& operator=(PackedStrings&& other) noexcept;
  ~PackedStrings() { Release(); }

  std::size_t size() const noexcept { return count_; }
  bool has(std::size_t i) const noexcept { return table_[2 * i + 1] >= 0; }
  // Empty for a nullopt entry.
  std::string_view at(std::size_t i) const noexcept {
    const int32_t length = table_[2 * i + 1];
    if (length < 0) return std::string_view();
    return std::string_view(reinterpret_cast<const char*>(table_) + table_[2 * i],
                            static_cast<std::size_t>(length));
  }
  std::optional<std::string_view> get(std::size_t i) const noexcept {
    if (!has(i)) return std::nullopt;
    return at(i);
  }
  bool owned() const noexcept { return owned_ != 0; }
  // Bytes this value would need as an owned copy (table + characters).
  std::size_t OwnedBytes() const noexcept;

 private:
  friend class ObjectRecord;
  friend class LabelSet;
  friend class FieldValues;
  // Builds an owned block; `get(i)` yields std::optional<std::string_view> for i < count.
  template <typename Get>
  static PackedStrings Build(std::size_t count, const Get& get);
  // Points this (empty) value at `table`, which its record owns.
  void Borrow(const int32_t* table, std::size_t count) noexcept {
    table_ = table;
    count_ = static_cast<uint32_t>(count);
    owned_ = 0;
  }
  void StealFrom(PackedStrings& other) noexcept;
  void MoveFrom(PackedStrings& other) noexcept;
  void Release() noexcept;
  static int32_t* Allocate(std::size_t count, std::size_t chars);

  const int32_t* table_ = nullptr;
  uint32_t count_ = 0;
  uint32_t owned_ = 0;
};

template <typename Get>
PackedStrings PackedStrings::Build(std::size_t count, const Get& get) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (const std::optional<std::string_view> value = get(i)) chars += value->size();
  }
  PackedStrings out;
  if (count == 0) return out;
  int32_t* table = Allocate(count, chars);
  char* const base = reinterpret_cast<char*>(table);
  std::size_t offset = count * 2 * sizeof(int32_t);
  for (std::size_t i = 0; i < count; ++i) {
    const std::optional<std::string_view> value = get(i);
    if (!value) {
      table[2 * i] = 0;
      table[2 * i + 1] = -1;
      continue;
    }
    if (!value->empty()) std::memcpy(base + offset, value->data(), value->size());
    table[2 * i] = static_cast<int32_t>(offset);
    table[2 * i + 1] = static_cast<int32_t>(value->size());
    offset += value->size();
  }
  out.table_ = table;
  out.count_ = static_cast<uint32_t>(count);
  out.owned_ = 1;
  return out;
}

}  // namespace informerd::core

template <>
struct fmt::formatter<informerd::core::RecordString> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const informerd::core::RecordString& text, FormatContext& ctx) const
      -> decltype(ctx.out()) {
    return fmt::formatter<std::string_view>::format(text.view(), ctx);
  }
};
