// UpstreamMetrics: what one informer received from the apiserver, counted for the metrics
// endpoint (daemon/admin/metrics.*): watch events by type, objects received in LIST pages, objects
// skipped for being larger than maxObjectBytes, and failed requests by code. The reflector's own
// counters (relists by reason, watch restarts) live in ReflectorStatus; the cache's (events
// delivered, subscribers that fell behind) in CacheStats.
//
// Ownership and threads: each daemon Informer owns one and counts into it on its strand, once per
// decoded batch of events or LIST page (never per byte); the metrics endpoint reads it from its
// own thread on each scrape. Counters are relaxed atomics: a scrape may see one counter a batch
// ahead of another, which Prometheus counters tolerate. Errors are rare, so their per-code map
// has a small mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "core/watch_event_decoder.h"

namespace informerd::core {

// One per WatchEventType, in enum order (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).
inline constexpr std::size_t kWatchEventTypeCount = 5;

class UpstreamMetrics {
 public:
  // Counts each event by type; an ERROR event is also counted as an error with its Status code.
  void CountEvents(const std::vector<WatchEvent>& events);
  void CountListObjects(std::size_t count) {
    list_objects_.fetch_add(count, std::memory_order_relaxed);
  }
  // An object (a LIST item or a watch event) skipped because it was larger than the limit on one
  // object; each time it is skipped.
  void CountObjectTooLarge() { objects_too_large_.fetch_add(1, std::memory_order_relaxed); }
  // A failed LIST or WATCH: the Kubernetes code (the Status's code, else the HTTP status; see
  // ApiError::code), 0 when there was no HTTP response (connection, TLS, timeout, a broken or
  // undecodable body).
  void CountError(int code);

  std::array<uint64_t, kWatchEventTypeCount> events() const;
  uint64_t list_objects() const { return list_objects_.load(std::memory_order_relaxed); }
  uint64_t objects_too_large() const { return objects_too_large_.load(std::memory_order_relaxed); }
  // Code → failures.
  std::map<int, uint64_t> errors() const;

 private:
  std::array<std::atomic<uint64_t>, kWatchEventTypeCount> events_{};
  std::atomic<uint64_t> list_objects_{0};
  std::atomic<uint64_t> objects_too_large_{0};
  mutable std::mutex errors_mu_;
  std::map<int, uint64_t> errors_;  // guarded by errors_mu_
};

}  // namespace informerd::core
