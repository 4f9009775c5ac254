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
  // Serve resources the configuration does not list: the first reader (Subscribe, List, Get) of
  // such a resource starts an informer for it (all namespaces, no selectors). Default false:
  // such requests are NOT_FOUND.
  bool allow_on_demand = false;
  // How long an on-demand informer outlives its last reader ("onDemandGracePeriod", a duration
  // such as "90s", "5m" or "1h30m"; at most 24h). Default 5 minutes.
  std::chrono::milliseconds on_demand_grace_period{std::chrono::minutes(5)};
};

// "90s", "5m", "1h30m", "500ms", "0s": one or more <digits><unit> with units h, m, s and ms, as
// Go's time.ParseDuration takes them (whole numbers only). Nullopt for anything else.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Parses YAML text. `source` names the text in error messages (normally the file path).
absl::StatusOr<Config> ParseConfig(std::string_view yaml_text, std::string_view source);

// Reads and parses a file; a missing or unreadable file is an error naming the path.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

}  // namespace informerd::daemon
