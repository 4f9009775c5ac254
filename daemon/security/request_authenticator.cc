#include "daemon/security/request_authenticator.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace informerd::daemon {
namespace {

constexpr char kMalformed[] = "malformed authorization metadata: ";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool IsBearer(std::string_view scheme) {
  constexpr std::string_view kBearer = "bearer";
  if (scheme.size() != kBearer.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const char c = scheme[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kBearer[i]) return false;
  }
  return true;
}

// The token of "Bearer <token>", or the reason the value is not that. Like the apiserver's
// bearer-token reader: surrounding whitespace is ignored, the scheme is case-insensitive and
// separated from the token by one space; unlike it, anything after the token is refused rather
// than ignored.
absl::StatusOr<std::string_view> BearerToken(std::string_view value) {
  value = Trim(value);
  const std::size_t space = value.find(' ');
  const std::string_view scheme = value.substr(0, space);
  if (value.empty()) {
    return absl::UnauthenticatedError(std::string(kMalformed) +
                                      "the value is empty; expected \"Bearer <token>\"");
  }
  // The value may be a token sent without its scheme: it is never quoted.
  if (!IsBearer(scheme)) {
    return absl::UnauthenticatedError(std::string(kMalformed) +
                                      "the scheme is not Bearer; expected \"Bearer <token>\"");
  }
  const std::string_view token =
      space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
  if (token.empty()) {
    return absl::UnauthenticatedError(std::string(kMalformed) + "the bearer token is empty");
  }
  if (std::find_if(token.begin(), token.end(), IsSpace) != token.end()) {
    return absl::UnauthenticatedError(
        std::string(kMalformed) +
        "expected \"Bearer <token>\" with a single space and a token without whitespace");
  }
  return token;
}

}  // namespace

RequestAuthenticator::RequestAuthenticator(TokenReviewAuthenticator* tokens, bool allow_anonymous)
    : tokens_(tokens), allow_anonymous_(allow_anonymous) {}

void RequestAuthenticator::Authenticate(const CallCredentials& credentials, Callback done) {
  if (!credentials.malformed.empty()) {
    return done(absl::UnauthenticatedError(std::string(kMalformed) + credentials.malformed));
  }
  if (credentials.authorization) {
    absl::StatusOr<std::string_view> token = BearerToken(*credentials.authorization);
    if (!token.ok()) return done(token.status());
    if (tokens_ == nullptr) {
      return done(absl::UnauthenticatedError(
          "bearer tokens are not accepted (--authentication-token-webhook=false)"));
    }
    return tokens_->Authenticate(*token, std::move(done));
  }
  if (!credentials.certificate_error.empty()) {
    return done(absl::UnauthenticatedError(credentials.certificate_error));
  }
  if (credentials.certificate_user) return done(*credentials.certificate_user);
  if (allow_anonymous_) return done(core::AnonymousUser());
  done(absl::UnauthenticatedError(
      "no credentials: send a bearer token (authorization: Bearer …) or a client certificate"));
}

}  // namespace informerd::daemon
