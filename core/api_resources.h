// The Kubernetes API's resource naming, as pure logic: the discovery documents (/api, /apis,
// /api/VERSION, /apis/GROUP/VERSION) parsed into plain structs, and the rules by which kubectl
// turns a name a person writes ("po", "deploy", "deployments.apps", "apps/v1/deployments", a
// CRD's short name) into the group, version, plural, kind and scope that LIST and WATCH paths
// need. No I/O: daemon/kube/discovery.* fetches the documents, and the gRPC service resolves
// request names with the same rules, so both are tested with literal documents.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace informerd::core {

// ---- Discovery documents (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).

// One group of /apis (APIGroup), or the core group made from /api (name "").
struct ApiGroupInfo {
  std::string name;
  // In the server's order of preference.
  std::vector<std::string> versions;
  std::string preferred_version;
};

// One entry of an APIResourceList.
struct ApiResourceInfo {
  std::string group;  // "" for the core group.
  std::string version;
  std::string name;           // The plural, the path segment: "deployments".
  std::string singular_name;  // Empty on servers before 1.27 for built-in kinds.
  std::string kind;
  bool namespaced = false;
  std::vector<std::string> short_names;
  std::vector<std::string> verbs;
};

// Everything discovery said, in the server's order: groups as the apiserver ranks them (core
// first, then /apis in order, which lists built-in groups by priority and CRD groups after).
struct DiscoveryData {
  std::vector<ApiGroupInfo> groups;
  std::vector<ApiResourceInfo> resources;
  // Group versions whose resource list could not be fetched ("metrics.k8s.io/v1beta1: HTTP 503
  // ..."): an aggregated API that is down. kubectl goes on without them, and so do we, but a
  // name that is not found mentions them.
  std::vector<std::string> failed_group_versions;
};

// `/api`: the APIVersions document; the core group's versions ("v1").
absl::StatusOr<std::vector<std::string>> ParseApiVersions(std::string_view json);
// `/apis`: the APIGroupList document.
absl::StatusOr<std::vector<ApiGroupInfo>> ParseApiGroupList(std::string_view json);
// `/api/v1` or `/apis/GROUP/VERSION`: an APIResourceList. `group` and `version` are those of
// the request. Subresources ("pods/log", "deployments/scale") are left out: they cannot be
// listed or watched on their own.
absl::StatusOr<std::vector<ApiResourceInfo>> ParseApiResourceList(std::string_view json,
                                                                  const std::string& group,
                                                                  const std::string& version);

// ---- Resolution.

struct ResolvedResource {
  std::string group;
  std::string version;
  std::string resource;  // The plural.
  std::string kind;
  bool namespaced = false;
  std::vector<std::string> verbs;

  // "v1", "apps/v1".
  std::string GroupVersion() const;
  // "pods", "deployments.apps": kubectl's unambiguous spelling.
  std::string QualifiedName() const;
  // "/api/v1/pods", "/apis/apps/v1/namespaces/NS/deployments": where LIST and WATCH go. An
  // empty `namespace_name` (or a cluster-scoped resource) gives the all-namespaces path.
  std::string CollectionPath(const std::string& namespace_name = "") const;

  friend bool operator==(const ResolvedResource& a, const ResolvedResource& b) {
    return a.group == b.group && a.version == b.version && a.resource == b.resource &&
           a.kind == b.kind && a.namespaced == b.namespaced;
  }
};

// Resolves `name` as kubectl does (k8s.io/cli-runtime's shortcut expander over
// k8s.io/client-go/restmapper's priority mapper):
//   - "group/version/resource" or "version/resource" (core group: "v1/pods") name the version;
//     "resource.group" (deployments.apps, widgets.example.com) the group, and
//     "resource.version.group" (deployments.v1.apps) both, when such a version exists;
//   - the resource part is matched case-insensitively against plurals, singulars and kinds
//     first, and only when none matches against short names (so a CRD's short name cannot
//     shadow a built-in's full name);
//   - without a version, each group's preferred version is used when it serves the resource,
//     else the first of its versions that does.
// When the name matches resources of several groups: the core group wins, as in kubectl
// ("events" is core/v1 Events, not events.k8s.io). Failing that, if all have the same kind they
// are one API served by several groups during a migration (Ingress in extensions and
// networking.k8s.io), and the group the server ranks first wins, as in kubectl. Otherwise the
// name is ambiguous: kubectl would silently take the first group, but a daemon that caches for
// others should not guess, so that is InvalidArgument listing the candidates as "plural.group".
// A name that matches nothing is NotFound; a malformed one InvalidArgument.
absl::StatusOr<ResolvedResource> ResolveResource(const DiscoveryData& discovery,
                                                 std::string_view name);

}  // namespace informerd::core
