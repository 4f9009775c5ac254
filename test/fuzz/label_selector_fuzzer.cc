// libFuzzer target: LabelSelector::Parse (core/label_selector.h).
//
// Input: the selector text. Checks, for a selector that parses: its canonical text parses, to
// the same canonical text (a fixed point) and the same requirements; both selectors match the
// same label sets; each requirement's ExactValue, when set, is its only value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/label_selector.h"
#include "test/fuzz/fuzz_common.h"

namespace {

using informerd::core::LabelOperator;
using informerd::core::LabelSelector;
using informerd::core::LabelSet;

const std::vector<LabelSet>& Samples() {
  static const std::vector<LabelSet> samples = {
      {},
      {{"app", "web"}, {"tier", "frontend"}, {"replicas", "3"}},
      {{"app", ""}, {"env", "prod"}, {"app.kubernetes.io/name", "web"}, {"n", "-12"}},
      {{"a", "b"}, {"x", "y"}, {"example.com/key", "v_1.2-3"}, {"size", "42"}},
  };
  return samples;
}

std::string Requirements(const LabelSelector& selector) {
  std::string out;
  for (const auto& requirement : selector.requirements()) {
    out += requirement.key() + " op" + std::to_string(static_cast<int>(requirement.op())) + " [";
    for (const std::string& value : requirement.values()) out += value + ",";
    out += "]\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<LabelSelector> selector = LabelSelector::Parse(text);
  if (!selector.ok()) {
    FUZZ_CHECK(selector.status().code() == absl::StatusCode::kInvalidArgument,
               selector.status().ToString());
    return 0;
  }
  const std::string canonical = selector->ToString();
  absl::StatusOr<LabelSelector> reparsed = LabelSelector::Parse(canonical);
  FUZZ_CHECK(reparsed.ok(), "canonical text \"" + canonical + "\" of \"" + std::string(text) +
                                "\" does not parse: " + reparsed.status().ToString());
  FUZZ_CHECK(reparsed->ToString() == canonical,
             "\"" + canonical + "\" prints as \"" + reparsed->ToString() + "\"");
  FUZZ_CHECK(Requirements(*reparsed) == Requirements(*selector),
             "input \"" + std::string(text) + "\"\n" + Requirements(*selector) + "reparsed\n" +
                 Requirements(*reparsed));
  FUZZ_CHECK(selector->empty() == canonical.empty(), canonical);
  for (const LabelSet& labels : Samples()) {
    FUZZ_CHECK(selector->Matches(labels) == reparsed->Matches(labels), canonical);
  }
  for (const auto& requirement : selector->requirements()) {
    if (std::optional<std::string_view> exact = requirement.ExactValue()) {
      FUZZ_CHECK(requirement.values().size() == 1 && requirement.values()[0] == *exact,
                 requirement.ToString());
    }
    const auto op = requirement.op();
    if (op == LabelOperator::kExists || op == LabelOperator::kDoesNotExist) {
      FUZZ_CHECK(requirement.values().empty(), requirement.ToString());
    } else {
      FUZZ_CHECK(!requirement.values().empty(), requirement.ToString());
    }
  }
  return 0;
}
