// SubjectAccessReviewAuthorizer: --authorization-mode=Webhook. Every decision is the apiserver's:
// a SubjectAccessReview (authorization.k8s.io/v1) for the caller's user, uid, groups and extra
// and the resource attributes asked for, answered by the apiserver's own authorizers (RBAC, ...),
// as kube-apiserver's aggregated servers and the kubelet delegate authorization.
//
// Decisions are cached by user and attributes: allowed for `allowed_ttl` (5 min), denied for
// `denied_ttl` (30 s), in a bounded LRU (max_cache_entries). A review that failed is not cached.
// Concurrent identical checks share one review (the cache, the sharing and the counters:
// review_cache.h). recheck_interval() is allowed_ttl (the default 5 min when allowed decisions
// are not cached): a stream re-authorized that often sees a revoked permission once the cached
// decision it relied on has expired.
//
// Outcomes: the decision (allowed or not, with the apiserver's status.reason), or Unavailable
// "cannot authorize the call: the SubjectAccessReview failed: <why>" — no answer, a non-2xx
// answer (5xx, or 403 when informerd's ServiceAccount may not create SubjectAccessReviews), the
// client's request timeout, an answer that is not a SubjectAccessReview. Never "allowed".
//
// Threads: Authorize() may be called from any thread; `done` runs inline for a cached decision,
// else on the ReviewClient's strand. `client` and `clock` must outlive this object; a review
// answered after it is destroyed still reaches its callers.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/clock.h"
#include "daemon/kube/review_client.h"
#include "daemon/security/authorizer.h"

namespace informerd::daemon {

// The path SubjectAccessReviews are POSTed to.
inline constexpr char kSubjectAccessReviewPath[] =
    "/apis/authorization.k8s.io/v1/subjectaccessreviews";

struct SubjectAccessReviewAuthorizerOptions {
  // --authorization-webhook-cache-authorized-ttl, --authorization-webhook-cache-unauthorized-ttl.
  // Zero: such decisions are not cached.
  std::chrono::milliseconds allowed_ttl{std::chrono::minutes(5)};
  std::chrono::milliseconds denied_ttl{std::chrono::seconds(30)};
  std::size_t max_cache_entries = 10000;
};

// Counters for /metrics, monotonic except cache_entries.
struct AuthorizerStats {
  std::uint64_t cache_hits = 0;
  std::uint64_t reviews = 0;  // SubjectAccessReviews posted
  std::uint64_t shared = 0;   // checks that waited for a review another check had started
  std::uint64_t allowed = 0;  // reviews answered: allowed
  std::uint64_t denied = 0;   // reviews answered: not allowed
  std::uint64_t errors = 0;   // reviews that failed (Unavailable)
  // Time from posting a review to its answer (or failure), summed over every finished review.
  std::chrono::nanoseconds review_latency_sum{0};
  std::uint64_t review_latency_count = 0;
  std::size_t cache_entries = 0;
};

class SubjectAccessReviewAuthorizer final : public Authorizer {
 public:
  SubjectAccessReviewAuthorizer(ReviewClient& client, const core::Clock& clock,
                                SubjectAccessReviewAuthorizerOptions options,
                                std::shared_ptr<spdlog::logger> logger);
  ~SubjectAccessReviewAuthorizer() override;
  SubjectAccessReviewAuthorizer(const SubjectAccessReviewAuthorizer&) = delete;
  SubjectAccessReviewAuthorizer& operator=(const SubjectAccessReviewAuthorizer&) = delete;

  void Authorize(const core::UserInfo& user, const core::ResourceAttributes& attributes,
                 Callback done) override;
  std::chrono::milliseconds recheck_interval() const override;

  AuthorizerStats stats() const;

  class State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace informerd::daemon
