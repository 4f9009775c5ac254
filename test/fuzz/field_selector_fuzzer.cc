// libFuzzer target: FieldSelector::Parse (core/field_selector.h).
//
// Input: the selector text. Checks, for a selector that parses: its canonical text parses and
// selects the same objects (the same requirements, as a set); printing that once more is a fixed
// point (the header allows the order to change once); each requirement's text parses back to
// that requirement.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/field_selector.h"
#include "test/fuzz/fuzz_common.h"

namespace {

using informerd::core::FieldSelector;

std::vector<std::tuple<std::string, int, std::string>> Terms(const FieldSelector& selector) {
  std::vector<std::tuple<std::string, int, std::string>> terms;
  for (const auto& requirement : selector.requirements()) {
    terms.emplace_back(requirement.field(), static_cast<int>(requirement.op()),
                       requirement.value());
  }
  std::sort(terms.begin(), terms.end());
  return terms;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<FieldSelector> selector = FieldSelector::Parse(text);
  if (!selector.ok()) {
    FUZZ_CHECK(selector.status().code() == absl::StatusCode::kInvalidArgument,
               selector.status().ToString());
    return 0;
  }
  const std::string canonical = selector->ToString();
  absl::StatusOr<FieldSelector> reparsed = FieldSelector::Parse(canonical);
  FUZZ_CHECK(reparsed.ok(), "canonical text \"" + canonical + "\" of \"" + std::string(text) +
                                "\" does not parse: " + reparsed.status().ToString());
  FUZZ_CHECK(Terms(*reparsed) == Terms(*selector),
             "\"" + std::string(text) + "\" and its canonical text \"" + canonical + "\" differ");
  const std::string twice = reparsed->ToString();
  absl::StatusOr<FieldSelector> third = FieldSelector::Parse(twice);
  FUZZ_CHECK(third.ok() && third->ToString() == twice, "\"" + twice + "\" is not a fixed point");
  FUZZ_CHECK(selector->empty() == canonical.empty(), canonical);
  for (const auto& requirement : selector->requirements()) {
    absl::StatusOr<FieldSelector> one = FieldSelector::Parse(requirement.ToString());
    FUZZ_CHECK(one.ok() && one->requirements().size() == 1 &&
                   one->requirements()[0].field() == requirement.field() &&
                   one->requirements()[0].op() == requirement.op() &&
                   one->requirements()[0].value() == requirement.value(),
               "term \"" + requirement.ToString() + "\" does not parse back");
  }
  return 0;
}
