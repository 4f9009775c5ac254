// Metrics: informerd's Prometheus metrics as plain values (MetricsSnapshot) and their text
// exposition, format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Data flow: on each scrape of /metrics, daemon/admin/status_endpoints.* collects a MetricsSnapshot
// from the running informers (ReflectorStatus, CacheStats, core::UpstreamMetrics), the gRPC
// request counters below and /proc/self/statm, and RenderPrometheus turns it into the response
// body. Rendering is a pure function: tests check its exact text without any I/O.
//
// Names follow Prometheus's conventions: an `informerd_` prefix (`process_` for the process
// metrics every exporter shares), `_total` on counters, base units (`_bytes`). Per-resource series
// carry group, version, resource and watch_namespace (the configured namespace, "" for all), plus
// label_selector and field_selector when the entry has them (the same resource may be configured
// twice with different selectors). The README's "Metrics" section lists every metric.
//
// Threads: RenderPrometheus and ParseStatm are pure; GrpcRequestCounters is thread-safe (gRPC
// counts from its threads, the metrics endpoint reads from its own).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/event_window.h"
#include "core/reflector.h"
#include "core/upstream_metrics.h"

namespace informerd::daemon {

// The Content-Type of RenderPrometheus's text.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// One running informer's values.
struct ResourceMetrics {
  // Labels.
  std::string group;  // "" for the core group
  std::string version;
  std::string resource;
  std::string namespace_name;  // the configured scope; "" for all namespaces
  std::string label_selector;
  std::string field_selector;

  // The cache (CacheStats).
  bool synced = false;
  uint64_t objects = 0;
  uint64_t object_bytes = 0;
  // nullopt before the first sync, or when the version is not a number.
  std::optional<uint64_t> resource_version;
  uint64_t events_applied = 0;
  uint64_t events_delivered = 0;
  uint64_t subscribers = 0;
  uint64_t subscribers_fell_behind = 0;
  uint64_t queue_high_water = 0;
  uint64_t window_events = 0;
  std::array<uint64_t, core::kWindowResetReasonCount> window_resets{};

  // The reflector (ReflectorStatus).
  std::array<uint64_t, core::kRelistReasonCount> relists{};
  uint64_t watch_restarts = 0;
  // How stale the cached data may be (ReflectorStatus::staleness): 0 while the watch is open;
  // nullopt while not synced.
  std::optional<double> staleness_seconds;

  // Upstream (core::UpstreamMetrics).
  std::array<uint64_t, core::kWatchEventTypeCount> events_received{};
  uint64_t list_objects_received = 0;
  uint64_t objects_too_large = 0;  // skipped: larger than maxObjectBytes
  std::map<int, uint64_t> upstream_errors;  // code (0: no HTTP response) → failures
};

struct GrpcRequestCount {
  std::string method;  // "/informerd.v1.Informer/List"
  std::string code;    // "OK", "NOT_FOUND", ...
  uint64_t count = 0;
};

// List's answers (InformerService::list_stats): Lists refused by a response bound, pages
// served, pages cut at the byte bound, continued pages whose list had expired.
struct ListMetrics {
  uint64_t refused_max_bytes = 0;    // --max-list-response-bytes
  uint64_t refused_max_objects = 0;  // --max-list-response-objects
  uint64_t pages = 0;
  uint64_t pages_cut_at_bytes = 0;
  uint64_t continues_expired = 0;
};

struct ProcessMetrics {
  uint64_t resident_memory_bytes = 0;
  uint64_t virtual_memory_bytes = 0;
};

// Bearer tokens reviewed by the apiserver (--authentication-token-webhook): the
// TokenReviewAuthenticator's counters.
struct TokenReviewMetrics {
  uint64_t authenticated = 0;  // reviews answered: authenticated
  uint64_t rejected = 0;       // reviews answered: not (or not for an accepted audience)
  uint64_t errors = 0;         // reviews that failed: the calls were UNAVAILABLE
  uint64_t cache_hits = 0;
  uint64_t shared = 0;              // calls that waited for a review another call had started
  uint64_t refused_unreviewed = 0;  // empty or too long: refused without a review
  uint64_t cache_entries = 0;
};

// Access decisions asked of the apiserver (--authorization-mode=Webhook): the
// SubjectAccessReviewAuthorizer's counters.
struct AccessReviewMetrics {
  uint64_t allowed = 0;  // reviews answered: allowed
  uint64_t denied = 0;   // reviews answered: not allowed
  uint64_t errors = 0;   // reviews that failed: the calls were UNAVAILABLE
  uint64_t cache_hits = 0;
  uint64_t shared = 0;
  uint64_t cache_entries = 0;
  // Time from posting a review to its answer, over every finished review.
  double latency_seconds_sum = 0;
  uint64_t latency_count = 0;
};

// The Informer service's client limits (daemon/service/client_limits.h): Subscribe streams open
// and requests refused, by the flag that set the limit.
struct ClientLimitMetrics {
  uint64_t subscriptions_open = 0;
  uint64_t subscriptions_largest_user = 0;  // the most one user has open
  uint64_t refused_max_subscriptions = 0;
  uint64_t refused_max_subscriptions_per_user = 0;
  uint64_t refused_max_selector_bytes = 0;
  uint64_t refused_max_selector_requirements = 0;
};

// One HTTP port's connections (daemon/admin/http_server.h, HttpServerStats), by listener:
// "metrics" (--metrics-listen) or "probes" (--probe-listen).
struct HttpListenerMetrics {
  std::string listener;
  uint64_t open = 0;
  uint64_t max_connections = 0;
  uint64_t accepted = 0;
  uint64_t evicted = 0;  // closed to make room for a new connection at the limit
  uint64_t waited = 0;   // new connections that waited for room (every connection busy answering)
  uint64_t header_timeouts = 0;
  uint64_t idle_timeouts = 0;
  uint64_t write_timeouts = 0;
};

// The gRPC port's connections (daemon/service/connection_gate.h, ConnectionGateStats).
struct GrpcConnectionMetrics {
  uint64_t open = 0;
  uint64_t max_connections = 0;  // --grpc-max-connections
  uint64_t accepted = 0;
  // Closed at once: --grpc-max-connections were open.
  uint64_t refused_max_connections = 0;
  // Closed at once: from an address whose connection closed for its calls in flight winds down.
  uint64_t refused_peer_closing = 0;
  uint64_t closed_calls_in_flight = 0;  // over --grpc-max-calls-per-connection
  uint64_t calls_in_flight = 0;         // on the TCP connections
};

struct MetricsSnapshot {
  std::string version;  // informerd_build_info{version}
  bool ready = false;   // as /readyz and gRPC health report it
  std::size_t resources_pending = 0;
  // Informers running on each ingest thread (--ingest-threads; index 0 is the main thread's).
  // Its size is informerd_ingest_threads.
  std::vector<uint64_t> ingest_thread_informers;
  std::vector<ResourceMetrics> resources;
  std::vector<GrpcRequestCount> grpc_requests;
  // Present once the service runs; the families are left out otherwise.
  std::optional<ListMetrics> lists;
  // Present when the daemon reviews tokens / asks for access decisions; the families are left
  // out otherwise.
  std::optional<TokenReviewMetrics> token_reviews;
  std::optional<AccessReviewMetrics> access_reviews;
  // Present once the service runs; the families are left out otherwise.
  std::optional<ClientLimitMetrics> client_limits;
  // Present once the gRPC server runs; the families are left out otherwise.
  std::optional<GrpcConnectionMetrics> grpc_connections;
  // The HTTP ports that are on; the families are left out when there is none.
  std::vector<HttpListenerMetrics> http_listeners;
  // nullopt when /proc/self/statm could not be read: the process series are left out.
  std::optional<ProcessMetrics> process;
};

// The exposition text: every family with its HELP and TYPE lines, in a fixed order.
std::string RenderPrometheus(const MetricsSnapshot& snapshot);

// A label value as the text format quotes it: backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view value);

// /proc/self/statm's text ("size resident shared text lib data dt", in pages) → bytes.
absl::StatusOr<ProcessMetrics> ParseStatm(std::string_view text, uint64_t page_size);
// Reads /proc/self/statm.
absl::StatusOr<ProcessMetrics> ReadProcessMetrics();

// gRPC's status code names ("OK", "CANCELLED", ..., "UNAUTHENTICATED"); "CODE_n" for others.
std::string GrpcCodeName(int code);

// gRPC requests finished, by method and status code. Count is called once per finished call
// (never per message); a small mutex guards the map, which holds a few dozen entries at most.
class GrpcRequestCounters {
 public:
  void Count(std::string_view method, int code);
  // Ordered by method, then code.
  std::vector<GrpcRequestCount> Snapshot() const;

 private:
  mutable std::mutex mu_;
  // Guarded by mu_: method → code → calls.
  std::map<std::string, std::map<int, uint64_t>, std::less<>> counts_;
};

}  // namespace informerd::daemon
