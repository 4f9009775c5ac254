#include "core/resource_version.h"

#include <limits>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::core {

absl::StatusOr<uint64_t> ParseResourceVersion(std::string_view text) {
  if (text.empty()) {
    return absl::InvalidArgumentError("resource version is empty");
  }
  uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(
          fmt::format("resource version \"{}\" is not a decimal number", text));
    }
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return absl::InvalidArgumentError(
          fmt::format("resource version \"{}\" is larger than 2^64-1", text));
    }
    value = value * 10 + digit;
  }
  return value;
}

std::string FormatResourceVersion(uint64_t version) { return fmt::format("{}", version); }

}  // namespace informerd::core
