// Specification of core/user_info.*: the anonymous user as the apiserver maps it,
// system:authenticated added as the apiserver adds it, kubectl's qualified resource names, and the
// denial message, in the apiserver's words, with names quoted as Go's %q quotes them.
#include "core/user_info.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace informerd::core {
namespace {

UserInfo User(std::string name) {
  UserInfo user;
  user.name = std::move(name);
  user.groups = {kAuthenticatedGroup};
  return user;
}

ResourceAttributes Attributes(std::string verb, std::string group, std::string resource,
                              std::string namespace_name, std::string name = "") {
  ResourceAttributes attributes;
  attributes.verb = std::move(verb);
  attributes.group = std::move(group);
  attributes.resource = std::move(resource);
  attributes.namespace_name = std::move(namespace_name);
  attributes.name = std::move(name);
  return attributes;
}

TEST_CASE("the anonymous user is system:anonymous in system:unauthenticated, nothing else") {
  const UserInfo anonymous = AnonymousUser();
  CHECK(anonymous.name == "system:anonymous");
  CHECK(anonymous.groups == std::vector<std::string>{"system:unauthenticated"});
  CHECK(anonymous.uid.empty());
  CHECK(anonymous.extra.empty());
  // Never in the authenticated group.
  for (const std::string& group : anonymous.groups) CHECK(group != kAuthenticatedGroup);
}

TEST_CASE("an authenticated user is put in system:authenticated, after its own groups") {
  UserInfo user;
  user.name = "alice";
  user.groups = {"team-a", "system:masters"};
  AddAuthenticatedGroup(user);
  CHECK(user.groups == std::vector<std::string>{"team-a", "system:masters", kAuthenticatedGroup});

  UserInfo no_groups;
  no_groups.name = "system:serviceaccount:team-a:app";
  AddAuthenticatedGroup(no_groups);
  CHECK(no_groups.groups == std::vector<std::string>{kAuthenticatedGroup});
}

TEST_CASE(
    "system:authenticated is not added twice, nor to a user in system:unauthenticated, nor to "
    "system:anonymous") {
  UserInfo already;
  already.name = "alice";
  already.groups = {kAuthenticatedGroup, "team-a"};
  AddAuthenticatedGroup(already);
  CHECK(already.groups == std::vector<std::string>{kAuthenticatedGroup, "team-a"});

  UserInfo unauthenticated;
  unauthenticated.name = "bob";
  unauthenticated.groups = {"team-b", kUnauthenticatedGroup};
  AddAuthenticatedGroup(unauthenticated);
  CHECK(unauthenticated.groups == std::vector<std::string>{"team-b", kUnauthenticatedGroup});

  UserInfo anonymous = AnonymousUser();
  AddAuthenticatedGroup(anonymous);
  CHECK(anonymous == AnonymousUser());
  UserInfo anonymous_without_groups;
  anonymous_without_groups.name = kAnonymousUser;
  AddAuthenticatedGroup(anonymous_without_groups);
  CHECK(anonymous_without_groups.groups.empty());
}

TEST_CASE("the qualified resource is the plural alone in the core group, plural.group elsewhere") {
  CHECK(QualifiedResource(Attributes("list", "", "pods", "")) == "pods");
  CHECK(QualifiedResource(Attributes("list", "apps", "deployments", "")) == "deployments.apps");
  CHECK(QualifiedResource(Attributes("list", "stable.example.com", "crontabs", "")) ==
        "crontabs.stable.example.com");
}

TEST_CASE("a denial names the user, the verb, the resource and the scope") {
  CHECK(DescribeDenial(User("alice"), Attributes("list", "", "pods", "team-b")) ==
        R"(user "alice" cannot list pods in namespace "team-b")");
  CHECK(DescribeDenial(User("alice"), Attributes("watch", "apps", "deployments", "")) ==
        R"(user "alice" cannot watch deployments.apps at the cluster scope)");
}

TEST_CASE("a denial for one object names it") {
  CHECK(DescribeDenial(User("alice"), Attributes("get", "", "pods", "team-b", "web-1")) ==
        R"(user "alice" cannot get pods "web-1" in namespace "team-b")");
  CHECK(DescribeDenial(User("alice"), Attributes("get", "", "nodes", "", "node-1")) ==
        R"(user "alice" cannot get nodes "node-1" at the cluster scope)");
}

TEST_CASE("service account and anonymous users read as the apiserver names them") {
  CHECK(DescribeDenial(User("system:serviceaccount:team-a:reader"),
                       Attributes("list", "", "secrets", "team-a")) ==
        R"(user "system:serviceaccount:team-a:reader" cannot list secrets in namespace "team-a")");
  CHECK(DescribeDenial(AnonymousUser(), Attributes("list", "", "pods", "")) ==
        R"(user "system:anonymous" cannot list pods at the cluster scope)");
}

TEST_CASE("quotes, backslashes and control characters in names are escaped as Go's %q does") {
  // A certificate's CN is whatever its issuer wrote: it must not be able to end the quoted name
  // and append text of its own, or start a new log line.
  CHECK(DescribeDenial(User("eve\" cannot list pods\nuser \"admin"),
                       Attributes("list", "", "pods", "a")) ==
        R"(user "eve\" cannot list pods\nuser \"admin" cannot list pods in namespace "a")");
  CHECK(DescribeDenial(User("back\\slash\ttab\r\x01\x7f"), Attributes("list", "", "pods", "")) ==
        R"(user "back\\slash\ttab\r\x01\x7f" cannot list pods at the cluster scope)");
  CHECK(DescribeDenial(User("a"), Attributes("get", "", "pods", "ns\"x", "n\"y")) ==
        R"(user "a" cannot get pods "n\"y" in namespace "ns\"x")");
}

TEST_CASE("UTF-8 names are kept as they are") {
  CHECK(DescribeDenial(User("zoë"), Attributes("list", "", "pods", "")) ==
        "user \"zoë\" cannot list pods at the cluster scope");
}

TEST_CASE("UserInfo and ResourceAttributes compare every field") {
  UserInfo a = User("alice");
  UserInfo b = a;
  CHECK(a == b);
  b.uid = "1";
  CHECK_FALSE(a == b);
  b = a;
  b.groups.push_back("devs");
  CHECK_FALSE(a == b);
  b = a;
  b.extra["scopes"] = {"x"};
  CHECK_FALSE(a == b);
  b = a;
  b.name = "bob";
  CHECK_FALSE(a == b);

  const ResourceAttributes x = Attributes("get", "", "pods", "a", "n");
  CHECK(x == Attributes("get", "", "pods", "a", "n"));
  CHECK_FALSE(x == Attributes("list", "", "pods", "a", "n"));
  CHECK_FALSE(x == Attributes("get", "apps", "pods", "a", "n"));
  CHECK_FALSE(x == Attributes("get", "", "secrets", "a", "n"));
  CHECK_FALSE(x == Attributes("get", "", "pods", "b", "n"));
  CHECK_FALSE(x == Attributes("get", "", "pods", "a", "m"));
}

}  // namespace
}  // namespace informerd::core
