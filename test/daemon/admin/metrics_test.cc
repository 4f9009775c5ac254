// Specification of daemon/admin/metrics.*: the Prometheus text exposition (format 0.0.4) of a
// known set of values, label escaping, /proc/self/statm parsing and the gRPC request counters.
// The values as the daemon collects them from running informers are checked in
// status_endpoints_inprocess_test.cc (and status_endpoints_test.cc).
#include "daemon/admin/metrics.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace informerd::daemon {
namespace {

MetricsSnapshot KnownSnapshot() {
  MetricsSnapshot snapshot;
  snapshot.version = "0.1.0";
  snapshot.ready = false;
  snapshot.resources_pending = 1;

  ResourceMetrics deployments;
  deployments.group = "apps";
  deployments.version = "v1";
  deployments.resource = "deployments";
  deployments.namespace_name = "team-a";
  deployments.label_selector = "tier in (web,api)";
  deployments.field_selector = "metadata.name=a\"b\\c\nd";
  deployments.synced = true;
  deployments.objects = 3;
  deployments.object_bytes = 1234;
  deployments.resource_version = 42;
  deployments.staleness_seconds = 312.5;
  deployments.events_applied = 5;
  deployments.events_delivered = 7;
  deployments.subscribers = 2;
  deployments.subscribers_fell_behind = 1;
  deployments.queue_high_water = 4;
  deployments.window_events = 5;
  deployments.window_resets = {1, 0, 0, 2};
  deployments.relists = {1, 2, 0, 0, 0, 0};
  deployments.watch_restarts = 3;
  deployments.events_received = {5, 6, 1, 2, 1};
  deployments.list_objects_received = 3;
  deployments.objects_too_large = 2;
  deployments.upstream_errors = {{0, 2}, {410, 1}};
  snapshot.resources.push_back(deployments);

  ResourceMetrics pods;  // core group, all namespaces, not synced yet: no resource version
  pods.version = "v1";
  pods.resource = "pods";
  snapshot.resources.push_back(pods);

  snapshot.grpc_requests = {{"/informerd.v1.Informer/List", "OK", 3},
                            {"/informerd.v1.Informer/List", "NOT_FOUND", 1}};
  snapshot.process = ProcessMetrics{4096, 8192};
  return snapshot;
}

TEST_CASE("the exposition of a known set of values, exactly") {
  const std::string d =
      "group=\"apps\",version=\"v1\",resource=\"deployments\",watch_namespace=\"team-a\","
      "label_selector=\"tier in (web,api)\",field_selector=\"metadata.name=a\\\"b\\\\c\\nd\"";
  const std::string p = "group=\"\",version=\"v1\",resource=\"pods\",watch_namespace=\"\"";
  const std::string expected =
      "# HELP informerd_build_info Always 1; the version label is informerd's.\n"
      "# TYPE informerd_build_info gauge\n"
      "informerd_build_info{version=\"0.1.0\"} 1\n"
      "# HELP informerd_ready 1 when every configured resource has synced and is not staler than "
      "maxStaleness (as /readyz and gRPC health say).\n"
      "# TYPE informerd_ready gauge\n"
      "informerd_ready 0\n"
      "# HELP informerd_resources_pending Configured resources not running yet (unknown to the "
      "apiserver so far).\n"
      "# TYPE informerd_resources_pending gauge\n"
      "informerd_resources_pending 1\n"
      "# HELP informerd_resource_synced 1 when the resource's cache holds a complete list (a LIST "
      "or WatchList finished).\n"
      "# TYPE informerd_resource_synced gauge\n"
      "informerd_resource_synced{" +
      d +
      "} 1\n"
      "informerd_resource_synced{" +
      p +
      "} 0\n"
      "# HELP informerd_resource_objects Objects cached.\n"
      "# TYPE informerd_resource_objects gauge\n"
      "informerd_resource_objects{" +
      d +
      "} 3\n"
      "informerd_resource_objects{" +
      p +
      "} 0\n"
      "# HELP informerd_resource_object_bytes JSON bytes of the cached objects (nearly all of the "
      "cache's memory).\n"
      "# TYPE informerd_resource_object_bytes gauge\n"
      "informerd_resource_object_bytes{" +
      d +
      "} 1234\n"
      "informerd_resource_object_bytes{" +
      p +
      "} 0\n"
      "# HELP informerd_resource_version The cache's resourceVersion (the last list's, event's or "
      "bookmark's), as a number.\n"
      "# TYPE informerd_resource_version gauge\n"
      "informerd_resource_version{" +
      d +
      "} 42\n"
      "# HELP informerd_resource_staleness_seconds How stale the cached data may be: 0 while the "
      "watch is open, else the time since the apiserver last confirmed it (a list's end, an event "
      "or bookmark, the end of a watch that worked). Absent before the first sync.\n"
      "# TYPE informerd_resource_staleness_seconds gauge\n"
      "informerd_resource_staleness_seconds{" +
      d +
      "} 312.5\n"
      "# HELP informerd_relists_total Lists started (the initial one included), by reason.\n"
      "# TYPE informerd_relists_total counter\n"
      "informerd_relists_total{" +
      d +
      ",reason=\"initial\"} 1\n"
      "informerd_relists_total{" +
      d +
      ",reason=\"expired\"} 2\n"
      "informerd_relists_total{" +
      d +
      ",reason=\"watch-error\"} 0\n"
      "informerd_relists_total{" +
      d +
      ",reason=\"list-error\"} 0\n"
      "informerd_relists_total{" +
      d +
      ",reason=\"watch-list-fallback\"} 0\n"
      "informerd_relists_total{" +
      d +
      ",reason=\"rediscovery\"} 0\n"
      "informerd_relists_total{" +
      p +
      ",reason=\"initial\"} 0\n"
      "informerd_relists_total{" +
      p +
      ",reason=\"expired\"} 0\n"
      "informerd_relists_total{" +
      p +
      ",reason=\"watch-error\"} 0\n"
      "informerd_relists_total{" +
      p +
      ",reason=\"list-error\"} 0\n"
      "informerd_relists_total{" +
      p +
      ",reason=\"watch-list-fallback\"} 0\n"
      "informerd_relists_total{" +
      p +
      ",reason=\"rediscovery\"} 0\n"
      "# HELP informerd_watch_restarts_total Watches re-opened from the last resourceVersion "
      "without a relist.\n"
      "# TYPE informerd_watch_restarts_total counter\n"
      "informerd_watch_restarts_total{" +
      d +
      "} 3\n"
      "informerd_watch_restarts_total{" +
      p +
      "} 0\n"
      "# HELP informerd_upstream_events_total Watch events received from the apiserver, by type.\n"
      "# TYPE informerd_upstream_events_total counter\n"
      "informerd_upstream_events_total{" +
      d +
      ",type=\"ADDED\"} 5\n"
      "informerd_upstream_events_total{" +
      d +
      ",type=\"MODIFIED\"} 6\n"
      "informerd_upstream_events_total{" +
      d +
      ",type=\"DELETED\"} 1\n"
      "informerd_upstream_events_total{" +
      d +
      ",type=\"BOOKMARK\"} 2\n"
      "informerd_upstream_events_total{" +
      d +
      ",type=\"ERROR\"} 1\n"
      "informerd_upstream_events_total{" +
      p +
      ",type=\"ADDED\"} 0\n"
      "informerd_upstream_events_total{" +
      p +
      ",type=\"MODIFIED\"} 0\n"
      "informerd_upstream_events_total{" +
      p +
      ",type=\"DELETED\"} 0\n"
      "informerd_upstream_events_total{" +
      p +
      ",type=\"BOOKMARK\"} 0\n"
      "informerd_upstream_events_total{" +
      p +
      ",type=\"ERROR\"} 0\n"
      "# HELP informerd_upstream_list_objects_total Objects received in LIST pages.\n"
      "# TYPE informerd_upstream_list_objects_total counter\n"
      "informerd_upstream_list_objects_total{" +
      d +
      "} 3\n"
      "informerd_upstream_list_objects_total{" +
      p +
      "} 0\n"
      "# HELP informerd_objects_too_large_total Objects skipped (LIST items and watch events) "
      "because they were larger than maxObjectBytes.\n"
      "# TYPE informerd_objects_too_large_total counter\n"
      "informerd_objects_too_large_total{" +
      d +
      "} 2\n"
      "informerd_objects_too_large_total{" +
      p +
      "} 0\n"
      "# HELP informerd_upstream_errors_total Failed LIST and WATCH requests and watch ERROR "
      "events, by Kubernetes code (\"transport\": no HTTP response, or a broken or undecodable "
      "body).\n"
      "# TYPE informerd_upstream_errors_total counter\n"
      "informerd_upstream_errors_total{" +
      d +
      ",code=\"transport\"} 2\n"
      "informerd_upstream_errors_total{" +
      d +
      ",code=\"410\"} 1\n"
      "# HELP informerd_events_applied_total Changes applied to the cache (ADDED, MODIFIED, "
      "DELETED; live and from relists).\n"
      "# TYPE informerd_events_applied_total counter\n"
      "informerd_events_applied_total{" +
      d +
      "} 5\n"
      "informerd_events_applied_total{" +
      p +
      "} 0\n"
      "# HELP informerd_events_delivered_total Events queued to subscribers: one per subscriber a "
      "change reaches.\n"
      "# TYPE informerd_events_delivered_total counter\n"
      "informerd_events_delivered_total{" +
      d +
      "} 7\n"
      "informerd_events_delivered_total{" +
      p +
      "} 0\n"
      "# HELP informerd_subscribers Open subscriptions.\n"
      "# TYPE informerd_subscribers gauge\n"
      "informerd_subscribers{" +
      d +
      "} 2\n"
      "informerd_subscribers{" +
      p +
      "} 0\n"
      "# HELP informerd_subscribers_fell_behind_total Subscriptions ended with RESOURCE_EXHAUSTED "
      "because they fell behind.\n"
      "# TYPE informerd_subscribers_fell_behind_total counter\n"
      "informerd_subscribers_fell_behind_total{" +
      d +
      "} 1\n"
      "informerd_subscribers_fell_behind_total{" +
      p +
      "} 0\n"
      "# HELP informerd_subscriber_queue_high_water_mark The most events any subscriber's live "
      "queue has held.\n"
      "# TYPE informerd_subscriber_queue_high_water_mark gauge\n"
      "informerd_subscriber_queue_high_water_mark{" +
      d +
      "} 4\n"
      "informerd_subscriber_queue_high_water_mark{" +
      p +
      "} 0\n"
      "# HELP informerd_replay_window_events Events in the replay window (what a resuming "
      "subscriber can be sent).\n"
      "# TYPE informerd_replay_window_events gauge\n"
      "informerd_replay_window_events{" +
      d +
      "} 5\n"
      "informerd_replay_window_events{" +
      p +
      "} 0\n"
      "# HELP informerd_replay_window_resets_total Replay window resets other than a relist's (an "
      "upstream resourceVersion the window cannot order), by reason: resuming from a version sent "
      "before one is refused.\n"
      "# TYPE informerd_replay_window_resets_total counter\n"
      "informerd_replay_window_resets_total{" +
      d +
      ",reason=\"non-numeric-version\"} 1\n"
      "informerd_replay_window_resets_total{" +
      d +
      ",reason=\"version-went-backwards\"} 0\n"
      "informerd_replay_window_resets_total{" +
      d +
      ",reason=\"uid-change-without-version\"} 0\n"
      "informerd_replay_window_resets_total{" +
      d +
      ",reason=\"non-numeric-list-version\"} 2\n"
      "informerd_replay_window_resets_total{" +
      p +
      ",reason=\"non-numeric-version\"} 0\n"
      "informerd_replay_window_resets_total{" +
      p +
      ",reason=\"version-went-backwards\"} 0\n"
      "informerd_replay_window_resets_total{" +
      p +
      ",reason=\"uid-change-without-version\"} 0\n"
      "informerd_replay_window_resets_total{" +
      p +
      ",reason=\"non-numeric-list-version\"} 0\n"
      "# HELP informerd_grpc_requests_total gRPC calls finished, by method and status code.\n"
      "# TYPE informerd_grpc_requests_total counter\n"
      "informerd_grpc_requests_total{method=\"/informerd.v1.Informer/List\",code=\"OK\"} 3\n"
      "informerd_grpc_requests_total{method=\"/informerd.v1.Informer/List\",code=\"NOT_FOUND\"} "
      "1\n"
      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
      "# TYPE process_resident_memory_bytes gauge\n"
      "process_resident_memory_bytes 4096\n"
      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
      "# TYPE process_virtual_memory_bytes gauge\n"
      "process_virtual_memory_bytes 8192\n";
  CHECK(RenderPrometheus(KnownSnapshot()) == expected);
}

TEST_CASE("token and access reviews: their families only when the daemon makes reviews") {
  MetricsSnapshot snapshot;
  snapshot.version = "v";
  const std::string without = RenderPrometheus(snapshot);
  CHECK(without.find("informerd_token_review") == std::string::npos);
  CHECK(without.find("informerd_access_review") == std::string::npos);

  TokenReviewMetrics tokens;
  tokens.authenticated = 5;
  tokens.rejected = 2;
  tokens.errors = 1;
  tokens.cache_hits = 40;
  tokens.shared = 3;
  tokens.refused_unreviewed = 4;
  tokens.cache_entries = 7;
  snapshot.token_reviews = tokens;
  AccessReviewMetrics access;
  access.allowed = 11;
  access.denied = 6;
  access.errors = 2;
  access.cache_hits = 90;
  access.shared = 1;
  access.cache_entries = 17;
  access.latency_seconds_sum = 0.25;
  access.latency_count = 19;
  snapshot.access_reviews = access;
  const std::string text = RenderPrometheus(snapshot);
  const std::string expected =
      "# HELP informerd_token_reviews_total TokenReviews of bearer tokens answered by the "
      "apiserver or failed, by result: authenticated, rejected, error (the call was "
      "UNAVAILABLE).\n"
      "# TYPE informerd_token_reviews_total counter\n"
      "informerd_token_reviews_total{result=\"authenticated\"} 5\n"
      "informerd_token_reviews_total{result=\"rejected\"} 2\n"
      "informerd_token_reviews_total{result=\"error\"} 1\n"
      "# HELP informerd_token_review_cache_hits_total Bearer tokens answered from the review "
      "cache.\n"
      "# TYPE informerd_token_review_cache_hits_total counter\n"
      "informerd_token_review_cache_hits_total 40\n"
      "# HELP informerd_token_reviews_shared_total Calls that waited for a TokenReview of the same "
      "token another call had started.\n"
      "# TYPE informerd_token_reviews_shared_total counter\n"
      "informerd_token_reviews_shared_total 3\n"
      "# HELP informerd_bearer_tokens_refused_total Bearer tokens refused without a review (empty, "
      "or longer than 16 KiB).\n"
      "# TYPE informerd_bearer_tokens_refused_total counter\n"
      "informerd_bearer_tokens_refused_total 4\n"
      "# HELP informerd_token_review_cache_entries Token reviews cached (by the token's "
      "SHA-256).\n"
      "# TYPE informerd_token_review_cache_entries gauge\n"
      "informerd_token_review_cache_entries 7\n"
      "# HELP informerd_access_reviews_total SubjectAccessReviews answered by the apiserver or "
      "failed, by result: allowed, denied, error (the call was UNAVAILABLE).\n"
      "# TYPE informerd_access_reviews_total counter\n"
      "informerd_access_reviews_total{result=\"allowed\"} 11\n"
      "informerd_access_reviews_total{result=\"denied\"} 6\n"
      "informerd_access_reviews_total{result=\"error\"} 2\n"
      "# HELP informerd_access_review_cache_hits_total Access checks answered from the decision "
      "cache.\n"
      "# TYPE informerd_access_review_cache_hits_total counter\n"
      "informerd_access_review_cache_hits_total 90\n"
      "# HELP informerd_access_reviews_shared_total Access checks that waited for the same "
      "SubjectAccessReview another had started.\n"
      "# TYPE informerd_access_reviews_shared_total counter\n"
      "informerd_access_reviews_shared_total 1\n"
      "# HELP informerd_access_review_cache_entries Access decisions cached.\n"
      "# TYPE informerd_access_review_cache_entries gauge\n"
      "informerd_access_review_cache_entries 17\n"
      "# HELP informerd_access_review_duration_seconds Time from posting a SubjectAccessReview to "
      "its answer or failure.\n"
      "# TYPE informerd_access_review_duration_seconds summary\n"
      "informerd_access_review_duration_seconds_sum 0.25\n"
      "informerd_access_review_duration_seconds_count 19\n";
  const std::size_t start = text.find("# HELP informerd_token_reviews_total");
  REQUIRE(start != std::string::npos);
  CHECK(text.substr(start) == expected);
}

TEST_CASE("ingest threads: how many, and the informers on each, once the informers exist") {
  MetricsSnapshot snapshot;
  snapshot.version = "v";
  CHECK(RenderPrometheus(snapshot).find("informerd_ingest_") == std::string::npos);

  snapshot.ingest_thread_informers = {2, 1};
  const std::string text = RenderPrometheus(snapshot);
  const std::string expected =
      "# HELP informerd_ingest_threads Threads that run the informers (--ingest-threads), each "
      "with its own apiserver connections.\n"
      "# TYPE informerd_ingest_threads gauge\n"
      "informerd_ingest_threads 2\n"
      "# HELP informerd_ingest_thread_informers Informers running on each ingest thread (0 is the "
      "main thread).\n"
      "# TYPE informerd_ingest_thread_informers gauge\n"
      "informerd_ingest_thread_informers{thread=\"0\"} 2\n"
      "informerd_ingest_thread_informers{thread=\"1\"} 1\n";
  const std::size_t start = text.find("# HELP informerd_ingest_threads ");
  REQUIRE(start != std::string::npos);
  CHECK(text.substr(start, expected.size()) == expected);
}

TEST_CASE("client limits: open subscriptions and refusals by limit, once the service runs") {
  MetricsSnapshot snapshot;
  snapshot.version = "v";
  CHECK(RenderPrometheus(snapshot).find("informerd_subscriptions_") == std::string::npos);
  CHECK(RenderPrometheus(snapshot).find("informerd_selectors_") == std::string::npos);

  ClientLimitMetrics limits;
  limits.subscriptions_open = 120;
  limits.subscriptions_largest_user = 100;
  limits.refused_max_subscriptions = 2;
  limits.refused_max_subscriptions_per_user = 7;
  limits.refused_max_selector_bytes = 3;
  limits.refused_max_selector_requirements = 1;
  snapshot.client_limits = limits;
  const std::string text = RenderPrometheus(snapshot);
  const std::string expected =
      "# HELP informerd_subscriptions_open Subscribe streams open (admitted and not finished), as "
      "--max-subscriptions counts them.\n"
      "# TYPE informerd_subscriptions_open gauge\n"
      "informerd_subscriptions_open 120\n"
      "# HELP informerd_subscriptions_open_largest_user The most Subscribe streams one user has "
      "open, as --max-subscriptions-per-user counts them.\n"
      "# TYPE informerd_subscriptions_open_largest_user gauge\n"
      "informerd_subscriptions_open_largest_user 100\n"
      "# HELP informerd_subscriptions_refused_total Subscribe calls refused RESOURCE_EXHAUSTED by "
      "a subscription limit, by the flag that set it.\n"
      "# TYPE informerd_subscriptions_refused_total counter\n"
      "informerd_subscriptions_refused_total{limit=\"max-subscriptions\"} 2\n"
      "informerd_subscriptions_refused_total{limit=\"max-subscriptions-per-user\"} 7\n"
      "# HELP informerd_selectors_refused_total Subscribe and List calls refused INVALID_ARGUMENT "
      "for a selector over a limit, by the flag that set it.\n"
      "# TYPE informerd_selectors_refused_total counter\n"
      "informerd_selectors_refused_total{limit=\"max-selector-bytes\"} 3\n"
      "informerd_selectors_refused_total{limit=\"max-selector-requirements\"} 1\n";
  const std::size_t start = text.find("# HELP informerd_subscriptions_open ");
  REQUIRE(start != std::string::npos);
  CHECK(text.substr(start, expected.size()) == expected);
}

TEST_CASE("HTTP ports: connections open, accepted and closed by reason, per listener") {
  MetricsSnapshot snapshot;
  snapshot.version = "v";
  CHECK(RenderPrometheus(snapshot).find("informerd_http_") == std::string::npos);

  HttpListenerMetrics metrics{"metrics", 3, 64, 170, 100, 2, 5, 7, 1};
  HttpListenerMetrics probes{"probes", 1, 16, 40, 0, 0, 4, 0, 0};
  snapshot.http_listeners = {metrics, probes};
  const std::string text = RenderPrometheus(snapshot);
  const std::string expected =
      "# HELP informerd_http_connections Connections open on an HTTP port (listener: metrics or "
      "probes).\n"
      "# TYPE informerd_http_connections gauge\n"
      "informerd_http_connections{listener=\"metrics\"} 3\n"
      "informerd_http_connections{listener=\"probes\"} 1\n"
      "# HELP informerd_http_max_connections The connection limit of an HTTP port "
      "(--metrics-max-connections, --probe-max-connections).\n"
      "# TYPE informerd_http_max_connections gauge\n"
      "informerd_http_max_connections{listener=\"metrics\"} 64\n"
      "informerd_http_max_connections{listener=\"probes\"} 16\n"
      "# HELP informerd_http_connections_accepted_total Connections accepted on an HTTP port.\n"
      "# TYPE informerd_http_connections_accepted_total counter\n"
      "informerd_http_connections_accepted_total{listener=\"metrics\"} 170\n"
      "informerd_http_connections_accepted_total{listener=\"probes\"} 40\n"
      "# HELP informerd_http_connections_closed_total Connections an HTTP port closed on its own, "
      "by reason: evicted (the one waiting longest for its client, to make room for a new "
      "connection at the limit), header_timeout (no whole request within --http-header-timeout: "
      "slowloris, or silent), idle_timeout (kept alive with no request for --http-idle-timeout), "
      "write_timeout (the client did not take the response).\n"
      "# TYPE informerd_http_connections_closed_total counter\n"
      "informerd_http_connections_closed_total{listener=\"metrics\",reason=\"evicted\"} 100\n"
      "informerd_http_connections_closed_total{listener=\"metrics\",reason=\"header_timeout\"} 5\n"
      "informerd_http_connections_closed_total{listener=\"metrics\",reason=\"idle_timeout\"} 7\n"
      "informerd_http_connections_closed_total{listener=\"metrics\",reason=\"write_timeout\"} 1\n"
      "informerd_http_connections_closed_total{listener=\"probes\",reason=\"evicted\"} 0\n"
      "informerd_http_connections_closed_total{listener=\"probes\",reason=\"header_timeout\"} 4\n"
      "informerd_http_connections_closed_total{listener=\"probes\",reason=\"idle_timeout\"} 0\n"
      "informerd_http_connections_closed_total{listener=\"probes\",reason=\"write_timeout\"} 0\n"
      "# HELP informerd_http_connections_waited_total New connections that found every "
      "connection of an HTTP port being answered and waited in the listen backlog for one to "
      "finish.\n"
      "# TYPE informerd_http_connections_waited_total counter\n"
      "informerd_http_connections_waited_total{listener=\"metrics\"} 2\n"
      "informerd_http_connections_waited_total{listener=\"probes\"} 0\n";
  const std::size_t start = text.find("# HELP informerd_http_connections ");
  REQUIRE(start != std::string::npos);
  const std::size_t end = text.find("# HELP process_", start);
  CHECK(text.substr(start, end == std::string::npos ? std::string::npos : end - start) == expected);
}

TEST_CASE("the gRPC port's connections: open, limit, accepted, refused and closed by reason") {
  MetricsSnapshot snapshot;
  snapshot.version = "v";
  CHECK(RenderPrometheus(snapshot).find("informerd_grpc_connections") == std::string::npos);
  CHECK(RenderPrometheus(snapshot).find("informerd_grpc_calls_in_flight") == std::string::npos);

  GrpcConnectionMetrics connections;
  connections.open = 3;
  connections.max_connections = 1000;
  connections.accepted = 250;
  connections.refused_max_connections = 12;
  connections.refused_peer_closing = 4;
  connections.closed_calls_in_flight = 2;
  connections.calls_in_flight = 17;
  snapshot.grpc_connections = connections;
  const std::string text = RenderPrometheus(snapshot);
  const std::string expected =
      "# HELP informerd_grpc_connections gRPC connections open (accepted and not yet ended), as "
      "--grpc-max-connections counts them.\n"
      "# TYPE informerd_grpc_connections gauge\n"
      "informerd_grpc_connections 3\n"
      "# HELP informerd_grpc_max_connections The gRPC port's connection limit "
      "(--grpc-max-connections).\n"
      "# TYPE informerd_grpc_max_connections gauge\n"
      "informerd_grpc_max_connections 1000\n"
      "# HELP informerd_grpc_connections_accepted_total gRPC connections accepted and handed to "
      "gRPC.\n"
      "# TYPE informerd_grpc_connections_accepted_total counter\n"
      "informerd_grpc_connections_accepted_total 250\n"
      "# HELP informerd_grpc_connections_refused_total gRPC connections closed as soon as they "
      "were "
      "accepted, by reason: max-connections (--grpc-max-connections were open), peer-closing "
      "(from an address whose connection was closed for its calls in flight and is still winding "
      "them down).\n"
      "# TYPE informerd_grpc_connections_refused_total counter\n"
      "informerd_grpc_connections_refused_total{reason=\"max-connections\"} 12\n"
      "informerd_grpc_connections_refused_total{reason=\"peer-closing\"} 4\n"
      "# HELP informerd_grpc_connections_closed_total gRPC connections informerd closed, by "
      "reason: "
      "calls-in-flight (more calls in flight than --grpc-max-calls-per-connection: a client "
      "resetting streams faster than their calls finish).\n"
      "# TYPE informerd_grpc_connections_closed_total counter\n"
      "informerd_grpc_connections_closed_total{reason=\"calls-in-flight\"} 2\n"
      "# HELP informerd_grpc_calls_in_flight gRPC calls started and not yet finished on the TCP "
      "connections, as --grpc-max-calls-per-connection counts them (unix-socket calls are not "
      "counted).\n"
      "# TYPE informerd_grpc_calls_in_flight gauge\n"
      "informerd_grpc_calls_in_flight 17\n";
  const std::size_t start = text.find("# HELP informerd_grpc_connections ");
  REQUIRE(start != std::string::npos);
  CHECK(text.substr(start, expected.size()) == expected);
}

TEST_CASE("List's answers: refusals by bound, pages, cut pages, expired lists") {
  MetricsSnapshot snapshot;
  snapshot.version = "v";
  CHECK(RenderPrometheus(snapshot).find("informerd_list_") == std::string::npos);
  ListMetrics lists;
  lists.refused_max_bytes = 4;
  lists.refused_max_objects = 1;
  lists.pages = 250;
  lists.pages_cut_at_bytes = 30;
  lists.continues_expired = 2;
  snapshot.lists = lists;
  const std::string text = RenderPrometheus(snapshot);
  const std::string expected =
      "# HELP informerd_list_refused_total Lists without limit or continue refused "
      "RESOURCE_EXHAUSTED: their answer would exceed a response bound, by the flag that set it.\n"
      "# TYPE informerd_list_refused_total counter\n"
      "informerd_list_refused_total{limit=\"max-list-response-bytes\"} 4\n"
      "informerd_list_refused_total{limit=\"max-list-response-objects\"} 1\n"
      "# HELP informerd_list_pages_total Pages answered to paged Lists (limit or continue).\n"
      "# TYPE informerd_list_pages_total counter\n"
      "informerd_list_pages_total 250\n"
      "# HELP informerd_list_pages_cut_total Pages that stopped before their limit at "
      "--max-list-response-bytes.\n"
      "# TYPE informerd_list_pages_cut_total counter\n"
      "informerd_list_pages_cut_total 30\n"
      "# HELP informerd_list_continues_expired_total Continued pages refused OUT_OF_RANGE: the "
      "list's state was no longer available (the list had to start again).\n"
      "# TYPE informerd_list_continues_expired_total counter\n"
      "informerd_list_continues_expired_total 2\n";
  const std::size_t start = text.find("# HELP informerd_list_refused_total ");
  REQUIRE(start != std::string::npos);
  CHECK(text.substr(start, expected.size()) == expected);
}

TEST_CASE("with no informers, every family still has its HELP and TYPE, and no samples") {
  MetricsSnapshot snapshot;
  snapshot.version = "v";
  const std::string text = RenderPrometheus(snapshot);
  CHECK(text.find(
            "# TYPE informerd_resource_objects gauge\n# HELP informerd_resource_object_bytes") !=
        std::string::npos);
  CHECK(text.find("informerd_resource_objects{") == std::string::npos);
  // Without /proc/self/statm, the process families are left out.
  CHECK(text.find("process_resident_memory_bytes") == std::string::npos);
}

TEST_CASE("label values escape backslash, double quote and newline, and nothing else") {
  CHECK(EscapeLabelValue("plain text, (x)=y") == "plain text, (x)=y");
  CHECK(EscapeLabelValue("a\\b") == "a\\\\b");
  CHECK(EscapeLabelValue("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(EscapeLabelValue("two\nlines") == "two\\nlines");
  CHECK(EscapeLabelValue("tab\tand é") == "tab\tand é");
}

TEST_CASE("/proc/self/statm: size and resident pages become bytes") {
  auto parsed = ParseStatm("1000 250 100 10 0 500 0\n", 4096);
  REQUIRE(parsed.ok());
  CHECK(parsed->virtual_memory_bytes == 1000 * 4096);
  CHECK(parsed->resident_memory_bytes == 250 * 4096);
  CHECK_FALSE(ParseStatm("", 4096).ok());
  CHECK_FALSE(ParseStatm("12 x 3", 4096).ok());

  auto own = ReadProcessMetrics();
  REQUIRE(own.ok());
  CHECK(own->resident_memory_bytes > 0);
  CHECK(own->virtual_memory_bytes >= own->resident_memory_bytes);
}

TEST_CASE("gRPC request counters count by method and code, from many threads") {
  GrpcRequestCounters counters;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&counters] {
      for (int i = 0; i < 1000; ++i) {
        counters.Count("/informerd.v1.Informer/Get", i % 2 == 0 ? 0 : 5);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  counters.Count("/grpc.health.v1.Health/Check", 0);
  const std::vector<GrpcRequestCount> snapshot = counters.Snapshot();
  REQUIRE(snapshot.size() == 3);
  CHECK(snapshot[0].method == "/grpc.health.v1.Health/Check");
  CHECK(snapshot[0].code == "OK");
  CHECK(snapshot[0].count == 1);
  CHECK(snapshot[1].method == "/informerd.v1.Informer/Get");
  CHECK(snapshot[1].code == "OK");
  CHECK(snapshot[1].count == 2000);
  CHECK(snapshot[2].code == "NOT_FOUND");
  CHECK(snapshot[2].count == 2000);
  CHECK(GrpcCodeName(16) == "UNAUTHENTICATED");
  CHECK(GrpcCodeName(99) == "CODE_99");
}

}  // namespace
}  // namespace informerd::daemon
