// EventEncoder: turns what a subscriber pops from its queue (core::Delivery) into the bytes of one
// informerd.v1.Event message on the wire, without copying them per subscriber.
//
// Data flow: Cache → Subscription queue → SubscribeStream (daemon/service/informer_service.*) →
// here → gRPC. An event shared by many subscribers is encoded once per delivered type through
// core::CacheEvent::Encoded (the cacher's cachingObject; docs/kubernetes-semantics.md, "Encode
// once"), and every subscriber's grpc::ByteBuffer points at that one string: the slice holds a
// reference to the CacheEvent and drops it when gRPC is done.
// An event nobody else holds (an initial snapshot item, made for one subscriber) is not memoized:
// its object's JSON goes out straight from the cached ObjectRecord between two small encoded
// parts, so a new subscriber's snapshot costs no copy of the cache.
//
// The wire format is written by hand instead of through the generated informerd::v1::Event: the
// generated class would copy the object's JSON into the message and again into the serialized
// string. The bytes are exactly those Event::SerializeAsString() produces (fields in number
// order, proto3 defaults omitted); the tests check that.
//
// Pure functions, no state: any thread. The Delivery's event must stay alive during the call;
// the returned ByteBuffer keeps what it points at alive by itself.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <string>
#include <vector>

#include "core/cache_event.h"

namespace informerd::daemon {

// The informerd.v1.Event bytes of `event` as delivered with type `delivered`: type and
// resource_version always; object, namespace, name and uid from the delivered object (for a
// MODIFIED delivered as DELETED, the previous state: core::CacheEvent::ObjectFor), none for
// BOOKMARK and SYNCED. Matches core::CacheEvent::Encoder.
std::string EncodeEvent(const core::CacheEvent& event, core::EventType delivered);

// The same bytes as EncodeEvent, split around the object's JSON, which is left out: `before` ends
// with the object field's tag and length, `after` holds namespace, name and uid.
struct EventFrame {
  std::string before;
  std::string after;
};
EventFrame EncodeEventFrame(const core::CacheEvent& event, core::EventType delivered);

// The message for `delivery`, ready for ServerWriteReactor::StartWrite. When `delivery` holds the
// only reference to its event, the object's JSON is referenced from the record (nobody could share
// an encoding); otherwise the bytes come from delivery.Encoded(encode) and are referenced from the
// event's memo. `encode` must produce EncodeEvent's bytes (it may count or wrap it).
grpc::ByteBuffer EventByteBuffer(const core::Delivery& delivery,
                                 const core::CacheEvent::Encoder& encode);

// Several deliveries as one informerd.v1.Event whose only field is `batch` (repeated Event, field
// 7), in order: each entry is EventByteBuffer's bytes behind the field's tag and length, sharing
// them as EventByteBuffer does (no copy of an object's JSON). For streams that opted in
// (SubscribeRequest.max_events_per_message).
grpc::ByteBuffer BatchByteBuffer(const std::vector<core::Delivery>& deliveries,
                                 const core::CacheEvent::Encoder& encode);

// Roughly how many bytes a delivery's message takes: its object's JSON (0 for markers).
std::size_t ApproximateEventBytes(const core::Delivery& delivery);

}  // namespace informerd::daemon
