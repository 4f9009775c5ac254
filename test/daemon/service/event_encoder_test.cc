// Specification of daemon/service/event_encoder.*: the informerd.v1.Event bytes of each delivery,
// equal to what the generated message serializes to, and shared rather than copied.
#include "daemon/service/event_encoder.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/cache_event.h"
#include "core/object_record.h"
#include "informerd/v1/informerd.pb.h"

namespace informerd::daemon {
namespace {

using core::CacheEvent;
using core::Delivery;
using core::EventType;

std::shared_ptr<const core::ObjectRecord> Record(std::string namespace_name, std::string name,
                                                 std::string resource_version, std::string json) {
  auto record = std::make_shared<core::ObjectRecord>();
  record->namespace_name = std::move(namespace_name);
  record->name = std::move(name);
  record->uid = "uid-" + record->name;
  record->resource_version = std::move(resource_version);
  record->json = std::move(json);
  return record;
}

v1::Event Expected(v1::Event::Type type, const std::string& resource_version,
                   const core::ObjectRecord* object) {
  v1::Event event;
  event.set_type(type);
  event.set_resource_version(resource_version);
  if (object != nullptr) {
    event.set_object(object->json.str());
    event.set_namespace_(object->namespace_name.str());
    event.set_name(object->name.str());
    event.set_uid(object->uid.str());
  }
  return event;
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  REQUIRE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

const CacheEvent::Encoder kEncode = &EncodeEvent;

TEST_CASE("the bytes are exactly the generated message's", "[event_encoder]") {
  const auto before = Record("default", "web", "5", R"({"metadata":{"name":"web","v":1}})");
  const auto after = Record("default", "web", "9", R"({"metadata":{"name":"web","v":2}})");
  const CacheEvent modified(EventType::kModified, "9", 9, after, before);

  CHECK(EncodeEvent(modified, EventType::kModified) ==
        Expected(v1::Event::MODIFIED, "9", after.get()).SerializeAsString());
  // Stopped matching: DELETED with the state that matched, at the change's version.
  CHECK(EncodeEvent(modified, EventType::kDeleted) ==
        Expected(v1::Event::DELETED, "9", before.get()).SerializeAsString());
  CHECK(EncodeEvent(modified, EventType::kAdded) ==
        Expected(v1::Event::ADDED, "9", after.get()).SerializeAsString());

  const CacheEvent bookmark(EventType::kBookmark, "12", 12);
  CHECK(EncodeEvent(bookmark, EventType::kBookmark) ==
        Expected(v1::Event::BOOKMARK, "12", nullptr).SerializeAsString());
  const CacheEvent synced(EventType::kSynced, "10", 10);
  CHECK(EncodeEvent(synced, EventType::kSynced) ==
        Expected(v1::Event::SYNCED, "10", nullptr).SerializeAsString());

  // A cluster-scoped object (no namespace), and an object big enough for multi-byte lengths.
  const auto node = Record("", "n1", "3", "{\"pad\":\"" + std::string(300000, 'x') + "\"}");
  const CacheEvent added(EventType::kAdded, "3", 3, node, nullptr);
  const std::string bytes = EncodeEvent(added, EventType::kAdded);
  CHECK(bytes == Expected(v1::Event::ADDED, "3", node.get()).SerializeAsString());
  v1::Event parsed;
  REQUIRE(parsed.ParseFromString(bytes));
  CHECK(parsed.object() == node->json);
  CHECK(parsed.namespace_().empty());
  CHECK(parsed.name() == "n1");
}

TEST_CASE("a shared event's bytes are encoded once and referenced, not copied", "[event_encoder]") {
  const auto object = Record("default", "web", "5", R"({"metadata":{"name":"web"}})");
  auto event = std::make_shared<const CacheEvent>(EventType::kAdded, "5", 5, object, nullptr);
  const std::weak_ptr<const CacheEvent> watcher = event;
  int encodes = 0;
  const CacheEvent::Encoder counting = [&](const CacheEvent& e, EventType delivered) {
    ++encodes;
    return EncodeEvent(e, delivered);
  };
  std::vector<grpc::ByteBuffer> buffers;
  {
    // Two subscribers' deliveries of one event (the window holds it too: `event`).
    const Delivery first{EventType::kAdded, event};
    const Delivery second{EventType::kAdded, event};
    buffers.push_back(EventByteBuffer(first, counting));
    buffers.push_back(EventByteBuffer(second, counting));
  }
  CHECK(encodes == 1);
  const std::string& memo = event->Encoded(EventType::kAdded, counting);
  CHECK(encodes == 1);
  for (const grpc::ByteBuffer& buffer : buffers) {
    std::vector<grpc::Slice> slices;
    REQUIRE(buffer.Dump(&slices).ok());
    REQUIRE(slices.size() == 1);
    CHECK(reinterpret_cast<const char*>(slices[0].begin()) == memo.data());
    CHECK(Bytes(buffer) == Expected(v1::Event::ADDED, "5", object.get()).SerializeAsString());
  }
  // The buffers keep the event, and so the bytes, alive after everyone else let go of it.
  event.reset();
  CHECK_FALSE(watcher.expired());
  CHECK(Bytes(buffers[1]) == Expected(v1::Event::ADDED, "5", object.get()).SerializeAsString());
  buffers.clear();
  CHECK(watcher.expired());
}

TEST_CASE("an event nobody else holds is sent from the record, without an encoded copy",
          "[event_encoder]") {
  const auto object = Record("default", "web", "5", R"({"metadata":{"name":"web"}})");
  std::weak_ptr<const CacheEvent> watcher;
  grpc::ByteBuffer buffer;
  int encodes = 0;
  {
    auto event = std::make_shared<const CacheEvent>(EventType::kAdded, "5", 0, object, nullptr);
    watcher = event;
    const CacheEvent::Encoder counting = [&](const CacheEvent& e, EventType delivered) {
      ++encodes;
      return EncodeEvent(e, delivered);
    };
    buffer = EventByteBuffer(Delivery{EventType::kAdded, std::move(event)}, counting);
  }
  CHECK(encodes == 0);
  std::vector<grpc::Slice> slices;
  REQUIRE(buffer.Dump(&slices).ok());
  REQUIRE(slices.size() == 3);
  CHECK(reinterpret_cast<const char*>(slices[1].begin()) == object->json.data());
  CHECK(Bytes(buffer) == Expected(v1::Event::ADDED, "5", object.get()).SerializeAsString());
  CHECK_FALSE(watcher.expired());
  slices.clear();
  buffer.Clear();
  CHECK(watcher.expired());  // released with the last slice
}

TEST_CASE("markers carry only type and resource version", "[event_encoder]") {
  auto synced = std::make_shared<const CacheEvent>(EventType::kSynced, "10", 10);
  const grpc::ByteBuffer buffer = EventByteBuffer(Delivery{EventType::kSynced, synced}, kEncode);
  v1::Event parsed;
  REQUIRE(parsed.ParseFromString(Bytes(buffer)));
  CHECK(parsed.type() == v1::Event::SYNCED);
  CHECK(parsed.resource_version() == "10");
  CHECK(parsed.object().empty());
  CHECK(parsed.name().empty());
}

}  // namespace
}  // namespace informerd::daemon
