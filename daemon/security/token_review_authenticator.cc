#include "daemon/security/token_review_authenticator.h"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "core/access_review.h"
#include "core/user_info.h"
#include "daemon/security/review_cache.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace informerd::daemon {
namespace {

// The token's SHA-256, 32 raw bytes: the cache key; nullopt if OpenSSL failed (then there is no
// key, and no answer may be cached or shared: every token would have the same one).
std::optional<std::string> Sha256(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &length, EVP_sha256(), nullptr) != 1 ||
      length != 32) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string HexPrefix(const std::string& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (std::size_t i = 0; i < 4 && i < digest.size(); ++i) {
    const auto byte = static_cast<unsigned char>(digest[i]);
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xf]);
  }
  return out;
}

// `text` with every occurrence of `token` replaced: the apiserver's answer echoes spec.token, and
// no message or log line may carry it, whatever a server or proxy puts in its error text.
std::string WithoutToken(std::string text, std::string_view token) {
  if (token.empty()) return text;
  for (std::size_t at = text.find(token); at != std::string::npos; at = text.find(token, at)) {
    text.replace(at, token.size(), "<token>");
    at += 7;
  }
  return text;
}

constexpr char kRejected[] = "the bearer token was rejected by the apiserver";

using Outcome = absl::StatusOr<core::UserInfo>;

// What a review said: the user (kPositive), Unauthenticated (kNegative) or Unavailable (kFailed).
struct Judgement {
  ReviewVerdict verdict;
  Outcome outcome;
};

}  // namespace

std::string TokenHashPrefix(std::string_view token) {
  const std::optional<std::string> digest = Sha256(token);
  return digest ? HexPrefix(*digest) : "sha256:?";
}

class TokenReviewAuthenticator::State : public std::enable_shared_from_this<State> {
 public:
  State(ReviewClient& client, const core::Clock& clock, TokenReviewAuthenticatorOptions options,
        std::shared_ptr<spdlog::logger> logger)
      : client_(client),
        options_(std::move(options)),
        logger_(std::move(logger)),
        reviews_(clock, ReviewCacheOptions{options_.authenticated_ttl, options_.unauthenticated_ttl,
                                           options_.max_cache_entries}) {}

  void Authenticate(std::string_view token, Callback done) {
    if (token.empty() || token.size() > kMaxBearerTokenBytes) {
      ++refused_without_review_;
      return done(absl::UnauthenticatedError(
          token.empty() ? std::string("the bearer token is empty")
                        : fmt::format("the bearer token is longer than {} bytes (it has {})",
                                      kMaxBearerTokenBytes, token.size())));
    }
    std::optional<std::string> digest = Sha256(token);
    if (!digest) {
      return done(absl::UnavailableError("cannot verify the bearer token: SHA-256 failed"));
    }
    std::string key = *std::move(digest);
    if (reviews_.Await(key, std::move(done)) != Reviews::Lookup::kReview) return;
    logger_->debug("reviewing bearer token {}", HexPrefix(key));
    client_.Post(kTokenReviewPath, core::BuildTokenReview(token, options_.audiences),
                 [self = shared_from_this(), key, token = std::string(token)](HttpResult result) {
                   self->OnReview(key, token, std::move(result));
                 });
  }

  TokenReviewStats stats() const {
    const ReviewCacheStats reviews = reviews_.stats();
    TokenReviewStats stats;
    stats.cache_hits = reviews.cache_hits;
    stats.reviews = reviews.reviews;
    stats.shared = reviews.shared;
    stats.authenticated = reviews.positive;
    stats.rejected = reviews.negative;
    stats.errors = reviews.failed;
    stats.refused_without_review = refused_without_review_;
    stats.cache_entries = reviews.cache_entries;
    return stats;
  }

 private:
  // Answers are cached by the token's SHA-256; a rejection is its Unauthenticated status.
  using Reviews = ReviewCache<std::string, Outcome>;

  void OnReview(const std::string& key, const std::string& token, HttpResult result) {
    const Judgement judged = Judge(token, result);
    switch (judged.verdict) {
      case ReviewVerdict::kPositive:
        logger_->debug("bearer token {}: user \"{}\"", HexPrefix(key), judged.outcome->name);
        break;
      case ReviewVerdict::kNegative:
        logger_->debug("bearer token {}: {}", HexPrefix(key),
                       std::string(judged.outcome.status().message()));
        break;
      case ReviewVerdict::kFailed:
        logger_->warn("bearer token {}: {}", HexPrefix(key),
                      std::string(judged.outcome.status().message()));
        break;
    }
    reviews_.Finish(key, judged.verdict, judged.outcome);
  }

  Judgement Judge(const std::string& token, const HttpResult& result) const {
    constexpr char kFailed[] = "cannot verify the bearer token: the TokenReview failed: ";
    if (!result.status.ok()) {
      return {ReviewVerdict::kFailed,
              absl::UnavailableError(kFailed +
                                     WithoutToken(std::string(result.status.message()), token))};
    }
    absl::StatusOr<core::TokenReviewResult> parsed = core::ParseTokenReview(result.body);
    if (!parsed.ok()) {
      return {ReviewVerdict::kFailed,
              absl::UnavailableError(kFailed +
                                     WithoutToken(std::string(parsed.status().message()), token))};
    }
    if (!parsed->authenticated) {
      std::string message = kRejected;
      if (!parsed->error.empty()) message += ": " + WithoutToken(parsed->error, token);
      return {ReviewVerdict::kNegative, absl::UnauthenticatedError(message)};
    }
    if (!options_.audiences.empty() &&
        std::none_of(parsed->audiences.begin(), parsed->audiences.end(), [&](const auto& a) {
          return std::find(options_.audiences.begin(), options_.audiences.end(), a) !=
                 options_.audiences.end();
        })) {
      return {ReviewVerdict::kNegative,
              absl::UnauthenticatedError(
                  fmt::format("{}: the token is not valid for any of the audiences {}", kRejected,
                              fmt::join(Quoted(options_.audiences), ", ")))};
    }
    core::UserInfo user = std::move(parsed->user);
    core::AddAuthenticatedGroup(user);
    return {ReviewVerdict::kPositive, std::move(user)};
  }

  static std::vector<std::string> Quoted(const std::vector<std::string>& values) {
    std::vector<std::string> out;
    for (const std::string& value : values) out.push_back("\"" + value + "\"");
    return out;
  }

  ReviewClient& client_;
  const TokenReviewAuthenticatorOptions options_;
  const std::shared_ptr<spdlog::logger> logger_;
  Reviews reviews_;
  std::atomic<std::uint64_t> refused_without_review_{0};
};

TokenReviewAuthenticator::TokenReviewAuthenticator(ReviewClient& client, const core::Clock& clock,
                                                   TokenReviewAuthenticatorOptions options,
                                                   std::shared_ptr<spdlog::logger> logger)
    : state_(std::make_shared<State>(client, clock, std::move(options), std::move(logger))) {}

TokenReviewAuthenticator::~TokenReviewAuthenticator() = default;

void TokenReviewAuthenticator::Authenticate(std::string_view token, Callback done) {
  state_->Authenticate(token, std::move(done));
}

TokenReviewStats TokenReviewAuthenticator::stats() const { return state_->stats(); }

}  // namespace informerd::daemon
