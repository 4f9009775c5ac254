#include "core/api_resources.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <utility>

#include "fmt/format.h"

namespace informerd::core {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// ---- JSON access: discovery documents are small and rare, so a DOM is fine here.

absl::StatusOr<rapidjson::Document> ParseObject(std::string_view json, std::string_view what) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  if (document.HasParseError()) {
    return absl::InvalidArgumentError(fmt::format(
        "{} is not valid JSON: {} at byte {}", what,
        rapidjson::GetParseError_En(document.GetParseError()), document.GetErrorOffset()));
  }
  if (!document.IsObject()) {
    return absl::InvalidArgumentError(fmt::format("{} is not a JSON object", what));
  }
  return document;
}

const rapidjson::Value* Member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string StringMember(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = Member(object, name);
  if (value == nullptr || !value->IsString()) return "";
  return std::string(value->GetString(), value->GetStringLength());
}

std::vector<std::string> StringArrayMember(const rapidjson::Value& object, const char* name) {
  std::vector<std::string> out;
  const rapidjson::Value* value = Member(object, name);
  if (value == nullptr || !value->IsArray()) return out;
  for (const rapidjson::Value& item : value->GetArray()) {
    if (item.IsString()) out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

absl::Status ExpectKind(const rapidjson::Value& document, std::string_view kind,
                        std::string_view what) {
  const std::string actual = StringMember(document, "kind");
  // Old servers sometimes leave `kind` out of discovery documents; only a wrong one is an error.
  if (!actual.empty() && actual != kind) {
    return absl::InvalidArgumentError(fmt::format("{} is a {}, not an {}", what, actual, kind));
  }
  return absl::OkStatus();
}

// ---- Resolution helpers.

struct Candidate {
  const ApiResourceInfo* resource;  // In the chosen version.
  std::size_t group_rank;           // Position of its group in DiscoveryData::groups.
};

ResolvedResource ToResolved(const ApiResourceInfo& info) {
  ResolvedResource resolved;
  resolved.group = info.group;
  resolved.version = info.version;
  resolved.resource = info.name;
  resolved.kind = info.kind;
  resolved.namespaced = info.namespaced;
  resolved.verbs = info.verbs;
  return resolved;
}

std::string Qualified(const ApiResourceInfo& info) {
  return info.group.empty() ? info.name : fmt::format("{}.{}", info.name, info.group);
}

bool MatchesFullName(const ApiResourceInfo& info, const std::string& lower_name) {
  return Lower(info.name) == lower_name || Lower(info.singular_name) == lower_name ||
         Lower(info.kind) == lower_name;
}

bool MatchesShortName(const ApiResourceInfo& info, const std::string& lower_name) {
  return std::any_of(info.short_names.begin(), info.short_names.end(),
                     [&](const std::string& s) { return Lower(s) == lower_name; });
}

// What a name restricts the search to.
struct Scope {
  std::optional<std::string> group;
  std::optional<std::string> version;
  std::string resource;  // Lower case.
};

// The matches of `scope` in `discovery`, one per group and plural: in each group the preferred
// version when it serves the resource, else the first version that does (restmapper's priority:
// preferred versions first, then the others in the server's order).
std::vector<Candidate> FindCandidates(const DiscoveryData& discovery, const Scope& scope) {
  for (bool short_names : {false, true}) {
    std::vector<Candidate> candidates;
    for (std::size_t rank = 0; rank < discovery.groups.size(); ++rank) {
      const ApiGroupInfo& group = discovery.groups[rank];
      if (scope.group && Lower(group.name) != *scope.group) continue;
      // Versions in the order to try them.
      std::vector<std::string> versions;
      if (scope.version) {
        versions.push_back(*scope.version);
      } else {
        if (!group.preferred_version.empty()) versions.push_back(group.preferred_version);
        for (const std::string& v : group.versions) {
          if (v != group.preferred_version) versions.push_back(v);
        }
      }
      std::vector<std::string> plurals_taken;
      for (const std::string& version : versions) {
        for (const ApiResourceInfo& info : discovery.resources) {
          if (info.group != group.name || info.version != version) continue;
          const bool match = short_names ? MatchesShortName(info, scope.resource)
                                         : MatchesFullName(info, scope.resource);
          if (!match) continue;
          if (std::find(plurals_taken.begin(), plurals_taken.end(), info.name) !=
              plurals_taken.end()) {
            continue;  // Already found in a version tried earlier.
          }
          plurals_taken.push_back(info.name);
          candidates.push_back(Candidate{&info, rank});
        }
      }
    }
    if (!candidates.empty()) return candidates;
  }
  return {};
}

absl::StatusOr<ResolvedResource> Choose(const std::vector<Candidate>& candidates,
                                        std::string_view name) {
  if (candidates.size() == 1) return ToResolved(*candidates.front().resource);
  std::vector<const Candidate*> core;
  for (const Candidate& c : candidates) {
    if (c.resource->group.empty()) core.push_back(&c);
  }
  if (core.size() == 1) return ToResolved(*core.front()->resource);
  const std::string& kind = candidates.front().resource->kind;
  const bool same_kind =
      core.empty() &&
      std::all_of(candidates.begin(), candidates.end(),
                  [&](const Candidate& c) { return c.resource->kind == kind; }) &&
      // Two plurals of one kind in one group would be a different ambiguity.
      std::all_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
        return std::count_if(candidates.begin(), candidates.end(),
                             [&](const Candidate& d) { return d.group_rank == c.group_rank; }) == 1;
      });
  if (same_kind) {
    const Candidate& first = *std::min_element(
        candidates.begin(), candidates.end(),
        [](const Candidate& a, const Candidate& b) { return a.group_rank < b.group_rank; });
    return ToResolved(*first.resource);
  }
  std::string listed;
  for (const Candidate& c : candidates) {
    if (!listed.empty()) listed += ", ";
    listed += fmt::format("{} ({} {})", Qualified(*c.resource),
                          c.resource->group.empty() ? c.resource->version
                                                    : c.resource->group + "/" + c.resource->version,
                          c.resource->kind);
  }
  return absl::InvalidArgumentError(
      fmt::format("resource name \"{}\" is ambiguous: it matches {}; write the one you mean as "
                  "resource.group",
                  name, listed));
}

absl::Status NotFound(const DiscoveryData& discovery, std::string_view name,
                      std::string_view detail) {
  std::string message = fmt::format("the server has no resource \"{}\"{}", name, detail);
  if (!discovery.failed_group_versions.empty()) {
    std::string failed;
    for (const std::string& f : discovery.failed_group_versions) {
      if (!failed.empty()) failed += "; ";
      failed += f;
    }
    message += fmt::format(" (it may be served by an API whose discovery failed: {})", failed);
  }
  return absl::NotFoundError(message);
}

bool HasGroupVersion(const DiscoveryData& discovery, const std::string& group,
                     const std::string& version) {
  for (const ApiGroupInfo& g : discovery.groups) {
    if (Lower(g.name) == group &&
        std::find(g.versions.begin(), g.versions.end(), version) != g.versions.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace

// ---- Parsing.

absl::StatusOr<std::vector<std::string>> ParseApiVersions(std::string_view json) {
  constexpr std::string_view kWhat = "the /api discovery document";
  absl::StatusOr<rapidjson::Document> document = ParseObject(json, kWhat);
  if (!document.ok()) return document.status();
  if (absl::Status kind = ExpectKind(*document, "APIVersions", kWhat); !kind.ok()) return kind;
  std::vector<std::string> versions = StringArrayMember(*document, "versions");
  if (versions.empty()) {
    return absl::InvalidArgumentError(fmt::format("{} lists no versions", kWhat));
  }
  return versions;
}

absl::StatusOr<std::vector<ApiGroupInfo>> ParseApiGroupList(std::string_view json) {
  constexpr std::string_view kWhat = "the /apis discovery document";
  absl::StatusOr<rapidjson::Document> document = ParseObject(json, kWhat);
  if (!document.ok()) return document.status();
  if (absl::Status kind = ExpectKind(*document, "APIGroupList", kWhat); !kind.ok()) return kind;
  const rapidjson::Value* groups = Member(*document, "groups");
  if (groups == nullptr || !groups->IsArray()) {
    return absl::InvalidArgumentError(fmt::format("{} has no \"groups\" array", kWhat));
  }
  std::vector<ApiGroupInfo> out;
  for (const rapidjson::Value& g : groups->GetArray()) {
    ApiGroupInfo group;
    group.name = StringMember(g, "name");
    if (group.name.empty()) continue;
    if (const rapidjson::Value* versions = Member(g, "versions");
        versions != nullptr && versions->IsArray()) {
      for (const rapidjson::Value& v : versions->GetArray()) {
        std::string version = StringMember(v, "version");
        if (!version.empty()) group.versions.push_back(std::move(version));
      }
    }
    if (const rapidjson::Value* preferred = Member(g, "preferredVersion")) {
      group.preferred_version = StringMember(*preferred, "version");
    }
    if (group.preferred_version.empty() && !group.versions.empty()) {
      group.preferred_version = group.versions.front();
    }
    if (!group.versions.empty()) out.push_back(std::move(group));
  }
  return out;
}

absl::StatusOr<std::vector<ApiResourceInfo>> ParseApiResourceList(std::string_view json,
                                                                  const std::string& group,
                                                                  const std::string& version) {
  const std::string what =
      fmt::format("the discovery document of {}", group.empty() ? version : group + "/" + version);
  absl::StatusOr<rapidjson::Document> document = ParseObject(json, what);
  if (!document.ok()) return document.status();
  if (absl::Status kind = ExpectKind(*document, "APIResourceList", what); !kind.ok()) return kind;
  const rapidjson::Value* resources = Member(*document, "resources");
  if (resources == nullptr || !resources->IsArray()) {
    return absl::InvalidArgumentError(fmt::format("{} has no \"resources\" array", what));
  }
  std::vector<ApiResourceInfo> out;
  for (const rapidjson::Value& r : resources->GetArray()) {
    ApiResourceInfo info;
    info.group = group;
    info.version = version;
    info.name = StringMember(r, "name");
    if (info.name.empty() || info.name.find('/') != std::string::npos) continue;
    info.singular_name = StringMember(r, "singularName");
    info.kind = StringMember(r, "kind");
    const rapidjson::Value* namespaced = Member(r, "namespaced");
    info.namespaced = namespaced != nullptr && namespaced->IsBool() && namespaced->GetBool();
    info.short_names = StringArrayMember(r, "shortNames");
    info.verbs = StringArrayMember(r, "verbs");
    out.push_back(std::move(info));
  }
  return out;
}

// ---- Resolution.

std::string ResolvedResource::GroupVersion() const {
  return group.empty() ? version : fmt::format("{}/{}", group, version);
}

std::string ResolvedResource::QualifiedName() const {
  return group.empty() ? resource : fmt::format("{}.{}", resource, group);
}

std::string ResolvedResource::CollectionPath(const std::string& namespace_name) const {
  const std::string prefix =
      group.empty() ? fmt::format("/api/{}", version) : fmt::format("/apis/{}/{}", group, version);
  if (namespaced && !namespace_name.empty()) {
    return fmt::format("{}/namespaces/{}/{}", prefix, namespace_name, resource);
  }
  return fmt::format("{}/{}", prefix, resource);
}

absl::StatusOr<ResolvedResource> ResolveResource(const DiscoveryData& discovery,
                                                 std::string_view name) {
  std::string_view trimmed = name;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) {
    trimmed.remove_prefix(1);
  }
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) {
    trimmed.remove_suffix(1);
  }
  if (trimmed.empty()) return absl::InvalidArgumentError("the resource name is empty");
  const std::string lower = Lower(trimmed);

  if (lower.find('/') != std::string::npos) {
    const std::vector<std::string> parts = Split(lower, '/');
    const bool any_empty =
        std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); });
    if (parts.size() > 3 || any_empty) {
      return absl::InvalidArgumentError(fmt::format(
          "resource name \"{}\" is malformed: write resource, resource.group, version/resource "
          "or group/version/resource",
          trimmed));
    }
    Scope scope;
    if (parts.size() == 3) {
      scope = Scope{parts[0], parts[1], parts[2]};
    } else if (HasGroupVersion(discovery, "", parts[0])) {
      scope = Scope{std::string(), parts[0], parts[1]};  // "v1/pods": the core group.
    } else {
      scope = Scope{parts[0], std::nullopt, parts[1]};  // "apps/deployments"
    }
    std::vector<Candidate> candidates = FindCandidates(discovery, scope);
    if (candidates.empty()) return NotFound(discovery, trimmed, "");
    return Choose(candidates, trimmed);
  }

  if (const std::size_t dot = lower.find('.'); dot != std::string::npos) {
    const std::string resource = lower.substr(0, dot);
    const std::string rest = lower.substr(dot + 1);
    if (resource.empty() || rest.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("resource name \"{}\" is malformed: write resource.group", trimmed));
    }
    // "deployments.v1.apps": resource.version.group, when that group has such a version.
    if (const std::size_t second = rest.find('.'); second != std::string::npos) {
      const std::string version = rest.substr(0, second);
      const std::string group = rest.substr(second + 1);
      if (HasGroupVersion(discovery, group, version)) {
        std::vector<Candidate> candidates =
            FindCandidates(discovery, Scope{group, version, resource});
        if (!candidates.empty()) return Choose(candidates, trimmed);
      }
    }
    std::vector<Candidate> candidates =
        FindCandidates(discovery, Scope{rest, std::nullopt, resource});
    if (candidates.empty()) return NotFound(discovery, trimmed, "");
    return Choose(candidates, trimmed);
  }

  std::vector<Candidate> candidates =
      FindCandidates(discovery, Scope{std::nullopt, std::nullopt, lower});
  if (candidates.empty()) return NotFound(discovery, trimmed, "");
  return Choose(candidates, trimmed);
}

}  // namespace informerd::core
