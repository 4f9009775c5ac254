// Config: the daemon's configuration file (YAML), parsed into plain values.
//
// Read once at start-up by the daemon's main path (daemon/app.cc); nothing else touches the file.
// The schema is strict, in the manner of userver's component configs: an unknown key, a value of
// the wrong type or a missing required key is an error naming the file, line, column and field,
// so a typo never silently changes what is watched. Every optional field has a documented default
// (README.md, "Configuration"; deploy/config/informerd.yaml is a complete example).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/defaults.h"

namespace informerd::daemon {

// One resource to inform on: one upstream list+watch, shared by all subscribers.
struct ResourceConfig {
  // As kubectl takes it: "pods", "po", "deployments.apps", "apps/v1/deployments", a CRD plural.
  std::string resource;
  // Watch one namespace only; empty = all namespaces.
  std::string namespace_name;
  // Upstream selectors (kubectl syntax), applied by the apiserver: the cache holds only matches.
  std::string label_selector;
  std::string field_selector;
  // Drop metadata.managedFields before caching (25-30% of a typical object). Default true.
  bool strip_managed_fields = true;
  // Extra field paths to index (for example "spec.nodeName"), so that field selectors on them
  // are answered without scanning. Namespace and labels are always indexed.
  std::vector<std::string> indexes;
};

// One entry of `onDemandResources`: which resources an on-demand informer may be started for,
// written as kubectl names a resource (`kubectl api-resources`: the plural, then the group):
//   pods               the core group's pods
//   deployments.apps   deployments in group apps
//   *.example.com      every resource of group example.com (that group exactly, not its
//                      subdomains)
//   *                  every resource
// Lower case; a resource or group is matched exactly (short names, kinds and versions are not
// patterns: "po", "Pod" or "apps/v1/deployments" would never match, so they are refused).
struct ResourcePattern {
  std::string resource;    // the plural, or "*" for every resource (of `group`, unless any_group)
  std::string group;       // "" for the core group
  bool any_group = false;  // "*" alone

  // Whether the resource `resource` of group `group` ("" for core) is one the pattern names.
  bool Matches(std::string_view group, std::string_view resource) const;
  // The pattern as written: "pods", "deployments.apps", "*.example.com", "*".
  std::string ToString() const;
  bool operator==(const ResourcePattern& other) const {
    return resource == other.resource && group == other.group && any_group == other.any_group;
  }
};

// The pattern `text` names, or InvalidArgument saying how to write one (see ResourcePattern).
absl::StatusOr<ResourcePattern> ParseResourcePattern(std::string_view text);

// The default of maxOnDemandInformers.
inline constexpr std::size_t kDefaultMaxOnDemandInformers = 16;

struct Config {
  std::vector<ResourceConfig> resources;
  // The largest object (one watch event or list item) accepted from the apiserver. A larger
  // watch event is reported with its resource and resourceVersion and the watch restarts; a
  // larger list item is reported naming the object, and the list is retried after backoff. etcd
  // itself caps objects at 1.5 MiB by default, so this only guards against a broken stream.
  // Default 32 MiB.
  std::size_t max_object_bytes = core::kDefaultMaxObjectBytes;
  // How many live events each subscriber may have queued (beyond what gRPC has in flight) before
  // it must show progress: past it, a subscriber that reads nothing for a second, or any that
  // reaches 4x it, is ended with RESOURCE_EXHAUSTED ("fell behind") and must resume. Bursts
  // larger than this reach a reader that keeps up. Default 1024.
  std::size_t subscriber_queue_capacity = core::kDefaultSubscriberQueueCapacity;
  // How long a subscriber may read nothing while items of its initial snapshot or replayed
  // events wait before it is ended the same way ("subscriberSnapshotStallBudget", a duration from
  // 1s to 10m); at other times the budget is a second. When many subscribers start at once the
  // server writes their snapshots together and each stream waits its turn: this is the slack.
  // Default 10 seconds (core::SubscribeOptions::head_start_stall_budget).
  std::chrono::milliseconds subscriber_snapshot_stall_budget{std::chrono::seconds(10)};
  // Serve resources the configuration does not list: the first reader (Subscribe, List, Get) of
  // such a resource starts an informer for it (all namespaces, no selectors). Default false:
  // such requests are NOT_FOUND.
  bool allow_on_demand = false;
  // How long an on-demand informer outlives its last reader ("onDemandGracePeriod", a duration
  // such as "90s", "5m" or "1h30m"; at most 24h). Default 5 minutes.
  std::chrono::milliseconds on_demand_grace_period{std::chrono::minutes(5)};
  // Which resources an on-demand informer may be started for ("onDemandResources", a list of
  // ResourcePatterns). Nullopt (the key left out): any resource. Starting one also needs the
  // caller to be allowed to list and watch the resource cluster-wide (the service checks).
  std::optional<std::vector<ResourcePattern>> on_demand_resources;
  // How many on-demand informers may run at once ("maxOnDemandInformers", 1 to 10000); a reader
  // that would start one more is refused with RESOURCE_EXHAUSTED. Default 16.
  std::size_t max_on_demand_informers = kDefaultMaxOnDemandInformers;
  // How stale a resource's cached data may grow before the daemon stops saying it is ready
  // ("maxStaleness", a duration such as "5m"; "0" or "0s" for no bound; at most 24h). Its
  // staleness is 0 while its watch is open, else the time since the apiserver last confirmed the
  // data (a list's end, an event or bookmark, the end of a watch that worked): a watch that keeps
  // failing (a 403 after an RBAC change, an apiserver unreachable) makes it grow. Past the bound
  // /readyz fails naming the upstream error, gRPC health is NOT_SERVING; List and Get still
  // answer from the cache. Default 5 minutes.
  std::chrono::milliseconds max_staleness{std::chrono::minutes(5)};
};

// "90s", "5m", "1h30m", "500ms", "0s": one or more <digits><unit> with units h, m, s and ms, as
// Go's time.ParseDuration takes them (whole numbers only). Nullopt for anything else.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Parses YAML text. `source` names the text in error messages (normally the file path).
absl::StatusOr<Config> ParseConfig(std::string_view yaml_text, std::string_view source);

// Reads and parses a file; a missing or unreadable file is an error naming the path.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

}  // namespace informerd::daemon
