// TokenReviewAuthenticator: a bearer token → the user it belongs to, as the apiserver says with a
// TokenReview (authentication.k8s.io/v1), the way kube-apiserver's delegated authentication and
// the kubelet's --authentication-token-webhook do it. informerd never reads a token itself.
//
// Answers are cached by the token's SHA-256 (the token itself is never kept, logged or used as a
// key): an authenticated token for `authenticated_ttl` (2 min, as the kubelet's webhook cache),
// a rejected one for `unauthenticated_ttl` (10 s), in a bounded LRU (max_cache_entries), so that
// a client sending a stream of distinct invalid tokens costs a fixed amount of memory. A review
// that failed is not cached. Concurrent calls with the same uncached token share one review (the
// cache, the sharing and the counters: review_cache.h).
//
// Outcomes:
//   the user (the apiserver's name, uid, groups and extra, plus system:authenticated as the
//   apiserver adds it, core::AddAuthenticatedGroup);
//   Unauthenticated "the bearer token was rejected by the apiserver[: <its status.error>]" —
//   the review said unauthenticated, or none of the token's audiences is one of `audiences`;
//   Unauthenticated without a review for an empty token or one over kMaxBearerTokenBytes;
//   Unavailable "cannot verify the bearer token: the TokenReview failed: <why>" — no answer, a
//   non-2xx answer (5xx, 403 when informerd's ServiceAccount may not create TokenReviews), the
//   client's request timeout, an answer that is not a TokenReview (or, should OpenSSL fail to
//   hash the token, "cannot verify the bearer token: SHA-256 failed"). Never a user.
// Messages never contain the token; logs name a token by the first 8 hex digits of its SHA-256
// at most (TokenHashPrefix).
//
// Threads: Authenticate() may be called from any thread; `done` runs inline for an answer known
// at once (cached, too long), else on the ReviewClient's strand. `client` and `clock` must
// outlive this object; a review answered after it is destroyed still reaches its callers.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/user_info.h"
#include "daemon/kube/review_client.h"

namespace informerd::daemon {

// The longest bearer token sent for review. A ServiceAccount JWT is about 1 KiB and an OIDC ID
// token a few; 16 KiB leaves room for any real token while a client cannot make informerd post
// megabytes to the apiserver (whose own header limit is 1 MiB).
inline constexpr std::size_t kMaxBearerTokenBytes = 16 * 1024;

// The path TokenReviews are POSTed to.
inline constexpr char kTokenReviewPath[] = "/apis/authentication.k8s.io/v1/tokenreviews";

struct TokenReviewAuthenticatorOptions {
  // --authentication-token-audiences: the audiences a token must have one of. Empty: the
  // apiserver's own (a ServiceAccount token made for the apiserver is accepted).
  std::vector<std::string> audiences;
  // --authentication-token-webhook-cache-ttl.
  std::chrono::milliseconds authenticated_ttl{std::chrono::minutes(2)};
  std::chrono::milliseconds unauthenticated_ttl{std::chrono::seconds(10)};
  std::size_t max_cache_entries = 10000;
};

// Counters for /metrics, monotonic except cache_entries.
struct TokenReviewStats {
  std::uint64_t cache_hits = 0;
  std::uint64_t reviews = 0;        // TokenReviews posted
  std::uint64_t shared = 0;         // calls that waited for a review another call had started
  std::uint64_t authenticated = 0;  // reviews answered: authenticated
  std::uint64_t rejected = 0;       // reviews answered: not authenticated, or wrong audience
  std::uint64_t errors = 0;         // reviews that failed (Unavailable)
  std::uint64_t refused_without_review = 0;  // empty or too long
  std::size_t cache_entries = 0;
};

// "sha256:1a2b3c4d": how logs name a token.
std::string TokenHashPrefix(std::string_view token);

class TokenReviewAuthenticator {
 public:
  using Callback = std::function<void(absl::StatusOr<core::UserInfo>)>;

  TokenReviewAuthenticator(ReviewClient& client, const core::Clock& clock,
                           TokenReviewAuthenticatorOptions options,
                           std::shared_ptr<spdlog::logger> logger);
  ~TokenReviewAuthenticator();
  TokenReviewAuthenticator(const TokenReviewAuthenticator&) = delete;
  TokenReviewAuthenticator& operator=(const TokenReviewAuthenticator&) = delete;

  // `token`: the bearer token alone (without "Bearer "). Calls `done` exactly once.
  void Authenticate(std::string_view token, Callback done);

  TokenReviewStats stats() const;

  class State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace informerd::daemon
