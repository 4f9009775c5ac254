#include "core/upstream_metrics.h"

namespace informerd::core {

void UpstreamMetrics::CountEvents(const std::vector<WatchEvent>& events) {
  std::array<uint64_t, kWatchEventTypeCount> counts{};
  for (const WatchEvent& event : events) {
    ++counts[static_cast<std::size_t>(event.type)];
    // A skipped ERROR event's Status was not decoded: it is counted as an object too large.
    if (event.type == WatchEventType::kError && !event.skipped) CountError(event.status.code);
  }
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] != 0) events_[i].fetch_add(counts[i], std::memory_order_relaxed);
  }
}

void UpstreamMetrics::CountError(int code) {
  std::lock_guard<std::mutex> lock(errors_mu_);
  ++errors_[code];
}

std::array<uint64_t, kWatchEventTypeCount> UpstreamMetrics::events() const {
  std::array<uint64_t, kWatchEventTypeCount> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = events_[i].load(std::memory_order_relaxed);
  return out;
}

std::map<int, uint64_t> UpstreamMetrics::errors() const {
  std::lock_guard<std::mutex> lock(errors_mu_);
  return errors_;
}

}  // namespace informerd::core
