#include "test/fakeapi/selectors.h"

#include <cctype>
#include <cstdlib>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::fakeapi {
namespace {

// A token of the label selector grammar.
struct Token {
  enum Type { kIdentifier, kNot, kEquals, kDoubleEquals, kNotEquals, kGreater, kLess, kOpen,
              kClose, kComma, kEnd } type;
  std::string text;
};

bool IsIdentifierChar(char c) {
  return !std::isspace(static_cast<unsigned char>(c)) && c != ',' && c != '(' && c != ')' &&
         c != '!' && c != '=' && c != '<' && c != '>';
}

std::vector<Token> Lex(std::string_view text) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '!' && i + 1 < text.size() && text[i + 1] == '=') {
      tokens.push_back({Token::kNotEquals, "!="});
      i += 2;
    } else if (c == '!') {
      tokens.push_back({Token::kNot, "!"});
      ++i;
    } else if (c == '=' && i + 1 < text.size() && text[i + 1] == '=') {
      tokens.push_back({Token::kDoubleEquals, "=="});
      i += 2;
    } else if (c == '=') {
      tokens.push_back({Token::kEquals, "="});
      ++i;
    } else if (c == '>') {
      tokens.push_back({Token::kGreater, ">"});
      ++i;
    } else if (c == '<') {
      tokens.push_back({Token::kLess, "<"});
      ++i;
    } else if (c == '(') {
      tokens.push_back({Token::kOpen, "("});
      ++i;
    } else if (c == ')') {
      tokens.push_back({Token::kClose, ")"});
      ++i;
    } else if (c == ',') {
      tokens.push_back({Token::kComma, ","});
      ++i;
    } else {
      std::size_t start = i;
      while (i < text.size() && IsIdentifierChar(text[i])) ++i;
      tokens.push_back({Token::kIdentifier, std::string(text.substr(start, i - start))});
    }
  }
  tokens.push_back({Token::kEnd, ""});
  return tokens;
}

absl::Status ParseError(std::string_view text, const std::string& why) {
  return absl::InvalidArgumentError(
      fmt::format("unable to parse requirement: {} (in label selector \"{}\")", why, text));
}

}  // namespace

absl::StatusOr<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector selector;
  const std::vector<Token> tokens = Lex(text);
  std::size_t pos = 0;
  auto peek = [&]() -> const Token& { return tokens[pos]; };
  if (peek().type == Token::kEnd) return selector;
  while (true) {
    Requirement req;
    if (peek().type == Token::kNot) {
      ++pos;
      if (peek().type != Token::kIdentifier) return ParseError(text, "expected a key after '!'");
      req.key = tokens[pos++].text;
      req.op = Op::kDoesNotExist;
    } else if (peek().type == Token::kIdentifier) {
      req.key = tokens[pos++].text;
      const Token& op = peek();
      if (op.type == Token::kComma || op.type == Token::kEnd) {
        req.op = Op::kExists;
      } else if (op.type == Token::kEquals || op.type == Token::kDoubleEquals ||
                 op.type == Token::kNotEquals) {
        req.op = op.type == Token::kNotEquals ? Op::kNotIn : Op::kIn;
        ++pos;
        // "a=" selects the empty value.
        if (peek().type == Token::kIdentifier) {
          req.values.insert(tokens[pos++].text);
        } else {
          req.values.insert("");
        }
      } else if (op.type == Token::kGreater || op.type == Token::kLess) {
        req.op = op.type == Token::kGreater ? Op::kGreaterThan : Op::kLessThan;
        ++pos;
        if (peek().type != Token::kIdentifier) return ParseError(text, "expected an integer");
        const std::string& number = tokens[pos++].text;
        char* end = nullptr;
        req.bound = std::strtoll(number.c_str(), &end, 10);
        if (end == number.c_str() || *end != '\0') {
          return ParseError(text, fmt::format("for 'Gt', 'Lt' operators, the value must be an integer, got {}", number));
        }
      } else if (op.type == Token::kIdentifier && (op.text == "in" || op.text == "notin")) {
        req.op = op.text == "in" ? Op::kIn : Op::kNotIn;
        ++pos;
        if (peek().type != Token::kOpen) return ParseError(text, "expected '(' after in/notin");
        ++pos;
        while (true) {
          if (peek().type == Token::kIdentifier) {
            req.values.insert(tokens[pos++].text);
          } else if (peek().type == Token::kComma || peek().type == Token::kClose) {
            req.values.insert("");  // "in (a,)" holds the empty value, as upstream parses it.
          } else {
            return ParseError(text, "expected a value");
          }
          if (peek().type == Token::kComma) {
            ++pos;
            continue;
          }
          if (peek().type == Token::kClose) {
            ++pos;
            break;
          }
          return ParseError(text, "expected ',' or ')'");
        }
      } else {
        return ParseError(text, fmt::format("unexpected '{}' after key {}", op.text, req.key));
      }
    } else {
      return ParseError(text, fmt::format("found '{}', expected: !, identifier, or 'end of string'", peek().text));
    }
    selector.requirements_.push_back(std::move(req));
    if (peek().type == Token::kEnd) break;
    if (peek().type != Token::kComma) {
      return ParseError(text, fmt::format("found '{}', expected: ',' or 'end of string'", peek().text));
    }
    ++pos;
  }
  return selector;
}

bool LabelSelector::Matches(const Labels& labels) const {
  for (const Requirement& req : requirements_) {
    auto it = labels.find(req.key);
    const bool has = it != labels.end();
    switch (req.op) {
      case Op::kExists:
        if (!has) return false;
        break;
      case Op::kDoesNotExist:
        if (has) return false;
        break;
      case Op::kIn:
        if (!has || req.values.count(it->second) == 0) return false;
        break;
      case Op::kNotIn:
        // Absent keys satisfy != and notin (labels/selector.go, Requirement.Matches).
        if (has && req.values.count(it->second) != 0) return false;
        break;
      case Op::kGreaterThan:
      case Op::kLessThan: {
        if (!has) return false;
        char* end = nullptr;
        const long long value = std::strtoll(it->second.c_str(), &end, 10);
        if (end == it->second.c_str() || *end != '\0') return false;
        if (req.op == Op::kGreaterThan ? !(value > req.bound) : !(value < req.bound)) return false;
        break;
      }
    }
  }
  return true;
}

absl::StatusOr<FieldSelector> FieldSelector::Parse(std::string_view text,
                                                   FieldLabelErrors errors) {
  FieldSelector selector;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view term = text.substr(start, comma - start);
    start = comma + 1;
    while (!term.empty() && term.front() == ' ') term.remove_prefix(1);
    while (!term.empty() && term.back() == ' ') term.remove_suffix(1);
    if (term.empty()) {
      if (comma == text.size()) break;
      continue;
    }
    Term t;
    std::size_t op_at;
    std::size_t op_len;
    if ((op_at = term.find("!=")) != std::string_view::npos) {
      t.equal = false;
      op_len = 2;
    } else if ((op_at = term.find("==")) != std::string_view::npos) {
      t.equal = true;
      op_len = 2;
    } else if ((op_at = term.find('=')) != std::string_view::npos) {
      t.equal = true;
      op_len = 1;
    } else {
      return absl::InvalidArgumentError(
          fmt::format("invalid selector: '{}'; can't understand '{}'", text, term));
    }
    const std::string_view field = term.substr(0, op_at);
    t.value = std::string(term.substr(op_at + op_len));
    if (field == "metadata.name") {
      t.on_name = true;
    } else if (field == "metadata.namespace") {
      t.on_name = false;
    } else {
      if (errors == FieldLabelErrors::kNotAKnownFieldSelector) {
        return absl::InvalidArgumentError(fmt::format(
            "\"{}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            field));
      }
      return absl::InvalidArgumentError(fmt::format("field label not supported: {}", field));
    }
    selector.terms_.push_back(std::move(t));
    if (comma == text.size()) break;
  }
  return selector;
}

bool FieldSelector::Matches(std::string_view namespace_name, std::string_view name) const {
  for (const Term& t : terms_) {
    const std::string_view actual = t.on_name ? name : namespace_name;
    if ((actual == t.value) != t.equal) return false;
  }
  return true;
}

}  // namespace informerd::fakeapi
