// libFuzzer target: ObjectScanner::Scan (core/object_scanner.h) on one object's JSON.
//
// Input: byte 0 chooses the options (bit 0: keep managedFields; bit 1: extra field paths), the
// rest is the JSON. Checks: an object the scanner accepts is JSON that RapidJSON's DOM accepts;
// the record passes CheckRecord (fuzz_common.h); with managedFields kept, the record's JSON is
// the input byte for byte (less surrounding whitespace); with them cut, it is the input minus
// metadata.managedFields, compared as DOMs (when no key is repeated).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/object_scanner.h"
#include "test/fuzz/fuzz_common.h"

namespace {

std::string_view TrimJsonWhitespace(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const std::size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string_view json(reinterpret_cast<const char*>(data) + 1, size - 1);

  informerd::core::ScanOptions options;
  options.strip_managed_fields = (flags & 1) == 0;
  if (flags & 2) options.extra_field_paths = informerd::fuzz::FuzzExtraFieldPaths();
  informerd::core::ObjectScanner scanner(options);
  absl::StatusOr<informerd::core::ObjectRecord> record = scanner.Scan(json);
  if (!record.ok()) return 0;

  std::optional<rapidjson::Document> dom = informerd::fuzz::ParseDom(json);
  FUZZ_CHECK(dom.has_value(), "the scanner accepted JSON that RapidJSON's DOM refuses");
  informerd::fuzz::CheckRecord(*record, scanner);

  if (!options.strip_managed_fields) {
    FUZZ_CHECK(record->json == TrimJsonWhitespace(json),
               "the record's JSON is not the input\n" + std::string(record->json));
    return 0;
  }
  if (informerd::fuzz::HasRepeatedKeys(*dom)) return 0;
  if (auto metadata = dom->FindMember("metadata");
      metadata != dom->MemberEnd() && metadata->value.IsObject()) {
    metadata->value.RemoveMember("managedFields");
  }
  std::optional<rapidjson::Document> stripped = informerd::fuzz::ParseDom(record->json);
  FUZZ_CHECK(*dom == *stripped,
             "cutting managedFields changed something else\n" + std::string(record->json));
  return 0;
}
