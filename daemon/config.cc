#include "daemon/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace informerd::daemon {
namespace {

// Builds "file:line:col: field: message" errors. yaml-cpp marks are 0-based.
class ErrorSink {
 public:
  explicit ErrorSink(std::string_view source) : source_(source) {}

  absl::Status At(const YAML::Node& node, std::string_view field, std::string_view message) const {
    const YAML::Mark mark = node.Mark();
    if (mark.line >= 0) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}:{}: {}: {}", source_, mark.line + 1, mark.column + 1, field, message));
    }
    return absl::InvalidArgumentError(fmt::format("{}: {}: {}", source_, field, message));
  }

 private:
  std::string source_;
};

absl::Status CheckKeys(const YAML::Node& map, const std::set<std::string>& known,
                       std::string_view path, const ErrorSink& errors) {
  for (const auto& entry : map) {
    const std::string key = entry.first.Scalar();
    if (known.count(key) == 0) {
      return errors.At(entry.first, path.empty() ? key : fmt::format("{}.{}", path, key),
                       fmt::format("unknown field (known fields: {})", fmt::join(known, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadString(const YAML::Node& node, std::string_view field,
                                       const ErrorSink& errors) {
  if (!node.IsScalar()) return errors.At(node, field, "must be a string");
  return node.Scalar();
}

absl::StatusOr<bool> ReadBool(const YAML::Node& node, std::string_view field,
                              const ErrorSink& errors) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return errors.At(node, field, "must be true or false");
  }
  return value;
}

// A field path as used by field selectors: dot-separated segments of [A-Za-z0-9_-].
bool IsFieldPath(const std::string& path) {
  if (path.empty() || path.front() == '.' || path.back() == '.') return false;
  char previous = 0;
  for (char c : path) {
    const bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    if (!word && c != '.') return false;
    if (c == '.' && previous == '.') return false;
    previous = c;
  }
  return true;
}

absl::StatusOr<ResourceConfig> ParseResource(const YAML::Node& node, const std::string& path,
                                             const ErrorSink& errors) {
  if (!node.IsMap()) return errors.At(node, path, "must be a map with at least `resource`");
  static const std::set<std::string> kKnown = {"resource",      "namespace", "labelSelector",
                                               "fieldSelector", "indexes",   "stripManagedFields"};
  if (auto status = CheckKeys(node, kKnown, path, errors); !status.ok()) return status;

  ResourceConfig out;
  const YAML::Node resource = node["resource"];
  if (!resource) return errors.At(node, fmt::format("{}.resource", path), "is required");
  auto name = ReadString(resource, fmt::format("{}.resource", path), errors);
  if (!name.ok()) return name.status();
  if (name->empty()) return errors.At(resource, fmt::format("{}.resource", path), "is empty");
  out.resource = *name;

  struct StringField {
    const char* key;
    std::string* target;
  };
  for (StringField field : {StringField{"namespace", &out.namespace_name},
                            StringField{"labelSelector", &out.label_selector},
                            StringField{"fieldSelector", &out.field_selector}}) {
    if (const YAML::Node value = node[field.key]) {
      auto text = ReadString(value, fmt::format("{}.{}", path, field.key), errors);
      if (!text.ok()) return text.status();
      *field.target = *text;
    }
  }
  if (const YAML::Node strip = node["stripManagedFields"]) {
    auto value = ReadBool(strip, fmt::format("{}.stripManagedFields", path), errors);
    if (!value.ok()) return value.status();
    out.strip_managed_fields = *value;
  }
  if (const YAML::Node indexes = node["indexes"]) {
    const std::string field = fmt::format("{}.indexes", path);
    if (!indexes.IsSequence()) return errors.At(indexes, field, "must be a list of field paths");
    for (std::size_t i = 0; i < indexes.size(); ++i) {
      const std::string item = fmt::format("{}[{}]", field, i);
      auto text = ReadString(indexes[i], item, errors);
      if (!text.ok()) return text.status();
      if (!IsFieldPath(*text)) {
        return errors.At(indexes[i], item,
                         fmt::format("\"{}\" is not a field path such as spec.nodeName", *text));
      }
      out.indexes.push_back(*text);
    }
  }
  return out;
}

// A DNS label as Kubernetes resource names and API group segments are: lower-case letters,
// digits and '-', starting and ending with a letter or digit.
bool IsDnsLabel(std::string_view text) {
  if (text.empty() || text.size() > 63 || text.front() == '-' || text.back() == '-') return false;
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// An API group: DNS labels joined by dots ("apps", "example.com").
bool IsGroupName(std::string_view text) {
  if (text.empty()) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text.find('.', start);
    if (!IsDnsLabel(text.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace

bool ResourcePattern::Matches(std::string_view group_name, std::string_view resource_name) const {
  if (any_group) return true;
  return group == group_name && (resource == "*" || resource == resource_name);
}

std::string ResourcePattern::ToString() const {
  if (any_group) return "*";
  return group.empty() ? resource : fmt::format("{}.{}", resource, group);
}

absl::StatusOr<ResourcePattern> ParseResourcePattern(std::string_view text) {
  ResourcePattern pattern;
  if (text == "*") {
    pattern.resource = "*";
    pattern.any_group = true;
    return pattern;
  }
  const std::size_t dot = text.find('.');
  const std::string_view resource = text.substr(0, dot);
  const std::string_view group =
      dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  const bool valid = (resource == "*" || IsDnsLabel(resource)) &&
                     (dot == std::string_view::npos ? resource != "*" : IsGroupName(group));
  if (!valid) {
    return absl::InvalidArgumentError(fmt::format(
        "\"{}\" is not a resource pattern: write a resource as kubectl api-resources names it, "
        "in lower case, with its group after a dot (pods, deployments.apps), *.GROUP for every "
        "resource of a group, or * for every resource",
        text));
  }
  pattern.resource = std::string(resource);
  pattern.group = std::string(group);
  return pattern;
}

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::chrono::milliseconds total{0};
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t digits_start = i;
    unsigned long long value = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      value = value * 10 + static_cast<unsigned long long>(text[i] - '0');
      if (value > 1'000'000'000ULL) return std::nullopt;  // beyond any sensible duration
      ++i;
    }
    if (i == digits_start) return std::nullopt;
    const std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    const auto count = static_cast<std::chrono::milliseconds::rep>(value);
    if (unit == "ms") {
      total += std::chrono::milliseconds(count);
    } else if (unit == "s") {
      total += std::chrono::seconds(count);
    } else if (unit == "m") {
      total += std::chrono::minutes(count);
    } else if (unit == "h") {
      total += std::chrono::hours(count);
    } else {
      return std::nullopt;
    }
  }
  return total;
}

absl::StatusOr<Config> ParseConfig(std::string_view yaml_text, std::string_view source) {
  const ErrorSink errors(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    // yaml-cpp's own message already says "yaml-cpp: error at line L, column C: ...".
    return absl::InvalidArgumentError(fmt::format("{}:{}:{}: not valid YAML: {}", source,
                                                  e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root || root.IsNull()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: empty configuration; it needs a `resources` list", source));
  }
  if (!root.IsMap()) return errors.At(root, "(top level)", "must be a map with `resources`");
  if (auto status =
          CheckKeys(root,
                    {"allowOnDemand", "maxObjectBytes", "maxOnDemandInformers", "maxStaleness",
                     "onDemandGracePeriod", "onDemandResources", "resources",
                     "subscriberQueueCapacity", "subscriberSnapshotStallBudget"},
                    "", errors);
      !status.ok()) {
    return status;
  }

  Config config;
  if (const YAML::Node allow = root["allowOnDemand"]) {
    auto value = ReadBool(allow, "allowOnDemand", errors);
    if (!value.ok()) return value.status();
    config.allow_on_demand = *value;
  }
  if (const YAML::Node grace = root["onDemandGracePeriod"]) {
    constexpr const char* kExpected =
        "must be a duration such as 30s, 5m or 1h30m (units h, m, s, ms), at most 24h";
    if (!grace.IsScalar()) return errors.At(grace, "onDemandGracePeriod", kExpected);
    const std::optional<std::chrono::milliseconds> value = ParseDuration(grace.Scalar());
    if (!value || *value > std::chrono::hours(24)) {
      return errors.At(grace, "onDemandGracePeriod",
                       fmt::format("\"{}\" {}", grace.Scalar(), kExpected));
    }
    if (!config.allow_on_demand) {
      return errors.At(grace, "onDemandGracePeriod", "has no effect without `allowOnDemand: true`");
    }
    config.on_demand_grace_period = *value;
  }
  if (const YAML::Node staleness = root["maxStaleness"]) {
    constexpr const char* kExpected =
        "must be a duration such as 90s, 5m or 1h (units h, m, s, ms), at most 24h; 0 for no "
        "bound";
    if (!staleness.IsScalar()) return errors.At(staleness, "maxStaleness", kExpected);
    // Go's time.ParseDuration takes a bare "0" too.
    const std::optional<std::chrono::milliseconds> value =
        staleness.Scalar() == "0" ? std::optional(std::chrono::milliseconds(0))
                                  : ParseDuration(staleness.Scalar());
    if (!value || *value > std::chrono::hours(24)) {
      return errors.At(staleness, "maxStaleness",
                       fmt::format("\"{}\" {}", staleness.Scalar(), kExpected));
    }
    config.max_staleness = *value;
  }
  if (const YAML::Node patterns = root["onDemandResources"]) {
    constexpr const char* kField = "onDemandResources";
    if (!patterns.IsSequence()) {
      return errors.At(patterns, kField,
                       "must be a list of resource patterns such as [pods, deployments.apps, "
                       "\"*.example.com\"]");
    }
    if (!config.allow_on_demand) {
      return errors.At(patterns, kField, "has no effect without `allowOnDemand: true`");
    }
    if (patterns.size() == 0) {
      return errors.At(patterns, kField,
                       "is empty, which would refuse every on-demand informer: leave it out to "
                       "allow any resource, or set allowOnDemand: false");
    }
    std::vector<ResourcePattern> parsed;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      const std::string item = fmt::format("{}[{}]", kField, i);
      auto text = ReadString(patterns[i], item, errors);
      if (!text.ok()) return text.status();
      absl::StatusOr<ResourcePattern> pattern = ParseResourcePattern(*text);
      if (!pattern.ok())
        return errors.At(patterns[i], item, std::string(pattern.status().message()));
      parsed.push_back(*std::move(pattern));
    }
    config.on_demand_resources = std::move(parsed);
  }
  if (const YAML::Node max = root["maxOnDemandInformers"]) {
    constexpr const char* kField = "maxOnDemandInformers";
    unsigned long long value = 0;
    if (!max.IsScalar() || !YAML::convert<unsigned long long>::decode(max, value) || value < 1 ||
        value > 10000) {
      return errors.At(max, kField, "must be a number of informers from 1 to 10000");
    }
    if (!config.allow_on_demand) {
      return errors.At(max, kField, "has no effect without `allowOnDemand: true`");
    }
    config.max_on_demand_informers = static_cast<std::size_t>(value);
  }

  const YAML::Node resources = root["resources"];
  if (!resources) return errors.At(root, "resources", "is required");
  if (!resources.IsSequence()) return errors.At(resources, "resources", "must be a list");
  // With on-demand informers, a daemon may start with none configured.
  if (resources.size() == 0 && !config.allow_on_demand) {
    return errors.At(resources, "resources", "is empty (allowed only with allowOnDemand: true)");
  }

  if (const YAML::Node max = root["maxObjectBytes"]) {
    unsigned long long value = 0;
    // At least 64 KiB: smaller would refuse ordinary objects.
    if (!max.IsScalar() || !YAML::convert<unsigned long long>::decode(max, value) ||
        value < (64u << 10)) {
      return errors.At(max, "maxObjectBytes", "must be a number of bytes, at least 65536");
    }
    config.max_object_bytes = static_cast<std::size_t>(value);
  }
  if (const YAML::Node capacity = root["subscriberQueueCapacity"]) {
    unsigned long long value = 0;
    if (!capacity.IsScalar() || !YAML::convert<unsigned long long>::decode(capacity, value) ||
        value < 1 || value > (1u << 20)) {
      return errors.At(capacity, "subscriberQueueCapacity",
                       "must be a number of events from 1 to 1048576");
    }
    config.subscriber_queue_capacity = static_cast<std::size_t>(value);
  }
  if (const YAML::Node budget = root["subscriberSnapshotStallBudget"]) {
    constexpr const char* kExpected =
        "must be a duration such as 10s, 30s or 2m (units h, m, s, ms), from 1s to 10m";
    if (!budget.IsScalar()) return errors.At(budget, "subscriberSnapshotStallBudget", kExpected);
    const std::optional<std::chrono::milliseconds> value = ParseDuration(budget.Scalar());
    if (!value || *value < std::chrono::seconds(1) || *value > std::chrono::minutes(10)) {
      return errors.At(budget, "subscriberSnapshotStallBudget",
                       fmt::format("\"{}\" {}", budget.Scalar(), kExpected));
    }
    config.subscriber_snapshot_stall_budget = *value;
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    const std::string path = fmt::format("resources[{}]", i);
    auto resource = ParseResource(resources[i], path, errors);
    if (!resource.ok()) return resource.status();
    const std::string key = fmt::format("{}|{}|{}|{}", resource->resource, resource->namespace_name,
                                        resource->label_selector, resource->field_selector);
    if (!seen.insert(key).second) {
      return errors.At(resources[i], path,
                       fmt::format("duplicates an earlier entry for \"{}\" with the same "
                                   "namespace and selectors",
                                   resource->resource));
    }
    config.resources.push_back(std::move(*resource));
  }
  return config;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        fmt::format("cannot read config file {}: {}", path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace informerd::daemon
