#include "test/fakeapi/fake_discovery.h"

#include <algorithm>

#include "test/fakeapi/json_writer.h"

namespace informerd::fakeapi {
namespace {

void StringArray(JsonWriter& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const std::string& v : values) w.String(v);
  w.EndArray();
}

// Versions of `group` in registration order.
std::vector<std::string> VersionsOf(const std::vector<ResourceType>& types,
                                    const std::string& group) {
  std::vector<std::string> versions;
  for (const ResourceType& t : types) {
    if (t.group == group &&
        std::find(versions.begin(), versions.end(), t.version) == versions.end()) {
      versions.push_back(t.version);
    }
  }
  return versions;
}

void GroupVersionObject(JsonWriter& w, const std::string& group, const std::string& version) {
  w.StartObject();
  w.Key("groupVersion");
  w.String(group + "/" + version);
  w.Key("version");
  w.String(version);
  w.EndObject();
}

void GroupObject(JsonWriter& w, const std::vector<ResourceType>& types, const std::string& group,
                 bool with_type_meta) {
  const std::vector<std::string> versions = VersionsOf(types, group);
  w.StartObject();
  if (with_type_meta) {
    w.Key("kind");
    w.String("APIGroup");
    w.Key("apiVersion");
    w.String("v1");
  }
  w.Key("name");
  w.String(group);
  w.Key("versions");
  w.StartArray();
  for (const std::string& v : versions) GroupVersionObject(w, group, v);
  w.EndArray();
  w.Key("preferredVersion");
  GroupVersionObject(w, group, versions.front());
  w.EndObject();
}

}  // namespace

std::string ApiVersionsJson(const std::string& server_address) {
  JsonWriter w;
  w.StartObject();
  w.Key("kind");
  w.String("APIVersions");
  w.Key("versions");
  StringArray(w, {"v1"});
  w.Key("serverAddressByClientCIDRs");
  w.StartArray();
  w.StartObject();
  w.Key("clientCIDR");
  w.String("0.0.0.0/0");
  w.Key("serverAddress");
  w.String(server_address);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return w.Take();
}

std::optional<std::string> ResourceListJson(const std::vector<ResourceType>& types,
                                            const std::string& group,
                                            const std::string& version) {
  std::vector<const ResourceType*> selected;
  for (const ResourceType& t : types) {
    if (t.group == group && t.version == version) selected.push_back(&t);
  }
  // The core group/version always exists, even with nothing registered in it.
  if (selected.empty() && !(group.empty() && version == "v1")) return std::nullopt;
  JsonWriter w;
  w.StartObject();
  w.Key("kind");
  w.String("APIResourceList");
  // The core list carries no apiVersion; group lists do (as a real apiserver answers).
  if (!group.empty()) {
    w.Key("apiVersion");
    w.String("v1");
  }
  w.Key("groupVersion");
  w.String(group.empty() ? version : group + "/" + version);
  w.Key("resources");
  w.StartArray();
  for (const ResourceType* t : selected) {
    w.StartObject();
    w.Key("name");
    w.String(t->plural);
    w.Key("singularName");
    w.String(t->singular);
    w.Key("namespaced");
    w.Bool(t->namespaced);
    w.Key("kind");
    w.String(t->kind);
    w.Key("verbs");
    StringArray(w, t->verbs);
    if (!t->short_names.empty()) {
      w.Key("shortNames");
      StringArray(w, t->short_names);
    }
    if (!t->categories.empty()) {
      w.Key("categories");
      StringArray(w, t->categories);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

std::string GroupListJson(const std::vector<ResourceType>& types) {
  std::vector<std::string> groups;
  for (const ResourceType& t : types) {
    if (!t.group.empty() && std::find(groups.begin(), groups.end(), t.group) == groups.end()) {
      groups.push_back(t.group);
    }
  }
  JsonWriter w;
  w.StartObject();
  w.Key("kind");
  w.String("APIGroupList");
  w.Key("apiVersion");
  w.String("v1");
  w.Key("groups");
  w.StartArray();
  for (const std::string& g : groups) GroupObject(w, types, g, false);
  w.EndArray();
  w.EndObject();
  return w.Take();
}

std::optional<std::string> GroupJson(const std::vector<ResourceType>& types,
                                     const std::string& group) {
  if (group.empty() || VersionsOf(types, group).empty()) return std::nullopt;
  JsonWriter w;
  GroupObject(w, types, group, true);
  return w.Take();
}

std::string VersionJson(const std::string& git_version) {
  // "v1.27.3" -> major "1", minor "27".
  std::string major = "1";
  std::string minor = "0";
  const std::size_t dot = git_version.find('.');
  if (git_version.size() > 1 && dot != std::string::npos) {
    major = git_version.substr(1, dot - 1);
    const std::size_t dot2 = git_version.find('.', dot + 1);
    minor = git_version.substr(dot + 1, dot2 == std::string::npos ? std::string::npos : dot2 - dot - 1);
  }
  JsonWriter w;
  w.StartObject();
  w.Key("major");
  w.String(major);
  w.Key("minor");
  w.String(minor);
  w.Key("gitVersion");
  w.String(git_version);
  w.Key("gitCommit");
  w.String("0000000000000000000000000000000000000000");
  w.Key("gitTreeState");
  w.String("clean");
  w.Key("buildDate");
  w.String("2023-01-01T00:00:00Z");
  w.Key("goVersion");
  w.String("go1.20");
  w.Key("compiler");
  w.String("gc");
  w.Key("platform");
  w.String("linux/amd64");
  w.EndObject();
  return w.Take();
}

}  // namespace informerd::fakeapi
