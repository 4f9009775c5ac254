// ObjectScanner: turns one Kubernetes object's JSON into an ObjectRecord in a single SAX pass.
//
// Data flow: apiserver body → ListDecoder / WatchEventDecoder → ObjectScanner → ObjectRecord →
// engine. The scanner never builds a DOM: it follows a parser's SAX-like events, copies out only
// the metadata fields and configured extra field paths, and records byte offsets so that the
// object's JSON can be copied out verbatim, minus metadata.managedFields when asked
// (managedFields is 25-30% of a typical object and nobody reading from the cache needs it). One
// parse per object; the bytes are copied twice, once into a padded scratch buffer that the parser
// reads and once into the record.
//
// Two parsers, one behaviour. The fast path walks the document with simdjson's On-Demand API
// (its SIMD structural index and UTF-8 validation make it faster than RapidJSON on non-ASCII
// documents; ScanOptions::fast_path says which documents it gets) and validates every value as it
// goes; it takes only documents it can judge exactly as RapidJSON would:
// no control characters, no surrogate \u escapes, plain numbers, an object at the root, not
// deeper than the depth limit, at most kFastPathMaxBytes. Anything else, and every document it
// finds malformed, is parsed again from the start by RapidJSON's SAX reader (in situ), whose
// records, errors and messages are the reference: the envelope is restarted first, so what
// comes out is exactly what RapidJSON alone would give.
//
// Two ways in: Scan() for a standalone object, and ParseDocument() for a decoder whose document
// holds objects (a watch event's "object", a list page's "items"): the decoder follows the
// document around the objects through a DocumentEnvelope and the scanner scans the objects in the
// same pass, so each object is parsed once, not located first and parsed again.
//
// Ownership and threads: each decoder owns one scanner and calls it from whichever thread runs
// that decoder. A scanner keeps per-object state (and reusable buffers), so it must not be used by
// two threads at once; separate scanners are independent.
//
// What is strict and what is not: the apiserver validates ObjectMeta for every kind, CRDs
// included, so a metadata field of the wrong type (a numeric name, labels that are not an object
// of strings) means the body is not a Kubernetes object and is an error. Anything else in the
// object is schema-free (a custom resource may have any top-level fields), so a value of an
// unexpected type at an extra field path, or at a Status field, is ignored rather than rejected.
#pragma once

#include <rapidjson/fwd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/labels.h"
#include "core/object_record.h"

namespace informerd::core {

struct ScanOptions {
  // Cut `"managedFields": ...` (and one adjacent comma) out of the top-level metadata; every
  // other byte of the object is kept exactly as received.
  bool strip_managed_fields = true;
  // Dot-separated paths through nested objects, such as "spec.nodeName" or "status.phase", whose
  // scalar values are copied into ObjectRecord::extra_fields (in this order). Paths do not index
  // into arrays (nor do Kubernetes field selectors). Normally checked by the config loader
  // (daemon/config.cc); a path with an empty segment simply never matches.
  std::vector<std::string> extra_field_paths;
  // Which documents go to the simdjson path first (see above). The default gives it documents
  // with a byte >= 0x80, where it measures 1.6-1.9x faster than RapidJSON (whose UTF-8 validation
  // goes byte by byte), and leaves pure ASCII to RapidJSON, which is as fast there or faster with
  // the scanner's work included (bench/decode_bench). kOff and kAlways are for the test that
  // compares the two paths and for benchmarks.
  enum class FastPath : uint8_t { kOff, kNonAscii, kAlways };
  FastPath fast_path = FastPath::kNonAscii;
};

// Fields the watch and list decoders need from the same pass but which do not belong in a cached
// record: what a watch ERROR event's Status says, what marks a WatchList bookmark, and whether
// the object says what it is (LIST items do not).
struct ScanSideFields {
  // Top-level "kind", such as "Pod" or "Status".
  std::string kind;
  // Whether the object has a top-level "kind" / "apiVersion" member, whatever its value.
  bool has_kind = false;
  bool has_api_version = false;
  // Top-level code/status/reason/message: meaningful when kind is "Status".
  KubeStatus status;
  // metadata.annotations["k8s.io/initial-events-end"] == "true": the bookmark that ends the
  // initial ADDED events of a WatchList stream (KEP-3157).
  bool initial_events_end = false;
};

// An object a decoder skipped because it was larger than the limit on one object (config
// maxObjectBytes), as far as the bytes it kept identify it. The apiserver writes
// metadata.namespace, name, uid and resourceVersion before the bulk of an object (annotations,
// managedFields, spec, data), so they are nearly always known; one the kept bytes did not reach
// is empty.
struct SkippedObject {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string resource_version;
  // Its size as received: a LIST item's JSON, or a watch event's whole line.
  std::size_t bytes = 0;
  // The limit it was over.
  std::size_t limit = 0;

  // "namespace/name", "name" when cluster-scoped, "an object with no name" when not known.
  std::string Describe() const;

  friend bool operator==(const SkippedObject& a, const SkippedObject& b) {
    return a.namespace_name == b.namespace_name && a.name == b.name && a.uid == b.uid &&
           a.resource_version == b.resource_version && a.bytes == b.bytes && a.limit == b.limit;
  }
  friend bool operator!=(const SkippedObject& a, const SkippedObject& b) { return !(a == b); }
};

class ObjectScanner;

// The part of a document around the objects in it (a watch event's envelope, a list page), for
// WatchEventDecoder and ListDecoder. ObjectScanner::ParseDocument sends it the SAX events outside
// the objects it scans; inside those, events go straight to the scanner, so the per-token cost of
// an object does not include a virtual call.
class DocumentEnvelope {
 public:
  enum class JsonScalar { kNull, kBool, kNumber, kString };
  enum class ObjectStart {
    kDescend,  // an envelope object: its members come to this envelope
    kScan,     // an object to scan: its events go to the scanner, then ObjectScanned()
  };

  virtual ~DocumentEnvelope() = default;

  // Forgets everything the events of an abandoned parse did, returning to the state it was
  // created in: the fast parser gives up part-way through some documents and the reference
  // parser then starts again. An envelope that cannot do this (the default) is only ever given
  // the reference parser's events.
  virtual bool CanRestart() const { return false; }
  void Restart() {
    error_.clear();
    Reset();
  }

  // Each returns false to stop the parse, after calling Fail() to say why.
  virtual bool StartObject(ObjectStart& start) = 0;
  virtual bool EndObject() = 0;
  virtual bool StartArray() = 0;
  virtual bool EndArray() = 0;
  virtual bool Key(std::string_view key) = 0;
  // `text` is a string's decoded value, a number's JSON text, "true", "false" or "null".
  virtual bool Scalar(JsonScalar kind, std::string_view text) = 0;
  // The object that StartObject() handed over has been scanned; take what is needed from
  // `scanner` now (TakeRecord(), fields(), side_fields()), before the next object replaces it.
  virtual bool ObjectScanned(ObjectScanner& scanner) = 0;

  const std::string& error() const { return error_; }

 protected:
  // Restart()'s part for the derived class (the error is already cleared).
  virtual void Reset() {}
  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }
  // "null", "a boolean", "a number", "a string": for error messages.
  static const char* Describe(JsonScalar kind) {
    static constexpr const char* kNames[] = {"null", "a boolean", "a number", "a string"};
    return kNames[static_cast<int>(kind)];
  }

 private:
  std::string error_;
};

class ObjectScanner {
 public:
  // Documents are parsed in a scratch copy, whose buffer is kept for the next document unless it
  // has grown beyond `keep_buffer_bytes`. The default suits watch events (kilobytes); a list
  // decoder, whose pages are megabytes and which lives only for one list, keeps its buffer
  // rather than page-faulting a fresh one in for every page.
  static constexpr std::size_t kDefaultKeepBufferBytes = std::size_t{1} << 20;
  explicit ObjectScanner(ScanOptions options,
                         std::size_t keep_buffer_bytes = kDefaultKeepBufferBytes);
  ~ObjectScanner();
  ObjectScanner(const ObjectScanner&) = delete;
  ObjectScanner& operator=(const ObjectScanner&) = delete;

  // Scans one complete JSON object (nothing but whitespace may follow it). Malformed JSON,
  // including invalid UTF-8 in a string, is InvalidArgument naming the byte offset and RapidJSON's
  // description of the error; so is a value that is not an object or ill-typed metadata.
  absl::StatusOr<ObjectRecord> Scan(std::string_view json);

  // Parses `document`, one JSON value, in a single pass: the events outside the objects that the
  // envelope hands over go to `envelope`, the objects are scanned. Errors are InvalidArgument
  // with the envelope's or the scanner's reason, or "invalid JSON at byte N: <RapidJSON's
  // reason>", N counted from the start of `document`.
  absl::Status ParseDocument(std::string_view document, DocumentEnvelope& envelope);

  // The object most recently scanned. TakeRecord() moves the record out, copying its JSON from the
  // document; call it once per object, while the document is still alive. fields() is the same
  // record without the JSON (enough for a bookmark). side_fields() is what is not in the record.
  ObjectRecord TakeRecord();
  // The same, with `members` (one or more JSON object members, such as
  // `"kind":"Pod","apiVersion":"v1"`, without a trailing comma) inserted at the start of the
  // object: `{"a":1}` becomes `{<members>,"a":1}`, `{}` becomes `{<members>}`. Every view in the
  // record (name, labels, extra fields, ...) is of the final JSON.
  ObjectRecord TakeRecord(std::string_view members);
  const ObjectRecord& fields() const;
  const ScanSideFields& side_fields() const { return side_; }
  // The size of the object most recently scanned as it appears in the document (managedFields
  // included), for decoders that limit the size of one object.
  std::size_t object_bytes() const { return end_ - begin_; }

  const ScanOptions& options() const { return options_; }

  // Documents larger than this go to RapidJSON: simdjson's structural index costs 4 bytes of
  // address space per document byte (touched: 4 per structural character), which for a whole
  // unpaginated list of hundreds of megabytes would add to the relist's peak.
  static constexpr std::size_t kFastPathMaxBytes = std::size_t{16} << 20;
  // Documents the simdjson path parsed and those it handed to RapidJSON, since construction.
  uint64_t fast_path_documents() const { return fast_documents_; }
  uint64_t fallback_documents() const { return fallback_documents_; }

 private:
  friend class ScannerSax;
  friend class FastWalker;
  struct FastParser;

  // The simdjson path: true when it parsed the whole document and every event was accepted;
  // false to have RapidJSON parse it again (the envelope must be restarted first).
  bool FastParse(std::size_t size, DocumentEnvelope& envelope);

  // What a path node means to the scanner besides any extra field paths ending there.
  enum class Slot : uint8_t {
    kNone,
    kMetadata,
    kName,
    kNamespace,
    kUid,
    kResourceVersion,
    kDeletionTimestamp,
    kLabels,
    kManagedFields,
    kInitialEventsEnd,
    kKind,
    kApiVersion,
    kStatusCode,
    kStatusStatus,
    kStatusReason,
    kStatusMessage,
  };

  // The paths the scanner looks for, as a tree of object member names rooted at the object.
  struct PathNode {
    std::string key;
    std::string path;  // dotted, for error messages
    Slot slot = Slot::kNone;
    std::vector<uint32_t> extras;    // indexes into extra_field_paths ending here
    std::vector<uint32_t> children;  // indexes into plan_
  };

  // One open object or array inside the scanned object.
  struct Frame {
    int32_t node;  // plan node whose children may appear here; -1 = nothing to look for
    bool is_array;
    bool labels;           // the members are metadata.labels entries
    uint32_t keys;         // member keys seen so far
    uint32_t cut_members;  // of those, managedFields members that will be cut
  };

  // A managedFields member to cut, resolved against the document in TakeRecord().
  struct Cut {
    std::size_t key_start;  // offset of the key's opening quote
    std::size_t value_end;  // offset just past its value
    bool first;             // no member that is kept precedes it in metadata
  };

  // The per-object SAX interface, driven by ScannerSax (object_scanner.cc). `at` is the offset of
  // the token's first byte in the document, `end` the offset just past it. Numbers arrive as
  // their JSON text.
  void Begin();
  bool StartObject(std::size_t at);
  bool EndObject(std::size_t end);
  bool StartArray(std::size_t at);
  bool EndArray(std::size_t end);
  bool Key(const char* str, std::size_t length, std::size_t at);
  bool String(const char* str, std::size_t length, std::size_t at);
  bool Number(const char* text, std::size_t length, std::size_t at);
  bool Bool(bool value, std::size_t at);
  bool Null(std::size_t at);

  uint32_t AddNode(uint32_t parent, const std::string& key, Slot slot);
  int32_t FindChild(int32_t node, const char* key, std::size_t length) const;
  bool ApplyScalar(const PathNode& node, const char* text, std::size_t length, bool is_string,
                   std::size_t at);
  bool ApplyContainer(const PathNode& node, bool is_array, std::size_t at);
  bool StartContainer(bool is_array, std::size_t at);
  void Push(int32_t node, bool is_array, bool labels);
  // Whether the value that just ended is that of a managedFields member of metadata (frames_[1]),
  // and if so, EndCut() records where it ended.
  bool EndsCut() const { return cutting_ && frames_.size() == 2; }
  void EndCut(std::size_t end);
  bool Fail(std::string message);

  ScanOptions options_;
  std::size_t keep_buffer_bytes_;
  std::vector<PathNode> plan_;  // plan_[0] is the object itself
  std::unique_ptr<rapidjson::Reader> reader_;
  std::unique_ptr<FastParser> fast_parser_;
  uint64_t fast_documents_ = 0;
  uint64_t fallback_documents_ = 0;

  std::string_view document_;  // during and after ParseDocument()
  // The copy of the document that the parsers read (RapidJSON in situ), padded for simdjson, so
  // that document_ stays intact.
  std::string scratch_;

  // A string value of the object being scanned: where its decoded bytes are. When the document
  // spells it exactly so (no escapes, nearly always), that is its offset in the document, so
  // that the record can point into its own JSON instead of copying it; otherwise a decoded copy
  // in escaped_ (scratch_ may be gone by the time TakeRecord() runs).
  struct TextRef {
    std::size_t raw = std::string_view::npos;  // offset in document_
    std::size_t pooled = 0;                    // else offset in escaped_
    std::size_t size = 0;
  };
  TextRef MakeRef(const char* text, std::size_t length, bool is_string, std::size_t at);
  std::string_view Decoded(const TextRef& ref) const {
    return ref.raw != std::string_view::npos
               ? document_.substr(ref.raw, ref.size)
               : std::string_view(escaped_).substr(ref.pooled, ref.size);
  }
  // Where `ref` lies in `json`, the object's JSON as the record will hold it; `segments_` maps
  // document offsets to it.
  std::string_view Resolve(const TextRef& ref, std::string_view json) const;
  // A kept stretch of the document: [from, to) → json[out, out + to - from).
  struct Segment {
    std::size_t from;
    std::size_t to;
    std::size_t out;
  };

  // Per-object state, reset by Begin(); the vectors keep their capacity between objects.
  std::vector<Frame> frames_;
  std::vector<Cut> cuts_;
  std::vector<std::pair<TextRef, TextRef>> labels_;
  TextRef label_key_;
  // metadata.namespace, name, uid, resourceVersion, deletionTimestamp.
  TextRef namespace_name_, name_, uid_, resource_version_, deletion_timestamp_;
  std::vector<std::optional<TextRef>> extras_;
  std::string escaped_;
  int32_t pending_ = -1;  // plan node named by the current member key, until its value ends
  bool cutting_ = false;  // the current member of metadata is managedFields
  Cut cut_{};
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  uint32_t root_members_ = 0;  // members of the object itself, counted when it ends
  bool done_ = false;
  std::string error_;
  // TakeRecord's reusable buffers.
  std::string json_;
  std::vector<Segment> segments_;
  std::vector<LabelSet::View> label_views_;
  std::vector<std::optional<std::string_view>> extra_views_;
  // fields(), built on demand.
  mutable ObjectRecord fields_;
  mutable bool fields_built_ = false;
  ScanSideFields side_;
};

}  // namespace informerd::core
