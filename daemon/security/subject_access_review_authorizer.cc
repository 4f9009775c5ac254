#include "daemon/security/subject_access_review_authorizer.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/access_review.h"
#include "daemon/security/review_cache.h"

namespace informerd::daemon {
namespace {

void AppendField(std::string& key, const std::string& field) {
  key += std::to_string(field.size());
  key.push_back(':');
  key += field;
}

// Every part of the question, length-prefixed so that no two questions share a key.
std::string CacheKey(const core::UserInfo& user, const core::ResourceAttributes& attributes) {
  std::string key;
  AppendField(key, user.name);
  AppendField(key, user.uid);
  key += std::to_string(user.groups.size()) + "g";
  for (const std::string& group : user.groups) AppendField(key, group);
  key += std::to_string(user.extra.size()) + "x";
  for (const auto& [name, values] : user.extra) {
    AppendField(key, name);
    key += std::to_string(values.size()) + "v";
    for (const std::string& value : values) AppendField(key, value);
  }
  AppendField(key, attributes.verb);
  AppendField(key, attributes.group);
  AppendField(key, attributes.resource);
  AppendField(key, attributes.namespace_name);
  AppendField(key, attributes.name);
  return key;
}

}  // namespace

class SubjectAccessReviewAuthorizer::State : public std::enable_shared_from_this<State> {
 public:
  State(ReviewClient& client, const core::Clock& clock,
        SubjectAccessReviewAuthorizerOptions options, std::shared_ptr<spdlog::logger> logger)
      : client_(client),
        options_(options),
        logger_(std::move(logger)),
        reviews_(clock, ReviewCacheOptions{options.allowed_ttl, options.denied_ttl,
                                           options.max_cache_entries}) {}

  void Authorize(const core::UserInfo& user, const core::ResourceAttributes& attributes,
                 Callback done) {
    std::string key = CacheKey(user, attributes);
    if (reviews_.Await(key, std::move(done)) != Reviews::Lookup::kReview) return;
    client_.Post(kSubjectAccessReviewPath, core::BuildSubjectAccessReview(user, attributes),
                 [self = shared_from_this(), key, what = core::DescribeDenial(user, attributes)](
                     HttpResult result) { self->OnReview(key, what, std::move(result)); });
  }

  std::chrono::milliseconds allowed_ttl() const { return options_.allowed_ttl; }

  AuthorizerStats stats() const {
    const ReviewCacheStats reviews = reviews_.stats();
    AuthorizerStats stats;
    stats.cache_hits = reviews.cache_hits;
    stats.reviews = reviews.reviews;
    stats.shared = reviews.shared;
    stats.allowed = reviews.positive;
    stats.denied = reviews.negative;
    stats.errors = reviews.failed;
    stats.review_latency_sum = reviews.review_latency_sum;
    stats.review_latency_count = reviews.review_latency_count;
    stats.cache_entries = reviews.cache_entries;
    return stats;
  }

 private:
  // Decisions by CacheKey.
  using Reviews = ReviewCache<std::string, absl::StatusOr<AccessDecision>>;

  // `what`: the check, as a denial names it, for the log.
  void OnReview(const std::string& key, const std::string& what, HttpResult result) {
    const absl::StatusOr<AccessDecision> decision = Judge(result);
    if (!decision.ok()) {
      logger_->warn("{}: {}", what, std::string(decision.status().message()));
    } else {
      logger_->debug("{}: {}{}", what, decision->allowed ? "allowed" : "denied",
                     decision->reason.empty() ? "" : " (" + decision->reason + ")");
    }
    const ReviewVerdict verdict = !decision.ok()      ? ReviewVerdict::kFailed
                                  : decision->allowed ? ReviewVerdict::kPositive
                                                      : ReviewVerdict::kNegative;
    reviews_.Finish(key, verdict, decision);
  }

  absl::StatusOr<AccessDecision> Judge(const HttpResult& result) const {
    constexpr char kFailed[] = "cannot authorize the call: the SubjectAccessReview failed: ";
    if (!result.status.ok()) {
      return absl::UnavailableError(kFailed + std::string(result.status.message()));
    }
    absl::StatusOr<core::AccessReviewResult> parsed = core::ParseSubjectAccessReview(result.body);
    if (!parsed.ok()) {
      return absl::UnavailableError(kFailed + std::string(parsed.status().message()));
    }
    if (!parsed->evaluation_error.empty()) {
      logger_->info("SubjectAccessReview evaluation error (the decision stands): {}",
                    parsed->evaluation_error);
    }
    return AccessDecision{parsed->allowed, std::move(parsed->reason)};
  }

  ReviewClient& client_;
  const SubjectAccessReviewAuthorizerOptions options_;
  const std::shared_ptr<spdlog::logger> logger_;
  Reviews reviews_;
};

SubjectAccessReviewAuthorizer::SubjectAccessReviewAuthorizer(
    ReviewClient& client, const core::Clock& clock, SubjectAccessReviewAuthorizerOptions options,
    std::shared_ptr<spdlog::logger> logger)
    : state_(std::make_shared<State>(client, clock, options, std::move(logger))) {}

SubjectAccessReviewAuthorizer::~SubjectAccessReviewAuthorizer() = default;

void SubjectAccessReviewAuthorizer::Authorize(const core::UserInfo& user,
                                              const core::ResourceAttributes& attributes,
                                              Callback done) {
  state_->Authorize(user, attributes, std::move(done));
}

std::chrono::milliseconds SubjectAccessReviewAuthorizer::recheck_interval() const {
  const std::chrono::milliseconds ttl = state_->allowed_ttl();
  return ttl > std::chrono::milliseconds::zero()
             ? ttl
             : SubjectAccessReviewAuthorizerOptions().allowed_ttl;
}

AuthorizerStats SubjectAccessReviewAuthorizer::stats() const { return state_->stats(); }

}  // namespace informerd::daemon
