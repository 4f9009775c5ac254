#include "core/label_selector.h"

#include <algorithm>
#include <cstddef>
#include <limits>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

// ---- Lexing (k8s.io/apimachinery/pkg/labels/selector.go, Lexer) -------------------------------

enum class TokenKind {
  kEnd,
  kWord,  // a key, a value, or the keywords `in` / `notin` (which are keywords only where an
          // operator is expected: `in in (in)` is a valid selector, as in Kubernetes)
  kComma,
  kOpenParen,
  kCloseParen,
  kBang,
  kEquals,
  kDoubleEquals,
  kNotEquals,
  kGreaterThan,
  kLessThan,
};

struct Token {
  TokenKind kind;
  std::string_view text;  // empty for kEnd
  std::size_t pos;        // byte offset in the selector; the input's length for kEnd
};

// Kubernetes' isWhitespace: only these four separate tokens.
bool IsWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Kubernetes' isSpecialSymbol: these end a word even without whitespace, so `a=b,c!=d` lexes.
bool IsSpecialSymbol(char c) {
  switch (c) {
    case '=':
    case '!':
    case '(':
    case ')':
    case ',':
    case '>':
    case '<':
      return true;
    default:
      return false;
  }
}

TokenKind SingleSymbolKind(char c) {
  switch (c) {
    case '=':
      return TokenKind::kEquals;
    case '!':
      return TokenKind::kBang;
    case '(':
      return TokenKind::kOpenParen;
    case ')':
      return TokenKind::kCloseParen;
    case ',':
      return TokenKind::kComma;
    case '>':
      return TokenKind::kGreaterThan;
    default:
      return TokenKind::kLessThan;
  }
}

// Every byte that is neither whitespace nor a special symbol belongs to a word; words are
// validated as keys or values later, which is where anything else (`*`, `:`, non-ASCII) fails.
// One deliberate difference: Go's lexer reads a NUL byte as the end of input and silently drops
// what follows; here NUL is an ordinary byte, so it fails validation instead of truncating.
std::vector<Token> Tokenize(std::string_view text) {
  std::vector<Token> tokens;
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (true) {
    while (i < n && IsWhitespace(text[i])) ++i;
    if (i == n) {
      tokens.push_back({TokenKind::kEnd, {}, n});
      return tokens;
    }
    const std::size_t start = i;
    const char c = text[i];
    if (IsSpecialSymbol(c)) {
      // Kubernetes scans symbols greedily, and the only two-symbol operators are != and ==.
      // Anything else is a run of one-symbol tokens (`>=` is `>` then `=`, and fails later).
      if ((c == '!' || c == '=') && i + 1 < n && text[i + 1] == '=') {
        tokens.push_back(
            {c == '!' ? TokenKind::kNotEquals : TokenKind::kDoubleEquals, text.substr(i, 2), i});
        i += 2;
      } else {
        tokens.push_back({SingleSymbolKind(c), text.substr(i, 1), i});
        ++i;
      }
      continue;
    }
    while (i < n && !IsSpecialSymbol(text[i]) && !IsWhitespace(text[i])) ++i;
    tokens.push_back({TokenKind::kWord, text.substr(start, i - start), start});
  }
}

// ---- Validation (k8s.io/apimachinery/pkg/util/validation: IsQualifiedName, IsValidLabelValue) --

constexpr std::size_t kMaxPrefixLength = 253;  // DNS1123SubdomainMaxLength
constexpr std::size_t kMaxNameLength = 63;     // qualifiedNameMaxLength
constexpr std::size_t kMaxValueLength = 63;    // LabelValueMaxLength

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// qualifiedNameFmt: ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool IsQualifiedNamePart(std::string_view s) {
  if (s.empty() || !IsAsciiAlnum(s.front()) || !IsAsciiAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAsciiAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// dns1123LabelFmt: [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool IsDns1123Label(std::string_view s) {
  if (s.empty() || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

// dns1123SubdomainFmt: dns1123LabelFmt(\.dns1123LabelFmt)*. Kubernetes limits only the total
// length (253) here, not each dot-separated part.
bool IsDns1123Subdomain(std::string_view s) {
  while (true) {
    const std::size_t dot = s.find('.');
    if (!IsDns1123Label(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

// Why `key` is not a valid label key, or nullopt. Kubernetes reports every broken rule at once;
// we report the first, in the order IsQualifiedName checks them.
std::optional<std::string_view> KeyProblem(std::string_view key) {
  std::string_view name = key;
  const std::size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    if (key.find('/', slash + 1) != std::string_view::npos) {
      return "a key is a name with an optional DNS subdomain prefix and one '/' "
             "(e.g. 'example.com/MyName')";
    }
    const std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty()) return "prefix part must be non-empty";
    if (prefix.size() > kMaxPrefixLength) return "prefix part must be no more than 253 characters";
    if (!IsDns1123Subdomain(prefix)) {
      return "prefix part must be a lowercase RFC 1123 subdomain: dot-separated parts of lower "
             "case alphanumeric characters or '-', each starting and ending with an alphanumeric "
             "character (e.g. 'example.com')";
    }
  }
  if (name.empty()) return "name part must be non-empty";
  if (name.size() > kMaxNameLength) return "name part must be no more than 63 characters";
  if (!IsQualifiedNamePart(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
           "and end with an alphanumeric character (e.g. 'MyName', 'my.name', '123-abc')";
  }
  return std::nullopt;
}

std::optional<std::string_view> ValueProblem(std::string_view value) {
  if (value.size() > kMaxValueLength) return "must be no more than 63 characters";
  if (!value.empty() && !IsQualifiedNamePart(value)) {
    return "must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start "
           "and end with an alphanumeric character";
  }
  return std::nullopt;
}

// strconv.ParseInt(s, 10, 64), which Kubernetes uses for both sides of > and <: an optional sign,
// at least one decimal digit, and a value that fits in 64 bits.
std::optional<std::int64_t> ParseInt64(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  constexpr std::uint64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::uint64_t limit = negative ? kMax + 1 : kMax;
  std::uint64_t magnitude = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (magnitude > (limit - digit) / 10) return std::nullopt;
    magnitude = magnitude * 10 + digit;
  }
  if (!negative) return static_cast<std::int64_t>(magnitude);
  if (magnitude == kMax + 1) return std::numeric_limits<std::int64_t>::min();
  return -static_cast<std::int64_t>(magnitude);
}

std::string Describe(const Token& token) {
  if (token.kind == TokenKind::kEnd) return "end of string";
  return fmt::format("{:?}", token.text);
}

}  // namespace

// ---- Parsing (k8s.io/apimachinery/pkg/labels/selector.go, Parser) ------------------------------
//
// A recursive descent over the token list with the same decisions, in the same order, as the
// Kubernetes parser, so that the same inputs are accepted and rejected.
class LabelSelectorParser {
 public:
  explicit LabelSelectorParser(std::string_view text) : text_(text), tokens_(Tokenize(text)) {}

  absl::StatusOr<LabelSelector> Parse() {
    std::vector<LabelRequirement> requirements;
    if (Peek().kind == TokenKind::kEnd) return LabelSelector();  // "" selects everything
    while (true) {
      absl::StatusOr<LabelRequirement> requirement = ParseRequirement();
      if (!requirement.ok()) return requirement.status();
      requirements.push_back(*std::move(requirement));
      const Token& separator = Next();
      if (separator.kind == TokenKind::kEnd) break;
      if (separator.kind != TokenKind::kComma) {
        return Unexpected("',' or end of string", separator);
      }
    }
    // Kubernetes sorts by key for a deterministic String(); stable keeps ties in written order.
    std::stable_sort(
        requirements.begin(), requirements.end(),
        [](const LabelRequirement& a, const LabelRequirement& b) { return a.key() < b.key(); });
    return LabelSelector(std::move(requirements));
  }

 private:
  // A value as written, before validation: `in ()` and `k=` produce an empty one with the
  // position where it would have been.
  struct RawValue {
    std::string_view text;
    std::size_t pos;
  };

  const Token& Peek() const { return tokens_[next_]; }

  const Token& Next() {
    const Token& token = tokens_[next_];
    if (token.kind != TokenKind::kEnd) ++next_;
    return token;
  }

  absl::Status Error(std::string_view what, std::size_t pos, std::string_view why = {}) const {
    return absl::InvalidArgumentError(fmt::format("label selector {:?}: {} at position {}{}{}",
                                                  text_, what, pos, why.empty() ? "" : ": ", why));
  }

  // "expected <expected> after <the token before found>, found <found> at position <n>".
  absl::Status Unexpected(std::string_view expected, const Token& found) const {
    const auto index = static_cast<std::size_t>(&found - tokens_.data());
    const std::string after = index == 0 ? "" : " after " + Describe(tokens_[index - 1]);
    return Error(fmt::format("expected {}{}, found {}", expected, after, Describe(found)),
                 found.pos);
  }

  // <requirement> ::= [!] KEY [ ("in" | "notin") "(" <values> ")" | ("="|"=="|"!="|">"|"<") VALUE ]
  absl::StatusOr<LabelRequirement> ParseRequirement() {
    const Token* key = &Next();
    const bool negated = key->kind == TokenKind::kBang;
    if (negated) {
      key = &Next();
      if (key->kind != TokenKind::kWord) return Unexpected("a key", *key);
    } else if (key->kind != TokenKind::kWord) {
      return Unexpected("a key or '!'", *key);
    }
    if (const auto problem = KeyProblem(key->text)) {
      return Error(fmt::format("invalid key {:?}", key->text), key->pos, *problem);
    }

    // A bare key means "exists". `!key` never takes an operator: whatever follows it must end
    // the requirement, so `!a=b` fails at the '=' (as in Kubernetes, which infers DoesNotExist
    // and returns before looking for an operator).
    const TokenKind following = Peek().kind;
    if (negated || following == TokenKind::kEnd || following == TokenKind::kComma) {
      return LabelRequirement(std::string(key->text),
                              negated ? LabelOperator::kDoesNotExist : LabelOperator::kExists, {},
                              0);
    }

    const Token& op_token = Next();
    LabelOperator op;
    switch (op_token.kind) {
      case TokenKind::kEquals:
        op = LabelOperator::kEquals;
        break;
      case TokenKind::kDoubleEquals:
        op = LabelOperator::kDoubleEquals;
        break;
      case TokenKind::kNotEquals:
        op = LabelOperator::kNotEquals;
        break;
      case TokenKind::kGreaterThan:
        op = LabelOperator::kGreaterThan;
        break;
      case TokenKind::kLessThan:
        op = LabelOperator::kLessThan;
        break;
      case TokenKind::kWord:
        if (op_token.text == "in") {
          op = LabelOperator::kIn;
          break;
        }
        if (op_token.text == "notin") {
          op = LabelOperator::kNotIn;
          break;
        }
        [[fallthrough]];
      default:
        return Unexpected("an operator (=, ==, !=, in, notin, >, <)", op_token);
    }

    std::vector<RawValue> raw;
    const bool is_set = op == LabelOperator::kIn || op == LabelOperator::kNotIn;
    if (absl::Status status = is_set ? ParseValueSet(raw) : ParseExactValue(raw); !status.ok()) {
      return status;
    }

    // The syntax is complete; now the checks Kubernetes makes in NewRequirement, in its order.
    std::int64_t bound = 0;
    if (op == LabelOperator::kGreaterThan || op == LabelOperator::kLessThan) {
      const std::optional<std::int64_t> parsed = ParseInt64(raw.front().text);
      if (!parsed) {
        return Error(fmt::format("invalid value {:?}", raw.front().text), raw.front().pos,
                     "'>' and '<' need a 64-bit integer value");
      }
      bound = *parsed;
    }
    for (const RawValue& value : raw) {
      if (const auto problem = ValueProblem(value.text)) {
        return Error(fmt::format("invalid value {:?}", value.text), value.pos, *problem);
      }
    }

    // Kubernetes collects values in a set: sorted, duplicates dropped.
    std::vector<std::string> values;
    values.reserve(raw.size());
    for (const RawValue& value : raw) values.emplace_back(value.text);
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return LabelRequirement(std::string(key->text), op, std::move(values), bound);
  }

  // "(" <values> ")" after in / notin (Kubernetes' parseValues and parseIdentifiersList). A value
  // may be empty: `()`, `(,)`, `(a,)`, `(,a)` and `(a,,b)` all include "". The loop below keeps
  // Kubernetes' exact comma handling, quirks included: it consumes commas in pairs after an empty
  // slot, so `(,,,)` is accepted while `(,,)` and `(a,,)` are rejected.
  absl::Status ParseValueSet(std::vector<RawValue>& raw) {
    const Token& open = Next();
    if (open.kind != TokenKind::kOpenParen) return Unexpected("'('", open);
    const Token& first = Peek();
    if (first.kind == TokenKind::kCloseParen) {
      Next();
      raw.push_back({{}, first.pos});
      return absl::OkStatus();
    }
    if (first.kind != TokenKind::kWord && first.kind != TokenKind::kComma) {
      return Unexpected("a value, ',' or ')'", first);
    }
    while (true) {
      const Token& token = Next();
      if (token.kind == TokenKind::kWord) {
        raw.push_back({token.text, token.pos});
        const Token& after = Peek();
        if (after.kind == TokenKind::kComma) continue;
        if (after.kind == TokenKind::kCloseParen) {
          Next();
          return absl::OkStatus();
        }
        return Unexpected("',' or ')'", after);
      }
      if (token.kind == TokenKind::kComma) {
        if (raw.empty()) raw.push_back({{}, token.pos});  // "(,": the slot before is empty
        const Token& after = Peek();
        if (after.kind == TokenKind::kCloseParen) {  // ",)": the slot after is empty
          raw.push_back({{}, after.pos});
          Next();
          return absl::OkStatus();
        }
        if (after.kind == TokenKind::kComma) {  // ",,": the slot between is empty
          Next();
          raw.push_back({{}, after.pos});
        }
        continue;
      }
      return Unexpected("a value or ','", token);
    }
  }

  // The single VALUE after =, ==, !=, > or < (Kubernetes' parseExactValue). Nothing before the
  // next ',' or the end means the empty value: `a=` selects labels a with value "".
  absl::Status ParseExactValue(std::vector<RawValue>& raw) {
    const Token& token = Peek();
    if (token.kind == TokenKind::kEnd || token.kind == TokenKind::kComma) {
      raw.push_back({{}, token.pos});
      return absl::OkStatus();
    }
    Next();
    if (token.kind != TokenKind::kWord) return Unexpected("a value", token);
    raw.push_back({token.text, token.pos});
    return absl::OkStatus();
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  std::size_t next_ = 0;
};

std::optional<std::string_view> LabelRequirement::ExactValue() const {
  const bool exact = op_ == LabelOperator::kEquals || op_ == LabelOperator::kDoubleEquals ||
                     op_ == LabelOperator::kIn;
  if (!exact || values_.size() != 1) return std::nullopt;
  return values_.front();
}

bool LabelRequirement::Matches(const LabelSet& labels) const {
  // Kubernetes' Requirement.Matches: the negative operators (!=, notin) also match objects that
  // lack the key; the positive ones and > / < need it.
  const FoundLabel value = labels.Find(key_);
  const auto has_value = [this](std::string_view v) {
    return std::binary_search(values_.begin(), values_.end(), v);
  };
  switch (op_) {
    case LabelOperator::kEquals:
    case LabelOperator::kDoubleEquals:
    case LabelOperator::kIn:
      return value != nullptr && has_value(*value);
    case LabelOperator::kNotEquals:
    case LabelOperator::kNotIn:
      return value == nullptr || !has_value(*value);
    case LabelOperator::kExists:
      return value != nullptr;
    case LabelOperator::kDoesNotExist:
      return value == nullptr;
    case LabelOperator::kGreaterThan:
    case LabelOperator::kLessThan: {
      if (value == nullptr) return false;
      // A label that is not an integer never satisfies > or <.
      const std::optional<std::int64_t> actual = ParseInt64(*value);
      if (!actual) return false;
      return op_ == LabelOperator::kGreaterThan ? *actual > bound_ : *actual < bound_;
    }
  }
  return false;
}

std::string LabelRequirement::ToString() const {
  std::string out;
  if (op_ == LabelOperator::kDoesNotExist) out += '!';
  out += key_;
  const auto single = [&](std::string_view symbol) {
    out += symbol;
    out += values_.front();
    return out;
  };
  switch (op_) {
    case LabelOperator::kExists:
    case LabelOperator::kDoesNotExist:
      return out;
    case LabelOperator::kEquals:
      return single("=");
    case LabelOperator::kDoubleEquals:
      return single("==");
    case LabelOperator::kNotEquals:
      return single("!=");
    case LabelOperator::kGreaterThan:
      return single(">");
    case LabelOperator::kLessThan:
      return single("<");
    case LabelOperator::kIn:
    case LabelOperator::kNotIn:
      break;
  }
  out += op_ == LabelOperator::kIn ? " in (" : " notin (";
  for (std::size_t i = 0; i < values_.size(); ++i) {
    if (i != 0) out += ',';
    out += values_[i];
  }
  out += ')';
  return out;
}

absl::StatusOr<LabelSelector> LabelSelector::Parse(std::string_view text) {
  return LabelSelectorParser(text).Parse();
}

std::size_t LabelSelector::CountRequirements(std::string_view text) {
  // Requirements are separated by commas; the only commas that are not separators are those
  // inside an `in (...)` or `notin (...)` value set. Unbalanced parentheses make the selector
  // invalid anyway: a ')' without its '(' is ignored, so the count never misses a separator.
  std::size_t commas = 0;
  std::size_t depth = 0;
  bool blank = true;
  for (const char c : text) {
    if (!IsWhitespace(c)) blank = false;
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (depth > 0) --depth;
    } else if (c == ',' && depth == 0) {
      ++commas;
    }
  }
  return blank ? 0 : commas + 1;
}

bool LabelSelector::Matches(const LabelSet& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&labels](const LabelRequirement& r) { return r.Matches(labels); });
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (const LabelRequirement& requirement : requirements_) {
    if (!out.empty()) out += ',';
    out += requirement.ToString();
  }
  return out;
}

}  // namespace informerd::core
