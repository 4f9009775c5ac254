// Discovery documents built from the registered resources: `/api` (APIVersions), `/api/v1` and
// `/apis/GROUP/VERSION` (APIResourceList), `/apis` (APIGroupList), `/apis/GROUP` (APIGroup) and
// `/version`, in the shapes of k8s.io/apimachinery/pkg/apis/meta/v1/types.go.
//
// Pure functions of a snapshot of the ResourceCatalog, called by the request handler on the I/O
// thread for every discovery request, so that a resource registered or removed by a test shows
// up (or disappears) on the next request, as a CRD does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "test/fakeapi/resource_catalog.h"

namespace informerd::fakeapi {

// `/api`: {"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[...]}.
std::string ApiVersionsJson(const std::string& server_address);
// `/api/v1` (group "") or `/apis/GROUP/VERSION`; nullopt when nothing is registered there.
std::optional<std::string> ResourceListJson(const std::vector<ResourceType>& types,
                                            const std::string& group, const std::string& version);
// `/apis`: every non-core group with its versions, the first registered one preferred.
std::string GroupListJson(const std::vector<ResourceType>& types);
// `/apis/GROUP`; nullopt for an unknown group.
std::optional<std::string> GroupJson(const std::vector<ResourceType>& types,
                                     const std::string& group);
// `/version`: the Kubernetes version the fake claims to be.
std::string VersionJson(const std::string& git_version);

}  // namespace informerd::fakeapi
