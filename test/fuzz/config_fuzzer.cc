// libFuzzer target: the daemon's configuration file parser (daemon/config.h: ParseConfig), with
// ParseDuration and ParseResourcePattern, which it uses, on the same bytes.
//
// Input: the YAML text. Checks, for a configuration that parses: the documented bounds hold
// (onDemandGracePeriod at most 24h and not negative, maxOnDemandInformers 1 to 10000,
// maxObjectBytes and the subscriber queue positive), every resource is named, and every
// onDemandResources pattern prints as text that parses back to the same pattern. A parse error
// is InvalidArgument (yaml-cpp's exceptions never escape). ParseDuration of the whole text is
// never negative; a resource pattern that parses round-trips through ToString.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/config.h"
#include "test/fuzz/fuzz_common.h"

namespace {

void CheckPatternRoundTrip(const informerd::daemon::ResourcePattern& pattern) {
  absl::StatusOr<informerd::daemon::ResourcePattern> again =
      informerd::daemon::ParseResourcePattern(pattern.ToString());
  FUZZ_CHECK(
      again.ok() && *again == pattern,
      "pattern \"" + pattern.ToString() + "\" does not parse back: " + again.status().ToString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (std::optional<std::chrono::milliseconds> duration = informerd::daemon::ParseDuration(text)) {
    FUZZ_CHECK(duration->count() >= 0, std::string(text));
  }
  if (absl::StatusOr<informerd::daemon::ResourcePattern> pattern =
          informerd::daemon::ParseResourcePattern(text);
      pattern.ok()) {
    CheckPatternRoundTrip(*pattern);
  }

  absl::StatusOr<informerd::daemon::Config> config =
      informerd::daemon::ParseConfig(text, "fuzz.yaml");
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
               config.status().ToString());
    return 0;
  }
  FUZZ_CHECK(config->on_demand_grace_period.count() >= 0, "");
  FUZZ_CHECK(config->on_demand_grace_period <= std::chrono::hours(24), "");
  FUZZ_CHECK(config->max_on_demand_informers >= 1 && config->max_on_demand_informers <= 10000,
             std::to_string(config->max_on_demand_informers));
  FUZZ_CHECK(config->max_object_bytes > 0, "");
  FUZZ_CHECK(config->subscriber_queue_capacity > 0, "");
  for (const auto& resource : config->resources) {
    FUZZ_CHECK(!resource.resource.empty(), "a resource without a name was accepted");
  }
  if (config->on_demand_resources) {
    for (const auto& pattern : *config->on_demand_resources) CheckPatternRoundTrip(pattern);
  }
  return 0;
}
