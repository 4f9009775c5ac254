#include "core/record_strings.h"

#include <cstdlib>
#include <new>
#include <ostream>

namespace informerd::core {

// ---- RecordString --------------------------------------------------------------------------

RecordString& RecordString::operator=(const RecordString& other) {
  if (this != &other) *this = other.view();
  return *this;
}

RecordString& RecordString::operator=(RecordString&& other) noexcept {
  if (this != &other) {
    Release();
    MoveFrom(other);
  }
  return *this;
}

RecordString& RecordString::operator=(std::string_view text) {
  // `text` may point into this value's own bytes: copy before releasing them.
  RecordString copy(text);
  Release();
  StealFrom(copy);
  return *this;
}

void RecordString::Assign(std::string_view text) {
  if (text.empty()) return;
  // Object sizes are bounded by maxObjectBytes (32 MiB by default), far below 4 GiB.
  if (text.size() > UINT32_MAX) std::abort();
  char* bytes = new char[text.size()];
  std::memcpy(bytes, text.data(), text.size());
  data_ = bytes;
  size_ = static_cast<uint32_t>(text.size());
  owned_ = 1;
}

void RecordString::MoveFrom(RecordString& other) noexcept {
  if (other.owned_) {
    StealFrom(other);
    return;
  }
  // Borrowed bytes belong to the other value's record: this value gets its own copy. Moving a
  // whole ObjectRecord does not come here (it steals), so this is the rare, member-wise case.
  // Allocation failure aborts, as std::string's would terminate in a noexcept move.
  Assign(other.view());
}

void RecordString::StealFrom(RecordString& other) noexcept {
  data_ = other.data_;
  size_ = other.size_;
  owned_ = other.owned_;
  other.data_ = nullptr;
  other.size_ = 0;
  other.owned_ = 0;
}

void RecordString::Release() noexcept {
  if (owned_) delete[] data_;
  data_ = nullptr;
  size_ = 0;
  owned_ = 0;
}

std::ostream& operator<<(std::ostream& out, const RecordString& text) { return out << text.view(); }

// ---- PackedStrings -------------------------------------------------------------------------

int32_t* PackedStrings::Allocate(std::size_t count, std::size_t chars) {
  const std::size_t bytes = count * 2 * sizeof(int32_t) + chars;
  if (bytes > INT32_MAX) std::abort();
  // operator new[] for char returns memory aligned for any fundamental type.
  return reinterpret_cast<int32_t*>(new char[bytes]);
}

std::size_t PackedStrings::OwnedBytes() const noexcept {
  std::size_t bytes = count_ * 2 * sizeof(int32_t);
  for (std::size_t i = 0; i < count_; ++i) bytes += at(i).size();
  return bytes;
}

PackedStrings::PackedStrings(const PackedStrings& other) {
  *this = Build(other.count_, [&](std::size_t i) { return other.get(i); });
}

PackedStrings& PackedStrings::operator=(const PackedStrings& other) {
  if (this != &other) *this = Build(other.count_, [&](std::size_t i) { return other.get(i); });
  return *this;
}

PackedStrings& PackedStrings::operator=(PackedStrings&& other) noexcept {
  if (this != &other) {
    Release();
    MoveFrom(other);
  }
  return *this;
}

void PackedStrings::MoveFrom(PackedStrings& other) noexcept {
  if (other.owned_ || other.count_ == 0) {
    StealFrom(other);
    return;
  }
  PackedStrings copy = Build(other.count_, [&](std::size_t i) { return other.get(i); });
  StealFrom(copy);
}

void PackedStrings::StealFrom(PackedStrings& other) noexcept {
  table_ = other.table_;
  count_ = other.count_;
  owned_ = other.owned_;
  other.table_ = nullptr;
  other.count_ = 0;
  other.owned_ = 0;
}

void PackedStrings::Release() noexcept {
  if (owned_) delete[] reinterpret_cast<const char*>(table_);
  table_ = nullptr;
  count_ = 0;
  owned_ = 0;
}

}  // namespace informerd::core
