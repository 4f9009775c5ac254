#include "daemon/service/list_encoder.h"

#include <grpcpp/support/slice.h>

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>

namespace informerd::daemon {
namespace {

// Field numbers of informerd.v1.ListResponse (proto/informerd/v1/informerd.proto), as their
// length-delimited tags.
constexpr char kItemsTag = (1 << 3) | 2;
constexpr char kResourceVersionTag = (2 << 3) | 2;
constexpr char kContinueTag = (3 << 3) | 2;

std::size_t VarintBytes(uint64_t value) {
  std::size_t bytes = 1;
  for (; value >= 0x80; value >>= 7) ++bytes;
  return bytes;
}

void AppendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void AppendField(std::string& out, char tag, std::string_view value) {
  out.push_back(tag);
  AppendVarint(out, value.size());
  out.append(value.data(), value.size());
}

// What the answer's slices point at: the records and the encoded headers. Every slice holds a
// reference (a shared_ptr of its own, as gRPC's destroy callback takes one pointer); the last
// slice gRPC releases frees it, on whichever thread that is. The atomic is the hand-over's
// visible synchronization: gRPC's own happens inside libgrpc, which ThreadSanitizer cannot see.
struct Backing {
  std::vector<std::shared_ptr<const core::ObjectRecord>> items;
  // Each item's tag and length, one after the other, then the fields after the items.
  std::string headers;
  std::atomic<bool> published{false};
};

struct SliceOwner {
  explicit SliceOwner(std::shared_ptr<const Backing> owned) : backing(std::move(owned)) {}
  std::shared_ptr<const Backing> backing;
};

void ReleaseSliceOwner(void* owner) {
  auto* slice_owner = static_cast<SliceOwner*>(owner);
  (void)slice_owner->backing->published.load(std::memory_order_acquire);
  delete slice_owner;
}

grpc::Slice Borrowed(std::string_view bytes, const std::shared_ptr<const Backing>& backing) {
  // gRPC never writes through a slice it sends; the cast only fits the constructor's signature.
  return grpc::Slice(const_cast<char*>(bytes.data()), bytes.size(), &ReleaseSliceOwner,
                     new SliceOwner(backing));
}

}  // namespace

std::size_t ListItemWireBytes(std::size_t json_bytes) {
  return 1 + VarintBytes(json_bytes) + json_bytes;
}

grpc::ByteBuffer ListResponseByteBuffer(
    std::vector<std::shared_ptr<const core::ObjectRecord>> items,
    const std::string& resource_version, const std::string& continue_token) {
  auto backing = std::make_shared<Backing>();
  std::vector<std::size_t> header_ends;
  header_ends.reserve(items.size());
  for (const std::shared_ptr<const core::ObjectRecord>& item : items) {
    backing->headers.push_back(kItemsTag);
    AppendVarint(backing->headers, item->json.size());
    header_ends.push_back(backing->headers.size());
  }
  const std::size_t trailer_start = backing->headers.size();
  if (!resource_version.empty()) {
    AppendField(backing->headers, kResourceVersionTag, resource_version);
  }
  if (!continue_token.empty()) AppendField(backing->headers, kContinueTag, continue_token);
  backing->items = std::move(items);
  backing->published.store(true, std::memory_order_release);
  const std::shared_ptr<const Backing> shared = backing;
  const std::string_view headers = shared->headers;

  std::vector<grpc::Slice> slices;
  slices.reserve(shared->items.size() * 2 + 1);
  std::size_t header_start = 0;
  for (std::size_t i = 0; i < shared->items.size(); ++i) {
    slices.push_back(Borrowed(headers.substr(header_start, header_ends[i] - header_start), shared));
    header_start = header_ends[i];
    const core::RecordString& json = shared->items[i]->json;
    if (!json.empty()) slices.push_back(Borrowed(json.view(), shared));
  }
  if (trailer_start < headers.size()) {
    slices.push_back(Borrowed(headers.substr(trailer_start), shared));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

}  // namespace informerd::daemon
