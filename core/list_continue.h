// ListContinue: the `continue` token of a paged List (informerd.v1.ListRequest.continue), the
// counterpart of the apiserver's continue token: opaque to clients, it says which state the list
// reads (every page of one list is read from the state at the first page's resource version) and
// where the next page starts.
//
// Data flow: the RPC layer (daemon/service/unary_calls.cc) reads a page from core::Cache::List,
// encodes the token from the page's core::ListState and its last object's key, and decodes the
// token a client sends back into the core::ListCursor of the next page. The token also carries a
// hash of what the request asked for (ListQueryHash), so that a token is only good for the
// request that produced it: a page of another resource, namespace or selector would not be a
// page of the same list.
//
// Not a secret and not signed: it holds nothing a caller could not learn from the first page,
// and a forged token only makes informerd read, for a caller already allowed to list the
// resource, another page of its own cache. What a token cannot be is mistaken for a valid one:
// anything that does not decode is INVALID_ARGUMENT, and a token whose state the cache can no
// longer read is refused by the cache (OUT_OF_RANGE, core/cache.h, "Paged lists").
//
// Pure functions: any thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/cache.h"

namespace informerd::core {

struct ListContinue {
  // The state the list reads and where the next page starts.
  ListCursor cursor;
  // ListQueryHash of the request that produced it.
  uint64_t query = 0;
};

// URL-safe base64 (no padding) of a small versioned text: a few hundred bytes at most (a
// namespace is at most 63 bytes, a name 253).
std::string EncodeListContinue(const ListContinue& token);

// INVALID_ARGUMENT for anything EncodeListContinue did not produce (bad base64, an unknown
// format, a missing or non-numeric field), with a message starting "continue: ".
absl::StatusOr<ListContinue> DecodeListContinue(std::string_view token);

// A stable 64-bit hash (FNV-1a) of `parts`, each length-prefixed so that ("ab", "c") and
// ("a", "bc") differ. The same in every informerd build and process.
uint64_t ListQueryHash(std::initializer_list<std::string_view> parts);

}  // namespace informerd::core
