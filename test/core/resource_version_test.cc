// Specification of core/resource_version.*: resource versions are unsigned 64-bit decimals, as
// the apiserver's watch cache parses them.
#include "core/resource_version.h"

#include <catch2/catch.hpp>
#include <string>

namespace informerd::core {
namespace {

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST_CASE("resource versions parse as unsigned 64-bit decimal numbers") {
  CHECK(*ParseResourceVersion("0") == 0);
  CHECK(*ParseResourceVersion("1") == 1);
  CHECK(*ParseResourceVersion("123456789") == 123456789);
  CHECK(*ParseResourceVersion("18446744073709551615") == UINT64_MAX);
}

TEST_CASE("leading zeros are accepted, as Go's strconv.ParseUint accepts them") {
  CHECK(*ParseResourceVersion("007") == 7);
}

TEST_CASE("a non-numeric resource version is InvalidArgument naming the text") {
  for (const char* text : {"abc", "12a", "-1", "+1", " 1", "1 ", "1.5", "0x10"}) {
    INFO(text);
    const absl::StatusOr<uint64_t> parsed = ParseResourceVersion(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Message(parsed.status()) ==
          "resource version \"" + std::string(text) + "\" is not a decimal number");
  }
}

TEST_CASE("an empty resource version is InvalidArgument") {
  const absl::StatusOr<uint64_t> parsed = ParseResourceVersion("");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a resource version above 2^64-1 is InvalidArgument") {
  const absl::StatusOr<uint64_t> parsed = ParseResourceVersion("18446744073709551616");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(parsed.status()).find("larger than 2^64-1") != std::string::npos);
}

TEST_CASE("formatting prints the canonical decimal") {
  CHECK(FormatResourceVersion(0) == "0");
  CHECK(FormatResourceVersion(UINT64_MAX) == "18446744073709551615");
  CHECK(*ParseResourceVersion(FormatResourceVersion(987654321)) == 987654321);
}

}  // namespace
}  // namespace informerd::core
