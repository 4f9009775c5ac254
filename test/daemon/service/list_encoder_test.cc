// Specification of daemon/service/list_encoder.*: a ListResponse's wire bytes, exactly as the
// generated class encodes them, with every object's JSON pointing into its cached record, which
// the buffer keeps alive until gRPC is done with it.
#include "daemon/service/list_encoder.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "informerd/v1/informerd.pb.h"

namespace informerd::daemon {
namespace {

std::shared_ptr<const core::ObjectRecord> Record(std::string json) {
  core::ObjectRecord record;
  record.json = std::move(json);
  record.name = "x";
  return std::make_shared<const core::ObjectRecord>(std::move(record));
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

TEST_CASE("the bytes are the generated ListResponse's, whatever the sizes") {
  // Lengths whose varints take 1, 2 and 3 bytes.
  const std::vector<std::shared_ptr<const core::ObjectRecord>> items = {
      Record(R"({"metadata":{"name":"a"}})"), Record(std::string(200, 'b')),
      Record(std::string(20000, 'c'))};
  for (const std::string& token : {std::string(), std::string("dG9rZW4")}) {
    for (const std::string& rv : {std::string(), std::string("12345")}) {
      v1::ListResponse expected;
      for (const auto& item : items) expected.add_items(item->json.str());
      expected.set_resource_version(rv);
      expected.set_continue_(token);
      CHECK(Bytes(ListResponseByteBuffer(items, rv, token)) == expected.SerializeAsString());
      std::size_t item_bytes = 0;
      for (const auto& item : items) item_bytes += ListItemWireBytes(item->json.size());
      v1::ListResponse items_only;
      for (const auto& item : items) items_only.add_items(item->json.str());
      CHECK(item_bytes == items_only.ByteSizeLong());
    }
  }
  v1::ListResponse empty;
  CHECK(Bytes(ListResponseByteBuffer({}, "", "")) == empty.SerializeAsString());
  empty.set_resource_version("7");
  CHECK(Bytes(ListResponseByteBuffer({}, "7", "")) == empty.SerializeAsString());
}

TEST_CASE("each object's JSON is sent from its record, which the buffer keeps alive") {
  auto record = Record(std::string(4000, 'p'));
  const char* json = record->json.data();
  std::weak_ptr<const core::ObjectRecord> watch = record;
  {
    grpc::ByteBuffer buffer = ListResponseByteBuffer({std::move(record)}, "9", "");
    CHECK_FALSE(watch.expired());
    std::vector<grpc::Slice> slices;
    REQUIRE(buffer.Dump(&slices).ok());
    REQUIRE(slices.size() == 3);  // the item's header, its JSON, resource_version
    CHECK(reinterpret_cast<const char*>(slices[1].begin()) == json);
    CHECK(slices[1].size() == 4000);
  }
  CHECK(watch.expired());
}

}  // namespace
}  // namespace informerd::daemon
