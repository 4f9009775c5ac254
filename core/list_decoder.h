// ListDecoder: turns one page of a Kubernetes LIST response into its list metadata and one
// ObjectRecord per item; ParseKubeStatus reads the Status body of any error response.
//
// Data flow: the apiserver client (daemon/) fetches `GET ...?limit=500[&continue=TOKEN]`, hands
// each complete page body here, and passes the page to the reflector, which keeps requesting
// pages while continue_token is non-empty and then watches from the list's resource_version.
// The page is parsed in one SAX pass; each item's SAX events go straight to ObjectScanner, so
// items are scanned (and managedFields cut) without being located first or built into a DOM.
//
// Size: an item larger than the decoder's max_item_bytes (counted as it appears in the page,
// managedFields included) fails its page, as a watch event over the same limit fails its watch:
// etcd caps stored objects far below the default, so such an item means a broken or hostile
// server. The page body itself has been received whole by then; the limit keeps such an object
// out of the cache.
//
// Ownership and threads: one decoder per list (all its pages), owned by the code that runs the
// list and called from its thread only. It keeps a parse buffer as large as the largest page it
// has decoded, so let it go when the list is complete. ParseKubeStatus is a free function, safe
// from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/defaults.h"
#include "core/object_record.h"
#include "core/object_scanner.h"

namespace informerd::core {

// metav1.ListMeta.
struct ListMeta {
  // Where a watch started after this list sees every later change.
  std::string resource_version;
  // Opaque token for the next page; empty on the last page. It expires (HTTP 410), in which case
  // the whole list starts over.
  std::string continue_token;
  // The server's estimate of items after this page, when it gives one.
  std::optional<int64_t> remaining_item_count;
};

struct ListPage {
  ListMeta metadata;
  std::vector<ObjectRecord> items;  // in the order the server sent them
};

class ListDecoder {
 public:
  // `max_item_bytes`: the largest item accepted (config maxObjectBytes).
  explicit ListDecoder(ScanOptions options, std::size_t max_item_bytes = kDefaultMaxObjectBytes);
  ListDecoder(const ListDecoder&) = delete;
  ListDecoder& operator=(const ListDecoder&) = delete;

  // Decodes one page, e.g.
  //   {"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123","continue":"tok",
  //    "remainingItemCount":5},"items":[{...},...]}
  // Items are scanned with the rules of ObjectScanner. Malformed JSON (with the byte offset and
  // RapidJSON's description), a body without "items", an item that is not an object, or
  // ill-typed list metadata is InvalidArgument; an item larger than max_item_bytes is
  // ResourceExhausted, naming the item (index, namespace/name), its size and the limit. No
  // partial page is returned.
  absl::StatusOr<ListPage> Decode(std::string_view body);

 private:
  ObjectScanner scanner_;
  std::size_t max_item_bytes_;
};

// Parses a metav1.Status body (`{"kind":"Status","code":410,"reason":"Expired",...}`), as the
// apiserver sends with any error response. InvalidArgument if the body is not JSON or not a
// Status (a proxy's HTML error page, say); the caller then reports the HTTP status line instead.
absl::StatusOr<KubeStatus> ParseKubeStatus(std::string_view body);

}  // namespace informerd::core
