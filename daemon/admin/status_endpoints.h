// StatusEndpoints: what the HTTP ports serve. /metrics is the Prometheus exposition of the
// running informers (daemon/admin/metrics.*), /healthz says the process is alive, /readyz says
// whether every configured resource has synced and is fresh (its data confirmed by the
// apiserver within maxStaleness), listing what is not when it is not. The metrics port serves
// all three; the probe port only /healthz and /readyz, so that the kubelet's probes have a
// port of their own that scrapers and other clients have no reason to use.
//
// Readiness has one source: SharedInformerFactory::AllReady(), which the daemon also polls to set
// the gRPC health service (daemon/app.cc), so /readyz and gRPC health agree; while the daemon
// shuts down both say not ready.
//
// Data flow: HttpServer (daemon/admin/http_server.*) → ServeStatusRequest (or ServeProbeRequest)
// → StatusSources, whose
// callbacks the daemon builds from CollectMetrics and CheckReadiness. Threads: everything here is
// called on the HTTP server's thread and reads the informers, caches and counters through their
// thread-safe accessors (small mutexes, the caches' shared lock, relaxed atomics); nothing on the
// informers' hot path waits for a scrape.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "daemon/admin/http_server.h"
#include "daemon/admin/metrics.h"
#include "daemon/informers/shared_informer_factory.h"

namespace informerd::daemon {

struct Readiness {
  bool ready = false;
  // When not ready: one line per reason, such as "nodes: the server has no resource \"nodes\"" or
  // "pods (all namespaces): the initial list has not completed".
  std::vector<std::string> not_ready;
};

// Ready when every configured resource runs, has synced and is not staler than maxStaleness
// (SharedInformerFactory::AllReady). A stale one is listed with why: "pods (all namespaces): no
// update confirmed by the apiserver for 312 s, longer than maxStaleness (300 s): watch: ...".
Readiness CheckReadiness(const SharedInformerFactory& informers);

// One informer's series; nullopt once it has stopped (its series disappear from /metrics).
std::optional<ResourceMetrics> CollectResourceMetrics(const RunningInformer& running);

// Everything /metrics shows. `grpc_requests` may be null.
MetricsSnapshot CollectMetrics(const SharedInformerFactory& informers, const Readiness& readiness,
                               const GrpcRequestCounters* grpc_requests);

struct StatusSources {
  // The /metrics body.
  std::function<std::string()> metrics;
  std::function<Readiness()> readiness;
};

// GET /metrics, /healthz, /readyz (query strings ignored); 404 for anything else. /readyz lists
// what is not ready only to a client on this host (HttpRequest::from_loopback): the reasons can
// name the apiserver's address, the kubeconfig's path or an exec plugin's error output, which
// are nobody else's business. Others get a bare "ok" or "failed", with the same status code.
HttpResponse ServeStatusRequest(const StatusSources& sources, const HttpRequest& request);

// The probe port: GET /healthz and /readyz as above; 404 for anything else, /metrics included
// (it is served on the metrics port). Never calls sources.metrics.
HttpResponse ServeProbeRequest(const StatusSources& sources, const HttpRequest& request);

// An HTTP port's connection counters as /metrics shows them, for the listener `name` ("metrics"
// or "probes").
HttpListenerMetrics ListenerMetrics(std::string name, const HttpServerStats& stats);

}  // namespace informerd::daemon
