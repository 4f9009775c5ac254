#include "daemon/security/subject_access_review_authorizer.h"

#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/access_review.h"
#include "core/expiring_cache.h"

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
        clock_(clock),
        options_(options),
        logger_(std::move(logger)),
        cache_(clock, options.max_cache_entries) {}

  void Authorize(const core::UserInfo& user, const core::ResourceAttributes& attributes,
                 Callback done) {
    std::string key = CacheKey(user, attributes);
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (std::optional<AccessDecision> cached = cache_.Get(key)) {
        ++stats_.cache_hits;
        lock.unlock();
        return done(*std::move(cached));
      }
      auto [waiting, first] = in_flight_.try_emplace(key);
      waiting->second.push_back(std::move(done));
      if (!first) {
        ++stats_.shared;
        return;
      }
      ++stats_.reviews;
    }
    client_.Post(kSubjectAccessReviewPath, core::BuildSubjectAccessReview(user, attributes),
                 [self = shared_from_this(), key, started = clock_.Now(),
                  what = core::DescribeDenial(user, attributes)](HttpResult result) {
                   self->OnReview(key, started, what, std::move(result));
                 });
  }

  std::chrono::milliseconds allowed_ttl() const { return options_.allowed_ttl; }

  AuthorizerStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    AuthorizerStats stats = stats_;
    stats.cache_entries = cache_.size();
    return stats;
  }

 private:
  // `what`: the check, as a denial names it, for the log.
  void OnReview(const std::string& key, core::Clock::TimePoint started, const std::string& what,
                HttpResult result) {
    absl::StatusOr<AccessDecision> decision = Judge(result);
    std::vector<Callback> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.review_latency_sum += clock_.Now() - started;
      ++stats_.review_latency_count;
      if (!decision.ok()) {
        ++stats_.errors;
      } else if (decision->allowed) {
        ++stats_.allowed;
        cache_.Put(key, *decision, options_.allowed_ttl);
      } else {
        ++stats_.denied;
        cache_.Put(key, *decision, options_.denied_ttl);
      }
      auto found = in_flight_.find(key);
      waiters = std::move(found->second);
      in_flight_.erase(found);
    }
    if (!decision.ok()) {
      logger_->warn("{}: {}", what, std::string(decision.status().message()));
    } else {
      logger_->debug("{}: {}{}", what, decision->allowed ? "allowed" : "denied",
                     decision->reason.empty() ? "" : " (" + decision->reason + ")");
    }
    for (Callback& waiter : waiters) waiter(decision);
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
  const core::Clock& clock_;
  const SubjectAccessReviewAuthorizerOptions options_;
  const std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex mu_;
  core::ExpiringCache<std::string, AccessDecision> cache_;
  // Callers waiting for the review of a question, by its key.
  std::unordered_map<std::string, std::vector<Callback>> in_flight_;
  AuthorizerStats stats_;
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
