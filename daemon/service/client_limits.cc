#include "daemon/service/client_limits.h"

#include <algorithm>
#include <utility>

#include "core/field_selector.h"
#include "core/label_selector.h"
#include "fmt/format.h"

namespace informerd::daemon {

// The open slots, shared by the limits and every slot they gave.
struct SubscriptionSlot::Counts {
  std::mutex mu;
  // Guarded by mu.
  std::size_t total = 0;
  std::map<std::string, std::size_t, std::less<>> per_user;  // only users holding a slot
  uint64_t refused_total = 0;
  uint64_t refused_per_user = 0;
};

SubscriptionSlot::SubscriptionSlot(SubscriptionSlot&& other) noexcept
    : counts_(std::move(other.counts_)), user_(std::move(other.user_)) {
  other.counts_.reset();
}

SubscriptionSlot& SubscriptionSlot::operator=(SubscriptionSlot&& other) noexcept {
  if (this != &other) {
    Release();
    counts_ = std::move(other.counts_);
    user_ = std::move(other.user_);
    other.counts_.reset();
  }
  return *this;
}

void SubscriptionSlot::Release() {
  if (!counts_) return;
  {
    std::lock_guard<std::mutex> lock(counts_->mu);
    --counts_->total;
    const auto it = counts_->per_user.find(user_);
    if (it != counts_->per_user.end() && --it->second == 0) counts_->per_user.erase(it);
  }
  counts_.reset();
}

SubscriptionLimits::SubscriptionLimits(std::size_t max_total, std::size_t max_per_user)
    : max_total_(max_total),
      max_per_user_(max_per_user),
      counts_(std::make_shared<SubscriptionSlot::Counts>()) {}

absl::StatusOr<SubscriptionSlot> SubscriptionLimits::Acquire(const std::string& user) {
  std::lock_guard<std::mutex> lock(counts_->mu);
  if (max_total_ != 0 && counts_->total >= max_total_) {
    ++counts_->refused_total;
    return absl::ResourceExhaustedError(fmt::format(
        "too many subscriptions: {} open in total (--max-subscriptions={}); close one or retry "
        "later",
        counts_->total, max_total_));
  }
  std::size_t& mine = counts_->per_user[user];
  if (max_per_user_ != 0 && mine >= max_per_user_) {
    ++counts_->refused_per_user;
    return absl::ResourceExhaustedError(fmt::format(
        "too many subscriptions for user {:?}: {} open (--max-subscriptions-per-user={}); close "
        "one or retry later",
        user, mine, max_per_user_));
  }
  ++mine;
  ++counts_->total;
  return SubscriptionSlot(counts_, user);
}

void SubscriptionLimits::AddStats(ClientLimitStats& stats) const {
  std::lock_guard<std::mutex> lock(counts_->mu);
  stats.subscriptions_open = counts_->total;
  stats.subscriptions_largest_user = 0;
  for (const auto& [user, open] : counts_->per_user) {
    stats.subscriptions_largest_user = std::max<uint64_t>(stats.subscriptions_largest_user, open);
  }
  stats.refused_max_subscriptions = counts_->refused_total;
  stats.refused_max_subscriptions_per_user = counts_->refused_per_user;
}

absl::Status SelectorLimits::CheckLabelSelector(std::string_view text) {
  return Check("label selector", text, &core::LabelSelector::CountRequirements);
}

absl::Status SelectorLimits::CheckFieldSelector(std::string_view text) {
  return Check("field selector", text, &core::FieldSelector::CountRequirements);
}

absl::Status SelectorLimits::Check(std::string_view what, std::string_view text,
                                   std::size_t (*count_requirements)(std::string_view)) {
  if (text.size() > max_bytes_) {
    refused_bytes_.fetch_add(1, std::memory_order_relaxed);
    return absl::InvalidArgumentError(
        fmt::format("{} is {} bytes long; at most {} are accepted (--max-selector-bytes={})", what,
                    text.size(), max_bytes_, max_bytes_));
  }
  const std::size_t requirements = count_requirements(text);
  if (requirements > max_requirements_) {
    refused_requirements_.fetch_add(1, std::memory_order_relaxed);
    return absl::InvalidArgumentError(fmt::format(
        "{} has {} requirements; at most {} are accepted (--max-selector-requirements={})", what,
        requirements, max_requirements_, max_requirements_));
  }
  return absl::OkStatus();
}

void SelectorLimits::AddStats(ClientLimitStats& stats) const {
  stats.refused_max_selector_bytes = refused_bytes_.load(std::memory_order_relaxed);
  stats.refused_max_selector_requirements = refused_requirements_.load(std::memory_order_relaxed);
}

}  // namespace informerd::daemon
