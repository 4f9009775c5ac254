#include "core/cache_event.h"

#include <utility>

namespace informerd::core {

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
    case EventType::kBookmark:
      return "BOOKMARK";
    case EventType::kSynced:
      return "SYNCED";
  }
  return "UNKNOWN";
}

CacheEvent::CacheEvent(EventType type, std::string resource_version, uint64_t version,
                       std::shared_ptr<const ObjectRecord> object,
                       std::shared_ptr<const ObjectRecord> prev_object)
    : type_(type),
      resource_version_(std::move(resource_version)),
      version_(version),
      object_(std::move(object)),
      prev_object_(std::move(prev_object)) {}

CacheEvent::CacheEvent(EventType type, std::string resource_version, uint64_t version)
    : type_(type), resource_version_(std::move(resource_version)), version_(version) {}

const ObjectRecord* CacheEvent::ObjectFor(EventType delivered) const {
  if (delivered == EventType::kDeleted && type_ == EventType::kModified && prev_object_) {
    return prev_object_.get();
  }
  return object_.get();
}

const std::string& CacheEvent::Encoded(EventType delivered, const Encoder& encode) const {
  const auto slot = static_cast<std::size_t>(delivered);
  std::call_once(encoded_once_[slot], [&] { encoded_[slot] = encode(*this, delivered); });
  return encoded_[slot];
}

}  // namespace informerd::core
