// ReflectorSink: what the reflector (core/reflector.*) tells the cache (core/store.* and the
// fan-out hub behind it). The seam between the upstream side, which follows client-go's
// Reflector, and the serving side, which follows the apiserver's watch cache.
//
// Calls come from one thread: the one that drives the reflector (the daemon's I/O thread). The
// implementation makes them visible to readers and subscribers on other threads.
//
// A relist is not a reset (docs/kubernetes-semantics.md, "A relist is not a reset for
// subscribers"): the sink receives the new list page by page and turns it into the difference
// against what it holds, so memory never holds two copies of the resource and subscribers keep
// their streams.
#pragma once

#include <string>
#include <vector>

#include "core/object_record.h"
#include "core/watch_event_decoder.h"

namespace informerd::core {

class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;

  // A (re)list is starting. Until EndList, ListItems delivers the state at one resource version.
  virtual void BeginList() = 0;

  // Items of the list in progress, one page (or, for WatchList, the initial ADDED events) at a
  // time. For each: absent → ADDED; same UID, different resourceVersion → MODIFIED; different
  // UID → DELETED (the old object) then ADDED; identical → nothing. `list_resource_version` is
  // the list's RV when known (LIST pages carry it; WatchList learns it only at its bookmark: "").
  virtual void ListItems(std::vector<ObjectRecord> items,
                         const std::string& list_resource_version) = 0;

  // The list is complete at `resource_version`: every object held but not delivered since
  // BeginList is deleted (DELETED with its last known state), the cache is synced at that RV,
  // and the replay window restarts there.
  virtual void EndList(const std::string& resource_version) = 0;

  // The list was abandoned (error mid-way); a new BeginList follows. Items already delivered
  // stay (they are real, newer states); nothing is deleted.
  virtual void AbortList() = 0;

  // One live event from the watch: kAdded, kModified, kDeleted or kBookmark (kError never
  // reaches the sink: the reflector acts on it).
  virtual void ApplyWatchEvent(WatchEvent event) = 0;

  // The upstream is gone for now or for good (for example the CRD was deleted); `reason` is for
  // people. The cache keeps its objects but is no longer synced until the next EndList.
  virtual void MarkUnsynced(const std::string& reason) = 0;
};

}  // namespace informerd::core
