#include "daemon/admin/status_endpoints.h"

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "core/resource_version.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/version.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

std::string DescribeEntry(const RunningInformer& running) {
  std::string scope = running.config.namespace_name.empty()
                          ? "all namespaces"
                          : fmt::format("namespace {}", running.config.namespace_name);
  if (!running.config.label_selector.empty()) {
    scope += fmt::format(", labels {}", running.config.label_selector);
  }
  if (!running.config.field_selector.empty()) {
    scope += fmt::format(", fields {}", running.config.field_selector);
  }
  return fmt::format("{} ({})", running.resource.QualifiedName(), scope);
}

}  // namespace

Readiness CheckReadiness(const SharedInformerFactory& informers) {
  Readiness readiness;
  readiness.ready = informers.AllReady();
  if (readiness.ready) return readiness;
  readiness.not_ready = informers.Pending();
  for (const RunningInformer& running : informers.Entries()) {
    if (running.on_demand) continue;  // not part of readiness
    const core::CacheStats stats = running.cache->Stats();
    if (running.informer->status().synced) {
      // Synced, but not confirmed for longer than maxStaleness: the reason names the upstream
      // error (a 403 on every rewatch, an apiserver that does not answer).
      if (std::string stale = running.informer->status().stale; !stale.empty()) {
        readiness.not_ready.push_back(fmt::format("{}: {}", DescribeEntry(running), stale));
      }
      continue;
    }
    // The upstream error explains a sync that does not come (403: RBAC; TLS; 404: no CRD).
    readiness.not_ready.push_back(
        fmt::format("{}: {}", DescribeEntry(running),
                    ServedResource::NotSyncedReason(stats, running.informer->status())));
  }
  return readiness;
}

std::optional<ResourceMetrics> CollectResourceMetrics(const RunningInformer& running) {
  const core::ReflectorStatus status = running.informer->status();
  if (status.state == core::ReflectorState::kStopped) return std::nullopt;
  const core::CacheStats stats = running.cache->Stats();
  const core::UpstreamMetrics& upstream = running.informer->upstream_metrics();

  ResourceMetrics metrics;
  metrics.group = running.resource.group;
  metrics.version = running.resource.version;
  metrics.resource = running.resource.resource;
  metrics.namespace_name = running.config.namespace_name;
  metrics.label_selector = running.config.label_selector;
  metrics.field_selector = running.config.field_selector;
  metrics.synced = stats.synced;
  metrics.objects = stats.object_count;
  metrics.object_bytes = stats.object_bytes;
  if (absl::StatusOr<uint64_t> version = core::ParseResourceVersion(stats.resource_version);
      version.ok() && !stats.resource_version.empty()) {
    metrics.resource_version = *version;
  }
  metrics.events_applied = stats.events_applied;
  metrics.events_delivered = stats.events_delivered;
  metrics.subscribers = stats.subscriber_count;
  metrics.subscribers_fell_behind = stats.subscribers_fell_behind;
  metrics.queue_high_water = stats.queue_high_water;
  metrics.window_events = stats.window_events;
  metrics.window_resets = stats.window_resets;
  metrics.relists = status.relists;
  metrics.watch_restarts = status.watch_restarts;
  if (status.staleness) {
    metrics.staleness_seconds = std::chrono::duration<double>(*status.staleness).count();
  }
  metrics.events_received = upstream.events();
  metrics.list_objects_received = upstream.list_objects();
  metrics.objects_too_large = upstream.objects_too_large();
  metrics.upstream_errors = upstream.errors();
  return metrics;
}

MetricsSnapshot CollectMetrics(const SharedInformerFactory& informers, const Readiness& readiness,
                               const GrpcRequestCounters* grpc_requests) {
  MetricsSnapshot snapshot;
  snapshot.version = kVersion;
  snapshot.ready = readiness.ready;
  snapshot.resources_pending = informers.Pending().size();
  snapshot.ingest_thread_informers.assign(informers.ingest_client_count(), 0);
  for (const RunningInformer& running : informers.Entries()) {
    if (running.ingest_client < snapshot.ingest_thread_informers.size()) {
      ++snapshot.ingest_thread_informers[running.ingest_client];
    }
    if (std::optional<ResourceMetrics> metrics = CollectResourceMetrics(running)) {
      snapshot.resources.push_back(std::move(*metrics));
    }
  }
  if (grpc_requests) snapshot.grpc_requests = grpc_requests->Snapshot();
  if (absl::StatusOr<ProcessMetrics> process = ReadProcessMetrics(); process.ok()) {
    snapshot.process = *process;
  }
  return snapshot;
}

namespace {

std::string_view PathOf(const HttpRequest& request) {
  std::string_view path = request.target;
  if (const auto query = path.find('?'); query != std::string_view::npos) {
    path = path.substr(0, query);
  }
  return path;
}

// /healthz and /readyz; nullopt for other paths.
std::optional<HttpResponse> ServeProbe(const StatusSources& sources, const HttpRequest& request,
                                       std::string_view path) {
  HttpResponse response;
  if (path == "/healthz") {
    response.body = "ok\n";
  } else if (path == "/readyz") {
    const Readiness readiness = sources.readiness();
    if (readiness.ready) {
      response.body = "ok\n";
    } else if (!request.from_loopback) {
      response.status = 503;
      response.body = "failed\n";
    } else {
      response.status = 503;
      response.body = "not ready:\n";
      for (const std::string& reason : readiness.not_ready) {
        response.body += fmt::format("  {}\n", reason);
      }
    }
  } else {
    return std::nullopt;
  }
  return response;
}

}  // namespace

HttpResponse ServeStatusRequest(const StatusSources& sources, const HttpRequest& request) {
  const std::string_view path = PathOf(request);
  if (std::optional<HttpResponse> probe = ServeProbe(sources, request, path)) return *probe;
  HttpResponse response;
  if (path == "/metrics") {
    response.content_type = kPrometheusContentType;
    response.body = sources.metrics();
  } else {
    response.status = 404;
    response.body = fmt::format("not found: {} (try /metrics, /healthz, /readyz)\n", path);
  }
  return response;
}

HttpResponse ServeProbeRequest(const StatusSources& sources, const HttpRequest& request) {
  const std::string_view path = PathOf(request);
  if (std::optional<HttpResponse> probe = ServeProbe(sources, request, path)) return *probe;
  HttpResponse response;
  response.status = 404;
  response.body = fmt::format(
      "not found: {} (the probe port serves /healthz and /readyz; /metrics is on the metrics "
      "port)\n",
      path);
  return response;
}

HttpListenerMetrics ListenerMetrics(std::string name, const HttpServerStats& stats) {
  HttpListenerMetrics metrics;
  metrics.listener = std::move(name);
  metrics.open = stats.open;
  metrics.max_connections = stats.max_connections;
  metrics.accepted = stats.accepted;
  metrics.evicted = stats.evicted;
  metrics.waited = stats.waited;
  metrics.header_timeouts = stats.header_timeouts;
  metrics.idle_timeouts = stats.idle_timeouts;
  metrics.write_timeouts = stats.write_timeouts;
  return metrics;
}

}  // namespace informerd::daemon
