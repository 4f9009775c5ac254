// Discovery documents shaped like a Kubernetes 1.20 server's, for the tests of the naming rules
// (test/core/api_resources_test.cc) and of fetching them (test/daemon/kube/discovery_test.cc).
#pragma once

#include <string>

#include "fmt/format.h"

namespace informerd::test {

// `/api`.
inline constexpr char kApi[] = R"({"kind":"APIVersions","versions":["v1"],
  "serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]})";

// `/api/v1`. As Kubernetes 1.20 answers: built-in kinds have an empty singularName.
inline constexpr char kCoreV1[] = R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
  {"name":"pods","singularName":"","namespaced":true,"kind":"Pod",
   "verbs":["create","delete","get","list","watch"],"shortNames":["po"],"categories":["all"]},
  {"name":"pods/log","singularName":"","namespaced":true,"kind":"Pod","verbs":["get"]},
  {"name":"pods/status","singularName":"","namespaced":true,"kind":"Pod","verbs":["get","patch"]},
  {"name":"events","singularName":"","namespaced":true,"kind":"Event",
   "verbs":["get","list","watch"],"shortNames":["ev"]},
  {"name":"services","singularName":"","namespaced":true,"kind":"Service",
   "verbs":["get","list","watch"],"shortNames":["svc"]},
  {"name":"namespaces","singularName":"","namespaced":false,"kind":"Namespace",
   "verbs":["get","list","watch"],"shortNames":["ns"]}]})";

// An APIResourceList document for `group_version` holding `resources` (JSON objects, as Resource
// makes them, joined by commas).
inline std::string ResourceList(const std::string& group_version, const std::string& resources) {
  return fmt::format(R"({{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"{}",
      "resources":[{}]}})",
                     group_version, resources);
}

inline std::string Resource(const std::string& name, const std::string& kind,
                            bool namespaced = true, const std::string& short_names = "",
                            const std::string& singular = "") {
  return fmt::format(
      R"({{"name":"{}","singularName":"{}","namespaced":{},"kind":"{}","verbs":["get","list","watch"]{}}})",
      name, singular, namespaced ? "true" : "false", kind,
      short_names.empty() ? "" : fmt::format(R"(,"shortNames":[{}])", short_names));
}

}  // namespace informerd::test
