// Specification of the configuration file (daemon/config.*).
#include "daemon/config.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "fmt/format.h"

namespace informerd::daemon {
namespace {

std::string ErrorOf(const std::string& yaml) {
  auto config = ParseConfig(yaml, "test.yaml");
  REQUIRE_FALSE(config.ok());
  return std::string(config.status().message());
}

TEST_CASE("a complete resource entry is parsed field by field") {
  auto config = ParseConfig(R"(
resources:
  - resource: pods
    namespace: team-a
    labelSelector: app=web
    fieldSelector: spec.nodeName=n1
    stripManagedFields: false
    indexes: [spec.nodeName, status.phase]
  - resource: deployments.apps
)",
                            "test.yaml");
  REQUIRE(config.ok());
  REQUIRE(config->resources.size() == 2);
  const ResourceConfig& pods = config->resources[0];
  CHECK(pods.resource == "pods");
  CHECK(pods.namespace_name == "team-a");
  CHECK(pods.label_selector == "app=web");
  CHECK(pods.field_selector == "spec.nodeName=n1");
  CHECK_FALSE(pods.strip_managed_fields);
  CHECK(pods.indexes == std::vector<std::string>{"spec.nodeName", "status.phase"});
}

TEST_CASE("maxObjectBytes bounds what one event may be") {
  auto config = ParseConfig("maxObjectBytes: 1048576\nresources:\n  - resource: pods\n", "t");
  REQUIRE(config.ok());
  CHECK(config->max_object_bytes == 1048576);
  CHECK(ErrorOf("maxObjectBytes: 100\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:17: maxObjectBytes: must be a number of bytes, at least 65536");
  CHECK(ErrorOf("maxObjectBytes: lots\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:17: maxObjectBytes: must be a number of bytes, at least 65536");
}

TEST_CASE("subscriberQueueCapacity bounds each subscriber's queue") {
  auto config = ParseConfig("subscriberQueueCapacity: 64\nresources:\n  - resource: pods\n", "t");
  REQUIRE(config.ok());
  CHECK(config->subscriber_queue_capacity == 64);
  for (const char* bad : {"0", "-3", "many", "2000000", "[1]"}) {
    INFO(bad);
    CHECK(ErrorOf(std::string("subscriberQueueCapacity: ") + bad +
                  "\nresources:\n  - resource: pods\n") ==
          "test.yaml:1:26: subscriberQueueCapacity: must be a number of events from 1 to 1048576");
  }
}

TEST_CASE("subscriberSnapshotStallBudget is a duration from 1s to 10m") {
  auto config =
      ParseConfig("subscriberSnapshotStallBudget: 1m30s\nresources:\n  - resource: pods\n", "t");
  REQUIRE(config.ok());
  CHECK(config->subscriber_snapshot_stall_budget == std::chrono::seconds(90));
  for (const char* bad : {"500ms", "11m", "10", "soon", "[1s]"}) {
    INFO(bad);
    const std::string error = ErrorOf(std::string("subscriberSnapshotStallBudget: ") + bad +
                                      "\nresources:\n  - resource: pods\n");
    CHECK_THAT(error, Catch::StartsWith("test.yaml:1:32: subscriberSnapshotStallBudget: ") &&
                          Catch::EndsWith("must be a duration such as 10s, 30s or 2m (units h, "
                                          "m, s, ms), from 1s to 10m"));
  }
}

TEST_CASE("optional fields take their documented defaults") {
  auto config = ParseConfig("resources:\n  - resource: configmaps\n", "test.yaml");
  REQUIRE(config.ok());
  CHECK(config->max_object_bytes == 32u << 20);
  CHECK(config->subscriber_queue_capacity == 1024);
  CHECK(config->subscriber_snapshot_stall_budget == std::chrono::seconds(10));
  const ResourceConfig& entry = config->resources.at(0);
  CHECK(entry.namespace_name.empty());
  CHECK(entry.label_selector.empty());
  CHECK(entry.field_selector.empty());
  CHECK(entry.strip_managed_fields);
  CHECK(entry.indexes.empty());
}

TEST_CASE("the shipped example configuration is valid") {
  auto config = LoadConfigFile("deploy/config/informerd.yaml");
  REQUIRE(config.ok());
  CHECK(config->resources.size() >= 3);
}

TEST_CASE("an unknown field is an error naming file, line, column and the known fields") {
  CHECK(ErrorOf("resources:\n  - resource: pods\n    labelSelectr: a=b\n") ==
        "test.yaml:3:5: resources[0].labelSelectr: unknown field (known fields: fieldSelector, "
        "indexes, labelSelector, namespace, resource, stripManagedFields)");
  CHECK(ErrorOf("resource:\n  - resource: pods\n") ==
        "test.yaml:1:1: resource: unknown field (known fields: allowOnDemand, maxObjectBytes, "
        "maxOnDemandInformers, maxStaleness, onDemandGracePeriod, onDemandResources, resources, "
        "subscriberQueueCapacity, subscriberSnapshotStallBudget)");
}

TEST_CASE("each kind of invalid value names the field") {
  CHECK(ErrorOf("resources:\n  - namespace: a\n") ==
        "test.yaml:2:5: resources[0].resource: is required");
  CHECK(ErrorOf("resources:\n  - resource: ''\n") ==
        "test.yaml:2:15: resources[0].resource: is empty");
  CHECK(ErrorOf("resources:\n  - resource: [pods]\n") ==
        "test.yaml:2:15: resources[0].resource: must be a string");
  CHECK(ErrorOf("resources:\n  - resource: pods\n    stripManagedFields: maybe\n") ==
        "test.yaml:3:25: resources[0].stripManagedFields: must be true or false");
  CHECK(ErrorOf("resources:\n  - resource: pods\n    indexes: spec.nodeName\n") ==
        "test.yaml:3:14: resources[0].indexes: must be a list of field paths");
  CHECK(ErrorOf("resources:\n  - resource: pods\n    indexes: [spec..nodeName]\n") ==
        "test.yaml:3:15: resources[0].indexes[0]: \"spec..nodeName\" is not a field path such "
        "as spec.nodeName");
  CHECK(ErrorOf("resources:\n  - pods\n") ==
        "test.yaml:2:5: resources[0]: must be a map with at least `resource`");
  CHECK(ErrorOf("resources: pods\n") == "test.yaml:1:12: resources: must be a list");
  CHECK(ErrorOf("resources: []\n") ==
        "test.yaml:1:12: resources: is empty (allowed only with allowOnDemand: true)");
  CHECK(ErrorOf("- a\n") == "test.yaml:1:1: (top level): must be a map with `resources`");
}

TEST_CASE("on-demand informers are off by default, with a five-minute grace period") {
  auto config = ParseConfig("resources:\n  - resource: pods\n", "t");
  REQUIRE(config.ok());
  CHECK_FALSE(config->allow_on_demand);
  CHECK(config->on_demand_grace_period == std::chrono::minutes(5));
}

TEST_CASE("allowOnDemand and onDemandGracePeriod are parsed, and allow an empty resource list") {
  auto config = ParseConfig(
      "allowOnDemand: true\nonDemandGracePeriod: 1h30m\nresources:\n  - resource: pods\n", "t");
  REQUIRE(config.ok());
  CHECK(config->allow_on_demand);
  CHECK(config->on_demand_grace_period == std::chrono::minutes(90));
  auto empty = ParseConfig("allowOnDemand: true\nresources: []\n", "t");
  REQUIRE(empty.ok());
  CHECK(empty->resources.empty());
  CHECK(empty->on_demand_grace_period == std::chrono::minutes(5));
}

TEST_CASE("maxStaleness: 5 minutes by default, a duration up to 24h, 0 for no bound") {
  auto defaults = ParseConfig("resources:\n  - resource: pods\n", "t");
  REQUIRE(defaults.ok());
  CHECK(defaults->max_staleness == std::chrono::minutes(5));
  for (const auto& [text, value] : std::vector<std::pair<std::string, std::chrono::milliseconds>>{
           {"90s", std::chrono::seconds(90)},
           {"1h30m", std::chrono::minutes(90)},
           {"24h", std::chrono::hours(24)},
           {"0", std::chrono::milliseconds(0)},
           {"0s", std::chrono::milliseconds(0)}}) {
    INFO(text);
    auto config = ParseConfig("maxStaleness: " + text + "\nresources:\n  - resource: pods\n", "t");
    REQUIRE(config.ok());
    CHECK(config->max_staleness == value);
  }
  CHECK(ErrorOf("maxStaleness: 300\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:15: maxStaleness: \"300\" must be a duration such as 90s, 5m or 1h (units h, "
        "m, s, ms), at most 24h; 0 for no bound");
  CHECK(ErrorOf("maxStaleness: 25h\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:15: maxStaleness: \"25h\" must be a duration such as 90s, 5m or 1h (units h, "
        "m, s, ms), at most 24h; 0 for no bound");
  CHECK(ErrorOf("maxStaleness: [5m]\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:15: maxStaleness: must be a duration such as 90s, 5m or 1h (units h, m, s, "
        "ms), at most 24h; 0 for no bound");
}

TEST_CASE("durations are Go-style whole numbers with units h, m, s and ms") {
  CHECK(ParseDuration("0s") == std::chrono::milliseconds(0));
  CHECK(ParseDuration("90s") == std::chrono::seconds(90));
  CHECK(ParseDuration("5m") == std::chrono::minutes(5));
  CHECK(ParseDuration("1h2m3s4ms") == std::chrono::milliseconds(3723004));
  for (const char* bad : {"", "5", "m", "1.5m", "5 m", "-5m", "5d", "5M", "1h-2m"}) {
    INFO(bad);
    CHECK_FALSE(ParseDuration(bad).has_value());
  }
}

TEST_CASE("invalid on-demand settings name the field, line and column") {
  CHECK(ErrorOf("allowOnDemand: sometimes\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:16: allowOnDemand: must be true or false");
  CHECK(ErrorOf("allowOnDemand: true\nonDemandGracePeriod: 300\nresources: []\n") ==
        "test.yaml:2:22: onDemandGracePeriod: \"300\" must be a duration such as 30s, 5m or "
        "1h30m (units h, m, s, ms), at most 24h");
  CHECK(ErrorOf("allowOnDemand: true\nonDemandGracePeriod: 25h\nresources: []\n") ==
        "test.yaml:2:22: onDemandGracePeriod: \"25h\" must be a duration such as 30s, 5m or "
        "1h30m (units h, m, s, ms), at most 24h");
  CHECK(ErrorOf("allowOnDemand: true\nonDemandGracePeriod: [5m]\nresources: []\n") ==
        "test.yaml:2:22: onDemandGracePeriod: must be a duration such as 30s, 5m or 1h30m "
        "(units h, m, s, ms), at most 24h");
  CHECK(ErrorOf("onDemandGracePeriod: 5m\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:22: onDemandGracePeriod: has no effect without `allowOnDemand: true`");
}

TEST_CASE("on-demand informers: any resource and at most 16 by default") {
  auto config = ParseConfig("allowOnDemand: true\nresources: []\n", "t");
  REQUIRE(config.ok());
  CHECK_FALSE(config->on_demand_resources.has_value());
  CHECK(config->max_on_demand_informers == 16);
}

TEST_CASE("onDemandResources and maxOnDemandInformers are parsed") {
  auto config = ParseConfig(
      "allowOnDemand: true\nmaxOnDemandInformers: 3\n"
      "onDemandResources: [pods, deployments.apps, \"*.example.com\", \"*.apps\"]\n"
      "resources: []\n",
      "t");
  REQUIRE(config.ok());
  CHECK(config->max_on_demand_informers == 3);
  REQUIRE(config->on_demand_resources.has_value());
  std::vector<std::string> written;
  for (const ResourcePattern& pattern : *config->on_demand_resources) {
    written.push_back(pattern.ToString());
  }
  CHECK(written == std::vector<std::string>{"pods", "deployments.apps", "*.example.com", "*.apps"});
  auto all = ParseConfig("allowOnDemand: true\nonDemandResources: ['*']\nresources: []\n", "t");
  REQUIRE(all.ok());
  REQUIRE(all->on_demand_resources->size() == 1);
  CHECK(all->on_demand_resources->front().any_group);
}

TEST_CASE("a resource pattern names a resource and group exactly, or every resource of a group") {
  const auto matches = [](const std::string& text, const std::string& group,
                          const std::string& resource) {
    absl::StatusOr<ResourcePattern> pattern = ParseResourcePattern(text);
    REQUIRE(pattern.ok());
    return pattern->Matches(group, resource);
  };
  CHECK(matches("pods", "", "pods"));
  CHECK_FALSE(matches("pods", "", "services"));
  CHECK_FALSE(matches("pods", "metrics.k8s.io", "pods"));  // the core group only
  CHECK(matches("deployments.apps", "apps", "deployments"));
  CHECK_FALSE(matches("deployments.apps", "", "deployments"));
  CHECK_FALSE(matches("deployments.apps", "apps", "replicasets"));
  CHECK(matches("*.example.com", "example.com", "widgets"));
  CHECK_FALSE(matches("*.example.com", "sub.example.com", "widgets"));  // not subdomains
  CHECK_FALSE(matches("*.example.com", "", "pods"));
  CHECK(matches("*.apps", "apps", "statefulsets"));
  CHECK(matches("*", "", "secrets"));
  CHECK(matches("*", "example.com", "widgets"));
  CHECK(matches("widgets.v2.example.com", "v2.example.com", "widgets"));
}

TEST_CASE("resource patterns that could never match are refused, saying how to write one") {
  for (const char* bad :
       {"", "Pods", "po*", "pods.*", "*.*", "*.", ".apps", "pods.", "apps/v1/deployments",
        "v1/pods", "pods.Apps", "pods..apps", "-pods", "pods .apps"}) {
    INFO(bad);
    absl::StatusOr<ResourcePattern> pattern = ParseResourcePattern(bad);
    REQUIRE_FALSE(pattern.ok());
    CHECK(pattern.status().message() ==
          fmt::format("\"{}\" is not a resource pattern: write a resource as kubectl "
                      "api-resources names it, in lower case, with its group after a dot (pods, "
                      "deployments.apps), *.GROUP for every resource of a group, or * for every "
                      "resource",
                      bad));
  }
}

TEST_CASE("invalid onDemandResources and maxOnDemandInformers name the field, line and column") {
  CHECK(ErrorOf("allowOnDemand: true\nonDemandResources: [pods, Deployments]\nresources: []\n") ==
        "test.yaml:2:27: onDemandResources[1]: \"Deployments\" is not a resource pattern: write a "
        "resource as kubectl api-resources names it, in lower case, with its group after a dot "
        "(pods, deployments.apps), *.GROUP for every resource of a group, or * for every "
        "resource");
  CHECK(ErrorOf("allowOnDemand: true\nonDemandResources: pods\nresources: []\n") ==
        "test.yaml:2:20: onDemandResources: must be a list of resource patterns such as [pods, "
        "deployments.apps, \"*.example.com\"]");
  CHECK(ErrorOf("allowOnDemand: true\nonDemandResources: [[pods]]\nresources: []\n") ==
        "test.yaml:2:21: onDemandResources[0]: must be a string");
  CHECK(ErrorOf("allowOnDemand: true\nonDemandResources: []\nresources: []\n") ==
        "test.yaml:2:20: onDemandResources: is empty, which would refuse every on-demand "
        "informer: leave it out to allow any resource, or set allowOnDemand: false");
  CHECK(ErrorOf("onDemandResources: [pods]\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:20: onDemandResources: has no effect without `allowOnDemand: true`");
  for (const char* bad : {"0", "-1", "10001", "many", "[3]"}) {
    INFO(bad);
    CHECK(ErrorOf(std::string("allowOnDemand: true\nmaxOnDemandInformers: ") + bad +
                  "\nresources: []\n") ==
          "test.yaml:2:23: maxOnDemandInformers: must be a number of informers from 1 to 10000");
  }
  CHECK(ErrorOf("maxOnDemandInformers: 4\nresources:\n  - resource: pods\n") ==
        "test.yaml:1:23: maxOnDemandInformers: has no effect without `allowOnDemand: true`");
}

TEST_CASE("the same resource, namespace and selectors twice is an error") {
  CHECK(ErrorOf("resources:\n  - resource: pods\n  - resource: pods\n") ==
        "test.yaml:3:5: resources[1]: duplicates an earlier entry for \"pods\" with the same "
        "namespace and selectors");
  // The same resource in two scopes is two informers, and allowed.
  CHECK(ParseConfig("resources:\n  - resource: pods\n  - resource: pods\n    namespace: a\n",
                    "test.yaml")
            .ok());
}

TEST_CASE("malformed YAML and empty files are errors naming the file") {
  const std::string error = ErrorOf("resources:\n  - resource: [pods\n");
  CHECK(error.rfind("test.yaml:", 0) == 0);
  CHECK(error.find("not valid YAML") != std::string::npos);
  CHECK(ErrorOf("") == "test.yaml: empty configuration; it needs a `resources` list");
}

TEST_CASE("a missing config file is an error naming the path") {
  auto config = LoadConfigFile("/nonexistent/informerd.yaml");
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(config.status().message()) ==
        "cannot read config file /nonexistent/informerd.yaml: No such file or directory");
}

}  // namespace
}  // namespace informerd::daemon
