#include "core/field_selector.h"

#include <algorithm>
#include <cstddef>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

constexpr std::string_view kEscapes = "a value may escape only '\\', ',' and '='";

// A term as written and where it starts in the selector.
struct Term {
  std::string_view text;
  std::size_t pos;
};

// Kubernetes' splitTerms: split on ',' except where a backslash escapes it. The backslash stays
// in the term; unescaping happens per value.
std::vector<Term> SplitTerms(std::string_view text) {
  std::vector<Term> terms;
  if (text.empty()) return terms;
  std::size_t start = 0;
  bool escaped = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (escaped) {
      escaped = false;
    } else if (text[i] == '\\') {
      escaped = true;
    } else if (text[i] == ',') {
      terms.push_back({text.substr(start, i - start), start});
      start = i + 1;
    }
  }
  terms.push_back({text.substr(start), start});
  return terms;
}

// Bytes in the UTF-8 sequence that starts with `lead`, so an error shows a whole character.
std::size_t Utf8Length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  absl::Status Error(std::string_view what, std::size_t pos, std::string_view why = {}) const {
    return absl::InvalidArgumentError(fmt::format("field selector {:?}: {} at position {}{}{}",
                                                  text_, what, pos, why.empty() ? "" : ": ", why));
  }

  // Kubernetes' UnescapeValue. `pos` is where `raw` starts in the selector.
  absl::StatusOr<std::string> Unescape(std::string_view raw, std::size_t pos) const {
    std::string value;
    value.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const char c = raw[i];
      if (c == '\\') {
        if (i + 1 == raw.size()) {
          return Error("unfinished escape sequence \"\\\\\"", pos + i, kEscapes);
        }
        const char escaped = raw[i + 1];
        if (escaped != '\\' && escaped != ',' && escaped != '=') {
          const std::size_t length =
              std::min(1 + Utf8Length(static_cast<unsigned char>(escaped)), raw.size() - i);
          return Error(fmt::format("invalid escape sequence {:?}", raw.substr(i, length)), pos + i,
                       kEscapes);
        }
        value += escaped;
        ++i;
      } else if (c == '=' || c == ',') {
        // Only '=' can get here (splitTerms ends terms at unescaped commas), but Kubernetes
        // rejects both: an unescaped '=' would make `a=b=c` ambiguous.
        return Error(fmt::format("unescaped '{}' in value", c), pos + i,
                     fmt::format("write \\{} for a literal '{}'", c, c));
      } else {
        value += c;
      }
    }
    return value;
  }

 private:
  std::string_view text_;
};

std::string Escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string FieldRequirement::ToString() const {
  return fmt::format("{}{}{}", field_, op_ == FieldOperator::kEquals ? "=" : "!=", Escape(value_));
}

absl::StatusOr<FieldSelector> FieldSelector::Parse(std::string_view text) {
  const Parser parser(text);
  // Each requirement with the term it came from, which decides the order (see below).
  std::vector<std::pair<std::string_view, FieldRequirement>> parsed;
  for (const Term& term : SplitTerms(text)) {
    if (term.text.empty()) continue;  // Kubernetes skips empty terms: "a=b,,c=d" and ",a=b" parse.
    // Kubernetes' splitTerm: the first position, scanning left to right, where "!=", "==" or "="
    // begins. The field is not unescaped, so a '=' can never be part of it.
    std::size_t at = 0;
    std::size_t op_length = 0;
    FieldOperator op = FieldOperator::kEquals;
    for (; at < term.text.size(); ++at) {
      const std::string_view rest = term.text.substr(at);
      if (rest.substr(0, 2) == "!=") {
        op = FieldOperator::kNotEquals;
        op_length = 2;
        break;
      }
      if (rest.substr(0, 2) == "==") {
        op_length = 2;
        break;
      }
      if (rest.front() == '=') {
        op_length = 1;
        break;
      }
    }
    if (op_length == 0) {
      return parser.Error(fmt::format("expected '=', '==' or '!=' in term {:?}", term.text),
                          term.pos);
    }
    const std::size_t value_pos = at + op_length;
    absl::StatusOr<std::string> value =
        parser.Unescape(term.text.substr(value_pos), term.pos + value_pos);
    if (!value.ok()) return value.status();
    std::string field(term.text.substr(0, at));
    // Kubernetes' ParseSelector drops a term whose field and value are both empty (its
    // hasTerm.Transform returns Everything for them; seen in apimachinery v0.26, older releases
    // kept the term), so "=" and "!=" select everything.
    if (field.empty() && value->empty()) continue;
    parsed.emplace_back(term.text, FieldRequirement(std::move(field), op, *std::move(value)));
  }
  // Kubernetes sorts the terms as written (byte-wise) before parsing them; sorting afterwards
  // gives the same order while errors are still reported in the order the user wrote them.
  std::stable_sort(parsed.begin(), parsed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<FieldRequirement> requirements;
  requirements.reserve(parsed.size());
  for (auto& entry : parsed) requirements.push_back(std::move(entry.second));
  return FieldSelector(std::move(requirements));
}

std::size_t FieldSelector::CountRequirements(std::string_view text) {
  // SplitTerms' rules, without building the terms.
  std::size_t terms = 0;
  std::size_t term_length = 0;
  bool escaped = false;
  for (const char c : text) {
    if (escaped) {
      escaped = false;
    } else if (c == '\\') {
      escaped = true;
    } else if (c == ',') {
      if (term_length > 0) ++terms;
      term_length = 0;
      continue;
    }
    ++term_length;
  }
  if (term_length > 0) ++terms;
  return terms;
}

std::string FieldSelector::ToString() const {
  std::string out;
  for (std::size_t i = 0; i < requirements_.size(); ++i) {
    if (i != 0) out += ',';
    out += requirements_[i].ToString();
  }
  return out;
}

}  // namespace informerd::core
