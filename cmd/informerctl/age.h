// Age: the AGE column, "5m30s" from an object's metadata.creationTimestamp, as kubectl prints it.
//
// Pure functions over explicit times, called by the table printers (output.h) with the time each
// row is printed; tests pass fixed times. The rounding rules are apimachinery's
// duration.HumanDuration (k8s.io/apimachinery/pkg/util/duration), so informerctl and kubectl
// agree on the age of the same object.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace informerd::ctl {

// "2024-05-01T10:00:00Z" (RFC 3339, as metav1.Time is serialized; fractions and numeric offsets
// accepted) → seconds since the Unix epoch. nullopt when it is not such a timestamp.
std::optional<int64_t> ParseRfc3339(std::string_view text);

// kubectl's rendering of an elapsed time: "45s", "5m30s", "3h", "2d4h", "3y"; "0s" up to one
// second in the future (clock skew), "<invalid>" beyond that.
std::string HumanDuration(std::chrono::milliseconds elapsed);

// The AGE cell: "<unknown>" for an empty timestamp, "<invalid>" for one that does not parse.
std::string FormatAge(std::string_view creation_timestamp,
                      std::chrono::system_clock::time_point now);

}  // namespace informerd::ctl
