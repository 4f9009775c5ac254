// ListEncoder: the bytes of one informerd.v1.ListResponse on the wire, with every object's JSON
// referenced from the cache's record instead of copied.
//
// Data flow: core::Cache::List → List's handler (unary_calls.cc) → here → gRPC. The generated
// ListResponse would copy each object's JSON into the message and again into the serialized
// bytes, so that an answer waiting for a slow client would cost twice its size; a List of a large
// resource read slowly by many clients could then exhaust the daemon's memory. Here the answer
// is a grpc::ByteBuffer of slices: a small encoded header per item (its field tag and length)
// and the item's JSON as it is in the cached ObjectRecord, which the buffer keeps alive (the
// records are immutable and shared: cache.h). An answer in flight thus costs its headers, a
// pointer per object, and the records the cache has replaced meanwhile, not a copy of itself.
//
// The bytes are exactly those v1::ListResponse::SerializeAsString() produces for the same
// content (fields in number order, proto3 empty strings omitted); the tests check that, as
// event_encoder.h does for events.
//
// Pure functions: any thread. The returned ByteBuffer owns what it points at.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/object_record.h"

namespace informerd::daemon {

// The encoded size of one `items` entry of a ListResponse: its tag, its length and the JSON.
std::size_t ListItemWireBytes(std::size_t json_bytes);

// The ListResponse {items: each record's JSON, resource_version, continue} as wire bytes.
grpc::ByteBuffer ListResponseByteBuffer(
    std::vector<std::shared_ptr<const core::ObjectRecord>> items,
    const std::string& resource_version, const std::string& continue_token);

}  // namespace informerd::daemon
