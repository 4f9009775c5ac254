#include "daemon/service/event_encoder.h"

#include <grpcpp/support/slice.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "informerd/v1/informerd.pb.h"

namespace informerd::daemon {
namespace {

// Field numbers of informerd.v1.Event (proto/informerd/v1/informerd.proto).
constexpr uint32_t kTypeField = 1;
constexpr uint32_t kResourceVersionField = 2;
constexpr uint32_t kObjectField = 3;
constexpr uint32_t kNamespaceField = 4;
constexpr uint32_t kNameField = 5;
constexpr uint32_t kUidField = 6;
constexpr uint32_t kBatchField = 7;
// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

v1::Event::Type WireType(core::EventType type) {
  switch (type) {
    case core::EventType::kAdded:
      return v1::Event::ADDED;
    case core::EventType::kModified:
      return v1::Event::MODIFIED;
    case core::EventType::kDeleted:
      return v1::Event::DELETED;
    case core::EventType::kBookmark:
      return v1::Event::BOOKMARK;
    case core::EventType::kSynced:
      return v1::Event::SYNCED;
  }
  return v1::Event::TYPE_UNSPECIFIED;
}

void AppendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void AppendTag(std::string& out, uint32_t field, uint32_t wire_type) {
  AppendVarint(out, (uint64_t{field} << 3) | wire_type);
}

// proto3: an empty string field is not written.
void AppendString(std::string& out, uint32_t field, std::string_view value) {
  if (value.empty()) return;
  AppendTag(out, field, kLengthDelimited);
  AppendVarint(out, value.size());
  out.append(value.data(), value.size());
}

// The object whose JSON, namespace, name and uid the message carries; markers carry none
// (informerd.proto: BOOKMARK and SYNCED have only type and resource_version).
const core::ObjectRecord* ObjectOnWire(const core::CacheEvent& event, core::EventType delivered) {
  if (delivered == core::EventType::kBookmark || delivered == core::EventType::kSynced) {
    return nullptr;
  }
  return event.ObjectFor(delivered);
}

// The fields before the object's (type, resource_version) and, when there is an object, the
// object's tag and length; `after` gets the fields that follow it.
void EncodeAround(const core::CacheEvent& event, core::EventType delivered, std::string& before,
                  std::string& after) {
  AppendTag(before, kTypeField, kVarint);
  AppendVarint(before, static_cast<uint64_t>(WireType(delivered)));
  AppendString(before, kResourceVersionField, event.resource_version());
  const core::ObjectRecord* object = ObjectOnWire(event, delivered);
  if (object == nullptr) return;
  if (!object->json.empty()) {
    AppendTag(before, kObjectField, kLengthDelimited);
    AppendVarint(before, object->json.size());
  }
  AppendString(after, kNamespaceField, object->namespace_name);
  AppendString(after, kNameField, object->name);
  AppendString(after, kUidField, object->uid);
}

// What a zero-copy slice keeps alive: the event, and through it the memo or the record whose
// bytes the slice points at. gRPC calls ReleaseSliceOwner when the last reference to the slice
// goes, on whichever thread that is. The atomic is the hand-over's visible synchronization:
// gRPC's own happens inside libgrpc, which ThreadSanitizer cannot see.
struct SliceOwner {
  explicit SliceOwner(std::shared_ptr<const core::CacheEvent> owned) : event(std::move(owned)) {
    published.store(true, std::memory_order_release);
  }
  std::shared_ptr<const core::CacheEvent> event;
  std::atomic<bool> published{false};
};

void ReleaseSliceOwner(void* owner) {
  auto* slice_owner = static_cast<SliceOwner*>(owner);
  (void)slice_owner->published.load(std::memory_order_acquire);
  delete slice_owner;
}

grpc::Slice BorrowedSlice(std::string_view bytes,
                          const std::shared_ptr<const core::CacheEvent>& event) {
  // gRPC never writes through a slice it sends; the cast only fits the constructor's signature.
  return grpc::Slice(const_cast<char*>(bytes.data()), bytes.size(), &ReleaseSliceOwner,
                     new SliceOwner(event));
}

// The slices of one encoded event (at most 3), written to `out`; returns their total size.
std::size_t EventSlices(const core::Delivery& delivery, const core::CacheEvent::Encoder& encode,
                        grpc::Slice (&out)[3], std::size_t& count) {
  const core::ObjectRecord* object = ObjectOnWire(*delivery.event, delivery.type);
  // use_count() can only err high while another thread copies the pointer, and a copy needs an
  // owner besides us; 1 means nobody else can ever ask for this event's encoding.
  if (delivery.event.use_count() == 1 && object != nullptr) {
    EventFrame frame = EncodeEventFrame(*delivery.event, delivery.type);
    const std::size_t size = frame.before.size() + object->json.size() + frame.after.size();
    out[0] = grpc::Slice(frame.before);
    out[1] = BorrowedSlice(object->json, delivery.event);
    count = 2;
    if (!frame.after.empty()) out[count++] = grpc::Slice(frame.after);
    return size;
  }
  const std::string& bytes = delivery.Encoded(encode);
  out[0] = BorrowedSlice(bytes, delivery.event);
  count = 1;
  return bytes.size();
}

}  // namespace

std::string EncodeEvent(const core::CacheEvent& event, core::EventType delivered) {
  EventFrame frame = EncodeEventFrame(event, delivered);
  const core::ObjectRecord* object = ObjectOnWire(event, delivered);
  if (object == nullptr) return std::move(frame.before);
  std::string out;
  out.reserve(frame.before.size() + object->json.size() + frame.after.size());
  out += frame.before;
  out += object->json;
  out += frame.after;
  return out;
}

EventFrame EncodeEventFrame(const core::CacheEvent& event, core::EventType delivered) {
  EventFrame frame;
  EncodeAround(event, delivered, frame.before, frame.after);
  return frame;
}

grpc::ByteBuffer EventByteBuffer(const core::Delivery& delivery,
                                 const core::CacheEvent::Encoder& encode) {
  grpc::Slice slices[3];
  std::size_t count = 0;
  EventSlices(delivery, encode, slices, count);
  return grpc::ByteBuffer(slices, count);
}

grpc::ByteBuffer BatchByteBuffer(const std::vector<core::Delivery>& deliveries,
                                 const core::CacheEvent::Encoder& encode) {
  std::vector<grpc::Slice> slices;
  slices.reserve(deliveries.size() * 4);
  for (const core::Delivery& delivery : deliveries) {
    grpc::Slice parts[3];
    std::size_t count = 0;
    const std::size_t size = EventSlices(delivery, encode, parts, count);
    std::string header;
    AppendTag(header, kBatchField, kLengthDelimited);
    AppendVarint(header, size);
    slices.emplace_back(header);
    for (std::size_t i = 0; i < count; ++i) slices.push_back(std::move(parts[i]));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::size_t ApproximateEventBytes(const core::Delivery& delivery) {
  const core::ObjectRecord* object = delivery.object();
  return object == nullptr ? 0 : object->json.size();
}

}  // namespace informerd::daemon
