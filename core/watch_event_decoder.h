// WatchEventDecoder: turns the body of a Kubernetes WATCH response, as it arrives in pieces, into
// decoded watch events.
//
// Data flow: the apiserver client (daemon/) reads the chunked HTTP body of
// `GET ...?watch=1&resourceVersion=RV&allowWatchBookmarks=true` and feeds the bytes here exactly
// as they come; each complete event comes out as a WatchEvent (with an ObjectRecord built by
// ObjectScanner in the same pass) for the reflector to apply. The apiserver writes each event as
// one compact JSON object `{"type":T,"object":{...}}` followed by "\n" (encoding/json's Encoder),
// and a raw newline cannot occur inside compact JSON, so the decoder splits on "\n" and parses
// each complete line once. Nothing is assumed about how the bytes are cut: a piece may hold part
// of an event (split anywhere, inside a UTF-8 sequence or an escape) or several events.
//
// Ownership and threads: one decoder per watch request, owned by whoever reads that response and
// called only from that reader's thread. A new watch request gets a new decoder.
//
// Failure: a line that is not a well-formed event breaks the decoder for good: the caller should
// close the connection and watch again from resource_version() (the error message names it too).
// An ERROR event is not a failure of the decoder: it is a well-formed event whose Status the
// reflector acts on (410 → relist).
//
// Size: an event longer than max_event_bytes is not a failure either. Watching again would only
// bring the same event back, forever, so it is skipped: the decoder keeps its first
// max_event_bytes bytes, discards the rest of the line as it arrives (so one watch never holds
// more than the limit), recovers from the kept bytes the event's type and the object's
// namespace, name, uid and resourceVersion (the apiserver writes them before the bulk of the
// object), and hands out a WatchEvent with `skipped` set and no object JSON, in stream order. Its
// resourceVersion counts as decoded (resource_version()), so the stream goes on past it. What to
// do with the object is the caller's: the daemon's informer drops it from the cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/defaults.h"
#include "core/object_record.h"
#include "core/object_scanner.h"

namespace informerd::core {

// k8s.io/apimachinery/pkg/watch: EventType.
enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

// The wire name: "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR".
const char* WatchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  // kAdded, kModified, kDeleted: the object (for kDeleted, its last state).
  ObjectRecord object;
  // kBookmark: the resource version to resume from.
  std::string resource_version;
  // kBookmark: this bookmark ends the initial events of a WatchList stream
  // (metadata.annotations["k8s.io/initial-events-end"] == "true").
  bool initial_events_end = false;
  // kError: the Status the server sent, such as code 410 with reason "Expired" (or "Gone" before
  // Kubernetes 1.18) when the requested resource version is too old.
  KubeStatus status;
  // Set when the event was longer than max_event_bytes and was not decoded: `type` is the event's
  // (kModified when the kept bytes did not say), `object` is empty, and this says which object
  // it was, as far as the kept bytes tell, and how large the event was. Such an event must not
  // reach a ReflectorSink as it is.
  std::optional<SkippedObject> skipped;

  friend bool operator==(const WatchEvent& a, const WatchEvent& b) {
    return a.type == b.type && a.object == b.object && a.resource_version == b.resource_version &&
           a.initial_events_end == b.initial_events_end && a.status == b.status &&
           a.skipped == b.skipped;
  }
  friend bool operator!=(const WatchEvent& a, const WatchEvent& b) { return !(a == b); }
};

struct WatchDecoderOptions {
  ScanOptions scan;
  // The longest event decoded, newline excluded; a longer one is skipped (see Size above). etcd
  // caps a stored object at a few MiB (--max-request-bytes, 1.5 MiB by default), but the
  // apiserver's own objects and proxies are not bound by it; the cap bounds what one watch can
  // make the decoder buffer.
  std::size_t max_event_bytes = kDefaultMaxObjectBytes;
  // The resourceVersion the watch was opened at. Only used in error messages until the first
  // event arrives, so that they always say where to resume.
  std::string start_resource_version;
};

class WatchEventDecoder {
 public:
  explicit WatchEventDecoder(WatchDecoderOptions options);
  ~WatchEventDecoder();
  WatchEventDecoder(const WatchEventDecoder&) = delete;
  WatchEventDecoder& operator=(const WatchEventDecoder&) = delete;

  // Consumes the next piece of the body and appends (never clears) every event it completes to
  // `events`, in stream order, skipped ones included; `bytes` need not outlive the call. Bytes
  // of an incomplete event are kept until a later piece completes it (at most max_event_bytes of
  // them). On a malformed event, returns InvalidArgument after appending the good events before
  // it; the decoder is then broken and every later call returns the same error. Messages read
  // like
  //   watch event #7 at stream byte 21873 is malformed: invalid JSON at byte 312: Missing a
  //   comma or '}' after an object member.; resume from resourceVersion "48213"
  // where "stream byte" counts from the start of the body and the byte after "malformed:" from
  // the start of that event.
  absl::Status Feed(std::string_view bytes, std::vector<WatchEvent>& events);

  // Call once, when the body has ended. OK if it ended between events; a final event without its
  // newline is decoded and appended. Anything else (the body was cut inside an event, an
  // oversized one included) is an error, and the decoder is broken, as for Feed.
  absl::Status Finish(std::vector<WatchEvent>& events);

  bool broken() const { return !status_.ok(); }
  // OK, or the error that broke the decoder.
  const absl::Status& status() const { return status_; }
  // The resource version of the last event decoded (an object's, or a bookmark's), else
  // WatchDecoderOptions::start_resource_version: where a new watch should resume.
  const std::string& resource_version() const { return resource_version_; }
  // Events decoded (or skipped) so far, and bytes held for an incomplete event.
  uint64_t events_decoded() const { return events_decoded_; }
  std::size_t buffered_bytes() const { return pending_.size(); }

 private:
  absl::Status DecodeLine(std::string_view line, std::vector<WatchEvent>& events);
  // The event held in pending_ (its first max_event_bytes_ bytes) was oversized_bytes_ long:
  // appends it as skipped and forgets it.
  void SkipOversized(std::vector<WatchEvent>& events);
  absl::Status Break(absl::Status status);

  ObjectScanner scanner_;
  std::size_t max_event_bytes_;
  std::string resource_version_;
  // The start of the event not yet complete, which begins at stream offset consumed_.
  std::string pending_;
  // The incomplete event is over the limit: pending_ holds its first max_event_bytes_ bytes, the
  // rest is discarded as it arrives, and oversized_bytes_ is its length so far.
  bool skipping_ = false;
  std::size_t oversized_bytes_ = 0;
  uint64_t consumed_ = 0;
  uint64_t events_decoded_ = 0;
  absl::Status status_;
};

}  // namespace informerd::core
