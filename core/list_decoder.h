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
// managedFields included) is skipped: it is left out of the page's items and reported in
// ListPage::skipped with the identity the scan found (its namespace/name), its size and the
// limit, and the page goes on. A list that leaves an object out deletes it from the cache as
// absent, so the cache never holds a copy that is not faithful, and the list is never retried
// for it (retrying would find the same object again, forever). The page body itself has been
// received whole by then; the limit keeps such an object out of the cache.
//
// Type: a LIST response names the kind once, for the whole list ("kind":"PodList",
// "apiVersion":"v1"), and its items come without "kind" and "apiVersion", whereas a watch
// event's object carries both. So that every object served has the same shape however it
// arrived, an item without them gets them inserted at the start of its JSON, as client-go's
// dynamic client and kubectl fill them in: kind = the list's kind minus its "List" suffix,
// apiVersion = the list's. Typed lists write kind and apiVersion before "items"; a custom
// resource's list is written with its keys sorted ("apiVersion", "items", "kind", "metadata"),
// so its kind comes after its items, whose own JSON carries kind and apiVersion anyway: for
// whatever the list has not said before its items, the item type the decoder was created with
// (the resource's, from discovery) stands in.
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
  // Items larger than the decoder's max_item_bytes, left out of `items`, in page order.
  std::vector<SkippedObject> skipped;
};

// The kind and apiVersion of a list's items, such as {"Pod", "v1"} or
// {"Deployment", "apps/v1"}. Empty fields are unknown.
struct ItemType {
  std::string kind;
  std::string api_version;
};

class ListDecoder {
 public:
  // `max_item_bytes`: the largest item accepted (config maxObjectBytes). `item_type`: what an
  // item lacking "kind" or "apiVersion" gets when the list has not said it before its items
  // (the resource's type; empty: nothing is inserted then).
  explicit ListDecoder(ScanOptions options, std::size_t max_item_bytes = kDefaultMaxObjectBytes,
                       ItemType item_type = {});
  ListDecoder(const ListDecoder&) = delete;
  ListDecoder& operator=(const ListDecoder&) = delete;

  // Decodes one page, e.g.
  //   {"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123","continue":"tok",
  //    "remainingItemCount":5},"items":[{...},...]}
  // Items are scanned with the rules of ObjectScanner; an item without "kind" or "apiVersion"
  // gets them (see Type above). Malformed JSON (with the byte offset and RapidJSON's
  // description), a body without "items", an item that is not an object, or ill-typed list
  // metadata is InvalidArgument, and no partial page is returned. An item larger than
  // max_item_bytes is not an error: it goes to ListPage::skipped.
  absl::StatusOr<ListPage> Decode(std::string_view body);

 private:
  ObjectScanner scanner_;
  std::size_t max_item_bytes_;
  ItemType item_type_;
};

// Parses a metav1.Status body (`{"kind":"Status","code":410,"reason":"Expired",...}`), as the
// apiserver sends with any error response. InvalidArgument if the body is not JSON or not a
// Status (a proxy's HTML error page, say); the caller then reports the HTTP status line instead.
absl::StatusOr<KubeStatus> ParseKubeStatus(std::string_view body);

}  // namespace informerd::core
