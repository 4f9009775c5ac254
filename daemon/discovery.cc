#include "daemon/discovery.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cctype>
#include <deque>
#include <utility>

#include "fmt/format.h"

namespace informerd::daemon {
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

// ---- Fetching.

// Lives while Discovery or a fetch does; its fields are touched only on the client's strand,
// except `closed`.
class Discovery::State : public std::enable_shared_from_this<Discovery::State> {
 public:
  State(ApiServerClient& client, const core::Clock& clock, DiscoveryOptions options)
      : client(client), clock(clock), options(options) {
    if (this->options.max_parallel_requests == 0) this->options.max_parallel_requests = 1;
  }

  ApiServerClient& client;
  const core::Clock& clock;
  DiscoveryOptions options;
  std::atomic<bool> closed{false};

  // On the strand.
  std::optional<DiscoveryData> data;
  std::optional<core::Clock::TimePoint> last_fetch;
  bool fetching = false;
  std::vector<RefreshCallback> waiting;

  void Resolve(const std::string& name, ResolveCallback done) {
    if (!data) {
      return Fetch(AfterFetch(name, std::move(done)));
    }
    absl::StatusOr<ResolvedResource> resolved = ResolveResource(*data, name);
    if (resolved.ok() || resolved.status().code() != absl::StatusCode::kNotFound) {
      return done(std::move(resolved));
    }
    const core::Clock::TimePoint now = clock.Now();
    if (last_fetch && now - *last_fetch < options.min_refresh_interval && !fetching) {
      const auto age =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - *last_fetch).count();
      return done(absl::NotFoundError(fmt::format(
          "{} (discovery was refreshed {}.{:03}s ago; the next refresh is allowed {}s after the "
          "last)",
          std::string(resolved.status().message()), age / 1000, age % 1000,
          std::chrono::duration_cast<std::chrono::seconds>(options.min_refresh_interval).count())));
    }
    // Perhaps a CRD created since the last fetch.
    Fetch(AfterFetch(name, std::move(done)));
  }

  void Fetch(RefreshCallback done);

  // Resolves `name` once the fetch in progress is done. Captures `this`, not a shared pointer:
  // the callback is kept and called only by this State, and a strong pointer would make a cycle
  // that leaks when a fetch never finishes (the client destroyed under it).
  RefreshCallback AfterFetch(std::string name, ResolveCallback done) {
    return [this, name = std::move(name), done = std::move(done)](absl::Status status) {
      if (!status.ok()) return done(status);
      done(ResolveResource(*data, name));
    };
  }

  void FetchDone(absl::Status status, std::optional<DiscoveryData> fetched) {
    fetching = false;
    if (fetched) data = std::move(fetched);
    std::vector<RefreshCallback> callbacks;
    callbacks.swap(waiting);
    if (closed.load(std::memory_order_acquire)) return;
    for (RefreshCallback& callback : callbacks) callback(status);
  }
};

namespace {

// One fetch of every document: /api and /apis, then each group version's resource list with at
// most max_parallel_requests in flight.
class DocumentFetch : public std::enable_shared_from_this<DocumentFetch> {
 public:
  explicit DocumentFetch(std::shared_ptr<Discovery::State> state) : state_(std::move(state)) {}

  void Start() {
    auto self = shared_from_this();
    state_->client.Get("/api", "", [self](HttpResult r) { self->OnRoot(true, std::move(r)); });
    state_->client.Get("/apis", "", [self](HttpResult r) { self->OnRoot(false, std::move(r)); });
  }

 private:
  void OnRoot(bool core, HttpResult result) {
    if (failed_) return;
    if (!result.status.ok()) return Fail(result.status);
    if (core) {
      absl::StatusOr<std::vector<std::string>> versions = ParseApiVersions(result.body);
      if (!versions.ok()) return Fail(versions.status());
      core_group_ = ApiGroupInfo{"", *versions, versions->front()};
    } else {
      absl::StatusOr<std::vector<ApiGroupInfo>> groups = ParseApiGroupList(result.body);
      if (!groups.ok()) return Fail(groups.status());
      groups_ = *std::move(groups);
    }
    if (!core_group_ || !groups_) return;
    data_.groups.push_back(*core_group_);
    for (ApiGroupInfo& g : *groups_) data_.groups.push_back(std::move(g));
    for (const ApiGroupInfo& g : data_.groups) {
      for (const std::string& v : g.versions) pending_.emplace_back(g.name, v);
    }
    lists_.resize(pending_.size());
    for (std::size_t i = 0; i < state_->options.max_parallel_requests; ++i) Next();
    if (pending_.empty() && in_flight_ == 0) Done();
  }

  void Next() {
    if (next_ >= pending_.size()) return;
    const std::size_t index = next_++;
    const auto& [group, version] = pending_[index];
    const std::string path = group.empty() ? fmt::format("/api/{}", version)
                                           : fmt::format("/apis/{}/{}", group, version);
    ++in_flight_;
    auto self = shared_from_this();
    state_->client.Get(path, "",
                       [self, index](HttpResult r) { self->OnList(index, std::move(r)); });
  }

  void OnList(std::size_t index, HttpResult result) {
    --in_flight_;
    const auto& [group, version] = pending_[index];
    const std::string gv = group.empty() ? version : fmt::format("{}/{}", group, version);
    if (!result.status.ok()) {
      // A group version that vanished in between (a CRD deleted) is simply gone.
      if (result.http_status != 404) {
        failed_lists_.push_back(fmt::format("{}: {}", gv, std::string(result.status.message())));
      }
    } else {
      absl::StatusOr<std::vector<ApiResourceInfo>> list =
          ParseApiResourceList(result.body, group, version);
      if (list.ok()) {
        lists_[index] = *std::move(list);
      } else {
        failed_lists_.push_back(fmt::format("{}: {}", gv, std::string(list.status().message())));
      }
    }
    Next();
    if (in_flight_ == 0 && next_ >= pending_.size()) Done();
  }

  void Done() {
    // Resources in group order, whatever order the answers came in.
    for (std::vector<ApiResourceInfo>& list : lists_) {
      for (ApiResourceInfo& info : list) data_.resources.push_back(std::move(info));
    }
    data_.failed_group_versions = std::move(failed_lists_);
    state_->FetchDone(absl::OkStatus(), std::move(data_));
  }

  void Fail(const absl::Status& status) {
    failed_ = true;
    state_->FetchDone(absl::Status(status.code(), fmt::format("discovery failed: {}",
                                                              std::string(status.message()))),
                      std::nullopt);
  }

  std::shared_ptr<Discovery::State> state_;
  bool failed_ = false;
  std::optional<ApiGroupInfo> core_group_;
  std::optional<std::vector<ApiGroupInfo>> groups_;
  DiscoveryData data_;
  std::vector<std::pair<std::string, std::string>> pending_;  // (group, version)
  std::vector<std::vector<ApiResourceInfo>> lists_;           // by index in pending_
  std::vector<std::string> failed_lists_;
  std::size_t next_ = 0;
  std::size_t in_flight_ = 0;
};

}  // namespace

void Discovery::State::Fetch(RefreshCallback done) {
  waiting.push_back(std::move(done));
  if (fetching) return;
  fetching = true;
  last_fetch = clock.Now();
  std::make_shared<DocumentFetch>(shared_from_this())->Start();
}

Discovery::Discovery(ApiServerClient& client, const core::Clock& clock, DiscoveryOptions options)
    : state_(std::make_shared<State>(client, clock, options)) {}

Discovery::~Discovery() { state_->closed.store(true, std::memory_order_release); }

void Discovery::Resolve(std::string name, ResolveCallback done) {
  boost::asio::post(state_->client.strand(), [state = state_, name = std::move(name),
                                              done = std::move(done)]() mutable {
    // Weak: the state keeps this callback while a fetch is pending, and a strong reference
    // would make a cycle that outlives the io_context when the daemon stops mid-fetch.
    ResolveCallback guarded = [weak = std::weak_ptr<State>(state),
                               done = std::move(done)](absl::StatusOr<ResolvedResource> r) {
      const std::shared_ptr<State> alive = weak.lock();
      if (alive && !alive->closed.load(std::memory_order_acquire)) done(std::move(r));
    };
    state->Resolve(name, std::move(guarded));
  });
}

void Discovery::Refresh(RefreshCallback done) {
  boost::asio::post(state_->client.strand(), [state = state_, done = std::move(done)]() mutable {
    state->Fetch(std::move(done));
  });
}

}  // namespace informerd::daemon
