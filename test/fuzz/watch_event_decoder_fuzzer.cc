// libFuzzer target: WatchEventDecoder (core/watch_event_decoder.h) on a WATCH response body.
//
// Input: byte 0 chooses the options (bit 0: keep managedFields; bits 1-2: max_event_bytes of 32
// MiB, 64, 512 or 4096; bit 3: extra field paths), byte 1 seeds the piece sizes, the rest is the
// body. The body is decoded twice: whole in one Feed, and cut into pieces of 1 to 64 bytes. The
// decoder promises that nothing depends on how the bytes are cut, so both must give the same
// events, the same status (error messages included) and the same resume version. Every decoded
// object passes CheckRecord (fuzz_common.h); every line over the limit comes out as one skipped
// event, which carries no object; the decoder never holds more than max_event_bytes; a broken
// decoder stays broken.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/watch_event_decoder.h"
#include "test/fuzz/fuzz_common.h"

namespace {

using informerd::core::ObjectScanner;
using informerd::core::ScanOptions;
using informerd::core::WatchDecoderOptions;
using informerd::core::WatchEvent;
using informerd::core::WatchEventDecoder;
using informerd::core::WatchEventType;

std::string Describe(const std::vector<WatchEvent>& events) {
  std::string out;
  for (const WatchEvent& event : events) {
    out += std::string(informerd::core::WatchEventTypeName(event.type)) + " " +
           std::string(event.object.name) + " rv=" + std::string(event.object.resource_version) +
           (event.skipped ? " skipped" : "") + "\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  uint32_t seed = data[1] | 0x100u;
  const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);

  WatchDecoderOptions options;
  options.scan.strip_managed_fields = (flags & 1) == 0;
  static constexpr std::size_t kLimits[] = {informerd::core::kDefaultMaxObjectBytes, 64, 512, 4096};
  options.max_event_bytes = kLimits[(flags >> 1) & 3];
  if (flags & 8) options.scan.extra_field_paths = informerd::fuzz::FuzzExtraFieldPaths();
  options.start_resource_version = "100";

  WatchEventDecoder whole(options);
  std::vector<WatchEvent> whole_events;
  absl::Status whole_status = whole.Feed(body, whole_events);
  FUZZ_CHECK(whole_status == whole.status(), whole_status.ToString());
  if (whole_status.ok()) whole_status = whole.Finish(whole_events);

  WatchEventDecoder pieces(options);
  std::vector<WatchEvent> piece_events;
  absl::Status piece_status;
  for (std::size_t at = 0; at < body.size() && piece_status.ok();) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(body.size() - at, 1 + (seed >> 16) % 64);
    piece_status = pieces.Feed(body.substr(at, n), piece_events);
    at += n;
    FUZZ_CHECK(pieces.buffered_bytes() <= options.max_event_bytes,
               "holds " + std::to_string(pieces.buffered_bytes()) + " bytes, limit " +
                   std::to_string(options.max_event_bytes));
  }
  if (piece_status.ok()) piece_status = pieces.Finish(piece_events);

  FUZZ_CHECK(whole_status == piece_status,
             "whole: " + whole_status.ToString() + "\npieces: " + piece_status.ToString());
  FUZZ_CHECK(whole_events == piece_events,
             "whole:\n" + Describe(whole_events) + "pieces:\n" + Describe(piece_events));
  FUZZ_CHECK(whole.resource_version() == pieces.resource_version(),
             whole.resource_version() + " vs " + pieces.resource_version());
  FUZZ_CHECK(whole.events_decoded() == pieces.events_decoded(), "");

  if (!whole_status.ok()) {
    // Broken for good: later calls report the same error and add nothing.
    std::vector<WatchEvent> more;
    FUZZ_CHECK(whole.broken(), "");
    FUZZ_CHECK(whole.Feed("{}\n", more) == whole_status, "");
    FUZZ_CHECK(whole.Finish(more) == whole_status, "");
    FUZZ_CHECK(more.empty(), "a broken decoder produced events");
  }

  // Every complete line over the limit is handed out as skipped, in the stream (unless the part
  // kept of it is blank, which holds no event).
  if (whole_status.ok()) {
    std::size_t oversized = 0;
    for (std::size_t at = 0; at < body.size();) {
      const std::size_t newline = body.find('\n', at);
      if (newline == std::string_view::npos) break;
      const std::string_view line = body.substr(at, newline - at);
      if (line.size() > options.max_event_bytes &&
          line.substr(0, options.max_event_bytes).find_first_not_of(" \t\r\n") !=
              std::string_view::npos) {
        ++oversized;
      }
      at = newline + 1;
    }
    std::size_t skipped = 0;
    for (const WatchEvent& event : whole_events) skipped += event.skipped ? 1 : 0;
    FUZZ_CHECK(skipped == oversized, std::to_string(oversized) + " lines over the limit, " +
                                         std::to_string(skipped) + " events skipped");
  }

  ObjectScanner scanner(options.scan);
  for (const WatchEvent& event : whole_events) {
    if (event.skipped) {
      FUZZ_CHECK(event.skipped->limit == options.max_event_bytes, "");
      FUZZ_CHECK(event.skipped->bytes > options.max_event_bytes,
                 "skipped an event of " + std::to_string(event.skipped->bytes) + " bytes");
      FUZZ_CHECK(event.object.json.empty(), "a skipped event carries an object");
      continue;
    }
    if (event.type == WatchEventType::kAdded || event.type == WatchEventType::kModified ||
        event.type == WatchEventType::kDeleted) {
      informerd::fuzz::CheckRecord(event.object, scanner);
    }
  }
  return 0;
}
