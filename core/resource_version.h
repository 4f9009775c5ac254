// Resource versions as numbers: parsing and printing.
//
// The Kubernetes API calls resourceVersion opaque, but the apiserver's own watch cache
// (k8s.io/apiserver/pkg/storage/cacher, via storage.APIObjectVersioner.ParseResourceVersion)
// parses it as an unsigned 64-bit integer, the etcd revision, to order events and to answer
// "events after X"; informerd's cache (core/cache.*) does the same, for the same reason
// (docs/kubernetes-semantics.md, "Resource versions"). The RPC layer parses a client's
// resource_version here, so that a non-numeric one is INVALID_ARGUMENT before it reaches the
// cache. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace informerd::core {

// Decimal digits only, as Go's strconv.ParseUint(rv, 10, 64) accepts them (leading zeros are
// allowed; a sign, spaces or an empty string are not). Anything else, or a value above 2^64-1,
// is InvalidArgument naming the text, e.g.
//   resource version "abc" is not a decimal number
absl::StatusOr<uint64_t> ParseResourceVersion(std::string_view text);

// The canonical text of `version`: decimal, no leading zeros.
std::string FormatResourceVersion(uint64_t version);

}  // namespace informerd::core
