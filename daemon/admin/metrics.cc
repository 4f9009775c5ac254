#include "daemon/admin/metrics.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "core/watch_event_decoder.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

// `name="value"`, escaped.
std::string Label(std::string_view name, std::string_view value) {
  return fmt::format("{}=\"{}\"", name, EscapeLabelValue(value));
}

std::string Join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return fmt::format("{},{}", a, b);
}

// The labels that tell one informer's series from another's.
std::string ResourceLabels(const ResourceMetrics& resource) {
  std::string labels = fmt::format(
      "{},{},{},{}", Label("group", resource.group), Label("version", resource.version),
      Label("resource", resource.resource), Label("watch_namespace", resource.namespace_name));
  if (!resource.label_selector.empty()) {
    labels = Join(labels, Label("label_selector", resource.label_selector));
  }
  if (!resource.field_selector.empty()) {
    labels = Join(labels, Label("field_selector", resource.field_selector));
  }
  return labels;
}

class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(std::string_view name, std::string_view labels, uint64_t value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }
  void SampleDouble(std::string_view name, std::string_view labels, double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += fmt::format(" {}\n", value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// One family with one sample per resource.
template <typename Value>
void PerResource(Exposition& out, const MetricsSnapshot& snapshot,
                 const std::vector<std::string>& labels, std::string_view name,
                 std::string_view type, std::string_view help, Value value) {
  out.Family(name, type, help);
  for (std::size_t i = 0; i < snapshot.resources.size(); ++i) {
    out.Sample(name, labels[i], value(snapshot.resources[i]));
  }
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderPrometheus(const MetricsSnapshot& snapshot) {
  Exposition out;
  out.Family("informerd_build_info", "gauge", "Always 1; the version label is informerd's.");
  out.Sample("informerd_build_info", Label("version", snapshot.version), 1);
  out.Family("informerd_ready", "gauge",
             "1 when every configured resource has synced and is not staler than maxStaleness "
             "(as /readyz and gRPC health say).");
  out.Sample("informerd_ready", "", snapshot.ready ? 1 : 0);
  out.Family("informerd_resources_pending", "gauge",
             "Configured resources not running yet (unknown to the apiserver so far).");
  out.Sample("informerd_resources_pending", "", snapshot.resources_pending);
  if (!snapshot.ingest_thread_informers.empty()) {
    out.Family("informerd_ingest_threads", "gauge",
               "Threads that run the informers (--ingest-threads), each with its own apiserver "
               "connections.");
    out.Sample("informerd_ingest_threads", "", snapshot.ingest_thread_informers.size());
    out.Family("informerd_ingest_thread_informers", "gauge",
               "Informers running on each ingest thread (0 is the main thread).");
    for (std::size_t i = 0; i < snapshot.ingest_thread_informers.size(); ++i) {
      out.Sample("informerd_ingest_thread_informers", Label("thread", std::to_string(i)),
                 snapshot.ingest_thread_informers[i]);
    }
  }

  std::vector<std::string> labels;
  labels.reserve(snapshot.resources.size());
  for (const ResourceMetrics& resource : snapshot.resources) {
    labels.push_back(ResourceLabels(resource));
  }
  PerResource(out, snapshot, labels, "informerd_resource_synced", "gauge",
              "1 when the resource's cache holds a complete list (a LIST or WatchList finished).",
              [](const ResourceMetrics& r) { return r.synced ? 1 : 0; });
  PerResource(out, snapshot, labels, "informerd_resource_objects", "gauge", "Objects cached.",
              [](const ResourceMetrics& r) { return r.objects; });
  PerResource(out, snapshot, labels, "informerd_resource_object_bytes", "gauge",
              "JSON bytes of the cached objects (nearly all of the cache's memory).",
              [](const ResourceMetrics& r) { return r.object_bytes; });
  out.Family("informerd_resource_version", "gauge",
             "The cache's resourceVersion (the last list's, event's or bookmark's), as a number.");
  for (std::size_t i = 0; i < snapshot.resources.size(); ++i) {
    if (snapshot.resources[i].resource_version) {
      out.Sample("informerd_resource_version", labels[i], *snapshot.resources[i].resource_version);
    }
  }
  out.Family("informerd_resource_staleness_seconds", "gauge",
             "How stale the cached data may be: 0 while the watch is open, else the time since "
             "the apiserver last confirmed it (a list's end, an event or bookmark, the end of a "
             "watch that worked). Absent before the first sync.");
  for (std::size_t i = 0; i < snapshot.resources.size(); ++i) {
    if (snapshot.resources[i].staleness_seconds) {
      out.SampleDouble("informerd_resource_staleness_seconds", labels[i],
                       *snapshot.resources[i].staleness_seconds);
    }
  }
  out.Family("informerd_relists_total", "counter",
             "Lists started (the initial one included), by reason.");
  for (std::size_t i = 0; i < snapshot.resources.size(); ++i) {
    for (std::size_t reason = 0; reason < core::kRelistReasonCount; ++reason) {
      out.Sample(
          "informerd_relists_total",
          Join(labels[i],
               Label("reason", core::RelistReasonName(static_cast<core::RelistReason>(reason)))),
          snapshot.resources[i].relists[reason]);
    }
  }
  PerResource(out, snapshot, labels, "informerd_watch_restarts_total", "counter",
              "Watches re-opened from the last resourceVersion without a relist.",
              [](const ResourceMetrics& r) { return r.watch_restarts; });
  out.Family("informerd_upstream_events_total", "counter",
             "Watch events received from the apiserver, by type.");
  for (std::size_t i = 0; i < snapshot.resources.size(); ++i) {
    for (std::size_t type = 0; type < core::kWatchEventTypeCount; ++type) {
      out.Sample(
          "informerd_upstream_events_total",
          Join(labels[i],
               Label("type", core::WatchEventTypeName(static_cast<core::WatchEventType>(type)))),
          snapshot.resources[i].events_received[type]);
    }
  }
  PerResource(out, snapshot, labels, "informerd_upstream_list_objects_total", "counter",
              "Objects received in LIST pages.",
              [](const ResourceMetrics& r) { return r.list_objects_received; });
  PerResource(out, snapshot, labels, "informerd_objects_too_large_total", "counter",
              "Objects skipped (LIST items and watch events) because they were larger than "
              "maxObjectBytes.",
              [](const ResourceMetrics& r) { return r.objects_too_large; });
  out.Family("informerd_upstream_errors_total", "counter",
             "Failed LIST and WATCH requests and watch ERROR events, by Kubernetes code "
             "(\"transport\": no HTTP response, or a broken or undecodable body).");
  for (std::size_t i = 0; i < snapshot.resources.size(); ++i) {
    for (const auto& [code, count] : snapshot.resources[i].upstream_errors) {
      out.Sample("informerd_upstream_errors_total",
                 Join(labels[i], Label("code", code == 0 ? "transport" : std::to_string(code))),
                 count);
    }
  }
  PerResource(out, snapshot, labels, "informerd_events_applied_total", "counter",
              "Changes applied to the cache (ADDED, MODIFIED, DELETED; live and from relists).",
              [](const ResourceMetrics& r) { return r.events_applied; });
  PerResource(out, snapshot, labels, "informerd_events_delivered_total", "counter",
              "Events queued to subscribers: one per subscriber a change reaches.",
              [](const ResourceMetrics& r) { return r.events_delivered; });
  PerResource(out, snapshot, labels, "informerd_subscribers", "gauge", "Open subscriptions.",
              [](const ResourceMetrics& r) { return r.subscribers; });
  PerResource(out, snapshot, labels, "informerd_subscribers_fell_behind_total", "counter",
              "Subscriptions ended with RESOURCE_EXHAUSTED because they fell behind.",
              [](const ResourceMetrics& r) { return r.subscribers_fell_behind; });
  PerResource(out, snapshot, labels, "informerd_subscriber_queue_high_water_mark", "gauge",
              "The most events any subscriber's live queue has held.",
              [](const ResourceMetrics& r) { return r.queue_high_water; });
  PerResource(out, snapshot, labels, "informerd_replay_window_events", "gauge",
              "Events in the replay window (what a resuming subscriber can be sent).",
              [](const ResourceMetrics& r) { return r.window_events; });
  out.Family("informerd_replay_window_resets_total", "counter",
             "Replay window resets other than a relist's (an upstream resourceVersion the window "
             "cannot order), by reason: resuming from a version sent before one is refused.");
  for (std::size_t i = 0; i < snapshot.resources.size(); ++i) {
    for (std::size_t reason = 0; reason < core::kWindowResetReasonCount; ++reason) {
      out.Sample(
          "informerd_replay_window_resets_total",
          Join(labels[i], Label("reason", core::WindowResetReasonName(
                                              static_cast<core::WindowResetReason>(reason)))),
          snapshot.resources[i].window_resets[reason]);
    }
  }

  out.Family("informerd_grpc_requests_total", "counter",
             "gRPC calls finished, by method and status code.");
  for (const GrpcRequestCount& request : snapshot.grpc_requests) {
    out.Sample("informerd_grpc_requests_total",
               Join(Label("method", request.method), Label("code", request.code)), request.count);
  }

  if (const std::optional<GrpcConnectionMetrics>& connections = snapshot.grpc_connections) {
    out.Family("informerd_grpc_connections", "gauge",
               "gRPC connections open (accepted and not yet ended), as --grpc-max-connections "
               "counts them.");
    out.Sample("informerd_grpc_connections", "", connections->open);
    out.Family("informerd_grpc_max_connections", "gauge",
               "The gRPC port's connection limit (--grpc-max-connections).");
    out.Sample("informerd_grpc_max_connections", "", connections->max_connections);
    out.Family("informerd_grpc_connections_accepted_total", "counter",
               "gRPC connections accepted and handed to gRPC.");
    out.Sample("informerd_grpc_connections_accepted_total", "", connections->accepted);
    out.Family("informerd_grpc_connections_refused_total", "counter",
               "gRPC connections closed as soon as they were accepted, by reason: max-connections "
               "(--grpc-max-connections were open), peer-closing (from an address whose "
               "connection was closed for its calls in flight and is still winding them down).");
    out.Sample("informerd_grpc_connections_refused_total", Label("reason", "max-connections"),
               connections->refused_max_connections);
    out.Sample("informerd_grpc_connections_refused_total", Label("reason", "peer-closing"),
               connections->refused_peer_closing);
    out.Family("informerd_grpc_connections_closed_total", "counter",
               "gRPC connections informerd closed, by reason: calls-in-flight (more calls in "
               "flight than --grpc-max-calls-per-connection: a client resetting streams faster "
               "than their calls finish).");
    out.Sample("informerd_grpc_connections_closed_total", Label("reason", "calls-in-flight"),
               connections->closed_calls_in_flight);
    out.Family("informerd_grpc_calls_in_flight", "gauge",
               "gRPC calls started and not yet finished on the TCP connections, as "
               "--grpc-max-calls-per-connection counts them (unix-socket calls are not counted).");
    out.Sample("informerd_grpc_calls_in_flight", "", connections->calls_in_flight);
  }

  if (const std::optional<ClientLimitMetrics>& limits = snapshot.client_limits) {
    out.Family("informerd_subscriptions_open", "gauge",
               "Subscribe streams open (admitted and not finished), as --max-subscriptions counts "
               "them.");
    out.Sample("informerd_subscriptions_open", "", limits->subscriptions_open);
    out.Family("informerd_subscriptions_open_largest_user", "gauge",
               "The most Subscribe streams one user has open, as --max-subscriptions-per-user "
               "counts them.");
    out.Sample("informerd_subscriptions_open_largest_user", "", limits->subscriptions_largest_user);
    out.Family("informerd_subscriptions_refused_total", "counter",
               "Subscribe calls refused RESOURCE_EXHAUSTED by a subscription limit, by the flag "
               "that set it.");
    out.Sample("informerd_subscriptions_refused_total", Label("limit", "max-subscriptions"),
               limits->refused_max_subscriptions);
    out.Sample("informerd_subscriptions_refused_total",
               Label("limit", "max-subscriptions-per-user"),
               limits->refused_max_subscriptions_per_user);
    out.Family("informerd_selectors_refused_total", "counter",
               "Subscribe and List calls refused INVALID_ARGUMENT for a selector over a limit, by "
               "the flag that set it.");
    out.Sample("informerd_selectors_refused_total", Label("limit", "max-selector-bytes"),
               limits->refused_max_selector_bytes);
    out.Sample("informerd_selectors_refused_total", Label("limit", "max-selector-requirements"),
               limits->refused_max_selector_requirements);
  }

  if (const std::optional<ListMetrics>& lists = snapshot.lists) {
    out.Family("informerd_list_refused_total", "counter",
               "Lists without limit or continue refused RESOURCE_EXHAUSTED: their answer would "
               "exceed a response bound, by the flag that set it.");
    out.Sample("informerd_list_refused_total", Label("limit", "max-list-response-bytes"),
               lists->refused_max_bytes);
    out.Sample("informerd_list_refused_total", Label("limit", "max-list-response-objects"),
               lists->refused_max_objects);
    out.Family("informerd_list_pages_total", "counter",
               "Pages answered to paged Lists (limit or continue).");
    out.Sample("informerd_list_pages_total", "", lists->pages);
    out.Family("informerd_list_pages_cut_total", "counter",
               "Pages that stopped before their limit at --max-list-response-bytes.");
    out.Sample("informerd_list_pages_cut_total", "", lists->pages_cut_at_bytes);
    out.Family("informerd_list_continues_expired_total", "counter",
               "Continued pages refused OUT_OF_RANGE: the list's state was no longer available "
               "(the list had to start again).");
    out.Sample("informerd_list_continues_expired_total", "", lists->continues_expired);
  }

  if (const std::optional<TokenReviewMetrics>& tokens = snapshot.token_reviews) {
    out.Family("informerd_token_reviews_total", "counter",
               "TokenReviews of bearer tokens answered by the apiserver or failed, by result: "
               "authenticated, rejected, error (the call was UNAVAILABLE).");
    out.Sample("informerd_token_reviews_total", Label("result", "authenticated"),
               tokens->authenticated);
    out.Sample("informerd_token_reviews_total", Label("result", "rejected"), tokens->rejected);
    out.Sample("informerd_token_reviews_total", Label("result", "error"), tokens->errors);
    out.Family("informerd_token_review_cache_hits_total", "counter",
               "Bearer tokens answered from the review cache.");
    out.Sample("informerd_token_review_cache_hits_total", "", tokens->cache_hits);
    out.Family("informerd_token_reviews_shared_total", "counter",
               "Calls that waited for a TokenReview of the same token another call had started.");
    out.Sample("informerd_token_reviews_shared_total", "", tokens->shared);
    out.Family("informerd_bearer_tokens_refused_total", "counter",
               "Bearer tokens refused without a review (empty, or longer than 16 KiB).");
    out.Sample("informerd_bearer_tokens_refused_total", "", tokens->refused_unreviewed);
    out.Family("informerd_token_review_cache_entries", "gauge",
               "Token reviews cached (by the token's SHA-256).");
    out.Sample("informerd_token_review_cache_entries", "", tokens->cache_entries);
  }
  if (const std::optional<AccessReviewMetrics>& access = snapshot.access_reviews) {
    out.Family("informerd_access_reviews_total", "counter",
               "SubjectAccessReviews answered by the apiserver or failed, by result: allowed, "
               "denied, error (the call was UNAVAILABLE).");
    out.Sample("informerd_access_reviews_total", Label("result", "allowed"), access->allowed);
    out.Sample("informerd_access_reviews_total", Label("result", "denied"), access->denied);
    out.Sample("informerd_access_reviews_total", Label("result", "error"), access->errors);
    out.Family("informerd_access_review_cache_hits_total", "counter",
               "Access checks answered from the decision cache.");
    out.Sample("informerd_access_review_cache_hits_total", "", access->cache_hits);
    out.Family("informerd_access_reviews_shared_total", "counter",
               "Access checks that waited for the same SubjectAccessReview another had started.");
    out.Sample("informerd_access_reviews_shared_total", "", access->shared);
    out.Family("informerd_access_review_cache_entries", "gauge", "Access decisions cached.");
    out.Sample("informerd_access_review_cache_entries", "", access->cache_entries);
    out.Family("informerd_access_review_duration_seconds", "summary",
               "Time from posting a SubjectAccessReview to its answer or failure.");
    out.SampleDouble("informerd_access_review_duration_seconds_sum", "",
                     access->latency_seconds_sum);
    out.Sample("informerd_access_review_duration_seconds_count", "", access->latency_count);
  }

  if (!snapshot.http_listeners.empty()) {
    const auto per_listener = [&](std::string_view name, std::string_view type,
                                  std::string_view help, uint64_t HttpListenerMetrics::*value) {
      out.Family(name, type, help);
      for (const HttpListenerMetrics& listener : snapshot.http_listeners) {
        out.Sample(name, Label("listener", listener.listener), listener.*value);
      }
    };
    per_listener("informerd_http_connections", "gauge",
                 "Connections open on an HTTP port (listener: metrics or probes).",
                 &HttpListenerMetrics::open);
    per_listener("informerd_http_max_connections", "gauge",
                 "The connection limit of an HTTP port (--metrics-max-connections, "
                 "--probe-max-connections).",
                 &HttpListenerMetrics::max_connections);
    per_listener("informerd_http_connections_accepted_total", "counter",
                 "Connections accepted on an HTTP port.", &HttpListenerMetrics::accepted);
    out.Family("informerd_http_connections_closed_total", "counter",
               "Connections an HTTP port closed on its own, by reason: evicted (the one waiting "
               "longest for its client, to make room for a new connection at the limit), "
               "header_timeout (no whole request within --http-header-timeout: slowloris, or "
               "silent), idle_timeout (kept alive with no request for --http-idle-timeout), "
               "write_timeout (the client did not take the response).");
    for (const HttpListenerMetrics& listener : snapshot.http_listeners) {
      const std::string name = Label("listener", listener.listener);
      for (const auto& [reason, count] :
           {std::pair<const char*, uint64_t>{"evicted", listener.evicted},
            {"header_timeout", listener.header_timeouts},
            {"idle_timeout", listener.idle_timeouts},
            {"write_timeout", listener.write_timeouts}}) {
        out.Sample("informerd_http_connections_closed_total", Join(name, Label("reason", reason)),
                   count);
      }
    }
    per_listener("informerd_http_connections_waited_total", "counter",
                 "New connections that found every connection of an HTTP port being answered and "
                 "waited in the listen backlog for one to finish.",
                 &HttpListenerMetrics::waited);
  }

  if (snapshot.process) {
    out.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.Sample("process_resident_memory_bytes", "", snapshot.process->resident_memory_bytes);
    out.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    out.Sample("process_virtual_memory_bytes", "", snapshot.process->virtual_memory_bytes);
  }
  return out.Take();
}

absl::StatusOr<ProcessMetrics> ParseStatm(std::string_view text, uint64_t page_size) {
  uint64_t fields[2] = {0, 0};
  const char* at = text.data();
  const char* end = text.data() + text.size();
  for (uint64_t& field : fields) {
    while (at < end && *at == ' ') ++at;
    const auto [next, error] = std::from_chars(at, end, field);
    if (error != std::errc() || (next < end && *next != ' ' && *next != '\n')) {
      return absl::InvalidArgumentError(
          fmt::format("/proc/self/statm: cannot read \"{}\"", std::string(text)));
    }
    at = next;
  }
  ProcessMetrics metrics;
  metrics.virtual_memory_bytes = fields[0] * page_size;
  metrics.resident_memory_bytes = fields[1] * page_size;
  return metrics;
}

absl::StatusOr<ProcessMetrics> ReadProcessMetrics() {
  std::ifstream file("/proc/self/statm");
  std::stringstream text;
  text << file.rdbuf();
  if (!file) return absl::UnavailableError("cannot read /proc/self/statm");
  const long page_size = sysconf(_SC_PAGESIZE);
  return ParseStatm(text.str(), page_size > 0 ? static_cast<uint64_t>(page_size) : 4096);
}

std::string GrpcCodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return fmt::format("CODE_{}", code);
}

void GrpcRequestCounters::Count(std::string_view method, int code) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(method);
  if (it == counts_.end())
    it = counts_.emplace(std::string(method), std::map<int, uint64_t>()).first;
  ++it->second[code];
}

std::vector<GrpcRequestCount> GrpcRequestCounters::Snapshot() const {
  std::vector<GrpcRequestCount> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(counts_.size());
  for (const auto& [method, codes] : counts_) {
    for (const auto& [code, count] : codes) {
      out.push_back(GrpcRequestCount{method, GrpcCodeName(code), count});
    }
  }
  return out;
}

}  // namespace informerd::daemon
