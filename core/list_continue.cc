#include "core/list_continue.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "core/resource_version.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

// The format's first field. Another value is a token of a format this build does not read.
constexpr std::string_view kFormat = "i1";
constexpr std::size_t kFields = 7;

absl::Status Invalid(std::string_view why) {
  return absl::InvalidArgumentError(fmt::format(
      "continue: not a continue token of this list ({}); pass the `continue` of the previous "
      "page's response as it is, with the same resource, namespace and selectors",
      why));
}

}  // namespace

std::string EncodeListContinue(const ListContinue& token) {
  const ListCursor& cursor = token.cursor;
  const std::string text = fmt::format("{}\n{}\n{}\n{}\n{}\n{}\n{}", kFormat, cursor.state.cache_id,
                                       cursor.state.generation, cursor.state.version, token.query,
                                       cursor.after.namespace_name, cursor.after.name);
  return absl::WebSafeBase64Escape(absl::string_view(text.data(), text.size()));
}

absl::StatusOr<ListContinue> DecodeListContinue(std::string_view token) {
  std::string text;
  // Debian's absl has a string_view of its own.
  if (!absl::WebSafeBase64Unescape(absl::string_view(token.data(), token.size()), &text)) {
    return Invalid("not base64");
  }
  std::vector<std::string_view> fields;
  for (std::string_view rest = text;;) {
    const std::size_t end = rest.find('\n');
    fields.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  if (fields.size() != kFields || fields[0] != kFormat) return Invalid("unknown format");
  uint64_t numbers[4] = {};
  for (std::size_t i = 0; i < 4; ++i) {
    const absl::StatusOr<uint64_t> number = ParseResourceVersion(fields[i + 1]);
    if (!number.ok()) return Invalid("malformed");
    numbers[i] = *number;
  }
  ListContinue decoded;
  decoded.cursor.state.cache_id = numbers[0];
  decoded.cursor.state.generation = numbers[1];
  decoded.cursor.state.version = numbers[2];
  decoded.query = numbers[3];
  decoded.cursor.after.namespace_name = std::string(fields[5]);
  decoded.cursor.after.name = std::string(fields[6]);
  if (decoded.cursor.after.name.empty()) return Invalid("malformed");
  return decoded;
}

uint64_t ListQueryHash(std::initializer_list<std::string_view> parts) {
  uint64_t hash = 14695981039346656037ULL;  // FNV-1a 64-bit offset basis
  const auto add = [&hash](unsigned char byte) {
    hash ^= byte;
    hash *= 1099511628211ULL;  // FNV-1a 64-bit prime
  };
  for (const std::string_view part : parts) {
    uint64_t length = part.size();
    for (int i = 0; i < 8; ++i, length >>= 8) add(static_cast<unsigned char>(length & 0xff));
    for (const char c : part) add(static_cast<unsigned char>(c));
  }
  return hash;
}

}  // namespace informerd::core
