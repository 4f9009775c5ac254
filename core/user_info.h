// UserInfo and ResourceAttributes: who is calling and what they ask to read, in the apiserver's
// own terms (authentication.k8s.io UserInfo, authorization.k8s.io ResourceAttributes), so that
// a decision informerd asks the apiserver for is the decision the apiserver itself would make
// for the same request.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace informerd::core {

// The user and group the apiserver gives a request without credentials.
inline constexpr char kAnonymousUser[] = "system:anonymous";
inline constexpr char kUnauthenticatedGroup[] = "system:unauthenticated";
// The group the apiserver adds to every authenticated user.
inline constexpr char kAuthenticatedGroup[] = "system:authenticated";

struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;

  bool operator==(const UserInfo& other) const {
    return name == other.name && uid == other.uid && groups == other.groups && extra == other.extra;
  }
};

// system:anonymous in system:unauthenticated, as the apiserver maps a request without
// credentials when anonymous requests are allowed.
UserInfo AnonymousUser();

// Adds system:authenticated (last) as kube-apiserver adds it to every authenticated user
// (k8s.io/apiserver's AuthenticatedGroupAdder, which also wraps the delegated authenticators of
// aggregated servers): to every user except system:anonymous, unless the user already is in
// system:authenticated or in system:unauthenticated. RBAC bindings to system:authenticated
// therefore mean here what they mean to the apiserver.
void AddAuthenticatedGroup(UserInfo& user);

// One check: may `user` `verb` the resource (group, resource) in `namespace_name` ("" for
// cluster-wide or a cluster-scoped resource), optionally only the object `name`?
struct ResourceAttributes {
  std::string verb;      // get, list, watch
  std::string group;     // "" for the core group
  std::string resource;  // plural, lower case: "pods", "deployments"
  std::string namespace_name;
  std::string name;

  bool operator==(const ResourceAttributes& other) const {
    return verb == other.verb && group == other.group && resource == other.resource &&
           namespace_name == other.namespace_name && name == other.name;
  }
};

// The resource as kubectl names it: "pods", "deployments.apps".
std::string QualifiedResource(const ResourceAttributes& attributes);

// What was checked, as a denial message says it, in the apiserver's words:
//   user "alice" cannot list pods in namespace "team-b"
//   user "alice" cannot watch deployments.apps at the cluster scope
//   user "alice" cannot get pods "web-1" in namespace "team-b"
// The user, object and namespace names are quoted as Go's %q quotes them (the apiserver's own
// messages do), so a name holding quotes, newlines or other control characters reads escaped and
// cannot forge the rest of the message or of a log line.
std::string DescribeDenial(const UserInfo& user, const ResourceAttributes& attributes);

}  // namespace informerd::core
