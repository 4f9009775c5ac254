// libFuzzer target: ListDecoder (core/list_decoder.h) and ParseKubeStatus on a LIST response body.
//
// Input: byte 0 chooses the options (bit 0: keep managedFields; bits 1-2: max_item_bytes of 32
// MiB, 128, 1024 or 4096; bits 3-4: the item type: none, Pod v1, Widget example.com/v1; bit 5:
// extra field paths), the rest is the page body. Checks: a page that decodes is JSON that
// RapidJSON's DOM accepts, and (when "items" is not repeated) its items are exactly the decoded
// items plus the skipped ones; every decoded item passes CheckRecord (fuzz_common.h) and, when
// the decoder has an item type, says its kind and apiVersion; the same item in a watch event
// decodes to the same record (objects have one shape however they arrive); a skipped item is
// over the limit; decoding the same body again with the same decoder (whose buffers are reused)
// gives the same page.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/list_decoder.h"
#include "core/watch_event_decoder.h"
#include "test/fuzz/fuzz_common.h"

namespace {

using informerd::core::ItemType;
using informerd::core::ListDecoder;
using informerd::core::ListPage;
using informerd::core::ObjectScanner;
using informerd::core::ScanOptions;

bool SamePage(const ListPage& a, const ListPage& b) {
  return a.metadata.resource_version == b.metadata.resource_version &&
         a.metadata.continue_token == b.metadata.continue_token &&
         a.metadata.remaining_item_count == b.metadata.remaining_item_count && a.items == b.items &&
         a.skipped == b.skipped;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  ScanOptions options;
  options.strip_managed_fields = (flags & 1) == 0;
  if (flags & 32) options.extra_field_paths = informerd::fuzz::FuzzExtraFieldPaths(false);
  static constexpr std::size_t kLimits[] = {informerd::core::kDefaultMaxObjectBytes, 128, 1024,
                                            4096};
  const std::size_t limit = kLimits[(flags >> 1) & 3];
  ItemType item_type;
  switch ((flags >> 3) & 3) {
    case 1:
      item_type = {"Pod", "v1"};
      break;
    case 2:
      item_type = {"Widget", "example.com/v1"};
      break;
    default:
      break;
  }
  const bool typed = !item_type.kind.empty();

  (void)informerd::core::ParseKubeStatus(body);

  ListDecoder decoder(options, limit, item_type);
  absl::StatusOr<ListPage> page = decoder.Decode(body);
  absl::StatusOr<ListPage> again = decoder.Decode(body);
  FUZZ_CHECK(page.ok() == again.ok(), page.status().ToString() + " / " + again.status().ToString());
  if (!page.ok()) {
    FUZZ_CHECK(page.status() == again.status(),
               page.status().ToString() + " / " + again.status().ToString());
    return 0;
  }
  FUZZ_CHECK(SamePage(*page, *again), "decoding the same page twice differs");

  std::optional<rapidjson::Document> dom = informerd::fuzz::ParseDom(body);
  FUZZ_CHECK(dom.has_value(), "a page RapidJSON's DOM refuses was decoded");
  int items_keys = 0;
  const rapidjson::Value* items = nullptr;
  if (dom->IsObject()) {
    for (const auto& member : dom->GetObject()) {
      if (std::string_view(member.name.GetString(), member.name.GetStringLength()) == "items") {
        ++items_keys;
        items = &member.value;
      }
    }
  }
  FUZZ_CHECK(items_keys > 0, "a body without \"items\" was decoded");
  if (items_keys == 1 && items->IsArray()) {
    FUZZ_CHECK(items->Size() == page->items.size() + page->skipped.size(),
               "the body has " + std::to_string(items->Size()) + " items, decoded " +
                   std::to_string(page->items.size()) + " + skipped " +
                   std::to_string(page->skipped.size()));
  }

  for (const auto& skipped : page->skipped) {
    FUZZ_CHECK(skipped.limit == limit, "");
    FUZZ_CHECK(skipped.bytes > limit, "skipped an item of " + std::to_string(skipped.bytes));
  }
  ObjectScanner scanner(options);
  informerd::core::WatchDecoderOptions watch_options;
  watch_options.scan = options;
  for (const auto& item : page->items) {
    informerd::fuzz::CheckRecord(item, scanner);
    // The same object arriving in a watch event is the same record. (A watch event is one line:
    // the apiserver writes compact JSON, whereas a page may hold newlines between tokens, which
    // an item keeps.)
    if (std::string_view(item.json).find('\n') != std::string_view::npos) continue;
    informerd::core::WatchEventDecoder watch(watch_options);
    std::vector<informerd::core::WatchEvent> events;
    const std::string line = "{\"type\":\"ADDED\",\"object\":" + std::string(item.json) + "}\n";
    const absl::Status status = watch.Feed(line, events);
    FUZZ_CHECK(status.ok() && events.size() == 1,
               "the item as a watch event: " + status.ToString() + "\n" + line);
    FUZZ_CHECK(events[0].object == item, "the item differs as a watch event\nlist " +
                                             informerd::fuzz::Show(item) + "\nwatch " +
                                             informerd::fuzz::Show(events[0].object));
    if (typed) {
      std::optional<rapidjson::Document> object = informerd::fuzz::ParseDom(item.json);
      FUZZ_CHECK(informerd::fuzz::Member(*object, "kind") != nullptr,
                 "an item without kind: " + std::string(item.json));
      FUZZ_CHECK(informerd::fuzz::Member(*object, "apiVersion") != nullptr,
                 "an item without apiVersion: " + std::string(item.json));
    }
  }
  return 0;
}
