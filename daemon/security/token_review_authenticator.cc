#include "daemon/security/token_review_authenticator.h"

#include <openssl/evp.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "core/access_review.h"
#include "core/expiring_cache.h"
#include "daemon/security/authenticated_group.h"
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

// What a review decided (failures are not cached).
struct Review {
  bool authenticated = false;
  core::UserInfo user;  // when authenticated
  std::string message;  // the Unauthenticated message, when not
};

absl::StatusOr<core::UserInfo> Outcome(const Review& review) {
  if (review.authenticated) return review.user;
  return absl::UnauthenticatedError(review.message);
}

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
        cache_(clock, options_.max_cache_entries) {}

  void Authenticate(std::string_view token, Callback done) {
    if (token.empty() || token.size() > kMaxBearerTokenBytes) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.refused_without_review;
      }
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
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (std::optional<Review> cached = cache_.Get(key)) {
        ++stats_.cache_hits;
        lock.unlock();
        return done(Outcome(*cached));
      }
      auto [waiting, first] = in_flight_.try_emplace(key);
      waiting->second.push_back(std::move(done));
      if (!first) {
        ++stats_.shared;
        return;
      }
      ++stats_.reviews;
    }
    logger_->debug("reviewing bearer token {}", HexPrefix(key));
    client_.Post(kTokenReviewPath, core::BuildTokenReview(token, options_.audiences),
                 [self = shared_from_this(), key, token = std::string(token)](HttpResult result) {
                   self->OnReview(key, token, std::move(result));
                 });
  }

  TokenReviewStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    TokenReviewStats stats = stats_;
    stats.cache_entries = cache_.size();
    return stats;
  }

 private:
  void OnReview(const std::string& key, const std::string& token, HttpResult result) {
    absl::StatusOr<Review> review = Judge(token, result);
    std::vector<Callback> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!review.ok()) {
        ++stats_.errors;
      } else if (review->authenticated) {
        ++stats_.authenticated;
        cache_.Put(key, *review, options_.authenticated_ttl);
      } else {
        ++stats_.rejected;
        cache_.Put(key, *review, options_.unauthenticated_ttl);
      }
      auto found = in_flight_.find(key);
      waiters = std::move(found->second);
      in_flight_.erase(found);
    }
    if (!review.ok()) {
      logger_->warn("bearer token {}: {}", HexPrefix(key), std::string(review.status().message()));
    } else if (review->authenticated) {
      logger_->debug("bearer token {}: user \"{}\"", HexPrefix(key), review->user.name);
    } else {
      logger_->debug("bearer token {}: {}", HexPrefix(key), review->message);
    }
    const absl::StatusOr<core::UserInfo> outcome =
        review.ok() ? Outcome(*review) : absl::StatusOr<core::UserInfo>(review.status());
    for (Callback& waiter : waiters) waiter(outcome);
  }

  absl::StatusOr<Review> Judge(const std::string& token, const HttpResult& result) const {
    constexpr char kFailed[] = "cannot verify the bearer token: the TokenReview failed: ";
    if (!result.status.ok()) {
      return absl::UnavailableError(kFailed +
                                    WithoutToken(std::string(result.status.message()), token));
    }
    absl::StatusOr<core::TokenReviewResult> parsed = core::ParseTokenReview(result.body);
    if (!parsed.ok()) {
      return absl::UnavailableError(kFailed +
                                    WithoutToken(std::string(parsed.status().message()), token));
    }
    Review review;
    if (!parsed->authenticated) {
      review.message = kRejected;
      if (!parsed->error.empty()) review.message += ": " + WithoutToken(parsed->error, token);
      return review;
    }
    if (!options_.audiences.empty() &&
        std::none_of(parsed->audiences.begin(), parsed->audiences.end(), [&](const auto& a) {
          return std::find(options_.audiences.begin(), options_.audiences.end(), a) !=
                 options_.audiences.end();
        })) {
      review.message = fmt::format("{}: the token is not valid for any of the audiences {}",
                                   kRejected, fmt::join(Quoted(options_.audiences), ", "));
      return review;
    }
    review.authenticated = true;
    review.user = std::move(parsed->user);
    AddAuthenticatedGroup(review.user);
    return review;
  }

  static std::vector<std::string> Quoted(const std::vector<std::string>& values) {
    std::vector<std::string> out;
    for (const std::string& value : values) out.push_back("\"" + value + "\"");
    return out;
  }

  ReviewClient& client_;
  const TokenReviewAuthenticatorOptions options_;
  const std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex mu_;
  core::ExpiringCache<std::string, Review> cache_;
  // Callers waiting for the review of a token, by its hash.
  std::unordered_map<std::string, std::vector<Callback>> in_flight_;
  TokenReviewStats stats_;
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
