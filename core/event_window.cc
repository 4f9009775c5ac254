#include "core/event_window.h"

#include <algorithm>
#include <utility>

#include "fmt/format.h"

namespace informerd::core {

const char* WindowResetReasonName(WindowResetReason reason) {
  switch (reason) {
    case WindowResetReason::kNonNumericVersion:
      return "non-numeric-version";
    case WindowResetReason::kVersionWentBackwards:
      return "version-went-backwards";
    case WindowResetReason::kUidChangeWithoutVersion:
      return "uid-change-without-version";
    case WindowResetReason::kNonNumericListVersion:
      return "non-numeric-list-version";
  }
  return "unknown";
}

EventWindow::EventWindow(std::size_t max_events, std::chrono::steady_clock::duration max_age)
    : max_events_(max_events), max_age_(max_age) {}

void EventWindow::Reset(uint64_t start, bool start_exclusive, std::string why) {
  events_.clear();
  ++generation_;
  valid_ = true;
  start_ = start;
  start_exclusive_ = start_exclusive;
  why_ = std::move(why);
  gaps_.clear();
}

void EventWindow::Invalidate(std::string why) {
  events_.clear();
  ++generation_;
  valid_ = false;
  why_ = std::move(why);
  gaps_.clear();
}

void EventWindow::AddGap(uint64_t low, uint64_t high) {
  if (!valid_ || high <= low + 1) return;
  gaps_.emplace_back(low, high);
}

void EventWindow::DropFront() {
  // Whoever holds the dropped event's version got it, so resuming from it stays possible.
  start_ = events_.front().event->version();
  start_exclusive_ = false;
  why_.clear();  // the start is now where events expired, not where the window was reset
  events_.pop_front();
  gaps_.erase(std::remove_if(gaps_.begin(), gaps_.end(),
                             [&](const auto& gap) { return gap.second <= start_; }),
              gaps_.end());
}

void EventWindow::Append(std::shared_ptr<const CacheEvent> event, Clock::TimePoint now) {
  if (!valid_) return;
  events_.push_back(Item{std::move(event), now});
  while (events_.size() > max_events_) DropFront();
  Expire(now);
}

void EventWindow::Expire(Clock::TimePoint now) {
  while (!events_.empty() && now - events_.front().added > max_age_) DropFront();
}

absl::Status EventWindow::ForEachAfter(
    uint64_t after,
    const std::function<void(const std::shared_ptr<const CacheEvent>&)>& visit) const {
  if (!valid_) {
    return absl::OutOfRangeError(
        fmt::format("too old resource version: {} ({}); subscribe again without a resource version",
                    after, why_));
  }
  if (after < start_ || (after == start_ && start_exclusive_)) {
    return absl::OutOfRangeError(fmt::format(
        "too old resource version: {} (oldest available: {}{}{}{}); subscribe again without a "
        "resource version",
        after, start_exclusive_ ? "after " : "", start_, why_.empty() ? "" : "; ", why_));
  }
  for (const auto& [low, high] : gaps_) {
    if (after > low && after < high) {
      return absl::OutOfRangeError(fmt::format(
          "too old resource version: {} (the cache went from {} to {} by relisting from the "
          "apiserver and cannot replay what happened in between); subscribe again without a "
          "resource version",
          after, low, high));
    }
  }
  const auto first = std::upper_bound(
      events_.begin(), events_.end(), after,
      [](uint64_t version, const Item& item) { return version < item.event->version(); });
  for (auto it = first; it != events_.end(); ++it) visit(it->event);
  return absl::OkStatus();
}

}  // namespace informerd::core
