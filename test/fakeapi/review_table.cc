#include "test/fakeapi/review_table.h"

#include <algorithm>

namespace informerd::fakeapi {
namespace {

bool FieldMatches(const std::string& pattern, const std::string& value) {
  return pattern == "*" || pattern == value;
}

// Go's %q of a []string, as the apiserver's audience error prints it: ["a" "b"].
std::string QuotedList(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += " ";
    out += "\"";
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\"";
  }
  return out + "]";
}

}  // namespace

bool AccessRule::Matches(const AccessQuery& query) const {
  const std::string group_prefix = "group:";
  bool subject = false;
  if (user.compare(0, group_prefix.size(), group_prefix) == 0) {
    const std::string wanted = user.substr(group_prefix.size());
    subject = std::find(query.groups.begin(), query.groups.end(), wanted) != query.groups.end();
  } else {
    subject = FieldMatches(user, query.user);
  }
  return subject && FieldMatches(verb, query.verb) && FieldMatches(group, query.group) &&
         FieldMatches(resource, query.resource) &&
         FieldMatches(namespace_name, query.namespace_name) && FieldMatches(name, query.name);
}

bool AccessRule::operator==(const AccessRule& other) const {
  return user == other.user && verb == other.verb && group == other.group &&
         resource == other.resource && namespace_name == other.namespace_name && name == other.name;
}

void ReviewTable::AddToken(const std::string& token, TokenIdentity identity) {
  std::lock_guard<std::mutex> lock(mutex_);
  tokens_[token] = std::move(identity);
}

void ReviewTable::RemoveToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(mutex_);
  tokens_.erase(token);
}

void ReviewTable::SetAccess(const AccessRule& rule, AccessAnswer answer) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [existing, existing_answer] : rules_) {
    if (existing == rule) {
      existing_answer = std::move(answer);
      return;
    }
  }
  rules_.emplace_back(rule, std::move(answer));
}

void ReviewTable::Allow(const AccessRule& rule, std::string reason) {
  AccessAnswer answer;
  answer.allowed = true;
  answer.reason = std::move(reason);
  SetAccess(rule, std::move(answer));
}

void ReviewTable::Deny(const AccessRule& rule, std::string reason) {
  AccessAnswer answer;
  answer.reason = std::move(reason);
  SetAccess(rule, std::move(answer));
}

bool ReviewTable::RemoveAccess(const AccessRule& rule) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = std::find_if(rules_.begin(), rules_.end(),
                         [&](const auto& entry) { return entry.first == rule; });
  if (it == rules_.end()) return false;
  rules_.erase(it);
  return true;
}

void ReviewTable::ClearAccess() {
  std::lock_guard<std::mutex> lock(mutex_);
  rules_.clear();
}

TokenReviewOutcome ReviewTable::ReviewToken(const std::string& token,
                                            const std::vector<std::string>& audiences) const {
  TokenReviewOutcome outcome;
  TokenIdentity identity;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) {
      outcome.error = "invalid bearer token";
      return outcome;
    }
    identity = it->second;
  }
  const std::vector<std::string> token_audiences =
      identity.audiences.empty() ? std::vector<std::string>{kApiServerAudience}
                                 : identity.audiences;
  const std::vector<std::string> wanted =
      audiences.empty() ? std::vector<std::string>{kApiServerAudience} : audiences;
  std::vector<std::string> valid;
  for (const std::string& audience : wanted) {
    if (std::find(token_audiences.begin(), token_audiences.end(), audience) !=
        token_audiences.end()) {
      valid.push_back(audience);
    }
  }
  if (valid.empty()) {
    // An audience-agnostic token (a static one) simply does not authenticate; a token that
    // names its audiences (a JWT) says which they are.
    outcome.error = identity.audiences.empty()
                        ? "invalid bearer token"
                        : "[invalid bearer token, token audiences " + QuotedList(token_audiences) +
                              " is invalid for the target audiences " + QuotedList(wanted) + "]";
    return outcome;
  }
  outcome.authenticated = true;
  outcome.user = std::move(identity);
  outcome.user.audiences.clear();
  outcome.audiences = std::move(valid);
  return outcome;
}

AccessAnswer ReviewTable::ReviewAccess(const AccessQuery& query) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [rule, answer] : rules_) {
    if (rule.Matches(query)) return answer;
  }
  return AccessAnswer{};
}

}  // namespace informerd::fakeapi
